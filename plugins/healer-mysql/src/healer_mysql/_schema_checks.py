"""The checks scoped to the application's own schemas (``mysql_schemas``): table integrity,
fragmentation and runaway statements."""

from __future__ import annotations

import time
from typing import Any

from universal_healer.checks import CheckContext
from universal_healer.model import CheckCategory, CheckResult, RiskLevel
from universal_healer.secrets import redact

from healer_mysql import server
from healer_mysql._base import MySQLCheck
from healer_mysql.connection import Session
from healer_mysql.parsing import ProcessRow
from healer_mysql.settings import Settings
from healer_mysql.tables import TableInfo, TableVerdict, fragmented, integrity_order

__all__ = ["LongRunningQueriesCheck", "TableFragmentationCheck", "TableIntegrityCheck"]

_SHOWN_QUERY = 120


class LongRunningQueriesCheck(MySQLCheck):
    """Client statements running for longer than the threshold (60 s by default)."""

    name = "mysql_long_running_queries"
    category = CheckCategory.PERFORMANCE
    severity = RiskLevel.MEDIUM
    description = (
        "No client statement runs longer than mysql_long_query_seconds (60); server, "
        "replication and the healer's own threads never count"
    )

    async def inspect(self, ctx: CheckContext, db: Session, settings: Settings) -> CheckResult:
        """Read the process list and keep the runaways (:meth:`ProcessRow.is_runaway`)."""
        threads = await server.processlist(db)
        runaway = [t for t in threads if t.is_runaway(settings.long_query_s, settings.schema_set)]
        killed = [t for t in threads if t.being_killed]
        hidden = list(ctx.secrets.values())
        details: dict[str, Any] = {
            "threshold_s": settings.long_query_s,
            "schemas": list(settings.schemas) if settings.schemas else None,
            "threads": [_thread(t, hidden) for t in runaway],
            "being_killed": [_thread(t, hidden) for t in killed],
        }
        scope = f" in {', '.join(settings.schemas)}" if settings.schemas else ""
        if not runaway:
            unwinding = f"; {len(killed)} killed and still unwinding" if killed else ""
            return ctx.passed(
                f"no statement{scope} runs longer than {settings.long_query_s:g} s{unwinding}",
                **details,
            )
        listed = ", ".join(f"thread {t.id} ({t.user}, {t.time} s)" for t in runaway[:5])
        more = f" and {len(runaway) - 5} more" if len(runaway) > 5 else ""
        return ctx.fail(
            f"{len(runaway)} statement(s){scope} running longer than "
            f"{settings.long_query_s:g} s: {listed}{more}",
            suggested_fix="KILL QUERY them (the healer proposes it), then find out why they "
            "run so long (EXPLAIN, a missing index, a lock)",
            **details,
        )


def _thread(thread: ProcessRow, hidden: list[str]) -> dict[str, Any]:
    query = (thread.info or "")[:_SHOWN_QUERY]
    return {
        "id": thread.id,
        "user": thread.user,
        "host": thread.host,
        "db": thread.db,
        "command": thread.command,
        "time_s": thread.time,
        "state": thread.state,
        "query": redact(query, hidden),
    }


