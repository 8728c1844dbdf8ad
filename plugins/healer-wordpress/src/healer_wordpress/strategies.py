"""The WordPress healing strategies, and :data:`STRATEGIES`, their catalogue.

===============================  ============================  ======  =========================
strategy                         answers                       risk    what it does
===============================  ============================  ======  =========================
``wp_disable_debug``             ``wp_debug_mode``             MEDIUM  sets the debug constants
                                                                       to false in wp-config.php
``wp_fix_permissions``           ``wp_file_permissions``       MEDIUM  chmod 640 wp-config.php,
                                                                       o-w on world-writable
``wp_clear_expired_transients``  ``wp_expired_transients``     LOW     deletes expired
                                                                       transients, empties
                                                                       wp-content/cache
``wp_repair_tables``             ``wp_database_tables``        HIGH    REPAIR (MyISAM/Aria) or
                                                                       OPTIMIZE (InnoDB) TABLE
``wp_deactivate_plugin``         ``wp_plugin_fatal_errors``    HIGH    takes the crashing plugin
                                                                       out of active_plugins
``wp_update_core``               ``wp_core_update``            HIGH    ``wp core update`` (only
                                                                       with WP-CLI on the host)
``wp_update_plugins``            ``wp_plugin_updates``         HIGH    ``wp plugin update``
``wp_update_themes``             ``wp_theme_updates``          HIGH    ``wp theme update``
===============================  ============================  ======  =========================

Every strategy proposes nothing when its finding's details say the change cannot be made
safely (a computed ``WP_DEBUG``, a chmod that would lock the web server out, no WP-CLI); the
finding's suggested fix then says what a person must do. MEDIUM and HIGH actions run after the
site's backup (:mod:`healer_wordpress.backup`), and the executor re-runs the triggering check.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

from healer_wordpress import edits, site
from universal_healer.model import (
    Application,
    CallableStep,
    CheckResult,
    CheckStatus,
    CommandStep,
    HealingAction,
    RiskLevel,
    Step,
)
from universal_healer.strategies import HealingStrategy

__all__ = [
    "STRATEGIES",
    "ClearExpiredTransients",
    "DeactivateCrashingPlugin",
    "DisableDebug",
    "FixPermissions",
    "RepairTables",
    "UpdateCore",
    "UpdatePlugins",
    "UpdateThemes",
]


def _inside(app: Application, path: str) -> str | None:
    """``path`` relative to the application root, None when it is outside (not backed up)."""
    if not os.path.isabs(path):
        path = os.path.join(app.path, path)
    relative = os.path.relpath(os.path.normpath(path), app.path)
    return None if relative == ".." or relative.startswith("../") else relative


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


class DisableDebug(HealingStrategy):
    """Turn WP_DEBUG, WP_DEBUG_DISPLAY and SAVEQUERIES off in wp-config.php."""

    name = "wp_disable_debug"
    fixes: ClassVar[tuple[str, ...]] = ("wp_debug_mode",)
    description = "set the debug constants to false in wp-config.php (a minimal, atomic edit)"

    def propose(self, result: CheckResult, app: Application) -> HealingAction | None:
        """An edit of exactly the ``define`` values that are on, when they are literals."""
        details = result.details
        config = _inside(app, str(details.get("config", "")))
        names = tuple(_strings(details.get("on")))
        if not details.get("editable") or config is None or not names:
            return None
        return HealingAction(
            name=self.name,
            description=f"Set {', '.join(names)} to false in {config}",
            risk=RiskLevel.MEDIUM,
            check=result.check,
            steps=[
                CallableStep(
                    description=f"set {', '.join(names)} to false in {config}",
                    run=edits.DisableDebug(os.path.join(app.path, config), names),
                    timeout=60,
                )
            ],
            requires_backup=True,
            estimated_duration_s=5,
            touches=(config,),
        )


class FixPermissions(HealingStrategy):
    """chmod 640 wp-config.php and take write permission away from others where the web
    server keeps the access it needs."""

    name = "wp_fix_permissions"
    fixes: ClassVar[tuple[str, ...]] = ("wp_file_permissions",)
    description = "chmod 640 wp-config.php; chmod o-w world-writable paths"

    def propose(self, result: CheckResult, app: Application) -> HealingAction | None:
        """Only when the check found the whole finding fixable by chmod alone."""
        details = result.details
        if result.status is not CheckStatus.FAIL or not details.get("healable"):
            return None
        steps: list[Step] = []
        touches: list[str] = []
        config = _inside(app, str(details.get("wp_config", "")))
        if details.get("fix_config") and config is not None:
            steps.append(
                CommandStep(
                    argv=("chmod", "0640", "--", os.path.join(app.path, config)),
                    description=f"make {config} readable by its owner and group only",
                    timeout=30,
                )
            )
            touches.append(config)
        paths = [p for p in _strings(details.get("fix_paths")) if _inside(app, p) is not None]
        if paths:
            steps.append(
                CommandStep(
                    argv=("chmod", "o-w", "--", *(os.path.join(app.path, p) for p in paths)),
                    description=f"take write permission from others on {len(paths)} path(s)",
                    timeout=120,
                )
            )
            touches.extend(p for p in paths if p not in touches)
        if not steps:
            return None
        return HealingAction(
            name=self.name,
            description="Restrict wp-config.php and world-writable paths",
            risk=RiskLevel.MEDIUM,
            check=result.check,
            steps=steps,
            requires_backup=True,
            estimated_duration_s=2,
            touches=tuple(touches),
        )


class ClearExpiredTransients(HealingStrategy):
    """Delete expired transients (and empty wp-content/cache when there is one)."""

    name = "wp_clear_expired_transients"
    fixes: ClassVar[tuple[str, ...]] = ("wp_expired_transients",)
    description = "delete expired transients as WordPress does; empty wp-content/cache"

    def propose(self, result: CheckResult, app: Application) -> HealingAction | None:
        """LOW risk: expired transients are already dead to WordPress; caches refill."""
        steps: list[Step] = [
            CallableStep(
                description="delete expired transients and their timeouts",
                run=edits.DeleteExpiredTransients(),
                timeout=300,
            )
        ]
        cache = result.details.get("cache_dir")
        inside = _inside(app, cache) if isinstance(cache, str) else None
        if inside is not None and inside != ".":
            steps.append(
                CommandStep(
                    argv=("find", os.path.join(app.path, inside), "-xdev", "-mindepth", "1",
                          "-delete"),
                    description=f"empty {inside}",
                    timeout=300,
                )
            )  # fmt: skip
        return HealingAction(
            name=self.name,
            description="Delete expired transients" + (" and empty the cache" if inside else ""),
            risk=RiskLevel.LOW,
            check=result.check,
            steps=steps,
            estimated_duration_s=10,
        )


class RepairTables(HealingStrategy):
    """REPAIR crashed MyISAM/Aria tables, OPTIMIZE fragmented InnoDB ones, after a dump."""

    name = "wp_repair_tables"
    fixes: ClassVar[tuple[str, ...]] = ("wp_database_tables",)
    description = "REPAIR TABLE (MyISAM/Aria) or OPTIMIZE TABLE (InnoDB), database dumped first"

    def propose(self, result: CheckResult, app: Application) -> HealingAction | None:
        """HIGH: the server rewrites the tables; the site's backup holds the dump."""
        repair = tuple(_strings(result.details.get("repair")))
        optimize = tuple(_strings(result.details.get("optimize")))
        if not repair and not optimize:
            return None
        said = [f"REPAIR TABLE {', '.join(repair)}"] if repair else []
        said += [f"OPTIMIZE TABLE {', '.join(optimize)}"] if optimize else []
        return HealingAction(
            name=self.name,
            description="; ".join(said),
            risk=RiskLevel.HIGH,
            check=result.check,
            steps=[
                CallableStep(
                    description="; ".join(said),
                    run=edits.RepairTables(repair=repair, optimize=optimize),
                    timeout=3600,
                )
            ],
            requires_backup=True,
            estimated_duration_s=60,
        )


