"""What the registry keeps for healing, on SQLite, PostgreSQL and MariaDB: executions,
approvals, backups and check history.

The fixtures and value builders here are shared with the other ``test_registry_*`` modules."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest

from _databases import database_servers  # noqa: F401 - a fixture, used by name
from universal_healer.exceptions import ApplicationNotFoundError, RegistryError
from universal_healer.executions import (
    Approval,
    ApprovalStatus,
    BackupRecord,
    Execution,
    ExecutionStatus,
    StepRecord,
)
from universal_healer.model import (
    CheckCategory,
    CheckResult,
    CheckStatus,
    HealingMode,
    HealthStatus,
    RiskLevel,
)
from universal_healer.registry import connect_database, open_registry
from universal_healer.registry.models import MODELS, HealingExecutionRow

AT = dt.datetime(2024, 5, 17, 9, 30, 15, 123456, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
CANARY = "canary-pw-Zx81!"


def execution(app_id, **changes):
    values = {
        "id": str(uuid.uuid4()),
        "app_id": app_id,
        "action_name": "clear_cache",
        "check": "disk_space",
        "risk": RiskLevel.MEDIUM,
        "status": ExecutionStatus.RUNNING,
        "fingerprint": "f" * 64,
        "mode": HealingMode.AUTO,
        "triggered_by": "scheduler",
        "started_at": AT,
    }
    values.update(changes)
    return Execution(**values)


def approval(app_id, **changes):
    values = {
        "id": str(uuid.uuid4()),
        "app_id": app_id,
        "action_name": "restart_php_fpm",
        "check": "php_fpm",
        "risk": RiskLevel.HIGH,
        "fingerprint": "a" * 64,
        "status": ApprovalStatus.PENDING,
        "requested_at": AT,
        "requested_by": "scheduler",
        "expires_at": AT + HOUR,
        "action": {"name": "restart_php_fpm", "steps": [["systemctl", "restart", "php-fpm"]]},
    }
    values.update(changes)
    return Approval(**values)


def backup(app_id, **changes):
    values = {
        "id": str(uuid.uuid4()),
        "app_id": app_id,
        "execution_id": None,
        "strategy": "files",
        "host": "web1",
        "location": "/var/backups/healer/blog-20240517T093015-1a2b.tar.gz",
        "size_bytes": 5 * 2**32,  # past 32 bits: the column is a BIGINT
        "sha256": "0" * 64,
        "includes": ("wp-config.php", "wp-content/é"),
        "created_at": AT,
    }
    values.update(changes)
    return BackupRecord(**values)


def result(check="disk_space", status=CheckStatus.FAIL):
    return CheckResult(
        check=check,
        category=CheckCategory.SYSTEM,
        status=status,
        severity=RiskLevel.MEDIUM,
        message="m",
    )


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
    """One migrated database of each backend per test module, emptied before each test.

    Creating a PostgreSQL database costs 0.4 s and migrating one 0.15 s; emptying nine small
    tables costs a few milliseconds. Tests of migrations still get a fresh database each.
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('registry') / 'healer.db'}"
        with open_registry(url):
            yield url
        return
    server = database_servers[request.param]
    url = server.take()
    with open_registry(url):
        yield url
    server.release(url)


@pytest.fixture(name="registry_url")
def _registry_url(module_database_url):
    database = connect_database(module_database_url)
    try:
        with database.atomic():
            for model in reversed(MODELS):  # children first
                model.delete().execute(database)
    finally:
        database.close()
    return module_database_url


@pytest.fixture(name="registry")
def _registry(registry_url):
    with open_registry(registry_url) as opened:
        yield opened


@pytest.fixture(name="app_id")
def _app_id(registry):
    registry.ensure_server("web1")
    app = registry.upsert_application(
        server="web1", path="/var/www/blog", stack="wordpress", stack_version="6.4",
        confidence=0.9, evidence=(),
    )  # fmt: skip
    return app.id


@pytest.fixture(name="other_app")
def _other_app(registry, app_id):
    app = registry.upsert_application(
        server="web1", path="/var/www/shop", stack="php", stack_version=None, confidence=0.5,
        evidence=(),
    )  # fmt: skip
    return app.id


