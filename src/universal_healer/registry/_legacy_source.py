"""The legacy migration's source: the legacy database, opened so that it cannot be written,
and its tables read. See :mod:`universal_healer.registry._legacy`."""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

import peewee
from playhouse import db_url  # type: ignore[import-untyped]  # playhouse ships no stubs

from universal_healer.exceptions import RegistryError
from universal_healer.registry._database import connect_database, redact_url
from universal_healer.registry._legacy_rows import EXECUTIONS_TABLES, REGISTRY_SOURCE
from universal_healer.registry._store import Registry


def _execute(db: peewee.Database, sql: str) -> None:
    db.execute_sql(sql)  # type: ignore[no-untyped-call]  # peewee is untyped


def _connect_read_only(url: str) -> peewee.Database:
    """A connection to the legacy database that cannot write, whatever it is asked."""
    shown = redact_url(url)
    scheme = url.partition("://")[0].lower()
    if not scheme.startswith("sqlite"):
        database = connect_database(url)
        statement = (
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"
            if isinstance(database, peewee.PostgresqlDatabase)
            else "SET SESSION TRANSACTION READ ONLY"
        )
        try:
            _execute(database, statement)
        except peewee.PeeweeException as err:
            database.close()
            raise RegistryError(f"cannot read the legacy database at {shown}: {err}") from None
        return database
    try:
        path = str(db_url.parse(url)["database"])
    except (ValueError, KeyError):
        raise RegistryError(f"invalid legacy database URL {shown!r}") from None
    if not os.path.isfile(path):
        raise RegistryError(f"no legacy database at {shown}: {path} is not a file")
    # Read only, by URI: connect_database would create a missing file and switch to WAL.
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro"
    database = peewee.SqliteDatabase(uri, uri=True, timeout=10)
    try:
        database.connect()
    except peewee.PeeweeException as err:
        raise RegistryError(f"cannot open the legacy database at {shown}: {err}") from None
    return database


@contextlib.contextmanager
def _source(registry: Registry, url: str | None) -> Iterator[tuple[peewee.Database, str]]:
    """The legacy database and its label: the registry's own, or one opened read-only."""
    if url is None:
        yield registry._db, REGISTRY_SOURCE
        return
    database = _connect_read_only(url)
    try:
        yield database, redact_url(url)
    finally:
        database.close()


def _read_table(db: peewee.Database, table: str, columns: Sequence[str]) -> list[dict[str, Any]]:
    if not db.table_exists(table):
        raise RegistryError(f"the legacy table {table} is gone from the legacy database")
    present = {column.name for column in db.get_columns(table)}
    missing = [column for column in columns if column not in present]
    if missing:
        raise RegistryError(
            f"the legacy table {table} has no column {', '.join(missing)}: "
            "docs/migration.md describes the columns it needs"
        )
    source = peewee.Table(table)
    query = source.select(*(peewee.Column(source, column) for column in columns)).tuples()
    return [dict(zip(columns, values, strict=True)) for values in query.bind(db)]


def _executions_table(db: peewee.Database) -> str | None:
    for table in EXECUTIONS_TABLES:
        if db.table_exists(table) and any(c.name == "site_id" for c in db.get_columns(table)):
            return table
    return None
