"""What ``wp-config.php`` says, read without running it, and the one edit the healer makes to it.

:func:`static_settings` reads the settings from the parsed file (:mod:`healer_wordpress.php`)
when every setting that matters is a plain literal; otherwise it says why PHP must be asked
(:mod:`healer_wordpress.site` does that). :func:`set_false` rewrites the values of some
``define()`` calls to ``false`` and leaves every other byte of the file as it was.

Secrets (``DB_PASSWORD``, the keys and salts) never go into :attr:`Settings.constants`; the
password lives in :attr:`Settings.db_password`, which has no ``repr``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from healer_wordpress import php

__all__ = [
    "DB_SETTINGS",
    "RELEVANT",
    "DbHost",
    "Edit",
    "Settings",
    "is_secret",
    "parse_db_host",
    "set_false",
    "settings_from_php",
    "static_settings",
]

DB_SETTINGS = ("DB_NAME", "DB_USER", "DB_PASSWORD", "DB_HOST")
"""What the healer needs to reach the site's database."""

RELEVANT = frozenset(
    {
        *DB_SETTINGS, "DB_CHARSET", "DB_COLLATE", "WP_DEBUG", "WP_DEBUG_DISPLAY",
        "WP_DEBUG_LOG", "SAVEQUERIES", "WP_ENVIRONMENT_TYPE", "MULTISITE", "WP_ALLOW_MULTISITE",
        "SUBDOMAIN_INSTALL", "DISABLE_WP_CRON", "WP_CONTENT_DIR", "WP_PLUGIN_DIR", "UPLOADS",
        "WP_SITEURL", "WP_HOME", "WP_CACHE", "CUSTOM_USER_TABLE",
    }
)  # fmt: skip
"""Constants whose value the checks use: one that is computed makes the file 'dynamic'."""

_SECRET = re.compile(r"(?:PASSWORD|PASSWD|_KEY|_SALT|SECRET|TOKEN)", re.IGNORECASE)


def is_secret(name: str) -> bool:
    """Whether a constant holds a secret (a password, an auth key or salt, a token)."""
    return bool(_SECRET.search(name))


@attrs.frozen(kw_only=True)
class Settings:
    """The settings of ``wp-config.php`` as WordPress would see them.

    :param constants: defined constants and their values, secrets left out.
    :param db_password: ``DB_PASSWORD``; None when it is not defined.
    :param table_prefix: ``$table_prefix``; None when it is not set.
    :param source: ``"static"`` (read without running the file) or ``"php"`` (PHP ran it).
    :param notes: why PHP had to be asked, when it was.
    """

    constants: Mapping[str, php.Scalar] = attrs.field(factory=dict)
    db_password: str | None = attrs.field(default=None, repr=False)
    table_prefix: str | None = None
    source: str = "static"
    notes: tuple[str, ...] = ()

    def get(self, name: str, default: php.Scalar = None) -> php.Scalar:
        """The value of constant ``name``, or ``default`` when it is not defined."""
        return self.constants.get(name, default)

    def defined(self, name: str) -> bool:
        """Whether constant ``name`` is defined (secrets included)."""
        return name in self.constants or (name == "DB_PASSWORD" and self.db_password is not None)

    def flag(self, name: str, default: bool = False) -> bool:
        """The constant's PHP truthiness, ``default`` when it is not defined."""
        return php.truthy(self.constants[name]) if name in self.constants else default

    def missing(self) -> tuple[str, ...]:
        """The database settings that are not there (``DB_NAME``...; ``$table_prefix``)."""
        absent = [name for name in DB_SETTINGS if not self.defined(name)]
        if not self.table_prefix:
            absent.append("$table_prefix")
        return tuple(absent)


def _constant_problem(name: str, defines: tuple[php.Define, ...]) -> str | None:
    """Why the value of a relevant constant cannot be taken from the file as written."""
    if not defines:
        return None
    first = defines[0]
    if isinstance(first.value, php.Dynamic):
        return f"{name} {first.value.reason} (line {first.line})"
    if first.conditional:
        return f"{name} is defined conditionally (line {first.line})"
    return None


