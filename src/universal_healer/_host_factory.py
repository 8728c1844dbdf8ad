"""The hosts that reach the servers of the inventory: :func:`host_for` turns a
:class:`~universal_healer.inventory.ServerSpec` into this machine or an SSH connection (through
one jump host, :func:`ssh_config_for`), and records the host keys accepted on first use in the
registry. Public through :mod:`universal_healer.fleet`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from universal_healer.exceptions import ConfigurationError, HealerError
from universal_healer.hosts.base import Host
from universal_healer.hosts.local import LocalHost
from universal_healer.hosts.ssh import SSHConfig, SSHHost, TrustedHostKey
from universal_healer.inventory import ServerKind, ServerSpec
from universal_healer.model import utcnow

if TYPE_CHECKING:
    from universal_healer.secrets import SecretBox

__all__ = [
    "DEFAULT_COMMAND_TIMEOUT_S",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "FirstUse",
    "Resolver",
    "ServerStore",
    "host_for",
    "ssh_config_for",
]

# The fleet's logger: the CLI prints the logger's name on each line, and these lines are the
# fleet's (the key trusted on first use while a fleet connects).
log = logging.getLogger("universal_healer.fleet")

DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_COMMAND_TIMEOUT_S = 60.0

Resolver = Callable[[str], ServerSpec]
"""Looks up another server of the inventory by name (for jump hosts)."""

FirstUse = Callable[[str, TrustedHostKey], None]
"""Called with the server's name and each host key accepted on first use."""


def _plain_config(spec: ServerSpec, *, connect_timeout: float, command_timeout: float) -> SSHConfig:
    if spec.kind is not ServerKind.SSH or spec.address is None:
        raise ConfigurationError(f"server {spec.name!r} is not reached over SSH")
    config = SSHConfig(
        host=spec.address,
        port=spec.port,
        username=spec.username,
        password=spec.password,
        # Without a key file of its own, offer the agent's keys (when $SSH_AUTH_SOCK is set).
        agent=not spec.client_keys,
        max_channels=spec.max_channels,
        trust_on_first_use=spec.trust_on_first_use,
        connect_timeout=connect_timeout,
        command_timeout=command_timeout,
    )
    # Any: mypy's attrs plugin cannot solve the type of a field converted by ``tuple``.
    keys: Any = spec.client_keys
    config = attrs.evolve(config, client_keys=keys)
    if spec.known_hosts is not None:
        config = attrs.evolve(config, known_hosts=spec.known_hosts)
    return config


def ssh_config_for(
    spec: ServerSpec,
    *,
    resolve: Resolver | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT_S,
) -> SSHConfig:
    """The :class:`~universal_healer.hosts.ssh.SSHConfig` that reaches ``spec``.

    :param resolve: looks up the jump host named by ``spec.jump``.
    :raises ConfigurationError: for a local server, or a jump host that cannot be used (not
        found, local, itself behind a jump host, or the server itself).
    """
    config = _plain_config(spec, connect_timeout=connect_timeout, command_timeout=command_timeout)
    if spec.jump is None:
        return config
    if spec.jump == spec.name:
        raise ConfigurationError(f"server {spec.name!r} names itself as its jump host")
    if resolve is None:
        raise ConfigurationError(
            f"server {spec.name!r} goes through jump host {spec.jump!r}, which cannot be "
            "looked up here"
        )
    try:
        jump = resolve(spec.jump)
    except HealerError as err:
        raise ConfigurationError(
            f"server {spec.name!r}: its jump host {spec.jump!r} cannot be used: {err}"
        ) from err
    if jump.kind is not ServerKind.SSH:
        raise ConfigurationError(
            f"server {spec.name!r}: its jump host {spec.jump!r} is not an SSH server"
        )
    if jump.jump is not None:
        raise ConfigurationError(
            f"server {spec.name!r}: its jump host {spec.jump!r} is itself behind {jump.jump!r}; "
            "one jump host is supported"
        )
    hop = _plain_config(jump, connect_timeout=connect_timeout, command_timeout=command_timeout)
    return attrs.evolve(config, jump=hop)


class ServerStore(Protocol):
    """What :func:`host_for` needs of the registry (:class:`~universal_healer.registry.Registry`
    has it): jump hosts by name, and a place to record keys trusted on first use."""

    def get_server(self, name: str, box: SecretBox | None = None) -> ServerSpec:
        """The server called ``name``, its password decrypted with ``box``."""
        ...

    def record_trusted_key(
        self, name: str, key_type: str, fingerprint: str, at: dt.datetime
    ) -> None:
        """Remember a host key accepted on first use."""
        ...


def host_for(
    spec: ServerSpec,
    box: SecretBox | None = None,
    *,
    registry: ServerStore | None = None,
    resolve: Resolver | None = None,
    on_first_use: FirstUse | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT_S,
) -> Host:
    """The host that reaches ``spec``: this machine for a local server, SSH otherwise.

    The spec's password, if any, is used as it is: the registry's ``get_server(name, box)``
    hands it over decrypted.

    :param box: decrypts the jump host's password when it is looked up in ``registry``.
    :param registry: looks up the jump host (unless ``resolve`` is given) and records each key
        accepted on first use (unless ``on_first_use`` is given).
    :param resolve: looks up the jump host by name.
    :param on_first_use: called with the name of the server whose key was accepted on first
        use (this one, or its jump host) and the key.
    :raises ConfigurationError: see :func:`ssh_config_for`.
    """
    if spec.kind is ServerKind.LOCAL:
        return LocalHost(name=spec.name)
    if resolve is None and registry is not None:
        store = registry

        def resolve(name: str) -> ServerSpec:
            return store.get_server(name, box)

    if on_first_use is None and registry is not None:
        on_first_use = _recorder(registry)
    config = ssh_config_for(
        spec, resolve=resolve, connect_timeout=connect_timeout, command_timeout=command_timeout
    )
    record = on_first_use

    def trusted(key: TrustedHostKey) -> None:
        if record is None:
            return
        hop = config.jump
        is_jump = hop is not None and (key.host, key.port) == (hop.host, hop.port)
        record(spec.jump if is_jump and spec.jump else spec.name, key)

    return SSHHost(config, name=spec.name, on_first_use=trusted)


def _recorder(registry: ServerStore) -> FirstUse:
    def record(name: str, key: TrustedHostKey) -> None:
        # Raises when the registry trusts another key for the server: the connection is then
        # refused with that message.
        registry.record_trusted_key(name, key.key_type, key.fingerprint, utcnow())
        log.warning(
            "trusted the host key of %s on first use: %s %s (added to %s)",
            name, key.key_type, key.fingerprint, key.known_hosts,
        )  # fmt: skip

    return record
