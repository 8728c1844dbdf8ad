"""Reading a WordPress site through its host: its configuration, its database, its tools.

Everything goes through :class:`~universal_healer.hosts.base.Host`, so it works the same on
this machine and over SSH. Secrets stay secret:

- ``wp-config.php`` is parsed without running it (:mod:`healer_wordpress.wpconfig`). Only when
  its settings are computed at run time is PHP asked: ``php -r`` evaluates the file with
  WordPress's ``wp-settings.php`` left out (as WP-CLI does), the file's path as an argument,
  and prints the constants on stdout, where only this module reads them. No secret is on a
  command line, and no message here holds one.
- The database is reached with the ``mysql`` client and a private option file
  (:mod:`universal_healer._mysql`); SQL travels on stdin, data as hex literals.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs

from healer_wordpress import php, phpserial, wpconfig
from healer_wordpress._web import LOCAL_ADDRESS, HttpAnswer, http_address, http_get
from universal_healer import _mysql
from universal_healer._mysql import MySQLClient, MySQLClientError, MySQLCredentials
from universal_healer.hosts.base import Host
from universal_healer.model import Application

__all__ = [
    "CONFIG_BYTES",
    "LOCAL_ADDRESS",
    "Database",
    "HttpAnswer",
    "LoadedConfig",
    "SiteError",
    "Tools",
    "WebUser",
    "config_path",
    "connect",
    "credentials",
    "http_address",
    "http_get",
    "load_config",
    "read_text",
    "tail",
    "tools",
    "web_user",
]

CONFIG_BYTES = 1024 * 1024
PHP_TIMEOUT_S = 20.0
_MARKER = "@@healer-wp-config@@"
_ERROR_MARKER = "@@healer-wp-error@@"
WEB_USERS = ("www-data", "apache", "nginx", "http", "wwwrun")
"""Who a web server runs as, by distribution; an application's ``web_user`` metadata wins."""


