"""The shared healing strategies: safe fixes for findings of the shared checks.

========================  =============================  ======  ==================================
strategy                  answers                        risk    what it does
========================  =============================  ======  ==================================
``restrict_secret_files`` ``file_permissions`` (secrets)  MEDIUM  ``chmod o-rwx`` on exposed secret
                                                                 files, after a file-set backup
``clear_cache_dirs``      ``disk_space``                 LOW     empties the cache directories the
                                                                 operator configured for the app
========================  =============================  ======  ==================================

Both are idempotent: once the finding is gone they propose nothing, so running a heal again
changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import ClassVar

from universal_healer.model import (
    Application,
    CheckResult,
    CheckStatus,
    CommandStep,
    HealingAction,
    RiskLevel,
)
from universal_healer.strategies import HealingStrategy

__all__ = ["SHARED_STRATEGIES", "ClearCacheDirs", "RestrictSecretFiles", "cache_dirs"]

CACHE_DIRS_KEY = "cache_dirs"
"""Application metadata key listing root-relative cache directories safe to empty."""


class RestrictSecretFiles(HealingStrategy):
    """Take away other users' access to secret files (``.env``, ``wp-config.php``).

    Only when secrets are the whole finding: world-writable paths need a person's judgement
    (an upload directory may rely on them), and verification re-runs the whole check.
    """

    name = "restrict_secret_files"
    fixes: ClassVar[tuple[str, ...]] = ("file_permissions",)
    description = "chmod o-rwx on secret files other users can read"

    def propose(self, result: CheckResult, app: Application) -> HealingAction | None:
        """``chmod o-rwx`` for each exposed secret file, MEDIUM risk, with a backup."""
        exposed = [str(name) for name in result.details.get("world_readable_secrets", ())]
        if result.status is not CheckStatus.FAIL or not exposed:
            return None
        if result.details.get("world_writable_count", 0) or not result.details.get(
            "scan_complete", False
        ):
            return None
        steps = [
            CommandStep(
                argv=("chmod", "o-rwx", "--", os.path.join(app.path, name)),
                description=f"take other users' access away from {name}",
                timeout=30,
            )
            for name in exposed
        ]
        return HealingAction(
            name=self.name,
            description=f"Make {', '.join(exposed)} unreadable by other users",
            risk=RiskLevel.MEDIUM,
            check=result.check,
            steps=steps,
            requires_backup=True,
            estimated_duration_s=1,
            touches=tuple(exposed),
        )


def cache_dirs(app: Application) -> tuple[str, ...]:
    """The cache directories configured for ``app``, keeping only safe ones: relative paths
    strictly inside the application root (never the root itself, never ``..``)."""
    configured = app.metadata.get(CACHE_DIRS_KEY, ())
    if isinstance(configured, str) or not isinstance(configured, Sequence):
        return ()
    safe = []
    for entry in configured:
        if not isinstance(entry, str):
            continue
        normal = os.path.normpath(entry)
        if os.path.isabs(entry) or normal in (".", "") or normal.split(os.sep)[0] == "..":
            continue
        safe.append(normal)
    return tuple(safe)


class ClearCacheDirs(HealingStrategy):
    """Empty the cache directories an operator configured for the application (metadata key
    ``cache_dirs``) when its disk fills up. Never touches anything that is not configured."""

    name = "clear_cache_dirs"
    fixes: ClassVar[tuple[str, ...]] = ("disk_space",)
    description = "empty the application's configured cache directories"

    def propose(self, result: CheckResult, app: Application) -> HealingAction | None:
        """``find DIR -mindepth 1 -delete`` for each configured cache directory, LOW risk."""
        dirs = cache_dirs(app)
        if not dirs or result.status not in (CheckStatus.WARN, CheckStatus.FAIL):
            return None
        steps = [
            CommandStep(
                # -xdev: never follow the cache into another filesystem mounted inside it.
                argv=("find", os.path.join(app.path, d), "-xdev", "-mindepth", "1", "-delete"),
                description=f"empty {d}",
                timeout=300,
            )
            for d in dirs
        ]
        return HealingAction(
            name=self.name,
            description=f"Empty the cache directories {', '.join(dirs)}",
            risk=RiskLevel.LOW,
            check=result.check,
            steps=steps,
            estimated_duration_s=30,
        )


SHARED_STRATEGIES: tuple[type[HealingStrategy], ...] = (ClearCacheDirs, RestrictSecretFiles)
