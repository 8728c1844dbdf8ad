"""Reading what MySQL and MariaDB say, without I/O: versions, batch output, process lists,
option files.

Pure functions of text and rows (tables are in :mod:`healer_mysql.tables`), shared by
detection (on the probe), the checks and the strategies (on the ``mysql`` client's batch
output), so every one of them can be tested with hypothesis. Bad input is a value (None, a
skipped row), never an exception.

The client's batch mode (``--batch --skip-column-names``) prints one row per line, fields split
by tabs, with ``\\t``, ``\\n``, ``\\0`` and ``\\\\`` escaped inside values and SQL NULL as the
four letters ``NULL``. Names and free text are therefore selected ``HEX()``-encoded, and
:func:`unhex` turns them back (NULL stays None).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import attrs

__all__ = [
    "PROCESSLIST_COLUMNS",
    "SERVER_SECTIONS",
    "SYSTEM_SCHEMAS",
    "SYSTEM_USERS",
    "ProcessRow",
    "ServerVersion",
    "client_error_code",
    "parse_option_file",
    "parse_pairs",
    "parse_processlist",
    "parse_systemctl_show",
    "parse_version",
    "server_option",
    "sql_text",
    "unescape_batch",
    "unhex",
    "upgrade_info_version",
]

SYSTEM_SCHEMAS = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
"""Schemas that belong to the server itself: never an application's, never dumped as one."""

SYSTEM_USERS = frozenset({"system user", "event_scheduler", "DELAYED", "unauthenticated user"})
"""PROCESSLIST users of the server's own threads (replication applier, event scheduler, ...)."""

_VERSION = re.compile(r"(\d{1,4})\.(\d{1,4})\.(\d{1,5})((?:[-+~.][0-9A-Za-z_.+~-]*)?)")
_ERROR_CODE = re.compile(r"\bERROR (\d{3,5})\b|\b[Ee]rror: (\d{3,5})\b")
_BATCH_ESCAPES = {"t": "\t", "n": "\n", "0": "\0", "\\": "\\", "r": "\r", "b": "\b", "Z": "\x1a"}
_PROTECTED_STATEMENTS = (
    "CHECK TABLE", "REPAIR TABLE", "OPTIMIZE TABLE", "ANALYZE TABLE",
    "SELECT /*!40001 SQL_NO_CACHE */",
)  # fmt: skip
_INTEGER = re.compile(r"-?[0-9]{1,12}")
_SECTION = re.compile(r"\[\s*([^\]]+?)\s*\]")


# --------------------------------------------------------------------------------------------
# Versions


@attrs.frozen(kw_only=True)
class ServerVersion:
    """A server version as the server (or ``mysql_upgrade_info``) states it.

    :param raw: the version token as found (``"10.11.19-MariaDB"``).
    :param number: (major, minor, patch).
    :param flavour: ``"MariaDB"``, ``"Percona Server"`` or ``"MySQL"``.
    """

    raw: str
    number: tuple[int, int, int]
    flavour: str

    @property
    def short(self) -> str:
        """``"10.11.19"``."""
        return ".".join(map(str, self.number))


def parse_version(text: str) -> ServerVersion | None:
    """The version in ``text`` (``SELECT VERSION()`` or ``mysql_upgrade_info``), or None.

    MariaDB's replication-compatibility prefix (``5.5.5-10.11.19-MariaDB``) is dropped.
    """
    cleaned = text.replace("\0", "").strip()
    if cleaned.startswith("5.5.5-") and "mariadb" in cleaned.lower():
        cleaned = cleaned[len("5.5.5-") :]
    match = _VERSION.match(cleaned)
    if match is None:
        return None
    suffix = match.group(4).lower()
    flavour = (
        "MariaDB" if "mariadb" in suffix else "Percona Server" if "percona" in suffix else "MySQL"
    )
    number = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    return ServerVersion(raw=match.group(0), number=number, flavour=flavour)


def upgrade_info_version(data: bytes) -> ServerVersion | None:
    """The version ``mysql_upgrade_info`` holds (``mariadb-upgrade`` writes it, NUL-padded
    on some versions), or None when the bytes say nothing sensible."""
    text = data.decode("ascii", errors="replace").replace("\0", "").strip()
    first = text.splitlines()[0] if text else ""
    return parse_version(first)


# --------------------------------------------------------------------------------------------
# Batch output


def unescape_batch(value: str) -> str:
    """A value as the batch client printed it, with its backslash escapes undone."""
    if "\\" not in value:
        return value
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        following = next(chars, "")
        out.append(_BATCH_ESCAPES.get(following, following))
    return "".join(out)


def unhex(value: str) -> str | None:
    """A ``HEX()``-selected value decoded as UTF-8 (bad bytes as surrogate escapes);
    None for SQL NULL or anything that is not hexadecimal."""
    if value == "NULL" or len(value) % 2:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw.decode("utf-8", errors="surrogateescape")


def sql_text(value: str) -> str:
    """``value`` as an SQL string literal that no quoting trick can break out of: its bytes
    in hexadecimal (``CONVERT(X'6162' USING utf8mb4)``)."""
    hexed = value.encode("utf-8", errors="surrogateescape").hex()
    return f"CONVERT(X'{hexed}' USING utf8mb4)"