class SiteError(Exception):
    """The site could not be read; ``reason`` says why and never holds a secret."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


async def read_text(host: Host, path: str, *, max_bytes: int = CONFIG_BYTES) -> str | None:
    """The file at ``path`` as text (undecodable bytes as surrogate escapes), None when it is
    missing; :class:`SiteError` when it cannot be read or is too large."""
    read = (await host.read_files([path], max_bytes=max_bytes))[path]
    if read.error == "missing":
        return None
    if read.data is None:
        raise SiteError(f"{posixpath.basename(path)} is {read.error or 'unreadable'}")
    if read.truncated:
        raise SiteError(f"{posixpath.basename(path)} is larger than {max_bytes} bytes")
    return read.data.decode("utf-8", errors="surrogateescape")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


# --------------------------------------------------------------------------------------------
# wp-config.php


async def config_path(host: Host, root: str) -> str:
    """Where WordPress finds ``wp-config.php``: in the root, else one directory up when that
    directory is not another WordPress (it has no ``wp-settings.php``)."""
    here = posixpath.join(root, "wp-config.php")
    if await host.stat(here) is not None:
        return here
    parent = posixpath.dirname(root.rstrip("/")) or "/"
    above = posixpath.join(parent, "wp-config.php")
    if (
        await host.stat(above) is not None
        and await host.stat(posixpath.join(parent, "wp-settings.php")) is None
    ):
        return above
    raise SiteError("no wp-config.php: WordPress is not installed (or its config is elsewhere)")


@attrs.frozen(kw_only=True)
class LoadedConfig:
    """``wp-config.php`` as read: where, its text, its parse and its settings."""

    path: str
    text: str = attrs.field(repr=False)
    source: php.Source = attrs.field(repr=False)
    settings: wpconfig.Settings


_ASK_PHP = r"""
[, $path, $server] = $argv;
$_SERVER['HTTP_HOST'] = $_SERVER['SERVER_NAME'] = $server;
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SCRIPT_NAME'] = $_SERVER['PHP_SELF'] = '/index.php';
$code = @file_get_contents($path);
if ($code === false) {
    fwrite(STDERR, "@@healer-wp-error@@cannot read the file\n");
    exit(3);
}
// Run the file as WordPress would, minus WordPress: wp-settings.php is left out, as WP-CLI
// does, and __FILE__ / __DIR__ name the real file.
$out = '';
$tokens = token_get_all($code);
$includes = [T_REQUIRE, T_REQUIRE_ONCE, T_INCLUDE, T_INCLUDE_ONCE];
for ($i = 0, $n = count($tokens); $i < $n; $i++) {
    $t = $tokens[$i];
    $id = is_array($t) ? $t[0] : null;
    $text = is_array($t) ? $t[1] : $t;
    if ($id === T_FILE) { $out .= var_export($path, true); continue; }
    if ($id === T_DIR) { $out .= var_export(dirname($path), true); continue; }
    if (in_array($id, $includes, true)) {
        $statement = $text;
        for ($j = $i + 1; $j < $n && $tokens[$j] !== ';'; $j++) {
            $statement .= is_array($tokens[$j]) ? $tokens[$j][1] : $tokens[$j];
        }
        if (strpos($statement, 'wp-settings.php') !== false) { $i = $j; continue; }
    }
    $out .= $text;
}
register_shutdown_function(function () {
    global $table_prefix;
    $kept = [];
    foreach (get_defined_constants(true)['user'] ?? [] as $name => $value) {
        if (is_string($value)) { $kept[$name] = ['s' => bin2hex($value)]; }
        elseif (is_scalar($value) || $value === null) { $kept[$name] = $value; }
    }
    $prefix = isset($table_prefix) && is_string($table_prefix) ? $table_prefix : null;
    $answer = ['constants' => $kept, 'table_prefix' => $prefix];
    echo "\n@@healer-wp-config@@", json_encode($answer), "\n";
});
chdir(dirname($path));
try {
    eval('?>' . $out);
} catch (Throwable $e) {
    fwrite(STDERR, "@@healer-wp-error@@" . get_class($e) . " on line " . $e->getLine() . "\n");
    exit(4);
}
"""


def _php_document(stdout: bytes) -> dict[str, Any]:
    text = stdout.decode("utf-8", errors="surrogateescape")
    _, marker, tail_text = text.rpartition(_MARKER)
    if not marker:
        raise SiteError("PHP printed no settings for wp-config.php")
    try:
        document = json.loads(tail_text)
    except json.JSONDecodeError as err:
        raise SiteError(f"PHP's answer about wp-config.php is not JSON ({err.msg})") from None
    constants = document.get("constants") if isinstance(document, dict) else None
    if isinstance(constants, dict):
        for name, value in list(constants.items()):
            if isinstance(value, dict) and isinstance(value.get("s"), str):
                try:
                    raw = bytes.fromhex(value["s"])
                except ValueError:
                    raw = b""
                constants[name] = raw.decode("utf-8", errors="surrogateescape")
    return document if isinstance(document, dict) else {}


def _php_error(stderr: bytes, status: int) -> str:
    """What went wrong, from this module's own marker line only: PHP's messages may quote the
    file, and the file holds the password."""
    for line in stderr.decode("utf-8", errors="replace").splitlines():
        if _ERROR_MARKER in line:
            return line.split(_ERROR_MARKER, 1)[1].strip()
    return f"php exited with status {status}"


async def ask_php(host: Host, path: str, *, server_name: str = "localhost") -> dict[str, Any]:
    """Have PHP evaluate ``wp-config.php`` (without WordPress) and return what it defined.

    :raises SiteError: PHP is missing, the file does not run, or PHP's answer is unreadable.
    """
    argv = (
        "php", "-d", "display_errors=stderr", "-d", "log_errors=0", "-d", "html_errors=0",
        "-d", f"max_execution_time={int(PHP_TIMEOUT_S)}", "-r", _ASK_PHP, "--", path, server_name,
    )  # fmt: skip
    result = await host.run(argv, timeout=PHP_TIMEOUT_S + 5, cwd=posixpath.dirname(path))
    if result.exit_status == 127 and not result.stdout:
        raise SiteError("wp-config.php computes its settings at run time and php is not installed")
    if not result.ok:
        raise SiteError(
            f"PHP could not evaluate wp-config.php: {_php_error(result.stderr, result.exit_status)}"
        )
    if result.truncated:
        raise SiteError("PHP's answer about wp-config.php was too long")
    return _php_document(result.stdout)


async def load_config(host: Host, app: Application) -> LoadedConfig:
    """Read ``wp-config.php`` of ``app``: statically when its settings are literals, else by
    asking PHP (with the application's domain as the request's host name).

    :raises SiteError: there is no readable, usable ``wp-config.php``.
    """
    return await load_config_at(host, app.path, app.domain or "localhost")


async def load_config_at(host: Host, root: str, server_name: str) -> LoadedConfig:
    """:func:`load_config` for the site at ``root``, served as ``server_name``."""
    path = await config_path(host, root)
    text = await read_text(host, path)
    if text is None:
        raise SiteError("wp-config.php disappeared while it was read")
    source = php.parse(text)
    static = wpconfig.static_settings(source)
    if isinstance(static, wpconfig.Settings):
        return LoadedConfig(path=path, text=text, source=source, settings=static)
    document = await ask_php(host, path, server_name=server_name)
    settings = wpconfig.settings_from_php(document, notes=static)
    return LoadedConfig(path=path, text=text, source=source, settings=settings)


# --------------------------------------------------------------------------------------------
# The database


def credentials(settings: wpconfig.Settings) -> tuple[MySQLCredentials, str, str]:
    """The login, database name and table prefix ``wp-config.php`` gives.

    :raises SiteError: a setting is missing or unusable.
    """
    missing = settings.missing()
    if missing:
        raise SiteError(f"wp-config.php does not set {', '.join(missing)}")
    name, user = str(settings.get("DB_NAME")), str(settings.get("DB_USER"))
    where = wpconfig.parse_db_host(str(settings.get("DB_HOST")))
    try:
        login = MySQLCredentials(
            user=user,
            password=settings.db_password or "",
            host=where.host,
            port=where.port or 3306,
            socket=where.socket,
        )
        _mysql.quote_identifier(name)
    except ValueError as err:
        raise SiteError(f"unusable database settings in wp-config.php: {err}") from None
    prefix = settings.table_prefix or ""
    if not re.fullmatch(r"[A-Za-z0-9_]+", prefix):
        raise SiteError(f"unusable $table_prefix {prefix!r} (WordPress allows letters, digits, _)")
    return login, name, prefix


def _hex(value: str | bytes) -> str:
    raw = _encode(value) if isinstance(value, str) else value
    return f"X'{raw.hex()}'" if raw else "''"


def _unhex(value: str) -> bytes:
    return bytes.fromhex(value) if value != "NULL" else b""


@attrs.frozen(kw_only=True)
class Database:
    """A WordPress database, logged in: options, site options, and SQL.

    :param multisite: site-wide options live in ``{prefix}sitemeta``, not ``{prefix}options``.
    """

    client: MySQLClient
    prefix: str
    multisite: bool = False

    def table(self, name: str) -> str:
        """The quoted name of WordPress table ``name`` (``options`` -> ```wp_options```)."""
        return _mysql.quote_identifier(self.prefix + name)

    async def rows(self, sql: str, *, what: str) -> list[list[str]]:
        """Run ``sql`` and return the rows; :class:`SiteError` when it fails."""
        try:
            return await self.client.query(sql, what=what)
        except MySQLClientError as err:
            raise SiteError(err.reason) from None

    async def option(self, name: str) -> bytes | None:
        """The raw value of option ``name``, None when there is no such option."""
        found = await self.rows(
            f"SELECT HEX(option_value) FROM {self.table('options')} "  # noqa: S608 - quoted, hex
            f"WHERE option_name = {_hex(name)} LIMIT 1",
            what=f"reading the option {name}",
        )
        return _unhex(found[0][0]) if found else None

    async def site_option(self, name: str) -> bytes | None:
        """A network-wide option (``sitemeta`` on multisite, ``options`` otherwise)."""
        if not self.multisite:
            return await self.option(name)
        found = await self.rows(
            f"SELECT HEX(meta_value) FROM {self.table('sitemeta')} "  # noqa: S608 - quoted, hex
            f"WHERE meta_key = {_hex(name)} ORDER BY site_id LIMIT 1",
            what=f"reading the network option {name}",
        )
        return _unhex(found[0][0]) if found else None

    async def value(self, name: str, *, site: bool = False) -> Any:
        """An option unserialized as WordPress does (``maybe_unserialize``); None when absent."""
        raw = await (self.site_option(name) if site else self.option(name))
        return None if raw is None else phpserial.maybe_loads(raw)

    async def set_option_if(self, name: str, old: bytes, new: bytes) -> bool:
        """Replace option ``name``'s value with ``new`` only if it is still ``old`` (no lost
        update against WordPress writing it meanwhile); whether it was replaced."""
        changed = await self.rows(
            f"UPDATE {self.table('options')} SET option_value = {_hex(new)} "  # noqa: S608
            f"WHERE option_name = {_hex(name)} AND option_value = {_hex(old)};\n"
            "SELECT ROW_COUNT();",
            what=f"updating the option {name}",
        )
        return bool(changed) and changed[-1][0] == "1"


@contextlib.asynccontextmanager
async def connect(
    host: Host, settings: wpconfig.Settings, *, timeout: float = 25.0
) -> AsyncIterator[Database]:
    """The site's database, logged in with ``wp-config.php``'s credentials through a private
    option file that is removed on the way out.

    :raises SiteError: bad settings, or the option file could not be written.
    """
    login, name, prefix = credentials(settings)
    try:
        async with _mysql.private_option_file(host, login) as option_file:
            client = MySQLClient(
                host=host, option_file=option_file, database=name, credentials=login,
                timeout=timeout,
            )  # fmt: skip
            yield Database(client=client, prefix=prefix, multisite=settings.flag("MULTISITE"))
    except MySQLClientError as err:
        raise SiteError(err.reason) from None


# --------------------------------------------------------------------------------------------
# Tools, users, HTTP, logs


@attrs.frozen(kw_only=True)
class Tools:
    """What the host offers: who the healer runs as and which commands are on its PATH."""

    euid: int | None
    wp_cli: str | None
    php: str | None
    curl: str | None


_TOOLS = """id -u || echo
for tool in wp php curl; do command -v "$tool" || echo; done
"""


async def tools(host: Host) -> Tools:
    """The healer's user id and where ``wp``, ``php`` and ``curl`` are (None: not installed)."""
    result = await host.run(("sh", "-c", _TOOLS), timeout=15)
    lines = [*result.text.splitlines(), "", "", "", ""][:4]
    euid = int(lines[0]) if lines[0].strip().isdigit() else None
    found = [line.strip() or None for line in lines[1:]]
    return Tools(euid=euid, wp_cli=found[0], php=found[1], curl=found[2])


