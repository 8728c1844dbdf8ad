"""MySQL and MariaDB through their own command-line clients, for :mod:`universal_healer.backup`.

The password never appears on a command line or in an environment, where ``ps`` and
``/proc/*/cmdline`` would show it. It goes into a ``[client]`` option file that is written with
mode 0600 inside a private (0700) directory on the target host, its contents travelling on the
stdin of ``cat``; every client is pointed at it with ``--defaults-extra-file`` and the directory
is removed as soon as the work is done, whatever happened.

SQL travels on the client's stdin too, and names come back hex-encoded, so a table called
``a`b;c`` or one with a newline in its name is just another table.

Errors are :class:`MySQLClientError` (a reason, already free of the password);
:mod:`universal_healer.backup` turns them into its own errors at its boundary.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs

from universal_healer.hosts.base import CommandResult, Host

__all__ = [
    "MySQLClient",
    "MySQLClientError",
    "MySQLCredentials",
    "TableState",
    "option_file",
    "private_option_file",
    "quote_identifier",
]

log = logging.getLogger(__name__)

# The clients' names: MariaDB ships mariadb-dump and mariadb with mysqldump and mysql as
# symlinks (or the other way round); MySQL has only the old names. The old names work on both.
DUMP = "mysqldump"
CLIENT = "mysql"

_WRITE_PRIVATE = 'umask 077 && cat > "$1"'
_RUN_PRIVATE = 'umask 077 && exec "$@"'
_LOAD = 'exec mysql --defaults-extra-file="$1" --database="$2" < "$3"'
_CHARSET = re.compile(r"[A-Za-z0-9_]+")
_MAX_OUTPUT = 64 * 1024 * 1024
_SHOWN_STDERR = 400


def _port(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 < value < 65536:
        raise ValueError(f"{attribute.name} must be a TCP port (1-65535), not {value!r}")


def _option_value(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    # An option file is line-based: a NUL cannot be written at all. Never echo the value.
    if value is not None and "\0" in value:
        raise ValueError(f"{attribute.name} must not contain a NUL character")


def _non_empty(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")


@attrs.frozen(kw_only=True)
class MySQLCredentials:
    """How the clients log into the server, as seen from the target host.

    :param host: ``"localhost"`` makes the clients use the Unix socket (``socket``, or their
        compiled-in default); ``"127.0.0.1"`` or a name makes them use TCP on ``port``.
    :param password: written only to a private option file; never in ``repr``.
    """

    user: str = attrs.field(validator=[_non_empty, _option_value])
    password: str = attrs.field(repr=False, validator=_option_value)
    host: str = attrs.field(default="localhost", validator=[_non_empty, _option_value])
    port: int = attrs.field(default=3306, validator=_port)
    socket: str | None = attrs.field(default=None, validator=_option_value)

    def redact(self, text: str) -> str:
        """``text`` with the password masked, should a server or client ever echo it.

        Passwords of fewer than four characters are left alone: masking every ``a`` in a
        message would garble it and protect nothing.
        """
        if len(self.password) >= 4:
            return text.replace(self.password, "********")
        return text


class MySQLClientError(Exception):
    """A client could not do its work; ``reason`` never holds the password."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _quoted(value: str) -> str:
    # MySQL and MariaDB read "..." values with these backslash escapes in option files.
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def option_file(credentials: MySQLCredentials) -> bytes:
    """The ``[client]`` option file for ``credentials`` (it holds the password)."""
    lines = [
        "[client]",
        f"user={_quoted(credentials.user)}",
        f"password={_quoted(credentials.password)}",
        f"host={_quoted(credentials.host)}",
        f"port={credentials.port}",
    ]
    if credentials.socket is not None:
        lines.append(f"socket={_quoted(credentials.socket)}")
    return ("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape")


def quote_identifier(name: str) -> str:
    """``name`` as a backquoted SQL identifier (a backquote in it is doubled)."""
    if not name or "\0" in name:
        raise ValueError("an SQL identifier must be non-empty and hold no NUL")
    return "`" + name.replace("`", "``") + "`"


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


def _stderr(result: CommandResult, credentials: MySQLCredentials) -> str:
    text = credentials.redact(_text(result.stderr)).strip()
    if len(text) > _SHOWN_STDERR:
        text = "..." + text[-_SHOWN_STDERR:]
    return text


