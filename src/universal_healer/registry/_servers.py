"""The Registry's server inventory: hosts, how to reach them, and the host keys trusted."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import peewee

from universal_healer.exceptions import ConfigurationError, RegistryError
from universal_healer.inventory import ServerKind, ServerSpec
from universal_healer.model import utcnow
from universal_healer.registry._base import RegistryBase
from universal_healer.registry._records import Server, new_id, require_aware, server_from_row
from universal_healer.registry.models import ApplicationRow, ServerRow
from universal_healer.secrets import SecretBox

__all__ = ["ServerInventory", "TrustedKey"]

SERVER_KINDS = tuple(kind.value for kind in ServerKind)
_DEFAULT_PORT = 22


@attrs.frozen(kw_only=True)
class TrustedKey:
    """A host key accepted on first use, as :meth:`ServerInventory.record_trusted_key` kept it.

    :param key_type: the key's algorithm (``"ssh-ed25519"``).
    :param fingerprint: its fingerprint as OpenSSH prints it (``"SHA256:..."``).
    """

    key_type: str
    fingerprint: str
    at: dt.datetime


def _spec_columns(spec: ServerSpec) -> dict[str, Any]:
    """The ``servers`` columns a :class:`ServerSpec` sets (the password aside)."""
    return {
        "kind": spec.kind.value,
        "address": spec.address,
        "port": spec.port,
        "username": spec.username,
        "client_keys": list(spec.client_keys),
        "known_hosts": spec.known_hosts,
        "jump": spec.jump,
        "search_paths": list(spec.search_paths),
        "tags": list(spec.tags),
        "trust_on_first_use": spec.trust_on_first_use,
        "max_channels": spec.max_channels,
    }


def _spec_from_row(row: ServerRow, box: SecretBox | None) -> ServerSpec:
    password = None
    if box is not None and row.password_encrypted is not None:
        password = box.decrypt(row.password_encrypted)
    try:
        return ServerSpec(
            name=row.name,
            kind=ServerKind(row.kind),
            address=row.address,
            port=_DEFAULT_PORT if row.port is None else row.port,
            username=row.username,
            client_keys=row.client_keys,
            known_hosts=row.known_hosts,
            password=password,
            jump=row.jump,
            search_paths=row.search_paths,
            tags=row.tags,
            trust_on_first_use=bool(row.trust_on_first_use),
            max_channels=row.max_channels,
        )
    except ValueError as err:
        # Only ensure_server can store such a row (an SSH server without an address, say).
        raise RegistryError(f"server {row.name!r} as stored cannot be used: {err}") from None


def _encrypted_password(spec: ServerSpec, box: SecretBox | None) -> str | None:
    if spec.password is None:
        return None
    if box is None:
        raise ConfigurationError(
            f"server {spec.name!r} has a password: a SecretBox is needed to store it encrypted"
        )
    return box.encrypt(spec.password)


def _check_key_part(value: str, name: str) -> None:
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"{name} must be a non-empty word, got {value!r}")


class ServerInventory(RegistryBase):
    """Registry methods for the ``servers`` table.

    Passwords are stored encrypted with a :class:`~universal_healer.secrets.SecretBox` and come
    back only to a caller that hands one over.
    """

    __slots__ = ()

    def ensure_server(
        self,
        name: str,
        *,
        kind: str = "local",
        address: str | None = None,
        port: int | None = None,
        username: str | None = None,
    ) -> str:
        """Make sure a server called ``name`` exists with these settings; return its id.

        An existing server keeps its id and takes the settings given (the inventory wins);
        its other settings (keys, tags, password...) stay as they are.

        :raises ConfigurationError: when ``kind`` is not ``"local"`` or ``"ssh"``.
        """
        if kind not in SERVER_KINDS:
            raise ConfigurationError(f"server kind must be one of {SERVER_KINDS}, got {kind!r}")
        settings = {"kind": kind, "address": address, "port": port, "username": username}

        def ensure() -> str:
            now = utcnow()
            row = self._one(ServerRow.select().where(ServerRow.name == name))
            if row is None:
                server_id = new_id()
                ServerRow.insert(
                    id=server_id, name=name, metadata={}, created_at=now, updated_at=now, **settings
                ).execute(self._db)
                return server_id
            if {key: getattr(row, key) for key in settings} != settings:
                ServerRow.update(updated_at=now, **settings).where(ServerRow.id == row.id).execute(
                    self._db
                )
            return row.id

        with self._guard(f"recording server {name!r}"):
            return self._retrying(ensure)

    def add_server(self, spec: ServerSpec, box: SecretBox | None = None) -> None:
        """Add a server to the inventory.

        :param box: encrypts ``spec.password``; needed only when there is one.
        :raises RegistryError: when a server of that name exists already.
        :raises ConfigurationError: when the spec has a password and no box is given.
        """
        password = _encrypted_password(spec, box)
        now = utcnow()

        def add() -> None:
            if ServerRow.select().where(ServerRow.name == spec.name).exists(self._db):
                raise RegistryError(
                    f"a server called {spec.name!r} exists already: update or remove it instead"
                )
            ServerRow.insert(
                id=new_id(),
                name=spec.name,
                metadata={},
                created_at=now,
                updated_at=now,
                password_encrypted=password,
                **_spec_columns(spec),
            ).execute(self._db)

        try:
            with self._guard(f"adding server {spec.name!r}"), self._db.atomic():
                add()
        except RegistryError as err:
            # Two processes adding one name: the unique index refused the second.
            if isinstance(err.__cause__, peewee.IntegrityError):
                raise RegistryError(f"a server called {spec.name!r} exists already") from None
            raise

    def update_server(
        self, spec: ServerSpec, box: SecretBox | None = None, *, clear_password: bool = False
    ) -> None:
        """Replace the settings of the server called ``spec.name`` with the spec's.

        A spec without a password keeps the stored one (:meth:`get_server` without a box
        returns none, so reading, changing and writing back a spec never loses it); pass
        ``clear_password=True`` to remove it. A host key trusted on first use stays trusted.

        :raises RegistryError: when there is no such server.
        :raises ConfigurationError: when the spec has a password and no box is given.
        """
        changes = _spec_columns(spec)
        if spec.password is not None:
            changes["password_encrypted"] = _encrypted_password(spec, box)
        elif clear_password:
            changes["password_encrypted"] = None
        with self._guard(f"updating server {spec.name!r}"), self._db.atomic():
            self._server_id(spec.name, hint=": add it first")
            query = ServerRow.update(updated_at=utcnow(), **changes)
            query.where(ServerRow.name == spec.name).execute(self._db)

    def remove_server(self, name: str, *, force: bool = False) -> None:
        """Remove a server from the inventory.

        :param force: also remove its applications with their results, executions, approvals
            and backup records (the backups themselves stay where they are).
        :raises RegistryError: when there is no such server; when applications still live on it
            and ``force`` is not given; when another server names it as its jump host.
        """
        with self._guard(f"removing server {name!r}"), self._db.atomic():
            server_id = self._server_id(name, hint="")
            jumping = sorted(
                row.name
                for row in ServerRow.select(ServerRow.name)
                .where(ServerRow.jump == name)
                .bind(self._db)
            )
            if jumping:
                raise RegistryError(
                    f"server {name!r} is the jump host of {len(jumping)} server(s) "
                    f"({', '.join(jumping)}): change or remove them first"
                )
            apps = ApplicationRow.select().where(ApplicationRow.server == server_id)
            count = apps.count(self._db)
            if count and not force:
                raise RegistryError(
                    f"server {name!r} still has {count} application(s): pass force=True "
                    "(healer servers remove --force) to remove them and their records too"
                )
            if count:
                # The database cascades to results, executions, approvals and backups.
                ApplicationRow.delete().where(ApplicationRow.server == server_id).execute(self._db)
            ServerRow.delete().where(ServerRow.id == server_id).execute(self._db)

    def get_server(self, name: str, box: SecretBox | None = None) -> ServerSpec:
        """The server called ``name`` as a spec.

        :param box: decrypts the password; without one the spec's password is None.
        :raises RegistryError: when there is no such server.
        :raises ConfigurationError: when the password was encrypted with another key.
        """
        with self._guard(f"reading server {name!r}"):
            row = self._one(ServerRow.select().where(ServerRow.name == name))
        if row is None:
            raise RegistryError(f"no server called {name!r}")
        return _spec_from_row(row, box)

    def list_server_specs(self, box: SecretBox | None = None) -> list[ServerSpec]:
        """Every server as a spec, by name; passwords decrypted only when ``box`` is given."""
        with self._guard("listing servers"):
            rows = list(ServerRow.select().bind(self._db))
        # Sorted here rather than in SQL: the three databases collate text differently.
        return sorted((_spec_from_row(row, box) for row in rows), key=lambda spec: spec.name)

    def get_server_name(self, server_id: str) -> str:
        """The name of the server with id ``server_id``.

        :raises RegistryError: when there is none.
        """
        with self._guard("reading a server"):
            row = self._one(ServerRow.select(ServerRow.name).where(ServerRow.id == server_id))
        if row is None:
            raise RegistryError(f"no server with id {server_id!r}")
        return row.name

    def list_servers(self) -> list[Server]:
        """Every server, by name."""
        with self._guard("listing servers"):
            rows = list(ServerRow.select().bind(self._db))
        return sorted(map(server_from_row, rows), key=lambda server: server.name)

    def _server_id(self, name: str, hint: str = ": record it with ensure_server first") -> str:
        row = self._one(ServerRow.select(ServerRow.id).where(ServerRow.name == name))
        if row is None:
            raise RegistryError(f"no server called {name!r}{hint}")
        return row.id

    # ----------------------------------------------------------------------------------------
    # Host keys trusted on first use

    def record_trusted_key(
        self, name: str, key_type: str, fingerprint: str, at: dt.datetime
    ) -> None:
        """Remember that the operator's trust-on-first-use accepted this host key.

        Recording the key already trusted again does nothing. A different key is never
        recorded over it: a changed host key is refused, and only
        :meth:`forget_trusted_key` (an operator's decision) makes room for a new one.

        :raises RegistryError: when there is no such server, or it trusts another key.
        :raises ValueError: when ``key_type`` or ``fingerprint`` is empty or holds spaces.
        """
        _check_key_part(key_type, "key_type")
        _check_key_part(fingerprint, "fingerprint")
        require_aware(at, "at")
        key = f"{key_type} {fingerprint}"
        with self._guard(f"recording the host key of server {name!r}"), self._db.atomic():
            self._server_id(name, hint="")
            ServerRow.update(trusted_host_key=key, trusted_at=at).where(
                (ServerRow.name == name) & ServerRow.trusted_host_key.is_null()
            ).execute(self._db)
            trusted = self._one(
                ServerRow.select(ServerRow.trusted_host_key).where(ServerRow.name == name)
            )
        if trusted is not None and trusted.trusted_host_key != key:
            raise RegistryError(
                f"server {name!r} already trusts the host key {trusted.trusted_host_key}; "
                f"refusing to trust {key} in its place (forget the old key first if the host "
                "was really reinstalled)"
            )

    def trusted_key(self, name: str) -> TrustedKey | None:
        """The host key recorded for ``name`` on first use, or None.

        :raises RegistryError: when there is no such server.
        """
        with self._guard(f"reading the host key of server {name!r}"):
            row = self._one(ServerRow.select().where(ServerRow.name == name))
        if row is None:
            raise RegistryError(f"no server called {name!r}")
        if row.trusted_host_key is None:
            return None
        key_type, _, fingerprint = row.trusted_host_key.partition(" ")
        return TrustedKey(key_type=key_type, fingerprint=fingerprint, at=row.trusted_at)

    def forget_trusted_key(self, name: str) -> None:
        """Forget the host key trusted for ``name``, so the next first use may record one.

        :raises RegistryError: when there is no such server.
        """
        with self._guard(f"forgetting the host key of server {name!r}"), self._db.atomic():
            self._server_id(name, hint="")
            ServerRow.update(trusted_host_key=None, trusted_at=None).where(
                ServerRow.name == name
            ).execute(self._db)
