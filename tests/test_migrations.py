"""Schema migrations against SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import threading

import peewee
import pytest
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as run_operations

from _databases import database_servers, database_url  # noqa: F401 - fixtures, used by name
from universal_healer.exceptions import RegistryError
from universal_healer.model import CheckCategory, CheckResult, CheckStatus, HealthStatus, RiskLevel
from universal_healer.registry import connect_database, open_registry
from universal_healer.registry.migrations import (
    MIGRATIONS,
    Migration,
    current_version,
    migrate,
    pending,
    rollback,
)
from universal_healer.registry.models import MODELS, ApplicationRow, DiagnosticResultRow

TABLES = {
    "servers",
    "applications",
    "diagnostic_results",
    "healing_executions",
    "tech_stack_plugins",
    "audit_log",
}


@pytest.fixture
def db(database_url):  # noqa: F811 - the imported fixture
    database = connect_database(database_url)
    yield database
    database.close()


def _add_note(db):
    run_operations(
        SchemaMigrator.from_database(db).add_column("servers", "note", peewee.TextField(null=True))
    )


def _drop_note(db):
    run_operations(SchemaMigrator.from_database(db).drop_column("servers", "note"))


def _broken(db):
    db.execute_sql("THIS IS NOT SQL")


ADD_NOTE = Migration(2, "add a note to servers", _add_note, _drop_note)


def columns(db, table):
    return {column.name for column in db.get_columns(table)}


class TestMigrate:
    def test_a_fresh_database_gets_every_migration_once(self, db):
        assert current_version(db) == 0
        assert pending(db) == list(MIGRATIONS)
        assert migrate(db) == list(MIGRATIONS)
        assert migrate(db) == []
        assert current_version(db) == MIGRATIONS[-1].version
        assert pending(db) == []
        assert set(db.get_tables()) >= TABLES

    def test_opening_again_migrates_nothing_and_keeps_the_data(self, database_url):  # noqa: F811
        with open_registry(database_url) as registry:
            registry.ensure_server("web1")
        with open_registry(database_url) as registry:
            assert [server.name for server in registry.list_servers()] == ["web1"]
        database = connect_database(database_url)
        try:
            assert current_version(database) == MIGRATIONS[-1].version
            count = database.execute_sql("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]
            assert count == len(MIGRATIONS)
        finally:
            database.close()

    def test_processes_opening_a_fresh_database_together_migrate_it_once(self, database_url):  # noqa: F811
        barrier = threading.Barrier(3)

        def open_when_all_ready():
            barrier.wait()
            with open_registry(database_url) as registry:
                return registry.plugin_states()

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            outcomes = [pool.submit(open_when_all_ready) for _ in range(3)]
            assert [outcome.result(timeout=60) for outcome in outcomes] == [{}, {}, {}]
        database = connect_database(database_url)
        try:
            count = database.execute_sql("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]
            assert count == len(MIGRATIONS)
        finally:
            database.close()

    def test_rollback_to_zero_drops_every_table_and_migrate_recreates_them(self, db):
        migrate(db)
        assert rollback(db, 0) == list(reversed(MIGRATIONS))
        assert current_version(db) == 0
        assert set(db.get_tables()) == {"schema_migrations"}
        assert rollback(db, 0) == []
        migrate(db)
        assert set(db.get_tables()) >= TABLES

    def test_a_newer_schema_is_refused_and_left_alone(self, db, database_url):  # noqa: F811
        migrate(db)
        history = peewee.Table("schema_migrations", ("version", "name", "applied_at"))
        history.bind(db).insert(
            version=99, name="from the future", applied_at="2030-01-01 00:00:00"
        ).execute()
        for attempt in (
            lambda: open_registry(database_url),
            lambda: migrate(db),
            lambda: pending(db),
            lambda: rollback(db, 0),
        ):
            with pytest.raises(RegistryError, match=r"schema version 99, newer than this code"):
                attempt()
        assert current_version(db) == 99
        assert set(db.get_tables()) >= TABLES

    def test_an_appended_migration_applies_and_rolls_back(self, db):
        known = (*MIGRATIONS, ADD_NOTE)
        migrate(db)
        assert pending(db, known) == [ADD_NOTE]
        assert migrate(db, known) == [ADD_NOTE]
        assert "note" in columns(db, "servers")
        assert rollback(db, 1, known) == [ADD_NOTE]
        assert "note" not in columns(db, "servers")
        assert current_version(db) == 1

    def test_a_failing_migration_is_not_recorded(self, db):
        with pytest.raises(RegistryError, match=r"migration 2 \(broken\) failed"):
            migrate(db, (*MIGRATIONS, Migration(2, "broken", _broken, _broken)))
        assert current_version(db) == 1  # the first one stays applied

    def test_migrations_must_be_numbered_from_one_without_gaps(self, tmp_path):
        assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
        database = connect_database(f"sqlite:///{tmp_path}/healer.db")
        try:
            with pytest.raises(RegistryError, match="without gaps"):
                migrate(database, (*MIGRATIONS, Migration(3, "skips 2", _add_note, _drop_note)))
            with pytest.raises(ValueError, match="0 or more"):
                rollback(database, -1)
            assert current_version(database) == 0
        finally:
            database.close()


class TestSchema:
    def test_models_match_the_migrated_columns(self, db):
        migrate(db)
        for model in MODELS:
            table = model._meta.table_name
            expected = {(f.column_name, bool(f.null)) for f in model._meta.sorted_fields}
            actual = {(c.name, bool(c.null)) for c in db.get_columns(table)}
            assert actual == expected, table

    def test_indexes_and_unique_constraints_exist(self, db):
        migrate(db)
        expected = {
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
        }
        actual = {
            (table, tuple(index.columns), bool(index.unique))
            for table in TABLES
            for index in db.get_indexes(table)
            if index.name != "PRIMARY" and not index.name.endswith("_pkey")
        }
        assert expected <= actual

    def test_foreign_keys_hold_and_results_go_with_their_application(self, database_url):  # noqa: F811
        with open_registry(database_url) as registry:
            registry.ensure_server("web1")
            app = registry.upsert_application(
                server="web1",
                path="/srv/a",
                stack="php",
                stack_version=None,
                confidence=0.5,
                evidence=(),
            )
            registry.record_diagnosis(
                app.id,
                [
                    CheckResult(
                        check="c",
                        category=CheckCategory.SYSTEM,
                        status=CheckStatus.PASS,
                        severity=RiskLevel.LOW,
                        message="ok",
                    )
                ],
                health_score=100,
                health_status=HealthStatus.HEALTHY,
                at=dt.datetime.now(dt.UTC),
            )
        database = connect_database(database_url)
        try:
            with pytest.raises(peewee.IntegrityError):
                ApplicationRow.update(server="no-such-server").where(
                    ApplicationRow.id == app.id
                ).execute(database)
            ApplicationRow.delete().where(ApplicationRow.id == app.id).execute(database)
            assert DiagnosticResultRow.select().count(database) == 0
        finally:
            database.close()
