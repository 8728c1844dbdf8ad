"""The legacy migration's plan: what to import and what stands in the way. Pure."""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from universal_healer.registry._legacy_checksums import execution_checksum, site_checksum
from universal_healer.registry._legacy_reports import RowIssue
from universal_healer.registry._legacy_rows import (
    SITES_TABLE,
    LegacyExecution,
    LegacySite,
    _path_key,
    normalise_path,
    parse_execution,
    parse_site,
)

# --------------------------------------------------------------------------------------------
# The plan: what to import, what stands in the way (pure)


@attrs.frozen(kw_only=True)
class _Row:
    """One legacy row as read: its values, checksum, and the record it parses to (or why not)."""

    id: str
    values: Mapping[str, Any]
    checksum: str
    record: Any = None  # LegacySite | LegacyExecution
    error: str | None = None


def _legacy_row(values: Mapping[str, Any], *, site: bool) -> _Row:
    raw_id = values.get("id")
    row_id = raw_id if isinstance(raw_id, str) else repr(raw_id)
    digest = site_checksum(values) if site else execution_checksum(values)
    try:
        record = parse_site(values) if site else parse_execution(values)
    except (ValueError, TypeError) as err:
        return _Row(id=row_id, values=values, checksum=digest, error=str(err))
    return _Row(id=row_id, values=values, checksum=digest, record=record)


@attrs.frozen(kw_only=True)
class _Ledger:
    """What earlier applies imported: ids with their legacy and registry checksums."""

    source: str
    executions_table: str | None = None
    sites: Mapping[str, tuple[str, str]] = attrs.field(factory=dict)
    executions: Mapping[str, tuple[str, str]] = attrs.field(factory=dict)
    batches: tuple[Mapping[str, Any], ...] = ()
    keys: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class _Facts:
    """What the registry holds that the plan depends on.

    :param servers: legacy server id -> registry server id, for those the registry has.
    :param taken_app_ids: legacy site ids an application not from the ledger already has.
    :param path_owners: (registry server id, path key) -> application id.
    :param taken_execution_ids: legacy execution ids an execution not from the ledger has.
    :param app_digests: ledger application id -> checksum of its row now (absent: gone).
    """

    servers: Mapping[str, str] = attrs.field(factory=dict)
    taken_app_ids: frozenset[str] = frozenset()
    path_owners: Mapping[tuple[str, str], str] = attrs.field(factory=dict)
    taken_execution_ids: frozenset[str] = frozenset()
    app_digests: Mapping[str, str] = attrs.field(factory=dict)
    execution_digests: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class _Plan:
    sites: tuple[tuple[_Row, str], ...]  # with the registry server id
    executions: tuple[_Row, ...]
    verified_sites: int
    verified_executions: int
    changed: tuple[RowIssue, ...]
    blocked: tuple[RowIssue, ...]
    unknown_servers: tuple[tuple[str, int], ...]


def _changed(
    table: str,
    rows: Sequence[_Row],
    imported: Mapping[str, tuple[str, str]],
    digests: Mapping[str, str],
) -> tuple[int, list[RowIssue]]:
    """How many imported rows still verify on both sides, and the issues of the others."""
    by_id = {row.id: row for row in rows}
    verified = 0
    issues: list[RowIssue] = []
    for row_id, (legacy_sum, row_sum) in sorted(imported.items()):
        reasons = []
        row = by_id.get(row_id)
        if row is None:
            reasons.append(f"gone from {table} since it was imported")
        elif row.checksum != legacy_sum:
            reasons.append(f"changed in {table} since it was imported (not imported again)")
        digest = digests.get(row_id)
        if digest is None:
            reasons.append("gone from the registry since it was imported")
        elif digest != row_sum:
            reasons.append("changed in the registry since it was imported")
        if reasons:
            issues.append(RowIssue(table=table, id=row_id, reason="; ".join(reasons)))
        else:
            verified += 1
    return verified, issues


