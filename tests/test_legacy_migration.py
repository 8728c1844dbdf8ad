"""The migration from the WordPress-only healer's registry, on SQLite, PostgreSQL and MariaDB.

10,000 legacy sites and their executions are imported with zero rows lost or altered (per-row
checksums), a second apply changes nothing, and a rollback leaves the registry's tables exactly
as they were; blocked rows and conflicts are reported with their reasons; the legacy tables
never change. The pure parts (canonical form, value mappings, the plan) are proven with
hypothesis, and the command is driven through click's CliRunner.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import uuid
from collections.abc import Iterator
from typing import Any

import click
import peewee
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from _databases import database_servers  # noqa: F401 - a fixture, used by name
from strategies import (
    aware_datetimes,
    legacy_executions,
    legacy_paths,
    legacy_sites,
    legacy_timestamps,
    storable_texts,
)
from universal_healer import _cli_legacy
from universal_healer._cli_common import ExitCode
from universal_healer.cli import cli
from universal_healer.exceptions import RegistryError
from universal_healer.model import (
    CheckCategory,
    CheckResult,
    CheckStatus,
    HealingMode,
    HealthStatus,
    RiskLevel,
)
from universal_healer.registry import (
    _legacy_checksums,
    _legacy_plan,
    _legacy_rows,
    apply_legacy_migration,
    check_legacy_migration,
    connect_database,
    open_registry,
    rollback_legacy_migration,
)
from universal_healer.registry.models import (
    MODELS,
    ApplicationRow,
    HealingExecutionRow,
    ServerRow,
)

T0 = dt.datetime(2023, 3, 1, 8, 0, 0, tzinfo=dt.UTC)
SECONDS_9 = dt.timedelta(seconds=9)
SERVERS = tuple(f"srv-{n}" for n in range(7))
SERVER_BY_ID = "7d1c2a4e-0000-4000-8000-00000000beef"  # a registry server with the legacy id

# What each legacy value must become: the specification, written out again on purpose.
HEALTH = {
    "UNKNOWN": "UNKNOWN", "HEALTHY": "HEALTHY", "DEGRADED": "DEGRADED",
    "MAINTENANCE": "DEGRADED", "DOWN": "CRITICAL", "CRITICAL": "CRITICAL", "HEALING": "UNKNOWN",
}  # fmt: skip
MODE = {
    "MANUAL": "MANUAL", "SEMI_AUTO": "SUPERVISED", "SUPERVISED": "SUPERVISED",
    "FULL_AUTO": "AUTO", "AUTO": "AUTO",
}  # fmt: skip
TRIGGER = {"MANUAL": "MANUAL", "SEARCH": "MANUAL", "SEMI_AUTO": "SUPERVISED", "FULL_AUTO": "AUTO"}
STATUS = {
    "PENDING": "PENDING_APPROVAL", "ANALYZING": "PENDING_APPROVAL",
    "DIAGNOSED": "PENDING_APPROVAL", "APPROVED": "PENDING_APPROVAL", "HEALING": "INTERRUPTED",
    "VERIFYING": "INTERRUPTED", "SUCCESS": "SUCCEEDED", "FAILED": "FAILED", "SKIPPED": "REFUSED",
    "ROLLED_BACK": "ROLLED_BACK",
}  # fmt: skip

# --------------------------------------------------------------------------------------------
# The legacy tables, as the legacy healer's Prisma migrations would have made them


_DDL = {
    "sqlite": (
        "CREATE TABLE wp_sites (id TEXT NOT NULL PRIMARY KEY, server_id TEXT NOT NULL, "
        "domain TEXT NOT NULL, path TEXT NOT NULL, wp_version TEXT, "
        "health_status TEXT NOT NULL DEFAULT 'UNKNOWN', healing_mode TEXT NOT NULL DEFAULT "
        "'MANUAL', is_healer_enabled BOOLEAN NOT NULL DEFAULT false, php_version TEXT, "
        "created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL)",
        "CREATE TABLE {table} (id TEXT NOT NULL PRIMARY KEY, site_id TEXT NOT NULL, "
        "diagnosis_type TEXT NOT NULL, action TEXT NOT NULL, status TEXT NOT NULL, "
        '"trigger" TEXT NOT NULL, triggered_by TEXT, execution_logs TEXT, error_message TEXT, '
        "backup_path TEXT, started_at DATETIME NOT NULL, finished_at DATETIME)",
    ),
    "postgresql": (
        "CREATE TABLE wp_sites (id TEXT NOT NULL PRIMARY KEY, server_id TEXT NOT NULL, "
        "domain TEXT NOT NULL, path TEXT NOT NULL, wp_version TEXT, "
        "health_status TEXT NOT NULL DEFAULT 'UNKNOWN', healing_mode TEXT NOT NULL DEFAULT "
        "'MANUAL', is_healer_enabled BOOLEAN NOT NULL DEFAULT false, php_version TEXT, "
        "created_at TIMESTAMP(3) NOT NULL, updated_at TIMESTAMP(3) NOT NULL)",
        "CREATE TABLE {table} (id TEXT NOT NULL PRIMARY KEY, site_id TEXT NOT NULL, "
        "diagnosis_type TEXT NOT NULL, action TEXT NOT NULL, status TEXT NOT NULL, "
        '"trigger" TEXT NOT NULL, triggered_by TEXT, execution_logs TEXT, error_message TEXT, '
        "backup_path TEXT, started_at TIMESTAMP(3) NOT NULL, finished_at TIMESTAMP(3))",
    ),
    "mysql": (
        "CREATE TABLE wp_sites (id VARCHAR(191) NOT NULL PRIMARY KEY, "
        "server_id VARCHAR(191) NOT NULL, domain VARCHAR(191) NOT NULL, path TEXT NOT NULL, "
        "wp_version VARCHAR(191), health_status VARCHAR(32) NOT NULL DEFAULT 'UNKNOWN', "
        "healing_mode VARCHAR(32) NOT NULL DEFAULT 'MANUAL', "
        "is_healer_enabled BOOLEAN NOT NULL DEFAULT false, php_version VARCHAR(191), "
        "created_at DATETIME(3) NOT NULL, updated_at DATETIME(3) NOT NULL) "
        "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
        "CREATE TABLE {table} (id VARCHAR(191) NOT NULL PRIMARY KEY, "
        "site_id VARCHAR(191) NOT NULL, diagnosis_type VARCHAR(191) NOT NULL, "
        "action VARCHAR(191) NOT NULL, status VARCHAR(32) NOT NULL, "
        "`trigger` VARCHAR(32) NOT NULL, triggered_by VARCHAR(191), execution_logs LONGTEXT, "
        "error_message TEXT, backup_path TEXT, started_at DATETIME(3) NOT NULL, "
        "finished_at DATETIME(3)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
    ),
}
LEGACY_TABLES = ("wp_sites", "wp_healing_executions", "healing_executions")
REGISTRY_TABLES = {
    "servers": "id", "applications": "id", "diagnostic_results": "id",
    "healing_executions": "id", "tech_stack_plugins": "id", "approvals": "id", "backups": "id",
    "settings": "key", "schema_migrations": "version",
}  # fmt: skip


def backend(url: str) -> str:
    return url.partition(":")[0]


def create_legacy(db: peewee.Database, executions: str = "wp_healing_executions") -> None:
    sites_sql, executions_sql = _DDL[backend_of(db)]
    db.execute_sql(sites_sql)
    db.execute_sql(executions_sql.format(table=executions))


def backend_of(db: peewee.Database) -> str:
    if isinstance(db, peewee.PostgresqlDatabase):
        return "postgresql"
    if isinstance(db, peewee.MySQLDatabase):
        return "mysql"
    return "sqlite"


def insert(db: peewee.Database, table: str, rows: list[dict[str, Any]]) -> None:
    """INSERT rows into a legacy table, 500 a statement (written here: peewee's query builder
    would take longer than the database)."""
    if not rows:
        return
    columns = ", ".join(quoted(db, column) for column in rows[0])
    one = "(" + ", ".join([db.param] * len(rows[0])) + ")"
    with db.atomic():
        for batch in peewee.chunked(rows, 500):
            values = ", ".join([one] * len(batch))
            sql = f"INSERT INTO {quoted(db, table)} ({columns}) VALUES {values}"  # noqa: S608
            db.execute_sql(sql, [value for row in batch for value in row.values()])


def update_legacy(db: peewee.Database, site_id: str, **values: Any) -> None:
    wp_sites = peewee.Table("wp_sites", ("id", *values))
    wp_sites.update({getattr(wp_sites, k): v for k, v in values.items()}).where(
        wp_sites.id == site_id
    ).execute(db)


def quoted(db: peewee.Database, name: str) -> str:
    return f"{db.quote[0]}{name}{db.quote[1]}"


def table_digest(db: peewee.Database, table: str, key: str = "id") -> str:
    """The SHA-256 of every row of ``table`` as the driver returns it, in key order."""
    # Names from this module's constants, quoted: nothing comes from outside.
    sql = f"SELECT * FROM {quoted(db, table)} ORDER BY {quoted(db, key)}"  # noqa: S608
    cursor = db.execute_sql(sql)
    rows = [
        tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
        for row in cursor.fetchall()
    ]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def registry_digests(db: peewee.Database) -> dict[str, str]:
    """The registry's tables (the audit log aside: history is never rolled back)."""
    return {table: table_digest(db, table, key) for table, key in REGISTRY_TABLES.items()}


