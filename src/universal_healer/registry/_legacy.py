"""The migration from the WordPress-only healer's registry (the plan's sections 3.2, 16 and 17).

The legacy healer kept its sites in ``wp_sites`` and what it did to them in an executions
table whose rows name their site by ``site_id``. :func:`apply_legacy_migration` copies every
``wp_sites`` row into ``applications`` (stack ``wordpress``, keeping the row's id) and every
execution into ``healing_executions`` (keeping its id: ``site_id`` is the application's id),
in one transaction that verifies what it wrote before it commits. The legacy tables are only
read. :func:`check_legacy_migration` says what apply would do and proves what it did;
:func:`rollback_legacy_migration` removes exactly what apply added. ``docs/migration.md`` is the
operator's runbook and gives the reasons behind the choices made here.

The legacy schema, as the migration reads it (other columns are left alone)::

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

This module writes what apply imports and holds the three operations. The rest of the
migration is in private modules beside it: ``_legacy_source`` (the legacy database, read
only), ``_legacy_survey`` (the ledger, the registry's rows, and the survey of both),
``_legacy_plan`` (what to import and what stands in the way), ``_legacy_rows`` (the legacy
schema, value mappings, row validation and conversion), ``_legacy_checksums`` (canonical JSON
and the rows' checksums) and ``_legacy_reports`` (what the operations return).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import peewee

from universal_healer.exceptions import RegistryError
from universal_healer.model import utcnow
from universal_healer.registry._legacy_checksums import (
    checksum,
    execution_checksum,
    site_checksum,
)
from universal_healer.registry._legacy_reports import (
    LegacyReport,
    LegacyRollback,
    RowIssue,
    TableCounts,
)
from universal_healer.registry._legacy_rows import (
    _IN_BATCH,
    _INSERT_BATCH,
    _LEDGER_CHUNK,
    _LEDGER_FORMAT,
    EXECUTIONS_TABLES,
    LEDGER_KEY,
    SITES_TABLE,
    application_columns,
    execution_columns,
    execution_from_row,
    site_from_application,
)
from universal_healer.registry._legacy_source import _source
from universal_healer.registry._legacy_survey import (
    _converted,
    _digests,
    _quote,
    _raw_rows,
    _read_ledger,
    _Survey,
    _survey,
)
from universal_healer.registry._store import Registry
from universal_healer.registry.models import (
    ApplicationRow,
    ApprovalRow,
    AuditLogRow,
    BackupRow,
    DiagnosticResultRow,
    HealingExecutionRow,
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
# Writing


def _write_transaction(db: peewee.Database) -> Any:
    if isinstance(db, peewee.SqliteDatabase):
        return db.atomic(lock_type="IMMEDIATE")  # take the write lock before reading
    return db.atomic()


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
