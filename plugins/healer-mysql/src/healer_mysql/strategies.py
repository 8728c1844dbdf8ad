"""The MySQL plugin's healing strategies, and :data:`STRATEGIES`, the catalogue of them.

Every action runs SQL through a :class:`~universal_healer.model.CallableStep` that logs in as
the checks did (:func:`~healer_mysql.connection.login_for_action`) and re-reads the server
before it acts: a table's engine before ``REPAIR TABLE``, a thread's statement before
``KILL QUERY``. ``propose`` itself does no I/O; it builds the action from the finding.

- ``mysql_optimize_tables`` answers ``mysql_table_fragmentation`` (MEDIUM): ``OPTIMIZE TABLE``.
- ``mysql_repair_tables`` answers ``mysql_table_integrity`` (HIGH): ``REPAIR TABLE``, only for
  MyISAM, Aria, ARCHIVE and CSV tables, after a dump.
- ``mysql_kill_runaway_queries`` answers ``mysql_long_running_queries`` (MEDIUM):
  ``KILL QUERY <id>``.
- ``mysql_restart_service`` answers ``mysql_connection`` when no server answers (HIGH):
  ``systemctl restart <unit>``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

import attrs
from universal_healer.hosts.base import Host
from universal_healer.model import (
    Application,
    CallableStep,
    CheckResult,
    CheckStatus,
    HealingAction,
    RiskLevel,
)
from universal_healer.strategies import HealingStrategy

from healer_mysql import server
from healer_mysql.checks import SERVICE_UNITS
from healer_mysql.connection import Session, login_for_action, open_session
from healer_mysql.parsing import ProcessRow
from healer_mysql.settings import Settings

__all__ = [
    "STRATEGIES",
    "KillRunawayQueries",
    "OptimizeFragmentedTables",
    "RepairCrashedTables",
    "RestartService",
    "StepFailedError",
]

StepRun = Callable[[Host, Application], Awaitable[str]]


class StepFailedError(Exception):
    """A step did its work and the server said it did not succeed; the message says what."""


@attrs.frozen
class _Table:
    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


def _tables(entries: object) -> list[_Table]:
    """Tables named in a finding's details (a list of {"schema", "table"} objects)."""
    if not isinstance(entries, list | tuple):
        return []
    return [
        _Table(entry["schema"], entry["table"])
        for entry in entries
        if isinstance(entry, Mapping)
        and isinstance(entry.get("schema"), str)
        and isinstance(entry.get("table"), str)
    ]


def _named(tables: Sequence[object], limit: int = 8) -> str:
    shown = ", ".join(map(str, tables[:limit]))
    return shown + (f" and {len(tables) - limit} more" if len(tables) > limit else "")


# --------------------------------------------------------------------------------------------
# OPTIMIZE TABLE


async def _admin_each(
    db: Session, verb: str, tables: Sequence[_Table]
) -> tuple[list[str], list[str]]:
    """Run ``verb TABLE`` on each table: one line of what the server said per table, and the
    tables it did not succeed on."""
    lines: list[str] = []
    failed: list[str] = []
    for table in tables:
        outcome = await server.admin(db, verb, table.schema, table.name)
        said = "; ".join((*outcome.messages, outcome.status or "no status"))
        lines.append(f"{table}: {said}")
        if not outcome.ok:
            failed.append(str(table))
    return lines, failed


def _optimize(tables: Sequence[_Table]) -> StepRun:
    async def run(host: Host, app: Application) -> str:
        login = await login_for_action(host, app)
        async with open_session(host, login, timeout=3600.0) as db:
            lines, failed = await _admin_each(db, "OPTIMIZE", tables)
        if failed:
            raise StepFailedError(
                f"OPTIMIZE TABLE failed for {', '.join(failed)}: {'; '.join(lines)}"
            )
        return "\n".join(lines)

    return run


class OptimizeFragmentedTables(HealingStrategy):
    """``OPTIMIZE TABLE`` each fragmented table: MyISAM and Aria are rewritten in place (the
    table is locked meanwhile), InnoDB is rebuilt online (``recreate + analyze``)."""

    name = "mysql_optimize_tables"
    fixes = ("mysql_table_fragmentation",)
    description = "OPTIMIZE TABLE the fragmented tables (MEDIUM)"

    def propose(self, result: CheckResult, app: Application) -> HealingAction | None:
        """One step per finding, optimizing every table it lists."""
        tables = _tables(result.details.get("tables"))
        if not tables:
            return None
        return HealingAction(
            name=self.name,
            description=f"OPTIMIZE TABLE {_named(tables)} to give back their free space",
            risk=RiskLevel.MEDIUM,
            changes_data=False,  # every row stays as it was: nothing to restore
            check=result.check,
            steps=[
                CallableStep(
                    description=f"OPTIMIZE TABLE {_named(tables, len(tables))}",
                    run=_optimize(tables),
                    timeout=3600.0,
                )
            ],
            estimated_duration_s=30.0 * len(tables),
        )


