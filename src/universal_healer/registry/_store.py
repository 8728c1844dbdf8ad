"""The Registry service: the only code that reads or writes the registry database."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import peewee

from universal_healer.exceptions import ApplicationNotFoundError
from universal_healer.model import (
    Application,
    CheckResult,
    DetectionMethod,
    HealingMode,
    HealthStatus,
    utcnow,
)
from universal_healer.registry._approvals import ApprovalsAndBackups
from universal_healer.registry._controls import HealingControls
from universal_healer.registry._database import (
    connect_database,
    default_database_url,
    redact_url,
)
from universal_healer.registry._executions import ExecutionHistory
from universal_healer.registry._plugins import PluginStates
from universal_healer.registry._records import (
    AuditEntry,
    BreakerRecord,
    application_from_row,
    audit_entry_from_row,
    breaker_record_from_row,
    check_result_from_row,
    check_result_to_row,
    new_id,
    raw_path,
    require_aware,
)
from universal_healer.registry._servers import ServerInventory
from universal_healer.registry.migrations import migrate
from universal_healer.registry.models import (
    ApplicationRow,
    AuditLogRow,
    DiagnosticResultRow,
    ServerRow,
)

__all__ = ["Registry", "open_registry"]


def open_registry(url: str | None = None) -> Registry:
    """Open the registry at ``url`` and bring its schema up to date.

    :param url: a database URL (see :func:`~universal_healer.registry.connect_database`);
        None means :func:`~universal_healer.registry.default_database_url`.
    :raises RegistryError: when the database cannot be reached or migrated, or its schema is
        newer than this code.
    """
    url = default_database_url() if url is None else url
    database = connect_database(url)
    try:
        migrate(database)
    except BaseException:
        database.close()
        raise
    return Registry(database, redact_url(url))


@attrs.define
class Registry(
    ServerInventory, HealingControls, ExecutionHistory, ApprovalsAndBackups, PluginStates
):
    """Servers, applications, diagnoses, plugins and the audit log, kept in one database;
    and what healing needs: executions, approvals, backups, pauses, locks and secrets.

    Get one with :func:`open_registry` and close it when done (or use it as a context
    manager). Methods that take ``app_id`` want an exact id (resolve a prefix with
    :meth:`get_application` first) and raise :class:`ApplicationNotFoundError` for an unknown
    one. Every datetime in and out is aware UTC. Database failures raise :class:`RegistryError`.

    The methods are grouped by concern in mixins: servers (``_servers.py``), pause, heal lock,
    settings and secrets (``_controls.py``), executions and check history
    (``_executions.py``), approvals and backups (``_approvals.py``), plugins (``_plugins.py``).
    """

    # ----------------------------------------------------------------------------------------
    # Applications

    def upsert_application(
        self,
        *,
        server: str,
        path: str,
        stack: str,
        stack_version: str | None,
        confidence: float,
        evidence: Sequence[str],
        domain: str | None = None,
    ) -> Application:
        """Record what detection found at ``path`` on ``server``; return the application.

        The row for (server, path) is created, or updated keeping its id. An operator's pin
        wins over detection: under MANUAL the stack, version and confidence stay as pinned;
        under HYBRID the stack stays and the version is taken, but only when detection agrees
        on the stack (another stack's version would be wrong). The evidence is always taken,
        the domain when given. A new application starts UNKNOWN, in MANUAL healing mode, with
        the healer disabled.

        :param server: the server's name (see :meth:`ensure_server`).
        :param path: the application root; may carry undecodable bytes as surrogate escapes.
        :param stack: a stack id; one no installed plugin declares is kept as it is.
        :raises RegistryError: when the server is unknown.
        :raises ValueError: when ``path`` is empty or ``confidence`` is outside [0, 1].
        """
        raw = raw_path(path)
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"confidence must be within [0, 1], got {confidence!r}")
        key = hashlib.sha256(raw).hexdigest()

        def upsert() -> str:
            now = utcnow()
            server_id = self._server_id(server)
            row = self._one(
                ApplicationRow.select().where(
                    (ApplicationRow.server == server_id) & (ApplicationRow.path_key == key)
                )
            )
            if row is None:
                app_id = new_id()
                ApplicationRow.insert(
                    id=app_id,
                    server=server_id,
                    domain=domain,
                    path=path,
                    path_raw=raw,
                    path_key=key,
                    tech_stack=stack,
                    tech_stack_version=stack_version,
                    detection_method=DetectionMethod.AUTO.value,
                    detection_confidence=confidence,
                    detection_evidence=list(evidence),
                    health_status=HealthStatus.UNKNOWN.value,
                    health_score=0,
                    healing_mode=HealingMode.MANUAL.value,
                    is_healer_enabled=False,
                    metadata={},
                    created_at=now,
                    updated_at=now,
                ).execute(self._db)
                return app_id
            changes: dict[str, Any] = {"detection_evidence": list(evidence)}
            if domain is not None:
                changes["domain"] = domain
            method = DetectionMethod(row.detection_method)
            if method is DetectionMethod.AUTO:
                changes.update(
                    tech_stack=stack,
                    tech_stack_version=stack_version,
                    detection_confidence=confidence,
                )
            elif method is DetectionMethod.HYBRID and stack == row.tech_stack:
                changes["tech_stack_version"] = stack_version
            self._update_application(row.id, **changes)
            return row.id

        with self._guard(f"recording the application at {path!r}"):
            return self._get_exact(self._retrying(upsert))

    def _rows(self) -> peewee.ModelSelect[ApplicationRow]:
        return ApplicationRow.select(ApplicationRow, ServerRow).join(ServerRow)

    def _get_exact(self, app_id: str) -> Application:
        row = self._one(self._rows().where(ApplicationRow.id == app_id))
        if row is None:
            raise ApplicationNotFoundError(app_id)
        return application_from_row(row)

    def get_application(self, id_or_prefix: str) -> Application:
        """The application with this id, or whose id alone starts with this prefix.

        Like git's abbreviated hashes: a prefix needs at least four characters and is not case
        sensitive.

        :raises ApplicationNotFoundError: when nothing matches, or more than one application
            does (their ids are in ``matches``).
        """
        with self._guard("reading an application"):
            ids = self._matching_ids(ApplicationRow, id_or_prefix)
            if len(ids) != 1:
                raise ApplicationNotFoundError(id_or_prefix, matches=ids)
            return self._get_exact(ids[0])

    def list_applications(
        self,
        *,
        server: str | None = None,
        stack: str | None = None,
        health: HealthStatus | None = None,
    ) -> list[Application]:
        """Applications matching every filter given, ordered by server name, then path."""
        query = self._rows()
        if server is not None:
            query = query.where(ServerRow.name == server)
        if stack is not None:
            query = query.where(ApplicationRow.tech_stack == stack)
        if health is not None:
            query = query.where(ApplicationRow.health_status == health.value)
        with self._guard("listing applications"):
            apps = [application_from_row(row) for row in query.bind(self._db)]
        # Sorted here: the three databases collate text differently; bytes sort the same.
        return sorted(apps, key=lambda app: (app.server, os.fsencode(app.path)))

    def set_override(
        self, app_id: str, *, stack: str, version: str | None, method: DetectionMethod
    ) -> None:
        """Pin an application's stack as an operator decided.

        MANUAL pins stack and version; HYBRID pins the stack and lets detection fill in the
        version; both set the confidence to 1. AUTO removes the pin: the stack and version
        given stand until the next detection replaces them.
        """
        changes: dict[str, Any] = {
            "detection_method": method.value,
            "tech_stack": stack,
            "tech_stack_version": version,
        }
        if method is not DetectionMethod.AUTO:
            changes["detection_confidence"] = 1.0
        with self._guard("pinning a stack"), self._db.atomic():
            self._update_application(app_id, **changes)

    def set_healing_mode(self, app_id: str, mode: HealingMode) -> None:
        """Set how much the healer may do on its own for this application."""
        with self._guard("setting a healing mode"), self._db.atomic():
            self._update_application(app_id, healing_mode=mode.value)

    def set_app_metadata(self, app_id: str, changes: Mapping[str, Any]) -> None:
        """Merge ``changes`` into the application's metadata (a key set to None is removed).

        Metadata holds operator settings plugins read, such as ``cache_dirs``; never secrets
        (those go through :meth:`set_app_secrets`, encrypted).
        """
        with self._guard("setting application metadata"), self._db.atomic():
            current = dict(self._get_exact(app_id).metadata)
            for key, value in changes.items():
                if value is None:
                    current.pop(key, None)
                else:
                    current[key] = value
            self._update_application(app_id, metadata=current)

    # ----------------------------------------------------------------------------------------
    # Diagnoses

    def record_diagnosis(
        self,
        app_id: str,
        results: Sequence[CheckResult],
        *,
        health_score: int,
        health_status: HealthStatus,
        at: dt.datetime,
    ) -> str:
        """Store one diagnosis: its results under a new run id, and the app's new health.

        Both are written in one transaction.

        :param at: when the diagnosis ran (aware); it becomes the app's ``last_health_check``.
        :returns: the run id.
        """
        require_aware(at, "at")
        run_id = new_id()
        rows = [check_result_to_row(r, app_id=app_id, run_id=run_id, at=at) for r in results]
        with self._guard("recording a diagnosis"), self._db.atomic():
            self._update_application(
                app_id,
                health_score=health_score,
                health_status=health_status.value,
                last_health_check=at,
                last_run_id=run_id,
            )
            for batch in peewee.chunked(rows, 100):
                DiagnosticResultRow.insert_many(batch).execute(self._db)
        return run_id

    def latest_results(self, app_id: str) -> tuple[CheckResult, ...]:
        """The results of the diagnosis recorded last, by check name; empty when none was."""
        with self._guard("reading diagnostic results"):
            app = self._one(
                ApplicationRow.select(ApplicationRow.last_run_id).where(ApplicationRow.id == app_id)
            )
            if app is None:
                raise ApplicationNotFoundError(app_id)
            if app.last_run_id is None:
                return ()
            query = (
                DiagnosticResultRow.select()
                .where(DiagnosticResultRow.run_id == app.last_run_id)
                .order_by(DiagnosticResultRow.check_name, DiagnosticResultRow.id)
            )
            return tuple(check_result_from_row(row) for row in query.bind(self._db))

    # ----------------------------------------------------------------------------------------
    # Audit log

    def audit(self, actor: str, action: str, target: str, details: Mapping[str, Any]) -> None:
        """Append a line to the audit log, stamped with the current time."""
        with self._guard("writing the audit log"):
            AuditLogRow.insert(
                at=utcnow(), actor=actor, action=action, target=target, details=dict(details)
            ).execute(self._db)

    def audit_entries(self, limit: int = 100) -> list[AuditEntry]:
        """The latest ``limit`` audit log lines, newest first."""
        with self._guard("reading the audit log"):
            query = AuditLogRow.select().order_by(AuditLogRow.id.desc()).limit(limit)
            return [audit_entry_from_row(row) for row in query.bind(self._db)]

    # ----------------------------------------------------------------------------------------
    # Circuit breaker

    def save_breaker_state(
        self,
        app_id: str,
        state_json: Mapping[str, Any] | None,
        current_attempts: int,
        last_attempt: dt.datetime | None,
    ) -> None:
        """Persist the breaker's JSON state and attempt counters for an application."""
        require_aware(last_attempt, "last_attempt")
        with self._guard("saving a breaker state"), self._db.atomic():
            self._update_application(
                app_id,
                breaker_state=None if state_json is None else dict(state_json),
                current_healing_attempts=current_attempts,
                last_healing_attempt=last_attempt,
            )

    def load_breaker_state(self, app_id: str) -> BreakerRecord:
        """The breaker's persisted state for an application, with the app's limits."""
        with self._guard("loading a breaker state"):
            row = self._one(ApplicationRow.select().where(ApplicationRow.id == app_id))
        if row is None:
            raise ApplicationNotFoundError(app_id)
        return breaker_record_from_row(row)
