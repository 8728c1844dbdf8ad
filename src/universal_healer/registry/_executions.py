"""The Registry's healing history: executions with their steps, and each check's recent past."""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee

from universal_healer import serde
from universal_healer.exceptions import RegistryError
from universal_healer.executions import Execution, ExecutionStatus, StepRecord
from universal_healer.model import CheckStatus, HealingMode, RiskLevel, utcnow
from universal_healer.registry._base import RegistryBase
from universal_healer.registry._records import require_aware
from universal_healer.registry.models import BackupRow, DiagnosticResultRow, HealingExecutionRow

__all__ = ["ExecutionHistory"]


def _execution_columns(execution: Execution) -> dict[str, Any]:
    require_aware(execution.started_at, "started_at")
    require_aware(execution.finished_at, "finished_at")
    for step in execution.steps:
        require_aware(step.started_at, "a step's started_at")
    return {
        "application": execution.app_id,
        "action_name": execution.action_name,
        "check_name": execution.check,
        "risk": execution.risk.value,
        "status": execution.status.value,
        "fingerprint": execution.fingerprint,
        "mode": execution.mode.value,
        "triggered_by": execution.triggered_by,
        "started_at": execution.started_at,
        "finished_at": execution.finished_at,
        # Through the one converter, as a list: StepRecord's fields, None and all.
        "steps": serde.unstructure(list(execution.steps)),
        "backup_id": execution.backup_id,
        "rolled_back": execution.rolled_back,
        "error": execution.error,
        "process": execution.process,
        "action": dict(execution.action),
    }


def _execution_from_row(row: HealingExecutionRow) -> Execution:
    return Execution(
        id=row.id,
        app_id=row.application_id,
        action_name=row.action_name,
        check=row.check_name,
        risk=RiskLevel(row.risk),
        status=ExecutionStatus(row.status),
        fingerprint=row.fingerprint,
        mode=HealingMode(row.mode),
        triggered_by=row.triggered_by,
        # Rows written before migration 2 may lack a start: their creation is the best guess.
        started_at=row.started_at or row.created_at,
        finished_at=row.finished_at,
        steps=serde.structure(row.steps, list[StepRecord]),
        backup_id=row.backup_id,
        rolled_back=bool(row.rolled_back),
        error=row.error,
        process=row.process,
        action=row.action,
    )


def _newest_first(query: peewee.ModelSelect[HealingExecutionRow]) -> Any:
    return query.order_by(
        HealingExecutionRow.started_at.desc(),
        HealingExecutionRow.created_at.desc(),
        HealingExecutionRow.id,
    )