# --------------------------------------------------------------------------------------------
# REPAIR TABLE


def _repair(tables: Sequence[_Table]) -> StepRun:
    async def run(host: Host, app: Application) -> str:
        login = await login_for_action(host, app)
        async with open_session(host, login, timeout=3600.0) as db:
            listed = {
                (t.schema, t.name): t
                for t in await server.list_tables(db, sorted({t.schema for t in tables}))
            }
            for table in tables:
                found = listed.get((table.schema, table.name))
                if found is None:
                    raise StepFailedError(f"{table} is no longer there: nothing repaired")
                if not found.repairable:
                    # The finding said otherwise; the server has the last word. Never InnoDB.
                    raise StepFailedError(
                        f"refusing REPAIR TABLE {table}: its engine is "
                        f"{found.engine or 'unknown'}, which REPAIR TABLE does not repair"
                    )
            lines, failed = await _admin_each(db, "REPAIR", tables)
        if failed:
            raise StepFailedError(
                f"REPAIR TABLE did not succeed for {', '.join(failed)}: {'; '.join(lines)}"
            )
        return "\n".join(lines)

    return run


class RepairCrashedTables(HealingStrategy):
    """``REPAIR TABLE`` the corrupt tables, after a dump of their schemas; only when every one
    of them is of an engine REPAIR applies to. An InnoDB table in the finding means no action:
    the finding's suggested fix says why and what to do instead."""

    name = "mysql_repair_tables"
    fixes = ("mysql_table_integrity",)
    description = "REPAIR TABLE crashed MyISAM/Aria/ARCHIVE/CSV tables after a dump (HIGH)"

    def propose(self, result: CheckResult, app: Application) -> HealingAction | None:
        """An action when the finding lists corrupt tables and REPAIR applies to each."""
        if result.status is not CheckStatus.FAIL:
            return None
        corrupt = result.details.get("corrupt")
        tables = _tables(corrupt)
        if not tables or not isinstance(corrupt, list) or len(tables) != len(corrupt):
            return None
        if not all(isinstance(entry, Mapping) and entry.get("repairable") is True
                   for entry in corrupt):  # fmt: skip
            return None
        return HealingAction(
            name=self.name,
            description=(
                f"REPAIR TABLE {_named(tables)} after a dump of their schemas (REPAIR may drop "
                "rows it cannot read; the dump keeps what could be read before)"
            ),
            risk=RiskLevel.HIGH,
            check=result.check,
            requires_backup=True,
            steps=[
                CallableStep(
                    description=f"REPAIR TABLE {_named(tables, len(tables))}",
                    run=_repair(tables),
                    timeout=3600.0,
                )
            ],
            estimated_duration_s=60.0 * len(tables),
        )


# --------------------------------------------------------------------------------------------
# KILL QUERY


@attrs.frozen
class _Target:
    id: int
    user: str
    time: int


def _targets(entries: object) -> list[_Target]:
    if not isinstance(entries, list | tuple):
        return []
    targets = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        thread, user, seconds = entry.get("id"), entry.get("user"), entry.get("time_s", 0)
        if (
            isinstance(thread, int) and not isinstance(thread, bool) and thread > 0
            and isinstance(user, str) and isinstance(seconds, int)
        ):  # fmt: skip
            targets.append(_Target(thread, user, seconds))
    return targets


def _still_running(target: _Target, now: Mapping[int, ProcessRow]) -> bool:
    """The same statement still runs: a new one on that connection would have started the
    clock again, and a killed one shows ``Killed`` while it unwinds."""
    row = now.get(target.id)
    return (
        row is not None
        and row.user == target.user
        and row.command in ("Query", "Execute")
        and row.time >= target.time
    )


