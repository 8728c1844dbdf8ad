"""PHP fatal errors in log lines, and the plugin each one came from.

PHP logs a fatal error as one line, with a timestamp when it writes its own log
(``[26-Nov-2026 12:00:00 UTC] PHP Fatal error:  Uncaught Exception: boom in
/srv/site/wp-content/plugins/shop/shop.php:12``); Apache and PHP-FPM wrap the same text in their
own prefixes. The file named after ``in`` (or the first one under ``wp-content/plugins/`` in the
message) says which plugin crashed. A stack trace on the following lines is not needed.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterable, Sequence

import attrs

__all__ = ["Fatal", "PluginCrashes", "fatals", "plugin_crashes"]

_FATAL = re.compile(
    r"PHP (?P<kind>Fatal error|Parse error|Compile error|Core error):\s+(?P<msg>.*)"
)
_STAMP = re.compile(
    r"^\[(?P<day>\d{1,2})-(?P<month>[A-Za-z]{3})-(?P<year>\d{4}) "
    r"(?P<time>\d{2}:\d{2}:\d{2})(?: (?P<zone>[A-Za-z0-9_+\-/]+))?\]"
)
_PLUGIN = re.compile(r"/wp-content/(?P<area>plugins|mu-plugins)/(?P<name>[^/\s:'\"()]+)")
_NAME_END = re.compile(r"[/\s:'\"()]")
_SHOWN = 300


@attrs.frozen(kw_only=True)
class Fatal:
    """One fatal error line.

    :param plugin: the plugin directory (``"shop"``), or the file of a single-file plugin
        (``"hello.php"``); None when the error is not in a plugin.
    :param must_use: the plugin is a must-use plugin (``mu-plugins``): it cannot be deactivated.
    :param at: when PHP logged it, when the line says.
    :param message: the message, cut to a few hundred characters.
    """

    kind: str
    message: str
    plugin: str | None = None
    must_use: bool = False
    at: dt.datetime | None = None
    line: int = 0


def _when(line: str) -> dt.datetime | None:
    stamp = _STAMP.match(line)
    if stamp is None:
        return None
    try:
        naive = dt.datetime.strptime(  # noqa: DTZ007 - the zone is applied just below
            f"{stamp['day']}-{stamp['month']}-{stamp['year']} {stamp['time']}",
            "%d-%b-%Y %H:%M:%S",
        )
    except ValueError:
        return None
    zone = stamp["zone"] or "UTC"
    try:
        tz: dt.tzinfo = dt.UTC if zone == "UTC" else zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return naive.replace(tzinfo=tz).astimezone(dt.UTC)


def _in_dirs(text: str, plugin_dirs: Sequence[str]) -> str | None:
    for directory in plugin_dirs:
        prefix = directory.rstrip("/") + "/"
        at = text.find(prefix)
        if at >= 0:
            name = _NAME_END.split(text[at + len(prefix) :], maxsplit=1)[0]
            if name:
                return name
    return None


def _plugin(message: str, plugin_dirs: Sequence[str]) -> tuple[str | None, bool]:
    """The plugin a fatal error names: the file after the last `` in `` first, else the first
    plugin path anywhere in the message."""
    where = message.rsplit(" in ", 1)[-1] if " in " in message else ""
    for text in (where, message):
        name = _in_dirs(text, plugin_dirs)
        if name is not None:
            return name, False
        found = _PLUGIN.search(text)
        if found is not None:
            return found["name"], found["area"] == "mu-plugins"
    return None, False


def fatals(lines: Iterable[str], plugin_dirs: Sequence[str] = ()) -> list[Fatal]:
    """The fatal errors among ``lines`` (numbered from 1), each with its plugin when known.

    :param plugin_dirs: absolute plugin directories of the site (a custom ``WP_PLUGIN_DIR``);
        paths under any ``wp-content/plugins/`` and ``wp-content/mu-plugins/`` count too.
    """
    found: list[Fatal] = []
    for number, line in enumerate(lines, 1):
        match = _FATAL.search(line)
        if match is None:
            continue
        message = match["msg"].strip()
        plugin, must_use = _plugin(message, plugin_dirs)
        found.append(
            Fatal(
                kind=match["kind"],
                message=message[:_SHOWN],
                plugin=plugin,
                must_use=must_use,
                at=_when(line),
                line=number,
            )
        )
    return found


@attrs.frozen(kw_only=True)
class PluginCrashes:
    """The fatal errors of one plugin: how many, the latest, and one message."""

    plugin: str
    count: int
    must_use: bool
    last_at: dt.datetime | None
    example: str


def plugin_crashes(
    found: Iterable[Fatal], *, since: dt.datetime | None = None
) -> list[PluginCrashes]:
    """Fatal errors grouped by plugin, most frequent first; lines older than ``since`` are left
    out (lines without a timestamp are kept: their age is unknown)."""
    groups: dict[str, list[Fatal]] = {}
    for fatal in found:
        stale = since is not None and fatal.at is not None and fatal.at < since
        if fatal.plugin is None or stale:
            continue
        groups.setdefault(fatal.plugin, []).append(fatal)
    crashes = [
        PluginCrashes(
            plugin=name,
            count=len(items),
            must_use=any(i.must_use for i in items),
            last_at=max((i.at for i in items if i.at is not None), default=None),
            example=items[-1].message,
        )
        for name, items in groups.items()
    ]
    return sorted(crashes, key=lambda c: (-c.count, c.plugin))
