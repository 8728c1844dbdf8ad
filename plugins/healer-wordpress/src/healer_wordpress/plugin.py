"""The WordPress plugin's hooks: declarations only, a few lines each.

Registered through the entry point ``[project.entry-points.universal_healer] wordpress =
"healer_wordpress.plugin"``. The ``wordpress`` stack itself is declared by core's fallback
signatures (a second declaration would be an error), so :func:`healer_stacks` declares nothing:
this plugin detects it better and gives it its checks, strategies and backup.
"""

from __future__ import annotations

from collections.abc import Sequence

from healer_wordpress import STACK_ID, detection
from healer_wordpress.backup import WordPressBackup
from healer_wordpress.checks import CHECKS
from healer_wordpress.strategies import STRATEGIES
from universal_healer.backup import BackupStrategy
from universal_healer.checks import DiagnosticCheck
from universal_healer.hookspecs import hookimpl
from universal_healer.model import Detection, ProbeFile, SiteProbe, StackInfo
from universal_healer.strategies import HealingStrategy


@hookimpl
def healer_stacks() -> Sequence[StackInfo]:
    """Nothing: core declares ``wordpress``; this plugin only serves it."""
    return ()


@hookimpl
def healer_probe_files() -> Sequence[ProbeFile]:
    """``wp-config.php`` and its sample as markers, and ``wp-includes/version.php``."""
    return detection.PROBE_FILES


@hookimpl
def healer_detect(probe: SiteProbe) -> Detection | None:
    """WordPress with its version, multisite mode and how dynamic its configuration is."""
    return detection.detect(probe)


@hookimpl
def healer_get_checks(stack: StackInfo) -> Sequence[DiagnosticCheck]:
    """One of each check in :data:`~healer_wordpress.checks.CHECKS`, for WordPress only."""
    return [check() for check in CHECKS] if stack.id == STACK_ID else []


@hookimpl
def healer_get_strategies(stack: StackInfo) -> Sequence[HealingStrategy]:
    """One of each strategy in :data:`~healer_wordpress.strategies.STRATEGIES`."""
    return [strategy() for strategy in STRATEGIES] if stack.id == STACK_ID else []


@hookimpl
def healer_get_backup(stack: StackInfo) -> BackupStrategy | None:
    """Files and database together (:class:`~healer_wordpress.backup.WordPressBackup`)."""
    return WordPressBackup() if stack.id == STACK_ID else None
