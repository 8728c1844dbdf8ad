"""Discovery: find candidate application roots on a host and probe them for detection.

One scan walks the search paths (bounded depth, never into ``node_modules``, ``vendor``,
``.git`` and friends, never through a symlink) and lists every directory that holds a marker
file. Then the probe files every plugin asked for are read for all candidates at once, one
batch per size cap, so probing a hundred roots costs the same round trips as probing one.

A candidate inside an application that *claims* that subtree (a WordPress theme's
``package.json`` under ``wp-content/``, a Laravel app's ``resources/``) is part of that app.
Any other nested candidate is an application of its own (a monorepo's ``backend/`` and
``frontend/``).

Stacks that are host services (a database server, a cache) are found by what runs rather than by
files: with ``services=True`` the host's facts (listening sockets, process names) are gathered
once and handed to every plugin's ``healer_detect_services``. A service whose root (its data
directory) the scan also found merges with that application; any other becomes an application
at its root, with an empty probe.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence

import attrs

from universal_healer.detection import DetectionOutcome, Override, decide, rank
from universal_healer.exceptions import RemoteError
from universal_healer.hosts.base import FileRead, Host, ScannedDir
from universal_healer.model import (
    Detection,
    DetectionMethod,
    ProbedFile,
    ProbeFile,
    SiteProbe,
    StackInfo,
)
from universal_healer.plugins import PluginManager

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_SEARCH_PATHS",
    "PRUNED_DIRS",
    "DiscoveredApp",
    "DiscoveryReport",
    "SkippedRoot",
    "discover",
    "probe_paths",
    "probe_roots",
]

DEFAULT_SEARCH_PATHS: tuple[str, ...] = ("/var/www", "/srv", "/opt", "/home/*/public_html")
DEFAULT_MAX_DEPTH = 5
PRUNED_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", "node_modules", "vendor", "bower_components", "__pycache__",
        ".venv", "venv", ".tox", ".nox", ".cache", ".next", ".nuxt", ".npm", ".yarn",
    }
)  # fmt: skip


@attrs.frozen(kw_only=True)
class DiscoveredApp:
    """An application root found on a host, with the detection verdict and its probe."""

    host: str
    root: str
    outcome: DetectionOutcome
    probe: SiteProbe

    @property
    def stack(self) -> str:
        """The winning stack id."""
        assert self.outcome.best is not None  # noqa: S101 - only recognised roots become apps
        return self.outcome.best.stack


@attrs.frozen(kw_only=True)
class SkippedRoot:
    """A candidate root that did not become an application, and why."""

    path: str
    reason: str


@attrs.frozen(kw_only=True)
class DiscoveryReport:
    """Everything one discovery run on one host found and could not look at."""

    host: str
    apps: tuple[DiscoveredApp, ...] = ()
    skipped: tuple[SkippedRoot, ...] = ()
    errors: tuple[str, ...] = ()


def _wanted(candidate: ScannedDir, probe_file: ProbeFile) -> bool:
    """Whether a probe file can exist at all, judging by the root's listing (a truncated
    listing cannot tell, so everything is read)."""
    if candidate.truncated:
        return True
    first, _, rest = probe_file.path.partition("/")
    return (first + "/" in candidate.entries) if rest else (first in candidate.entries)


async def probe_roots(
    host: Host, candidates: Sequence[ScannedDir], probe_files: Sequence[ProbeFile]
) -> tuple[SiteProbe, ...]:
    """Read every probe file of every candidate, one batch per size cap."""
    by_cap: dict[int, list[str]] = defaultdict(list)
    plan: list[tuple[ScannedDir, ProbeFile, str | None]] = []  # (root, file, absolute path)
    for candidate in candidates:
        for probe_file in probe_files:
            absolute = os.path.join(candidate.path, probe_file.path)
            if _wanted(candidate, probe_file):
                by_cap[probe_file.max_bytes].append(absolute)
                plan.append((candidate, probe_file, absolute))
            else:
                plan.append((candidate, probe_file, None))
    reads: dict[str, FileRead] = {}
    caps = sorted(by_cap.items())  # one batch per cap, all at once
    for batch in await asyncio.gather(*(host.read_files(p, max_bytes=c) for c, p in caps)):
        reads.update(batch)

    files: dict[str, list[ProbedFile]] = defaultdict(list)
    for candidate, probe_file, wanted_path in plan:
        read = reads.get(wanted_path) if wanted_path is not None else None
        if read is None:
            probed = ProbedFile(path=probe_file.path, error="missing")
        else:
            probed = ProbedFile(
                path=probe_file.path,
                data=read.data,
                size=read.size,
                truncated=read.truncated,
                error=read.error,
            )
        files[candidate.path].append(probed)
    return tuple(
        SiteProbe(
            host=host.name,
            root=candidate.path,
            entries=candidate.entries,
            files=tuple(files[candidate.path]),
        )
        for candidate in candidates
    )


def _claimed_by(root: str, apps: Sequence[DiscoveredApp]) -> DiscoveredApp | None:
    for app in apps:
        prefix = app.root.rstrip("/") + "/"
        if not root.startswith(prefix) or app.outcome.best is None:
            continue
        relative = root[len(prefix) :]
        for claim in app.outcome.best.claims:
            if relative == claim or relative.startswith(claim.rstrip("/") + "/"):
                return app
    return None


def _merge_service(
    outcome: DetectionOutcome, service: Detection, stacks: Mapping[str, StackInfo]
) -> DetectionOutcome:
    """A file-found application's verdict with a service detection at the same root added: the
    same stack merges (the higher confidence wins, evidence adds up; a pin stays as pinned),
    another stack is ranked with the rest."""
    best = outcome.best
    assert best is not None  # noqa: S101 - only recognised roots become apps
    if best.stack == service.stack:
        winner, other = (best, service)
        if outcome.method is DetectionMethod.AUTO and service.confidence > best.confidence:
            winner, other = (service, best)
        merged = attrs.evolve(
            winner,
            version=winner.version or other.version,
            evidence=(*winner.evidence, *(e for e in other.evidence if e not in winner.evidence)),
            claims=best.claims,
        )
        return attrs.evolve(outcome, best=merged)
    if outcome.method is DetectionMethod.AUTO:
        ranked = rank((best, *outcome.runners_up, service), stacks)
        return attrs.evolve(outcome, best=ranked[0], runners_up=ranked[1:])
    return attrs.evolve(outcome, runners_up=rank((*outcome.runners_up, service), stacks))


async def _detect_services(
    host: Host, manager: PluginManager, errors: list[str]
) -> tuple[Detection, ...]:
    """The host services the plugins recognise; a host fault is an error, not an exception."""
    if not manager.detects_services:
        return ()  # no plugin asks: spare the host the facts command
    try:
        facts = await host.facts()
    except (RemoteError, OSError) as err:
        errors.append(f"host services: could not gather the host's facts: {err}")
        return ()
    return manager.detect_services(facts)


def _add_services(
    host_name: str,
    apps: list[DiscoveredApp],
    skipped: list[SkippedRoot],
    found: Sequence[Detection],
    *,
    stacks: Mapping[str, StackInfo],
    pins: Mapping[str, Override],
) -> tuple[list[DiscoveredApp], list[SkippedRoot]]:
    """The scan's applications with the host services added: merged into the app at the same
    root, or each a new app at its root (empty probe); sorted by root."""
    by_root: dict[str, list[Detection]] = defaultdict(list)
    for detection in found:
        assert detection.root is not None  # noqa: S101 - the manager drops rootless ones
        by_root[os.path.normpath(detection.root)].append(detection)
    apps = list(apps)
    for root, detections in sorted(by_root.items()):
        index = next((i for i, app in enumerate(apps) if os.path.normpath(app.root) == root), None)
        if index is not None:
            outcome = apps[index].outcome
            for detection in detections:
                outcome = _merge_service(outcome, detection, stacks)
            apps[index] = attrs.evolve(apps[index], outcome=outcome)
            continue
        outcome = decide(root, detections, stacks, pins.get(root))
        probe = SiteProbe(host=host_name, root=root)
        apps.append(DiscoveredApp(host=host_name, root=root, outcome=outcome, probe=probe))
        skipped = [s for s in skipped if os.path.normpath(s.path) != root]
    return sorted(apps, key=lambda app: app.root), skipped


async def discover(
    host: Host,
    manager: PluginManager,
    paths: Sequence[str] = DEFAULT_SEARCH_PATHS,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    overrides: Mapping[str, Override] | None = None,
    services: bool = True,
) -> DiscoveryReport:
    """Find and recognise the applications under ``paths`` on ``host``.

    :param overrides: operator pins by application root path.
    :param services: also detect host services (databases, caches) from the host's facts,
        each an application at its plugin's root, merged with a scanned app at that root.
    :returns: the applications, the candidates that were not applications (with reasons)
        and every path that could not be looked at. Never raises for bad paths.
    """
    probe_files = manager.probe_files()
    markers = frozenset(f.path for f in probe_files if f.marker)
    scan = await host.scan(paths, markers=markers, prune=PRUNED_DIRS, max_depth=max_depth)
    probes = await probe_roots(host, scan.candidates, probe_files)
    stacks = manager.stacks()
    pins = overrides or {}

    apps: list[DiscoveredApp] = []
    skipped: list[SkippedRoot] = []
    for probe in sorted(probes, key=lambda p: p.root):
        owner = _claimed_by(probe.root, apps)
        if owner is not None:
            relative = probe.root[len(owner.root.rstrip("/")) + 1 :]
            skipped.append(
                SkippedRoot(
                    path=probe.root,
                    reason=f"part of the {owner.stack} app at {owner.root} ({relative})",
                )
            )
            continue
        outcome = decide(probe.root, manager.detect(probe), stacks, pins.get(probe.root))
        if outcome.best is None:
            skipped.append(SkippedRoot(path=probe.root, reason="no plugin recognised it"))
            continue
        apps.append(DiscoveredApp(host=host.name, root=probe.root, outcome=outcome, probe=probe))
    errors = list(scan.errors)
    if services:
        found = await _detect_services(host, manager, errors)
        apps, skipped = _add_services(host.name, apps, skipped, found, stacks=stacks, pins=pins)
    return DiscoveryReport(
        host=host.name, apps=tuple(apps), skipped=tuple(skipped), errors=tuple(errors)
    )


async def probe_paths(
    host: Host, manager: PluginManager, paths: Sequence[str]
) -> dict[str, SiteProbe]:
    """Probe known application roots again (for diagnosis), keyed by path.

    A root that cannot be listed is left out; its checks run without a probe.
    """

    async def listing(path: str) -> ScannedDir | None:
        try:
            entries = await host.list_dir(path)
        except OSError:
            return None
        names = frozenset(e.name + "/" if e.is_dir else e.name for e in entries)
        return ScannedDir(path=path, entries=names)

    scanned = [s for s in await asyncio.gather(*(listing(p) for p in paths)) if s is not None]
    probes = await probe_roots(host, scanned, manager.probe_files())
    return {probe.root: probe for probe in probes}
