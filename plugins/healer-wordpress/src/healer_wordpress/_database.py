"""Database checks: the connection, the tables, and what WordPress keeps in its options
(autoloaded data, WP-Cron's schedule, expired transients)."""

from __future__ import annotations

import posixpath
from typing import Any, ClassVar

from healer_wordpress import site
from healer_wordpress._base import (
    DB_CHECK,
    DatabaseCheck,
    WordPressCheck,
    content_dir,
    relative,
)
from universal_healer._mysql import quote_identifier
from universal_healer.checks import CheckContext
from universal_healer.model import CheckCategory, CheckResult, RiskLevel

__all__ = [
    "AutoloadSizeCheck",
    "CronCheck",
    "DatabaseConnectionCheck",
    "DatabaseTablesCheck",
    "ExpiredTransientsCheck",
    "db_now",
]

_KIB = 1024
_MIB = 1024 * _KIB


def _size(count: int) -> str:
    return f"{count / _MIB:.1f} MiB" if count >= _MIB else f"{count / _KIB:.0f} KiB"


class DatabaseConnectionCheck(WordPressCheck):
    """The database answers with wp-config.php's credentials and holds WordPress's tables."""

    name = DB_CHECK
    category = CheckCategory.DATABASE
    severity = RiskLevel.CRITICAL
    description = "WordPress's database accepts its credentials and has its options table"
    depends_on = ("wp_config",)

    async def judge(self, ctx: CheckContext, config: site.LoadedConfig) -> CheckResult:
        """Log in as WordPress does and look for ``{prefix}options``."""
        database = config.settings.get("DB_NAME")
        fix = "start the database server, or correct DB_* in wp-config.php"
        try:
            async with site.connect(ctx.host, config.settings) as db:
                rows = await db.rows(
                    "SELECT VERSION(), COUNT(*) FROM information_schema.TABLES "  # noqa: S608
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = "
                    f"X'{(db.prefix + 'options').encode().hex()}'",
                    what="connecting to the database",
                )
        except site.SiteError as err:
            return ctx.fail(f"cannot use database {database!r}: {err.reason}", suggested_fix=fix)
        version, tables = rows[0] if rows and len(rows[0]) == 2 else ("?", "0")
        if tables != "1":
            return ctx.fail(
                f"connected to {database!r}, but WordPress is not installed in it "
                f"(no {config.settings.table_prefix}options table)",
                suggested_fix="run the WordPress installer, or check $table_prefix",
                server_version=version,
            )
        return ctx.passed(
            f"connected to database {database!r} (server {version})", server_version=version
        )


_REPAIRABLE = ("MyISAM", "Aria", "ARCHIVE", "CSV")
_CHECK_OK = ("OK", "Table is already up to date")


def _like(prefix: str) -> str:
    escaped = prefix.replace("!", "!!").replace("_", "!_").replace("%", "!%")
    return f"X'{(escaped + '%').encode().hex()}' ESCAPE '!'"


def _check_problems(rows: list[list[str]], database: str) -> dict[str, list[str]]:
    """``CHECK TABLE`` rows as table -> messages for the tables that are not OK."""
    problems: dict[str, list[str]] = {}
    for row in rows:
        if len(row) < 4:
            continue
        table = row[0].removeprefix(f"{database}.")
        kind, text = row[2].lower(), row[3]
        if kind in ("error", "warning") or (kind == "status" and text not in _CHECK_OK):
            problems.setdefault(table, []).append(text)
    return problems