def parse_pairs(rows: Iterable[Sequence[str]]) -> dict[str, str]:
    """``SHOW GLOBAL STATUS`` or ``SHOW GLOBAL VARIABLES`` rows as a mapping, names lowercased.

    Rows that are not (name, value) pairs are skipped; a missing value is the empty string.
    """
    pairs: dict[str, str] = {}
    for row in rows:
        if not row or not row[0] or len(row) > 2:
            continue
        pairs[row[0].lower()] = unescape_batch(row[1]) if len(row) == 2 else ""
    return pairs


def client_error_code(reason: str) -> int | None:
    """The server or client error number in a ``mysql`` client's complaint (``ERROR 2002``)."""
    match = _ERROR_CODE.search(reason)
    if match is None:
        return None
    return int(next(group for group in match.groups() if group))


# --------------------------------------------------------------------------------------------
# PROCESSLIST


@attrs.frozen(kw_only=True)
class ProcessRow:
    """One thread of ``information_schema.PROCESSLIST``."""

    id: int
    user: str
    host: str
    db: str | None
    command: str
    time: int
    state: str
    info: str | None

    @property
    def is_system(self) -> bool:
        """A thread of the server itself: replication, event scheduler, delayed inserts."""
        return self.user in SYSTEM_USERS

    def is_runaway(self, threshold_s: float, schemas: frozenset[str] | None) -> bool:
        """A client's statement running for longer than ``threshold_s``.

        Only ``Query`` and ``Execute`` threads count: sleeping connections, the server's own
        threads, replication (``Binlog Dump``, ``Slave_*``), threads already being killed and
        :attr:`is_protected` statements never do. With ``schemas``, only statements whose
        default schema is one of them.
        """
        return (
            self.command in ("Query", "Execute")
            and not self.is_system
            and not self.is_protected
            and self.time > threshold_s
            and (schemas is None or self.db in schemas)
        )

    @property
    def is_protected(self) -> bool:
        """A statement never to interrupt: table maintenance (a REPAIR cut short can leave the
        table worse, and the healer's own CHECK TABLE runs this way) or a ``mysqldump`` reading
        a table (a backup being taken)."""
        text = (self.info or "").lstrip().upper()
        return text.startswith(_PROTECTED_STATEMENTS)

    @property
    def being_killed(self) -> bool:
        """A thread that was told to stop and is still unwinding (rolling back, say)."""
        return self.command == "Killed"


PROCESSLIST_COLUMNS = (
    "ID, HEX(USER), HEX(HOST), HEX(DB), COMMAND, IFNULL(TIME, 0), HEX(IFNULL(STATE, '')), "
    "HEX(LEFT(INFO, 300))"
)
"""The columns :func:`parse_processlist` reads, in order (names hex-encoded)."""


def parse_processlist(rows: Iterable[Sequence[str]]) -> list[ProcessRow]:
    """Rows selected with :data:`PROCESSLIST_COLUMNS`; malformed rows are skipped."""
    found: list[ProcessRow] = []
    for row in rows:
        if len(row) != 8 or not row[0].isdigit():
            continue
        user, host, state = unhex(row[1]), unhex(row[2]), unhex(row[6])
        if user is None or host is None or state is None or not _INTEGER.fullmatch(row[5]):
            continue
        found.append(
            ProcessRow(
                id=int(row[0]),
                user=user,
                host=host,
                db=unhex(row[3]),
                command=unescape_batch(row[4]),
                time=max(0, int(row[5])),
                state=state,
                info=unhex(row[7]),
            )
        )
    return found


# --------------------------------------------------------------------------------------------
# Option files and systemd


def parse_option_file(text: str) -> dict[str, dict[str, str]]:
    """A ``my.cnf`` as {section: {option: value}}; option names use ``_`` for ``-``.

    ``!include`` and ``!includedir`` lines are kept under the pseudo-section ``"!include"``
    (by path) so callers can say where the rest of the configuration lives. Options before any
    section, and lines that are neither, are ignored, as the server ignores them.
    """
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("!include"):
            directive, _, path = line.partition(" ")
            sections.setdefault("!include", {})[path.strip()] = directive
            continue
        heading = _SECTION.fullmatch(line)
        if heading is not None:
            current = sections.setdefault(heading.group(1).lower(), {})
            continue
        if current is None:
            continue
        name, equals, value = line.partition("=")
        key = name.strip().lower().replace("-", "_")
        if not key:
            continue
        current[key] = _option_value(value) if equals else ""
    return sections


def _option_value(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    for marker in (" #", "\t#"):
        value = value.split(marker, 1)[0]
    return value.strip()


SERVER_SECTIONS = ("mysqld", "mariadbd", "mariadb", "server", "client-server")
"""Option-file sections the server reads (``client-server`` is read by both sides)."""


def server_option(sections: Mapping[str, Mapping[str, str]], name: str) -> str | None:
    """The value the server would take for ``name`` from these sections (the last one read
    wins, as it does for the server), or None."""
    found: str | None = None
    for section in SERVER_SECTIONS:
        value = sections.get(section, {}).get(name)
        if value:
            found = value
    return found


def parse_systemctl_show(text: str) -> list[dict[str, str]]:
    """``systemctl show --property=...`` for several units: one mapping per unit (blocks are
    separated by blank lines)."""
    units: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if current:
                units.append(current)
            current = {}
            continue
        key, equals, value = line.partition("=")
        if equals:
            current[key.strip()] = value.strip()
    return units
