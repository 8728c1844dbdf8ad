"""The server inventory: what the healer knows about each host it may reach.

A :class:`ServerSpec` is what ``healer servers add`` and an inventory file describe; the
registry stores it (the password encrypted) and :func:`host_for` turns it into a Host.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

__all__ = ["ServerKind", "ServerSpec"]


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
