"""The legacy migration's survey: the ledger earlier applies wrote, what the registry holds,
and the legacy rows read and planned against both. Reads only. See
:mod:`universal_healer.registry._legacy`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import peewee

from universal_healer.exceptions import RegistryError
from universal_healer.registry._legacy_checksums import checksum
from universal_healer.registry._legacy_plan import (
    _Facts,
    _Ledger,
    _legacy_row,
    _Plan,
    _plan,
    _Row,
)
from universal_healer.registry._legacy_reports import LegacyReport, TableCounts
from universal_healer.registry._legacy_rows import (
    _IN_BATCH,
    _LEDGER_FORMAT,
    EXECUTION_COLUMNS,
    LEDGER_KEY,
    REGISTRY_SOURCE,
    SITE_COLUMNS,
    SITES_TABLE,
    _path_key,
    normalise_path,
)
from universal_healer.registry._legacy_source import _executions_table, _read_table
from universal_healer.registry.models import (
    ApplicationRow,
    HealingExecutionRow,
    ServerRow,
    SettingRow,
)


def _read_ledger(db: peewee.Database) -> _Ledger | None:
    """The ledger earlier applies wrote, or None when there is none.

    :raises RegistryError: when it cannot be read back whole.
    """
    summary = SettingRow.select().where(SettingRow.key == LEDGER_KEY)
    found = [row.value for row in summary.bind(db)]
    if not found:
        return None
    value = found[0]
    if not isinstance(value, dict) or value.get("format") != _LEDGER_FORMAT:
        raise RegistryError(f"the setting {LEDGER_KEY!r} is no ledger this code can read")
    try:
        keys = tuple(value["chunks"])
        chunks: dict[str, Any] = {}
        for batch in peewee.chunked(keys, _IN_BATCH):
            query = SettingRow.select().where(SettingRow.key.in_(batch))
            chunks.update((row.key, row.value) for row in query.bind(db))
        tables: dict[str, dict[str, tuple[str, str]]] = {"sites": {}, "executions": {}}
        for key in keys:
            tables[chunks[key]["table"]].update(
                (row_id, (legacy, row)) for row_id, legacy, row in chunks[key]["rows"]
            )
        return _Ledger(
            source=value["source"],
            executions_table=value["executions_table"],
            sites=tables["sites"],
            executions=tables["executions"],
            batches=tuple(value["batches"]),
            keys=keys,
        )
    except (KeyError, TypeError, ValueError) as err:
        raise RegistryError(
            f"the legacy migration's ledger (settings {LEDGER_KEY!r}...) is damaged: {err!r}"
        ) from None


def _quote(db: peewee.Database, name: str) -> str:
    return f"{db.quote[0]}{name}{db.quote[1]}"


def _raw_rows(
    db: peewee.Database, model: type[peewee.Model], ids: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Whole rows of ``model`` by id, by column, as the driver returns them.

    Read without peewee's conversions (3 times faster for thousands of rows): the checksums
    of registry rows are taken of these values, which one database always returns alike.
    """
    table = _quote(db, model._meta.table_name)
    rows: dict[str, dict[str, Any]] = {}
    for batch in peewee.chunked(sorted(ids), _IN_BATCH):
        marks = ", ".join([db.param] * len(batch))
        # Names from our own models, values as parameters.
        sql = f"SELECT * FROM {table} WHERE {_quote(db, 'id')} IN ({marks})"  # noqa: S608
        cursor = db.execute_sql(sql, batch)  # type: ignore[no-untyped-call]  # peewee is untyped
        names = [column[0] for column in cursor.description]
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            rows[row["id"]] = row
    return rows


def _converted(model: type[peewee.Model], raw: Mapping[str, Any]) -> dict[str, Any]:
    """A raw row as peewee reads it: by field name, JSON parsed, datetimes aware."""
    return {
        field.name: field.python_value(raw[field.column_name])
        for field in model._meta.sorted_fields
    }


def _digests(db: peewee.Database, model: type[peewee.Model], ids: Iterable[str]) -> dict[str, str]:
    return {row_id: checksum(row) for row_id, row in _raw_rows(db, model, ids).items()}


