"""The WordPress checks, and :data:`CHECKS`, their catalogue.

Each check reads what WordPress itself stores (its files, its options) through the host and
reports a finding; none changes anything. Checks that read the database depend on
``wp_database_connection``, so a database outage suppresses their heals. WP-CLI's ``wp doctor``
default checks are the floor: see the README for how each one is covered here.
"""

from __future__ import annotations

import datetime as dt
import posixpath
from typing import Any, ClassVar

from healer_wordpress import logs, site, wpconfig
from healer_wordpress._base import (
    DatabaseCheck,
    WordPressCheck,
    content_dir,
    load_config,
    plugin_dir,
)
from healer_wordpress._database import (
    AutoloadSizeCheck,
    CronCheck,
    DatabaseConnectionCheck,
    DatabaseTablesCheck,
    ExpiredTransientsCheck,
    db_now,
)
from healer_wordpress._files import (
    FileEvalCheck,
    FilePermissionsCheck,
    PhpInUploadsCheck,
)
from healer_wordpress._updates import (
    CoreUpdateCheck,
    LanguageUpdatesCheck,
    PluginUpdatesCheck,
    ThemeUpdatesCheck,
)
from universal_healer.checks import CheckContext, DiagnosticCheck
from universal_healer.exceptions import RemoteError
from universal_healer.model import (
    CheckCategory,
    CheckResult,
    CheckStatus,
    RiskLevel,
)

__all__ = [
    "CHECKS",
    "DEBUG_CONSTANTS",
    "AutoloadSizeCheck",
    "ConfigCheck",
    "CoreUpdateCheck",
    "CronCheck",
    "DatabaseConnectionCheck",
    "DatabaseTablesCheck",
    "DebugModeCheck",
    "ExpiredTransientsCheck",
    "FileEvalCheck",
    "FilePermissionsCheck",
    "LanguageUpdatesCheck",
    "PhpInUploadsCheck",
    "PluginCountsCheck",
    "PluginFatalErrorsCheck",
    "PluginUpdatesCheck",
    "SearchVisibilityCheck",
    "SiteReachableCheck",
    "ThemeUpdatesCheck",
]

# --------------------------------------------------------------------------------------------
# Configuration and database


class ConfigCheck(WordPressCheck):
    """wp-config.php is there and gives the database settings."""

    name = "wp_config"
    category = CheckCategory.CONFIGURATION
    severity = RiskLevel.CRITICAL
    description = "wp-config.php exists and sets DB_NAME, DB_USER, DB_PASSWORD, DB_HOST"

    async def run(self, ctx: CheckContext) -> CheckResult:
        """A site that cannot be read is a failure of this check, not an error."""
        try:
            config = await load_config(ctx)
        except site.SiteError as err:
            return ctx.fail(err.reason, suggested_fix="restore wp-config.php from a backup")
        return await self.judge(ctx, config)

    async def judge(self, ctx: CheckContext, config: site.LoadedConfig) -> CheckResult:
        """Every database setting present; say whether PHP had to be asked."""
        settings = config.settings
        details: dict[str, Any] = {
            "path": config.path,
            "read_by": settings.source,
            "database": settings.get("DB_NAME"),
            "db_host": settings.get("DB_HOST"),
            "table_prefix": settings.table_prefix,
        }
        if settings.notes:
            details["dynamic_because"] = list(settings.notes[:5])
        missing = settings.missing()
        if missing:
            return ctx.fail(
                f"wp-config.php does not set {', '.join(missing)}",
                suggested_fix="define the missing settings in wp-config.php",
                **details,
            )
        how = "read without running it" if settings.source == "static" else "evaluated by PHP"
        return ctx.passed(
            f"wp-config.php ({how}) names database {settings.get('DB_NAME')!r} on "
            f"{settings.get('DB_HOST')}",
            **details,
        )


# --------------------------------------------------------------------------------------------
# Configuration flags


