"""Fleets: one pooled connection per server, and discovery and diagnosis across many at once.

A :class:`Fleet` holds one :class:`~universal_healer.hosts.base.Host` per server for a run and
closes them all at the end::

    async with Fleet.of(specs, resolve=registry_lookup) as fleet:
        reports = await discover_fleet(fleet, manager, specs)
        outcome = await diagnose_fleet(fleet, manager, apps)

Each server's host is made by :func:`host_for` (:func:`ssh_config_for` for an SSH server), from
:mod:`universal_healer._host_factory`.

Hosts are worked on concurrently (32 at once by default). On each host the applications share
one connection, one :class:`~universal_healer.checks.HostRun` (host facts gathered once, and
host-wide queries such as the ``file_permissions`` check's ``find`` asked for many roots at
once) and bounded concurrency; their roots are listed and probed in one batch and concurrent
``stat`` calls are coalesced (:mod:`universal_healer._fleet_host`), so remote commands grow
with hosts rather than with applications x checks. What remains per application is what a
check runs on its own, without a host-wide form.

One dead, slow or misconfigured host fails only its own work: discovery gives each server its
:class:`~universal_healer.discovery.DiscoveryReport` or a :class:`HostFailure`; diagnosis gives
the diagnoses it could make and one :class:`HostFailure` per server, naming the applications
it could not diagnose (every one for an unreachable host, the unfinished ones for a host lost
in the middle). Nothing here writes to the registry: callers record.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import attrs

from universal_healer._app_host import AppHost
from universal_healer._fleet_host import BatchingHost, probe_apps
from universal_healer._host_factory import (
    DEFAULT_COMMAND_TIMEOUT_S,
    DEFAULT_CONNECT_TIMEOUT_S,
    FirstUse,
    Resolver,
    ServerStore,
    host_for,
    ssh_config_for,
)
from universal_healer.checks import DEFAULT_TIMEOUT_S, HostQuery, HostRun, close_run
from universal_healer.detection import Override
from universal_healer.diagnosis import Diagnosis, diagnose
from universal_healer.discovery import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_SEARCH_PATHS,
    DiscoveryReport,
    discover,
)
from universal_healer.exceptions import ConfigurationError, HealerError, RemoteError
from universal_healer.hosts.base import Host
from universal_healer.hosts.ssh import SSHHost
from universal_healer.inventory import ServerSpec
from universal_healer.model import Application
from universal_healer.plugins import PluginManager

if TYPE_CHECKING:
    from universal_healer.secrets import SecretBox

__all__ = [
    "DEFAULT_APPS_PER_HOST",
    "DEFAULT_CHECKS_PER_HOST",
    "DEFAULT_HOSTS_AT_ONCE",
    "Fleet",
    "FleetDiagnosis",
    "HostFailure",
    "ServerStore",
    "diagnose_fleet",
    "discover_fleet",
    "host_for",
    "ssh_config_for",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_HOSTS_AT_ONCE = 32
DEFAULT_APPS_PER_HOST = 16
DEFAULT_CHECKS_PER_HOST = 32


@attrs.frozen(kw_only=True)
class HostFailure:
    """A server whose work failed, and why.

    :param server: the server's name.
    :param error: what went wrong, for people (``connection refused (nothing listens ...)``).
    :param apps: the applications left undiagnosed because of it (diagnosis only).
    """

    server: str
    error: str
    apps: tuple[Application, ...] = ()

    def __str__(self) -> str:
        return f"{self.server}: {self.error}"


@attrs.frozen(kw_only=True)
class FleetDiagnosis:
    """What a fleet diagnosis produced: diagnoses by server then path, failures by server."""

    diagnoses: tuple[Diagnosis, ...] = ()
    failures: tuple[HostFailure, ...] = ()


# --------------------------------------------------------------------------------------------
# From the inventory to hosts


@attrs.define
class Fleet:
    """One host per server for a run; ``async with`` closes their connections at the end.

    :param hosts: the hosts by server name.
    :param problems: servers that could not be made into a host, with the reason.
    """

    hosts: dict[str, Host] = attrs.field(factory=dict)
    problems: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def of(
        cls,
        specs: Sequence[ServerSpec],
        box: SecretBox | None = None,
        *,
        registry: ServerStore | None = None,
        resolve: Resolver | None = None,
        on_first_use: FirstUse | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT_S,
    ) -> Fleet:
        """A fleet of ``specs`` (see :func:`host_for` for the parameters); a spec that cannot
        become a host is kept as a problem, so that it fails its own work only."""
        fleet = cls()
        for spec in specs:
            try:
                fleet.hosts[spec.name] = host_for(
                    spec,
                    box,
                    registry=registry,
                    resolve=resolve,
                    on_first_use=on_first_use,
                    connect_timeout=connect_timeout,
                    command_timeout=command_timeout,
                )
            except HealerError as err:
                fleet.problems[spec.name] = str(err)
        return fleet

    def host(self, server: str) -> Host:
        """The host of ``server``.

        :raises ConfigurationError: when the server is not in the fleet or could not be made
            into a host (the reason is in the message).
        """
        if server in self.problems:
            raise ConfigurationError(self.problems[server])
        if server not in self.hosts:
            raise ConfigurationError(f"server {server!r} is not in the inventory")
        return self.hosts[server]

    def round_trips(self) -> dict[str, int]:
        """Remote commands run so far, by SSH server."""
        return {
            name: host.round_trips for name, host in self.hosts.items() if isinstance(host, SSHHost)
        }

    async def close(self) -> None:
        """Close every host's connection (safe to repeat)."""
        await asyncio.gather(*(host.close() for host in self.hosts.values()))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


