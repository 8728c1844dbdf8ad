"""The Registry's approvals (who allowed which exact action) and backup records."""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee

from universal_healer.exceptions import RegistryError
from universal_healer.executions import Approval, ApprovalStatus, BackupRecord
from universal_healer.model import RiskLevel
from universal_healer.registry._base import RegistryBase
from universal_healer.registry._records import require_aware
from universal_healer.registry.models import ApprovalRow, BackupRow, display_text

__all__ = ["ApprovalsAndBackups"]

_PENDING = ApprovalStatus.PENDING.value
_APPROVED = ApprovalStatus.APPROVED.value


def _approval_from_row(row: ApprovalRow) -> Approval:
    return Approval(
        id=row.id,
        app_id=row.application_id,
        action_name=row.action_name,
        check=row.check_name,
        risk=RiskLevel(row.risk),
        fingerprint=row.fingerprint,
        status=ApprovalStatus(row.status),
        requested_at=row.requested_at,
        requested_by=row.requested_by,
        expires_at=row.expires_at,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        execution_id=row.execution_id,
        action=row.action,
    )


def _backup_from_row(row: BackupRow) -> BackupRecord:
    return BackupRecord(
        id=row.id,
        app_id=row.application_id,
        execution_id=row.execution_id,
        strategy=row.strategy,
        host=row.host,
        location=row.location,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        includes=row.includes,
        created_at=row.created_at,
        restored_at=row.restored_at,
        pruned_at=row.pruned_at,
    )


def _backup_columns(record: BackupRecord) -> dict[str, Any]:
    for name in ("created_at", "restored_at", "pruned_at"):
        require_aware(getattr(record, name), name)
    if display_text(record.location) != record.location:
        # PostgreSQL and MySQL would refuse it, SQLite would keep it: refuse it everywhere.
        raise ValueError("a backup location must be valid UTF-8 without NUL characters")
    if record.size_bytes < 0:
        raise ValueError(f"size_bytes must be 0 or more, got {record.size_bytes}")
    return {
        "id": record.id,
        "application": record.app_id,
        "execution_id": record.execution_id,
        "strategy": record.strategy,
        "host": record.host,
        "location": record.location,
        "size_bytes": record.size_bytes,
        "sha256": record.sha256,
        "includes": list(record.includes),
        "created_at": record.created_at,
        "restored_at": record.restored_at,
        "pruned_at": record.pruned_at,
    }


def _refusal(row: ApprovalRow, expired: bool, doing: str, wanted: ApprovalStatus) -> RegistryError:
    if expired:
        return RegistryError(
            f"approval {row.id} expired at {row.expires_at.isoformat()}: it cannot be "
            f"{doing}; request a new one"
        )
    decided = f" by {row.decided_by}" if row.decided_by else ""
    return RegistryError(
        f"approval {row.id} is {row.status}{decided}, not {wanted}: it cannot be {doing}"
    )