def legacy_digests(db: peewee.Database) -> dict[str, str]:
    return {table: table_digest(db, table) for table in LEGACY_TABLES if db.table_exists(table)}


def spell_time(when: dt.datetime, db: peewee.Database, n: int) -> Any:
    """A legacy timestamp as the legacy database holds it: naive UTC with milliseconds, and in
    SQLite either Prisma's epoch milliseconds or ISO text."""
    naive = when.astimezone(dt.UTC).replace(tzinfo=None)
    if backend_of(db) != "sqlite":
        return naive
    if n % 2:
        return (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)
    return naive.isoformat(sep=" ", timespec="milliseconds")


def legacy_fleet(db: peewee.Database, sites: int, seed: int = 2024) -> tuple[list, list]:
    """``sites`` deterministic wp_sites rows, and executions for most of them."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    server_ids = (*SERVERS, SERVER_BY_ID)
    healths, modes = tuple(HEALTH), tuple(MODE)
    site_rows, execution_rows = [], []
    for n in range(sites):
        site_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        created = T0 + dt.timedelta(seconds=n * 37, milliseconds=rng.randrange(1000))
        path = ("/var/www/site-{n}", "/srv/café/{n}/", "/home/u{n}//public_html")[n % 3]
        site_rows.append({
            "id": site_id,
            "server_id": server_ids[n % len(server_ids)],
            "domain": f"site-{n}.example.org" if n % 4 else f"bücher-{n}.example",
            "path": path.format(n=n),
            "wp_version": None if n % 10 == 0 else f"6.{n % 5}.{n % 3}",
            "health_status": healths[n % len(healths)],
            "healing_mode": modes[n % len(modes)],
            "is_healer_enabled": n % 3 == 0,
            "php_version": "8.2",
            "created_at": spell_time(created, db, n),
            "updated_at": spell_time(created + dt.timedelta(days=1, milliseconds=7), db, n + 1),
        })  # fmt: skip
        for k in range(2 if n % 5 == 0 else 1 if n % 2 == 0 else 0):
            status = tuple(STATUS)[(n + k) % len(STATUS)]
            started = created + dt.timedelta(hours=k + 1, milliseconds=rng.randrange(1000))
            unfinished = STATUS[status] in ("PENDING_APPROVAL", "INTERRUPTED")
            execution_rows.append({
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "site_id": site_id,
                "diagnosis_type": ("WSOD", "DB_ERROR", "PLUGIN_CONFLICT")[n % 3],
                "action": "deactivate_plugin" if k else "clear_cache",
                "status": status,
                "trigger": tuple(TRIGGER)[(n + k) % len(TRIGGER)],
                "triggered_by": None if n % 7 == 0 else f"user-{n % 13}",
                "execution_logs": None if n % 6 == 0 else f"[\"wp cache flush\", \"ok ✓ {n}\"]\n",
                "error_message": "PHP Fatal error: x" if status == "FAILED" else None,
                "backup_path": f"/var/backups/site-{n}.tar.gz" if k else None,
                "started_at": spell_time(started, db, n),
                "finished_at": None if unfinished else spell_time(started + SECONDS_9, db, n),
            })  # fmt: skip
    return site_rows, execution_rows


def add_servers(registry: Any, db: peewee.Database) -> None:
    """The registry's servers: six named after legacy server ids, one with a legacy id."""
    for n, name in enumerate(SERVERS):
        registry.ensure_server(name, kind="ssh", address=f"10.0.0.{n + 1}")
    now = T0.replace(tzinfo=None)
    columns = ("id", "name", "kind", "address", "metadata", "created_at", "updated_at")
    peewee.Table("servers", columns).insert({
        "id": SERVER_BY_ID, "name": "web-by-id", "kind": "ssh", "address": "10.0.1.1",
        "metadata": "{}", "created_at": now, "updated_at": now,
    }).execute(db)  # fmt: skip


