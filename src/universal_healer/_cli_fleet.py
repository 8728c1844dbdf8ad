"""What ``healer discover`` and ``healer diagnose`` do across servers: build the fleet from the
inventory, run the work concurrently with a progress bar, record it, and name every failure."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from universal_healer import _render
from universal_healer._cli_common import LOCAL_SERVER, State
from universal_healer.detection import Override
from universal_healer.diagnosis import Diagnosis
from universal_healer.discovery import DiscoveryReport
from universal_healer.exceptions import RegistryError
from universal_healer.fleet import (
    Fleet,
    FleetDiagnosis,
    HostFailure,
    diagnose_fleet,
    discover_fleet,
)
from universal_healer.inventory import ServerKind, ServerSpec
from universal_healer.model import (
    Application,
    CheckCategory,
    CheckResult,
    CheckStatus,
    DetectionMethod,
    HealingPlan,
    HealthStatus,
    RiskLevel,
    utcnow,
)
from universal_healer.plugins import PluginManager
from universal_healer.secrets import SecretBox

__all__ = [
    "DiscoveryRun",
    "diagnose_apps",
    "discover_servers",
    "failure_json",
    "record_discovery",
    "resolve_servers",
    "unreachable_json",
]

T = TypeVar("T")

UNREACHABLE_CHECK = "host_reachable"
"""The check name of the result that records why an application could not be diagnosed."""


def _box_for(specs: Sequence[ServerSpec]) -> SecretBox | None:
    """The secret box, when an SSH server is involved (it may have a stored password)."""
    if any(spec.kind is ServerKind.SSH for spec in specs):
        return SecretBox.from_environment()
    return None


def _specs(state: State, names: Sequence[str]) -> tuple[list[ServerSpec], SecretBox | None]:
    """The inventory's specs for ``names`` with their passwords; the local machine needs none."""
    plain = {spec.name: spec for spec in state.registry.list_server_specs()}
    wanted = [plain.get(name) or _local(name) for name in names]
    box = _box_for(wanted)
    if box is None:
        return wanted, None
    return [state.registry.get_server(spec.name, box) for spec in wanted], box


def _local(name: str) -> ServerSpec:
    if name != LOCAL_SERVER:
        raise RegistryError(f"no server called {name!r} (see `healer servers list`)")
    return ServerSpec(name=LOCAL_SERVER, kind=ServerKind.LOCAL)


def resolve_servers(state: State, names: Sequence[str], *, every_ssh_server: bool) -> list[str]:
    """The servers a command works on: those named, or every SSH server of the inventory.

    :raises RegistryError: when a name is not in the inventory.
    """
    known = {spec.name: spec for spec in state.registry.list_server_specs()}
    if every_ssh_server:
        return [name for name, spec in known.items() if spec.kind is ServerKind.SSH]
    for name in names:
        if name not in known and name != LOCAL_SERVER:
            raise RegistryError(f"no server called {name!r} (see `healer servers list`)")
    return list(dict.fromkeys(names))


@contextlib.contextmanager
def _progress(state: State, what: str, total: int, *, show: bool) -> Iterator[Callable[[], None]]:
    """A progress bar on standard error (a terminal only); yields the function that advances it."""
    if not show or not state.err.is_terminal or total < 2:
        yield lambda: None
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=state.err,
        transient=True,
    )
    with progress:
        task = progress.add_task(what, total=total)
        yield lambda: progress.advance(task)


def _run(state: State, specs: list[ServerSpec], box: SecretBox | None, **options: Any) -> Fleet:
    return Fleet.of(
        specs,
        box,
        registry=state.registry,
        connect_timeout=options["connect_timeout"],
        command_timeout=options.get("command_timeout", 60.0),
    )


async def _with_fleet(fleet: Fleet, work: Callable[[Fleet], Awaitable[T]]) -> T:
    async with fleet:
        return await work(fleet)


# --------------------------------------------------------------------------------------------
# Discovery


class DiscoveryRun:
    """A fleet discovery's outcome: the reports and failures by server, and what was recorded."""

    def __init__(self, outcomes: dict[str, DiscoveryReport | HostFailure]) -> None:
        self.reports = {n: o for n, o in outcomes.items() if isinstance(o, DiscoveryReport)}
        self.failures = [o for o in outcomes.values() if isinstance(o, HostFailure)]
        self.recorded: dict[str, list[Application]] = {}


def _pins(state: State, server: str) -> dict[str, Override]:
    return {
        app.path: Override(stack=app.stack, version=app.stack_version, method=app.detection_method)
        for app in state.registry.list_applications(server=server)
        if app.detection_method is not DetectionMethod.AUTO
    }