def _existing(db: peewee.Database, field: Any, values: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for batch in peewee.chunked(sorted(set(values)), _IN_BATCH):
        query = field.model.select(field).where(field.in_(batch)).tuples().bind(db)
        found.update(value for (value,) in query)
    return found


def _facts(
    db: peewee.Database, sites: Sequence[_Row], executions: Sequence[_Row], ledger: _Ledger
) -> _Facts:
    valid = [row.record for row in sites if row.record is not None]
    fresh = [site for site in valid if site.id not in ledger.sites]
    refs = {site.server_id for site in fresh}
    servers = {ref: ref for ref in _existing(db, ServerRow.id, refs)}
    for batch in peewee.chunked(sorted(refs - servers.keys()), _IN_BATCH):
        named = ServerRow.select(ServerRow.name, ServerRow.id).where(ServerRow.name.in_(batch))
        servers.update((row.name, row.id) for row in named.bind(db))
    keys = {_path_key(normalise_path(site.path)) for site in fresh}
    owners: dict[tuple[str, str], str] = {}
    for batch in peewee.chunked(sorted(keys), _IN_BATCH):
        placed: Any = ApplicationRow.select(
            ApplicationRow.id, ApplicationRow.server, ApplicationRow.path_key
        ).where(ApplicationRow.path_key.in_(batch))
        for app_id, server_id, key in placed.tuples().bind(db):
            owners[(server_id, key)] = app_id
    fresh_executions = [
        row.record.id for row in executions if row.record and row.id not in ledger.executions
    ]
    return _Facts(
        servers=servers,
        taken_app_ids=frozenset(_existing(db, ApplicationRow.id, [s.id for s in fresh])),
        path_owners=owners,
        taken_execution_ids=frozenset(_existing(db, HealingExecutionRow.id, fresh_executions)),
        app_digests=_digests(db, ApplicationRow, ledger.sites),
        execution_digests=_digests(db, HealingExecutionRow, ledger.executions),
    )


@attrs.frozen(kw_only=True)
class _Survey:
    source: str
    ledger: _Ledger
    sites: tuple[_Row, ...]
    executions: tuple[_Row, ...]
    executions_table: str | None
    plan: _Plan

    def report(self, *, added: bool = False, refused: bool = False) -> LegacyReport:
        plan = self.plan
        return LegacyReport(
            source=self.source,
            executions_table=self.executions_table,
            sites=TableCounts(
                legacy=len(self.sites),
                verified=plan.verified_sites,
                pending=len(plan.sites),
                added=len(plan.sites) if added else 0,
            ),
            executions=TableCounts(
                legacy=len(self.executions),
                verified=plan.verified_executions,
                pending=len(plan.executions),
                added=len(plan.executions) if added else 0,
            ),
            blocked=plan.blocked,
            changed=plan.changed,
            unknown_servers=plan.unknown_servers,
            refused=refused,
        )


def _survey(registry_db: peewee.Database, source_db: peewee.Database, source: str) -> _Survey:
    ledger = _read_ledger(registry_db)
    if ledger is not None and ledger.source != source:
        raise RegistryError(
            f"this registry holds a legacy migration imported from {ledger.source}; name that "
            "same source to check or apply it (--from), or roll it back first"
        )
    if not source_db.table_exists(SITES_TABLE):
        where = "the registry database" if source == REGISTRY_SOURCE else source
        raise RegistryError(
            f"there is no table {SITES_TABLE} in {where}: name the legacy database with --from URL"
        )
    table = ledger.executions_table if ledger and ledger.executions else None
    table = table or _executions_table(source_db)
    sites = tuple(
        _legacy_row(values, site=True)
        for values in _read_table(source_db, SITES_TABLE, SITE_COLUMNS)
    )
    executions: tuple[_Row, ...] = ()
    if table is not None:
        executions = tuple(
            _legacy_row(values, site=False)
            for values in _read_table(source_db, table, EXECUTION_COLUMNS)
        )
    ledger = ledger or _Ledger(source=source)
    facts = _facts(registry_db, sites, executions, ledger)
    return _Survey(
        source=source,
        ledger=ledger,
        sites=sites,
        executions=executions,
        executions_table=table,
        plan=_plan(sites, executions, table, ledger, facts),
    )