def site(**changes: Any) -> dict[str, Any]:
    values = {
        "id": str(uuid.uuid4()),
        "server_id": "srv-0",
        "domain": "blog.example.org",
        "path": f"/var/www/{uuid.uuid4().hex[:8]}",
        "wp_version": "6.4.3",
        "health_status": "HEALTHY",
        "healing_mode": "SEMI_AUTO",
        "is_healer_enabled": True,
        "php_version": None,
        "created_at": T0.replace(tzinfo=None),
        "updated_at": T0.replace(tzinfo=None),
    }
    values.update(changes)
    return values


def execution(site_id: str, **changes: Any) -> dict[str, Any]:
    values = {
        "id": str(uuid.uuid4()),
        "site_id": site_id,
        "diagnosis_type": "WSOD",
        "action": "clear_cache",
        "status": "SUCCESS",
        "trigger": "FULL_AUTO",
        "triggered_by": None,
        "execution_logs": "done",
        "error_message": None,
        "backup_path": None,
        "started_at": T0.replace(tzinfo=None),
        "finished_at": T0.replace(tzinfo=None),
    }
    values.update(changes)
    return values


# --------------------------------------------------------------------------------------------
# Fixtures: one migrated registry per backend and module, emptied before each test


@pytest.fixture(
    name="module_database_url",
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
        pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
    ],
)
def _module_database_url(request, tmp_path_factory, database_servers):  # noqa: F811
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('legacy') / 'healer.db'}"
        with open_registry(url):
            yield url
        return
    server = database_servers[request.param]
    url = server.take()
    with open_registry(url):
        yield url
    server.release(url)


@pytest.fixture(name="db")
def _db(module_database_url) -> Iterator[peewee.Database]:
    """A connection to the registry's database, emptied, without legacy tables."""
    database = connect_database(module_database_url)
    for table in LEGACY_TABLES[:2]:
        database.execute_sql(f"DROP TABLE IF EXISTS {quoted(database, table)}")
    with database.atomic():
        for model in reversed(MODELS):
            model.delete().execute(database)
    yield database
    database.close()


@pytest.fixture(name="registry")
def _registry(module_database_url, db):
    with open_registry(module_database_url) as opened:
        yield opened


@pytest.fixture(name="other_database")
def _other_database(module_database_url, tmp_path, database_servers):  # noqa: F811
    """An empty database of the same backend as the registry, for a separate legacy registry."""
    kind = backend(module_database_url)
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'legacy.db'}"
        return
    url = database_servers[kind].take()
    yield url
    database_servers[kind].release(url)


