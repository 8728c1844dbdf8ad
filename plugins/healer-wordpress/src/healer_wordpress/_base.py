"""What every WordPress check shares: the site's configuration, read once per diagnosis run
(with every other site of the host, see :class:`SiteConfigs`), its database login, kept for the
run, and turning a site that cannot be read into an ERROR result with the reason."""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from healer_wordpress import site
from universal_healer._mysql import MySQLClientError
from universal_healer.checks import CheckContext, DiagnosticCheck, HostQuery
from universal_healer.hosts.base import Host
from universal_healer.model import Application, CheckResult, StackInfo

__all__ = [
    "CONFIGS",
    "DB_CHECK",
    "DatabaseCheck",
    "SiteConfigs",
    "WordPressCheck",
    "content_dir",
    "load_config",
    "plugin_dir",
    "relative",
]

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


_SiteKey = tuple[str, str]  # the root, and the name the site is served as


@attrs.frozen
class SiteConfigs(HostQuery[_SiteKey, "site.LoadedConfig | site.SiteError"]):
    """``wp-config.php`` of the sites of a host: each read once per run, all at once.

    A fleet asks for every site of the host before the checks run; the reads and ``stat``
    calls then travel together, and the eighteen checks of a site share one reading.
    """

    max_keys: ClassVar[int] = 64

    async def answer(
        self, host: Host, keys: Sequence[_SiteKey]
    ) -> Mapping[_SiteKey, site.LoadedConfig | site.SiteError]:
        """Each site's configuration, or the reason it cannot be read."""

        async def one(root: str, server_name: str) -> site.LoadedConfig | site.SiteError:
            try:
                return await site.load_config_at(host, root, server_name)
            except site.SiteError as err:
                return err

        loaded = await asyncio.gather(*(one(*key) for key in keys))
        return dict(zip(keys, loaded, strict=True))


CONFIGS = SiteConfigs()


def _site_key(app: Application) -> _SiteKey:
    return (app.path, app.domain or "localhost")


async def load_config(ctx: CheckContext) -> site.LoadedConfig:
    """The application's ``wp-config.php`` as this run read it.

    :raises site.SiteError: it cannot be read or used.
    """
    loaded = await ctx.ask(CONFIGS, _site_key(ctx.app))
    if isinstance(loaded, site.SiteError):
        raise site.SiteError(loaded.reason)
    return loaded


class WordPressCheck(DiagnosticCheck):
    """A check that reads ``wp-config.php`` first; subclasses implement :meth:`judge`."""

    async def run(self, ctx: CheckContext) -> CheckResult:
        """Load the configuration, then judge; an unreadable site is an ERROR result."""
        try:
            config = await load_config(ctx)
            return await self.judge(ctx, config)
        except site.SiteError as err:
            return ctx.error(f"cannot read the site: {err.reason}")

    def queries(
        self, app: Application, stack: StackInfo | None
    ) -> Iterable[tuple[HostQuery[Any, Any], Hashable]]:
        """The site's ``wp-config.php``, read with every other site's of the host."""
        return [(CONFIGS, _site_key(app))]

    async def judge(self, ctx: CheckContext, config: site.LoadedConfig) -> CheckResult:
        """Look at the site, its configuration already read."""
        raise NotImplementedError


class DatabaseCheck(WordPressCheck):
    """A check that reads the database; it depends on :data:`DB_CHECK`."""

    depends_on = (DB_CHECK,)

    async def judge(self, ctx: CheckContext, config: site.LoadedConfig) -> CheckResult:
        """Log in, then :meth:`query`; a database that cannot be read is an ERROR result.

        The login (a private option file on the host) is kept for the rest of the run and
        shared by the site's database checks; the run removes it when it ends.
        """
        key = ("healer_wordpress.database", ctx.app.path, config.path)
        try:
            db = await ctx.host_run.enter(key, lambda: site.connect(ctx.host, config.settings))
            return await self.query(ctx, config, db)
        except site.SiteError as err:
            return ctx.error(f"cannot read the database: {err.reason}")
        except MySQLClientError as err:
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
