"""Migration 2: what the healing engine and SSH fleets need (frozen: never edit once released).

Adds the inventory's SSH settings to ``servers``; pause, heal lock and encrypted secrets to
``applications``; the finding, fingerprint, mode, backup and process of each execution to
``healing_executions``; and three tables: ``approvals``, ``backups`` and ``settings``.

MySQL commits around every DDL statement, so there a failure can leave part of this migration
behind. Every step therefore looks before it acts (a table, column or index that is already
there is left alone, one that is already gone is not dropped again), and each table is altered
in one statement, which MySQL applies whole or not at all: running ``up`` or ``down`` again
after a failure finishes the job. PostgreSQL and SQLite roll the whole migration back instead.

New columns that cannot be null carry a database default, so existing rows get a value and a
process still running the previous release can go on inserting rows during an upgrade.
"""

from __future__ import annotations

from collections.abc import Sequence

import peewee

from universal_healer.registry.models import DisplayTextField, JSONTextField, UTCDateTimeField

__all__ = ["down", "up"]

# (table, columns, unique); each is named <table>_<columns>, as migration 1 names its own.
_INDEXES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("healing_executions", ("application_id", "check_name", "started_at"), False),
    ("healing_executions", ("status",), False),
    ("diagnostic_results", ("application_id", "check_name", "created_at"), False),
    ("approvals", ("status",), False),
    ("approvals", ("application_id",), False),
    ("backups", ("application_id", "created_at"), False),
)
_NEW_TABLES = ("approvals", "backups", "settings")  # parents before children: none depend


def _index_name(table: str, columns: Sequence[str]) -> str:
    return "_".join((table, *columns))


def _mysql(db: peewee.Database) -> bool:
    return isinstance(db, peewee.MySQLDatabase)


def _default(db: peewee.Database, literal: str) -> peewee.SQL:
    """``DEFAULT 'literal'`` for a text column; MySQL 8 wants TEXT defaults in parentheses."""
    if _mysql(db):
        return peewee.SQL(f"DEFAULT ('{literal}')")
    return peewee.SQL(f"DEFAULT '{literal}'")


def _models(db: peewee.Database) -> dict[str, type[peewee.Model]]:
    """The columns this migration adds per existing table, and the tables it creates."""
    mysql = _mysql(db)
    false = peewee.SQL("DEFAULT FALSE")
    empty_list = _default(db, "[]")

    def inline_keys(table: str) -> list[peewee.SQL]:
        # As in migration 1: MySQL builds keys inside CREATE TABLE for free.
        if not mysql:
            return []
        return [
            peewee.SQL(
                f"KEY `{_index_name(table, columns)}` "
                f"({', '.join(f'`{column}`' for column in columns)})"
            )
            for name, columns, _ in _INDEXES
            if name == table
        ]

    class Base(peewee.Model):
        class Meta:
            database = db
            table_settings = (
                ["ENGINE=InnoDB", "DEFAULT CHARSET=utf8mb4", "COLLATE=utf8mb4_bin"]
                if mysql
                else None
            )

    class Servers(Base):
        client_keys = JSONTextField(constraints=[empty_list])
        known_hosts = DisplayTextField(null=True)
        password_encrypted = peewee.TextField(null=True)
        jump = peewee.CharField(255, null=True)
        search_paths = JSONTextField(constraints=[empty_list])
        tags = JSONTextField(constraints=[empty_list])
        trust_on_first_use = peewee.BooleanField(constraints=[false])
        max_channels = peewee.IntegerField(constraints=[peewee.SQL("DEFAULT 8")])
        trusted_host_key = peewee.TextField(null=True)
        trusted_at = UTCDateTimeField(null=True)

        class Meta:
            table_name = "servers"
            primary_key = False

    class Applications(Base):
        paused = peewee.BooleanField(constraints=[false])
        pause_info = JSONTextField(null=True)
        heal_lock = peewee.CharField(36, null=True)
        heal_locked_at = UTCDateTimeField(null=True)
        secrets_encrypted = peewee.TextField(null=True)

        class Meta:
            table_name = "applications"
            primary_key = False

    class HealingExecutions(Base):
        check_name = peewee.CharField(255, constraints=[_default(db, "")])
        fingerprint = peewee.CharField(64, constraints=[_default(db, "")])
        mode = peewee.CharField(16, constraints=[_default(db, "MANUAL")])
        backup_id = peewee.CharField(36, null=True)
        process = DisplayTextField(null=True)
        action = JSONTextField(constraints=[_default(db, "{}")])

        class Meta:
            table_name = "healing_executions"
            primary_key = False

    class DiagnosticResults(Base):  # no new columns, one new index
        class Meta:
            table_name = "diagnostic_results"
            primary_key = False

    class Application(Base):  # referenced only: migration 1 created it
        id = peewee.CharField(36, primary_key=True)

        class Meta:
            table_name = "applications"

    class Approval(Base):
        id = peewee.CharField(36, primary_key=True)
        application = peewee.ForeignKeyField(
            Application, column_name="application_id", on_delete="CASCADE", index=False
        )
        action_name = peewee.CharField(255)
        check_name = peewee.CharField(255)
        risk = peewee.CharField(16)
        fingerprint = peewee.CharField(64)
        status = peewee.CharField(16)
        requested_at = UTCDateTimeField()
        requested_by = peewee.CharField(255)
        expires_at = UTCDateTimeField()
        decided_at = UTCDateTimeField(null=True)
        decided_by = peewee.CharField(255, null=True)
        execution_id = peewee.CharField(36, null=True)
        action = JSONTextField()

        class Meta:
            table_name = "approvals"
            constraints = inline_keys("approvals")

    class Backup(Base):
        id = peewee.CharField(36, primary_key=True)
        application = peewee.ForeignKeyField(
            Application, column_name="application_id", on_delete="CASCADE", index=False
        )
        execution_id = peewee.CharField(36, null=True)
        strategy = peewee.CharField(255)
        host = peewee.CharField(255)
        location = peewee.TextField()
        size_bytes = peewee.BigIntegerField()
        sha256 = peewee.CharField(64)
        includes = JSONTextField()
        created_at = UTCDateTimeField()
        restored_at = UTCDateTimeField(null=True)
        pruned_at = UTCDateTimeField(null=True)

        class Meta:
            table_name = "backups"
            constraints = inline_keys("backups")

    class Setting(Base):
        key = peewee.CharField(100, primary_key=True)
        value = JSONTextField()
        updated_at = UTCDateTimeField()
        updated_by = peewee.CharField(255)

        class Meta:
            table_name = "settings"

    return {
        "servers": Servers,
        "applications": Applications,
        "healing_executions": HealingExecutions,
        "diagnostic_results": DiagnosticResults,
        "approvals": Approval,
        "backups": Backup,
        "settings": Setting,
    }


