"""Value objects of the healing engine's records: executions, their steps, backups, approvals.

The registry stores them; the executor creates them; the CLI and the daemon show them. Output
kept here is already redacted and capped: nothing in these objects may hold a secret.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from typing import Any

import attrs

from universal_healer.model import HealingMode, RiskLevel

__all__ = [
    "Approval",
    "ApprovalStatus",
    "BackupArtifact",
    "BackupRecord",
    "Execution",
    "ExecutionStatus",
    "StepRecord",
]


class ExecutionStatus(enum.StrEnum):
    """Where a healing execution stands or how it ended."""

    PENDING_APPROVAL = "PENDING_APPROVAL"  # waiting for a person
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"  # steps ran and verification passed
    FAILED = "FAILED"  # a step or verification failed; there was nothing to roll back
    ROLLED_BACK = "ROLLED_BACK"  # failed, the backup was restored and the restore verified
    ROLLBACK_FAILED = "ROLLBACK_FAILED"  # failed, and restoring the backup failed too
    REFUSED_BREAKER = "REFUSED_BREAKER"  # the circuit breaker said no; nothing touched
    REFUSED_NO_BACKUP = "REFUSED_NO_BACKUP"  # the backup could not be taken; nothing touched
    REFUSED = "REFUSED"  # a safety rule said no (paused, flapping, unchanged, dependency...)
    INTERRUPTED = "INTERRUPTED"  # the healer died while it ran; the app may be half-changed

    @property
    def finished(self) -> bool:
        """True for every status an execution ends in."""
        return self not in (ExecutionStatus.PENDING_APPROVAL, ExecutionStatus.RUNNING)

    @property
    def failed(self) -> bool:
        """True when the action ran (at least partly) and did not fix the finding."""
        return self in (
            ExecutionStatus.FAILED,
            ExecutionStatus.ROLLED_BACK,
            ExecutionStatus.ROLLBACK_FAILED,
            ExecutionStatus.INTERRUPTED,
        )


class ApprovalStatus(enum.StrEnum):
    """The life of an approval request."""

    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"  # never decided in time: counts as rejected
    USED = "USED"  # an execution ran on it; an approval is good for one execution


def _steps(value: Iterable[StepRecord]) -> tuple[StepRecord, ...]:
    return tuple(value)


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class StepRecord:
    """How one step of an execution went.

    :param argv: the argument vector for a command step (None for a callable step).
    :param output: stdout and stderr, redacted and capped.
    """

    index: int
    description: str
    argv: tuple[str, ...] | None = None
    exit_status: int | None = None
    output: str = ""
    duration_s: float = 0.0
    error: str | None = None
    started_at: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        """True when the step succeeded."""
        return self.error is None and self.exit_status in (None, 0)


@attrs.frozen(kw_only=True)
class BackupArtifact:
    """What a backup strategy made: where it is, how big, and its digest."""

    location: str
    size_bytes: int
    sha256: str
    includes: tuple[str, ...] = attrs.field(default=(), converter=_strings)


@attrs.frozen(kw_only=True)
class BackupRecord:
    """A backup as the registry keeps it."""

    id: str
    app_id: str
    execution_id: str | None
    strategy: str
    host: str
    location: str
    size_bytes: int
    sha256: str
    includes: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    created_at: dt.datetime
    restored_at: dt.datetime | None = None
    pruned_at: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class Execution:
    """One attempt (or refusal) to carry out a healing action on one application.

    :param fingerprint: binds the execution to the exact action and finding
        (:meth:`~universal_healer.model.HealingAction.fingerprint`).
    :param process: ``hostname:pid`` of the healer process that ran it, so a later start can
        tell an execution whose process died (INTERRUPTED) from one still running.
    :param action: the action as JSON (name, risk, steps), for dry runs, records and reports.
    """

    id: str
    app_id: str
    action_name: str
    check: str
    risk: RiskLevel
    status: ExecutionStatus
    fingerprint: str
    mode: HealingMode
    triggered_by: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    steps: tuple[StepRecord, ...] = attrs.field(default=(), converter=_steps)
    backup_id: str | None = None
    rolled_back: bool = False
    error: str | None = None
    process: str | None = None
    action: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Approval:
    """A person's permission for one exact action on one finding.

    Good for one execution, until ``expires_at``; an expired approval counts as rejected.
    """

    id: str
    app_id: str
    action_name: str
    check: str
    risk: RiskLevel
    fingerprint: str
    status: ApprovalStatus
    requested_at: dt.datetime
    requested_by: str
    expires_at: dt.datetime
    decided_at: dt.datetime | None = None
    decided_by: str | None = None
    execution_id: str | None = None
    action: dict[str, Any] = attrs.field(factory=dict)