def static_settings(source: php.Source) -> Settings | tuple[str, ...]:
    """The settings of a parsed ``wp-config.php``, or why PHP must be asked for them.

    The file is static enough when it includes no other file, computes no constant name, has
    no syntax trouble, every relevant constant is either undefined or first defined outside
    any condition with a literal value, and ``$table_prefix`` is one literal string.
    """
    reasons: list[str] = list(source.problems)
    reasons += [f"includes another file ({where})" for where in source.includes]
    reasons += [f"computes the name of a constant (line {line})" for line in source.computed]
    for name in sorted(RELEVANT):
        problem = _constant_problem(name, source.defines_of(name))
        if problem is not None:
            reasons.append(problem)
    prefixes = source.assignments_of("table_prefix")
    if len(prefixes) > 1 or any(a.conditional for a in prefixes):
        reasons.append(f"$table_prefix is set {len(prefixes)} times or conditionally")
    elif prefixes and not isinstance(prefixes[0].value, str):
        value = prefixes[0].value
        why = value.reason if isinstance(value, php.Dynamic) else "is not a string"
        reasons.append(f"$table_prefix {why} (line {prefixes[0].line})")
    if reasons:
        return tuple(reasons)
    constants: dict[str, php.Scalar] = {}
    password: str | None = None
    for define in source.defines:
        if define.name in constants or isinstance(define.value, php.Dynamic):
            continue  # PHP keeps the first definition; computed irrelevant ones are skipped
        if define.name == "DB_PASSWORD":
            password = password if password is not None else _text(define.value)
        elif not is_secret(define.name) and not define.conditional:
            constants[define.name] = define.value
    prefix = prefixes[0].value if prefixes else None
    return Settings(
        constants=constants,
        db_password=password,
        table_prefix=prefix if isinstance(prefix, str) else None,
    )


def _text(value: php.Scalar) -> str:
    """A scalar as PHP would turn it into a string (for DB settings given as numbers)."""
    if isinstance(value, bool):
        return "1" if value else ""
    return "" if value is None else str(value)


def settings_from_php(document: Mapping[str, Any], notes: Iterable[str] = ()) -> Settings:
    """Settings from what the PHP fallback printed: ``{"constants": {...}, "table_prefix":
    ...}`` (see :mod:`healer_wordpress.site`). Values that are not scalars are left out."""
    raw = document.get("constants")
    constants: dict[str, php.Scalar] = {}
    password: str | None = None
    if isinstance(raw, Mapping):
        for name, value in raw.items():
            if not isinstance(name, str) or not isinstance(value, str | int | float | bool | None):
                continue
            if name == "DB_PASSWORD":
                password = _text(value)
            elif not is_secret(name):
                constants[name] = value
    prefix = document.get("table_prefix")
    return Settings(
        constants=constants,
        db_password=password,
        table_prefix=prefix if isinstance(prefix, str) else None,
        source="php",
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# DB_HOST


@attrs.frozen(kw_only=True)
class DbHost:
    """``DB_HOST`` split as WordPress splits it (``wpdb::parse_db_host``)."""

    host: str
    port: int | None = None
    socket: str | None = None


_IPV6 = re.compile(r"^\[?(?P<host>[0-9a-fA-F:]+)(?:\]:(?P<port>\d+))?")
_PLAIN = re.compile(r"^(?P<host>[^:/]*)(?::(?P<port>\d+))?")


def parse_db_host(value: str) -> DbHost:
    """``"localhost:/run/mysqld/mysqld.sock"``, ``"db:3307"``, ``"[::1]:3306"``...; an empty
    host is ``localhost``, as the client library takes it."""
    socket: str | None = None
    at = value.find(":/")
    if at >= 0:
        socket, value = value[at + 1 :], value[:at]
    pattern = _IPV6 if value.count(":") > 1 else _PLAIN
    found = pattern.match(value)
    host = found["host"] if found and found["host"] else ""
    port_text = found["port"] if found else None
    port = int(port_text) if port_text and 0 < int(port_text) < 65536 else None
    return DbHost(host=host or "localhost", port=port, socket=socket or None)


# --------------------------------------------------------------------------------------------
# The edit


@attrs.frozen(kw_only=True)
class Edit:
    """What :func:`set_false` did.

    :param text: the new file (the old one when nothing changed).
    :param changed: ``"WP_DEBUG (line 82)"`` for each value rewritten.
    :param refused: why a define was left alone (its value is computed).
    """

    text: str
    changed: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()


def set_false(text: str, names: Iterable[str]) -> Edit:
    """Rewrite the value of every ``define()`` of ``names`` whose literal value is truthy to
    ``false``; computed values are refused, never rewritten. Nothing else in ``text`` changes.
    """
    wanted = frozenset(names)
    source = php.parse(text)
    changes: list[php.Define] = []
    refused: list[str] = []
    for define in source.defines:
        if define.name not in wanted:
            continue
        if isinstance(define.value, php.Dynamic):
            refused.append(
                f"{define.name} (line {define.line}) {define.value.reason}: change it where "
                "its value comes from"
            )
        elif php.truthy(define.value):
            changes.append(define)
    new = text
    for define in sorted(changes, key=lambda d: d.value_start, reverse=True):
        new = new[: define.value_start] + "false" + new[define.value_end :]
    return Edit(
        text=new,
        changed=tuple(f"{d.name} (line {d.line})" for d in changes),
        refused=tuple(refused),
    )