def _execute(db: peewee.Database, node: peewee.Node) -> None:
    db.execute(node)  # type: ignore[no-untyped-call]  # peewee is untyped


def _alter(db: peewee.Database, table: str, clauses: Sequence[peewee.Node]) -> None:
    """``ALTER TABLE table clause, clause...``: one statement, except on SQLite (one each)."""
    if not clauses:
        return
    if isinstance(db, peewee.SqliteDatabase):
        for clause in clauses:
            _execute(db, peewee.NodeList((peewee.SQL("ALTER TABLE"), peewee.Entity(table), clause)))
        return
    _execute(
        db,
        peewee.NodeList(
            (peewee.SQL("ALTER TABLE"), peewee.Entity(table), peewee.NodeList(clauses, ", "))
        ),
    )


def _existing_indexes(db: peewee.Database, table: str) -> set[str]:
    return {index.name for index in db.get_indexes(table)}


def _table_indexes(table: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(_index_name(name, columns), columns) for name, columns, _ in _INDEXES if name == table]


def up(db: peewee.Database) -> None:
    """Apply migration 2; what is already there is left alone (see the module's docstring)."""
    models = _models(db)
    mysql = _mysql(db)
    # 1. New tables: CREATE TABLE IF NOT EXISTS, with their keys inline on MySQL.
    db.create_tables([models[table] for table in _NEW_TABLES], safe=True)
    ctx = db.get_sql_context()
    for table in ("servers", "applications", "healing_executions", "diagnostic_results"):
        # 2. Existing tables: add what is missing, columns and (on MySQL) keys in one ALTER.
        present = {column.name for column in db.get_columns(table)}
        fields = [f for f in models[table]._meta.sorted_fields if f.column_name not in present]
        clauses: list[peewee.Node] = [
            peewee.NodeList((peewee.SQL("ADD COLUMN"), field.ddl(ctx))) for field in fields
        ]
        if mysql:
            indexes = _existing_indexes(db, table)
            missing = [(name, cols) for name, cols in _table_indexes(table) if name not in indexes]
            clauses += [
                peewee.NodeList(
                    (
                        peewee.SQL("ADD KEY"),
                        peewee.Entity(name),
                        peewee.EnclosedNodeList([peewee.Entity(c) for c in columns]),
                    )
                )
                for name, columns in missing
            ]
        _alter(db, table, clauses)
    if not mysql:
        # 3. Indexes elsewhere: CREATE INDEX IF NOT EXISTS, for new and altered tables alike.
        for table, columns, unique in _INDEXES:
            index = peewee.Index(
                _index_name(table, columns),
                peewee.Table(table),
                [peewee.Entity(column) for column in columns],
                unique=unique,
                safe=True,
            )
            _execute(db, index)


def down(db: peewee.Database) -> None:
    """Undo migration 2; what is already gone is not dropped again."""
    models = _models(db)
    mysql = _mysql(db)
    db.drop_tables([models[table] for table in reversed(_NEW_TABLES)], safe=True)
    for table in ("diagnostic_results", "healing_executions", "applications", "servers"):
        indexes = _existing_indexes(db, table)
        drop_keys = [name for name, _ in _table_indexes(table) if name in indexes]
        clauses: list[peewee.Node] = []
        for name in drop_keys:
            if mysql:
                clauses.append(peewee.NodeList((peewee.SQL("DROP KEY"), peewee.Entity(name))))
            else:  # an indexed column cannot be dropped on SQLite: the index goes first
                _execute(db, peewee.NodeList((peewee.SQL("DROP INDEX"), peewee.Entity(name))))
        present = {column.name for column in db.get_columns(table)}
        clauses += [
            peewee.NodeList((peewee.SQL("DROP COLUMN"), peewee.Entity(field.column_name)))
            for field in models[table]._meta.sorted_fields
            if field.column_name in present
        ]
        _alter(db, table, clauses)
