"""The healing engine when things go wrong around it: the healer killed mid-step, a host that
vanishes, a step that prints a secret, and random sequences of outcomes under the breaker."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from _healing_fixtures import Behaviour, make_world, snapshot
from universal_healer.executions import ExecutionStatus
from universal_healer.healing import HealSettings
from universal_healer.hosts.ssh import SSHConfig, SSHHost
from universal_healer.model import HealingMode, RiskLevel
from universal_healer.registry import open_registry
from universal_healer.secrets import SecretBox

TESTS = Path(__file__).parent


@pytest.fixture
def registry(tmp_path):
    with open_registry(f"sqlite:///{tmp_path / 'registry.db'}") as opened:
        yield opened


def wait_until(predicate, *, deadline_s: float = 20.0, what: str = "condition"):
    """Poll ``predicate`` until it holds; fail with ``what`` after the deadline."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)  # polling a real subprocess, bounded by the deadline above
    pytest.fail(f"timed out waiting for {what}")


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from _healing_fixtures import Behaviour, make_world
    from universal_healer.model import HealingMode, RiskLevel
    from universal_healer.registry import open_registry

    registry = open_registry({url!r})
    world = make_world(
        Path({tmp!r}), registry, behaviour=Behaviour(steps="hang", risk=RiskLevel.MEDIUM),
        mode=HealingMode.AUTO,
    )
    print(world.app_id, flush=True)
    world.heal()
    """
)


class TestInterrupted:
    def test_a_healer_killed_mid_step_is_reported_interrupted_with_its_backup(self, tmp_path):
        url = f"sqlite:///{tmp_path / 'registry.db'}"
        with subprocess.Popen(
            [sys.executable, "-c", CHILD.format(tests=str(TESTS), url=url, tmp=str(tmp_path))],
            stdout=subprocess.PIPE,
            text=True,
        ) as child:
            try:
                self._kill_and_recover(child, url, tmp_path)
            finally:
                if child.poll() is None:
                    child.kill()
                subprocess.run(["pkill", "-f", "sleep 300"], check=False)

    def _kill_and_recover(self, child, url, tmp_path):
        app_id = child.stdout.readline().strip()
        with open_registry(url) as registry:

            def hanging():
                running = registry.executions_with_status(ExecutionStatus.RUNNING)
                return running and running[0].steps and running[0]

            execution = wait_until(hanging, what="the heal to reach its hanging step")
            assert execution.backup_id is not None
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)

            world = make_world(
                tmp_path / "again", registry, behaviour=Behaviour(), mode=HealingMode.AUTO
            )
            [recovered] = world.healer.recover_interrupted(actor="tester")
            assert recovered.id == execution.id
            assert recovered.status is ExecutionStatus.INTERRUPTED
            backup = registry.get_backup(execution.backup_id)
            assert backup.location in recovered.error
            assert f"healer rollback {execution.id[:8]}" in recovered.error
            assert registry.heal_lock_holder(app_id) is None
            # Never re-run, and a second start finds nothing more to recover.
            assert world.healer.recover_interrupted(actor="tester") == ()
            app_root = Path(registry.get_application(app_id).path)
            assert (app_root / "config").read_text() == "edited"
            asyncio.run(world.healer.rollback(execution.id, actor="tester"))
            assert (app_root / "config").read_text() == "original"


class TestHostFaults:
    def test_an_unreachable_host_spends_no_healing_budget(self, tmp_path, registry):
        world = make_world(tmp_path, registry, behaviour=Behaviour(), mode=HealingMode.AUTO)
        dead = SSHHost(
            SSHConfig(host="127.0.0.1", port=1, username="root", connect_timeout=2),
            name="local",
        )
        world.healer.hosts = lambda name: dead
        report = world.heal()
        assert report.host_fault is not None
        assert "connection refused" in report.host_fault
        assert report.executions == ()
        assert registry.list_executions(world.app_id) == []
        assert registry.load_breaker_state(world.app_id).state is None


class TestSecrets:
    def test_a_secret_printed_by_a_step_is_redacted_everywhere(self, tmp_path, registry, caplog):
        canary = "canary-pw-7Zq-do-not-show"
        world = make_world(
            tmp_path,
            registry,
            behaviour=Behaviour(steps="leak-secret", secret=canary),
            mode=HealingMode.AUTO,
        )
        box = SecretBox.generate()
        registry.set_app_secrets(world.app_id, {"DB_PASSWORD": canary}, box)
        world.healer.box = box
        with caplog.at_level(logging.DEBUG):
            execution = world.heal_once()
        assert execution.status is ExecutionStatus.FAILED
        stored = registry.get_execution(execution.id)
        for text in (
            repr(execution),
            repr(stored),
            execution.error or "",
            *(step.output for step in stored.steps),
            *(" ".join(step.argv or ()) for step in stored.steps),
            repr(registry.audit_entries()),
            caplog.text,
        ):
            assert canary not in text
        assert "password is ***" in stored.steps[0].output
        assert canary.encode() not in (tmp_path / "registry.db").read_bytes()


class ExecutorUnderTheBreaker(RuleBasedStateMachine):
    """Random time and outcomes through the real executor: the breaker's promises hold."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="healer-sm-"))
        self.registry = open_registry(f"sqlite:///{self.tmp / 'registry.db'}")
        self.world = make_world(
            self.tmp,
            self.registry,
            behaviour=Behaviour(risk=RiskLevel.MEDIUM),
            mode=HealingMode.AUTO,
            settings=HealSettings(
                min_consecutive=1, flap_limit=10_000, backup_root=str(self.tmp / "backups")
            ),
        )
        self.attempts: list[tuple[dt.datetime, ExecutionStatus]] = []
        self.variant = 0

    @rule(minutes=st.integers(min_value=0, max_value=120))
    def time_passes(self, minutes: int) -> None:
        self.world.clock.advance(minutes=minutes)

    @rule(succeed=st.booleans())
    def heal(self, succeed: bool) -> None:
        (self.world.root / "state").write_text("bad")
        # A new variant each time keeps the "unchanged" rule out of the way: this is about
        # the breaker.
        self.variant += 1
        self.world.behaviour.steps = "fix" if succeed else "break"
        self.world.behaviour.tag = str(self.variant)
        before = snapshot(self.world.root)
        report = self.world.heal()
        for execution in report.executions:
            if execution.status is ExecutionStatus.REFUSED_BREAKER:
                assert execution.steps == ()
                assert snapshot(self.world.root) == before
            else:
                self.attempts.append((execution.started_at, execution.status))
                if execution.status is ExecutionStatus.ROLLED_BACK:
                    assert snapshot(self.world.root) == before

    @invariant()
    def never_more_than_three_failures_inside_the_cooldown(self) -> None:
        """Between two successes (a success resets the breaker), no hour holds more than
        three failed attempts."""
        runs: list[list[dt.datetime]] = [[]]
        for at, status in self.attempts:
            if status is ExecutionStatus.SUCCEEDED:
                runs.append([])
            elif status.failed:
                runs[-1].append(at)
        for failed in runs:
            for index, at in enumerate(failed):
                window = [t for t in failed[index:] if t - at < dt.timedelta(hours=1)]
                assert len(window) <= 3

    def teardown(self) -> None:
        self.registry.close()


ExecutorUnderTheBreaker.TestCase.settings = settings(
    max_examples=int(os.environ.get("HEALER_SM_EXAMPLES", "8")),
    stateful_step_count=12,
    deadline=None,
)
TestExecutorUnderTheBreaker = ExecutorUnderTheBreaker.TestCase