class ApprovalsAndBackups(RegistryBase):
    """Registry methods for the ``approvals`` and ``backups`` tables.

    Approval state changes are compare-and-set updates: of two processes deciding or using one
    approval at once, exactly one succeeds. An approval past its ``expires_at`` is never
    granted or used; it becomes EXPIRED instead.
    """

    __slots__ = ()

    # ----------------------------------------------------------------------------------------
    # Approvals

    def create_approval(self, approval: Approval) -> None:
        """Record an approval request (or decision).

        :raises ApplicationNotFoundError: when its application is unknown.
        :raises RegistryError: when an approval with that id exists already.
        """
        for name in ("requested_at", "expires_at", "decided_at"):
            require_aware(getattr(approval, name), name)
        with self._guard("recording an approval"), self._db.atomic():
            self._require_application(approval.app_id)
            if ApprovalRow.select().where(ApprovalRow.id == approval.id).exists(self._db):
                raise RegistryError(f"approval {approval.id} is recorded already")
            ApprovalRow.insert(
                id=approval.id,
                application=approval.app_id,
                action_name=approval.action_name,
                check_name=approval.check,
                risk=approval.risk.value,
                fingerprint=approval.fingerprint,
                status=approval.status.value,
                requested_at=approval.requested_at,
                requested_by=approval.requested_by,
                expires_at=approval.expires_at,
                decided_at=approval.decided_at,
                decided_by=approval.decided_by,
                execution_id=approval.execution_id,
                action=dict(approval.action),
            ).execute(self._db)

    def get_approval(self, id_or_prefix: str) -> Approval:
        """The approval with this id, or whose id alone starts with this prefix (four
        characters at least, any case).

        :raises RegistryError: when nothing matches, or more than one approval does.
        """
        with self._guard("reading an approval"):
            return _approval_from_row(self._approval_row(id_or_prefix))

    def _approval_row(self, id_or_prefix: str) -> ApprovalRow:
        approval_id = self._resolve_id(ApprovalRow, id_or_prefix, "approval")
        return ApprovalRow.select().where(ApprovalRow.id == approval_id).get(self._db)

    def list_approvals(
        self, *, status: ApprovalStatus | None = None, app_id: str | None = None
    ) -> list[Approval]:
        """Approvals matching every filter given, the latest requested first."""
        query = ApprovalRow.select()
        if status is not None:
            query = query.where(ApprovalRow.status == status.value)
        if app_id is not None:
            query = query.where(ApprovalRow.application == app_id)
        query = query.order_by(ApprovalRow.requested_at.desc(), ApprovalRow.id)
        with self._guard("listing approvals"):
            if app_id is not None:
                self._require_application(app_id)
            return [_approval_from_row(row) for row in query.bind(self._db)]

    def decide_approval(
        self, approval_id: str, *, approved: bool, actor: str, at: dt.datetime
    ) -> Approval:
        """Approve or reject a pending approval; return it as decided.

        :param approval_id: the exact id (resolve a prefix with :meth:`get_approval`).
        :param at: when the decision is made; an approval whose ``expires_at`` is not after it
            has expired.
        :raises RegistryError: when there is no such approval; when it is not PENDING; when it
            has expired (it is then recorded EXPIRED).
        """
        require_aware(at, "at")
        status = ApprovalStatus.APPROVED if approved else ApprovalStatus.REJECTED
        with self._guard(f"deciding approval {approval_id}"), self._db.atomic():
            decided = (
                ApprovalRow.update(status=status.value, decided_at=at, decided_by=actor)
                .where(
                    (ApprovalRow.id == approval_id)
                    & (ApprovalRow.status == _PENDING)
                    & (ApprovalRow.expires_at > at)
                )
                .execute(self._db)
            )
            row = self._exact_approval(approval_id)
            if decided:
                return _approval_from_row(row)
            expired = self._expire_if_due(row, _PENDING, at)
        # Outside the transaction: the EXPIRED status must be kept, not rolled back.
        raise _refusal(row, expired, "decided", ApprovalStatus.PENDING)

    def use_approval(self, approval_id: str, execution_id: str, at: dt.datetime) -> None:
        """Spend an APPROVED approval on one execution (it becomes USED).

        :param at: when the execution starts; an approval whose ``expires_at`` is not after
            it has expired.
        :raises RegistryError: when there is no such approval, or it is not APPROVED (pending,
            rejected, used already, expired; one found expired is recorded EXPIRED).
        """
        require_aware(at, "at")
        with self._guard(f"using approval {approval_id}"), self._db.atomic():
            used = (
                ApprovalRow.update(status=ApprovalStatus.USED.value, execution_id=execution_id)
                .where(
                    (ApprovalRow.id == approval_id)
                    & (ApprovalRow.status == _APPROVED)
                    & (ApprovalRow.expires_at > at)
                )
                .execute(self._db)
            )
            if used:
                return
            row = self._exact_approval(approval_id)
            expired = self._expire_if_due(row, _APPROVED, at)
        raise _refusal(row, expired, "used", ApprovalStatus.APPROVED)

    def expire_approvals(self, now: dt.datetime) -> int:
        """Mark EXPIRED every PENDING or APPROVED approval whose ``expires_at`` is not after
        ``now``; return how many."""
        require_aware(now, "now")
        with self._guard("expiring approvals"), self._db.atomic():
            count: int = (
                ApprovalRow.update(status=ApprovalStatus.EXPIRED.value)
                .where(
                    ApprovalRow.status.in_([_PENDING, _APPROVED]) & (ApprovalRow.expires_at <= now)
                )
                .execute(self._db)
            )
        return count

    def _exact_approval(self, approval_id: str) -> ApprovalRow:
        row = self._one(ApprovalRow.select().where(ApprovalRow.id == approval_id))
        if row is None:
            raise RegistryError(f"no approval with id {approval_id!r}")
        return row

    def _expire_if_due(self, row: ApprovalRow, status: str, at: dt.datetime) -> bool:
        if row.status != status or row.expires_at > at:
            return False
        ApprovalRow.update(status=ApprovalStatus.EXPIRED.value).where(
            (ApprovalRow.id == row.id) & (ApprovalRow.status == status)
        ).execute(self._db)
        return True

    # ----------------------------------------------------------------------------------------
    # Backups

    def record_backup(self, record: BackupRecord) -> None:
        """Record a backup that was taken.

        :raises ApplicationNotFoundError: when its application is unknown.
        :raises RegistryError: when a backup with that id exists already.
        :raises ValueError: for a naive datetime, a negative size, or a location that is not
            valid UTF-8 text.
        """
        columns = _backup_columns(record)
        with self._guard("recording a backup"), self._db.atomic():
            self._require_application(record.app_id)
            if BackupRow.select().where(BackupRow.id == record.id).exists(self._db):
                raise RegistryError(f"backup {record.id} is recorded already")
            BackupRow.insert(**columns).execute(self._db)

    def get_backup(self, id_or_prefix: str) -> BackupRecord:
        """The backup with this id, or whose id alone starts with this prefix (four
        characters at least, any case).

        :raises RegistryError: when nothing matches, or more than one backup does.
        """
        with self._guard("reading a backup"):
            backup_id = self._resolve_id(BackupRow, id_or_prefix, "backup")
            return _backup_from_row(
                BackupRow.select().where(BackupRow.id == backup_id).get(self._db)
            )

    def list_backups(
        self, app_id: str | None = None, *, include_pruned: bool = False
    ) -> list[BackupRecord]:
        """Backups of one application or all, newest first; pruned ones only when asked."""
        query = BackupRow.select()
        if app_id is not None:
            query = query.where(BackupRow.application == app_id)
        if not include_pruned:
            query = query.where(BackupRow.pruned_at.is_null())
        query = query.order_by(BackupRow.created_at.desc(), BackupRow.id)
        with self._guard("listing backups"):
            if app_id is not None:
                self._require_application(app_id)
            return [_backup_from_row(row) for row in query.bind(self._db)]

    def mark_backup_restored(self, backup_id: str, at: dt.datetime) -> None:
        """Record that the backup was restored at ``at``.

        :raises RegistryError: when there is no backup with this exact id.
        """
        self._mark_backup(backup_id, restored_at=at)

    def mark_backup_pruned(self, backup_id: str, at: dt.datetime) -> None:
        """Record that the backup's files were deleted at ``at``; it leaves the default list.

        :raises RegistryError: when there is no backup with this exact id.
        """
        self._mark_backup(backup_id, pruned_at=at)

    def _mark_backup(self, backup_id: str, **change: dt.datetime) -> None:
        for name, value in change.items():
            require_aware(value, name)
        with self._guard(f"updating backup {backup_id}"), self._db.atomic():
            query: peewee.ModelUpdate = BackupRow.update(**change)
            # MySQL counts only rows whose values changed, so zero is not proof of absence.
            updated = query.where(BackupRow.id == backup_id).execute(self._db)
            if not updated and not BackupRow.select().where(BackupRow.id == backup_id).exists(
                self._db
            ):
                raise RegistryError(f"no backup with id {backup_id!r}")
