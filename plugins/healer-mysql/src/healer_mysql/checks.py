"""The MySQL plugin's diagnostic checks, and :data:`CHECKS`, the catalogue of them.

The connection and server-wide checks are here; the ones scoped to the application's schemas
(integrity, fragmentation, runaway statements) in :mod:`healer_mysql._schema_checks`, the
base they share in :mod:`healer_mysql._base`.

Every check logs in as :mod:`healer_mysql.connection` describes (the application's secrets, or
the local socket) and asks the server through the host's own ``mysql`` client, so it works the
same locally and over SSH. Every check but ``mysql_connection`` depends on it: when the server
cannot be reached, their findings are not acted on. Thresholds are class attributes, tunable
by subclassing; the per-application knobs are metadata (:mod:`healer_mysql.settings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from universal_healer._mysql import MySQLClientError
from universal_healer.checks import CheckContext, DiagnosticCheck
from universal_healer.exceptions import RemoteError
from universal_healer.hosts.base import Host
from universal_healer.model import CheckCategory, CheckResult, CheckStatus, RiskLevel
from universal_healer.secrets import redact

from healer_mysql._base import MySQLCheck, grade, int_value, percent, session_for
from healer_mysql._schema_checks import (
    LongRunningQueriesCheck,
    TableFragmentationCheck,
    TableIntegrityCheck,
)
from healer_mysql.connection import CredentialsError, Session, login_for_check
from healer_mysql.parsing import client_error_code, parse_systemctl_show, parse_version, unhex
from healer_mysql.settings import Settings

__all__ = [
    "CHECKS",
    "SERVICE_UNITS",
    "UNREACHABLE_ERRORS",
    "AbortedConnectionsCheck",
    "BufferPoolHitRatioCheck",
    "ConnectionCheck",
    "ConnectionsUsedCheck",
    "DatadirDiskCheck",
    "LongRunningQueriesCheck",
    "MySQLCheck",
    "SlowQueryLogCheck",
    "TableFragmentationCheck",
    "TableIntegrityCheck",
    "VersionUptimeCheck",
    "service_manager",
]

UNREACHABLE_ERRORS = frozenset({2002, 2003, 2006, 2013})
"""Client errors that mean no server answered (no socket, connection refused, gone away)."""

SERVICE_UNITS = ("mariadb.service", "mysql.service", "mysqld.service")
"""The systemd units a MySQL or MariaDB server runs as, in the order they are tried."""

# --------------------------------------------------------------------------------------------
# Reaching the server


async def service_manager(host: Host) -> dict[str, Any]:
    """How the server could be restarted on ``host``: systemd's unit for it, or why not."""
    comm_path = "/proc/1/comm"
    read = (await host.read_files([comm_path], max_bytes=64))[comm_path]
    pid1 = (read.data or b"").decode("utf-8", errors="replace").strip() or None
    if pid1 != "systemd":
        return {"manager": None, "pid1": pid1, "unit": None}
    shown = await host.run(
        ("systemctl", "show", "--property=Id", "--property=LoadState", "--property=ActiveState",
         *SERVICE_UNITS),
        timeout=30,
    )  # fmt: skip
    units = parse_systemctl_show(shown.text) if shown.ok else []
    loaded = [u for u in units if u.get("LoadState") == "loaded" and u.get("Id")]
    unit = loaded[0] if loaded else None
    return {
        "manager": "systemd",
        "pid1": pid1,
        "unit": unit["Id"] if unit else None,
        "active_state": unit.get("ActiveState") if unit else None,
    }


