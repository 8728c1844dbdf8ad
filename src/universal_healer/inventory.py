"""The server inventory: what the healer knows about each host it may reach.

A :class:`ServerSpec` is what ``healer servers add`` and an inventory file describe; the
registry stores it (the password encrypted) and :func:`universal_healer.fleet.host_for` turns
it into a Host.

An inventory file is TOML with one ``[[servers]]`` table per server (:func:`load_inventory`)::

    [[servers]]
    name = "web-1"
    address = "203.0.113.10"
    port = 22                      # optional, 22
    user = "deploy"                # optional, the local user's name
    keys = ["~/.ssh/id_ed25519"]   # optional; relative paths are taken from the file's folder
    known_hosts = "~/.ssh/known_hosts"
    password = "..."               # optional; stored encrypted, never shown
    jump = "bastion"               # optional: another server's name
    search_paths = ["/var/www"]    # optional: where discovery looks
    tags = ["production"]
    trust_on_first_use = false
    max_channels = 8
    kind = "ssh"                   # or "local"

Every mistake is reported with the file, the entry (its position and name) and the field.
"""

from __future__ import annotations

import enum
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from universal_healer.exceptions import ConfigurationError

__all__ = [
    "INVENTORY_FIELDS",
    "ServerKind",
    "ServerSpec",
    "check_jumps",
    "load_inventory",
    "parse_inventory",
]