def raw_rows(db: peewee.Database, model: type[peewee.Model]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in model.select().dicts().bind(db)}


# --------------------------------------------------------------------------------------------
# 10,000 legacy rows on each backend


class TestTenThousandSites:
    def test_apply_loses_and_alters_nothing_repeats_as_a_no_op_and_rolls_back_exactly(
        self, registry, db
    ):
        add_servers(registry, db)
        create_legacy(db)
        sites, executions = legacy_fleet(db, 10_000)
        insert(db, "wp_sites", sites)
        insert(db, "wp_healing_executions", executions)
        legacy_before = legacy_digests(db)
        registry_before = registry_digests(db)

        checked = check_legacy_migration(registry)
        assert (checked.sites.legacy, checked.sites.pending) == (10_000, 10_000)
        assert (checked.executions.legacy, checked.executions.pending) == (len(executions),) * 2
        assert (checked.blocked, checked.changed, checked.refused) == ((), (), False)
        assert registry_digests(db) == registry_before

        applied = apply_legacy_migration(registry)
        assert (applied.sites.added, applied.executions.added) == (10_000, len(executions))
        assert (applied.blocked, applied.refused) == ((), False)
        self.assert_nothing_lost_or_altered(registry, db, sites, executions)
        after_apply = registry_digests(db)

        again = apply_legacy_migration(registry)
        assert (again.sites.added, again.executions.added) == (0, 0)
        assert (again.sites.verified, again.executions.verified) == (10_000, len(executions))
        assert registry_digests(db) == after_apply, "a second apply changed the registry"

        verified = check_legacy_migration(registry)
        assert (verified.sites.verified, verified.sites.pending) == (10_000, 0)
        assert (verified.executions.verified, verified.executions.pending) == (len(executions), 0)
        assert (verified.blocked, verified.changed) == ((), ())

        undone = rollback_legacy_migration(registry)
        assert (undone.removed_sites, undone.removed_executions) == (10_000, len(executions))
        assert (undone.refused, undone.changed, undone.gone) == (False, (), ())
        assert registry_digests(db) == registry_before, "the rollback left the registry changed"
        assert legacy_digests(db) == legacy_before, "the legacy tables changed"
        assert [e.action for e in registry.audit_entries()] == [
            "migrate_legacy_rollback",
            "migrate_legacy_apply",
        ]

    @staticmethod
    def assert_nothing_lost_or_altered(registry, db, sites, executions):
        """Every legacy row is in the registry, with the values the mapping gives, and its
        stored row projects back onto the legacy row's checksum; the registry's API reads a
        sample of them back."""
        stored = raw_rows(db, ApplicationRow)
        assert len(stored) == len(sites)
        names = {row.id: row.name for row in ServerRow.select().bind(db)}
        for n, values in enumerate(sites):
            row = stored[values["id"]]  # nothing lost: every legacy id is an application
            assert values["server_id"] in (row["server"], names[row["server"]])
            assert os.fsdecode(bytes(row["path_raw"])) == _legacy_rows.normalise_path(
                values["path"]
            )
            assert (row["domain"], row["tech_stack_version"]) == (
                values["domain"], values["wp_version"],
            )  # fmt: skip
            assert row["health_status"] == HEALTH[values["health_status"]]
            assert row["healing_mode"] == MODE[values["healing_mode"]]
            assert row["is_healer_enabled"] is values["is_healer_enabled"]
            assert (row["tech_stack"], row["detection_method"]) == ("wordpress", "HYBRID")
            assert row["created_at"] == _legacy_rows.parse_timestamp(values["created_at"])
            # Nothing altered: the stored row projects back onto the legacy row's checksum.
            legacy = {column: values[column] for column in _legacy_rows.SITE_COLUMNS}
            back = _legacy_rows.site_from_application(row)
            assert _legacy_checksums.site_checksum(back) == _legacy_checksums.site_checksum(
                legacy
            ), values["id"]
            if n % 97 == 0:
                app = registry.get_application(values["id"])
                assert (app.stack, app.path) == (
                    "wordpress",
                    _legacy_rows.normalise_path(values["path"]),
                )
        stored_executions = raw_rows(db, HealingExecutionRow)
        assert len(stored_executions) == len(executions)
        for n, values in enumerate(executions):
            row = stored_executions[values["id"]]
            assert row["application"] == values["site_id"]
            assert row["status"] == STATUS[values["status"]]
            assert row["mode"] == TRIGGER[values["trigger"]]
            assert (row["check_name"], row["action_name"]) == (
                values["diagnosis_type"], values["action"],
            )  # fmt: skip
            assert row["started_at"] == _legacy_rows.parse_timestamp(values["started_at"])
            assert row["error"] == values["error_message"]
            back = _legacy_rows.execution_from_row(row)
            assert _legacy_checksums.execution_checksum(
                back
            ) == _legacy_checksums.execution_checksum(values)
            if n % 97 == 0:
                done = registry.get_execution(values["id"])
                logs = [step.output for step in done.steps] or [None]
                assert logs == [values["execution_logs"]]


# --------------------------------------------------------------------------------------------
# Blocked rows, conflicts and changes, on each backend


def blocked_reasons(report) -> dict[str, str]:
    return {issue.id: issue.reason for issue in report.blocked}


