"""The fleet benchmark (``nox -s benchmark``) still runs: a small fleet, the healer's half.

The benchmark is not a test and asserts nothing about speed; this only keeps the script from
rotting between the runs that docs/performance.md records (Ansible is not installed here).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fleet.py"


def test_the_benchmark_runs_on_a_small_fleet_and_prints_its_figures():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--hosts", "2", "--apps", "3", "--no-ansible"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "healer: 6 apps on 2 hosts (6 diagnosed)" in out
    assert "round trips per host: discovery 3, diagnosis " in out
    assert "per-app diagnosis latency" in out
    assert "FAILED" not in out