def _failure(what: str, result: CommandResult, credentials: MySQLCredentials) -> MySQLClientError:
    detail = _stderr(result, credentials)
    hint = ""
    if "ERROR 1045" in detail or "error: 1045" in detail:
        hint = f" (access denied for user {credentials.user!r}: wrong user name or password?)"
    elif "ERROR 1044" in detail or "error: 1044" in detail:
        hint = f" (user {credentials.user!r} may not use that database, or it does not exist)"
    shown = f": {detail}" if detail else ""
    return MySQLClientError(
        f"{what} failed: {result.argv[0]} exited with status {result.exit_status}{hint}{shown}"
    )


@contextlib.asynccontextmanager
async def private_option_file(
    host: Host, credentials: MySQLCredentials, *, timeout: float = 60.0
) -> AsyncIterator[str]:
    """Write the option file on ``host`` and yield its path; remove it (and its private
    directory) on the way out, whatever happened inside."""
    made = await host.run(
        ("mktemp", "-d", "-t", "healer-mysql.XXXXXXXXXX"), timeout=timeout, max_output=65536
    )
    if not made.ok:
        raise _failure("making a private directory for the MySQL option file", made, credentials)
    directory = made.stdout.decode("utf-8", errors="surrogateescape").removesuffix("\n")
    path = f"{directory}/client.cnf"
    try:
        written = await host.run(
            ("sh", "-c", _WRITE_PRIVATE, "sh", path),
            input=option_file(credentials),
            timeout=timeout,
        )
        if not written.ok:
            raise _failure("writing the MySQL option file", written, credentials)
        yield path
    finally:
        removed = await host.run(("rm", "-rf", "--", directory), timeout=timeout)
        if not removed.ok:
            # The file holds a password: a failure to remove it is never silent.
            raise _failure(f"removing the MySQL option file {directory}", removed, credentials)


@attrs.frozen(kw_only=True)
class TableState:
    """What one base table held when it was looked at.

    :param checksum: ``CHECKSUM TABLE ... EXTENDED``; None when the server gave none.
    """

    name: str
    engine: str
    rows: int
    checksum: str | None


def _unhex(value: str) -> str:
    return bytes.fromhex(value).decode("utf-8", errors="surrogateescape")