def _site_obstacle(site: LegacySite, server_id: str | None, facts: _Facts) -> str | None:
    """Why a site not imported yet cannot be, or None."""
    if server_id is None:
        return (
            f"server_id {site.server_id!r} is no server of the registry: add a server of "
            "that name first (healer servers add or healer servers import)"
        )
    if site.id in facts.taken_app_ids:
        return "an application with this id is in the registry already (not imported)"
    owner = facts.path_owners.get((server_id, _path_key(normalise_path(site.path))))
    if owner is not None:
        return f"application {owner} is already at {site.path!r} on that server"
    return None


def _plan_sites(
    sites: Sequence[_Row], ledger: _Ledger, facts: _Facts
) -> tuple[list[tuple[_Row, str]], list[RowIssue], collections.Counter[str]]:
    """The sites to import (with their registry server), the blocked ones, the unknown
    servers."""
    blocked: list[RowIssue] = []
    unknown: collections.Counter[str] = collections.Counter()
    places: dict[tuple[str, str], list[tuple[_Row, str]]] = collections.defaultdict(list)
    for row in sorted(sites, key=lambda r: r.id):
        if row.id in ledger.sites:
            continue
        site: LegacySite | None = row.record
        reason = row.error
        if site is not None:
            server_id = facts.servers.get(site.server_id)
            reason = _site_obstacle(site, server_id, facts)
            if server_id is None:
                unknown[site.server_id] += 1
            elif reason is None:
                places[(server_id, normalise_path(site.path))].append((row, server_id))
        if reason is not None:
            blocked.append(RowIssue(table=SITES_TABLE, id=row.id, reason=reason))
    to_import: list[tuple[_Row, str]] = []
    for rows in places.values():
        if len(rows) == 1:
            to_import.extend(rows)
            continue
        twins = ", ".join(row.id for row, _ in rows)
        reason = f"rows {twins} are at the same path on the same server: keep one"
        blocked.extend(RowIssue(table=SITES_TABLE, id=row.id, reason=reason) for row, _ in rows)
    return to_import, blocked, unknown


def _execution_obstacle(
    execution: LegacyExecution,
    present: frozenset[str],
    blocked_sites: frozenset[str],
    ledger: _Ledger,
    facts: _Facts,
) -> str | None:
    """Why an execution not imported yet cannot be, or None."""
    site_id = execution.site_id
    if execution.id in facts.taken_execution_ids:
        return "an execution with this id is in the registry already (not imported)"
    if site_id in present:
        return None
    if site_id in blocked_sites:
        return f"its site {site_id} cannot be imported"
    if site_id in ledger.sites:
        return f"its application {site_id} is gone from the registry"
    return f"site_id {site_id!r} is no row of {SITES_TABLE}"


def _plan(
    sites: Sequence[_Row],
    executions: Sequence[_Row],
    executions_table: str | None,
    ledger: _Ledger,
    facts: _Facts,
) -> _Plan:
    """Sort every legacy row into imported (verified or changed), to import, or blocked."""
    verified_sites, changed = _changed(SITES_TABLE, sites, ledger.sites, facts.app_digests)
    to_import, blocked, unknown = _plan_sites(sites, ledger, facts)
    table = executions_table or "executions"
    verified_executions, changed_executions = _changed(
        table, executions, ledger.executions, facts.execution_digests
    )
    present = frozenset(
        [row.id for row, _ in to_import] + [i for i in ledger.sites if i in facts.app_digests]
    )
    blocked_sites = frozenset(issue.id for issue in blocked)
    executions_to_import: list[_Row] = []
    for row in sorted(executions, key=lambda r: r.id):
        if row.id in ledger.executions:
            continue
        reason = row.error
        if row.record is not None:
            reason = _execution_obstacle(row.record, present, blocked_sites, ledger, facts)
            if reason is None:
                executions_to_import.append(row)
        if reason is not None:
            blocked.append(RowIssue(table=table, id=row.id, reason=reason))
    return _Plan(
        sites=tuple(sorted(to_import, key=lambda item: item[0].id)),
        executions=tuple(executions_to_import),
        verified_sites=verified_sites,
        verified_executions=verified_executions,
        changed=(*changed, *changed_executions),
        blocked=tuple(blocked),
        unknown_servers=tuple(sorted(unknown.items())),
    )