class TestBlockedRows:
    @pytest.fixture(name="legacy")
    def _legacy(self, registry, db):
        """A legacy registry with one good site and one of every kind of trouble."""
        add_servers(registry, db)
        discovered = registry.upsert_application(
            server="srv-1", path="/var/www/shop", stack="wordpress", stack_version="6.1",
            confidence=0.95, evidence=(),
        )  # fmt: skip
        rows = {
            "good": site(path="/var/www/blog/"),
            "relative": site(path="var/www/x"),
            "dotted": site(path="/var/www/../etc"),
            "health": site(health_status="ON_FIRE"),
            "mode": site(healing_mode="YOLO"),
            "long_id": site(id="x" * 40),
            "server": site(server_id="srv-gone"),
            "taken_path": site(server_id="srv-1", path="/var/www/shop/"),
            "taken_id": site(id=discovered.id, path="/var/www/elsewhere"),
            "twin_a": site(path="/srv/twin"),
            "twin_b": site(path="//srv/twin"),
        }
        create_legacy(db)
        insert(db, "wp_sites", list(rows.values()))
        ok = execution(rows["good"]["id"], triggered_by="alice")
        runs = {
            "ok": ok,
            "orphan": execution("no-such-site"),
            "status": execution(rows["good"]["id"], status="EXPLODED"),
            "of_blocked": execution(rows["health"]["id"]),
        }
        insert(db, "wp_healing_executions", list(runs.values()))
        return {name: values["id"] for name, values in {**rows, **runs}.items()}

    def test_check_names_each_blocked_row_with_its_reason_and_changes_nothing(
        self, registry, db, legacy
    ):
        before = registry_digests(db), legacy_digests(db)
        report = check_legacy_migration(registry)
        reasons = blocked_reasons(report)
        expected = {
            "relative": "is not absolute",
            "dotted": "has '.' or '..' in it",
            "health": "unknown health_status 'ON_FIRE'",
            "mode": "unknown healing_mode 'YOLO'",
            "long_id": "id is longer than 36 characters",
            "server": "server_id 'srv-gone' is no server of the registry",
            "taken_path": "is already at '/var/www/shop/' on that server",
            "taken_id": "an application with this id is in the registry already",
            "twin_a": "are at the same path on the same server",
            "twin_b": "are at the same path on the same server",
            "orphan": "site_id 'no-such-site' is no row of wp_sites",
            "status": "unknown status 'EXPLODED'",
            "of_blocked": f"its site {legacy['health']} cannot be imported",
        }
        for name, reason in expected.items():
            assert reason in reasons.pop(legacy[name]), name
        assert reasons == {}
        assert (report.sites.pending, report.executions.pending) == (1, 1)
        assert report.unknown_servers == (("srv-gone", 1),)
        assert (registry_digests(db), legacy_digests(db)) == before

    def test_apply_refuses_while_rows_are_blocked_and_changes_nothing(self, registry, db, legacy):
        before = registry_digests(db)
        report = apply_legacy_migration(registry)
        assert report.refused
        assert (report.sites.added, report.executions.added) == (0, 0)
        assert registry_digests(db) == before

    def test_partial_apply_imports_the_rest_and_a_later_apply_the_fixed_rows(
        self, registry, db, legacy
    ):
        before = registry_digests(db)
        report = apply_legacy_migration(registry, partial=True)
        assert (report.refused, report.sites.added, report.executions.added) == (False, 1, 1)
        app = registry.get_application(legacy["good"])
        assert (app.path, app.healing_mode) == ("/var/www/blog", HealingMode.SUPERVISED)
        assert registry.get_execution(legacy["ok"]).triggered_by == "alice"

        update_legacy(db, legacy["health"], health_status="DOWN")
        fixed = apply_legacy_migration(registry, partial=True)
        assert (fixed.sites.added, fixed.executions.added) == (1, 1)
        assert (fixed.sites.verified, fixed.executions.verified) == (1, 1)
        assert registry.get_application(legacy["health"]).health_status is HealthStatus.CRITICAL

        undone = rollback_legacy_migration(registry)
        assert (undone.removed_sites, undone.removed_executions) == (2, 2)
        assert registry_digests(db) == before


