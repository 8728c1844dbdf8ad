"""The legacy migration's reports: what check and apply found or did, and what rollback did.
See :mod:`universal_healer.registry._legacy`."""

from __future__ import annotations

import attrs

from universal_healer.registry._legacy_rows import SITES_TABLE


@attrs.frozen(kw_only=True)
class RowIssue:
    """A legacy row apply cannot import, or an imported one that changed since.

    :param table: the legacy table (``wp_sites`` or the executions table).
    """

    table: str
    id: str
    reason: str


@attrs.frozen(kw_only=True)
class TableCounts:
    """One legacy table's rows, by where they stand.

    :param legacy: rows in the legacy table now.
    :param verified: rows imported earlier whose legacy row and registry row are both
        unchanged since (checksums).
    :param pending: rows apply would import now (for apply: was to import).
    :param added: rows this call imported (apply only).
    """

    legacy: int = 0
    verified: int = 0
    pending: int = 0
    added: int = 0


@attrs.frozen(kw_only=True)
class LegacyReport:
    """What :func:`check_legacy_migration` found or :func:`apply_legacy_migration` did.

    :param source: ``"registry"``, or the legacy database's URL without its password.
    :param executions_table: the legacy executions table read, None when there is none.
    :param blocked: rows apply cannot import (bad values, conflicts), with why.
    :param changed: rows imported earlier that changed since, on either side, or are gone.
    :param unknown_servers: legacy server ids the registry has no server for, with the number
        of sites on each.
    :param refused: apply changed nothing because rows are blocked (and ``partial`` was not
        given).
    """

    source: str
    sites_table: str = SITES_TABLE
    executions_table: str | None
    sites: TableCounts
    executions: TableCounts
    blocked: tuple[RowIssue, ...] = ()
    changed: tuple[RowIssue, ...] = ()
    unknown_servers: tuple[tuple[str, int], ...] = ()
    refused: bool = False


@attrs.frozen(kw_only=True)
class LegacyRollback:
    """What :func:`rollback_legacy_migration` did.

    :param recorded: whether the registry held a migration to roll back.
    :param changed: imported rows changed since (or with records made since): they block the
        rollback unless forced, and are removed when it is.
    :param gone: imported rows already gone from the registry (nothing to remove).
    :param refused: nothing was removed because of ``changed``.
    """

    recorded: bool
    removed_sites: int = 0
    removed_executions: int = 0
    changed: tuple[RowIssue, ...] = ()
    gone: tuple[RowIssue, ...] = ()
    refused: bool = False
