"""Host-key trust for SSHHost: judging the keys known_hosts does not list, loading credentials.

asyncssh checks host keys against ``known_hosts`` and asks :class:`_Client` about a key the
file does not list for the host. A key other than the one on file is refused as *changed*,
always. An unknown key is refused with its type, its SHA256 fingerprint and the command that
trusts it, unless ``trust_on_first_use`` is set: then the key is first recorded (as a
:class:`TrustedHostKey`, which the recorder may refuse), then appended to ``known_hosts``.
:func:`_credentials` loads the client keys and the known_hosts file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import asyncssh
import attrs

from universal_healer.exceptions import AuthenticationError

if TYPE_CHECKING:
    from universal_healer.hosts._sshconnection import _Connection
    from universal_healer.hosts.ssh import SSHConfig


@attrs.frozen(kw_only=True)
class TrustedHostKey:
    """A host key accepted on first use and appended to ``known_hosts``."""

    host: str
    port: int
    key_type: str
    fingerprint: str  # "SHA256:..."
    known_hosts: str


class _Client(asyncssh.SSHClient):
    """Notices when its connection is gone, and judges host keys known_hosts does not list."""

    def __init__(self, host: _Connection, config: SSHConfig, known: asyncssh.SSHKnownHosts) -> None:
        self._host = host
        self._config = config
        self._known = known
        self.lost = False
        self.key_problem: str | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        """Called by asyncssh for a key that known_hosts does not list for this host."""
        key_type, fingerprint = key.get_algorithm(), key.get_fingerprint("sha256")
        path = os.path.expanduser(self._config.known_hosts)
        pattern = host if port == 22 else f"[{host}]:{port}"
        listed, ca_keys, *_ = self._known.match(host, addr, port if port != 22 else None)
        if listed or ca_keys:
            on_file = ", ".join(
                dict.fromkeys(f"{k.get_algorithm()} {k.get_fingerprint('sha256')}" for k in listed)
            )
            self.key_problem = (
                f"the host key of {pattern} has CHANGED: the server offered {key_type} "
                f"{fingerprint} but {path} holds {on_file or 'a CA key'} for it. Someone may be "
                "intercepting the connection, or the server was reinstalled; the key is refused "
                "(trust on first use never replaces a key). If the change is expected, remove "
                f"the old key with: ssh-keygen -R '{pattern}' -f {path}"
            )
            return False
        if not self._config.trust_on_first_use:
            self.key_problem = (
                f"the host key of {pattern} is unknown: the server offered {key_type} "
                f"{fingerprint}, which is not in {path}. If that is the server's key, trust it "
                f"with: ssh-keyscan -p {port} {host} >> {path} (or enable trust_on_first_use)"
            )
            return False
        trusted = TrustedHostKey(
            host=host, port=port, key_type=key_type, fingerprint=fingerprint, known_hosts=path
        )
        try:
            # The record comes first: a key the registry refuses (it trusts another one for
            # this server) must never reach known_hosts, or the next run would accept it.
            self._host.trusted(trusted)
        except Exception as err:  # noqa: BLE001 - any refusal refuses the key, with its reason
            self.key_problem = (
                f"the host key of {pattern} ({key_type} {fingerprint}) was not trusted: {err}"
            )
            return False
        key_line = " ".join(key.export_public_key("openssh").decode("ascii").split()[:2])
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a") as file:
            file.write(f"{pattern} {key_line}\n")
        return True


def _credentials(config: SSHConfig) -> tuple[Sequence[asyncssh.SSHKeyPair], asyncssh.SSHKnownHosts]:
    """Load the client keys and the known_hosts file (blocking: run in a thread)."""
    keys: Sequence[asyncssh.SSHKeyPair] = ()
    if config.client_keys:
        try:
            keys = asyncssh.load_keypairs([os.path.expanduser(k) for k in config.client_keys])
        except (OSError, asyncssh.KeyImportError) as err:
            raise AuthenticationError(config.address, f"cannot load a client key: {err}") from err
    path = os.path.expanduser(config.known_hosts)
    try:
        with open(path, encoding="utf-8") as handle:
            known = asyncssh.import_known_hosts(handle.read())
    except FileNotFoundError:
        known = asyncssh.import_known_hosts("")
    except (OSError, ValueError) as err:
        raise AuthenticationError(config.address, f"cannot read known_hosts {path}: {err}") from err
    return keys, known
