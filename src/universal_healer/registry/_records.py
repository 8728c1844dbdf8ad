"""What the registry hands out, and the conversions between table rows and value objects."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from universal_healer.model import (
    Application,
    CheckCategory,
    CheckResult,
    CheckStatus,
    DetectionMethod,
    HealingMode,
    HealthStatus,
    RiskLevel,
)
from universal_healer.registry.models import (
    ApplicationRow,
    AuditLogRow,
    DiagnosticResultRow,
    ServerRow,
)

__all__ = ["AuditEntry", "BreakerRecord", "PluginInfo", "Server"]

PluginInfo = tuple[str, str, Sequence[str], bool, str | None]
"""What :meth:`Registry.sync_plugins` takes per plugin: name, version, stack ids, built in,
distribution (the pip package, None for built-ins)."""


@attrs.frozen(kw_only=True)
class Server:
    """A host applications live on, as the registry knows it."""

    id: str
    name: str
    kind: str
    address: str | None = None
    port: int | None = None
    username: str | None = None
    has_password: bool = False  # whether one is stored (encrypted); never the password itself


@attrs.frozen(kw_only=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    details: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class BreakerRecord:
    """An application's persisted circuit-breaker state and the limits it runs under.

    :param state: the breaker's own JSON, or None when it never recorded any.
    :param max_attempts: attempts allowed inside one cooldown window (the app's setting).
    :param cooldown_s: the window, in seconds.
    """

    state: Mapping[str, Any] | None
    current_attempts: int
    last_attempt: dt.datetime | None
    max_attempts: int
    cooldown_s: int


def new_id() -> str:
    """A fresh row id: a uuid4 string."""
    return str(uuid.uuid4())


def raw_path(path: str) -> bytes:
    """The exact bytes of an application path, which is what identifies it."""
    if not path:
        raise ValueError("an application path must not be empty")
    try:
        return os.fsencode(path)
    except UnicodeEncodeError as err:
        raise ValueError(f"{path!r} is not a path os.fsdecode could have produced") from err


def require_aware(value: dt.datetime | None, name: str) -> None:
    """Refuse a naive datetime before it reaches the database."""
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


def server_from_row(row: ServerRow) -> Server:
    """A ``servers`` row as a :class:`Server`."""
    return Server(
        id=row.id,
        name=row.name,
        kind=row.kind,
        address=row.address,
        port=row.port,
        username=row.username,
        has_password=row.password_encrypted is not None,
    )


def application_from_row(row: ApplicationRow) -> Application:
    """An ``applications`` row, joined with its server, as an :class:`Application`."""
    return Application(
        id=row.id,
        server=row.server.name,
        path=os.fsdecode(bytes(row.path_raw)),  # PostgreSQL hands back a memoryview
        stack=row.tech_stack,
        stack_version=row.tech_stack_version,
        domain=row.domain,
        detection_method=DetectionMethod(row.detection_method),
        confidence=row.detection_confidence,
        evidence=tuple(row.detection_evidence),
        health_status=HealthStatus(row.health_status),
        health_score=row.health_score,
        last_health_check=row.last_health_check,
        healing_mode=HealingMode(row.healing_mode),
        healer_enabled=bool(row.is_healer_enabled),
        metadata=row.metadata,
    )


def breaker_record_from_row(row: ApplicationRow) -> BreakerRecord:
    """The breaker columns of an ``applications`` row."""
    return BreakerRecord(
        state=row.breaker_state,
        current_attempts=row.current_healing_attempts,
        last_attempt=row.last_healing_attempt,
        max_attempts=row.max_healing_attempts,
        cooldown_s=row.healing_cooldown,
    )


def check_result_to_row(
    result: CheckResult, *, app_id: str, run_id: str, at: dt.datetime
) -> dict[str, Any]:
    """A :class:`CheckResult` as the values of a new ``diagnostic_results`` row."""
    return {
        "id": new_id(),
        "application": app_id,
        "check_name": result.check,
        "check_category": result.category.value,
        "status": result.status.value,
        "severity": result.severity.value,
        "message": result.message,
        "details": dict(result.details),
        "suggested_fix": result.suggested_fix,
        "execution_time_ms": result.execution_time_ms,
        "run_id": run_id,
        "created_at": at,
    }


def check_result_from_row(row: DiagnosticResultRow) -> CheckResult:
    """A ``diagnostic_results`` row as a :class:`CheckResult`."""
    return CheckResult(
        check=row.check_name,
        category=CheckCategory(row.check_category),
        status=CheckStatus(row.status),
        severity=RiskLevel(row.severity),
        message=row.message,
        details=row.details,
        suggested_fix=row.suggested_fix,
        execution_time_ms=row.execution_time_ms,
    )


def audit_entry_from_row(row: AuditLogRow) -> AuditEntry:
    """An ``audit_log`` row as an :class:`AuditEntry`."""
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        details=row.details,
    )