class TestChangesSinceImport:
    @pytest.fixture(name="imported")
    def _imported(self, registry, db):
        add_servers(registry, db)
        create_legacy(db)
        rows = [site() for _ in range(4)]
        insert(db, "wp_sites", rows)
        insert(db, "wp_healing_executions", [execution(rows[0]["id"])])
        before = registry_digests(db)
        assert apply_legacy_migration(registry).sites.added == 4
        return [row["id"] for row in rows], before

    def test_check_reports_each_change_on_either_side(self, registry, db, imported):
        ids, _ = imported
        registry.set_healing_mode(ids[0], HealingMode.MANUAL)
        ApplicationRow.delete().where(ApplicationRow.id == ids[1]).execute(db)
        update_legacy(db, ids[2], wp_version="6.5")
        report = check_legacy_migration(registry)
        changed = {issue.id: issue.reason for issue in report.changed}
        assert changed == {
            ids[0]: "changed in the registry since it was imported",
            ids[1]: "gone from the registry since it was imported",
            ids[2]: "changed in wp_sites since it was imported (not imported again)",
        }
        executions = {(i.table, i.reason) for i in report.changed if i.table != "wp_sites"}
        assert executions == set()  # the execution of ids[0] itself is unchanged
        assert (report.sites.verified, report.blocked) == (1, ())

    def test_rollback_refuses_changed_rows_and_new_records_unless_forced(
        self, registry, db, imported
    ):
        ids, before = imported
        registry.set_healing_mode(ids[0], HealingMode.AUTO)
        result = CheckResult(
            check="disk_space", category=CheckCategory.SYSTEM, status=CheckStatus.PASS,
            severity=RiskLevel.LOW, message="ok",
        )  # fmt: skip
        registry.record_diagnosis(
            ids[1], [result], health_score=100, health_status=HealthStatus.HEALTHY, at=T0
        )
        ApplicationRow.delete().where(ApplicationRow.id == ids[3]).execute(db)
        during = registry_digests(db)
        refused = rollback_legacy_migration(registry)
        assert refused.refused
        assert [(i.id, i.reason) for i in refused.changed] == sorted([
            (ids[0], "changed in the registry since it was imported"),
            (ids[1], "changed in the registry since it was imported; has 1 record(s) made "
             "since it was imported"),
        ])  # fmt: skip
        assert [i.id for i in refused.gone] == [ids[3]]
        assert registry_digests(db) == during

        forced = rollback_legacy_migration(registry, force=True)
        assert (forced.refused, forced.removed_sites, forced.removed_executions) == (False, 3, 1)
        assert registry_digests(db) == before


class TestSources:
    def test_a_separate_legacy_database_is_read_with_from_and_never_written(
        self, registry, db, other_database
    ):
        add_servers(registry, db)
        legacy_db = connect_database(other_database)
        try:
            create_legacy(legacy_db, executions="healing_executions")  # the plan's name
            rows = [site() for _ in range(3)]
            insert(legacy_db, "wp_sites", rows)
            insert(legacy_db, "healing_executions", [execution(rows[2]["id"])])
            legacy_before = legacy_digests(legacy_db)
        finally:
            legacy_db.close()
        file_before = sqlite_file_digest(other_database)

        report = apply_legacy_migration(registry, other_database)
        assert (report.executions_table, report.sites.added, report.executions.added) == (
            "healing_executions", 3, 1,
        )  # fmt: skip
        assert report.source == other_database  # no password to hide
        assert check_legacy_migration(registry, other_database).sites.verified == 3
        with pytest.raises(RegistryError, match=r"imported from .*name that same source"):
            check_legacy_migration(registry)

        legacy_db = connect_database(other_database)
        try:
            assert legacy_digests(legacy_db) == legacy_before
        finally:
            legacy_db.close()
        assert sqlite_file_digest(other_database) == file_before

    def test_without_a_wp_sites_table_the_error_says_to_name_the_legacy_database(self, registry):
        with pytest.raises(
            RegistryError, match=r"no table wp_sites in the registry database.*--from"
        ):
            check_legacy_migration(registry)

    def test_a_missing_legacy_column_is_named(self, registry, db):
        db.execute_sql("CREATE TABLE wp_sites (id VARCHAR(36) PRIMARY KEY, path TEXT)")
        with pytest.raises(RegistryError, match="wp_sites has no column server_id, domain"):
            check_legacy_migration(registry)