class TestExecutions:
    def test_an_execution_round_trips_exactly_with_its_steps(self, registry, app_id):
        steps = (
            StepRecord(
                index=0,
                description="vider le cache — ✓",
                argv=("rm", "-rf", "--", "/var/www/it's; $(id)/cache"),
                exit_status=0,
                output="removed 3 files\n\x00 then " + os.fsdecode(b"\xff") + " 密码",
                duration_s=0.125,
                started_at=AT,
            ),
            StepRecord(index=1, description="callable step", error="boom: it failed"),
        )
        done = execution(
            app_id,
            status=ExecutionStatus.ROLLED_BACK,
            finished_at=AT + dt.timedelta(seconds=3),
            steps=steps,
            backup_id=str(uuid.uuid4()),
            rolled_back=True,
            error="verification failed",
            process="web1:4242",
            action={"name": "clear_cache", "steps": [{"argv": ["rm"]}], "n": 1.5, "x": None},
        )
        registry.create_execution(done)
        stored = registry.get_execution(done.id)
        assert stored == done
        assert stored.steps[1].argv is None
        assert stored.steps[1].started_at is None
        assert stored.started_at.tzinfo is dt.UTC

    def test_update_replaces_every_field(self, registry, app_id):
        running = execution(app_id, process="web1:1")
        registry.create_execution(running)
        finished = execution(
            app_id,
            id=running.id,
            status=ExecutionStatus.SUCCEEDED,
            finished_at=AT + HOUR,
            steps=(StepRecord(index=0, description="d", exit_status=0),),
            check="other_check",
            mode=HealingMode.SUPERVISED,
            process=None,
        )
        registry.update_execution(finished)
        assert registry.get_execution(running.id) == finished

    def test_the_backup_location_is_kept_beside_the_execution(self, registry, app_id, registry_url):
        taken = backup(app_id)
        registry.record_backup(taken)
        registry.create_execution(execution(app_id, backup_id=taken.id))
        database = connect_database(registry_url)
        try:
            row = HealingExecutionRow.select().bind(database).get()
        finally:
            database.close()
        assert row.backup_location == taken.location

    def test_a_prefix_finds_one_execution_and_ambiguity_names_the_matches(self, registry, app_id):
        ids = ["abcd1111-0000-4000-8000-000000000001", "abcd2222-0000-4000-8000-000000000002"]
        for execution_id in ids:
            registry.create_execution(execution(app_id, id=execution_id))
        assert registry.get_execution("ABCD1").id == ids[0]
        with pytest.raises(RegistryError, match=r"ambiguous: it matches 2 \(abcd1111.*abcd2222"):
            registry.get_execution("abcd")
        for unknown in ("abc", "ffff", "abcd%", "nope"):
            with pytest.raises(RegistryError, match="no execution with id"):
                registry.get_execution(unknown)

    def test_lists_come_newest_first_and_filter(self, registry, app_id, other_app):
        made = [
            execution(app_id, started_at=AT + n * HOUR, check=check, status=status)
            for n, (check, status) in enumerate(
                [
                    ("disk_space", ExecutionStatus.FAILED),
                    ("disk_space", ExecutionStatus.RUNNING),
                    ("php_fpm", ExecutionStatus.RUNNING),
                    ("disk_space", ExecutionStatus.SUCCEEDED),
                ]
            )
        ]
        elsewhere = execution(other_app, started_at=AT + 9 * HOUR)
        for one in [*made, elsewhere]:
            registry.create_execution(one)
        ids = lambda executions: [e.id for e in executions]  # noqa: E731
        assert ids(registry.list_executions()) == ids([elsewhere, *reversed(made)])
        assert ids(registry.list_executions(app_id, limit=2)) == ids([made[3], made[2]])
        assert ids(registry.executions_with_status(ExecutionStatus.RUNNING)) == ids(
            [elsewhere, made[2], made[1]]
        )
        recent = registry.recent_executions(app_id, "disk_space", since=AT + HOUR)
        assert ids(recent) == ids([made[3], made[1]])

    def test_bad_executions_are_refused(self, registry, app_id):
        registry.create_execution(first := execution(app_id))
        with pytest.raises(RegistryError, match="recorded already"):
            registry.create_execution(first)
        with pytest.raises(ApplicationNotFoundError):
            registry.create_execution(execution("nope"))
        with pytest.raises(RegistryError, match="no execution"):
            registry.update_execution(execution(app_id))
        with pytest.raises(ValueError, match="timezone-aware"):
            registry.create_execution(execution(app_id, started_at=AT.replace(tzinfo=None)))
        naive_step = StepRecord(index=0, description="d", started_at=AT.replace(tzinfo=None))
        with pytest.raises(ValueError, match="timezone-aware"):
            registry.update_execution(execution(app_id, id=first.id, steps=(naive_step,)))
        with pytest.raises(ValueError, match="limit"):
            registry.list_executions(limit=-1)
        with pytest.raises(ApplicationNotFoundError):
            registry.list_executions("nope")
        assert registry.list_executions(limit=0) == []
        assert registry.list_executions() == [first]


