"""A canary password never shows: not on any command line or in any environment while the
checks and two real heals run, nor in results, logs, execution records, approvals, backups or
the audit log.

The canary is the password of a MySQL user made for the test (rights on the scratch schema
only), handed to the application as its encrypted secrets, so every check, step and dump logs
in with it. A thread reads every process's ``cmdline`` and ``environ`` every couple of
milliseconds meanwhile.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import threading
from pathlib import Path

import attrs
import pytest
from _mysql_world import crash_index, fill_myisam, quoted, sql
from universal_healer import serde
from universal_healer.executions import ExecutionStatus

pytestmark = pytest.mark.mysql


@attrs.define
class ProcWatch:
    """Reads /proc/*/cmdline and /proc/*/environ in a loop, looking for ``needle``."""

    needle: bytes
    samples: int = 0
    processes_seen: set[int] = attrs.field(factory=set)
    hits: list[str] = attrs.field(factory=list)
    _stop: threading.Event = attrs.field(factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sweep(self):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            for name in ("cmdline", "environ"):
                try:
                    with open(f"/proc/{entry}/{name}", "rb") as handle:
                        data = handle.read()
                except OSError:
                    continue
                if name == "cmdline" and data:
                    self.processes_seen.add(int(entry))
                if self.needle in data:
                    self.hits.append(f"/proc/{entry}/{name}: {data[:200]!r}")

    def _loop(self):
        while not self._stop.wait(0.002):
            self._sweep()
            self.samples += 1

    def __enter__(self):
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.fixture
def canary(scratch):
    """A user whose password is the canary, with rights on the scratch schema only."""
    user = f"canary_{secrets.token_hex(4)}"
    password = f"Canary-{secrets.token_hex(8)}-\"q'\\#;"
    for host in ("127.0.0.1", "localhost"):
        sql(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY %s", password)
        sql(f"GRANT ALL PRIVILEGES ON {quoted(scratch)}.* TO '{user}'@'{host}'")
    yield user, password
    for host in ("127.0.0.1", "localhost"):
        sql(f"DROP USER IF EXISTS '{user}'@'{host}'")


def test_the_canary_never_shows_while_checks_and_heals_run(world, victim, canary, scratch, caplog):
    user, password = canary
    world.registry.set_app_secrets(world.app_id, {
        "MYSQL_USER": user, "MYSQL_PASSWORD": password, "MYSQL_HOST": "127.0.0.1",
        "MYSQL_PORT": "3306",
    }, world.box)  # fmt: skip
    world.registry.set_app_metadata(world.app_id, {"mysql_long_query_seconds": 1})
    caplog.set_level(logging.DEBUG)
    victim.start(user=user, password=password)
    victim.wait_running(1)

    with ProcWatch(password.encode()) as watch:
        killed = world.heal()
        fill_myisam(scratch)
        crash_index(scratch)
        repaired = world.heal(approve=["mysql_repair_tables"])

    results = {r.check: r for r in killed.diagnosis.results}
    assert results["mysql_connection"].details["user"] == f"{user}@127.0.0.1", (
        "the checks logged in with the application's secrets"
    )
    executions = [e for report in (killed, repaired) for e in report.executions]
    assert [(e.action_name, e.status) for e in executions] == [
        ("mysql_kill_runaway_queries", ExecutionStatus.SUCCEEDED),
        ("mysql_repair_tables", ExecutionStatus.SUCCEEDED),
    ]
    assert watch.samples > 20, "the watch must have looked while the work ran"
    assert len(watch.processes_seen) > 10
    assert watch.hits == []

    recorded = {
        "results": [serde.unstructure(r) for r in (*killed.diagnosis.results,
                                                    *repaired.diagnosis.results)],
        "executions": [serde.unstructure(e) for e in world.registry.list_executions()],
        "audit": [serde.unstructure(a) for a in world.registry.audit_entries(1000)],
        "approvals": [serde.unstructure(a) for a in world.registry.list_approvals()],
        "backups": [serde.unstructure(b) for b in world.registry.list_backups(world.app_id)],
        "latest": [serde.unstructure(r) for r in world.registry.latest_results(world.app_id)],
    }  # fmt: skip
    text = json.dumps(recorded, default=str)
    assert all(recorded[part] for part in ("executions", "audit", "backups", "approvals"))
    assert password not in text
    assert password not in caplog.text
    for path in Path(world.backups).rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path


def test_the_watch_does_see_a_password_on_a_command_line():
    """The watch is not blind: a password passed as an argument is caught."""
    needle = f"needle-{secrets.token_hex(8)}"
    with ProcWatch(needle.encode()) as watch:
        subprocess.run(("sh", "-c", "sleep 0.2", "sh", needle), check=True)
    assert watch.hits
