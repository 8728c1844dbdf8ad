"""The MySQL plugin's hooks: declarations only, a few lines each.

Registered through the entry point ``[project.entry-points.universal_healer] mysql =
"healer_mysql.plugin"``.
"""

from __future__ import annotations

from collections.abc import Sequence

from universal_healer.backup import BackupStrategy
from universal_healer.checks import DiagnosticCheck
from universal_healer.hookspecs import hookimpl
from universal_healer.hosts.base import HostFacts
from universal_healer.model import Detection, ProbeFile, SiteProbe, StackInfo, StackKind
from universal_healer.strategies import HealingStrategy

from healer_mysql import STACK_ID, detection
from healer_mysql.backup import MySQLSchemasBackup
from healer_mysql.checks import CHECKS
from healer_mysql.strategies import STRATEGIES


@hookimpl
def healer_stacks() -> Sequence[StackInfo]:
    """MySQL / MariaDB: a database stack; Debian's ``debian.cnf`` holds a password."""
    return [
        StackInfo(
            id=STACK_ID,
            display_name="MySQL / MariaDB",
            kind=StackKind.DATABASE,
            secret_files=("debian.cnf",),
            description="A MySQL or MariaDB server, found running on the host or by its "
            "datadir or configuration",
        )
    ]


@hookimpl
def healer_probe_files() -> Sequence[ProbeFile]:
    """The datadir's markers and ``my.cnf``."""
    return detection.probe_files()


@hookimpl
def healer_detect(probe: SiteProbe) -> Detection | None:
    """A server's data directory or configuration directory."""
    return detection.detect(probe)


@hookimpl
def healer_detect_services(facts: HostFacts) -> Sequence[Detection]:
    """A running server (process, TCP 3306, its unix socket), at ``/var/lib/mysql``."""
    return detection.detect_services(facts)


@hookimpl
def healer_get_checks(stack: StackInfo) -> Sequence[DiagnosticCheck]:
    """The checks in :data:`healer_mysql.checks.CHECKS`, for ``mysql`` only."""
    return [check() for check in CHECKS] if stack.id == STACK_ID else []


@hookimpl
def healer_get_strategies(stack: StackInfo) -> Sequence[HealingStrategy]:
    """The strategies in :data:`healer_mysql.strategies.STRATEGIES`, for ``mysql`` only."""
    return [strategy() for strategy in STRATEGIES] if stack.id == STACK_ID else []


@hookimpl
def healer_get_backup(stack: StackInfo) -> BackupStrategy | None:
    """A dump of each of the application's schemas (:class:`MySQLSchemasBackup`)."""
    return MySQLSchemasBackup() if stack.id == STACK_ID else None
