"""Versioned schema migrations: applied forward on open, checkable, and reversible.

The database records what it has applied in ``schema_migrations`` (version, name, applied_at).
:data:`MIGRATIONS` lists every migration in order; to change the schema, append one::

    def _add_healing_output(db: peewee.Database) -> None:
        SchemaMigrator.from_database(db).add_column(...)  # playhouse.migrate helpers


    MIGRATIONS = (
        Migration(1, "create the registry tables", _create_v1, _drop_v1),
        ...,
        Migration(3, "record healing output", _add_healing_output, _drop_healing_output),
    )

and change :mod:`~universal_healer.registry.models` to match (a test compares the two). A
migration never imports those models: it describes the tables as they were at its version, so
migration 1 still builds version 1 once later migrations have moved on. A long migration lives
in a module of its own (``_migration_2.py``).

Each migration runs in its own transaction together with its ``schema_migrations`` row. MySQL
commits implicitly around DDL, so there a failed migration can leave part of its work behind:
write ``up`` and ``down`` so that running them again finishes the job (``_migration_2`` shows
how: look before each step, one ALTER per table).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import peewee

from universal_healer.exceptions import RegistryError
from universal_healer.model import utcnow
from universal_healer.registry import _migration_2
from universal_healer.registry.models import DisplayTextField, JSONTextField, UTCDateTimeField

__all__ = [
    "MIGRATIONS",
    "Migration",
    "current_version",
    "migrate",
    "pending",
    "rollback",
]

_LOCK_NAME = "universal_healer.schema_migrations"
_PG_LOCK_KEY = 0x5EA1E4  # any constant: one advisory lock for every healer process
_LOCK_TIMEOUT_S = 60


@attrs.frozen
class Migration:
    """One step of the schema's history.

    :param version: its position, counting from 1 without gaps.
    :param name: what it does, in a few words.
    :param up: applies it to the database given.
    :param down: undoes ``up`` exactly.
    """

    version: int
    name: str
    up: Callable[[peewee.Database], None]
    down: Callable[[peewee.Database], None]


# --------------------------------------------------------------------------------------------
# Migration 1: the tables as they were at version 1 (frozen: never edit once released).


_V1_INDEXES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    # (table, columns, unique); each is named <table>_<columns>.
    ("servers", ("name",), True),
    ("applications", ("server_id",), False),
    ("applications", ("tech_stack",), False),
    ("applications", ("health_status",), False),
    ("applications", ("server_id", "path_key"), True),
    ("diagnostic_results", ("application_id",), False),
    ("diagnostic_results", ("run_id",), False),
    ("healing_executions", ("application_id",), False),
    ("tech_stack_plugins", ("name",), True),
    ("audit_log", ("at",), False),
)


def _index_name(table: str, columns: Sequence[str]) -> str:
    return "_".join((table, *columns))


def _v1_tables(db: peewee.Database) -> list[type[peewee.Model]]:
    mysql = isinstance(db, peewee.MySQLDatabase)

    def inline_keys(table: str) -> list[peewee.SQL]:
        # MySQL rebuilds a table for every CREATE INDEX (0.1 s apiece); inside CREATE TABLE
        # the keys cost nothing. Elsewhere _create_v1 adds them as separate statements.
        if not mysql:
            return []
        return [
            peewee.SQL(
                f"{'UNIQUE ' if unique else ''}KEY `{_index_name(table, columns)}` "
                f"({', '.join(f'`{column}`' for column in columns)})"
            )
            for name, columns, unique in _V1_INDEXES
            if name == table
        ]

    class Base(peewee.Model):
        class Meta:
            database = db
            # MySQL: binary collation, so names compare as on SQLite and PostgreSQL.
            table_settings = (
                ["ENGINE=InnoDB", "DEFAULT CHARSET=utf8mb4", "COLLATE=utf8mb4_bin"]
                if mysql
                else None
            )

    class Server(Base):
        id = peewee.CharField(36, primary_key=True)
        name = peewee.CharField(255)
        kind = peewee.CharField(16)
        address = peewee.CharField(255, null=True)
        port = peewee.IntegerField(null=True)
        username = peewee.CharField(255, null=True)
        metadata = JSONTextField()
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()

        class Meta:
            table_name = "servers"
            constraints = inline_keys("servers")

    class Application(Base):
        id = peewee.CharField(36, primary_key=True)
        server = peewee.ForeignKeyField(
            Server, column_name="server_id", on_delete="RESTRICT", index=False
        )
        domain = peewee.CharField(255, null=True)
        path = DisplayTextField()
        path_raw = peewee.BlobField()
        path_key = peewee.CharField(64)
        tech_stack = peewee.CharField(64)
        tech_stack_version = peewee.CharField(100, null=True)
        detection_method = peewee.CharField(16)
        detection_confidence = peewee.DoubleField()
        detection_evidence = JSONTextField()
        health_status = peewee.CharField(16)
        health_score = peewee.IntegerField()
        last_health_check = UTCDateTimeField(null=True)
        last_run_id = peewee.CharField(36, null=True)
        healing_mode = peewee.CharField(16)
        is_healer_enabled = peewee.BooleanField()
        max_healing_attempts = peewee.IntegerField()
        healing_cooldown = peewee.IntegerField()
        current_healing_attempts = peewee.IntegerField()
        last_healing_attempt = UTCDateTimeField(null=True)
        breaker_state = JSONTextField(null=True)
        metadata = JSONTextField()
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()

        class Meta:
            table_name = "applications"
            constraints = inline_keys("applications")

    class DiagnosticResult(Base):
        id = peewee.CharField(36, primary_key=True)
        application = peewee.ForeignKeyField(
            Application, column_name="application_id", on_delete="CASCADE", index=False
        )
        check_name = peewee.CharField(255)
        check_category = peewee.CharField(32)
        status = peewee.CharField(16)
        severity = peewee.CharField(16)
        message = DisplayTextField()
        details = JSONTextField()
        suggested_fix = DisplayTextField(null=True)
        execution_time_ms = peewee.IntegerField()
        run_id = peewee.CharField(36)
        created_at = UTCDateTimeField()

        class Meta:
            table_name = "diagnostic_results"
            constraints = inline_keys("diagnostic_results")

    class HealingExecution(Base):
        id = peewee.CharField(36, primary_key=True)
        application = peewee.ForeignKeyField(
            Application, column_name="application_id", on_delete="CASCADE", index=False
        )
        action_name = peewee.CharField(255)
        risk = peewee.CharField(16)
        status = peewee.CharField(32)
        steps = JSONTextField()
        backup_location = DisplayTextField(null=True)
        rolled_back = peewee.BooleanField()
        error = DisplayTextField(null=True)
        started_at = UTCDateTimeField(null=True)
        finished_at = UTCDateTimeField(null=True)
        triggered_by = peewee.CharField(255)
        created_at = UTCDateTimeField()

        class Meta:
            table_name = "healing_executions"
            constraints = inline_keys("healing_executions")

    class TechStackPlugin(Base):
        id = peewee.CharField(36, primary_key=True)
        name = peewee.CharField(255)
        tech_stack = JSONTextField()
        version = peewee.CharField(100)
        is_enabled = peewee.BooleanField()
        is_built_in = peewee.BooleanField()
        distribution = peewee.CharField(255, null=True)
        configuration = JSONTextField()
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()

        class Meta:
            table_name = "tech_stack_plugins"
            constraints = inline_keys("tech_stack_plugins")

    class AuditLog(Base):
        id = peewee.BigAutoField()
        at = UTCDateTimeField()
        actor = peewee.CharField(255)
        action = peewee.CharField(255)
        target = DisplayTextField()
        details = JSONTextField()

        class Meta:
            table_name = "audit_log"
            constraints = inline_keys("audit_log")

    return [Server, Application, DiagnosticResult, HealingExecution, TechStackPlugin, AuditLog]


def _create_v1(db: peewee.Database) -> None:
    db.create_tables(_v1_tables(db), safe=False)
    if not isinstance(db, peewee.MySQLDatabase):
        for table, columns, unique in _V1_INDEXES:
            index = peewee.Index(
                _index_name(table, columns),
                peewee.Table(table),
                [peewee.Entity(column) for column in columns],
                unique=unique,
            )
            db.execute(index)  # type: ignore[no-untyped-call]  # peewee is untyped


def _drop_v1(db: peewee.Database) -> None:
    db.drop_tables(_v1_tables(db), safe=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create the registry tables", _create_v1, _drop_v1),
    Migration(
        2, "add healing, approvals, backups and SSH inventory", _migration_2.up, _migration_2.down
    ),
)
"""Every migration this code knows, oldest first. Append; never reorder or edit a released one."""


# --------------------------------------------------------------------------------------------
# The runner


class _History(peewee.Model):
    version = peewee.IntegerField(primary_key=True)
    name = peewee.CharField(255)
    applied_at = UTCDateTimeField()

    class Meta:
        table_name = "schema_migrations"


def _history(db: peewee.Database) -> type[_History]:
    """``schema_migrations`` bound to ``db`` (a fresh subclass: nothing global changes)."""

    class History(_History):
        class Meta:
            database = db
            table_name = "schema_migrations"

    return History


@contextlib.contextmanager
def _registry_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except peewee.PeeweeException as err:
        raise RegistryError(f"{doing} failed: {err}") from err


def _applied(db: peewee.Database) -> list[int]:
    if not db.table_exists("schema_migrations"):
        return []
    history = _history(db)
    return [row.version for row in history.select(history.version).order_by(history.version)]


def _check_known(version: int, migrations: Sequence[Migration]) -> None:
    latest = migrations[-1].version if migrations else 0
    if version > latest:
        raise RegistryError(
            f"the registry database is at schema version {version}, newer than this code "
            f"knows (latest {latest}); upgrade universal-healer or point it at another database"
        )


def _check_sequence(migrations: Sequence[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise RegistryError(f"migrations must be numbered 1, 2, 3... without gaps: {versions}")


def _sql(db: peewee.Database, sql: str, *params: object) -> Any:
    """The first row ``sql`` returns (None when it returns none)."""
    return db.execute_sql(sql, params).fetchone()  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def _exclusive(db: peewee.Database) -> Iterator[None]:
    """Keep other processes from migrating the same database at the same time.

    PostgreSQL and MySQL take a session lock, which survives the commits between migrations.
    SQLite has none: there each migration starts an IMMEDIATE transaction and looks again.
    """
    if isinstance(db, peewee.PostgresqlDatabase):
        _sql(db, "SELECT pg_advisory_lock(%s)", _PG_LOCK_KEY)
        try:
            yield
        finally:
            _sql(db, "SELECT pg_advisory_unlock(%s)", _PG_LOCK_KEY)
    elif isinstance(db, peewee.MySQLDatabase):
        got = _sql(db, "SELECT GET_LOCK(%s, %s)", _LOCK_NAME, _LOCK_TIMEOUT_S)
        if not got or got[0] != 1:
            raise RegistryError(
                f"another process has been migrating this database for {_LOCK_TIMEOUT_S} s"
            )
        try:
            yield
        finally:
            _sql(db, "SELECT RELEASE_LOCK(%s)", _LOCK_NAME)
    else:
        yield


def _transaction(db: peewee.Database) -> Any:
    if isinstance(db, peewee.SqliteDatabase):
        return db.atomic(lock_type="IMMEDIATE")
    return db.atomic()


def current_version(db: peewee.Database) -> int:
    """The schema version the database is at: 0 when nothing was ever applied.

    :raises RegistryError: when the database cannot be read.
    """
    with _registry_errors("reading the schema version"):
        applied = _applied(db)
    return applied[-1] if applied else 0


def pending(db: peewee.Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[Migration]:
    """The migrations :func:`migrate` would apply, oldest first.

    :raises RegistryError: when the database is newer than ``migrations`` know.
    """
    version = current_version(db)
    _check_known(version, migrations)
    return [m for m in migrations if m.version > version]


def migrate(db: peewee.Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[Migration]:
    """Apply every pending migration in order, each in its own transaction.

    Running it on an up-to-date database does nothing, so it is safe on every start.

    :returns: the migrations applied, oldest first.
    :raises RegistryError: when the database is newer than ``migrations`` know (nothing runs),
        or a migration fails (it is rolled back; the ones before it stay applied).
    """
    _check_sequence(migrations)
    done: list[Migration] = []
    with _registry_errors("migrating the registry database"), _exclusive(db):
        history = _history(db)
        if not db.table_exists("schema_migrations"):
            history.create_table(safe=True)
        applied = set(_applied(db))
        _check_known(max(applied, default=0), migrations)
        for migration in migrations:
            if migration.version in applied:
                continue  # without a transaction: an up-to-date open takes no write lock
            with _transaction(db):
                # Look again inside the transaction: another process may have got here first.
                if history.select().where(history.version == migration.version).exists():
                    continue
                try:
                    migration.up(db)
                except peewee.PeeweeException as err:
                    raise RegistryError(
                        f"migration {migration.version} ({migration.name}) failed: {err}"
                    ) from err
                history.insert(
                    version=migration.version, name=migration.name, applied_at=utcnow()
                ).execute()
            done.append(migration)
    return done


def rollback(
    db: peewee.Database, to_version: int, migrations: Sequence[Migration] = MIGRATIONS
) -> list[Migration]:
    """Undo migrations newest first until the database is at ``to_version`` (0: empty).

    :returns: the migrations undone, newest first.
    :raises ValueError: when ``to_version`` is negative.
    :raises RegistryError: when the database is newer than ``migrations`` know (their downs are
        not here to run), or a down fails.
    """
    if to_version < 0:
        raise ValueError(f"to_version must be 0 or more, got {to_version}")
    _check_sequence(migrations)
    undone: list[Migration] = []
    with _registry_errors("rolling back the registry database"), _exclusive(db):
        _check_known(current_version(db), migrations)
        history = _history(db)
        for migration in reversed(migrations):
            if migration.version <= to_version:
                break
            with _transaction(db):
                if not history.select().where(history.version == migration.version).exists():
                    continue
                try:
                    migration.down(db)
                except peewee.PeeweeException as err:
                    raise RegistryError(
                        f"undoing migration {migration.version} ({migration.name}) failed: {err}"
                    ) from err
                history.delete().where(history.version == migration.version).execute()
            undone.append(migration)
    return undone