DEBUG_CONSTANTS = ("WP_DEBUG", "WP_DEBUG_DISPLAY", "SAVEQUERIES")


class DebugModeCheck(WordPressCheck):
    """Debugging is off in production: WP_DEBUG, WP_DEBUG_DISPLAY and SAVEQUERIES falsy."""

    name = "wp_debug_mode"
    category = CheckCategory.SECURITY
    severity = RiskLevel.HIGH
    description = "WP_DEBUG (and WP_DEBUG_DISPLAY, SAVEQUERIES) off unless in development"

    async def judge(self, ctx: CheckContext, config: site.LoadedConfig) -> CheckResult:
        """Judge the debug constants; say whether the healer can turn them off in the file."""
        settings = config.settings
        environment = str(settings.get("WP_ENVIRONMENT_TYPE", "production"))
        if environment in ("local", "development"):
            return ctx.passed(f"debugging is allowed: WP_ENVIRONMENT_TYPE is {environment!r}")
        debug, saves = settings.flag("WP_DEBUG"), settings.flag("SAVEQUERIES")
        shown = debug and settings.flag("WP_DEBUG_DISPLAY", default=True)
        flags = (debug, shown and settings.defined("WP_DEBUG_DISPLAY"), saves)
        on = [name for name, value in zip(DEBUG_CONSTANTS, flags, strict=True) if value]
        if not on:
            return ctx.passed("WP_DEBUG and SAVEQUERIES are off")
        edit = wpconfig.set_false(config.text, on)
        details: dict[str, Any] = {
            "on": on,
            "config": config.path,
            "editable": bool(edit.changed) and not edit.refused,
            "would_change": list(edit.changed),
            "environment": environment,
        }
        if edit.refused:
            details["refused"] = list(edit.refused)
        fix = (
            f"set {', '.join(on)} to false in wp-config.php"
            if details["editable"]
            else f"turn {', '.join(on)} off where they are set: " + "; ".join(edit.refused)
        )
        if shown:
            return ctx.fail(
                "WP_DEBUG is on and PHP errors are shown to visitors (WP_DEBUG_DISPLAY "
                f"{'is true' if settings.defined('WP_DEBUG_DISPLAY') else 'defaults to true'})",
                suggested_fix=fix,
                **details,
            )
        what = "WP_DEBUG is on (errors are logged, not shown)" if debug else ""
        what += ("; " if what else "") + (
            "SAVEQUERIES keeps every query in memory" if saves else ""
        )
        return ctx.result(
            CheckStatus.WARN,
            what,
            suggested_fix=fix,
            details=details,
            severity=RiskLevel.MEDIUM if debug else RiskLevel.LOW,
        )


class SearchVisibilityCheck(DatabaseCheck):
    """A production site is visible to search engines (WordPress's ``blog_public``)."""

    name = "wp_search_visibility"
    category = CheckCategory.CONFIGURATION
    severity = RiskLevel.LOW
    description = "blog_public is 1: search engines may index the site"

    async def query(
        self, ctx: CheckContext, config: site.LoadedConfig, db: site.Database
    ) -> CheckResult:
        """Read ``blog_public``."""
        value = await db.value("blog_public")
        environment = str(config.settings.get("WP_ENVIRONMENT_TYPE", "production"))
        if str(value) != "0" or environment != "production":
            return ctx.passed("search engines may index the site", blog_public=value)
        return ctx.warn(
            "search engines are asked not to index this site (blog_public is 0)",
            suggested_fix="untick 'Discourage search engines' in Settings > Reading",
            blog_public=value,
        )


# --------------------------------------------------------------------------------------------
# Plugins and reachability


