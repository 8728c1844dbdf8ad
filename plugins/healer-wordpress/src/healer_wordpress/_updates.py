"""Update checks: core, plugins, themes and translations, from WordPress's own update
transients (``_site_transient_update_core`` and friends), as WP-CLI reads them. Nothing here
talks to api.wordpress.org: the site stores what it learnt on its last check."""

from __future__ import annotations

import datetime as dt
import functools
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from healer_wordpress import site, versions
from healer_wordpress._base import DatabaseCheck, content_dir, plugin_dir, update_fix
from healer_wordpress.phpserial import PhpObject
from universal_healer.checks import CheckContext
from universal_healer.model import CheckCategory, CheckResult, RiskLevel

__all__ = ["CoreUpdateCheck", "LanguageUpdatesCheck", "PluginUpdatesCheck", "ThemeUpdatesCheck"]

STALE_AFTER = dt.timedelta(days=7)
# WordPress deletes its update transients after an update and refills them on its next check
# (twice a day, by WP-Cron): no information is not a finding; a WP-Cron that never runs is
# wp_cron's finding.
_NO_INFORMATION = (
    "no {what} update information stored yet (WordPress refreshes it on its next check)"
)
_UPDATE_RESPONSES = ("upgrade", "autoupdate", "development")


def field(value: Any, name: str, default: Any = None) -> Any:
    """A property of a PHP object or a key of a PHP array, whichever ``value`` is."""
    if isinstance(value, PhpObject):
        return value.get(name, default)
    if isinstance(value, Mapping):
        return value.get(name, default)
    return default


def members(value: Any) -> Sequence[Any]:
    """The values of a PHP array (an empty list for anything else)."""
    return list(value.values()) if isinstance(value, Mapping) else []


def _ordered(found: set[str]) -> list[str]:
    return sorted(found, key=functools.cmp_to_key(versions.compare))


