"""The healing executor on real files with real commands: backup, verify, rollback, breaker,
approvals, the safety rules, and the promise that a failed heal leaves nothing changed."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess

import pytest

from _healing_fixtures import Behaviour, make_world, snapshot
from universal_healer import breaker
from universal_healer.backup import FileSetBackup
from universal_healer.executions import ApprovalStatus, ExecutionStatus
from universal_healer.healing import HealSettings
from universal_healer.model import HealingMode, RiskLevel
from universal_healer.registry import open_registry


@pytest.fixture
def registry(tmp_path):
    with open_registry(f"sqlite:///{tmp_path / 'registry.db'}") as opened:
        yield opened


def world_for(tmp_path, registry, **behaviour):
    return make_world(tmp_path, registry, behaviour=Behaviour(**behaviour), mode=HealingMode.AUTO)


class TestRollback:
    def test_an_action_that_fails_verification_leaves_every_file_as_it_was(
        self, tmp_path, registry
    ):
        world = world_for(tmp_path, registry, steps="break", risk=RiskLevel.MEDIUM)
        before = snapshot(world.root)
        execution = world.heal_once()
        assert execution.status is ExecutionStatus.ROLLED_BACK
        assert execution.rolled_back
        assert "verification failed: state_ok: FAIL" in execution.error
        assert snapshot(world.root) == before

    def test_a_step_that_fails_halfway_leaves_every_file_as_it_was(self, tmp_path, registry):
        world = world_for(tmp_path, registry, steps="fail-halfway", risk=RiskLevel.MEDIUM)
        before = snapshot(world.root)
        execution = world.heal_once()
        assert execution.status is ExecutionStatus.ROLLED_BACK
        assert [step.ok for step in execution.steps] == [True, True, False]
        assert execution.steps[2].exit_status == 3
        assert "half-done" in execution.steps[2].output
        assert snapshot(world.root) == before

    def test_a_step_that_runs_past_its_timeout_is_killed_and_rolled_back(self, tmp_path, registry):
        world = world_for(tmp_path, registry, steps="time-out", risk=RiskLevel.MEDIUM)
        before = snapshot(world.root)
        execution = world.heal_once()
        assert execution.status is ExecutionStatus.ROLLED_BACK
        assert [step.ok for step in execution.steps] == [True, False]
        assert "timed out after 0.5 s and was killed" in execution.steps[1].error
        assert registry.heal_lock_holder(world.app_id) is None
        assert snapshot(world.root) == before

    def test_a_callable_step_that_runs_past_its_timeout_is_cancelled_and_rolled_back(
        self, tmp_path, registry
    ):
        world = world_for(tmp_path, registry, steps="callable-time-out", risk=RiskLevel.MEDIUM)
        before = snapshot(world.root)
        execution = world.heal_once()
        assert execution.status is ExecutionStatus.ROLLED_BACK
        assert execution.steps[1].error == "timed out after 0.2 s and was cancelled"
        assert snapshot(world.root) == before

    def test_a_low_risk_action_without_backup_that_fails_is_reported_failed(
        self, tmp_path, registry
    ):
        world = world_for(tmp_path, registry, steps="break", risk=RiskLevel.LOW)
        execution = world.heal_once()
        assert execution.status is ExecutionStatus.FAILED
        assert execution.backup_id is None
        assert not execution.rolled_back

    def test_a_successful_heal_is_verified_and_recorded(self, tmp_path, registry):
        world = world_for(tmp_path, registry, steps="fix", risk=RiskLevel.MEDIUM)
        execution = world.heal_once()
        assert execution.status is ExecutionStatus.SUCCEEDED
        assert (world.root / "state").read_text() == "good"
        assert execution.backup_id is not None
        stored = registry.get_execution(execution.id)
        assert stored.status is ExecutionStatus.SUCCEEDED
        assert [s.argv[0] for s in stored.steps] == ["sh", "sh"]

    def test_healing_again_after_success_finds_nothing_to_do(self, tmp_path, registry):
        world = world_for(tmp_path, registry, steps="fix")
        world.heal_once()
        after_first = snapshot(world.root)
        report = world.heal()
        assert report.executions == ()
        assert snapshot(world.root) == after_first

    def test_an_operator_can_roll_back_a_successful_heal(self, tmp_path, registry):
        world = world_for(tmp_path, registry, steps="fix", risk=RiskLevel.MEDIUM)
        before = snapshot(world.root)
        execution = world.heal_once()
        done = asyncio.run(world.healer.rollback(execution.id, actor="tester"))
        assert done.rolled_back
        assert snapshot(world.root) == before


class TestNoBackupNoAction:
    def test_an_action_needing_a_backup_with_nothing_to_back_up_is_refused(
        self, tmp_path, registry
    ):
        world = world_for(tmp_path, registry, risk=RiskLevel.MEDIUM, touches=())
        before = snapshot(world.root)
        execution = world.heal_once()
        assert execution.status is ExecutionStatus.REFUSED_NO_BACKUP
        assert "no backup, no action" in execution.error
        assert snapshot(world.root) == before

    def test_a_read_only_backup_directory_refuses_the_action_untouched(self, tmp_path, registry):
        backups = tmp_path / "backups"
        backups.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", backups], check=True)
        try:
            world = make_world(
                tmp_path,
                registry,
                behaviour=Behaviour(risk=RiskLevel.MEDIUM),
                settings=HealSettings(min_consecutive=1, backup_root=str(backups)),
                mode=HealingMode.AUTO,
            )
            before = snapshot(world.root)
            execution = world.heal_once()
        finally:
            subprocess.run(["umount", backups], check=True)
        assert execution.status is ExecutionStatus.REFUSED_NO_BACKUP
        assert "Read-only file system" in execution.error
        assert snapshot(world.root) == before

    def test_a_full_backup_disk_refuses_the_action_untouched(self, tmp_path, registry):
        backups = tmp_path / "backups"
        backups.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", backups], check=True)
        try:
            world = make_world(
                tmp_path,
                registry,
                behaviour=Behaviour(risk=RiskLevel.MEDIUM),
                settings=HealSettings(min_consecutive=1, backup_root=str(backups)),
                mode=HealingMode.AUTO,
            )
            (world.root / "config").write_bytes(b"x" * 512 * 1024)  # larger than the tmpfs
            before = snapshot(world.root)
            execution = world.heal_once()
            leftovers = sorted(p.name for p in backups.rglob("*") if p.is_file())
        finally:
            subprocess.run(["umount", backups], check=True)
        assert execution.status is ExecutionStatus.REFUSED_NO_BACKUP
        assert leftovers == []
        assert snapshot(world.root) == before


class TestBreaker:
    def test_three_failures_open_the_breaker_and_the_fourth_is_refused_untouched(
        self, tmp_path, registry
    ):
        world = world_for(tmp_path, registry)
        statuses = []
        # Alternate the failing action: the same failure twice in a row is already stopped by
        # the "unchanged" rule, and this test is about the breaker.
        for steps in ("break", "fail-halfway", "break"):
            world.behaviour.steps = steps
            statuses.append(world.heal_once().status)
            world.clock.advance(minutes=5)
        assert statuses == [ExecutionStatus.FAILED] * 3
        world.behaviour.steps = "fix"  # even a good action is refused while the breaker is open
        before = snapshot(world.root)
        fourth = world.heal_once()
        assert fourth.status is ExecutionStatus.REFUSED_BREAKER
        assert fourth.steps == ()
        assert snapshot(world.root) == before
        trips = world.metrics.registry.get_sample_value(
            "healer_circuit_breaker_trips_total", {"stack": "testapp"}
        )
        assert trips == 1.0

    def test_after_the_cooldown_one_attempt_passes_and_success_closes(self, tmp_path, registry):
        world = world_for(tmp_path, registry)
        for steps in ("break", "fail-halfway", "break"):
            world.behaviour.steps = steps
            world.heal_once()
            world.clock.advance(minutes=1)
        world.clock.advance(hours=1)
        world.behaviour.steps = "fix"
        assert world.heal_once().status is ExecutionStatus.SUCCEEDED
        stored = registry.load_breaker_state(world.app_id)
        assert stored.state["status"] == "CLOSED"


class TestModesAndApprovals:
    @pytest.mark.parametrize(
        ("mode", "risk", "runs"),
        [
            pytest.param(HealingMode.MANUAL, RiskLevel.LOW, False, id="manual-low"),
            pytest.param(HealingMode.MANUAL, RiskLevel.MEDIUM, False, id="manual-medium"),
            pytest.param(HealingMode.MANUAL, RiskLevel.HIGH, False, id="manual-high"),
            pytest.param(HealingMode.MANUAL, RiskLevel.CRITICAL, False, id="manual-critical"),
            pytest.param(HealingMode.SUPERVISED, RiskLevel.LOW, True, id="supervised-low"),
            pytest.param(HealingMode.SUPERVISED, RiskLevel.MEDIUM, False, id="supervised-medium"),
            pytest.param(HealingMode.SUPERVISED, RiskLevel.HIGH, False, id="supervised-high"),
            pytest.param(
                HealingMode.SUPERVISED, RiskLevel.CRITICAL, False, id="supervised-critical"
            ),
            pytest.param(HealingMode.AUTO, RiskLevel.LOW, True, id="auto-low"),
            pytest.param(HealingMode.AUTO, RiskLevel.MEDIUM, True, id="auto-medium"),
            pytest.param(HealingMode.AUTO, RiskLevel.HIGH, False, id="auto-high"),
            pytest.param(HealingMode.AUTO, RiskLevel.CRITICAL, False, id="auto-critical"),
        ],
    )
    def test_each_mode_heals_exactly_the_risks_the_table_allows(
        self, tmp_path, registry, mode, risk, runs
    ):
        world = make_world(tmp_path, registry, behaviour=Behaviour(risk=risk), mode=mode)
        report = world.heal()
        assert bool(report.executions) is runs
        assert bool(report.pending) is not runs
        assert ((world.root / "state").read_text() == "good") is runs

    @pytest.mark.parametrize(
        "mode",
        [
            pytest.param(HealingMode.MANUAL, id="manual"),
            pytest.param(HealingMode.SUPERVISED, id="supervised"),
            pytest.param(HealingMode.AUTO, id="auto"),
        ],
    )
    def test_a_critical_action_runs_only_on_an_approval_that_names_it(
        self, tmp_path, registry, mode
    ):
        world = make_world(
            tmp_path, registry, behaviour=Behaviour(risk=RiskLevel.CRITICAL), mode=mode
        )
        assert world.heal(approve=("some_other_action",)).executions == ()
        execution = world.heal_once(approve=("fix_state",))
        assert execution.status is ExecutionStatus.SUCCEEDED

    def test_a_stored_approval_runs_the_action_once(self, tmp_path, registry):
        world = make_world(tmp_path, registry, behaviour=Behaviour(risk=RiskLevel.HIGH))
        [pending] = world.heal().pending
        registry.decide_approval(pending.id, approved=True, actor="ops", at=world.clock())
        execution = world.heal_once()
        assert execution.status is ExecutionStatus.SUCCEEDED
        assert registry.get_approval(pending.id).status is ApprovalStatus.USED

    def test_an_approval_no_longer_applies_when_the_action_changed(self, tmp_path, registry):
        world = make_world(tmp_path, registry, behaviour=Behaviour(risk=RiskLevel.HIGH))
        [pending] = world.heal().pending
        registry.decide_approval(pending.id, approved=True, actor="ops", at=world.clock())
        world.behaviour.steps = "no-op"  # the proposed action is not the one approved
        report = world.heal()
        assert report.executions == ()
        assert [a.id for a in report.pending] != [pending.id]

    def test_an_expired_approval_counts_as_rejected(self, tmp_path, registry):
        world = make_world(tmp_path, registry, behaviour=Behaviour(risk=RiskLevel.HIGH))
        [pending] = world.heal().pending
        registry.decide_approval(pending.id, approved=True, actor="ops", at=world.clock())
        world.clock.advance(hours=25)
        report = world.heal()
        assert report.executions == ()
        assert (world.root / "state").read_text() == "bad"


class TestSafetyRules:
    def test_a_finding_must_hold_for_two_diagnoses_before_it_is_healed(self, tmp_path, registry):
        world = make_world(
            tmp_path,
            registry,
            settings=HealSettings(backup_root=str(tmp_path / "backups")),
            mode=HealingMode.AUTO,
        )
        first = world.heal()
        assert first.executions == ()
        assert [s.rule for s in first.skipped] == ["persistence"]
        assert world.heal_once().status is ExecutionStatus.SUCCEEDED

    def test_a_finding_that_keeps_coming_back_stops_being_healed(self, tmp_path, registry):
        world = world_for(tmp_path, registry)
        for _ in range(3):
            assert world.heal_once().status is ExecutionStatus.SUCCEEDED
            (world.root / "state").write_text("bad")
            world.clock.advance(hours=1)
        report = world.heal()
        assert report.executions == ()
        assert [s.rule for s in report.skipped] == ["flapping"]
        assert "root-cause" in report.skipped[0].reason

    def test_a_failed_heal_is_not_rerun_while_nothing_changed(self, tmp_path, registry):
        world = world_for(tmp_path, registry, steps="break")
        assert world.heal_once().status is ExecutionStatus.FAILED
        (world.root / "state").write_text("bad")
        report = world.heal()
        assert [s.rule for s in report.skipped] == ["unchanged"]

    def test_a_failing_dependency_suppresses_the_heal_and_says_why(self, tmp_path, registry):
        world = make_world(
            tmp_path,
            registry,
            behaviour=Behaviour(),
            dependent=True,
            mode=HealingMode.AUTO,
            settings=HealSettings(min_consecutive=1, backup_root=str(tmp_path / "backups")),
        )
        (world.root / "db-down").write_text("")
        report = world.heal()
        assert report.executions == ()
        assert [s.rule for s in report.skipped] == ["dependency"]
        assert "database_up failed" in report.skipped[0].reason
        assert (world.root / "state").read_text() == "bad"

    @pytest.mark.parametrize(
        "scope", [pytest.param("global", id="global"), pytest.param("app", id="one-app")]
    )
    def test_a_pause_stops_automatic_healing(self, tmp_path, registry, scope):
        world = world_for(tmp_path, registry)
        registry.set_paused(
            None if scope == "global" else world.app_id, True, actor="ops", reason="maintenance"
        )
        report = world.heal()
        assert report.executions == ()
        assert [s.rule for s in report.skipped] == ["paused"]
        assert "maintenance" in report.skipped[0].reason
        entries = [e.action for e in registry.audit_entries()]
        assert "pause" in " ".join(entries)


class TestDryRun:
    def test_a_dry_run_shows_the_steps_and_backup_and_changes_nothing(self, tmp_path, registry):
        world = world_for(tmp_path, registry, risk=RiskLevel.MEDIUM)
        before = snapshot(world.root)
        audit_before = len(registry.audit_entries())
        report = world.heal(dry_run=True)
        [planned] = report.dry_run
        assert planned.would_run
        assert planned.host == "local"
        assert any("printf" in step for step in planned.steps)
        assert planned.backup.startswith(f"{FileSetBackup.name} (")
        assert report.executions == ()
        assert snapshot(world.root) == before
        assert registry.list_executions(world.app_id) == []
        assert len(registry.audit_entries()) == audit_before


class TestConcurrency:
    def test_two_heal_requests_for_one_app_never_run_at_once(self, tmp_path, registry):
        """Either the second waits its turn (and runs after) or it is refused, clearly."""
        world = world_for(tmp_path, registry, steps="slow-fix")

        async def both():
            return await asyncio.gather(
                world.healer.heal(world.app_id), world.healer.heal(world.app_id)
            )

        reports = asyncio.run(both())
        executions = [e for report in reports for e in report.executions]
        log = (world.root / "log").read_text().split()
        assert log == ["start", "end"] * (len(log) // 2)  # never two starts in a row
        refused = [e for e in executions if e.status is ExecutionStatus.REFUSED]
        assert len(refused) + log.count("start") == 2
        for execution in refused:
            assert "another heal of this application is running" in execution.error

    def test_a_heal_held_by_another_process_is_refused_and_names_it(self, tmp_path, registry):
        world = world_for(tmp_path, registry)
        with open_registry(registry.url.replace("***", "")) as other:
            assert other.acquire_heal_lock(world.app_id, "other-process-exec", world.clock())
        before = snapshot(world.root)
        execution = world.heal_once()
        assert execution.status is ExecutionStatus.REFUSED
        assert "other-process-exec" in execution.error
        assert snapshot(world.root) == before


class TestRetention:
    def test_old_backups_are_pruned_after_a_success_and_the_newest_kept(self, tmp_path, registry):
        world = make_world(
            tmp_path,
            registry,
            behaviour=Behaviour(risk=RiskLevel.MEDIUM),
            mode=HealingMode.AUTO,
            settings=HealSettings(
                min_consecutive=1,
                flap_limit=100,
                keep_backups=2,
                backup_max_age=dt.timedelta(hours=1),
                backup_root=str(tmp_path / "backups"),
            ),
        )
        for _ in range(4):
            (world.root / "state").write_text("bad")
            assert world.heal_once().status is ExecutionStatus.SUCCEEDED
            world.clock.advance(hours=2)
        backups = registry.list_backups(world.app_id, include_pruned=True)
        kept = [b for b in backups if b.pruned_at is None]
        pruned = [b for b in backups if b.pruned_at is not None]
        assert len(kept) == 2
        assert len(pruned) == 2
        assert all(os.path.exists(b.location) for b in kept)
        assert not any(os.path.exists(b.location) for b in pruned)


class TestHeldBreaker:
    def test_a_breaker_that_keeps_reopening_holds_the_app_until_an_operator_resets_it(
        self, tmp_path, registry
    ):
        world = make_world(
            tmp_path,
            registry,
            behaviour=Behaviour(),
            mode=HealingMode.AUTO,
            settings=HealSettings(
                min_consecutive=1, max_reopens=2, backup_root=str(tmp_path / "backups")
            ),
        )
        tag = iter(range(1000))

        def fail_once():
            world.behaviour.steps = "break"
            world.behaviour.tag = str(next(tag))  # a new action each time: not "unchanged"
            (world.root / "state").write_text("bad")
            return world.heal_once().status

        assert [fail_once() for _ in range(3)] == [ExecutionStatus.FAILED] * 3  # opens
        for _ in range(2):  # each half-open probe fails and re-opens it
            world.clock.advance(hours=1, seconds=1)
            assert fail_once() is ExecutionStatus.FAILED
        assert registry.load_breaker_state(world.app_id).state["status"] == "HELD"
        world.clock.advance(days=30)
        held = fail_once()
        assert held is ExecutionStatus.REFUSED_BREAKER
        assert "operator" in registry.list_executions(world.app_id)[0].error

        stored = registry.load_breaker_state(world.app_id)
        reset = breaker.reset(breaker.state_from_json(stored.state))
        registry.save_breaker_state(world.app_id, breaker.state_to_json(reset), 0, None)
        world.behaviour.steps = "fix"
        assert world.heal_once().status is ExecutionStatus.SUCCEEDED