def _kill(targets: Sequence[_Target], wait_s: float) -> StepRun:
    async def run(host: Host, app: Application) -> str:
        settings = Settings.from_metadata(app.metadata)
        login = await login_for_action(host, app)
        said: list[str] = []
        killed: list[_Target] = []
        async with open_session(host, login, timeout=60.0) as db:
            now = {row.id: row for row in await server.processlist(db)}
            for target in targets:
                row = now.get(target.id)
                if row is None or not _still_running(target, now):
                    said.append(f"thread {target.id}: its statement had already ended")
                    continue
                if not row.is_runaway(settings.long_query_s, settings.schema_set):
                    # Same rules as the check: never a server, replication or maintenance
                    # thread, never outside the application's schemas.
                    said.append(f"thread {target.id}: not a runaway by the check's rules; left")
                    continue
                if await server.kill_query(db, target.id):
                    killed.append(target)
                    said.append(f"thread {target.id} ({row.user}, {row.time} s): KILL QUERY sent")
                else:
                    said.append(f"thread {target.id}: gone before KILL QUERY")
            deadline = time.monotonic() + wait_s
            while True:
                now = {row.id: row for row in await server.processlist(db)}
                remaining = [t.id for t in killed if _still_running(t, now)]
                if not remaining or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        if remaining:
            raise StepFailedError(
                f"thread(s) {', '.join(map(str, remaining))} still run their statement "
                f"{wait_s:g} s after KILL QUERY; " + "; ".join(said)
            )
        return "; ".join(said) + ("; none of them runs its statement any more" if killed else "")

    return run


class KillRunawayQueries(HealingStrategy):
    """``KILL QUERY`` each runaway statement: the statement stops (a transaction it was in
    rolls back), the client's connection stays. Server, replication and table-maintenance
    threads and the healer's own connection are never touched."""

    name = "mysql_kill_runaway_queries"
    fixes = ("mysql_long_running_queries",)
    description = "KILL QUERY the runaway statements and wait until they are gone (MEDIUM)"
    wait_s: ClassVar[float] = 10.0

    def propose(self, result: CheckResult, app: Application) -> HealingAction | None:
        """An action naming each runaway thread the finding lists."""
        targets = _targets(result.details.get("threads"))
        if not targets:
            return None
        ids = ", ".join(str(t.id) for t in targets)
        return HealingAction(
            name=self.name,
            description=f"KILL QUERY the runaway statement(s) of thread(s) {ids}",
            risk=RiskLevel.MEDIUM,
            changes_data=False,  # every row stays as it was: nothing to restore
            check=result.check,
            steps=[
                CallableStep(
                    description=f"KILL QUERY {ids}, then wait until they are gone",
                    run=_kill(targets, self.wait_s),
                    timeout=self.wait_s + 60.0,
                )
            ],
            estimated_duration_s=5.0,
        )


# --------------------------------------------------------------------------------------------
# systemctl restart


def _restart(unit: str) -> StepRun:
    async def run(host: Host, app: Application) -> str:
        done = await host.run(("systemctl", "restart", unit), timeout=300.0)
        output = (done.stdout + done.stderr).decode("utf-8", errors="replace").strip()
        if not done.ok:
            raise StepFailedError(
                f"systemctl restart {unit} exited with status {done.exit_status}: {output}"
            )
        return f"systemctl restart {unit}: done{': ' + output if output else ''}"

    return run


class RestartService(HealingStrategy):
    """``systemctl restart`` the server's unit when no server answers on this host. Only when
    systemd is PID 1 and knows the unit; otherwise nothing is proposed, and the finding's
    suggested fix says why (on a machine whose PID 1 is not systemd, say)."""

    name = "mysql_restart_service"
    fixes = ("mysql_connection",)
    description = "systemctl restart the server's unit when the local server does not answer (HIGH)"

    def propose(self, result: CheckResult, app: Application) -> HealingAction | None:
        """An action when the finding says the local server is unreachable and systemd has
        its unit."""
        details: Mapping[str, Any] = result.details
        service = details.get("service")
        if (
            result.status is not CheckStatus.FAIL
            or details.get("reachable") is not False
            or details.get("server_on_this_host") is not True
            or not isinstance(service, Mapping)
            or service.get("manager") != "systemd"
            or service.get("unit") not in SERVICE_UNITS
        ):
            return None
        unit = str(service["unit"])
        return HealingAction(
            name=self.name,
            description=f"restart the database server: systemctl restart {unit}",
            risk=RiskLevel.HIGH,
            changes_data=False,  # every row stays as it was: nothing to restore
            check=result.check,
            steps=[
                CallableStep(
                    description=f"systemctl restart {unit}", run=_restart(unit), timeout=330.0
                )
            ],
            estimated_duration_s=30.0,
        )


STRATEGIES: tuple[type[HealingStrategy], ...] = (
    OptimizeFragmentedTables,
    RepairCrashedTables,
    KillRunawayQueries,
    RestartService,
)
"""Every strategy this plugin has; ``healer_get_strategies`` returns one of each for ``mysql``."""