class TableIntegrityCheck(MySQLCheck):
    """``CHECK TABLE ... QUICK`` over the application's tables, bounded in count and time."""

    name = "mysql_table_integrity"
    category = CheckCategory.DATABASE
    severity = RiskLevel.HIGH
    description = (
        "CHECK TABLE ... QUICK finds no corrupt table in the application's schemas "
        "(at most mysql_check_tables_max tables, for mysql_check_tables_seconds)"
    )
    timeout = 90.0
    query_timeout = 75.0  # one CHECK TABLE statement of up to ten tables

    async def inspect(self, ctx: CheckContext, db: Session, settings: Settings) -> CheckResult:
        """List the tables (least recently checked first) and check as many as allowed."""
        schemas = await server.list_schemas(db, settings)
        tables = await server.list_tables(db, schemas.present)
        # InnoDB records no check time: an hourly rotation moves a bounded run along them.
        ordered = integrity_order(tables, rotation=int(time.time() // 3600))
        chosen = ordered[: settings.check_tables_max]
        verdicts, unchecked = await server.check_tables(
            db, chosen, budget_s=settings.check_tables_s
        )
        by_name = {(t.schema, t.name): t for t in tables}
        corrupt = [
            _corrupt_entry(v, by_name.get((v.schema, v.table)))
            for v in verdicts
            if v.verdict == "corrupt"
        ]
        checked = sum(1 for v in verdicts if v.verdict in ("ok", "corrupt"))
        details: dict[str, Any] = {
            "schemas": list(schemas.present),
            "missing_schemas": list(schemas.missing),
            "tables": len(tables),
            "checked": checked,
            "checked_tables": [
                f"{v.schema}.{v.table}" for v in verdicts if v.verdict in ("ok", "corrupt")
            ],
            "not_checked": len(tables) - len(chosen) + unchecked,
            "unsupported": [
                f"{v.schema}.{v.table}" for v in verdicts if v.verdict == "unsupported"
            ],
            "corrupt": corrupt,
        }
        if corrupt:
            return ctx.fail(
                _corrupt_message(corrupt), suggested_fix=_repair_advice(corrupt), **details
            )
        if schemas.missing:
            return ctx.warn(
                f"configured schema(s) {', '.join(schemas.missing)} do not exist; "
                f"{checked} table(s) of the others are sound",
                suggested_fix="correct the application's mysql_schemas metadata",
                **details,
            )
        left = details["not_checked"]
        rest = f"; {left} left for later runs (least recently checked go first)" if left else ""
        return ctx.passed(
            f"{checked} of {len(tables)} table(s) checked, none corrupt{rest}", **details
        )


def _corrupt_entry(verdict: TableVerdict, table: TableInfo | None) -> dict[str, Any]:
    return {
        "schema": verdict.schema,
        "table": verdict.table,
        "engine": table.engine if table else None,
        "crash_marked": bool(table and table.crash_marked),
        "repairable": bool(table and table.repairable),
        "messages": list(verdict.messages[-6:]),
    }


def _corrupt_message(corrupt: list[dict[str, Any]]) -> str:
    named = ", ".join(
        f"{t['schema']}.{t['table']} ({t['engine'] or 'engine unknown'})" for t in corrupt[:5]
    )
    more = f" and {len(corrupt) - 5} more" if len(corrupt) > 5 else ""
    return f"{len(corrupt)} corrupt table(s): {named}{more}"


def _repair_advice(corrupt: list[dict[str, Any]]) -> str:
    innodb = [f"{t['schema']}.{t['table']}" for t in corrupt if not t["repairable"]]
    if not innodb:
        return (
            "REPAIR TABLE them after a dump of their schema (the healer proposes it; REPAIR "
            "may drop rows it cannot read, and says how many)"
        )
    return (
        f"cannot heal {', '.join(innodb)} by REPAIR TABLE: InnoDB (or an engine that cannot "
        "be told) does not repair that way. Restore the table from a backup, or dump what "
        "can be read with innodb_force_recovery and reload it; the healer proposes nothing "
        "for this finding while such a table is in it"
    )


class TableFragmentationCheck(MySQLCheck):
    """Tables holding much more free space than their data (after many deletes)."""

    name = "mysql_table_fragmentation"
    category = CheckCategory.PERFORMANCE
    severity = RiskLevel.LOW
    description = (
        "No table has DATA_FREE over mysql_fragmentation_min_bytes (64 MiB) and over "
        "mysql_fragmentation_ratio (0.5) of its data"
    )

    async def inspect(self, ctx: CheckContext, db: Session, settings: Settings) -> CheckResult:
        """``DATA_FREE`` against ``DATA_LENGTH`` of every table in the application's schemas."""
        schemas = await server.list_schemas(db, settings)
        tables = await server.list_tables(db, schemas.present)
        found = fragmented(
            tables,
            min_bytes=settings.fragmentation_min_bytes,
            ratio=settings.fragmentation_ratio,
        )
        details: dict[str, Any] = {
            "schemas": list(schemas.present),
            "min_bytes": settings.fragmentation_min_bytes,
            "ratio": settings.fragmentation_ratio,
            "tables": [
                {
                    "schema": t.schema,
                    "table": t.name,
                    "engine": t.engine,
                    "data_length": t.data_length,
                    "data_free": t.data_free,
                }
                for t in found
            ],
        }
        if not found:
            return ctx.passed(f"none of {len(tables)} table(s) is fragmented", **details)
        free = sum(t.data_free for t in found)
        named = ", ".join(f"{t.schema}.{t.name}" for t in found[:5])
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        return ctx.warn(
            f"{len(found)} fragmented table(s) hold {free} bytes free: {named}{more}",
            suggested_fix="OPTIMIZE TABLE them (the healer proposes it; it locks or rebuilds "
            "each table while it runs)",
            **details,
        )