class DeactivateCrashingPlugin(HealingStrategy):
    """Deactivate the plugin behind PHP fatal errors, then load the site and watch its logs."""

    name = "wp_deactivate_plugin"
    fixes: ClassVar[tuple[str, ...]] = ("wp_plugin_fatal_errors",)
    description = "take the crashing plugin out of active_plugins; confirm no new fatal error"

    def propose(self, result: CheckResult, app: Application) -> HealingAction | None:
        """For the worst plugin that ``active_plugins`` activates (not must-use, not
        network-activated: those need a person)."""
        plugins = result.details.get("plugins")
        chosen = next(
            (
                p
                for p in (plugins if isinstance(plugins, list) else [])
                if isinstance(p, dict) and p.get("active_entries") and not p.get("must_use")
            ),
            None,
        )
        if chosen is None:
            return None
        plugin = str(chosen["plugin"])
        logs = tuple(_strings(result.details.get("logs")))
        return HealingAction(
            name=self.name,
            description=f"Deactivate the plugin {plugin}, which causes PHP fatal errors",
            risk=RiskLevel.HIGH,
            check=result.check,
            steps=[
                CallableStep(
                    description=f"remove {plugin} from active_plugins",
                    run=edits.DeactivatePlugin(plugin),
                    timeout=60,
                ),
                CallableStep(
                    description=f"load the site and read new log lines for fatal errors from "
                    f"{plugin}",
                    run=edits.ConfirmNoNewFatal(
                        plugin=plugin,
                        log_files=logs,
                        plugin_dir=str(result.details.get("plugin_dir", "")),
                        address=site.http_address(app),
                    ),
                    timeout=60,
                ),
            ],
            requires_backup=True,
            estimated_duration_s=15,
        )