class DatabaseTablesCheck(DatabaseCheck):
    """No crashed MyISAM/Aria tables; InnoDB tables not badly fragmented."""

    name = "wp_database_tables"
    category = CheckCategory.DATABASE
    severity = RiskLevel.HIGH
    description = "WordPress's MyISAM/Aria tables pass CHECK TABLE; InnoDB ones are not fragmented"
    timeout: ClassVar[float | None] = 120.0
    #: An InnoDB table is fragmented past this much free space and this share of its size.
    fragmented_bytes: ClassVar[int] = 64 * _MIB
    fragmented_share: ClassVar[float] = 0.2

    async def query(
        self, ctx: CheckContext, config: site.LoadedConfig, db: site.Database
    ) -> CheckResult:
        """List the site's tables, CHECK the ones REPAIR applies to, weigh InnoDB's free space."""
        listing = await db.rows(
            "SELECT HEX(TABLE_NAME), IFNULL(ENGINE, ''), IFNULL(DATA_LENGTH, 0) + "  # noqa: S608
            "IFNULL(INDEX_LENGTH, 0), IFNULL(DATA_FREE, 0) FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' "
            f"AND TABLE_NAME LIKE {_like(db.prefix)} ORDER BY TABLE_NAME",
            what="listing the site's tables",
        )
        tables = {bytes.fromhex(r[0]).decode("utf-8", "surrogateescape"): r[1:] for r in listing}
        checkable = [name for name, row in tables.items() if row[0] in _REPAIRABLE]
        problems: dict[str, list[str]] = {}
        if checkable:
            quoted = ", ".join(quote_identifier(name) for name in checkable)
            rows = await db.rows(f"CHECK TABLE {quoted}", what="checking the site's tables")
            problems = _check_problems(rows, str(config.settings.get("DB_NAME")))
        fragmented = [
            name
            for name, (engine, size, free) in tables.items()
            if engine == "InnoDB"
            and int(free) >= self.fragmented_bytes
            and int(free) >= self.fragmented_share * max(int(size), 1)
        ]
        details: dict[str, Any] = {
            "tables": len(tables),
            "checked": len(checkable),
            "corrupt": [
                {"table": t, "engine": tables[t][0], "messages": m[:3]} for t, m in problems.items()
            ],
            "repair": [t for t in problems if tables.get(t, ("",))[0] in _REPAIRABLE],
            "optimize": fragmented,
        }
        if problems:
            shown = ", ".join(f"{t} ({tables[t][0]}: {problems[t][-1]})" for t in problems)
            return ctx.fail(
                f"{len(problems)} table(s) need repair: {shown}",
                suggested_fix=f"REPAIR TABLE {', '.join(problems)} after a database backup",
                **details,
            )
        if fragmented:
            return ctx.warn(
                f"{len(fragmented)} InnoDB table(s) are fragmented: {', '.join(fragmented)}",
                suggested_fix=f"OPTIMIZE TABLE {', '.join(fragmented)} in a quiet hour",
                **details,
            )
        return ctx.passed(
            f"{len(checkable)} MyISAM/Aria table(s) check OK; no fragmented InnoDB table "
            f"({len(tables)} tables)",
            **details,
        )


# --------------------------------------------------------------------------------------------
# Database contents


class AutoloadSizeCheck(DatabaseCheck):
    """Options loaded on every request stay small."""

    name = "wp_autoload_size"
    category = CheckCategory.PERFORMANCE
    severity = RiskLevel.MEDIUM
    description = "autoloaded options total under 800 KiB (fail over 3 MiB)"
    warn_above: ClassVar[int] = 800 * _KIB
    fail_above: ClassVar[int] = 3 * _MIB

    async def query(
        self, ctx: CheckContext, config: site.LoadedConfig, db: site.Database
    ) -> CheckResult:
        """Sum the autoloaded values and name the biggest."""
        autoload = "autoload IN ('yes', 'on', 'auto-on', 'auto')"
        options = db.table("options")
        total = await db.rows(
            f"SELECT IFNULL(SUM(LENGTH(option_value)), 0), COUNT(*) FROM {options} "  # noqa: S608
            f"WHERE {autoload}",
            what="measuring autoloaded options",
        )
        biggest = await db.rows(
            f"SELECT HEX(option_name), LENGTH(option_value) FROM {options} "  # noqa: S608
            f"WHERE {autoload} ORDER BY LENGTH(option_value) DESC LIMIT 5",
            what="finding the biggest autoloaded options",
        )
        size, count = int(total[0][0]), int(total[0][1])
        largest: list[dict[str, Any]] = [
            {"option": bytes.fromhex(r[0]).decode("utf-8", "replace"), "bytes": int(r[1])}
            for r in biggest
        ]
        details = {"bytes": size, "options": count, "largest": largest}
        named = ", ".join(f"{o['option']} ({_size(o['bytes'])})" for o in largest[:3])
        message = f"{_size(size)} in {count} autoloaded options; largest: {named}"
        fix = "stop autoloading the largest options (autoload = 'no') or remove stale ones"
        if size > self.fail_above:
            return ctx.fail(message, suggested_fix=fix, **details)
        if size > self.warn_above:
            return ctx.warn(message, suggested_fix=fix, **details)
        return ctx.passed(f"{_size(size)} in {count} autoloaded options", **details)


async def db_now(db: site.Database) -> int:
    """The database server's clock (the site's own idea of now), as a Unix time."""
    rows = await db.rows("SELECT UNIX_TIMESTAMP()", what="reading the server's clock")
    return int(rows[0][0])


