"""What every WordPress check shares: reading the site's configuration and database once per
check, and turning a site that cannot be read into an ERROR result with the reason."""

from __future__ import annotations

import posixpath
from typing import Any

from healer_wordpress import site
from universal_healer.checks import CheckContext, DiagnosticCheck
from universal_healer.model import CheckResult

__all__ = ["DB_CHECK", "DatabaseCheck", "WordPressCheck", "content_dir", "plugin_dir", "relative"]

DB_CHECK = "wp_database_connection"
"""The check every database-reading check depends on: a database outage suppresses their heals."""


def content_dir(ctx: CheckContext, config: site.LoadedConfig) -> str:
    """``WP_CONTENT_DIR`` when it is a plain absolute path, else ``<root>/wp-content``."""
    value = config.settings.get("WP_CONTENT_DIR")
    if isinstance(value, str) and value.startswith("/"):
        return value.rstrip("/") or "/"
    return ctx.path("wp-content")


def plugin_dir(ctx: CheckContext, config: site.LoadedConfig) -> str:
    """``WP_PLUGIN_DIR`` when it is a plain absolute path, else the content directory's
    ``plugins``."""
    value = config.settings.get("WP_PLUGIN_DIR")
    if isinstance(value, str) and value.startswith("/"):
        return value.rstrip("/") or "/"
    return posixpath.join(content_dir(ctx, config), "plugins")


def relative(ctx: CheckContext, path: str) -> str:
    """``path`` relative to the application root when it is inside it, else as it is."""
    root = ctx.app.path.rstrip("/") + "/"
    return path.removeprefix(root)


class WordPressCheck(DiagnosticCheck):
    """A check that reads ``wp-config.php`` first; subclasses implement :meth:`judge`."""

    async def run(self, ctx: CheckContext) -> CheckResult:
        """Load the configuration, then judge; an unreadable site is an ERROR result."""
        try:
            config = await site.load_config(ctx.host, ctx.app)
            return await self.judge(ctx, config)
        except site.SiteError as err:
            return ctx.error(f"cannot read the site: {err.reason}")

    async def judge(self, ctx: CheckContext, config: site.LoadedConfig) -> CheckResult:
        """Look at the site, its configuration already read."""
        raise NotImplementedError


class DatabaseCheck(WordPressCheck):
    """A check that reads the database; it depends on :data:`DB_CHECK`."""

    depends_on = (DB_CHECK,)

    async def judge(self, ctx: CheckContext, config: site.LoadedConfig) -> CheckResult:
        """Log in, then :meth:`query`; a database that cannot be read is an ERROR result."""
        try:
            async with site.connect(ctx.host, config.settings) as db:
                return await self.query(ctx, config, db)
        except site.SiteError as err:
            return ctx.error(f"cannot read the database: {err.reason}")

    async def query(
        self, ctx: CheckContext, config: site.LoadedConfig, db: site.Database
    ) -> CheckResult:
        """Look at the database."""
        raise NotImplementedError


def update_fix(tools: site.Tools, what: str) -> tuple[str, dict[str, Any]]:
    """The suggested fix for an available update, and the details a strategy needs: WP-CLI's
    path (None when it is not on the host's PATH) and whether the healer runs as root."""
    details = {"wp_cli": tools.wp_cli, "as_root": tools.euid == 0}
    if tools.wp_cli:
        return f"update {what} with WP-CLI (the healer can, with an approval)", details
    return (
        f"update {what} from wp-admin, or install WP-CLI to let the healer update; "
        "cannot heal without it",
        details,
    )