# --------------------------------------------------------------------------------------------
# Work across the fleet


def _failure(server: str, err: BaseException, apps: Sequence[Application]) -> HostFailure:
    if isinstance(err, RemoteError):
        message = err.reason
    elif isinstance(err, HealerError):
        message = str(err)
    else:
        message = f"internal error: {type(err).__name__}: {err}"
    return HostFailure(server=server, error=message, apps=tuple(apps))


async def _guarded(
    fleet: Fleet,
    server: str,
    gate: asyncio.Semaphore,
    work: Callable[[Host], Awaitable[T]],
    *,
    host_timeout: float | None,
    apps: Sequence[Application] = (),
) -> T | HostFailure:
    """Run one server's ``work`` under the fleet's bound; any failure becomes its HostFailure."""
    async with gate:
        try:
            host = fleet.host(server)
            async with asyncio.timeout(host_timeout):
                return await work(host)
        except TimeoutError:
            reason = f"did not finish within {host_timeout:g} s (the host is too slow)"
            return HostFailure(server=server, error=reason, apps=tuple(apps))
        except HealerError as err:
            return _failure(server, err, apps)
        except Exception as err:
            log.warning("work on %s failed unexpectedly", server, exc_info=True)
            return _failure(server, err, apps)


async def discover_fleet(
    fleet: Fleet,
    manager: PluginManager,
    servers: Sequence[ServerSpec],
    *,
    paths: Sequence[str] | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    overrides: Mapping[str, Mapping[str, Override]] | None = None,
    hosts_at_once: int = DEFAULT_HOSTS_AT_ONCE,
    host_timeout: float | None = None,
    on_host_done: Callable[[str], None] | None = None,
    services: bool = False,
) -> dict[str, DiscoveryReport | HostFailure]:
    """Discover the applications of many servers at once.

    :param paths: where to look on every server; by default each server's own search paths,
        or :data:`~universal_healer.discovery.DEFAULT_SEARCH_PATHS` when it has none.
    :param overrides: operator pins by server name, then application root.
    :param hosts_at_once: how many servers are worked on concurrently.
    :param host_timeout: seconds one server may take before it is failed as too slow.
    :param on_host_done: called with each server's name when its work ends, either way.
    :param services: also detect each server's host services (databases, caches), at the
        cost of one more round trip per server.
    :returns: each server's report or failure, by server name in the order given.
    """
    gate = asyncio.Semaphore(hosts_at_once)
    pins = overrides or {}

    async def one(spec: ServerSpec) -> DiscoveryReport | HostFailure:
        search = list(paths or spec.search_paths or DEFAULT_SEARCH_PATHS)

        def work(host: Host) -> Awaitable[DiscoveryReport]:
            return discover(
                host,
                manager,
                search,
                max_depth=max_depth,
                overrides=pins.get(spec.name),
                services=services,
            )

        outcome = await _guarded(fleet, spec.name, gate, work, host_timeout=host_timeout)
        if on_host_done is not None:
            on_host_done(spec.name)
        return outcome

    outcomes = await asyncio.gather(*(one(spec) for spec in servers))
    return {spec.name: outcome for spec, outcome in zip(servers, outcomes, strict=True)}


@attrs.frozen(kw_only=True)
class _Limits:
    apps_per_host: int
    checks_per_host: int
    default_timeout: float
    command_timeout: float


def _usual_stats(app: Application, manager: PluginManager) -> list[str]:
    """The paths checks commonly ``stat``: the root, and the stack's secret files and ``.env``
    (the shared ``file_permissions`` check looks at their modes)."""
    stack = manager.stack(app.stack)
    secrets = stack.secret_files if stack is not None else ()
    return [app.path, *(os.path.join(app.path, name) for name in (*secrets, ".env"))]


def _queries(
    apps: Sequence[Application], manager: PluginManager
) -> list[tuple[HostQuery[Any, Any], Hashable]]:
    """The host-wide questions the checks of these applications declare they will ask."""
    asks: list[tuple[HostQuery[Any, Any], Hashable]] = []
    for app in apps:
        stack = manager.stack(app.stack)
        if stack is None:
            continue
        for check in manager.checks_for(app.stack):
            try:
                asks.extend(check.queries(app, stack))
            except Exception:  # the check's own run reports what is wrong
                log.warning("check %s: queries() failed", check.name, exc_info=True)
    return asks


