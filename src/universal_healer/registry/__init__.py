"""The registry: servers, applications, diagnoses, plugins, the audit log, and the healing
engine's executions, approvals and backups, in one database.

The database is a URL (an SQLite file by default; PostgreSQL and MySQL for fleets). Open it with
:func:`open_registry`, which brings the schema up to date; :class:`Registry` is the only code
that reads or writes it. Schema versions live in :mod:`universal_healer.registry.migrations`.
The legacy WordPress healer's ``wp_sites`` comes in with :func:`apply_legacy_migration`
(checked and undone by :func:`check_legacy_migration` and :func:`rollback_legacy_migration`).
"""

from universal_healer.registry._controls import PAUSE_KEY
from universal_healer.registry._database import (
    connect_database,
    default_database_url,
    redact_url,
)
from universal_healer.registry._legacy import (
    LegacyReport,
    LegacyRollback,
    apply_legacy_migration,
    check_legacy_migration,
    rollback_legacy_migration,
)
from universal_healer.registry._records import AuditEntry, BreakerRecord, PluginInfo, Server
from universal_healer.registry._servers import TrustedKey
from universal_healer.registry._store import Registry, open_registry

__all__ = [
    "PAUSE_KEY",
    "AuditEntry",
    "BreakerRecord",
    "LegacyReport",
    "LegacyRollback",
    "PluginInfo",
    "Registry",
    "Server",
    "TrustedKey",
    "apply_legacy_migration",
    "check_legacy_migration",
    "connect_database",
    "default_database_url",
    "open_registry",
    "redact_url",
    "rollback_legacy_migration",
]
