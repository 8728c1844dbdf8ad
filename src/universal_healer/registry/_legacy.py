"""The migration from the WordPress-only healer's registry (the plan's sections 3.2, 16 and 17).

The legacy healer kept its sites in ``wp_sites`` and what it did to them in an executions
table whose rows name their site by ``site_id``. :func:`apply_legacy_migration` copies every
``wp_sites`` row into ``applications`` (stack ``wordpress``, keeping the row's id) and every
execution into ``healing_executions`` (keeping its id: ``site_id`` is the application's id),
in one transaction that verifies what it wrote before it commits. The legacy tables are only
read. :func:`check_legacy_migration` says what apply would do and proves what it did;
:func:`rollback_legacy_migration` removes exactly what apply added. ``docs/migration.md`` is the
operator's runbook and gives the reasons behind the choices made here.

The legacy schema, as this module reads it (other columns are left alone)::

    wp_sites                                   executions: wp_healing_executions, else
                                               healing_executions (with a site_id column)
    id                 text, primary key       id              text, primary key
    server_id          text                    site_id         text: a wp_sites id
    domain             text                    diagnosis_type  text
    path               text                    action          text
    wp_version         text, null              status          text
    health_status      text                    trigger         text
    healing_mode       text                    triggered_by    text, null
    is_healer_enabled  boolean                 execution_logs  text, null
    created_at         timestamp               error_message   text, null
    updated_at         timestamp               backup_path     text, null
                                               started_at      timestamp
                                               finished_at     timestamp, null

Timestamps are UTC: native (naive ones are taken as UTC), ISO 8601 text, or integer
milliseconds since the epoch (as Prisma stores them in SQLite).

Each legacy row has a checksum: the SHA-256 of its canonical JSON (:func:`canonical_json`).
What apply imported is recorded in a ledger in the registry's ``settings`` table: under
:data:`LEDGER_KEY` a summary, and under ``legacy_migration.<batch>.<sites|executions>.<n>`` the
rows, 1000 per setting, each as ``[id, legacy checksum, registry row checksum]``. The legacy
checksum proves the imported row carries the legacy row exactly (an application projects back
onto the row it came from, :func:`site_from_application`); the registry checksum, of the whole
row as stored, tells a row changed since from one as imported.
"""

from __future__ import annotations

import collections
import contextlib
import os
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import peewee
from playhouse import db_url  # type: ignore[import-untyped]  # playhouse ships no stubs

from universal_healer.exceptions import RegistryError
from universal_healer.model import utcnow
from universal_healer.registry._database import connect_database, redact_url
from universal_healer.registry._legacy_plan import (
    _Facts,
    _Ledger,
    _legacy_row,
    _Plan,
    _plan,
    _Row,
)
from universal_healer.registry._legacy_rows import (
    _IN_BATCH,
    _INSERT_BATCH,
    _LEDGER_CHUNK,
    _LEDGER_FORMAT,
    EXECUTION_COLUMNS,
    EXECUTIONS_TABLES,
    LEDGER_KEY,
    REGISTRY_SOURCE,
    SITE_COLUMNS,
    SITES_TABLE,
    LegacyReport,
    LegacyRollback,
    RowIssue,
    TableCounts,
    _path_key,
    application_columns,
    checksum,
    execution_checksum,
    execution_columns,
    execution_from_row,
    normalise_path,
    site_checksum,
    site_from_application,
)
from universal_healer.registry._store import Registry
from universal_healer.registry.models import (
    ApplicationRow,
    ApprovalRow,
    AuditLogRow,
    BackupRow,
    DiagnosticResultRow,
    HealingExecutionRow,
    ServerRow,
    SettingRow,
)

__all__ = [
    "EXECUTIONS_TABLES",
    "LEDGER_KEY",
    "SITES_TABLE",
    "LegacyReport",
    "LegacyRollback",
    "RowIssue",
    "TableCounts",
    "apply_legacy_migration",
    "check_legacy_migration",
    "rollback_legacy_migration",
]

# --------------------------------------------------------------------------------------------
# Reading: the legacy source, the ledger, the registry


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


def _insert(db: peewee.Database, model: type[peewee.Model], rows: Iterable[dict[str, Any]]) -> None:
    """INSERT ``rows`` (by field name; the fields' defaults fill the rest) in batches.

    The statement is written here once per batch: peewee builds one node per value, which
    costs more than the database itself for thousands of rows.
    """
    fields: list[Any] = []
    table = _quote(db, model._meta.table_name)
    for batch in peewee.chunked(rows, _INSERT_BATCH):
        if not fields:
            given = set(batch[0])
            fields = [
                field
                for field in model._meta.sorted_fields
                if field.name in given or field.default is not None
            ]
            columns = ", ".join(_quote(db, field.column_name) for field in fields)
            one = "(" + ", ".join([db.param] * len(fields)) + ")"
        params = []
        for row in batch:
            for field in fields:
                if field.name in row:
                    value = row[field.name]
                else:
                    value = field.default() if callable(field.default) else field.default
                params.append(field.db_value(value))
        sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([one] * len(batch))}"  # noqa: S608
        db.execute_sql(sql, params)  # type: ignore[no-untyped-call]  # peewee is untyped


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


