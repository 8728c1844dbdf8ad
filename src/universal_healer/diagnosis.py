"""Diagnosis: run an application's checks and turn the results into a health verdict and plan.

The flow for one application: look up its stack's lineage → collect the checks of the stack,
its parents and the shared ones → run them (concurrently, bounded, under timeouts) → score →
ask the strategies for actions → let the pure policy sort them. Nothing here writes to the
registry; callers record the :class:`Diagnosis`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Collection, Mapping

import attrs

from universal_healer.checks import (
    DEFAULT_TIMEOUT_S,
    CheckContext,
    DiagnosticCheck,
    HostRun,
    close_run,
    run_checks,
)
from universal_healer.hosts.base import Host
from universal_healer.metrics import Metrics, default_metrics
from universal_healer.model import (
    Application,
    CheckResult,
    CheckStatus,
    HealingAction,
    HealingMode,
    HealingPlan,
    HealthStatus,
    SiteProbe,
    utcnow,
)
from universal_healer.plugins import PluginManager
from universal_healer.policy import health_score, health_status, plan_healing
from universal_healer.strategies import HealingStrategy

__all__ = ["Diagnosis", "diagnose", "propose_actions"]

log = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class Diagnosis:
    """The outcome of diagnosing one application.

    :param note: why the application could not be diagnosed (unknown stack), if so.
    """

    app: Application
    results: tuple[CheckResult, ...]
    health_score: int
    health_status: HealthStatus
    plan: HealingPlan
    started_at: dt.datetime = attrs.field(factory=utcnow)
    duration_s: float = 0.0
    note: str | None = None


def propose_actions(
    results: tuple[CheckResult, ...],
    strategies: tuple[HealingStrategy, ...],
    app: Application,
    manager: PluginManager | None = None,
) -> dict[str, HealingAction]:
    """Ask the strategies for an action for each finding (first strategy by name wins).

    A strategy that raises is reported through ``manager`` (when given) and skipped.
    """
    actions: dict[str, HealingAction] = {}
    for result in results:
        if result.status not in (CheckStatus.FAIL, CheckStatus.WARN):
            continue
        for strategy in strategies:
            try:
                if not strategy.applies_to(result):
                    continue
                action = strategy.propose(result, app)
            except Exception as err:  # noqa: BLE001 - a broken strategy is reported, not fatal
                log.warning("strategy %s failed on %s: %s", strategy, result.check, err)
                if manager is not None:
                    manager.metrics.plugin_errors_total.labels(
                        plugin=type(strategy).__module__, hook="propose"
                    ).inc()
                continue
            if action is not None:
                actions[result.check] = action
                break
    return actions


async def diagnose(
    host: Host,
    app: Application,
    manager: PluginManager,
    *,
    probe: SiteProbe | None = None,
    secrets: Mapping[str, str] | None = None,
    host_run: HostRun | None = None,
    limit: asyncio.Semaphore | None = None,
    default_timeout: float = DEFAULT_TIMEOUT_S,
    mode: HealingMode | None = None,
    metrics: Metrics | None = None,
    only: Collection[str] | None = None,
) -> Diagnosis:
    """Run every check that applies to ``app`` on ``host`` and plan the healing.

    :param host_run: share one per host between the applications of a run, so that host facts
        are gathered once and host-wide queries are asked for all of them together.
    :param limit: share one per host to bound concurrent checks on it.
    :param mode: the healing mode to plan for; the application's own by default.
    :param only: run just the checks with these names (a heal's verification).

    Never raises for what a check or plugin does. An application whose stack no enabled
    plugin provides is kept and reported, not diagnosed.
    """
    meter = metrics or default_metrics()
    started_at = utcnow()
    started = time.perf_counter()
    stack = manager.stack(app.stack)
    if stack is None:
        note = (
            f"stack {app.stack!r} is not provided by any enabled plugin; "
            "install or enable its plugin to diagnose this application"
        )
        return Diagnosis(
            app=app,
            results=(),
            health_score=0,
            health_status=HealthStatus.UNKNOWN,
            plan=HealingPlan(),
            started_at=started_at,
            note=note,
        )

    checks = manager.checks_for(app.stack)
    if only is not None:
        checks = tuple(check for check in checks if check.name in only)
    shared = host_run or HostRun(host)

    def make_context(check: DiagnosticCheck) -> CheckContext:
        return CheckContext(
            check=check,
            host=host,
            app=app,
            stack=stack,
            probe=probe,
            secrets=dict(secrets or {}),
            host_run=shared,
        )

    try:
        results = await run_checks(
            checks, make_context, limit=limit, default_timeout=default_timeout
        )
    finally:
        if host_run is None:  # ours: close it (a shared one is closed by its owner)
            await close_run(shared)
    score = health_score(results)
    status = health_status(results, score)
    actions = propose_actions(results, manager.strategies_for(app.stack), app, manager)
    plan = plan_healing(results, actions, mode or app.healing_mode)
    duration = time.perf_counter() - started

    meter.diagnostics_total.labels(stack=app.stack, health_status=status.value).inc()
    meter.diagnostics_duration_seconds.labels(stack=app.stack).observe(duration)
    for result in results:
        meter.checks_total.labels(check=result.check, status=result.status.value).inc()
    log.info(
        "diagnosed app=%s stack=%s checks=%d health=%s score=%d duration=%.3fs",
        app.id,
        app.stack,
        len(results),
        status.value,
        score,
        duration,
    )
    return Diagnosis(
        app=app,
        results=results,
        health_score=score,
        health_status=status,
        plan=plan,
        started_at=started_at,
        duration_s=duration,
    )
