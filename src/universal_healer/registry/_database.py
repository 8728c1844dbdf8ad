"""Database URLs: the default location, opening a connection, keeping passwords out of errors."""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import unquote

import peewee
from playhouse import db_url  # type: ignore[import-untyped]  # playhouse ships no stubs

from universal_healer.exceptions import RegistryError

__all__ = ["connect_database", "default_database_url", "redact_url"]

ENV_URL = "HEALER_DATABASE_URL"

_SQLITE_PRAGMAS = (
    ("journal_mode", "wal"),  # readers (CLI, web UI) never block the daemon's writes
    ("foreign_keys", 1),
    ("busy_timeout", 10_000),  # ms: wait for another writer rather than fail at once
    ("synchronous", "normal"),  # safe with WAL; full fsync per commit buys nothing here
)

_SQLITE_LOCK_WAIT_S = 10.0  # as long as busy_timeout: how long another writer may hold the file

_INSTALL_HINT = {
    "postgres": "pip install 'universal-healer[postgresql]'",
    "mysql": "pip install 'universal-healer[mysql]'",
}


def default_database_url() -> str:
    """The registry URL to use when none is given.

    ``$HEALER_DATABASE_URL`` when set; otherwise an SQLite file,
    ``$XDG_DATA_HOME/universal-healer/healer.db`` (``~/.local/share`` when ``XDG_DATA_HOME`` is
    unset or not absolute), whose directory is created (mode 0700) if missing.
    """
    if url := os.environ.get(ENV_URL):
        return url
    data_home = os.environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(data_home):  # the XDG spec says to ignore relative values
        data_home = os.path.join(os.path.expanduser("~"), ".local", "share")
    directory = os.path.join(data_home, "universal-healer")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    return "sqlite:///" + os.path.join(directory, "healer.db")


def _split_credentials(url: str) -> tuple[str, str | None]:
    """The URL with its password replaced by ``***``, and the password itself.

    Done by hand rather than with urlsplit so that a URL too broken to parse (a password with a
    ``/`` or ``@`` left unescaped) is still redacted: everything up to the last ``@`` counts as
    credentials, which may hide too much but never too little.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url, None
    userinfo, at, location = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not at or not colon:
        return url, None
    return f"{scheme}://{user}:***@{location}", password


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for logs and error messages."""
    return _split_credentials(url)[0]


def _scrub(message: str, url: str) -> str:
    """``message`` with the URL's password removed, however a driver chose to echo it."""
    _, password = _split_credentials(url)
    if password:
        for secret in {password, unquote(password)}:
            message = message.replace(secret, "***")
    return message


def _driver_options(database_class: type[peewee.Database]) -> dict[str, Any]:
    if issubclass(database_class, peewee.SqliteDatabase):
        return {"pragmas": _SQLITE_PRAGMAS, "timeout": 10}
    if issubclass(database_class, peewee.PostgresqlDatabase):
        return {"connect_timeout": 10}
    if issubclass(database_class, peewee.MySQLDatabase):
        return {"connect_timeout": 10}
    return {}


def _prepare_sqlite_file(path: str, shown: str) -> None:
    if path == ":memory:" or path.startswith("file:"):
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise RegistryError(f"cannot open the registry at {shown}: {directory} does not exist")
    if os.path.exists(path):
        return
    try:
        # The registry holds credentials (encrypted) and the fleet's layout: keep it private.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError as err:
        raise RegistryError(f"cannot open the registry at {shown}: {err.strerror}") from err


def _connect(database: peewee.Database) -> None:
    """Connect; for SQLite, wait out another process switching a fresh file to WAL.

    ``PRAGMA journal_mode=wal`` needs the file to itself, and SQLite answers "database is
    locked" at once, without its busy handler, when several processes open a new registry
    together: that is waited for as any other writer is (:data:`_SQLITE_LOCK_WAIT_S`).
    """
    deadline = time.monotonic() + _SQLITE_LOCK_WAIT_S
    while True:
        try:
            database.connect()
        except peewee.OperationalError as err:
            if not database.is_closed():
                database.close()
            locked = isinstance(database, peewee.SqliteDatabase) and "locked" in str(err)
            if not locked or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)  # another process holds the file for its switch: a moment
        else:
            return


def connect_database(url: str | None = None) -> peewee.Database:
    """Open a connection to the database at ``url`` (default: :func:`default_database_url`).

    Accepts what :mod:`playhouse.db_url` does: ``sqlite:///relative.db``,
    ``sqlite:////absolute/path.db``, ``postgresql://user:password@host:5432/name``,
    ``mysql://user:password@host:3306/name``; user and password may be percent-encoded.
    Query parameters are passed to the driver and override the defaults chosen here. Nothing
    is migrated: see :func:`~universal_healer.registry.open_registry`.

    :raises RegistryError: when the URL cannot be used or the database cannot be reached; the
        message never contains the password.
    """
    url = default_database_url() if url is None else url
    shown = redact_url(url)
    scheme = url.partition("://")[0].lower()
    database_class = db_url.schemes.get(scheme)
    if database_class is None:
        raise RegistryError(
            f"unsupported database URL {shown!r}: use sqlite:///PATH, "
            "postgresql://USER:PASSWORD@HOST:PORT/NAME or mysql://USER:PASSWORD@HOST:PORT/NAME"
        )
    try:
        params = db_url.parse(url, unquote_password=True, unquote_user=True)
    except ValueError:
        # Not the parser's message: it quotes the bad part, which may be half a password.
        raise RegistryError(
            f"invalid database URL {shown!r}: its host or port cannot be read; "
            "percent-encode any '/', '@' or ':' in the user name and password"
        ) from None
    if "passwd" in params:  # playhouse still spells it the way PyMySQL deprecated
        params["password"] = params.pop("passwd")
    path = params.pop("database")
    if not path:
        raise RegistryError(f"database URL {shown!r} names no database")
    if issubclass(database_class, peewee.SqliteDatabase):
        _prepare_sqlite_file(path, shown)
    options = {**_driver_options(database_class), **params}
    try:
        database: peewee.Database = database_class(path, **options)
        _connect(database)
    except (peewee.PeeweeException, OSError, TypeError) as err:
        reason = _scrub(str(err).strip() or type(err).__name__, url)
        if isinstance(err, peewee.ImproperlyConfigured):
            hint = next((h for key, h in _INSTALL_HINT.items() if scheme.startswith(key)), None)
            reason += f" ({hint})" if hint else ""
        # from None: what the driver raised is already in the message, scrubbed.
        raise RegistryError(f"cannot open the registry at {shown}: {reason}") from None
    return database
