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
from universal_healer.model import (
    CheckCategory,
    CheckResult,
    CheckStatus,
    HealingMode,
    HealthStatus,
    RiskLevel,
)
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
    "approvals",
    "backups",
    "settings",
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


LATEST = MIGRATIONS[-1].version
ADD_NOTE = Migration(LATEST + 1, "add a note to servers", _add_note, _drop_note)


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

    def test_a_fresh_sqlite_file_opened_by_many_at_once_never_says_locked(self, tmp_path):
        """The switch of a new file to WAL needs it to itself, and SQLite answers "database is
        locked" at once (no busy handler) to whoever loses that race: it must be waited for.
        Before the wait, about one open in a hundred failed here under load."""
        for round_ in range(25):
            url = f"sqlite:///{tmp_path}/healer-{round_}.db"
            barrier = threading.Barrier(4)

            def open_when_all_ready(url=url, barrier=barrier):
                barrier.wait()
                with open_registry(url) as registry:
                    return registry.plugin_states()

            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                outcomes = [pool.submit(open_when_all_ready) for _ in range(4)]
                assert [outcome.result(timeout=60) for outcome in outcomes] == [{}] * 4

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
        assert rollback(db, LATEST, known) == [ADD_NOTE]
        assert "note" not in columns(db, "servers")
        assert current_version(db) == LATEST

    def test_a_failing_migration_is_not_recorded(self, db):
        broken = Migration(LATEST + 1, "broken", _broken, _broken)
        with pytest.raises(RegistryError, match=rf"migration {LATEST + 1} \(broken\) failed"):
            migrate(db, (*MIGRATIONS, broken))
        assert current_version(db) == LATEST  # the ones before it stay applied

    def test_migrations_must_be_numbered_from_one_without_gaps(self, tmp_path):
        assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
        database = connect_database(f"sqlite:///{tmp_path}/healer.db")
        try:
            skipping = Migration(LATEST + 2, "skips one", _add_note, _drop_note)
            with pytest.raises(RegistryError, match="without gaps"):
                migrate(database, (*MIGRATIONS, skipping))
            with pytest.raises(ValueError, match="0 or more"):
                rollback(database, -1)
            assert current_version(database) == 0
        finally:
            database.close()


def schema(db):
    """Every table's columns (name, type, null) and indexes, as the database reports them."""
    return {
        table: (
            sorted((c.name, c.data_type.lower(), bool(c.null)) for c in db.get_columns(table)),
            sorted((i.name, tuple(i.columns), bool(i.unique)) for i in db.get_indexes(table)),
        )
        for table in db.get_tables()
        if table != "schema_migrations"
    }


V1_AT = dt.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
V1_STORED = V1_AT.replace(tzinfo=None)  # naive UTC, as version 1 stores it


def insert_v1_rows(db):
    """A server, an application with one result and one execution, written as version 1 did."""
    row = {"created_at": V1_STORED, "updated_at": V1_STORED}
    peewee.Table("servers").bind(db).insert(
        id="s1", name="web1", kind="ssh", address="10.0.0.5", port=22, username="deploy",
        metadata="{}", **row,
    ).execute()  # fmt: skip
    peewee.Table("applications").bind(db).insert(
        id="a1111111-0000-4000-8000-000000000001", server_id="s1", domain="blog.example",
        path="/var/www/blog", path_raw=b"/var/www/blog", path_key="k" * 64,
        tech_stack="wordpress", tech_stack_version="6.4", detection_method="AUTO",
        detection_confidence=0.9, detection_evidence='["wp-includes"]', health_status="DEGRADED",
        health_score=70, last_health_check=V1_STORED, last_run_id="r1", healing_mode="SUPERVISED",
        is_healer_enabled=True, max_healing_attempts=3, healing_cooldown=3600,
        current_healing_attempts=1, last_healing_attempt=V1_STORED, breaker_state='{"n": 1}',
        metadata="{}", **row,
    ).execute()  # fmt: skip
    peewee.Table("diagnostic_results").bind(db).insert(
        id="d1", application_id="a1111111-0000-4000-8000-000000000001", check_name="disk",
        check_category="SYSTEM", status="WARN", severity="MEDIUM", message="85 %",
        details="{}", suggested_fix=None, execution_time_ms=3, run_id="r1", created_at=V1_STORED,
    ).execute()  # fmt: skip
    peewee.Table("healing_executions").bind(db).insert(
        id="e1111111-0000-4000-8000-000000000001",
        application_id="a1111111-0000-4000-8000-000000000001", action_name="clear_cache",
        risk="LOW", status="SUCCEEDED", steps="[]", backup_location=None, rolled_back=False,
        error=None, started_at=None, finished_at=V1_STORED, triggered_by="cli",
        created_at=V1_STORED,
    ).execute()  # fmt: skip


