"""The plugin manager: built-in plugins plus everything under the ``universal_healer`` entry
point group, behind a typed facade so that no other module touches ``pm.hook``.

Each hook implementation is called on its own: a plugin that raises is reported with its name
and the error, counted in ``healer_plugin_errors_total`` and skipped; the others still answer.
A plugin that fails to import is listed with its error and never registered.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any

import attrs
import pluggy

from universal_healer import hookspecs
from universal_healer.backup import BackupStrategy
from universal_healer.checks import DiagnosticCheck
from universal_healer.hookspecs import PROJECT_NAME
from universal_healer.hosts.base import HostFacts
from universal_healer.metrics import Metrics, default_metrics
from universal_healer.model import Detection, ProbeFile, SiteProbe, StackInfo
from universal_healer.strategies import HealingStrategy

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginFailure",
    "PluginInfo",
    "PluginManager",
    "build_plugin_manager",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = PROJECT_NAME

BUILTIN_PLUGINS: tuple[str, ...] = (
    "universal_healer.builtin.shared",
    "universal_healer.builtin.signatures",
)
"""Built-in plugins, written exactly like external ones and registered under these names."""


@attrs.frozen(kw_only=True)
class PluginInfo:
    """One plugin as the manager sees it (loaded, disabled or broken)."""

    name: str
    version: str | None
    builtin: bool
    enabled: bool
    distribution: str | None = None
    stacks: tuple[str, ...] = ()
    error: str | None = None


@attrs.frozen(kw_only=True)
class PluginFailure:
    """A plugin that failed to load (``hook`` None) or raised in a hook."""

    plugin: str
    hook: str | None
    reason: str

    def __str__(self) -> str:
        where = f"in hook {self.hook}" if self.hook else "while loading"
        return f"plugin {self.plugin!r} failed {where}: {self.reason}"


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


@attrs.define
class PluginManager:
    """A typed facade over the pluggy manager. Build it with :func:`build_plugin_manager`."""

    _pm: pluggy.PluginManager
    _infos: dict[str, PluginInfo]
    metrics: Metrics
    failures: list[PluginFailure] = attrs.field(factory=list)
    _stacks: dict[str, StackInfo] | None = None
    _stack_owners: list[tuple[str, str]] = attrs.field(factory=list)
    _conflicts: set[tuple[str, str, str, str]] = attrs.field(factory=set)

    # -- plumbing ------------------------------------------------------------------------

    def _fail(self, plugin: str, hook: str | None, err: BaseException | str) -> None:
        reason = err if isinstance(err, str) else _describe(err)
        failure = PluginFailure(plugin=plugin, hook=hook, reason=reason)
        self.failures.append(failure)
        self.metrics.plugin_errors_total.labels(plugin=plugin, hook=hook or "load").inc()
        log.warning("%s", failure)

    def _call(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of ``hook`` on its own; (plugin name, answer) pairs,
        sorted by plugin name, skipping None answers and implementations that raised."""
        caller: pluggy.HookCaller = getattr(self._pm.hook, hook)
        answers: list[tuple[str, Any]] = []
        for impl in caller.get_hookimpls():
            args = {name: kwargs[name] for name in impl.argnames}
            try:
                answer = impl.function(**args)
            except Exception as err:  # noqa: BLE001 - a broken plugin must not break the run
                self._fail(impl.plugin_name, hook, err)
                continue
            if answer is not None:
                answers.append((impl.plugin_name, answer))
        answers.sort(key=lambda pair: pair[0])
        return answers

    def _typed_list(
        self, hook: str, expected: type[Any], answers: Iterable[tuple[str, Any]]
    ) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for plugin, answer in answers:
            items = answer if isinstance(answer, list | tuple) else None
            if items is None:
                self._fail(plugin, hook, f"returned {type(answer).__name__}, not a sequence")
                continue
            for item in items:
                if isinstance(item, expected):
                    out.append((plugin, item))
                else:
                    self._fail(
                        plugin, hook, f"returned a {type(item).__name__}, not a {expected.__name__}"
                    )
        return out

    # -- the facade ----------------------------------------------------------------------

    def plugins(self) -> tuple[PluginInfo, ...]:
        """Every plugin known, loaded or not, sorted by name; stacks filled in."""
        stacks_by_plugin: dict[str, list[str]] = {}
        if self._stacks is None:
            self.stacks()
        for plugin, stack in self._stack_owners:
            stacks_by_plugin.setdefault(plugin, []).append(stack)
        return tuple(
            attrs.evolve(info, stacks=tuple(sorted(stacks_by_plugin.get(name, ()))))
            for name, info in sorted(self._infos.items())
        )

    def stacks(self) -> Mapping[str, StackInfo]:
        """Every declared stack by id. A duplicate id is reported against the later plugin."""
        if self._stacks is None:
            stacks: dict[str, StackInfo] = {}
            owners: list[tuple[str, str]] = []
            for plugin, stack in self._typed_list(
                "healer_stacks", StackInfo, self._call("healer_stacks")
            ):
                if stack.id in stacks:
                    self._fail(plugin, "healer_stacks", f"stack {stack.id!r} is already declared")
                    continue
                stacks[stack.id] = stack
                owners.append((plugin, stack.id))
            self._stacks = stacks
            self._stack_owners = owners
        return self._stacks

    def stack(self, stack_id: str) -> StackInfo | None:
        """The stack with this id, or None when no enabled plugin declares it."""
        return self.stacks().get(stack_id)

    def lineage(self, stack_id: str) -> tuple[StackInfo, ...]:
        """The stack and its ancestors, child first; empty for an unknown stack."""
        chain: list[StackInfo] = []
        current = self.stack(stack_id)
        while current is not None and current not in chain:
            chain.append(current)
            current = self.stack(current.parent) if current.parent else None
        return tuple(chain)

    def probe_files(self) -> tuple[ProbeFile, ...]:
        """Every probe file asked for, merged by path (largest cap, marker if any asks)."""
        merged: dict[str, ProbeFile] = {}
        for _, wanted in self._typed_list(
            "healer_probe_files", ProbeFile, self._call("healer_probe_files")
        ):
            known = merged.get(wanted.path)
            if known is None:
                merged[wanted.path] = wanted
            else:
                merged[wanted.path] = ProbeFile(
                    path=wanted.path,
                    marker=known.marker or wanted.marker,
                    max_bytes=max(known.max_bytes, wanted.max_bytes),
                )
        return tuple(sorted(merged.values(), key=lambda f: f.path))

    def detect(self, probe: SiteProbe) -> tuple[Detection, ...]:
        """Every plugin's detection for ``probe``, each stamped with its plugin's name.

        A detection of a stack nobody declared is reported as a plugin error and dropped.
        """
        known = self.stacks()
        found: list[Detection] = []
        for plugin, answer in self._call("healer_detect", probe=probe):
            if not isinstance(answer, Detection):
                self._fail(plugin, "healer_detect", f"returned {type(answer).__name__}")
                continue
            if answer.stack not in known:
                self._fail(plugin, "healer_detect", f"detected undeclared stack {answer.stack!r}")
                continue
            found.append(attrs.evolve(answer, plugin=plugin))
        return tuple(found)

    @property
    def detects_services(self) -> bool:
        """Whether any enabled plugin implements ``healer_detect_services`` (when none does,
        discovery need not gather the host's facts)."""
        return bool(self._pm.hook.healer_detect_services.get_hookimpls())

    def detect_services(self, facts: HostFacts) -> tuple[Detection, ...]:
        """Every plugin's host-service detections for ``facts``, stamped with the plugin's
        name, sorted by root, stack and plugin.

        A detection of a stack nobody declared, or without a root, is reported as a plugin
        error and dropped.
        """
        hook = "healer_detect_services"
        known = self.stacks()
        found: list[Detection] = []
        for plugin, answer in self._typed_list(hook, Detection, self._call(hook, facts=facts)):
            if answer.stack not in known:
                self._fail(plugin, hook, f"detected undeclared stack {answer.stack!r}")
                continue
            if not answer.root:
                self._fail(plugin, hook, f"detected {answer.stack!r} without a root")
                continue
            found.append(attrs.evolve(answer, plugin=plugin))
        return tuple(sorted(found, key=lambda d: (d.root or "", d.stack, d.plugin or "")))

    def _per_lineage(self, hook: str, expected: type[Any], stack_id: str) -> list[Any]:
        chosen: dict[str, Any] = {}
        for stack in self.lineage(stack_id):  # child first: its items win
            givers: dict[str, str] = {}  # name: the plugin whose item of that name is used
            for plugin, item in self._typed_list(hook, expected, self._call(hook, stack=stack)):
                name = getattr(item, "name", None)
                if not isinstance(name, str):
                    continue
                first = givers.setdefault(name, plugin)
                if first != plugin:  # two plugins, one name, one stack: results would mix
                    self._conflict(plugin, hook, stack.id, name, first)
                    continue
                chosen.setdefault(name, item)
        return [chosen[name] for name in sorted(chosen)]

    def _conflict(self, plugin: str, hook: str, stack: str, name: str, first: str) -> None:
        if (plugin, hook, stack, name) in self._conflicts:
            return  # said once per manager, however many applications ask
        self._conflicts.add((plugin, hook, stack, name))
        self._fail(
            plugin,
            hook,
            f"the name {name!r} for stack {stack!r} is plugin {first!r}'s too; "
            f"{first!r}'s is used (plugins are taken in name order): rename one of them",
        )

    def checks_for(self, stack_id: str) -> tuple[DiagnosticCheck, ...]:
        """The checks for an application of ``stack_id``: its own, its ancestors' and the
        shared ones, one per name (the nearest stack's wins), sorted by name."""
        return tuple(self._per_lineage("healer_get_checks", DiagnosticCheck, stack_id))

    def strategies_for(self, stack_id: str) -> tuple[HealingStrategy, ...]:
        """The healing strategies for ``stack_id`` and its ancestors, sorted by name."""
        return tuple(self._per_lineage("healer_get_strategies", HealingStrategy, stack_id))

    def backup_for(self, stack_id: str) -> BackupStrategy | None:
        """The backup strategy of the nearest stack in the lineage that has one."""
        for stack in self.lineage(stack_id):
            for plugin, answer in self._call("healer_get_backup", stack=stack):
                if isinstance(answer, BackupStrategy):
                    return answer
                self._fail(plugin, "healer_get_backup", f"returned {type(answer).__name__}")
        return None