class PluginCountsCheck(DatabaseCheck):
    """Not too many active plugins, and not too many installed but inactive."""

    name = "wp_plugin_counts"
    category = CheckCategory.PERFORMANCE
    severity = RiskLevel.LOW
    description = "at most 80 active plugins; at most 40 % of installed plugins inactive"
    max_active: ClassVar[int] = 80
    max_inactive_share: ClassVar[float] = 0.4

    async def query(
        self, ctx: CheckContext, config: site.LoadedConfig, db: site.Database
    ) -> CheckResult:
        """Count the plugin directory's entries and the active plugins."""
        directory = plugin_dir(ctx, config)
        try:
            entries = await ctx.host.list_dir(directory)
        except (OSError, RemoteError):
            entries = ()
        installed = {
            e.name
            for e in entries
            if not e.name.startswith(".")
            and e.name != "index.php"
            and (e.is_dir or e.name.endswith(".php"))
            and not e.name.endswith(".disabled")
        }
        active = {site.plugin_key(p) for p in site.active_plugins(await db.value("active_plugins"))}
        inactive = installed - active
        details = {"installed": len(installed), "active": len(active), "inactive": sorted(inactive)}
        if len(active) > self.max_active:
            return ctx.warn(
                f"{len(active)} active plugins (over {self.max_active})",
                suggested_fix="deactivate the plugins the site does not need",
                **details,
            )
        if installed and len(inactive) > self.max_inactive_share * len(installed):
            return ctx.warn(
                f"{len(inactive)} of {len(installed)} installed plugins are inactive",
                suggested_fix="delete plugins that are not used (inactive code still ships "
                "vulnerabilities)",
                **details,
            )
        return ctx.passed(f"{len(active)} active of {len(installed)} installed plugins", **details)


def _log_files(ctx: CheckContext, config: site.LoadedConfig) -> list[str]:
    """The logs PHP fatal errors of this site land in: WordPress's debug log (``WP_DEBUG_LOG``
    as a path, else ``wp-content/debug.log``) and any ``php_error_log`` in the metadata."""
    configured = config.settings.get("WP_DEBUG_LOG")
    debug_log = (
        configured
        if isinstance(configured, str) and configured.startswith("/")
        else posixpath.join(content_dir(ctx, config), "debug.log")
    )
    extra = ctx.app.metadata.get("php_error_log", ())
    extra_logs = (
        [extra] if isinstance(extra, str) else list(extra) if isinstance(extra, list) else []
    )
    return list(dict.fromkeys([debug_log, *(str(p) for p in extra_logs)]))


async def network_plugins(db: site.Database) -> list[str]:
    """Network-activated plugins of a multisite (``active_sitewide_plugins``)."""
    if not db.multisite:
        return []
    value = await db.value("active_sitewide_plugins", site=True)
    return [k for k in value if isinstance(k, str)] if isinstance(value, dict) else []