class TestMigration2:
    def test_down_restores_version_1_exactly_and_up_again_restores_version_2(self, db):
        migrate(db, MIGRATIONS[:1])
        version_1 = schema(db)
        migrate(db)
        version_2 = schema(db)
        assert set(version_2) - set(version_1) == {"approvals", "backups", "settings"}
        assert rollback(db, 1) == [MIGRATIONS[1]]
        assert schema(db) == version_1
        assert migrate(db) == [MIGRATIONS[1]]
        assert schema(db) == version_2

    def test_a_rerun_after_a_partial_failure_finishes_the_job(self, db):
        """MySQL commits each DDL statement: a failed run may leave part of its work done."""
        migrate(db, MIGRATIONS[:1])
        version_1 = schema(db)
        migrate(db)
        version_2 = schema(db)
        rollback(db, 1)
        MIGRATIONS[1].up(db)  # outside the runner: as if the process died before recording it
        db.execute_sql("DROP TABLE settings")
        index = peewee.Entity("healing_executions_status")
        if isinstance(db, peewee.MySQLDatabase):
            db.execute(
                peewee.NodeList((peewee.SQL("ALTER TABLE healing_executions DROP KEY"), index))
            )
        else:
            db.execute(peewee.NodeList((peewee.SQL("DROP INDEX"), index)))
        run_operations(SchemaMigrator.from_database(db).drop_column("servers", "tags"))
        assert current_version(db) == 1
        assert migrate(db) == [MIGRATIONS[1]]
        assert schema(db) == version_2
        MIGRATIONS[1].down(db)
        MIGRATIONS[1].down(db)  # again, with everything gone already
        assert schema(db) == version_1

    def test_upgrading_a_version_1_database_keeps_its_data(self, db, database_url):  # noqa: F811
        migrate(db, MIGRATIONS[:1])
        insert_v1_rows(db)
        db.close()
        with open_registry(database_url) as registry:
            app = registry.get_application("a111")
            assert (app.server, app.path, app.stack, app.stack_version) == (
                "web1", "/var/www/blog", "wordpress", "6.4",
            )  # fmt: skip
            assert (app.health_status, app.health_score) == (HealthStatus.DEGRADED, 70)
            assert app.last_health_check == V1_AT
            assert registry.load_breaker_state(app.id).state == {"n": 1}
            assert [r.message for r in registry.latest_results(app.id)] == ["85 %"]
            assert registry.recent_statuses(app.id, "disk", 5) == (CheckStatus.WARN,)
            server = registry.get_server("web1")
            assert (server.address, server.username, server.tags, server.max_channels) == (
                "10.0.0.5", "deploy", (), 8,
            )  # fmt: skip
            assert not server.trust_on_first_use
            assert registry.pause_state(app.id) == (False, None)
            assert registry.heal_lock_holder(app.id) is None
            [old] = registry.list_executions(app.id)
            assert (old.action_name, old.check, old.mode, old.started_at) == (
                "clear_cache", "", HealingMode.MANUAL, V1_AT,
            )  # fmt: skip


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
            ("healing_executions", ("application_id", "check_name", "started_at"), False),
            ("healing_executions", ("status",), False),
            ("diagnostic_results", ("application_id", "check_name", "created_at"), False),
            ("approvals", ("status",), False),
            ("approvals", ("application_id",), False),
            ("backups", ("application_id", "created_at"), False),
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
