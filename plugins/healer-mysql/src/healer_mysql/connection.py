"""Logging into the server: which credentials, and a session that runs SQL through the host.

**Credentials.** From the application's encrypted secrets when it has any:

- ``MYSQL_USER``: the user (default: the OS user the healer runs as on the host);
- ``MYSQL_PASSWORD``: its password;
- ``MYSQL_HOST``: ``localhost`` (the Unix socket, the default) or a name or address (TCP);
- ``MYSQL_PORT``: the TCP port (default 3306);
- ``MYSQL_SOCKET``: the socket path, when not the client's default.

Without any, the healer logs in through the local socket as the OS user it runs as on the
host, with no password: MariaDB's ``unix_socket`` authentication lets the OS user ``root`` in
as the server's ``root`` (Debian's default since MariaDB 10.4).

**Never on a command line.** Every query runs the host's own ``mysql`` client through
:mod:`universal_healer._mysql`: the password goes into a ``[client]`` option file written 0600
in a private directory (its bytes on the stdin of ``cat``) and removed afterwards; SQL goes on
the client's stdin. It works the same on this machine and over SSH.

**Steps and backups.** Core hands an application's secrets to its checks only; a healing step
(``CallableStep.run(host, app)``) and a backup (``create(host, app, destination)``) do not get
them. So a check remembers, in this process's memory only, the login it used for the
application, and steps and backups log in the same way (:func:`login_for_action`). A heal
always diagnoses first in the same process, so they find it; without it (a ``healer rollback``
in a new process) they fall back to the socket login.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING

import attrs
from universal_healer._mysql import (
    MySQLClient,
    MySQLClientError,
    MySQLCredentials,
    private_option_file,
)
from universal_healer.hosts.base import Host

from healer_mysql.parsing import parse_pairs

if TYPE_CHECKING:
    from universal_healer.model import Application

__all__ = [
    "LOCAL_NAMES",
    "SECRET_KEYS",
    "CredentialsError",
    "Login",
    "Session",
    "login_for_action",
    "login_for_check",
    "login_from_secrets",
    "open_session",
    "recall",
    "remember",
]

SECRET_KEYS = ("MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_HOST", "MYSQL_PORT", "MYSQL_SOCKET")
"""The application secrets this plugin reads."""

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
"""Server addresses that mean "the server on the application's host"."""


class CredentialsError(ValueError):
    """The application's MYSQL_* secrets cannot make a login; the message names the secret,
    never its value."""


@attrs.frozen(kw_only=True)
class Login:
    """Credentials and where they came from (said in results; the password never is)."""

    credentials: MySQLCredentials
    source: str

    @property
    def via(self) -> str:
        """How the client reaches the server: ``"the socket /run/mysqld/mysqld.sock"``."""
        creds = self.credentials
        if creds.host == "localhost":
            return f"the socket {creds.socket}" if creds.socket else "the local socket"
        return f"{creds.host}:{creds.port}"

    @property
    def on_this_host(self) -> bool:
        """The server runs on the application's host (its datadir and service are there)."""
        return self.credentials.host in LOCAL_NAMES


def login_from_secrets(secrets_: Mapping[str, str], os_user: str) -> Login:
    """The login the application's secrets describe, or the socket login as ``os_user``.

    :raises CredentialsError: a secret has an unusable value (the secret is named).
    """
    given = {key: secrets_[key] for key in SECRET_KEYS if secrets_.get(key)}
    if not given:
        return Login(
            credentials=MySQLCredentials(user=os_user, password="", host="localhost"),
            source=f"the local socket as OS user {os_user} (unix_socket authentication)",
        )
    port_text = given.get("MYSQL_PORT", "3306").strip()
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise CredentialsError("secret MYSQL_PORT must be a TCP port number (1-65535)")
    try:
        credentials = MySQLCredentials(
            user=given.get("MYSQL_USER", os_user),
            password=given.get("MYSQL_PASSWORD", ""),
            host=given.get("MYSQL_HOST", "localhost"),
            port=int(port_text),
            socket=given.get("MYSQL_SOCKET"),
        )
    except ValueError as err:
        # attrs names the field (user, password, ...), never its value.
        raise CredentialsError(f"the application's MYSQL_* secrets are unusable: {err}") from None
    named = ", ".join(key for key in SECRET_KEYS if key in given)
    return Login(credentials=credentials, source=f"the application's secrets ({named})")


# --------------------------------------------------------------------------------------------
# What checks learnt, for steps and backups (this process's memory only)


_REMEMBERED: dict[tuple[str, str], Login] = {}


def remember(app: Application, login: Login) -> None:
    """Keep the login a check used for ``app``, for its heal's steps and backup."""
    _REMEMBERED[(app.server, app.id)] = login


def recall(app: Application) -> Login | None:
    """The login a check last used for ``app`` in this process, if any."""
    return _REMEMBERED.get((app.server, app.id))


async def _os_user(host: Host) -> str:
    result = await host.run(("id", "-un"), timeout=30, max_output=4096)
    name = result.stdout.decode("utf-8", errors="replace").strip()
    if not result.ok or not name or "\0" in name:
        raise MySQLClientError(f"cannot tell which OS user the healer runs as on {host.name}")
    return name


async def login_for_check(host: Host, app: Application, secrets_: Mapping[str, str]) -> Login:
    """The login for a check: from ``secrets_`` (its context's), remembered for the heal."""
    os_user = "" if secrets_.get("MYSQL_USER") else await _os_user(host)
    login = login_from_secrets(secrets_, os_user)
    remember(app, login)
    return login


async def login_for_action(host: Host, app: Application) -> Login:
    """The login for a step or a backup: the one the checks used, else the socket login."""
    known = recall(app)
    if known is not None:
        return known
    return login_from_secrets({}, await _os_user(host))


# --------------------------------------------------------------------------------------------
# Sessions


@attrs.frozen(kw_only=True)
class Session:
    """The ``mysql`` client on a host, logged in; every call is one client run."""

    client: MySQLClient
    login: Login

    async def rows(self, sql: str, *, what: str) -> list[list[str]]:
        """The rows ``sql`` returns (fields as the batch client prints them)."""
        return await self.client.query(sql, database=False, what=what)

    async def results(self, statements: Sequence[str], *, what: str) -> list[list[list[str]]]:
        """Each statement's rows, from one client run.

        A row holding only a random marker separates the result sets; no data can forge it.
        """
        marker = f"healer-section-{secrets.token_hex(8)}"
        sql = "".join(f"{statement};\nSELECT '{marker}';\n" for statement in statements)
        parts: list[list[list[str]]] = [[]]
        for row in await self.rows(sql, what=what):
            if row == [marker]:
                parts.append([])
            else:
                parts[-1].append(row)
        if len(parts) != len(statements) + 1:
            raise MySQLClientError(f"{what}: the server's answers were cut short")
        return parts[:-1]

    async def pairs(self, sql: str, *, what: str) -> dict[str, str]:
        """``SHOW ... STATUS/VARIABLES``-shaped rows as a mapping (names lowercased)."""
        return parse_pairs(await self.rows(sql, what=what))


@contextlib.asynccontextmanager
async def open_session(host: Host, login: Login, *, timeout: float) -> AsyncIterator[Session]:
    """A session on ``host``; its option file exists only while the context is open.

    :param timeout: seconds each client run may take before the host kills it.
    """
    async with private_option_file(host, login.credentials, timeout=min(timeout, 60.0)) as path:
        client = MySQLClient(
            host=host,
            option_file=path,
            database="information_schema",
            credentials=login.credentials,
            timeout=timeout,
        )
        yield Session(client=client, login=login)
