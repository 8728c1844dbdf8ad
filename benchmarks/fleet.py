"""Benchmark: discover and diagnose N hosts x M apps over SSH, and the same probe work with Ansible.

Run it with ``nox -s benchmark`` (``-- --hosts 20 --apps 50`` are the defaults; ``--help`` for
the rest). It starts N real OpenSSH servers on loopback with the test suite's helper
(tests/sshfleet.py), gives each a tree of M sample applications, then

1. the healer, in this process: one fleet, ``discover_fleet`` then ``diagnose_fleet``;
2. Ansible (``ansible-playbook``, forks = N) running the equivalent commands against the very
   same servers: the host facts (uname, /proc, df), the scan of the search path (find), the
   probe files read (one command per host, as the healer batches them), and per application
   the ``file_permissions`` work (find for world-writable paths, stat of the secret files), one
   loop item per application. Each task is ``raw`` by default (a plain command over Ansible's
   multiplexed SSH connection: its cheapest way, so the ratio is the least flattering to the
   healer); ``--ansible-module shell`` runs them as the usual Python module instead.

It prints apps discovered and diagnosed per second, p50/p95 per-app diagnosis latency, round
trips per host, the healer's peak memory (``ru_maxrss``) and the healer/Ansible ratio. It is not
a test: it asserts nothing, it measures (docs/performance.md keeps the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "apps"
# Each of these roots is one application (the monorepo's two apps are left out for simplicity).
SAMPLES = (
    "express-api", "laravel-app", "nextjs-app", "node-worker", "php-site", "wordpress-site",
)  # fmt: skip


def _load_sshfleet() -> Any:
    """tests/sshfleet.py, the helper the test suite starts its sshd fleet with."""
    spec = importlib.util.spec_from_file_location("sshfleet", ROOT / "tests" / "sshfleet.py")
    if spec is None or spec.loader is None:
        raise SystemExit("cannot load tests/sshfleet.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["sshfleet"] = module
    spec.loader.exec_module(module)
    return module


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def build_fleet(work: Path, hosts: int, apps: int) -> tuple[Any, list[Any], list[Path]]:
    sshfleet = _load_sshfleet()
    (work / "fleet").mkdir()
    fleet = sshfleet.SSHFleet(work / "fleet")
    servers, trees = [], []
    for index in range(hosts):
        servers.append(fleet.start(f"host{index:02}", address=f"127.0.0.{index + 2}"))
        tree = work / f"host{index:02}"
        for number in range(apps):
            shutil.copytree(
                EXAMPLES / SAMPLES[number % len(SAMPLES)], tree / f"site-{number:03}", symlinks=True
            )
        trees.append(tree)
    return fleet, servers, trees


# ---------------------------------------------------------------------------------------------
# The healer


async def run_healer(fleet: Any, servers: list[Any], trees: list[Path]) -> dict[str, Any]:
    from universal_healer.fleet import Fleet, diagnose_fleet, discover_fleet  # noqa: PLC0415
    from universal_healer.inventory import ServerSpec  # noqa: PLC0415
    from universal_healer.model import Application  # noqa: PLC0415
    from universal_healer.plugins import build_plugin_manager  # noqa: PLC0415

    manager = build_plugin_manager(disabled=())
    plugins = [info.name for info in manager.plugins() if info.enabled and info.error is None]
    specs = [
        ServerSpec(
            name=server.name,
            address=server.address,
            port=server.port,
            username="root",
            client_keys=(str(fleet.user_key),),
            known_hosts=str(fleet.known_hosts),
            search_paths=(str(tree),),
        )
        for server, tree in zip(servers, trees, strict=True)
    ]
    async with Fleet.of(specs) as hosts:
        started = time.perf_counter()
        reports = await discover_fleet(hosts, manager, specs)
        discovered_s = time.perf_counter() - started
        discovery_trips = hosts.round_trips()
        apps = [
            Application(id=str(uuid.uuid4()), server=name, path=found.root, stack=found.stack)
            for name, report in reports.items()
            for found in getattr(report, "apps", ())
        ]
        failures = [str(r) for r in reports.values() if not hasattr(r, "apps")]
        started = time.perf_counter()
        outcome = await diagnose_fleet(hosts, manager, apps)
        diagnosed_s = time.perf_counter() - started
        trips = hosts.round_trips()
    latencies = [d.duration_s for d in outcome.diagnoses]
    return {
        "apps": len(apps),
        "diagnosed": len(outcome.diagnoses),
        "failures": failures + [str(f) for f in outcome.failures],
        "discover_s": discovered_s,
        "diagnose_s": diagnosed_s,
        "p50_s": statistics.median(latencies) if latencies else 0.0,
        "p95_s": _percentile(latencies, 0.95) if latencies else 0.0,
        "discovery_trips": sorted(discovery_trips.values()),
        "diagnosis_trips": sorted(trips[n] - discovery_trips[n] for n in trips),
        "health": _count(d.health_status.value for d in outcome.diagnoses),
        "plugins": plugins,
    }


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


# ---------------------------------------------------------------------------------------------
# Ansible

# The same commands the healer runs (hosts/_sshwire.py, _sshscan.py, _sshread.py; the
# file_permissions check).
FACTS = (
    "uname -n; getconf _NPROCESSORS_ONLN; cat /proc/loadavg; cat /proc/meminfo; "
    "df -a -B1 --output=source,fstype,size,used,avail,itotal,iavail,target"
)
SCAN = (
    "find -P {{ search_path }}/. -maxdepth 6 "
    r"\( -type d \( -name node_modules -o -name vendor -o -name .git \) -prune \) "
    "-o -printf '%y %D %i %d %P\\0'"
)
READS = (
    "for f in {{ search_path }}/*/package.json {{ search_path }}/*/composer.json "
    "{{ search_path }}/*/composer.lock {{ search_path }}/*/artisan "
    "{{ search_path }}/*/wp-includes/version.php {{ search_path }}/*/package-lock.json; "
    'do [ -f "$f" ] && head -c 8388609 "$f"; done; true'
)
PERMISSIONS = (
    "find -H {{ item }} -xdev \\( -perm -0002 ! -type l ! \\( -type d -perm -1000 \\) \\) "
    "-printf '%P\\0'; stat -c '%f %n' {{ item }} {{ item }}/.env {{ item }}/wp-config.php "
    "2>/dev/null; true"
)
# The same work shaped as the healer now shapes it: one find over every root of the host,
# one stat of every secret file.
PERMISSIONS_PER_HOST = (
    "find -H {{ apps | join(' ') }} -xdev \\( -perm -0002 ! -type l ! \\( -type d -perm -1000 \\) "
    "\\) -printf '%H\\0%P\\0'; stat -c '%f %n' {% for a in apps %}{{ a }} {{ a }}/.env "
    "{{ a }}/wp-config.php {% endfor %}2>/dev/null; true"
)


def play(module: str, *, per_host: bool) -> list[dict[str, Any]]:
    """The play, with every task run by ``module``: ``raw`` (a plain command over the SSH
    connection, Ansible's cheapest way) or ``shell`` (the usual one: a Python module each).
    ``per_host``: the file permissions work as one task per host, not a loop over the apps."""
    task = f"ansible.builtin.{module}"
    permissions: dict[str, Any] = (
        {"name": "file permissions, every app at once", task: PERMISSIONS_PER_HOST}
        if per_host
        else {"name": "file permissions, per app", task: PERMISSIONS, "loop": "{{ apps }}"}
    )
    return [
        {
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {"name": "host facts", task: FACTS},
                {"name": "scan the search path", task: SCAN},
                {"name": "read the probe files", task: READS},
                permissions,
            ],
        }
    ]


def run_ansible(
    work: Path,
    fleet: Any,
    servers: list[Any],
    trees: list[Path],
    *,
    forks: int,
    module: str,
    per_host: bool,
) -> dict[str, Any]:
    playbook = shutil.which("ansible-playbook")
    if playbook is None:
        raise SystemExit("ansible-playbook not found: run this through `nox -s benchmark`")
    directory = work / ("ansible-per-host" if per_host else "ansible-per-app")
    directory.mkdir()
    hosts = {
        server.name: {
            "ansible_host": server.address,
            "ansible_port": server.port,
            "search_path": str(tree),
            "apps": sorted(str(path) for path in tree.iterdir()),
        }
        for server, tree in zip(servers, trees, strict=True)
    }
    (directory / "inventory.yml").write_text(json.dumps({"all": {"hosts": hosts}}))
    # YAML is a superset of JSON: written with json.dumps, nothing needs YAML quoting.
    (directory / "playbook.yml").write_text(json.dumps(play(module, per_host=per_host), indent=1))
    ssh_args = (
        f"-o UserKnownHostsFile={fleet.known_hosts} -o StrictHostKeyChecking=yes "
        "-o ControlMaster=auto -o ControlPersist=120s -o PreferredAuthentications=publickey"
    )
    env = {
        **os.environ,
        "ANSIBLE_HOME": str(directory / "home"),
        "ANSIBLE_LOCAL_TEMP": str(directory / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(directory / "remote-tmp"),
        "ANSIBLE_FORKS": str(forks),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_ARGS": ssh_args,
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(directory / "cp"),
        "ANSIBLE_PRIVATE_KEY_FILE": str(fleet.user_key),
        "ANSIBLE_REMOTE_USER": "root",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_DISPLAY_OK_HOSTS": "False",
        "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "False",
    }
    command = [playbook, "-i", str(directory / "inventory.yml"), str(directory / "playbook.yml")]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"ansible-playbook failed with status {done.returncode}")
    recap = done.stdout[done.stdout.rfind("PLAY RECAP") :].strip()
    version = subprocess.run(
        [playbook, "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[0]
    return {"seconds": elapsed, "recap": recap, "version": version}


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=20, help="sshd servers (default 20)")
    parser.add_argument("--apps", type=int, default=50, help="applications per host (default 50)")
    parser.add_argument("--no-ansible", action="store_true", help="skip the Ansible baseline")
    parser.add_argument(
        "--ansible-module",
        choices=("raw", "shell"),
        default="raw",
        help="how Ansible runs each command: raw (cheapest, the default) or shell (usual)",
    )
    options = parser.parse_args()
    if not 1 <= options.hosts <= 200:
        parser.error("--hosts must be from 1 to 200 (one loopback address each)")

    work = Path(tempfile.mkdtemp(prefix="healer-bench-"))
    print(f"starting {options.hosts} sshd servers with {options.apps} apps each in {work}")
    fleet, servers, trees = build_fleet(work, options.hosts, options.apps)
    try:
        healer = asyncio.run(run_healer(fleet, servers, trees))
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        total = healer["apps"]
        both = healer["discover_s"] + healer["diagnose_s"]
        print(f"\nhealer: {total} apps on {options.hosts} hosts ({healer['diagnosed']} diagnosed)")
        print(f"  plugins: {', '.join(healer['plugins'])}")
        for label, seconds in (
            ("discovery", healer["discover_s"]),
            ("diagnosis", healer["diagnose_s"]),
            ("both", both),
        ):
            print(f"  {label:<10} {seconds:7.2f} s  {total / seconds:8.1f} apps/s")
        p50, p95 = healer["p50_s"] * 1000, healer["p95_s"] * 1000
        print(f"  per-app diagnosis latency: p50 {p50:.0f} ms, p95 {p95:.0f} ms")
        discovery, diagnosis = (
            _spread(healer["discovery_trips"]),
            _spread(healer["diagnosis_trips"]),
        )
        print(f"  round trips per host: discovery {discovery}, diagnosis {diagnosis}")
        print(f"  peak memory of this process (ru_maxrss): {peak_mib:.0f} MiB")
        print(f"  health: {healer['health']}")
        for failure in healer["failures"]:
            print(f"  FAILED {failure}")
        if options.no_ansible:
            return
        module = options.ansible_module
        print(f"\nansible-playbook, forks = {options.hosts}, the same commands ({module}):")
        ansible = None
        for per_host, shape in ((False, "a task per app"), (True, "a task per host")):
            ansible = run_ansible(
                work, fleet, servers, trees, forks=options.hosts, module=module, per_host=per_host
            )
            seconds = ansible["seconds"]
            print(
                f"  file permissions as {shape + ':':<17} {seconds:7.2f} s  "
                f"{total / seconds:8.1f} apps/s  healer/Ansible {seconds / both:.1f}x"
            )
        assert ansible is not None  # noqa: S101 - the loop ran
        print(f"  ({ansible['version']})")
        print(f"  load average at the end: {os.getloadavg()}")
    finally:
        fleet.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def _spread(values: list[int]) -> str:
    return f"{values[0]}" if values[0] == values[-1] else f"{values[0]}-{values[-1]}"


if __name__ == "__main__":
    main()