class ConnectionCheck(DiagnosticCheck):
    """The server answers a login: everything else depends on it."""

    name = "mysql_connection"
    category = CheckCategory.DATABASE
    severity = RiskLevel.CRITICAL
    description = "The server accepts the application's login and answers a query"

    async def run(self, ctx: CheckContext) -> CheckResult:
        """Log in and ask the server its version, our connection id and who we are."""
        hidden = ctx.secrets.values()
        try:
            login = await login_for_check(ctx.host, ctx.app, ctx.secrets)
        except CredentialsError as err:
            return ctx.fail(str(err), suggested_fix="correct the application's MYSQL_* secrets")
        except MySQLClientError as err:
            return ctx.error(err.reason)
        try:
            db = await session_for(ctx, login, timeout=15.0)
            rows = await db.rows(
                "SELECT VERSION(), CONNECTION_ID(), HEX(CURRENT_USER())", what="logging in"
            )
        except MySQLClientError as err:
            return await self._unreachable(ctx, login.via, login.source, login.on_this_host,
                                           redact(err.reason, hidden))  # fmt: skip
        if len(rows) != 1 or len(rows[0]) != 3:
            return ctx.error("the server gave an unexpected answer to a login query")
        version, _, user = rows[0]
        return ctx.passed(
            f"connected to {version} via {login.via} as {unhex(user)} ({login.source})",
            version=version,
            via=login.via,
            login=login.source,
            user=unhex(user),
        )

    async def _unreachable(
        self, ctx: CheckContext, via: str, source: str, local: bool, reason: str
    ) -> CheckResult:
        code = client_error_code(reason)
        reachable = code not in UNREACHABLE_ERRORS
        details: dict[str, Any] = {
            "via": via, "login": source, "error_code": code, "reachable": reachable,
            "server_on_this_host": local,
        }  # fmt: skip
        if reachable:
            fix = (
                "the server answered but refused the login: check the application's "
                "MYSQL_USER/MYSQL_PASSWORD secrets and the user's grants"
                if code in (1044, 1045, 1698)
                else "read the error above; the server answered but the session failed"
            )
        elif not local:
            fix = f"the server at {via} is on another machine: start it there"
        else:
            try:
                service = await service_manager(ctx.host)
            except RemoteError as err:
                service = {"manager": None, "pid1": None, "unit": None, "error": str(err)}
            details["service"] = service
            fix = _start_advice(service)
        return ctx.fail(
            f"cannot reach the server via {via}: {reason}", suggested_fix=fix, **details
        )


def _start_advice(service: dict[str, Any]) -> str:
    if service.get("manager") == "systemd" and service.get("unit"):
        return f"restart it: systemctl restart {service['unit']} (the healer proposes it)"
    if service.get("manager") == "systemd":
        return (
            f"systemd runs but knows none of {', '.join(SERVICE_UNITS)}: start the server the "
            "way this machine installs it"
        )
    pid1 = service.get("pid1") or "unknown"
    return (
        f"the healer cannot restart it: PID 1 is {pid1!r}, not systemd, so there is no service "
        "manager to ask; start the server the way this machine does (for a bare mariadbd: "
        "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd)"
    )


# --------------------------------------------------------------------------------------------
# The server as a whole


class VersionUptimeCheck(MySQLCheck):
    """The version running and how long it has been up; a recent start may be a crash."""

    name = "mysql_version_uptime"
    category = CheckCategory.SYSTEM
    severity = RiskLevel.LOW
    description = "Server version and uptime (WARN when it started in the last 10 minutes)"
    recent_start_s: ClassVar[int] = 600

    async def inspect(self, ctx: CheckContext, db: Session, settings: Settings) -> CheckResult:
        """``VERSION()`` and the ``Uptime`` status."""
        version_rows, status = await db.results(
            ["SELECT VERSION(), @@version_comment", "SHOW GLOBAL STATUS LIKE 'Uptime'"],
            what="reading the version and uptime",
        )
        raw = version_rows[0][0] if version_rows and version_rows[0] else ""
        parsed = parse_version(raw)
        uptime = int(status[0][1]) if status and status[0][1:] and status[0][1].isdigit() else 0
        details = {
            "version": raw,
            "flavour": parsed.flavour if parsed else None,
            "version_number": parsed.short if parsed else None,
            "comment": version_rows[0][1] if version_rows and len(version_rows[0]) > 1 else "",
            "uptime_s": uptime,
        }
        shown = f"{parsed.flavour} {parsed.short}" if parsed else raw or "an unknown version"
        if uptime < self.recent_start_s:
            return ctx.warn(
                f"{shown} started only {uptime} s ago",
                suggested_fix="if nobody restarted it, read the server's error log for a crash",
                **details,
            )
        return ctx.passed(f"{shown}, up {_duration(uptime)}", **details)


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    return f"{days} d {hours} h" if days else f"{hours} h {rest // 60} min"