def _wp(app: Application, details: Any, *args: str) -> CommandStep:
    """A WP-CLI command on this site (``--allow-root`` when the healer runs as root, which
    WP-CLI otherwise refuses)."""
    root = ("--allow-root",) if details.get("as_root") else ()
    return CommandStep(
        argv=(str(details["wp_cli"]), f"--path={app.path}", *root, *args),
        description="wp " + " ".join(args),
        timeout=900,
    )


class _WpCliUpdate(HealingStrategy):
    """An update that only WP-CLI can make; nothing is proposed when it is not installed."""

    what: ClassVar[str]

    def commands(self, result: CheckResult) -> Sequence[tuple[str, ...]]:
        """The ``wp`` sub-commands, each an argument tuple; empty for nothing to do."""
        raise NotImplementedError

    def propose(self, result: CheckResult, app: Application) -> HealingAction | None:
        """HIGH, after a backup; None without WP-CLI (the finding says to install it)."""
        if not result.details.get("wp_cli"):
            return None
        commands = self.commands(result)
        if not commands:
            return None
        return HealingAction(
            name=self.name,
            description=f"Update {self.what} with WP-CLI",
            risk=RiskLevel.HIGH,
            check=result.check,
            steps=[_wp(app, result.details, *command) for command in commands],
            requires_backup=True,
            estimated_duration_s=120,
        )


class UpdateCore(_WpCliUpdate):
    """``wp core update`` to the newest release known, then ``wp core update-db``."""

    name = "wp_update_core"
    fixes: ClassVar[tuple[str, ...]] = ("wp_core_update",)
    description = "wp core update; wp core update-db (only when WP-CLI is installed)"
    what = "WordPress core"

    def commands(self, result: CheckResult) -> Sequence[tuple[str, ...]]:
        """Update to the newest release offered, or only the schema when that is behind."""
        available = _strings(result.details.get("available"))
        if available:
            return (("core", "update", f"--version={available[-1]}"), ("core", "update-db"))
        if result.details.get("database_schema_behind"):
            return (("core", "update-db"),)
        return ()


class UpdatePlugins(_WpCliUpdate):
    """``wp plugin update`` the plugins with an update waiting."""

    name = "wp_update_plugins"
    fixes: ClassVar[tuple[str, ...]] = ("wp_plugin_updates",)
    description = "wp plugin update <plugins> (only when WP-CLI is installed)"
    what = "the plugins"

    def commands(self, result: CheckResult) -> Sequence[tuple[str, ...]]:
        """One ``wp plugin update`` naming every plugin with an update."""
        updates = result.details.get("updates")
        slugs = sorted(
            {str(u["slug"]) for u in updates if isinstance(u, dict) and u.get("slug")}
            if isinstance(updates, list)
            else set()
        )
        return (("plugin", "update", *slugs),) if slugs else ()


class UpdateThemes(_WpCliUpdate):
    """``wp theme update`` the themes with an update waiting."""

    name = "wp_update_themes"
    fixes: ClassVar[tuple[str, ...]] = ("wp_theme_updates",)
    description = "wp theme update <themes> (only when WP-CLI is installed)"
    what = "the themes"

    def commands(self, result: CheckResult) -> Sequence[tuple[str, ...]]:
        """One ``wp theme update`` naming every theme with an update."""
        updates = result.details.get("updates")
        names = sorted(
            {str(u["name"]) for u in updates if isinstance(u, dict) and u.get("name")}
            if isinstance(updates, list)
            else set()
        )
        return (("theme", "update", *names),) if names else ()


STRATEGIES: tuple[type[HealingStrategy], ...] = (
    ClearExpiredTransients,
    DeactivateCrashingPlugin,
    DisableDebug,
    FixPermissions,
    RepairTables,
    UpdateCore,
    UpdatePlugins,
    UpdateThemes,
)
"""Every strategy of this plugin; ``healer_get_strategies`` gives one of each for WordPress."""