@attrs.frozen(kw_only=True)
class MySQLClient:
    """The ``mysql`` and ``mysqldump`` clients on ``host``, logged in with ``option_file``."""

    host: Host
    option_file: str
    database: str
    credentials: MySQLCredentials
    timeout: float = 3600.0

    @property
    def _defaults(self) -> str:
        return f"--defaults-extra-file={self.option_file}"

    async def query(self, sql: str, *, database: bool = True, what: str) -> list[list[str]]:
        """Run ``sql`` (sent on stdin) and return the rows, tab-separated fields split.

        Values are as the client prints them in batch mode; callers hex-encode names.
        """
        argv = [CLIENT, self._defaults, "--batch", "--skip-column-names"]
        if database:
            argv.append(f"--database={self.database}")
        result = await self.host.run(
            argv, input=sql.encode("utf-8", errors="surrogateescape"),
            timeout=self.timeout, max_output=_MAX_OUTPUT,
        )  # fmt: skip
        if not result.ok:
            raise _failure(what, result, self.credentials)
        if result.truncated:
            raise MySQLClientError(f"{what}: the server's answer was too long")
        lines = result.stdout.decode("utf-8", errors="surrogateescape").splitlines()
        return [line.split("\t") for line in lines if line]

    async def schema_defaults(self) -> tuple[str, str]:
        """The database's default character set and collation (it must exist)."""
        rows = await self.query(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
            "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()",
            what=f"reading the defaults of database {self.database!r}",
        )
        if len(rows) != 1 or len(rows[0]) != 2:
            raise MySQLClientError(f"database {self.database!r} not found")
        charset, collation = rows[0]
        if not (_CHARSET.fullmatch(charset) and _CHARSET.fullmatch(collation)):
            raise MySQLClientError(f"unexpected character set {charset!r} / {collation!r}")
        return charset, collation

    async def table_states(self) -> dict[str, TableState]:
        """Row count and checksum of every base table, by name."""
        listing = await self.query(
            "SELECT HEX(TABLE_NAME), IFNULL(ENGINE, '') FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' "
            "ORDER BY TABLE_NAME",
            what=f"listing the tables of database {self.database!r}",
        )
        tables = [(_unhex(row[0]), row[1]) for row in listing]
        if not tables:
            return {}
        quoted = [quote_identifier(name) for name, _ in tables]
        # Names are quoted identifiers (quote_identifier), never raw data.
        counts = await self.query(
            " UNION ALL ".join(f"SELECT COUNT(*) FROM {q}" for q in quoted),  # noqa: S608
            what=f"counting the rows of database {self.database!r}",
        )
        sums = await self.query(
            f"CHECKSUM TABLE {', '.join(quoted)} EXTENDED",
            what=f"checksumming the tables of database {self.database!r}",
        )
        if len(counts) != len(tables) or len(sums) != len(tables):
            raise MySQLClientError(
                f"expected {len(tables)} rows of counts and checksums, got "
                f"{len(counts)} and {len(sums)}"
            )
        states: dict[str, TableState] = {}
        for (name, engine), count, checksum in zip(tables, counts, sums, strict=True):
            value = checksum[-1]
            states[name] = TableState(
                name=name,
                engine=engine,
                rows=int(count[0]),
                checksum=None if value == "NULL" else value,
            )
        return states

    async def dump(self, result_file: str) -> None:
        """Dump the database (consistent for InnoDB) into ``result_file``, created 0600."""
        argv = (
            "sh", "-c", _RUN_PRIVATE, "sh",
            DUMP, self._defaults,
            "--single-transaction", "--routines", "--triggers", "--events", "--hex-blob",
            "--no-tablespaces", f"--result-file={result_file}",
            "--", self.database,
        )  # fmt: skip
        result = await self.host.run(argv, timeout=self.timeout)
        if not result.ok:
            raise _failure(f"dumping database {self.database!r}", result, self.credentials)

    async def recreate(self, charset: str, collation: str) -> None:
        """Drop the database and create it empty again, with its defaults.

        When the server cannot remove the database's directory (error 1010: files it does not
        own are left there, such as the ``*.BAK`` copies its own automatic repair of a crashed
        MyISAM or Aria table writes), the database is emptied instead: every view and table
        dropped, routines and events too, and its defaults set again.
        """
        name = quote_identifier(self.database)
        for value in (charset, collation):
            if not _CHARSET.fullmatch(value):
                raise MySQLClientError(f"refusing an odd character set or collation {value!r}")
        try:
            await self.query(
                f"DROP DATABASE IF EXISTS {name};\n"
                f"CREATE DATABASE {name} CHARACTER SET {charset} COLLATE {collation};\n",
                database=False,
                what=f"re-creating database {self.database!r}",
            )
        except MySQLClientError as err:
            if "1010" not in err.reason:
                raise
            await self._empty(charset, collation)

    async def _empty(self, charset: str, collation: str) -> None:
        """Drop everything inside the database, keeping the database (and its directory)."""
        literal = "0x" + self.database.encode("utf-8", "surrogateescape").hex()
        objects = await self.query(
            "SELECT 'TABLE', HEX(TABLE_NAME), TABLE_TYPE FROM information_schema.TABLES "  # noqa: S608 - the name travels hex-encoded
            f"WHERE TABLE_SCHEMA = {literal} "
            "UNION ALL SELECT 'ROUTINE', HEX(ROUTINE_NAME), ROUTINE_TYPE "
            f"FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {literal} "
            "UNION ALL SELECT 'EVENT', HEX(EVENT_NAME), 'EVENT' "
            f"FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {literal}",
            database=False,
            what=f"listing what database {self.database!r} holds",
        )
        name = quote_identifier(self.database)
        statements = ["SET FOREIGN_KEY_CHECKS = 0;"]
        for kind, hexed, subtype in objects:
            target = f"{name}.{quote_identifier(bytes.fromhex(hexed).decode('utf-8', 'replace'))}"
            if kind == "TABLE":
                word = "VIEW" if subtype == "VIEW" else "TABLE"
            elif kind == "ROUTINE":
                word = "FUNCTION" if subtype == "FUNCTION" else "PROCEDURE"
            else:
                word = "EVENT"
            statements.append(f"DROP {word} IF EXISTS {target};")
        statements.append(f"ALTER DATABASE {name} CHARACTER SET {charset} COLLATE {collation};")
        await self.query(
            "\n".join(statements) + "\n",
            database=False,
            what=f"emptying database {self.database!r}",
        )

    async def load(self, dump_file: str) -> None:
        """Feed ``dump_file`` (on the host) to the client, into the database."""
        argv: Sequence[str] = ("sh", "-c", _LOAD, "sh", self.option_file, self.database, dump_file)
        result = await self.host.run(argv, timeout=self.timeout, max_output=_MAX_OUTPUT)
        if not result.ok:
            raise _failure(f"loading the dump into {self.database!r}", result, self.credentials)