def _pairs(*rowsets: Sequence[Sequence[str]]) -> dict[str, str]:
    """``SHOW STATUS``/``SHOW VARIABLES`` rows as one name -> value mapping (names lowercased)."""
    return {row[0].lower(): row[1] for rows in rowsets for row in rows if len(row) == 2}


class ConnectionsUsedCheck(MySQLCheck):
    """Connections in use against ``max_connections``: the next client is refused at 100 %."""

    name = "mysql_connections"
    category = CheckCategory.PERFORMANCE
    severity = RiskLevel.HIGH
    description = "Connections in use vs max_connections (WARN > 80 %, FAIL > 95 %)"
    warn_above: ClassVar[float] = 80.0
    fail_above: ClassVar[float] = 95.0

    async def inspect(self, ctx: CheckContext, db: Session, settings: Settings) -> CheckResult:
        """``Threads_connected`` and ``Max_used_connections`` against ``max_connections``."""
        status, variables = await db.results(
            [
                "SHOW GLOBAL STATUS WHERE Variable_name IN "
                "('Threads_connected', 'Max_used_connections')",
                "SHOW GLOBAL VARIABLES LIKE 'max_connections'",
            ],
            what="reading the connection counts",
        )
        pairs = _pairs(status, variables)
        connected, limit = (
            int_value(pairs, "threads_connected"),
            int_value(pairs, "max_connections"),
        )
        if connected is None or not limit:
            return ctx.error("the server did not say Threads_connected and max_connections")
        used = percent(connected, limit)
        details = {
            "threads_connected": connected,
            "max_connections": limit,
            "max_used_connections": int_value(pairs, "max_used_connections"),
            "used_percent": round(used, 1),
        }
        status_ = grade(used, self.warn_above, self.fail_above)
        fix = (
            None
            if status_ is CheckStatus.PASS
            else "find what holds the connections (SHOW PROCESSLIST: idle ones, a pool too "
            "large, a leak), or raise max_connections if the server has the memory"
        )
        return ctx.result(
            status_,
            f"{connected} of {limit} connections in use ({used:.0f} %)",
            details=details,
            suggested_fix=fix,
        )


