"""What the plugin asks the server and tells it, shared by the checks and the healing steps.

Names never enter SQL as text: schemas and tables are backquoted identifiers
(:func:`~universal_healer._mysql.quote_identifier`) or hexadecimal literals
(:func:`~healer_mysql.parsing.sql_text`), and come back ``HEX()``-encoded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import attrs
from universal_healer._mysql import MySQLClientError, quote_identifier

from healer_mysql.connection import Session
from healer_mysql.parsing import (
    PROCESSLIST_COLUMNS,
    SYSTEM_SCHEMAS,
    ProcessRow,
    client_error_code,
    parse_processlist,
    sql_text,
    unhex,
)
from healer_mysql.settings import Settings
from healer_mysql.tables import (
    TABLE_COLUMNS,
    AdminOutcome,
    TableInfo,
    TableVerdict,
    admin_outcome,
    parse_tables,
    table_verdicts,
)

__all__ = [
    "Schemas",
    "admin",
    "check_tables",
    "kill_query",
    "list_schemas",
    "list_tables",
    "processlist",
    "qualified",
]

_UNKNOWN_THREAD = 1094
_CHUNK = 10  # tables per CHECK TABLE statement


def qualified(schema: str, table: str) -> str:
    """```schema`.`table``` (each part backquoted)."""
    return f"{quote_identifier(schema)}.{quote_identifier(table)}"


def _in_list(column: str, names: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(sql_text(name) for name in names)})"


@attrs.frozen(kw_only=True)
class Schemas:
    """The schemas an application's checks and backups cover.

    :param present: the ones that exist, sorted.
    :param missing: configured in ``mysql_schemas`` but not on the server.
    :param configured: whether ``mysql_schemas`` chose them (else: every non-system schema).
    """

    present: tuple[str, ...]
    missing: tuple[str, ...] = ()
    configured: bool = False


async def list_schemas(db: Session, settings: Settings) -> Schemas:
    """The configured schemas that exist, or every non-system schema."""
    rows = await db.rows(
        "SELECT HEX(SCHEMA_NAME) FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME",
        what="listing the schemas",
    )
    names = [name for row in rows if row and (name := unhex(row[0])) is not None]
    if settings.schemas is None:
        return Schemas(present=tuple(n for n in names if n not in SYSTEM_SCHEMAS))
    known = set(names)
    return Schemas(
        present=tuple(sorted(n for n in settings.schemas if n in known)),
        missing=tuple(n for n in settings.schemas if n not in known),
        configured=True,
    )


async def list_tables(db: Session, schemas: Sequence[str]) -> list[TableInfo]:
    """The base tables of ``schemas``, by schema and name."""
    if not schemas:
        return []
    # Identifiers only ever appear as hexadecimal literals (sql_text): nothing to inject.
    rows = await db.rows(
        f"SELECT {TABLE_COLUMNS} FROM information_schema.TABLES "  # noqa: S608
        f"WHERE TABLE_TYPE = 'BASE TABLE' AND {_in_list('TABLE_SCHEMA', schemas)} "
        "ORDER BY TABLE_SCHEMA, TABLE_NAME",
        what="listing the tables",
    )
    return parse_tables(rows)


async def check_tables(
    db: Session, tables: Sequence[TableInfo], *, budget_s: float
) -> tuple[list[TableVerdict], int]:
    """``CHECK TABLE ... QUICK`` on ``tables``, a few per statement and one schema per
    statement, starting no new statement once ``budget_s`` has passed.

    ``QUICK`` reads every index but not every row's links; ``FAST`` would skip any table that
    was closed properly, and so miss damage done to its files behind the server's back.

    :returns: the verdicts, and how many tables were left unchecked for lack of time.
    """
    started = time.monotonic()
    verdicts: list[TableVerdict] = []
    chunks: list[tuple[str, list[TableInfo]]] = []
    for table in tables:
        if chunks and chunks[-1][0] == table.schema and len(chunks[-1][1]) < _CHUNK:
            chunks[-1][1].append(table)
        else:
            chunks.append((table.schema, [table]))
    left = 0
    for schema, chunk in chunks:
        if time.monotonic() - started > budget_s:
            left += len(chunk)
            continue
        names = ", ".join(qualified(schema, t.name) for t in chunk)
        rows = await db.rows(f"CHECK TABLE {names} QUICK", what=f"checking tables of {schema!r}")
        verdicts += table_verdicts(schema, admin_outcome(rows))
    return verdicts, left


async def admin(db: Session, operation: str, schema: str, table: str) -> AdminOutcome:
    """``REPAIR TABLE`` or ``OPTIMIZE TABLE`` of one table, and what the server said."""
    if operation not in ("REPAIR", "OPTIMIZE"):
        raise ValueError(f"not a table maintenance statement: {operation!r}")
    what = f"{operation} TABLE {schema}.{table}"
    rows = await db.rows(f"{operation} TABLE {qualified(schema, table)}", what=what)
    outcomes = admin_outcome(rows)
    if not outcomes:
        raise MySQLClientError(f"{what}: the server said nothing")
    return outcomes[-1]


async def processlist(db: Session) -> list[ProcessRow]:
    """Every thread the login may see, except the session's own."""
    rows = await db.rows(
        f"SELECT {PROCESSLIST_COLUMNS} FROM information_schema.PROCESSLIST "  # noqa: S608
        "WHERE ID <> CONNECTION_ID() ORDER BY ID",
        what="reading the process list",
    )
    return parse_processlist(rows)


async def kill_query(db: Session, thread_id: int) -> bool:
    """``KILL QUERY`` one thread's statement (the connection stays); False when the thread
    had already gone."""
    if isinstance(thread_id, bool) or not isinstance(thread_id, int) or thread_id <= 0:
        raise ValueError(f"not a thread id: {thread_id!r}")
    try:
        await db.rows(f"KILL QUERY {thread_id}", what=f"KILL QUERY {thread_id}")
    except MySQLClientError as err:
        if client_error_code(err.reason) == _UNKNOWN_THREAD:
            return False
        raise
    return True