# --------------------------------------------------------------------------------------------
# Writing


def _write_transaction(db: peewee.Database) -> Any:
    if isinstance(db, peewee.SqliteDatabase):
        return db.atomic(lock_type="IMMEDIATE")  # take the write lock before reading
    return db.atomic()


def _verified_entries(
    db: peewee.Database, survey: _Survey
) -> tuple[list[list[str]], list[list[str]]]:
    """Read back what was written; each row must project onto its legacy row exactly.

    :returns: the ledger rows ``[id, legacy checksum, registry checksum]`` of sites and
        executions.
    :raises RegistryError: when one does not (the transaction is then rolled back).
    """
    plan = survey.plan
    apps = _raw_rows(db, ApplicationRow, [row.id for row, _ in plan.sites])
    executions = _raw_rows(db, HealingExecutionRow, [row.id for row in plan.executions])
    wrong: list[str] = []
    sites_out: list[list[str]] = []
    for row, server_id in plan.sites:
        raw = apps.get(row.id)
        stored = None if raw is None else _converted(ApplicationRow, raw)
        back = None if stored is None else site_from_application(stored)
        if (
            raw is None
            or back is None
            or raw["server_id"] != server_id
            or site_checksum(back) != row.checksum
        ):
            wrong.append(row.id)
        else:
            sites_out.append([row.id, row.checksum, checksum(raw)])
    executions_out: list[list[str]] = []
    for row in plan.executions:
        raw = executions.get(row.id)
        stored = None if raw is None else _converted(HealingExecutionRow, raw)
        back = None if stored is None else execution_from_row(stored)
        if raw is None or back is None or execution_checksum(back) != row.checksum:
            wrong.append(row.id)
        else:
            executions_out.append([row.id, row.checksum, checksum(raw)])
    if wrong:
        raise RegistryError(
            f"the registry did not store {len(wrong)} imported row(s) exactly "
            f"({', '.join(wrong[:5])}{', ...' if len(wrong) > 5 else ''}); nothing was imported. "
            "On MySQL and MariaDB, make sure sql_mode is strict (STRICT_TRANS_TABLES)"
        )
    return sites_out, executions_out


def _write_ledger(
    db: peewee.Database,
    survey: _Survey,
    entries: tuple[list[list[str]], list[list[str]]],
    actor: str,
) -> None:
    ledger = survey.ledger
    now = utcnow()
    batch = len(ledger.batches) + 1
    new_chunks: list[dict[str, Any]] = []
    for table, rows in zip(("sites", "executions"), entries, strict=True):
        for index, chunk in enumerate(peewee.chunked(rows, _LEDGER_CHUNK)):
            new_chunks.append({
                "key": f"{LEDGER_KEY}.{batch}.{table}.{index}",
                "value": {"table": table, "rows": chunk},
                "updated_at": now,
                "updated_by": actor,
            })  # fmt: skip
    for settings in peewee.chunked(new_chunks, 50):
        SettingRow.insert_many(settings).execute(db)
    sites, executions = entries
    summary = {
        "format": _LEDGER_FORMAT,
        "source": survey.source,
        "sites_table": SITES_TABLE,
        "executions_table": survey.executions_table,
        "sites": len(ledger.sites) + len(sites),
        "executions": len(ledger.executions) + len(executions),
        "batches": [
            *ledger.batches,
            {
                "at": now.isoformat(),
                "by": actor,
                "sites": len(sites),
                "executions": len(executions),
            },
        ],
        "chunks": [*ledger.keys, *(chunk["key"] for chunk in new_chunks)],
    }
    values = {"value": summary, "updated_at": now, "updated_by": actor}
    if ledger.batches:
        SettingRow.update(**values).where(SettingRow.key == LEDGER_KEY).execute(db)
    else:
        SettingRow.insert(key=LEDGER_KEY, **values).execute(db)


# --------------------------------------------------------------------------------------------
# The operations


def check_legacy_migration(registry: Registry, source: str | None = None) -> LegacyReport:
    """Say what :func:`apply_legacy_migration` would import and what stands in its way, and
    verify what earlier applies imported (counts and per-row checksums). Changes nothing.

    :param source: the legacy database's URL; None reads the legacy tables from the
        registry's own database.
    :raises RegistryError: when a database cannot be read, there is no ``wp_sites`` table or it
        lacks a column, or the registry's migration came from another source.
    """
    with registry._guard("checking the legacy migration"), _source(registry, source) as opened:
        database, label = opened
        return _survey(registry._db, database, label).report()