class ServerKind(enum.StrEnum):
    """How the healer reaches a server."""

    LOCAL = "local"
    SSH = "ssh"


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _name(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value or any(c.isspace() for c in value) or "/" in value:
        raise ValueError(f"{attribute.name} must be a non-empty name without spaces or '/'")


@attrs.frozen(kw_only=True)
class ServerSpec:
    """One server of the inventory.

    :param name: unique name (``"web-1"``); ``"local"`` is this machine.
    :param password: for password authentication; stored encrypted, never shown or logged.
    :param jump: name of another server to reach this one through.
    :param search_paths: where discovery looks on this server (defaults when empty).
    :param trust_on_first_use: accept and record an unknown host key once; a changed key is
        refused regardless.
    """

    name: str = attrs.field(validator=_name)
    kind: ServerKind = ServerKind.SSH
    address: str | None = None
    port: int = 22
    username: str | None = None
    client_keys: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    known_hosts: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    jump: str | None = None
    search_paths: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    tags: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    trust_on_first_use: bool = False
    max_channels: int = 8

    def __attrs_post_init__(self) -> None:
        if self.kind is ServerKind.SSH and not self.address:
            raise ValueError(f"server {self.name!r}: an SSH server needs an address")
        if not 0 < self.port < 65536:
            raise ValueError(f"server {self.name!r}: port {self.port} is out of range")
        if self.max_channels < 1:
            raise ValueError(f"server {self.name!r}: max_channels must be at least 1")


# --------------------------------------------------------------------------------------------
# Inventory files

INVENTORY_FIELDS: tuple[str, ...] = (
    "name", "kind", "address", "port", "user", "keys", "known_hosts", "password", "jump",
    "search_paths", "tags", "trust_on_first_use", "max_channels",
)  # fmt: skip
"""The fields a ``[[servers]]`` table may hold."""


class _FieldError(ValueError):
    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(problem)


def _string(field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise _FieldError(field, f"must be a non-empty string, got {_shown(value)}")
    return value


def _string_list(field: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _FieldError(field, f"must be a list of non-empty strings, got {_shown(value)}")
    return tuple(value)


def _integer(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _FieldError(field, f"must be an integer from {low} to {high}, got {_shown(value)}")
    return value


def _boolean(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _FieldError(field, f"must be true or false, got {_shown(value)}")
    return value


def _shown(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return "a table" if isinstance(value, dict) else "a list"
    return repr(value)


def _path(base: str) -> Callable[[str], str]:
    """Relative paths are relative to the inventory file, as its author sees them."""

    def resolve(path: str) -> str:
        if path.startswith("~") or os.path.isabs(path):
            return path
        return os.path.normpath(os.path.join(base, path))

    return resolve


def _spec(entry: Mapping[str, Any], base: str) -> ServerSpec:
    unknown = sorted(set(entry) - set(INVENTORY_FIELDS))
    if unknown:
        raise _FieldError(
            unknown[0], f"is not a server field (known: {', '.join(INVENTORY_FIELDS)})"
        )
    if "name" not in entry:
        raise _FieldError("name", "is missing: every server needs a name")
    if "password" in entry:
        _string("password", entry["password"])  # never echo the value in a message
    kind_text = _string("kind", entry.get("kind", ServerKind.SSH.value))
    try:
        kind = ServerKind(kind_text)
    except ValueError:
        choices = ", ".join(repr(k.value) for k in ServerKind)
        raise _FieldError("kind", f"must be one of {choices}, got {kind_text!r}") from None
    resolve = _path(base)
    values: dict[str, Any] = {"name": _string("name", entry["name"]), "kind": kind}
    readers: dict[str, Callable[[str, object], Any]] = {
        "address": _string,
        "port": lambda f, v: _integer(f, v, 1, 65535),
        "user": _string,
        "keys": lambda f, v: tuple(map(resolve, _string_list(f, v))),
        "known_hosts": lambda f, v: resolve(_string(f, v)),
        "password": _string,
        "jump": _string,
        "search_paths": _string_list,
        "tags": _string_list,
        "trust_on_first_use": _boolean,
        "max_channels": lambda f, v: _integer(f, v, 1, 64),
    }
    names = {"user": "username", "keys": "client_keys"}
    for field, read in readers.items():
        if field in entry:
            values[names.get(field, field)] = read(field, entry[field])
    if kind is ServerKind.SSH and "address" not in values:
        raise _FieldError("address", "is missing: an SSH server needs an address")
    try:
        return ServerSpec(**values)
    except ValueError as err:  # the name: every other constraint was checked above
        raise _FieldError("name", str(err)) from None


def parse_inventory(text: str, *, source: str, base: str | None = None) -> tuple[ServerSpec, ...]:
    """The servers of an inventory given as TOML text.

    :param source: names the file in messages.
    :param base: the folder relative key and known_hosts paths are taken from (the file's).
    :raises ConfigurationError: naming the file, the entry and the field of the first mistake.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigurationError(f"{source}: not valid TOML: {err}") from None
    extra = sorted(set(document) - {"servers"})
    if extra:
        raise ConfigurationError(
            f"{source}: unexpected top-level key {extra[0]!r}: an inventory holds only "
            "[[servers]] tables"
        )
    entries = document.get("servers")
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError(f"{source}: no [[servers]] tables: nothing to import")
    specs: list[ServerSpec] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        name = entry.get("name") if isinstance(entry, dict) else None
        where = f"{source}: server #{number}" + (f" ({name!r})" if isinstance(name, str) else "")
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{where}: must be a [[servers]] table")
        try:
            spec = _spec(entry, base or os.getcwd())
        except _FieldError as err:
            raise ConfigurationError(f"{where}: field {err.field!r} {err}") from None
        if spec.name in seen:
            raise ConfigurationError(
                f"{where}: field 'name' repeats the name of server #{seen[spec.name]}"
            )
        seen[spec.name] = number
        specs.append(spec)
    return tuple(specs)


def load_inventory(path: str) -> tuple[ServerSpec, ...]:
    """The servers of the TOML inventory file at ``path``.

    :raises ConfigurationError: when the file cannot be read, is not TOML, or an entry is
        wrong (the message names the file, the entry and the field).
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise ConfigurationError(f"{path}: cannot read the inventory: {err.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigurationError(f"{path}: not UTF-8 text ({err.reason})") from None
    return parse_inventory(text, source=path, base=os.path.dirname(os.path.abspath(path)))


def check_jumps(specs: Iterable[ServerSpec], known: Mapping[str, ServerSpec]) -> None:
    """Make sure every jump host named by ``specs`` can be used.

    :param known: the other servers by name (those of the registry); ``specs`` win over them.
    :raises ConfigurationError: for a jump host that is unknown, the server itself, local, or
        itself behind a jump host (one hop is supported).
    """
    servers = {**known}
    given = list(specs)
    servers.update((spec.name, spec) for spec in given)
    for spec in given:
        if spec.jump is None:
            continue
        where = f"server {spec.name!r}: jump host {spec.jump!r}"
        jump = servers.get(spec.jump)
        if spec.jump == spec.name:
            raise ConfigurationError(f"{where} is the server itself")
        if jump is None:
            raise ConfigurationError(f"{where} is not in the inventory: add it first")
        if jump.kind is not ServerKind.SSH:
            raise ConfigurationError(f"{where} is not an SSH server")
        if jump.jump is not None:
            raise ConfigurationError(
                f"{where} is itself behind {jump.jump!r}; one jump host is supported"
            )
