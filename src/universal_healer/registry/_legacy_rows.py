"""The legacy migration's rows: the legacy schema, value mappings, and row validation and
conversion. Pure: see :mod:`universal_healer.registry._legacy`; the rows' checksums are in
:mod:`universal_healer.registry._legacy_checksums`."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import attrs

from universal_healer import serde
from universal_healer.executions import ExecutionStatus, StepRecord
from universal_healer.model import DetectionMethod, HealingMode, HealthStatus, RiskLevel
from universal_healer.registry._legacy_checksums import parse_timestamp
from universal_healer.registry.models import (
    display_text,
)

T = TypeVar("T")

SITES_TABLE = "wp_sites"
EXECUTIONS_TABLES = ("wp_healing_executions", "healing_executions")
"""Where the legacy executions are looked for, in order: the first that exists with a
``site_id`` column (the registry's own ``healing_executions`` has none)."""
SITE_COLUMNS = (
    "id", "server_id", "domain", "path", "wp_version", "health_status", "healing_mode",
    "is_healer_enabled", "created_at", "updated_at",
)  # fmt: skip
EXECUTION_COLUMNS = (
    "id", "site_id", "diagnosis_type", "action", "status", "trigger", "triggered_by",
    "execution_logs", "error_message", "backup_path", "started_at", "finished_at",
)  # fmt: skip

LEDGER_KEY = "legacy_migration"
_LEDGER_FORMAT = 1
_LEDGER_CHUNK = 1000  # ledger rows per setting: each value stays under 200 KB
_INSERT_BATCH = 200  # rows per INSERT (x 22 columns: far below SQLite's 32766 variables)
_IN_BATCH = 500  # ids per IN (...)
REGISTRY_SOURCE = "registry"
"""The source a ledger names when the legacy tables were read from the registry's database."""

STACK = "wordpress"
EVIDENCE = "imported from the legacy WordPress healer (wp_sites)"
LEGACY_ACTOR = "legacy-healer"
"""``triggered_by`` of an imported execution whose legacy row names nobody."""
LOG_STEP = "log kept by the legacy healer"
IMPORTED_RISK = RiskLevel.HIGH
"""The legacy healer recorded no risk: unknown counts as needing a person."""

# The legacy healer's enums (its Prisma schema), plus the plan's names where they differ, and
# what each becomes. Never more permissive than the legacy healer was.
HEALTH_MAP: Mapping[str, HealthStatus] = MappingProxyType({
    "UNKNOWN": HealthStatus.UNKNOWN,
    "HEALTHY": HealthStatus.HEALTHY,
    "DEGRADED": HealthStatus.DEGRADED,
    "MAINTENANCE": HealthStatus.DEGRADED,  # serving a maintenance page: up, not well
    "DOWN": HealthStatus.CRITICAL,
    "CRITICAL": HealthStatus.CRITICAL,
    "HEALING": HealthStatus.UNKNOWN,  # mid-heal: the next diagnosis decides
})  # fmt: skip
MODE_MAP: Mapping[str, HealingMode] = MappingProxyType({
    "MANUAL": HealingMode.MANUAL,
    "SEMI_AUTO": HealingMode.SUPERVISED,
    "SUPERVISED": HealingMode.SUPERVISED,
    "FULL_AUTO": HealingMode.AUTO,
    "AUTO": HealingMode.AUTO,
})  # fmt: skip
TRIGGER_MAP: Mapping[str, HealingMode] = MappingProxyType({
    "MANUAL": HealingMode.MANUAL,
    "SEARCH": HealingMode.MANUAL,
    "SEMI_AUTO": HealingMode.SUPERVISED,
    "FULL_AUTO": HealingMode.AUTO,
})  # fmt: skip
STATUS_MAP: Mapping[str, ExecutionStatus] = MappingProxyType({
    "PENDING": ExecutionStatus.PENDING_APPROVAL,  # not finished, nothing touched yet
    "ANALYZING": ExecutionStatus.PENDING_APPROVAL,
    "DIAGNOSED": ExecutionStatus.PENDING_APPROVAL,
    "APPROVED": ExecutionStatus.PENDING_APPROVAL,
    "HEALING": ExecutionStatus.INTERRUPTED,  # may be half-done: its outcome is unknown here
    "VERIFYING": ExecutionStatus.INTERRUPTED,
    "SUCCESS": ExecutionStatus.SUCCEEDED,
    "FAILED": ExecutionStatus.FAILED,
    "SKIPPED": ExecutionStatus.REFUSED,  # a person cancelled it; nothing touched
    "ROLLED_BACK": ExecutionStatus.ROLLED_BACK,
})  # fmt: skip


# --------------------------------------------------------------------------------------------
# Legacy rows and their values (pure)


def _pick(value: object, choices: Mapping[str, T], column: str) -> T:
    if isinstance(value, str) and value in choices:
        return choices[value]
    raise ValueError(f"unknown {column} {value!r} (known: {', '.join(choices)})")


def map_health(value: object) -> HealthStatus:
    """The health a legacy ``health_status`` becomes; ValueError for an unknown one."""
    return _pick(value, HEALTH_MAP, "health_status")


def map_mode(value: object) -> HealingMode:
    """The healing mode a legacy ``healing_mode`` becomes; ValueError for an unknown one."""
    return _pick(value, MODE_MAP, "healing_mode")


def map_trigger(value: object) -> HealingMode:
    """The mode a legacy execution's ``trigger`` becomes; ValueError for an unknown one."""
    return _pick(value, TRIGGER_MAP, "trigger")


def map_status(value: object) -> ExecutionStatus:
    """The status a legacy execution's ``status`` becomes; ValueError for an unknown one."""
    return _pick(value, STATUS_MAP, "status")


def normalise_path(path: str) -> str:
    """An absolute path without repeated or trailing slashes: one spelling per directory.

    :raises ValueError: when it is not absolute or has ``.`` or ``..`` in it.
    """
    if not path.startswith("/"):
        raise ValueError(f"path {path!r} is not absolute")
    if "//" not in path and "/." not in path and (path == "/" or not path.endswith("/")):
        return path  # the common case, without splitting
    parts = [part for part in path.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise ValueError(f"path {path!r} has '.' or '..' in it")
    return "/" + "/".join(parts)


def _optional_text(values: Mapping[str, Any], column: str, max_length: int) -> str | None:
    value = values.get(column)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{column} is not text: {value!r}")
    # ASCII without NUL is stored as it is; anything else must survive display_text.
    if (not value.isascii() or "\x00" in value) and display_text(value) != value:
        raise ValueError(
            f"{column} holds what the registry cannot store exactly (NUL or undecodable "
            f"bytes): {display_text(value)!r}"
        )
    if len(value) > max_length:
        raise ValueError(f"{column} is longer than {max_length} characters")
    return value


def _text(values: Mapping[str, Any], column: str, max_length: int) -> str:
    value = _optional_text(values, column, max_length)
    if not value:
        raise ValueError(f"{column} is empty")
    return value


def _flag(values: Mapping[str, Any], column: str) -> bool:
    value = values.get(column)
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise ValueError(f"{column} is not a boolean: {value!r}")


def _time(values: Mapping[str, Any], column: str) -> dt.datetime:
    value = values.get(column)
    parsed = parse_timestamp(value)
    if parsed is None:
        raise ValueError(f"{column} is not a timestamp: {value!r}")
    return parsed


_LONG = 2**20  # text columns without a limit of their own


@attrs.frozen(kw_only=True)
class LegacySite:
    """A ``wp_sites`` row that can be imported, its values as the legacy table holds them."""

    id: str
    server_id: str
    domain: str | None
    path: str
    wp_version: str | None
    health_status: str
    healing_mode: str
    healer_enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime


def parse_site(values: Mapping[str, Any]) -> LegacySite:
    """The importable site in a ``wp_sites`` row.

    :raises ValueError: why the row cannot be imported.
    """
    site = LegacySite(
        id=_text(values, "id", 36),
        server_id=_text(values, "server_id", 255),
        domain=_optional_text(values, "domain", 255),
        path=_text(values, "path", _LONG),
        wp_version=_optional_text(values, "wp_version", 100),
        health_status=values.get("health_status"),  # type: ignore[arg-type]  # checked below
        healing_mode=values.get("healing_mode"),  # type: ignore[arg-type]  # checked below
        healer_enabled=_flag(values, "is_healer_enabled"),
        created_at=_time(values, "created_at"),
        updated_at=_time(values, "updated_at"),
    )
    map_health(site.health_status)
    map_mode(site.healing_mode)
    normalise_path(site.path)
    return site


@attrs.frozen(kw_only=True)
class LegacyExecution:
    """A legacy execution row that can be imported, its values as the legacy table holds them."""

    id: str
    site_id: str
    diagnosis_type: str
    action: str
    status: str
    trigger: str
    triggered_by: str | None
    execution_logs: str | None
    error_message: str | None
    backup_path: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None


def parse_execution(values: Mapping[str, Any]) -> LegacyExecution:
    """The importable execution in a legacy executions row.

    :raises ValueError: why the row cannot be imported.
    """
    finished = values.get("finished_at")
    execution = LegacyExecution(
        id=_text(values, "id", 36),
        site_id=_text(values, "site_id", 36),
        diagnosis_type=_text(values, "diagnosis_type", 255),
        action=_text(values, "action", 255),
        status=values.get("status"),  # type: ignore[arg-type]  # checked below
        trigger=values.get("trigger"),  # type: ignore[arg-type]  # checked below
        triggered_by=_optional_text(values, "triggered_by", 255),
        execution_logs=_optional_text(values, "execution_logs", _LONG * 16),
        error_message=_optional_text(values, "error_message", _LONG),
        backup_path=_optional_text(values, "backup_path", _LONG),
        started_at=_time(values, "started_at"),
        finished_at=None if finished is None else _time(values, "finished_at"),
    )
    map_status(execution.status)
    map_trigger(execution.trigger)
    return execution


def _path_key(root: str) -> str:
    return hashlib.sha256(os.fsencode(root)).hexdigest()


def application_columns(site: LegacySite, server_id: str) -> dict[str, Any]:
    """The ``applications`` row a site becomes, on the registry server ``server_id``.

    The legacy values that a column cannot carry (the raw health and mode, the legacy server
    id, a path spelt otherwise) are kept in ``metadata["legacy"]``.
    """
    root = normalise_path(site.path)
    legacy: dict[str, Any] = {
        "table": SITES_TABLE,
        "server_id": site.server_id,
        "health_status": site.health_status,
        "healing_mode": site.healing_mode,
    }
    if root != site.path:
        legacy["path"] = site.path
    return {
        "id": site.id,
        "server": server_id,
        "domain": site.domain,
        "path": root,
        "path_raw": os.fsencode(root),
        "path_key": _path_key(root),
        "tech_stack": STACK,
        "tech_stack_version": site.wp_version,
        # The legacy healer knew it was WordPress: pin the stack; detection keeps the version
        # current as WordPress updates itself.
        "detection_method": DetectionMethod.HYBRID.value,
        "detection_confidence": 1.0,
        "detection_evidence": [EVIDENCE],
        "health_status": map_health(site.health_status).value,
        "health_score": 0,
        "healing_mode": map_mode(site.healing_mode).value,
        "is_healer_enabled": site.healer_enabled,
        "metadata": {"legacy": legacy},
        "created_at": site.created_at,
        "updated_at": site.updated_at,
    }


def site_from_application(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``wp_sites`` row an imported application stands for (its :data:`SITE_COLUMNS`), or
    None when the application does not carry one consistently."""
    metadata = row.get("metadata")
    legacy = metadata.get("legacy") if isinstance(metadata, Mapping) else None
    if not isinstance(legacy, Mapping) or legacy.get("table") != SITES_TABLE:
        return None
    try:
        root = os.fsdecode(bytes(row["path_raw"]))
        path = legacy.get("path", root)
        consistent = (
            row["tech_stack"] == STACK
            and row["path"] == root
            and row["path_key"] == _path_key(root)
            and normalise_path(path) == root
            and row["health_status"] == map_health(legacy["health_status"]).value
            and row["healing_mode"] == map_mode(legacy["healing_mode"]).value
        )
        site = {
            "id": row["id"],
            "server_id": legacy["server_id"],
            "domain": row["domain"],
            "path": path,
            "wp_version": row["tech_stack_version"],
            "health_status": legacy["health_status"],
            "healing_mode": legacy["healing_mode"],
            "is_healer_enabled": bool(row["is_healer_enabled"]),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
    except (KeyError, TypeError, ValueError):
        return None
    return site if consistent else None


def execution_columns(execution: LegacyExecution, table: str) -> dict[str, Any]:
    """The ``healing_executions`` row a legacy execution becomes, pointing at the application
    that keeps its site's id. What no column carries is kept in ``action["legacy"]``."""
    logs = execution.execution_logs
    steps = () if logs is None else (StepRecord(index=0, description=LOG_STEP, output=logs),)
    return {
        "id": execution.id,
        "application": execution.site_id,
        "action_name": execution.action,
        "check_name": execution.diagnosis_type,
        "risk": IMPORTED_RISK.value,
        "status": map_status(execution.status).value,
        "fingerprint": "",
        "mode": map_trigger(execution.trigger).value,
        "triggered_by": execution.triggered_by or LEGACY_ACTOR,
        "started_at": execution.started_at,
        "finished_at": execution.finished_at,
        "created_at": execution.started_at,
        "steps": serde.unstructure(list(steps)),
        "backup_location": execution.backup_path,
        "backup_id": None,
        "rolled_back": execution.status == "ROLLED_BACK",
        "error": execution.error_message,
        "process": None,
        "action": {
            "name": execution.action,
            "legacy": {
                "table": table,
                "status": execution.status,
                "trigger": execution.trigger,
                "triggered_by": execution.triggered_by,
            },
        },
    }


def execution_from_row(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The legacy execution an imported ``healing_executions`` row stands for (its
    :data:`EXECUTION_COLUMNS`), or None when the row does not carry one consistently."""
    action = row.get("action")
    legacy = action.get("legacy") if isinstance(action, Mapping) else None
    if not isinstance(action, Mapping) or not isinstance(legacy, Mapping):
        return None
    try:
        steps = row["steps"]
        if steps and (len(steps) != 1 or steps[0]["description"] != LOG_STEP):
            return None
        consistent = (
            row["status"] == map_status(legacy["status"]).value
            and row["mode"] == map_trigger(legacy["trigger"]).value
            and row["risk"] == IMPORTED_RISK.value
            and bool(row["rolled_back"]) == (legacy["status"] == "ROLLED_BACK")
            and row["triggered_by"] == (legacy["triggered_by"] or LEGACY_ACTOR)
            and row["created_at"] == row["started_at"]
            and action.get("name") == row["action_name"]
        )
        execution = {
            "id": row["id"],
            "site_id": row["application"],
            "diagnosis_type": row["check_name"],
            "action": row["action_name"],
            "status": legacy["status"],
            "trigger": legacy["trigger"],
            "triggered_by": legacy["triggered_by"],
            "execution_logs": steps[0]["output"] if steps else None,
            "error_message": row["error"],
            "backup_path": row["backup_location"],
            "started_at": row["started_at"],
            "finished_at": row["finished_at"],
        }
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return execution if consistent else None