class TestApprovals:
    def test_an_approval_round_trips_and_lists_filter(self, registry, app_id, other_app):
        first = approval(app_id)
        later = approval(app_id, requested_at=AT + HOUR, status=ApprovalStatus.REJECTED)
        elsewhere = approval(other_app, requested_at=AT + 2 * HOUR)
        for one in (first, later, elsewhere):
            registry.create_approval(one)
        assert registry.get_approval(first.id) == first
        assert registry.get_approval(first.id[:8]) == first
        assert registry.list_approvals() == [elsewhere, later, first]
        assert registry.list_approvals(app_id=app_id) == [later, first]
        assert registry.list_approvals(status=ApprovalStatus.PENDING) == [elsewhere, first]
        assert registry.list_approvals(status=ApprovalStatus.PENDING, app_id=app_id) == [first]
        with pytest.raises(RegistryError, match="no approval"):
            registry.get_approval("nope")

    @pytest.mark.parametrize(
        ("approved", "status"),
        [
            pytest.param(True, ApprovalStatus.APPROVED, id="approve"),
            pytest.param(False, ApprovalStatus.REJECTED, id="reject"),
        ],
    )
    def test_a_pending_approval_is_decided_once(self, registry, app_id, approved, status):
        registry.create_approval(pending := approval(app_id))
        decided = registry.decide_approval(pending.id, approved=approved, actor="alice", at=AT)
        assert (decided.status, decided.decided_by, decided.decided_at) == (status, "alice", AT)
        assert registry.get_approval(pending.id) == decided
        with pytest.raises(RegistryError, match=f"is {status} by alice, not PENDING"):
            registry.decide_approval(pending.id, approved=True, actor="bob", at=AT)
        assert registry.get_approval(pending.id) == decided

    def test_an_expired_approval_cannot_be_decided_and_is_marked_expired(self, registry, app_id):
        registry.create_approval(pending := approval(app_id))
        with pytest.raises(RegistryError, match="expired at 2024-05-17T10:30:15"):
            registry.decide_approval(pending.id, approved=True, actor="alice", at=AT + HOUR)
        stored = registry.get_approval(pending.id)
        assert stored.status is ApprovalStatus.EXPIRED
        assert stored.decided_by is None

    def test_an_approved_approval_is_used_by_one_execution(self, registry, app_id):
        registry.create_approval(pending := approval(app_id))
        with pytest.raises(RegistryError, match="is PENDING, not APPROVED"):
            registry.use_approval(pending.id, "exec-1", AT)
        registry.decide_approval(pending.id, approved=True, actor="alice", at=AT)
        registry.use_approval(pending.id, "exec-1", AT + dt.timedelta(minutes=5))
        used = registry.get_approval(pending.id)
        assert (used.status, used.execution_id) == (ApprovalStatus.USED, "exec-1")
        with pytest.raises(RegistryError, match="is USED by alice, not APPROVED"):
            registry.use_approval(pending.id, "exec-2", AT)
        assert registry.get_approval(pending.id).execution_id == "exec-1"

    def test_an_approval_past_its_expiry_is_never_used(self, registry, app_id):
        registry.create_approval(pending := approval(app_id))
        registry.decide_approval(pending.id, approved=True, actor="alice", at=AT)
        with pytest.raises(RegistryError, match="expired"):
            registry.use_approval(pending.id, "exec-1", AT + HOUR)
        assert registry.get_approval(pending.id).status is ApprovalStatus.EXPIRED
        with pytest.raises(RegistryError, match="no approval"):
            registry.use_approval("nope", "exec-1", AT)

    def test_expiry_sweeps_only_pending_and_approved_approvals_past_due(self, registry, app_id):
        statuses = [ApprovalStatus.PENDING, ApprovalStatus.APPROVED, ApprovalStatus.REJECTED]
        due = [approval(app_id, status=s) for s in statuses]
        fresh = approval(app_id, expires_at=AT + 3 * HOUR)
        for one in (*due, fresh):
            registry.create_approval(one)
        assert registry.expire_approvals(AT + HOUR) == 2
        assert [registry.get_approval(a.id).status for a in (*due, fresh)] == [
            ApprovalStatus.EXPIRED,
            ApprovalStatus.EXPIRED,
            ApprovalStatus.REJECTED,
            ApprovalStatus.PENDING,
        ]
        assert registry.expire_approvals(AT + HOUR) == 0