def apply_legacy_migration(
    registry: Registry, source: str | None = None, *, partial: bool = False, actor: str = "cli"
) -> LegacyReport:
    """Import ``wp_sites`` into ``applications`` and the legacy executions into
    ``healing_executions``, keeping their ids, in one transaction; verify every row by checksum
    before committing; record what was imported in the ledger. Rows imported before are left
    as they are, so running it again changes nothing.

    :param partial: import the rows that can be, leaving the blocked ones; without it, one
        blocked row refuses the whole import (``refused``) and nothing changes.
    :param actor: who did it, for the ledger and the audit log.
    :raises RegistryError: as :func:`check_legacy_migration`, and when a row would not be stored
        exactly (nothing is imported then).
    """
    db = registry._db
    with (
        registry._guard("applying the legacy migration"),
        _source(registry, source) as (database, label),
        _write_transaction(db),
    ):
        survey = _survey(db, database, label)
        plan = survey.plan
        if plan.blocked and not partial:
            return survey.report(refused=True)
        if not plan.sites and not plan.executions:
            return survey.report()
        _insert(db, ApplicationRow, (application_columns(r.record, s) for r, s in plan.sites))
        table = survey.executions_table or ""
        _insert(
            db, HealingExecutionRow, (execution_columns(r.record, table) for r in plan.executions)
        )
        entries = _verified_entries(db, survey)
        _write_ledger(db, survey, entries, actor)
        AuditLogRow.insert(
            at=utcnow(),
            actor=actor,
            action="migrate_legacy_apply",
            target=SITES_TABLE,
            details={
                "source": label,
                "sites": len(plan.sites),
                "executions": len(plan.executions),
                "blocked": len(plan.blocked),
            },
        ).execute(db)
        return survey.report(added=True)


def _records_since(
    db: peewee.Database, app_ids: Sequence[str], imported_executions: Mapping[str, Any]
) -> collections.Counter[str]:
    """How many rows made since the import (results, executions, approvals, backups) each
    imported application has."""
    counts: collections.Counter[str] = collections.Counter()
    models: tuple[Any, ...] = (DiagnosticResultRow, ApprovalRow, BackupRow)
    for batch in peewee.chunked(sorted(app_ids), _IN_BATCH):
        for model in models:
            query = model.select(model.application).where(model.application.in_(batch))
            counts.update(app_id for (app_id,) in query.tuples().bind(db))
        executions: Any = HealingExecutionRow.select(
            HealingExecutionRow.id, HealingExecutionRow.application
        ).where(HealingExecutionRow.application.in_(batch))
        for execution_id, app_id in executions.tuples().bind(db):
            if execution_id not in imported_executions:
                counts[app_id] += 1
    return counts


def rollback_legacy_migration(
    registry: Registry, *, force: bool = False, actor: str = "cli"
) -> LegacyRollback:
    """Remove exactly what :func:`apply_legacy_migration` added, and its ledger, in one
    transaction: the registry is then as it was before the first apply (the audit log keeps
    its lines). The legacy tables are not touched.

    An imported row that changed since, or an application that has records made since (a
    diagnosis, an execution, an approval, a backup), refuses the rollback unless ``force``
    is given; then it is removed with those records.

    :raises RegistryError: when the registry cannot be read or written, or its ledger is
        damaged.
    """
    db = registry._db
    with registry._guard("rolling back the legacy migration"), _write_transaction(db):
        ledger = _read_ledger(db)
        if ledger is None:
            return LegacyRollback(recorded=False)
        apps = _digests(db, ApplicationRow, ledger.sites)
        executions = _digests(db, HealingExecutionRow, ledger.executions)
        newer = _records_since(db, list(apps), ledger.executions)
        table = ledger.executions_table or "executions"
        changed: list[RowIssue] = []
        gone: list[RowIssue] = []
        for name, imported, now in (
            (SITES_TABLE, ledger.sites, apps),
            (table, ledger.executions, executions),
        ):
            for row_id, (_, row_sum) in sorted(imported.items()):
                if row_id not in now:
                    gone.append(RowIssue(table=name, id=row_id, reason="gone from the registry"))
                    continue
                reasons = []
                if now[row_id] != row_sum:
                    reasons.append("changed in the registry since it was imported")
                if name == SITES_TABLE and newer[row_id]:
                    reasons.append(f"has {newer[row_id]} record(s) made since it was imported")
                if reasons:
                    changed.append(RowIssue(table=name, id=row_id, reason="; ".join(reasons)))
        if changed and not force:
            return LegacyRollback(
                recorded=True, changed=tuple(changed), gone=tuple(gone), refused=True
            )
        for batch in peewee.chunked(sorted(executions), _IN_BATCH):
            HealingExecutionRow.delete().where(HealingExecutionRow.id.in_(batch)).execute(db)
        for batch in peewee.chunked(sorted(apps), _IN_BATCH):
            # The database cascades to the records made since (forced only).
            ApplicationRow.delete().where(ApplicationRow.id.in_(batch)).execute(db)
        for batch in peewee.chunked([LEDGER_KEY, *ledger.keys], _IN_BATCH):
            SettingRow.delete().where(SettingRow.key.in_(batch)).execute(db)
        AuditLogRow.insert(
            at=utcnow(),
            actor=actor,
            action="migrate_legacy_rollback",
            target=SITES_TABLE,
            details={
                "sites": len(apps),
                "executions": len(executions),
                "forced": bool(changed),
            },
        ).execute(db)
        return LegacyRollback(
            recorded=True,
            removed_sites=len(apps),
            removed_executions=len(executions),
            changed=tuple(changed),
            gone=tuple(gone),
        )
