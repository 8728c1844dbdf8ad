"""The hooks a Universal Healer plugin can implement.

Every hook is synchronous and declarative: it returns objects, and the objects carry the async
behaviour (``check.run``, a strategy's steps, ``backup.create``). pluggy does not await, and a
coroutine returned from a ``firstresult`` hook would win before it ever ran.

Call order between plugins is not meaningful: callers sort what comes back by explicit fields
and tie-break by plugin name. A plugin that raises in a hook is reported, counted and skipped;
it never stops the run.

A plugin implements them with the project's marker::

    from universal_healer import hookimpl

    @hookimpl
    def healer_stacks():
        return [StackInfo(id="deno", display_name="Deno")]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from universal_healer.backup import BackupStrategy
    from universal_healer.checks import DiagnosticCheck
    from universal_healer.hosts.base import HostFacts
    from universal_healer.model import Detection, ProbeFile, SiteProbe, StackInfo
    from universal_healer.strategies import HealingStrategy

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "universal_healer"
"""Names the hook markers, the plugin manager and the entry-point group, all three."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def healer_stacks() -> Sequence[StackInfo]:
    """Declare the technology stacks this plugin knows.

    Called once when the plugin manager is built.

    :returns: the stacks, each with a unique lowercase id, a display name, a kind and
        optionally a parent stack it refines. Empty when the plugin only adds checks or
        strategies to stacks that others declare.

    Two plugins declaring the same id is an error reported against the later one (by plugin
    name); the first declaration stays. Must not do I/O.
    """


@hookspec
def healer_probe_files() -> Sequence[ProbeFile]:
    """Declare the files discovery must read from every candidate root for detection.

    Called once per discovery run. Files flagged ``marker=True`` also make a directory a
    candidate root (``package.json``, ``artisan``, ``wp-config.php``).

    :returns: root-relative paths with a size cap each. Requests from all plugins are merged
        (the largest cap wins) and read in one batch per host, so asking costs almost nothing.

    Must not do I/O.
    """


@hookspec
def healer_detect(probe: SiteProbe) -> Detection | None:
    """Say whether a candidate root is an application of one of this plugin's stacks.

    Called once per candidate root per discovery run, for every enabled plugin.

    :param probe: an immutable snapshot of the root: its directory entries and the probe files
        every plugin asked for, read or not (a missing file says so).
    :returns: a :class:`~universal_healer.model.Detection` with the stack, version, confidence
        (0-1) and evidence; or None when the root is not one of this plugin's stacks.

    The engine ranks all answers by confidence (a child stack beats its parent on a tie) and
    keeps the runners-up as evidence. Must be pure: no I/O, no clock, no randomness, so it can
    be tested with a dict and hypothesis. Bad input (invalid JSON, binary garbage) is evidence,
    never an exception.
    """


@hookspec
def healer_detect_services(facts: HostFacts) -> Sequence[Detection]:
    """Say which of this plugin's stacks run on a host as services, not as directories.

    Called once per host per discovery run that includes services, for every enabled plugin:
    for stacks that are host services (databases, caches) found by what is running rather than
    by files.

    :param facts: the host's facts: its listening TCP and unix sockets and its process names
        (names only, never command lines), besides CPU, memory and mounts.
    :returns: one :class:`~universal_healer.model.Detection` per service found, each naming its
        application root in ``root`` (the service's canonical directory, ``/var/lib/mysql``);
        empty when none of this plugin's services runs there.

    A detection whose root is also found by the file scan merges with that application (the
    higher confidence wins, the evidence adds up); otherwise it becomes an application of its
    own. A detection without a root is a plugin error and is dropped. Must be pure: no I/O, no
    clock, no randomness, so it can be tested with a built ``HostFacts``.
    """


@hookspec
def healer_get_checks(stack: StackInfo) -> Sequence[DiagnosticCheck]:
    """Give the diagnostic checks this plugin runs for applications of ``stack``.

    Called once per stack in an application's lineage (its own stack, then each parent) when the
    application is diagnosed; return checks for stacks you handle, and an empty sequence for
    the others.

    :param stack: the stack being asked about, with its kind and parent.
    :returns: check instances; each has a unique ``name``. When a child stack and its parent
        both return a check of the same name, the child's wins.

    Must not do I/O: the checks do theirs in ``run``.
    """


@hookspec
def healer_get_strategies(stack: StackInfo) -> Sequence[HealingStrategy]:
    """Give the healing strategies this plugin offers for applications of ``stack``.

    Called like :func:`healer_get_checks`, once per stack in the lineage, when a healing plan
    is made.

    :param stack: the stack being asked about.
    :returns: strategy instances; each says which check results it answers and proposes a
        :class:`~universal_healer.model.HealingAction` with its own risk level.

    Must not do I/O.
    """


@hookspec(firstresult=True)
def healer_get_backup(stack: StackInfo) -> BackupStrategy | None:
    """Give the backup strategy that protects applications of ``stack`` before a heal.

    Called before an action of MEDIUM risk or more (or one that asks for a backup) on an
    application of ``stack``, and for each parent stack when the child has none.

    :param stack: the stack being asked about.
    :returns: a backup strategy, or None when this plugin has none for ``stack``. First
        non-None result wins: exactly one plugin should own a stack's backup.

    Must not do I/O.
    """