class SlowQueryLogCheck(MySQLCheck):
    """Whether slow statements are recorded, and how many there were since the start."""

    name = "mysql_slow_query_log"
    category = CheckCategory.PERFORMANCE
    severity = RiskLevel.LOW
    description = "Slow query log on, and slow queries since start (Slow_queries) below 1 %"
    warn_share_above: ClassVar[float] = 1.0
    min_slow: ClassVar[int] = 100

    async def inspect(self, ctx: CheckContext, db: Session, settings: Settings) -> CheckResult:
        """``slow_query_log``, ``long_query_time`` and the ``Slow_queries`` count."""
        variables, status = await db.results(
            [
                "SHOW GLOBAL VARIABLES WHERE Variable_name IN "
                "('slow_query_log', 'long_query_time', 'slow_query_log_file', 'log_output')",
                "SHOW GLOBAL STATUS WHERE Variable_name IN ('Slow_queries', 'Questions')",
            ],
            what="reading the slow query log settings",
        )
        pairs = _pairs(variables, status)
        enabled = pairs.get("slow_query_log", "").upper() in ("ON", "1")
        slow, questions = int_value(pairs, "slow_queries") or 0, int_value(pairs, "questions") or 0
        share = percent(slow, questions)
        details = {
            "slow_query_log": enabled,
            "long_query_time_s": pairs.get("long_query_time"),
            "slow_query_log_file": pairs.get("slow_query_log_file"),
            "log_output": pairs.get("log_output"),
            "slow_queries": slow,
            "questions": questions,
            "slow_percent": round(share, 3),
        }
        counted = f"{slow} slow queries (over {pairs.get('long_query_time', '?')} s) since start"
        if slow >= self.min_slow and share > self.warn_share_above:
            return ctx.warn(
                f"{counted}: {share:.1f} % of all statements",
                suggested_fix="read the slow query log (or turn it on) and index or rewrite the "
                "statements in it",
                **details,
            )
        if not enabled:
            return ctx.warn(
                f"the slow query log is off: {counted}, none of them recorded",
                suggested_fix="turn it on to see which statements are slow: "
                "SET GLOBAL slow_query_log = ON (and slow_query_log = 1 in my.cnf)",
                **details,
            )
        return ctx.passed(f"the slow query log is on; {counted}", **details)


class BufferPoolHitRatioCheck(MySQLCheck):
    """How often InnoDB found a page in memory rather than reading it from disk."""

    name = "mysql_buffer_pool_hit_ratio"
    category = CheckCategory.PERFORMANCE
    severity = RiskLevel.MEDIUM
    description = "InnoDB buffer pool hit ratio (WARN < 95 % once 10 000 reads were requested)"
    warn_below: ClassVar[float] = 95.0
    min_requests: ClassVar[int] = 10_000

    async def inspect(self, ctx: CheckContext, db: Session, settings: Settings) -> CheckResult:
        """``Innodb_buffer_pool_read_requests`` against ``Innodb_buffer_pool_reads``."""
        status, variables = await db.results(
            [
                "SHOW GLOBAL STATUS WHERE Variable_name IN "
                "('Innodb_buffer_pool_read_requests', 'Innodb_buffer_pool_reads')",
                "SHOW GLOBAL VARIABLES LIKE 'innodb_buffer_pool_size'",
            ],
            what="reading the buffer pool counters",
        )
        pairs = _pairs(status, variables)
        requests = int_value(pairs, "innodb_buffer_pool_read_requests")
        disk = int_value(pairs, "innodb_buffer_pool_reads")
        if requests is None or disk is None:
            return ctx.passed("InnoDB is not in use on this server")
        ratio = 100.0 - percent(disk, requests) if requests else 100.0
        details = {
            "read_requests": requests,
            "disk_reads": disk,
            "hit_percent": round(ratio, 3),
            "buffer_pool_size": int_value(pairs, "innodb_buffer_pool_size"),
        }
        if requests < self.min_requests:
            return ctx.passed(
                f"only {requests} page reads requested so far: too few to judge", **details
            )
        if ratio < self.warn_below:
            return ctx.warn(
                f"InnoDB found {ratio:.1f} % of pages in memory; the rest came from disk",
                suggested_fix="raise innodb_buffer_pool_size towards the working set, if the "
                "machine has the memory",
                **details,
            )
        return ctx.passed(f"InnoDB found {ratio:.2f} % of pages in memory", **details)