def _distribution_version(dist_name: str | None) -> str | None:
    if not dist_name:
        return None
    try:
        return importlib.metadata.version(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _entry_points() -> Sequence[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)


def build_plugin_manager(
    *,
    disabled: Iterable[str] = (),
    load_entry_points: bool = True,
    extra: Iterable[tuple[str, object]] = (),
    metrics: Metrics | None = None,
    import_module: Callable[[str], ModuleType] = importlib.import_module,
) -> PluginManager:
    """Build the plugin manager: built-ins, then entry points, then ``extra``.

    :param disabled: plugin names to list but not register (persisted by the registry).
    :param load_entry_points: False to load the built-ins only (tests).
    :param extra: (name, plugin object) pairs registered as if they came from entry points.
    """
    off = frozenset(disabled)
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    failures: list[tuple[str, BaseException | str]] = []
    core_version = _distribution_version("universal-healer")

    candidates: list[tuple[str, Callable[[], object], bool, str | None]] = [
        (name, lambda name=name: import_module(name), True, "universal-healer")  # type: ignore[misc]
        for name in BUILTIN_PLUGINS
    ]
    if load_entry_points:
        for ep in _entry_points():
            dist = ep.dist.name if ep.dist is not None else None
            candidates.append((ep.name, ep.load, False, dist))
    candidates.extend((name, lambda obj=obj: obj, False, None) for name, obj in extra)  # type: ignore[misc]

    for name, load, builtin, dist in candidates:
        version = core_version if builtin else _distribution_version(dist)
        if name in infos:
            failures.append((name, f"another plugin is already registered as {name!r}"))
            continue
        if name in off:
            infos[name] = PluginInfo(
                name=name, version=version, builtin=builtin, enabled=False, distribution=dist
            )
            continue
        try:
            plugin = load()
            pm.register(plugin, name=name)
        except Exception as err:  # noqa: BLE001 - a plugin that cannot load is reported, not fatal
            failures.append((name, err))
            infos[name] = PluginInfo(
                name=name,
                version=version,
                builtin=builtin,
                enabled=False,
                distribution=dist,
                error=_describe(err),
            )
            continue
        infos[name] = PluginInfo(
            name=name, version=version, builtin=builtin, enabled=True, distribution=dist
        )

    manager = PluginManager(pm, infos, metrics or default_metrics())
    for name, problem in failures:
        manager._fail(name, None, problem)
    return manager