@attrs.frozen(kw_only=True)
class WebUser:
    """The user the web server (and so WordPress) runs as."""

    name: str
    uid: int
    gids: frozenset[int]

    def can(self, mode: int, uid: int, gid: int, bit: int) -> bool:
        """Whether this user has permission ``bit`` (4 read, 2 write) on a file of ``mode``,
        owned by ``uid``:``gid``, going by the mode bits alone."""
        if self.uid == 0:
            return True
        if uid == self.uid:
            return bool(mode & (bit << 6))
        if gid in self.gids:
            return bool(mode & (bit << 3))
        return bool(mode & bit)


_WEB_USER = """for user do
  if uid=$(id -u -- "$user" 2>/dev/null); then
    printf '%s\\n%s\\n' "$user" "$uid"; id -G -- "$user"; exit 0
  fi
done
exit 1
"""


async def web_user(host: Host, app: Application) -> WebUser | None:
    """The web server's user: the application's ``web_user`` metadata, else the first of
    :data:`WEB_USERS` that exists on the host; None when none does."""
    configured = app.metadata.get("web_user")
    names = (configured,) if isinstance(configured, str) and configured else WEB_USERS
    result = await host.run(("sh", "-c", _WEB_USER, "sh", *names), timeout=15)
    lines = result.text.splitlines()
    if not result.ok or len(lines) < 3 or not lines[1].isdigit():
        return None
    gids = frozenset(int(g) for g in lines[2].split() if g.isdigit())
    return WebUser(name=lines[0], uid=int(lines[1]), gids=gids)


async def tail(host: Host, path: str, lines: int) -> list[str] | None:
    """The last ``lines`` lines of the file at ``path``; None when it does not exist."""
    if await host.stat(path) is None:
        return None
    result = await host.run(("tail", "-n", str(lines), "--", path), timeout=20, max_output=8 << 20)
    if not result.ok:
        said = result.stderr.decode("utf-8", errors="replace").strip()
        raise SiteError(f"cannot read {posixpath.basename(path)}: {said[:200]}")
    return result.stdout.decode("utf-8", errors="replace").splitlines()


def plugin_key(entry: str) -> str:
    """The plugin an ``active_plugins`` entry names: ``"shop/shop.php"`` -> ``"shop"``,
    ``"hello.php"`` -> ``"hello.php"``."""
    return entry.split("/", 1)[0] if "/" in entry else entry


def active_plugins(value: Any) -> list[str]:
    """The entries of an ``active_plugins`` option value (a PHP array of strings)."""
    if isinstance(value, Mapping):
        return [v for v in value.values() if isinstance(v, str)]
    return []