class AbortedConnectionsCheck(MySQLCheck):
    """Failed connection attempts: bad passwords, clients that give up, or someone guessing."""

    name = "mysql_aborted_connections"
    category = CheckCategory.SECURITY
    severity = RiskLevel.MEDIUM
    description = "Aborted_connects relative to Connections (WARN > 10 %, FAIL > 50 %)"
    warn_above: ClassVar[float] = 10.0
    fail_above: ClassVar[float] = 50.0
    min_aborted: ClassVar[int] = 20

    async def inspect(self, ctx: CheckContext, db: Session, settings: Settings) -> CheckResult:
        """``Aborted_connects`` and ``Aborted_clients`` against ``Connections``."""
        pairs = await db.pairs(
            "SHOW GLOBAL STATUS WHERE Variable_name IN "
            "('Aborted_connects', 'Aborted_clients', 'Connections')",
            what="reading the connection counters",
        )
        aborted, attempts = int_value(pairs, "aborted_connects"), int_value(pairs, "connections")
        if aborted is None or attempts is None:
            return ctx.error("the server did not say Aborted_connects and Connections")
        share = percent(aborted, attempts)
        details = {
            "aborted_connects": aborted,
            "connections": attempts,
            "aborted_clients": int_value(pairs, "aborted_clients"),
            "aborted_percent": round(share, 2),
        }
        message = f"{aborted} of {attempts} connection attempts failed ({share:.1f} %)"
        status = grade(share, self.warn_above, self.fail_above)
        if aborted < self.min_aborted:
            status = CheckStatus.PASS
        fix = (
            None
            if status is CheckStatus.PASS
            else "read the server's error log (log_warnings >= 2 names each failure): wrong "
            "passwords in a client's configuration, or someone guessing them"
        )
        return ctx.result(status, message, details=details, suggested_fix=fix)


class DatadirDiskCheck(MySQLCheck):
    """Space on the filesystem that holds the data directory: a full disk stops all writes."""

    name = "mysql_datadir_disk"
    category = CheckCategory.SYSTEM
    severity = RiskLevel.HIGH
    description = "Space and inodes used on the datadir's filesystem (WARN > 85 %, FAIL > 95 %)"
    warn_above: ClassVar[float] = 85.0
    fail_above: ClassVar[float] = 95.0

    async def inspect(self, ctx: CheckContext, db: Session, settings: Settings) -> CheckResult:
        """``@@datadir`` from the server, its mount from the host's facts."""
        rows = await db.rows("SELECT @@datadir", what="reading the datadir")
        datadir = (rows[0][0].rstrip("/") or "/") if rows and rows[0] else ""
        if not db.login.on_this_host:
            return ctx.passed(
                f"not applicable: the server runs at {db.login.via}, not on this host",
                datadir=datadir,
            )
        mount = (await ctx.facts()).mount_for(datadir) if datadir.startswith("/") else None
        if mount is None:
            return ctx.error(f"no mounted filesystem is known for the datadir {datadir!r}")
        used, inodes = mount.used_percent, mount.inodes_used_percent
        details = {
            "datadir": datadir,
            "mountpoint": mount.mountpoint,
            "fstype": mount.fstype,
            "used_percent": round(used, 2),
            "inodes_used_percent": round(inodes, 2),
            "free_bytes": mount.free_bytes,
            "total_bytes": mount.total_bytes,
        }
        status = grade(max(used, inodes), self.warn_above, self.fail_above)
        fix = (
            None
            if status is CheckStatus.PASS
            else "free space on that filesystem (old binary logs: PURGE BINARY LOGS; dumps; "
            "logs) or grow it before the server stops writing"
        )
        return ctx.result(
            status,
            f"{used:.1f} % of space and {inodes:.1f} % of inodes used on {mount.mountpoint}, "
            f"which holds {datadir}",
            details=details,
            suggested_fix=fix,
        )


CHECKS: tuple[type[DiagnosticCheck], ...] = (
    ConnectionCheck,
    VersionUptimeCheck,
    ConnectionsUsedCheck,
    SlowQueryLogCheck,
    TableIntegrityCheck,
    BufferPoolHitRatioCheck,
    AbortedConnectionsCheck,
    LongRunningQueriesCheck,
    DatadirDiskCheck,
    TableFragmentationCheck,
)
"""Every check this plugin has; ``healer_get_checks`` returns one of each for ``mysql``."""