async def _diagnose_host(
    host: Host,
    apps: Sequence[Application],
    manager: PluginManager,
    limits: _Limits,
    on_app_done: Callable[[Application], None] | None,
) -> tuple[list[Diagnosis], HostFailure | None]:
    view = BatchingHost(
        host, batch=isinstance(host, SSHHost), command_timeout=limits.command_timeout
    )
    run = HostRun(view)
    try:
        run.prime(_queries(apps, manager))
        # Reach the host, gather its facts and probe every root before any check runs: a host
        # that cannot be reached fails here as a whole, with one clear reason.
        _, probes, _ = await asyncio.gather(
            run.facts(),
            probe_apps(view, manager, [app.path for app in apps]),
            view.prefetch_stats([path for app in apps for path in _usual_stats(app, manager)]),
        )
        checks = asyncio.Semaphore(limits.checks_per_host)
        gate = asyncio.Semaphore(limits.apps_per_host)

        async def one(app: Application) -> tuple[Diagnosis, AppHost]:
            seen = AppHost(view)
            async with gate:
                diagnosis = await diagnose(
                    seen,
                    app,
                    manager,
                    probe=probes.get(app.path),
                    host_run=run.watched(seen.notice),
                    limit=checks,
                    default_timeout=limits.default_timeout,
                )
            if on_app_done is not None:
                on_app_done(app)
            return diagnosis, seen

        outcomes = await asyncio.gather(*(one(app) for app in apps))
    finally:
        await close_run(run)  # the resources checks kept for the run
    await view.close()
    done = [diagnosis for diagnosis, seen in outcomes if seen.lost is None]
    lost = [(diagnosis.app, seen.lost) for diagnosis, seen in outcomes if seen.lost is not None]
    if not lost:
        return done, None
    first = lost[0][1]
    assert first is not None  # noqa: S101 - filtered above
    failure = HostFailure(server=host.name, error=first.reason, apps=tuple(app for app, _ in lost))
    return done, failure


async def diagnose_fleet(
    fleet: Fleet,
    manager: PluginManager,
    apps: Sequence[Application],
    *,
    hosts_at_once: int = DEFAULT_HOSTS_AT_ONCE,
    apps_per_host: int = DEFAULT_APPS_PER_HOST,
    checks_per_host: int = DEFAULT_CHECKS_PER_HOST,
    default_timeout: float = DEFAULT_TIMEOUT_S,
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT_S,
    host_timeout: float | None = None,
    on_app_done: Callable[[Application], None] | None = None,
) -> FleetDiagnosis:
    """Diagnose applications on many servers at once, each on the server it lives on.

    :param apps_per_host: applications diagnosed at once on one server.
    :param checks_per_host: checks running at once on one server (SSH channels are bounded
        below that by each server's ``max_channels``).
    :param default_timeout: seconds for a check that sets no timeout of its own.
    :param command_timeout: seconds for each batched probe command.
    :param host_timeout: seconds one server may take before it is failed as too slow.
    :param on_app_done: called once for every application, diagnosed or failed.
    :returns: the diagnoses that could be made, and a failure per server that could not
        diagnose some or all of its applications (an application appears in exactly one).
    """
    by_server: dict[str, list[Application]] = {}
    for app in apps:
        by_server.setdefault(app.server, []).append(app)
    gate = asyncio.Semaphore(hosts_at_once)
    limits = _Limits(
        apps_per_host=apps_per_host,
        checks_per_host=checks_per_host,
        default_timeout=default_timeout,
        command_timeout=command_timeout,
    )

    reported: set[str] = set()

    def done(app: Application) -> None:
        if app.id not in reported:
            reported.add(app.id)
            if on_app_done is not None:
                on_app_done(app)

    async def one(
        server: str, group: list[Application]
    ) -> tuple[list[Diagnosis], HostFailure | None]:
        def work(host: Host) -> Awaitable[tuple[list[Diagnosis], HostFailure | None]]:
            return _diagnose_host(host, group, manager, limits, done)

        outcome = await _guarded(fleet, server, gate, work, host_timeout=host_timeout, apps=group)
        if isinstance(outcome, HostFailure):
            for app in outcome.apps:
                done(app)
            return [], outcome
        return outcome

    outcomes = await asyncio.gather(*(one(server, group) for server, group in by_server.items()))
    diagnoses = [d for done, _ in outcomes for d in done]
    failures = [failure for _, failure in outcomes if failure is not None]
    return FleetDiagnosis(
        diagnoses=tuple(sorted(diagnoses, key=lambda d: (d.app.server, d.app.path))),
        failures=tuple(sorted(failures, key=lambda f: f.server)),
    )