class TestBackups:
    def test_a_backup_round_trips_and_lists_newest_first(self, registry, app_id, other_app):
        old = backup(app_id)
        new = backup(app_id, created_at=AT + HOUR, execution_id="e1")
        elsewhere = backup(other_app, created_at=AT + 2 * HOUR)
        for one in (old, new, elsewhere):
            registry.record_backup(one)
        assert registry.get_backup(old.id) == old
        assert registry.get_backup(old.id[:6].upper()) == old
        assert registry.list_backups() == [elsewhere, new, old]
        assert registry.list_backups(app_id) == [new, old]

    def test_restored_and_pruned_backups_are_marked(self, registry, app_id):
        registry.record_backup(taken := backup(app_id))
        registry.mark_backup_restored(taken.id, AT + HOUR)
        registry.mark_backup_restored(taken.id, AT + HOUR)  # again: no change, no error
        registry.mark_backup_pruned(taken.id, AT + 2 * HOUR)
        assert registry.list_backups(app_id) == []
        [pruned] = registry.list_backups(app_id, include_pruned=True)
        assert (pruned.restored_at, pruned.pruned_at) == (AT + HOUR, AT + 2 * HOUR)
        with pytest.raises(RegistryError, match="no backup"):
            registry.mark_backup_pruned("nope", AT)

    def test_bad_backups_are_refused(self, registry, app_id):
        registry.record_backup(taken := backup(app_id))
        with pytest.raises(RegistryError, match="recorded already"):
            registry.record_backup(taken)
        with pytest.raises(ApplicationNotFoundError):
            registry.record_backup(backup("nope"))
        with pytest.raises(ValueError, match="UTF-8"):
            registry.record_backup(backup(app_id, location="/tmp/" + os.fsdecode(b"\xff")))
        with pytest.raises(ValueError, match="size_bytes"):
            registry.record_backup(backup(app_id, size_bytes=-1))
        with pytest.raises(RegistryError, match="no backup"):
            registry.get_backup("ffff")
        assert registry.list_backups() == [taken]


class TestCheckHistory:
    def test_statuses_come_oldest_first_from_the_runs_that_ran_the_check(self, registry, app_id):
        runs = [
            [result("disk_space", CheckStatus.PASS), result("php_fpm", CheckStatus.FAIL)],
            [result("php_fpm", CheckStatus.PASS)],  # no disk_space in this run
            [result("disk_space", CheckStatus.WARN)],
            [result("disk_space", CheckStatus.FAIL)],
            [result("disk_space", CheckStatus.ERROR)],
        ]
        for n, results in enumerate(runs):
            registry.record_diagnosis(
                app_id,
                results,
                health_score=50,
                health_status=HealthStatus.DEGRADED,
                at=AT + n * HOUR,
            )
        assert registry.recent_statuses(app_id, "disk_space", 3) == (
            CheckStatus.WARN,
            CheckStatus.FAIL,
            CheckStatus.ERROR,
        )
        assert registry.recent_statuses(app_id, "disk_space", 10)[0] is CheckStatus.PASS
        assert registry.recent_statuses(app_id, "php_fpm", 5) == (
            CheckStatus.FAIL,
            CheckStatus.PASS,
        )
        assert registry.recent_statuses(app_id, "never_ran", 5) == ()
        assert registry.recent_statuses(app_id, "disk_space", 0) == ()
        with pytest.raises(ValueError, match="limit"):
            registry.recent_statuses(app_id, "disk_space", -1)


class TestAppMetadata:
    def test_metadata_changes_merge_and_none_removes_a_key(self, registry, app_id):
        registry.set_app_metadata(app_id, {"cache_dirs": ["var/cache"], "owner": "ops"})
        registry.set_app_metadata(app_id, {"owner": None, "team": "web"})
        assert dict(registry.get_application(app_id).metadata) == {
            "cache_dirs": ["var/cache"],
            "team": "web",
        }