def sqlite_file_digest(url: str) -> str | None:
    if backend(url) != "sqlite":
        return None
    with open(url.removeprefix("sqlite:///"), "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


class TestMissingSqliteFile:
    def test_a_missing_legacy_file_is_an_error_and_is_not_created(self, tmp_path):
        with (
            open_registry(f"sqlite:///{tmp_path / 'healer.db'}") as registry,
            pytest.raises(RegistryError, match=r"no legacy database at .*is not a file"),
        ):
            check_legacy_migration(registry, f"sqlite:///{tmp_path / 'nope.db'}")
        assert not os.path.exists(tmp_path / "nope.db")


# --------------------------------------------------------------------------------------------
# The command line


@pytest.fixture(name="healer")
def _healer(tmp_path):
    """``healer`` with migrate-legacy, on an SQLite registry that holds the legacy tables.

    The group is a copy of ``cli`` with the command registered as ``cli.py`` registers it
    (``_cli_legacy.register(cli)``), so these tests run before and after that line exists."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    group = click.Group(
        "healer", params=cli.params, callback=cli.callback, commands=dict(cli.commands)
    )
    _cli_legacy.register(group)

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(group, ["--db", url, *args], catch_exceptions=False)
        return result.exit_code, result.output

    with open_registry(url) as registry:
        database = registry._db
        add_servers(registry, database)
        create_legacy(database)
        rows = [site(), site(), site(healing_mode="FULL_AUTO"), site(path="www")]
        insert(database, "wp_sites", rows)
        insert(database, "wp_healing_executions", [execution(rows[0]["id"])])
    invoke.ids = [row["id"] for row in rows]  # type: ignore[attr-defined]
    invoke.url = url  # type: ignore[attr-defined]
    return invoke


class TestCommand:
    @pytest.mark.parametrize(
        "args",
        [
            pytest.param((), id="no-action"),
            pytest.param(("--check", "--apply"), id="two-actions"),
            pytest.param(("--check", "--partial"), id="partial-without-apply"),
            pytest.param(("--apply", "--force"), id="force-without-rollback"),
            pytest.param(("--rollback", "--from", "sqlite:///x.db"), id="rollback-from"),
        ],
    )
    def test_a_wrong_combination_of_options_is_a_usage_error(self, healer, args):
        assert healer("migrate-legacy", *args)[0] == ExitCode.USAGE

    def test_check_apply_and_rollback_as_an_operator_runs_them(self, healer):
        ids = healer.ids
        code, out = healer("migrate-legacy", "--check", "--json")
        report = json.loads(out)
        assert code == ExitCode.REFUSED
        assert report["sites"] == {"legacy": 4, "verified": 0, "pending": 3, "added": 0}
        assert report["blocked"] == [
            {"table": "wp_sites", "id": ids[3], "reason": "path 'www' is not absolute"}
        ]
        code, out = healer("migrate-legacy", "--apply")
        assert code == ExitCode.REFUSED
        assert "nothing imported" in out

        code, out = healer("migrate-legacy", "--apply", "--partial")
        assert code == ExitCode.PARTIAL
        assert "wp_sites: 4 row(s); 0 imported and verified, 3 to import, 3 imported now" in out
        assert "wp_healing_executions: 1 row(s); 0 imported and verified, 1 to import" in out

        code, out = healer("apps", "--json")
        assert sorted(app["id"] for app in json.loads(out)) == sorted(ids[:3])
        assert healer("mode", ids[2], "manual")[0] == ExitCode.OK
        code, out = healer("migrate-legacy", "--check")
        assert code == ExitCode.REFUSED  # the blocked row still blocks
        assert f"wp_sites {ids[2]}: changed in the registry since it was imported" in out

        code, out = healer("migrate-legacy", "--rollback", "--json")
        assert code == ExitCode.REFUSED
        assert [i["id"] for i in json.loads(out)["changed"]] == [ids[2]]
        code, out = healer("migrate-legacy", "--rollback", "--force")
        assert code == ExitCode.OK
        assert "removed 3 application(s) and 1 execution(s)" in out
        code, out = healer("migrate-legacy", "--rollback")
        assert (code, "nothing to roll back" in out) == (ExitCode.OK, True)

    def test_a_complete_migration_checks_clean(self, healer):
        database = connect_database(healer.url)
        try:
            wp_sites = peewee.Table("wp_sites", ("id",))
            wp_sites.delete().where(wp_sites.id == healer.ids[3]).execute(database)
        finally:
            database.close()
        assert healer("migrate-legacy", "--check")[0] == ExitCode.OK
        assert healer("migrate-legacy", "--apply")[0] == ExitCode.OK
        code, out = healer("migrate-legacy", "--check")
        assert code == ExitCode.OK
        assert "wp_sites: 3 row(s); 3 imported and verified, 0 to import" in out


# --------------------------------------------------------------------------------------------
# The pure parts


class TestCanonicalForm:
    @given(
        st.dictionaries(storable_texts(), st.integers() | storable_texts() | st.none(), max_size=6),
        st.randoms(),
    )
    def test_the_checksum_ignores_key_order(self, values, rnd):
        keys = list(values)
        rnd.shuffle(keys)
        assert _legacy_checksums.checksum(
            {k: values[k] for k in keys}
        ) == _legacy_checksums.checksum(values)

    @given(aware_datetimes())
    def test_one_instant_has_one_canonical_form_in_any_zone(self, when):
        utc = when.astimezone(dt.UTC)
        assert _legacy_checksums.canonical_json(when) == _legacy_checksums.canonical_json(utc)
        assert _legacy_checksums.canonical_json(when) == _legacy_checksums.canonical_json(
            utc.replace(tzinfo=None)
        )

    @given(legacy_sites(), st.data())
    def test_every_spelling_of_a_site_checksums_alike(self, values, data):
        respelt = dict(values)
        for column in ("created_at", "updated_at"):
            instant = _legacy_rows.parse_timestamp(values[column])
            respelt[column] = data.draw(legacy_timestamps(instant))
        respelt["is_healer_enabled"] = int(bool(values["is_healer_enabled"]))
        assert _legacy_checksums.site_checksum(respelt) == _legacy_checksums.site_checksum(values)

    @given(legacy_sites(), st.sampled_from(_legacy_rows.SITE_COLUMNS))
    def test_any_change_to_a_site_changes_its_checksum(self, values, column):
        altered = dict(values, **{column: "something else entirely"})
        assert _legacy_checksums.site_checksum(altered) != _legacy_checksums.site_checksum(values)

    @given(st.one_of(st.binary(), st.floats(), st.decimals(), st.dates(), st.complex_numbers()))
    def test_the_canonical_form_takes_anything_a_driver_returns(self, value):
        assert json.loads(_legacy_checksums.canonical_json({"value": value}))


class TestMappings:
    @pytest.mark.parametrize(
        ("mapping", "function", "expected"),
        [
            pytest.param(_legacy_rows.HEALTH_MAP, _legacy_rows.map_health, HEALTH, id="health"),
            pytest.param(_legacy_rows.MODE_MAP, _legacy_rows.map_mode, MODE, id="mode"),
            pytest.param(_legacy_rows.TRIGGER_MAP, _legacy_rows.map_trigger, TRIGGER, id="trigger"),
            pytest.param(_legacy_rows.STATUS_MAP, _legacy_rows.map_status, STATUS, id="status"),
        ],
    )
    def test_each_legacy_value_maps_as_documented(self, mapping, function, expected):
        assert {key: function(key).value for key in mapping} == expected

    @given(st.text().filter(lambda s: s not in HEALTH) | st.integers() | st.none())
    def test_an_unknown_health_status_is_refused_with_the_known_ones(self, value):
        with pytest.raises(ValueError, match=r"unknown health_status .* \(known: UNKNOWN, HEALTHY"):
            _legacy_rows.map_health(value)

    def test_no_imported_mode_heals_more_on_its_own_than_the_legacy_one_did(self):
        order = {"MANUAL": 0, "SUPERVISED": 1, "AUTO": 2}
        legacy_order = {"MANUAL": 0, "SEMI_AUTO": 1, "SUPERVISED": 1, "FULL_AUTO": 2, "AUTO": 2}
        for legacy, mode in _legacy_rows.MODE_MAP.items():
            assert order[mode.value] <= legacy_order[legacy]

    @given(legacy_paths())
    def test_a_normalised_path_is_one_spelling_of_the_same_directory(self, path):
        root = _legacy_rows.normalise_path(path)
        assert _legacy_rows.normalise_path(root) == root
        assert "//" not in root
        assert not root.endswith("/")
        assert root.split("/") == ["", *(p for p in path.split("/") if p)]

    @given(st.text(max_size=10).filter(lambda s: not s.startswith("/")))
    def test_a_relative_path_is_refused(self, path):
        with pytest.raises(ValueError, match="is not absolute"):
            _legacy_rows.normalise_path(path)


class TestRoundTrip:
    @given(legacy_sites())
    def test_an_imported_site_projects_back_onto_its_legacy_row(self, values):
        parsed = _legacy_rows.parse_site(values)
        row = _legacy_rows.application_columns(parsed, "server-id")
        assert _legacy_checksums.site_checksum(_legacy_rows.site_from_application(row)) == (
            _legacy_checksums.site_checksum(values)
        )

    @given(legacy_executions())
    def test_an_imported_execution_projects_back_onto_its_legacy_row(self, values):
        parsed = _legacy_rows.parse_execution(values)
        row = json.loads(json.dumps(_legacy_rows.execution_columns(parsed, "t"), default=str))
        for column in ("started_at", "finished_at", "created_at"):
            row[column] = _legacy_rows.execution_columns(parsed, "t")[column]
        back = _legacy_rows.execution_from_row(row)
        assert _legacy_checksums.execution_checksum(back) == _legacy_checksums.execution_checksum(
            values
        )

    @given(legacy_sites(), st.sampled_from(["health_status", "healing_mode", "path"]))
    def test_an_application_changed_after_import_no_longer_projects(self, values, column):
        row = _legacy_rows.application_columns(_legacy_rows.parse_site(values), "server-id")
        row[column] = "changed"
        assert _legacy_rows.site_from_application(row) is None


@st.composite
def plan_inputs(draw):
    """A few legacy sites crowded onto few servers and paths, some invalid, their executions
    (some of no site), and a registry that knows some of the servers, ids and paths."""
    ids = draw(st.lists(st.uuids().map(str), max_size=10, unique=True))
    sites = [
        site(
            id=site_id,
            server_id=draw(st.sampled_from(["a", "b", "c"])),
            path=draw(st.sampled_from(["/x", "/x/", "/y", "y", "/z/../w"])),
            health_status=draw(st.sampled_from(["HEALTHY", "DOWN", "ON_FIRE"])),
        )
        for site_id in ids
    ]
    executions = [
        execution(draw(st.sampled_from([*ids, "nowhere"])), id=f"e{n}")
        for n in range(draw(st.integers(0, 8)))
    ]
    facts = _legacy_plan._Facts(
        servers={name: f"id-{name}" for name in draw(st.sets(st.sampled_from("ab")))},
        taken_app_ids=frozenset(draw(st.sets(st.sampled_from(ids)))) if ids else frozenset(),
        path_owners={
            ("id-a", _legacy_rows._path_key("/y")): "someone"
        } if draw(st.booleans()) else {},
        taken_execution_ids=frozenset(draw(st.sets(st.sampled_from(["e0", "e1"])))),
    )  # fmt: skip
    return (
        [_legacy_plan._legacy_row(values, site=True) for values in sites],
        [_legacy_plan._legacy_row(values, site=False) for values in executions],
        facts,
    )


class TestPlan:
    @given(plan_inputs())
    def test_every_row_is_imported_or_blocked_once_and_no_two_sites_share_a_place(self, inputs):
        sites, executions, facts = inputs
        ledger = _legacy_plan._Ledger(source="registry")
        plan = _legacy_plan._plan(sites, executions, "t", ledger, facts)
        imported = [row.id for row, _ in plan.sites] + [row.id for row in plan.executions]
        blocked = [issue.id for issue in plan.blocked]
        assert sorted(imported + blocked) == sorted(row.id for row in [*sites, *executions])
        places = [
            (server, _legacy_rows.normalise_path(row.record.path)) for row, server in plan.sites
        ]
        assert len(set(places)) == len(places)
        for row, server in plan.sites:
            key = (server, _legacy_rows._path_key(_legacy_rows.normalise_path(row.record.path)))
            assert key not in facts.path_owners
            assert row.id not in facts.taken_app_ids
        importing = {row.id for row, _ in plan.sites}
        for row in plan.executions:
            assert row.record.site_id in importing
            assert row.id not in facts.taken_execution_ids
