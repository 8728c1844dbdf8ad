"""A small, real application and plugin for the healing engine's tests.

The app is a directory with a ``state`` file; the ``state_ok`` check passes when it says
``good``. The ``fix_state`` strategy proposes an action whose risk, steps and backup needs
each test chooses, so the executor is driven through every path on real files with real
commands. Only the test plugin is made up; the host, files, commands, registry and backups are
the real ones.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import types
from collections.abc import Sequence
from pathlib import Path

import attrs

from universal_healer.checks import CheckContext, DiagnosticCheck
from universal_healer.healing import Healer, HealSettings
from universal_healer.hookspecs import hookimpl
from universal_healer.hosts.local import LocalHost
from universal_healer.metrics import Metrics
from universal_healer.model import (
    CallableStep,
    CheckCategory,
    CheckResult,
    CommandStep,
    HealingAction,
    RiskLevel,
    StackInfo,
)
from universal_healer.plugins import build_plugin_manager
from universal_healer.registry import Registry
from universal_healer.strategies import HealingStrategy

STACK = "testapp"


class StateCheck(DiagnosticCheck):
    """PASS when the app's ``state`` file says ``good``."""

    name = "state_ok"
    category = CheckCategory.CONFIGURATION
    severity = RiskLevel.HIGH
    description = "the state file says good"

    async def run(self, ctx: CheckContext) -> CheckResult:
        found = await ctx.host.read_files([ctx.path("state")], max_bytes=100)
        data = found[ctx.path("state")].data
        if data is not None and data.strip() == b"good":
            return ctx.passed("state is good")
        return ctx.fail("state is not good", suggested_fix="write good into state")


class DependencyCheck(DiagnosticCheck):
    """PASS unless the app has a ``db-down`` file: stands for a database the app needs."""

    name = "database_up"
    category = CheckCategory.DATABASE
    severity = RiskLevel.HIGH

    async def run(self, ctx: CheckContext) -> CheckResult:
        if await ctx.host.stat(ctx.path("db-down")) is not None:
            return ctx.fail("the database is down")
        return ctx.passed("the database is up")


class DependentStateCheck(StateCheck):
    depends_on = ("database_up",)


async def _wait_too_long(host, app) -> str:
    await asyncio.sleep(30)
    return "never"


def write(path: str, text: str) -> CommandStep:
    """A step that writes ``text`` into ``path`` (data as positional arguments, no shell
    string built from it)."""
    return CommandStep(
        argv=("sh", "-c", 'printf %s "$1" > "$2"', "sh", text, path),
        description=f"write {text}",
        timeout=10,
    )


@attrs.define
class Behaviour:
    """What the test strategy proposes; tests change it between heals."""

    risk: RiskLevel = RiskLevel.LOW
    # One of: fix, no-op, break, fail-halfway, hang, time-out, callable-time-out, slow-fix,
    # leak-secret (see FixState.propose).
    steps: str = "fix"
    requires_backup: bool = False
    touches: tuple[str, ...] = ("state", "config")
    secret: str = ""
    tag: str = ""  # a different tag makes a different action (and approval fingerprint)


class FixState(HealingStrategy):
    name = "fix_state"
    fixes = ("state_ok",)

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour

    def propose(self, result: CheckResult, app) -> HealingAction:
        state = os.path.join(app.path, "state")
        config = os.path.join(app.path, "config")
        steps: Sequence[CommandStep] = {
            "fix": [write(config, "edited"), write(state, "good")],
            "no-op": [CommandStep(argv=("true",), description="do nothing")],
            "break": [write(config, "edited"), write(state, "worse")],
            "fail-halfway": [
                write(config, "edited"),
                CommandStep(argv=("chmod", "0777", config), description="loosen config"),
                CommandStep(argv=("sh", "-c", "echo half-done >&2; exit 3"), description="fail"),
                write(state, "good"),
            ],
            "hang": [
                write(config, "edited"),
                CommandStep(argv=("sleep", "300"), description="hang", timeout=600),
            ],
            "time-out": [
                write(config, "edited"),
                CommandStep(argv=("sleep", "30"), description="overrun", timeout=0.5),
                write(state, "good"),
            ],
            "callable-time-out": [
                write(config, "edited"),
                CallableStep(description="wait too long", run=_wait_too_long, timeout=0.2),
            ],
            "slow-fix": [
                CommandStep(
                    argv=(
                        "sh",
                        "-c",
                        'echo start >> "$1"; sleep 0.3; echo end >> "$1"',
                        "sh",
                        os.path.join(app.path, "log"),
                    ),
                    description="work slowly",
                ),
                write(state, "good"),
            ],
            "leak-secret": [
                CommandStep(
                    argv=("sh", "-c", 'echo "password is $1"; exit 1', "sh", self.behaviour.secret),
                    description="print the secret",
                )
            ],
        }[self.behaviour.steps]
        if self.behaviour.tag:
            steps = [*steps, CommandStep(argv=("true", self.behaviour.tag), description="tag")]
        return HealingAction(
            name="fix_state",
            description="make the state good",
            risk=self.behaviour.risk,
            check=result.check,
            steps=steps,
            requires_backup=self.behaviour.requires_backup,
            touches=self.behaviour.touches,
        )


