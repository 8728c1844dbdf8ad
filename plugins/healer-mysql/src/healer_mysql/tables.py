"""Tables as the server lists, checks, repairs and optimizes them, without I/O.

Pure functions of the ``mysql`` client's batch rows (see :mod:`healer_mysql.parsing`), shared
by the integrity and fragmentation checks and the repair and optimize steps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import attrs

from healer_mysql.parsing import unescape_batch, unhex

__all__ = [
    "REPAIRABLE_ENGINES",
    "TABLE_COLUMNS",
    "AdminOutcome",
    "TableInfo",
    "TableVerdict",
    "admin_outcome",
    "fragmented",
    "integrity_order",
    "parse_tables",
    "table_verdicts",
]

REPAIRABLE_ENGINES = frozenset({"MyISAM", "Aria", "ARCHIVE", "CSV"})
"""Engines whose tables ``REPAIR TABLE`` can repair. InnoDB is never among them: it recovers
from its redo log, and a corrupt InnoDB table is restored from a backup, not repaired."""

_TIMESTAMP = re.compile(r"[0-9]{1,12}(?:\.[0-9]*)?")


# --------------------------------------------------------------------------------------------
# CHECK / REPAIR / OPTIMIZE TABLE


@attrs.frozen(kw_only=True)
class AdminOutcome:
    """What a ``CHECK``, ``REPAIR`` or ``OPTIMIZE TABLE`` said about one table.

    :param status: the last ``status`` message (``"OK"``, ``"Corrupt"``, ``"Operation
        failed"``), or None when there was none.
    :param messages: every other message, as ``"type: text"``.
    """

    table: str
    status: str | None
    messages: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """The server says the table is fine (or was made fine)."""
        return self.status in ("OK", "Table is already up to date")

    @property
    def unsupported(self) -> bool:
        """The engine does not implement the operation (a MEMORY table's CHECK, say)."""
        return self.status is None and any(
            "storage engine for the table doesn't support" in m for m in self.messages
        )

    @property
    def missing(self) -> bool:
        """The table went away between listing and checking."""
        return any("doesn't exist" in m for m in self.messages)


def admin_outcome(rows: Iterable[Sequence[str]]) -> list[AdminOutcome]:
    """Group (Table, Op, Msg_type, Msg_text) rows by table, in the order they came."""
    order: list[str] = []
    statuses: dict[str, str | None] = {}
    messages: dict[str, list[str]] = {}
    for row in rows:
        if len(row) != 4:
            continue
        table, _, kind, text = (unescape_batch(field) for field in row)
        if table not in messages:
            order.append(table)
            statuses[table] = None
            messages[table] = []
        if kind.lower() == "status":
            statuses[table] = text
        else:
            messages[table].append(f"{kind.lower()}: {text}")
    return [AdminOutcome(table=t, status=statuses[t], messages=tuple(messages[t])) for t in order]


@attrs.frozen(kw_only=True)
class TableVerdict:
    """The integrity of one table after ``CHECK TABLE``: ``ok``, ``corrupt``, ``unsupported``
    (the engine cannot check) or ``missing`` (dropped meanwhile)."""

    schema: str
    table: str
    verdict: str
    messages: tuple[str, ...] = ()


def table_verdicts(schema: str, outcomes: Iterable[AdminOutcome]) -> list[TableVerdict]:
    """The verdict of every table of ``schema`` that a ``CHECK TABLE`` reported on.

    The server names a table ``schema.table``; the prefix is removed (one schema is checked per
    statement, so a dot in a name is never ambiguous).
    """
    prefix = f"{schema}."
    verdicts: list[TableVerdict] = []
    for outcome in outcomes:
        name = outcome.table.removeprefix(prefix)
        if outcome.missing:
            verdict = "missing"
        elif outcome.unsupported:
            verdict = "unsupported"
        elif outcome.ok:
            verdict = "ok"
        else:
            verdict = "corrupt"
        shown = outcome.messages if outcome.status is None else (*outcome.messages, outcome.status)
        verdicts.append(TableVerdict(schema=schema, table=name, verdict=verdict, messages=shown))
    return verdicts


# --------------------------------------------------------------------------------------------
# Tables


TABLE_COLUMNS = (
    "HEX(TABLE_SCHEMA), HEX(TABLE_NAME), IFNULL(ENGINE, 'NULL'), IFNULL(DATA_LENGTH, 0), "
    "IFNULL(DATA_FREE, 0), HEX(IFNULL(TABLE_COMMENT, '')), "
    "IFNULL(UNIX_TIMESTAMP(CHECK_TIME), 'NULL')"
)
"""The ``information_schema.TABLES`` columns :func:`parse_tables` reads, in order."""

_CRASH_MARK = "marked as crashed"


@attrs.frozen(kw_only=True)
class TableInfo:
    """One base table as ``information_schema.TABLES`` lists it.

    :param engine: None when the server could not open the table to tell (a crashed one).
    :param comment: for a table the server could not open, its complaint.
    :param checked_at: when CHECK TABLE last ran on it (Unix time), for the engines that
        record it (MyISAM, Aria); None otherwise.
    """

    schema: str
    name: str
    engine: str | None
    data_length: int
    data_free: int
    comment: str = ""
    checked_at: int | None = None

    @property
    def crash_marked(self) -> bool:
        """The server cannot open it because it is marked crashed: only MyISAM, Aria, CSV and
        ARCHIVE tables carry that mark."""
        return self.engine is None and _CRASH_MARK in self.comment

    @property
    def repairable(self) -> bool:
        """Whether ``REPAIR TABLE`` applies: an engine of :data:`REPAIRABLE_ENGINES`, or a
        crash mark that only those engines set. Never an InnoDB table."""
        if self.engine is not None:
            return self.engine in REPAIRABLE_ENGINES
        return self.crash_marked


def parse_tables(rows: Iterable[Sequence[str]]) -> list[TableInfo]:
    """Rows selected with :data:`TABLE_COLUMNS`; malformed rows are skipped."""
    tables: list[TableInfo] = []
    for row in rows:
        if len(row) != 7 or not row[3].isdigit() or not row[4].isdigit():
            continue
        schema, name, comment = unhex(row[0]), unhex(row[1]), unhex(row[5])
        if schema is None or name is None:
            continue
        engine = unescape_batch(row[2])
        tables.append(
            TableInfo(
                schema=schema,
                name=name,
                engine=None if engine == "NULL" else engine,
                data_length=int(row[3]),
                data_free=int(row[4]),
                comment=comment or "",
                checked_at=int(row[6].partition(".")[0]) if _TIMESTAMP.fullmatch(row[6]) else None,
            )
        )
    return tables


def fragmented(tables: Iterable[TableInfo], *, min_bytes: int, ratio: float) -> list[TableInfo]:
    """The tables worth an ``OPTIMIZE TABLE``: at least ``min_bytes`` free and free space at
    least ``ratio`` times their data.

    InnoDB tables in a shared tablespace (the system tablespace, with
    ``innodb_file_per_table`` off when they were made) all report the tablespace's free space,
    which no OPTIMIZE of one table gives back: InnoDB tables whose ``DATA_FREE`` is shared by
    another InnoDB table are left out.
    """
    listed = list(tables)
    innodb_free: dict[int, int] = {}
    for table in listed:
        if table.engine == "InnoDB":
            innodb_free[table.data_free] = innodb_free.get(table.data_free, 0) + 1
    return [
        table
        for table in listed
        if table.data_free >= max(min_bytes, 1)
        and table.data_free >= ratio * table.data_length
        and not (table.engine == "InnoDB" and innodb_free[table.data_free] > 1)
    ]


def integrity_order(tables: Iterable[TableInfo], rotation: int) -> list[TableInfo]:
    """The order in which a bounded integrity run checks tables.

    First the engines that get corrupted by a crash and that ``REPAIR TABLE`` mends (MyISAM,
    Aria, CSV, ARCHIVE), never-checked ones first, then by the time they were last checked
    (the server records it). Then the others (InnoDB records nothing), by name, starting at
    ``rotation`` (modulo their number) so that successive runs move along them.
    """
    listed = list(tables)
    prone = [t for t in listed if t.repairable]
    rest = sorted((t for t in listed if not t.repairable), key=lambda t: (t.schema, t.name))
    prone.sort(key=lambda t: (t.checked_at is not None, t.checked_at or 0, t.schema, t.name))
    if rest:
        start = rotation % len(rest)
        rest = rest[start:] + rest[:start]
    return prone + rest