def _cron_events(value: Any) -> list[tuple[int, str, str]]:
    """``(timestamp, hook, args key)`` of every event in the ``cron`` option."""
    events: list[tuple[int, str, str]] = []
    if not isinstance(value, dict):
        return events
    for timestamp, hooks in value.items():
        if not isinstance(timestamp, int) or not isinstance(hooks, dict):
            continue  # the "version" entry
        for hook, instances in hooks.items():
            keys = instances.keys() if isinstance(instances, dict) else [""]
            events.extend((timestamp, str(hook), str(key)) for key in keys)
    return events


class CronCheck(DatabaseCheck):
    """WP-Cron runs: no event overdue by more than an hour, not too many, no duplicates."""

    name = "wp_cron"
    category = CheckCategory.PERFORMANCE
    severity = RiskLevel.MEDIUM
    description = "no WP-Cron event overdue by over an hour; at most 50 events, no duplicates"
    late_after_s: ClassVar[int] = 3600
    fail_after_s: ClassVar[int] = 86400
    max_events: ClassVar[int] = 50
    max_duplicates: ClassVar[int] = 10

    async def query(
        self, ctx: CheckContext, config: site.LoadedConfig, db: site.Database
    ) -> CheckResult:
        """Read the ``cron`` option and compare with the server's clock."""
        now = await db_now(db)
        events = _cron_events(await db.value("cron"))
        overdue = sorted(e for e in events if e[0] < now - self.late_after_s)
        counts: dict[tuple[str, str], int] = {}
        for _, hook, key in events:
            counts[hook, key] = counts.get((hook, key), 0) + 1
        duplicated = sorted({hook for (hook, _), n in counts.items() if n > self.max_duplicates})
        disabled = config.settings.flag("DISABLE_WP_CRON")
        details: dict[str, Any] = {
            "events": len(events),
            "overdue": [{"hook": h, "late_s": now - t} for t, h, _ in overdue[:10]],
            "overdue_count": len(overdue),
            "duplicated_hooks": duplicated,
            "disabled": disabled,
        }
        findings: list[str] = []
        if overdue:
            late = now - overdue[0][0]
            findings.append(
                f"{len(overdue)} event(s) overdue by more than an hour (oldest: {overdue[0][1]}, "
                f"{late // 3600} h late)"
            )
        if len(events) > self.max_events:
            findings.append(f"{len(events)} scheduled events (over {self.max_events})")
        if duplicated:
            findings.append(f"hooks scheduled over {self.max_duplicates} times: {duplicated}")
        if not findings:
            return ctx.passed(f"{len(events)} scheduled event(s), none overdue", **details)
        fix = (
            "WP-Cron is disabled (DISABLE_WP_CRON): run wp-cron.php from a system cron job"
            if disabled
            else "make sure the site gets traffic or run wp-cron.php from a system cron job"
        )
        message = "; ".join(findings) + (" (DISABLE_WP_CRON is set)" if disabled else "")
        if overdue and now - overdue[0][0] > self.fail_after_s:
            return ctx.fail(message, suggested_fix=fix, **details)
        return ctx.warn(message, suggested_fix=fix, **details)


class ExpiredTransientsCheck(DatabaseCheck):
    """Expired transients do not pile up in the options table."""

    name = "wp_expired_transients"
    category = CheckCategory.PERFORMANCE
    severity = RiskLevel.LOW
    description = "at most 100 expired transients wait in the options table"
    warn_above: ClassVar[int] = 100

    async def query(
        self, ctx: CheckContext, config: site.LoadedConfig, db: site.Database
    ) -> CheckResult:
        """Count expired ``_transient_timeout_*`` and ``_site_transient_timeout_*`` rows."""
        rows = await db.rows(
            f"SELECT COUNT(*) FROM {db.table('options')} WHERE "  # noqa: S608 - quoted name
            "(option_name LIKE '!_transient!_timeout!_%' ESCAPE '!' OR "
            "option_name LIKE '!_site!_transient!_timeout!_%' ESCAPE '!') "
            "AND CAST(option_value AS UNSIGNED) < UNIX_TIMESTAMP()",
            what="counting expired transients",
        )
        expired = int(rows[0][0])
        cache = posixpath.join(content_dir(ctx, config), "cache")
        stat = await ctx.host.stat(cache)
        details: dict[str, Any] = {
            "expired": expired,
            "cache_dir": relative(ctx, cache) if stat is not None and stat.is_dir else None,
        }
        if expired > self.warn_above:
            return ctx.warn(
                f"{expired} expired transients are still stored",
                suggested_fix="delete expired transients (WordPress only does it once a day)",
                **details,
            )
        return ctx.passed(f"{expired} expired transient(s)", **details)