class ExecutionHistory(RegistryBase):
    """Registry methods for ``healing_executions``, and the check history the policy reads.

    The executor records an execution when it starts (:meth:`create_execution`) and replaces
    it as it goes (:meth:`update_execution`), so a process that dies leaves a RUNNING row that
    the next start can find with :meth:`executions_with_status`.
    """

    __slots__ = ()

    def _backup_location(self, backup_id: str | None) -> str | None:
        if backup_id is None:
            return None
        row = self._one(BackupRow.select(BackupRow.location).where(BackupRow.id == backup_id))
        return None if row is None else row.location

    def create_execution(self, execution: Execution) -> None:
        """Record a new execution.

        :raises ApplicationNotFoundError: when its application is unknown.
        :raises RegistryError: when an execution with that id exists already.
        :raises ValueError: when a datetime in it is naive.
        """
        columns = _execution_columns(execution)
        with self._guard("recording an execution"), self._db.atomic():
            self._require_application(execution.app_id)
            exists = HealingExecutionRow.select().where(HealingExecutionRow.id == execution.id)
            if exists.exists(self._db):
                raise RegistryError(f"execution {execution.id} is recorded already")
            HealingExecutionRow.insert(
                id=execution.id,
                created_at=utcnow(),
                backup_location=self._backup_location(execution.backup_id),
                **columns,
            ).execute(self._db)

    def update_execution(self, execution: Execution) -> None:
        """Replace every field of the execution with this id by the values given.

        :raises RegistryError: when no execution has this id.
        :raises ApplicationNotFoundError: when its application is unknown.
        :raises ValueError: when a datetime in it is naive.
        """
        columns = _execution_columns(execution)
        with self._guard(f"updating execution {execution.id}"), self._db.atomic():
            exists = HealingExecutionRow.select().where(HealingExecutionRow.id == execution.id)
            if not exists.exists(self._db):
                raise RegistryError(f"no execution with id {execution.id!r}")
            self._require_application(execution.app_id)
            HealingExecutionRow.update(
                backup_location=self._backup_location(execution.backup_id), **columns
            ).where(HealingExecutionRow.id == execution.id).execute(self._db)

    def get_execution(self, id_or_prefix: str) -> Execution:
        """The execution with this id, or whose id alone starts with this prefix.

        A prefix needs at least four characters and is not case sensitive.

        :raises RegistryError: when nothing matches, or more than one execution does (the
            message lists them).
        """
        with self._guard("reading an execution"):
            execution_id = self._resolve_id(HealingExecutionRow, id_or_prefix, "execution")
            row = HealingExecutionRow.select().where(HealingExecutionRow.id == execution_id)
            return _execution_from_row(row.get(self._db))

    def list_executions(self, app_id: str | None = None, *, limit: int = 50) -> list[Execution]:
        """The latest ``limit`` executions, of one application or all, newest first.

        :raises ValueError: when ``limit`` is negative.
        """
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, got {limit}")
        query = HealingExecutionRow.select()
        with self._guard("listing executions"):
            if app_id is not None:
                self._require_application(app_id)
                query = query.where(HealingExecutionRow.application == app_id)
            rows = _newest_first(query).limit(limit).bind(self._db)
            return [_execution_from_row(row) for row in rows]

    def executions_with_status(self, status: ExecutionStatus) -> list[Execution]:
        """Every execution in ``status``, newest first (RUNNING ones after a restart, say)."""
        query = HealingExecutionRow.select().where(HealingExecutionRow.status == status.value)
        with self._guard("listing executions"):
            return [_execution_from_row(row) for row in _newest_first(query).bind(self._db)]

    def recent_executions(
        self, app_id: str, check_name: str, since: dt.datetime
    ) -> list[Execution]:
        """The executions for ``check_name`` on ``app_id`` started at ``since`` or later,
        newest first: what flap detection and "nothing changed since" look at."""
        require_aware(since, "since")
        query = HealingExecutionRow.select().where(
            (HealingExecutionRow.application == app_id)
            & (HealingExecutionRow.check_name == check_name)
            & (HealingExecutionRow.started_at >= since)
        )
        with self._guard("reading recent executions"):
            self._require_application(app_id)
            return [_execution_from_row(row) for row in _newest_first(query).bind(self._db)]

    # ----------------------------------------------------------------------------------------
    # Check history

    def recent_statuses(self, app_id: str, check_name: str, limit: int) -> tuple[CheckStatus, ...]:
        """The statuses ``check_name`` had in the last ``limit`` diagnoses that ran it,
        oldest first: what "a finding must hold for N diagnoses" looks at.

        Diagnoses are ordered by the time they were recorded at; two recorded with the same
        time come in no particular order.

        :raises ValueError: when ``limit`` is negative.
        """
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, got {limit}")
        query = (
            DiagnosticResultRow.select(DiagnosticResultRow.status)
            .where(
                (DiagnosticResultRow.application == app_id)
                & (DiagnosticResultRow.check_name == check_name)
            )
            .order_by(DiagnosticResultRow.created_at.desc())
            .limit(limit)
        )
        with self._guard("reading a check's history"):
            self._require_application(app_id)
            if limit == 0:
                return ()
            statuses = [CheckStatus(row.status) for row in query.bind(self._db)]
        return tuple(reversed(statuses))