def discover_servers(
    state: State,
    manager: PluginManager,
    names: Sequence[str],
    *,
    paths: Sequence[str] | None,
    depth: int,
    connect_timeout: float,
    show_progress: bool,
    services: bool = False,
) -> DiscoveryRun:
    """Discover the applications of ``names`` concurrently and record them (with their host
    services when ``services``)."""
    specs, box = _specs(state, names)
    overrides = {spec.name: _pins(state, spec.name) for spec in specs}
    fleet = _run(state, specs, box, connect_timeout=connect_timeout)
    with _progress(state, "discovering", len(specs), show=show_progress) as advance:

        def work(fleet: Fleet) -> Awaitable[dict[str, DiscoveryReport | HostFailure]]:
            return discover_fleet(
                fleet,
                manager,
                specs,
                paths=paths,
                max_depth=depth,
                overrides=overrides,
                on_host_done=lambda _: advance(),
                services=services,
            )

        run = DiscoveryRun(asyncio.run(_with_fleet(fleet, work)))
    for name, report in run.reports.items():
        run.recorded[name] = record_discovery(state, manager, name, report)
    return run


def record_discovery(
    state: State, manager: PluginManager, server: str, report: DiscoveryReport
) -> list[Application]:
    """Record what discovery found on ``server``; return the applications as recorded."""
    if server == LOCAL_SERVER:
        state.registry.ensure_server(LOCAL_SERVER, kind="local")
    recorded: list[Application] = []
    for found in report.apps:
        best = found.outcome.best
        assert best is not None  # noqa: S101 - discovery only returns recognised roots
        recorded.append(
            state.registry.upsert_application(
                server=server,
                path=found.root,
                stack=best.stack,
                stack_version=best.version,
                confidence=best.confidence,
                evidence=found.outcome.evidence,
            )
        )
        manager.metrics.discovered_applications_total.labels(stack=best.stack).inc()
    return recorded


# --------------------------------------------------------------------------------------------
# Diagnosis


def diagnose_apps(
    state: State,
    manager: PluginManager,
    apps: Sequence[Application],
    *,
    connect_timeout: float,
    show_progress: bool,
) -> FleetDiagnosis:
    """Diagnose ``apps`` on their servers concurrently and record the outcome: each diagnosis,
    and UNKNOWN with the reason for every application whose server failed."""
    names = list(dict.fromkeys(app.server for app in apps))
    specs, box = _specs(state, names)
    fleet = _run(state, specs, box, connect_timeout=connect_timeout)
    with _progress(state, "diagnosing", len(apps), show=show_progress) as advance:

        def work(fleet: Fleet) -> Awaitable[FleetDiagnosis]:
            return diagnose_fleet(fleet, manager, apps, on_app_done=lambda _: advance())

        outcome = asyncio.run(_with_fleet(fleet, work))
    for item in outcome.diagnoses:
        if item.note is None:
            state.registry.record_diagnosis(
                item.app.id,
                item.results,
                health_score=item.health_score,
                health_status=item.health_status,
                at=item.started_at,
            )
    for failure in outcome.failures:
        _record_unreachable(state, failure)
    return outcome


def _unreachable_result(failure: HostFailure) -> CheckResult:
    return CheckResult(
        check=UNREACHABLE_CHECK,
        category=CheckCategory.SYSTEM,
        status=CheckStatus.ERROR,
        severity=RiskLevel.HIGH,
        message=f"not diagnosed: server {failure.server}: {failure.error}",
        details={"server": failure.server, "error": failure.error},
    )


def _record_unreachable(state: State, failure: HostFailure) -> None:
    """Mark the applications of a failed server UNKNOWN, the reason recorded.

    The registry has no way yet to change an application's health while keeping its last
    results, so this records a diagnosis of one ERROR result that says why; the earlier
    results stay in the database under their own run.
    """
    at = utcnow()
    result = _unreachable_result(failure)
    for app in failure.apps:
        state.registry.record_diagnosis(
            app.id, (result,), health_score=0, health_status=HealthStatus.UNKNOWN, at=at
        )
    state.registry.audit(
        "cli",
        "host_unreachable",
        failure.server,
        {"error": failure.error, "applications": [app.id for app in failure.apps]},
    )


def failure_json(failure: HostFailure) -> dict[str, Any]:
    """A server's failure for ``--json`` output."""
    return {
        "server": failure.server,
        "error": failure.error,
        "applications": [app.id for app in failure.apps],
    }


def unreachable_json(app: Application, failure: HostFailure) -> dict[str, Any]:
    """An application a failed server kept from being diagnosed, as a ``diagnose --json``
    entry: UNKNOWN, no results, the reason in ``note`` and ``failure``."""
    entry = _render.diagnosis_json(
        Diagnosis(
            app=app,
            results=(),
            health_score=0,
            health_status=HealthStatus.UNKNOWN,
            plan=HealingPlan(),
            note=f"not diagnosed: server {failure.server}: {failure.error}",
        )
    )
    entry["failure"] = {"server": failure.server, "error": failure.error}
    return entry