class PluginFatalErrorsCheck(DatabaseCheck):
    """No active plugin throws PHP fatal errors (read from the debug log and PHP error log)."""

    name = "wp_plugin_fatal_errors"
    category = CheckCategory.SYSTEM
    severity = RiskLevel.HIGH
    description = "no active plugin appears in PHP fatal errors of the last 24 hours"
    lines: ClassVar[int] = 2000
    window: ClassVar[dt.timedelta] = dt.timedelta(hours=24)

    async def query(
        self, ctx: CheckContext, config: site.LoadedConfig, db: site.Database
    ) -> CheckResult:
        """Read the last lines of each log, group the fatal errors by plugin, keep the active."""
        read: list[str] = []
        found: list[logs.Fatal] = []
        directory = plugin_dir(ctx, config)
        for path in _log_files(ctx, config):
            lines = await site.tail(ctx.host, path, self.lines)
            if lines is not None:
                read.append(path)
                found.extend(logs.fatals(lines, plugin_dirs=(directory,)))
        if not read:
            return ctx.passed(
                "no PHP error log to read (enable WP_DEBUG_LOG, or set the application's "
                "php_error_log metadata)",
                logs=[],
            )
        since = dt.datetime.fromtimestamp(await db_now(db), dt.UTC) - self.window
        active_entries = site.active_plugins(await db.value("active_plugins"))
        network = await network_plugins(db)
        crashing = []
        for crash in logs.plugin_crashes(found, since=since):
            entries = [e for e in active_entries if site.plugin_key(e) == crash.plugin]
            networked = [e for e in network if site.plugin_key(e) == crash.plugin]
            if entries or networked or crash.must_use:
                crashing.append(
                    {
                        "plugin": crash.plugin,
                        "count": crash.count,
                        "last_at": crash.last_at.isoformat() if crash.last_at else None,
                        "example": crash.example,
                        "active_entries": entries,
                        "network_entries": networked,
                        "must_use": crash.must_use,
                    }
                )
        details = {"logs": read, "plugins": crashing, "plugin_dir": directory}
        if not crashing:
            return ctx.passed(
                f"no active plugin in the fatal errors of {len(read)} log(s)", **details
            )
        worst = crashing[0]
        return ctx.fail(
            f"plugin {worst['plugin']} caused {worst['count']} PHP fatal error(s) "
            f"(last: {worst['last_at'] or 'time unknown'}): {worst['example']}",
            suggested_fix=f"deactivate {worst['plugin']} and report the error to its authors",
            **details,
        )


class SiteReachableCheck(DatabaseCheck):
    """The site answers over HTTP at its own address (``home``), asked on its own host: the
    connection goes to 127.0.0.1 (or the ``http_address`` metadata) with the site's name, so it
    tests this server and never leaves the machine."""

    name = "wp_site_reachable"
    category = CheckCategory.SYSTEM
    severity = RiskLevel.HIGH
    description = "the home page answers a GET from the host within 10 s with a 2xx or 3xx"
    timeout_s: ClassVar[float] = 10.0

    async def query(
        self, ctx: CheckContext, config: site.LoadedConfig, db: site.Database
    ) -> CheckResult:
        """GET ``WP_HOME`` or the ``home`` option (``siteurl`` when home is empty)."""
        url = config.settings.get("WP_HOME") or await db.value("home") or await db.value("siteurl")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return ctx.passed("the site has no http(s) address to try", url=url)
        address = site.http_address(ctx.app)
        answer = await site.http_get(ctx.host, url, timeout=self.timeout_s, address=address)
        details: dict[str, Any] = {
            "url": url, "via": address or "DNS", "status": answer.status,
            "seconds": answer.seconds,
        }  # fmt: skip
        if answer.status is None:
            return ctx.fail(
                f"no answer from {url}: {answer.error}",
                suggested_fix="start the web server and PHP, and check the site's address",
                **details,
            )
        if answer.status in (401, 403):
            return ctx.warn(f"{url} answers {answer.status}: it asks for credentials", **details)
        if answer.status >= 400:
            return ctx.fail(
                f"{url} answers HTTP {answer.status}",
                suggested_fix="read the web server's and PHP's error logs",
                **details,
            )
        return ctx.passed(
            f"{url} answers HTTP {answer.status} in {answer.seconds or 0:.2f} s", **details
        )


CHECKS: tuple[type[DiagnosticCheck], ...] = (
    AutoloadSizeCheck,
    ConfigCheck,
    CoreUpdateCheck,
    CronCheck,
    DatabaseConnectionCheck,
    DatabaseTablesCheck,
    DebugModeCheck,
    ExpiredTransientsCheck,
    FileEvalCheck,
    FilePermissionsCheck,
    LanguageUpdatesCheck,
    PhpInUploadsCheck,
    PluginCountsCheck,
    PluginFatalErrorsCheck,
    PluginUpdatesCheck,
    SearchVisibilityCheck,
    SiteReachableCheck,
    ThemeUpdatesCheck,
)
"""Every check of this plugin; ``healer_get_checks`` gives one of each for WordPress sites."""