def healing_plugin(behaviour: Behaviour, *, dependent: bool = False) -> object:
    """A plugin object declaring the test stack, its checks and the strategy."""
    checks = [DependencyCheck(), DependentStateCheck() if dependent else StateCheck()]
    return types.SimpleNamespace(
        healer_stacks=hookimpl(lambda: [StackInfo(id=STACK, display_name="Test app")]),
        healer_get_checks=hookimpl(lambda stack: checks if stack.id == STACK else []),
        healer_get_strategies=hookimpl(
            lambda stack: [FixState(behaviour)] if stack.id == STACK else []
        ),
    )


def make_app_tree(root: Path) -> Path:
    """A real application tree: state (bad), config, a subdirectory, odd modes and owners."""
    root.mkdir(parents=True)
    (root / "state").write_text("bad")
    (root / "config").write_text("original")
    (root / "config").chmod(0o640)
    os.chown(root / "config", 65534, 65534)
    (root / "public").mkdir()
    (root / "public" / "index.html").write_text("<h1>hi</h1>")
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything a rollback must restore: content, mode, owner of every path."""
    seen: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        seen[str(path.relative_to(root))] = (content, info.st_mode, info.st_uid, info.st_gid)
    return seen


@attrs.define
class Clock:
    """A clock the tests move by hand."""

    now: dt.datetime = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@attrs.define
class World:
    """A registry, a real app registered in it, and a Healer over both."""

    registry: Registry
    app_id: str
    root: Path
    behaviour: Behaviour
    clock: Clock
    healer: Healer
    metrics: Metrics

    def heal(self, **kwargs):
        return asyncio.run(self.healer.heal(self.app_id, **kwargs))

    def heal_once(self, **kwargs):
        """A heal expected to run exactly one execution; returns it."""
        report = self.heal(**kwargs)
        assert len(report.executions) == 1, report
        return report.executions[0]


def make_world(
    tmp_path: Path,
    registry: Registry,
    *,
    behaviour: Behaviour | None = None,
    settings: HealSettings | None = None,
    dependent: bool = False,
    mode=None,
) -> World:
    behaviour = behaviour or Behaviour()
    root = make_app_tree(tmp_path / "app")
    registry.ensure_server("local", kind="local")
    app = registry.upsert_application(
        server="local", path=str(root), stack=STACK, stack_version=None, confidence=1.0,
        evidence=(),
    )  # fmt: skip
    if mode is not None:
        registry.set_healing_mode(app.id, mode)
    metrics = Metrics.create()
    manager = build_plugin_manager(
        load_entry_points=False,
        extra=[("testplugin", healing_plugin(behaviour, dependent=dependent))],
        metrics=metrics,
    )
    clock = Clock()
    healer = Healer(
        registry=registry,
        manager=manager,
        hosts=lambda name: LocalHost(),
        settings=settings or HealSettings(min_consecutive=1, backup_root=str(tmp_path / "backups")),
        clock=clock,
        metrics=metrics,
    )
    return World(
        registry=registry,
        app_id=app.id,
        root=root,
        behaviour=behaviour,
        clock=clock,
        healer=healer,
        metrics=metrics,
    )
