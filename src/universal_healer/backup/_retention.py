"""The retention policy for backups: pure."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from universal_healer.executions import BackupRecord

# --------------------------------------------------------------------------------------------
# Retention


def select_for_pruning(
    records: Sequence[BackupRecord],
    *,
    keep_last: int,
    max_age: dt.timedelta,
    now: dt.datetime,
    protected_ids: frozenset[str] = frozenset(),
) -> tuple[BackupRecord, ...]:
    """The backups to delete under a retention policy. Pure: no I/O, no clock.

    Per application, the newest ``keep_last`` backups are always kept; an older one is pruned
    once it is more than ``max_age`` old, unless its id is in ``protected_ids`` (the backup of
    an execution that is running or was interrupted: it may be the only way back). Backups
    already pruned are ignored.

    :returns: the records to prune, oldest first.
    """
    if keep_last < 0:
        raise ValueError(f"keep_last must not be negative, not {keep_last}")
    if max_age < dt.timedelta(0):
        raise ValueError(f"max_age must not be negative, not {max_age}")
    if now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    per_app: dict[str, list[BackupRecord]] = defaultdict(list)
    for record in records:
        if record.pruned_at is None:
            per_app[record.app_id].append(record)
    pruned: list[BackupRecord] = []
    for backups in per_app.values():
        backups.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        pruned.extend(
            record
            for record in backups[keep_last:]
            if record.id not in protected_ids and now - record.created_at > max_age
        )
    return tuple(sorted(pruned, key=lambda r: (r.created_at, r.app_id, r.id)))