def _branch(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def _age(transient: Any, now: dt.datetime) -> tuple[str | None, str]:
    """When the transient was last checked (ISO), and a note when that is long ago."""
    checked = field(transient, "last_checked")
    if not isinstance(checked, int) or checked <= 0:
        return None, ""
    when = dt.datetime.fromtimestamp(checked, dt.UTC)
    stale = now - when
    note = f" (update information is {stale.days} days old)" if stale > STALE_AFTER else ""
    return when.isoformat(), note


async def _now(db: site.Database) -> dt.datetime:
    rows = await db.rows("SELECT UNIX_TIMESTAMP()", what="reading the server's clock")
    return dt.datetime.fromtimestamp(int(rows[0][0]), dt.UTC)


class CoreUpdateCheck(DatabaseCheck):
    """WordPress core is on the newest release WordPress knows of, and its database schema is
    up to date with its files."""

    name = "wp_core_update"
    category = CheckCategory.DEPENDENCIES
    severity = RiskLevel.MEDIUM
    description = "no core update in _site_transient_update_core; a security release fails"

    async def query(
        self, ctx: CheckContext, config: site.LoadedConfig, db: site.Database
    ) -> CheckResult:
        """Compare ``wp-includes/version.php`` with the offers WordPress stored."""
        text = await site.read_text(ctx.host, ctx.path("wp-includes", "version.php"))
        core = versions.core_version(text or "")
        if core.version is None:
            return ctx.error("no plain $wp_version in wp-includes/version.php")
        installed = core.version
        fix, details = update_fix(await site.tools(ctx.host), "WordPress")
        details["installed"] = installed
        schema = await db.value("db_version")
        behind = (
            isinstance(core.db_version, int)
            and str(schema).isdigit()
            and int(str(schema)) < core.db_version
        )
        details["database_schema_behind"] = behind
        transient = await db.value("_site_transient_update_core", site=True)
        if not isinstance(transient, PhpObject):
            return ctx.passed(_NO_INFORMATION.format(what="core"), **details)
        offers = {
            str(field(o, "version") or field(o, "current"))
            for o in members(field(transient, "updates"))
            if field(o, "response") in _UPDATE_RESPONSES
        }
        available = _ordered({v for v in offers if versions.newer(v, installed)})
        checked, stale = _age(transient, await _now(db))
        details.update(available=available, last_checked=checked)
        same_branch = [v for v in available if _branch(v) == _branch(installed)]
        if same_branch:
            latest = f"; {available[-1]} is the newest" if available[-1] != same_branch[-1] else ""
            return ctx.fail(
                f"WordPress {installed} has a maintenance and security release "
                f"{same_branch[-1]}{latest}{stale}",
                suggested_fix=fix,
                **details,
            )
        if available:
            return ctx.warn(
                f"WordPress {available[-1]} is available (installed {installed}){stale}",
                suggested_fix=fix,
                **details,
            )
        if behind:
            return ctx.warn(
                f"the database schema ({schema}) is older than WordPress {installed} "
                f"({core.db_version})",
                suggested_fix="open wp-admin/upgrade.php (or run `wp core update-db`)",
                **details,
            )
        return ctx.passed(f"WordPress {installed} is the newest release known{stale}", **details)


async def _headers(ctx: CheckContext, paths: Mapping[str, str], field_name: str) -> dict[str, str]:
    """The ``field_name`` header of each file (key -> absolute path) that has one."""
    reads = await ctx.host.read_files(list(paths.values()), max_bytes=versions.HEADER_BYTES)
    found: dict[str, str] = {}
    for key, path in paths.items():
        data = reads[path].data
        value = versions.file_header(data.decode("utf-8", "replace"), field_name) if data else None
        if value:
            found[key] = value
    return found


def _pending(
    response: Any, installed: Mapping[str, str], fallback: Mapping[Any, Any]
) -> list[dict[str, Any]]:
    """The offers in a transient's ``response`` that are newer than what is installed."""
    pending = []
    for key, offer in response.items() if isinstance(response, Mapping) else ():
        new = field(offer, "new_version")
        if not isinstance(key, str) or not isinstance(new, str):
            continue
        have = installed.get(key) or fallback.get(key)
        if have is None or versions.newer(new, str(have)):
            pending.append({"name": key, "installed": have, "available": new})
    return sorted(pending, key=lambda p: p["name"])


def _listed(pending: Sequence[Mapping[str, Any]], label: str) -> str:
    shown = ", ".join(f"{p[label]} {p['installed'] or '?'} -> {p['available']}" for p in pending)
    return shown if len(shown) < 300 else shown[:297] + "..."


class PluginUpdatesCheck(DatabaseCheck):
    """Installed plugins are on the versions WordPress last found."""

    name = "wp_plugin_updates"
    category = CheckCategory.DEPENDENCIES
    severity = RiskLevel.MEDIUM
    description = "no plugin update waiting in _site_transient_update_plugins"

    async def query(
        self, ctx: CheckContext, config: site.LoadedConfig, db: site.Database
    ) -> CheckResult:
        """Compare each offered plugin's header ``Version`` with the offer."""
        transient = await db.value("_site_transient_update_plugins", site=True)
        fix, details = update_fix(await site.tools(ctx.host), "the plugins")
        if not isinstance(transient, PhpObject):
            return ctx.passed(_NO_INFORMATION.format(what="plugin"), **details)
        response = field(transient, "response", {})
        directory = plugin_dir(ctx, config)
        files = {
            k: posixpath.join(directory, k)
            for k in (response if isinstance(response, Mapping) else {})
            if isinstance(k, str) and ".." not in k.split("/")
        }
        installed = await _headers(ctx, files, "Version")
        checked = field(transient, "checked", {})
        pending = _pending(response, installed, checked if isinstance(checked, Mapping) else {})
        for item in pending:
            item["slug"] = site.plugin_key(item["name"])
        _, stale = _age(transient, await _now(db))
        details["updates"] = pending
        if pending:
            return ctx.warn(
                f"{len(pending)} plugin update(s): {_listed(pending, 'slug')}{stale}",
                suggested_fix=fix,
                **details,
            )
        return ctx.passed(f"every plugin is on the newest version known{stale}", **details)


class ThemeUpdatesCheck(DatabaseCheck):
    """Installed themes are on the versions WordPress last found."""

    name = "wp_theme_updates"
    category = CheckCategory.DEPENDENCIES
    severity = RiskLevel.LOW
    description = "no theme update waiting in _site_transient_update_themes"

    async def query(
        self, ctx: CheckContext, config: site.LoadedConfig, db: site.Database
    ) -> CheckResult:
        """Compare each offered theme's ``style.css`` ``Version`` with the offer."""
        transient = await db.value("_site_transient_update_themes", site=True)
        fix, details = update_fix(await site.tools(ctx.host), "the themes")
        if not isinstance(transient, PhpObject):
            return ctx.passed(_NO_INFORMATION.format(what="theme"), **details)
        response = field(transient, "response", {})
        themes = posixpath.join(content_dir(ctx, config), "themes")
        files = {
            k: posixpath.join(themes, k, "style.css")
            for k in (response if isinstance(response, Mapping) else {})
            if isinstance(k, str) and "/" not in k and k not in (".", "..")
        }
        installed = await _headers(ctx, files, "Version")
        checked = field(transient, "checked", {})
        pending = _pending(response, installed, checked if isinstance(checked, Mapping) else {})
        _, stale = _age(transient, await _now(db))
        details["updates"] = pending
        if pending:
            return ctx.warn(
                f"{len(pending)} theme update(s): {_listed(pending, 'name')}{stale}",
                suggested_fix=fix,
                **details,
            )
        return ctx.passed(f"every theme is on the newest version known{stale}", **details)


class LanguageUpdatesCheck(DatabaseCheck):
    """No translation updates waiting (core, plugins, themes)."""

    name = "wp_language_updates"
    category = CheckCategory.DEPENDENCIES
    severity = RiskLevel.LOW
    description = "no translation update waiting in the three update transients"

    async def query(
        self, ctx: CheckContext, config: site.LoadedConfig, db: site.Database
    ) -> CheckResult:
        """Collect the ``translations`` lists of the core, plugin and theme transients."""
        pending: list[dict[str, str]] = []
        for kind in ("core", "plugins", "themes"):
            transient = await db.value(f"_site_transient_update_{kind}", site=True)
            pending.extend(
                {
                    "type": str(field(item, "type", kind)),
                    "slug": str(field(item, "slug", "")),
                    "language": str(field(item, "language", "")),
                    "version": str(field(item, "version", "")),
                }
                for item in members(field(transient, "translations"))
            )
        fix, details = update_fix(await site.tools(ctx.host), "the translations")
        details["updates"] = pending
        if pending:
            shown = ", ".join(f"{p['slug']} ({p['language']})" for p in pending[:10])
            return ctx.warn(
                f"{len(pending)} translation update(s): {shown}", suggested_fix=fix, **details
            )
        return ctx.passed("no translation update waiting", **details)
