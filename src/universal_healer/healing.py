"""The healing executor: breaker → backup → steps → verify → rollback → record.

This is the part that can break someone's site, so it is built like a database transaction:
every decision and step is recorded, every change is protected by a backup or refused, and a
failure restores the backup and checks the restore. One execution runs at a time per
application, across processes (a compare-and-set lock in the registry).

The decisions themselves are pure and live elsewhere: :mod:`universal_healer.policy` (mode x
risk), :mod:`universal_healer.guards` (persistence, flapping, pause, dependencies) and
:mod:`universal_healer.breaker`. The clock is injected, so tests move time instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence

import attrs

from universal_healer import breaker, guards, serde
from universal_healer._executor import (
    ActionRequest,
    Executor,
    artifact_of,
    describe_step,
    process_alive,
)
from universal_healer.backup import BackupStrategy, FileSetBackup
from universal_healer.diagnosis import Diagnosis, diagnose
from universal_healer.exceptions import (
    AuthenticationError,
    BackupError,
    HostUnreachableError,
    RemoteError,
    StrategyError,
)
from universal_healer.executions import Approval, ApprovalStatus, Execution, ExecutionStatus
from universal_healer.hosts.base import Host
from universal_healer.metrics import Metrics, default_metrics
from universal_healer.model import (
    Application,
    CheckResult,
    HealingAction,
    HealingMode,
    PlannedAction,
    RiskLevel,
    utcnow,
)
from universal_healer.plugins import PluginManager
from universal_healer.policy import needs_backup
from universal_healer.registry import Registry
from universal_healer.secrets import SecretBox, redact_tree

__all__ = [
    "DryRunAction",
    "HealReport",
    "HealSettings",
    "Healer",
    "Skipped",
]

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
HostResolver = Callable[[str], Host]


@attrs.frozen(kw_only=True)
class HealSettings:
    """Knobs of the executor, with the plan's and the issue's defaults."""

    min_consecutive: int = 2  # a finding must hold this many diagnoses before auto-healing
    flap_limit: int = 3  # successful heals of one finding inside flap_window before we stop
    flap_window: dt.timedelta = dt.timedelta(hours=24)
    approval_ttl: dt.timedelta = dt.timedelta(hours=24)
    max_reopens: int = 3  # half-open failures in a row before the breaker holds the app
    backup_root: str = "/var/backups/universal-healer"
    keep_backups: int = 5  # per application, the newest are always kept
    backup_max_age: dt.timedelta = dt.timedelta(days=14)  # older ones beyond those are pruned
    output_cap: int = 16 * 1024  # characters of step output kept per step


@attrs.frozen(kw_only=True)
class Skipped:
    """An action that did not run, and the rule that stopped it."""

    action: str
    check: str
    rule: str
    reason: str


@attrs.frozen(kw_only=True)
class DryRunAction:
    """What a heal would do for one action, without doing it."""

    action: str
    check: str
    risk: RiskLevel
    host: str
    steps: tuple[str, ...]
    backup: str | None
    would_run: bool
    reason: str


@attrs.frozen(kw_only=True)
class HealReport:
    """The outcome of one heal request for one application."""

    app: Application
    diagnosis: Diagnosis | None
    executions: tuple[Execution, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    pending: tuple[Approval, ...] = ()
    dry_run: tuple[DryRunAction, ...] = ()
    host_fault: str | None = None


@attrs.define
class Healer:
    """Carries out healing actions for applications in the registry.

    :param hosts: gives the Host of a server by name.
    :param clock: the only source of "now" (tests pass a fake).
    """

    registry: Registry
    manager: PluginManager
    hosts: HostResolver
    box: SecretBox | None = None
    settings: HealSettings = attrs.field(factory=HealSettings)
    clock: Clock = utcnow
    metrics: Metrics = attrs.field(factory=default_metrics)
    executor: Executor = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.executor = Executor(
            registry=self.registry,
            manager=self.manager,
            clock=self.clock,
            metrics=self.metrics,
            backup_root=self.settings.backup_root,
            output_cap=self.settings.output_cap,
            max_reopens=self.settings.max_reopens,
            keep_backups=self.settings.keep_backups,
            backup_max_age=self.settings.backup_max_age,
        )

    # -- start-up ---------------------------------------------------------------------------

    def recover_interrupted(self, *, actor: str = "healer") -> tuple[Execution, ...]:
        """Mark executions whose process died mid-run as INTERRUPTED, release their locks and
        say where their backups are. Never re-runs anything."""
        recovered: list[Execution] = []
        for execution in self.registry.executions_with_status(ExecutionStatus.RUNNING):
            if execution.process is None or process_alive(execution.process) is not False:
                continue
            backup_note = "no backup was taken"
            if execution.backup_id:
                backup = self.registry.get_backup(execution.backup_id)
                backup_note = (
                    f"backup {backup.id[:8]} at {backup.location} on {backup.host} restores it: "
                    f"healer rollback {execution.id[:8]}"
                )
            error = (
                "the healer stopped while this execution ran; the application may be "
                f"half-changed; {backup_note}"
            )
            done = attrs.evolve(
                execution,
                status=ExecutionStatus.INTERRUPTED,
                finished_at=self.clock(),
                error=error,
            )
            self.registry.update_execution(done)
            self.registry.release_heal_lock(execution.app_id, execution.id)
            self._count_interrupted_as_failure(execution.app_id)
            self.registry.audit(actor, "execution_interrupted", execution.app_id, {
                "execution": execution.id, "backup": execution.backup_id,
            })  # fmt: skip
            log.warning("execution %s was interrupted: %s", execution.id, error)
            recovered.append(done)
        return tuple(recovered)

    def _count_interrupted_as_failure(self, app_id: str) -> None:
        """An interrupted attempt counts as failed, so a half-open breaker re-opens rather
        than waiting forever for a probe that will never report."""
        stored = self.registry.load_breaker_state(app_id)
        if not stored.state:
            return
        state = breaker.state_from_json(stored.state)
        if state.status not in (breaker.BreakerStatus.CLOSED, breaker.BreakerStatus.HALF_OPEN):
            return
        policy = breaker.BreakerPolicy(
            max_attempts=stored.max_attempts,
            cooldown_s=stored.cooldown_s,
            max_reopens=self.settings.max_reopens,
        )
        after = breaker.record(state, breaker.Outcome.FAILURE, self.clock(), policy)
        self.registry.save_breaker_state(
            app_id, breaker.state_to_json(after), len(after.failures), after.last_attempt
        )

    # -- the request ------------------------------------------------------------------------

    async def heal(
        self,
        app_id: str,
        *,
        mode: HealingMode | None = None,
        approve: Sequence[str] = (),
        dry_run: bool = False,
        actor: str = "healer",
    ) -> HealReport:
        """Diagnose ``app_id`` and carry out what the policy, the guards and the approvals allow.

        :param approve: action names a person approves for this request (``--approve``); a
            CRITICAL action runs only when named here or in a stored approval.
        :param dry_run: report what would run, on which host, with which backup; change
            nothing (not even the registry).
        """
        app = self.registry.get_application(app_id)
        host = self.hosts(app.server)
        try:
            await host.run(("true",), timeout=30)
        except (HostUnreachableError, AuthenticationError) as err:
            # A host fault is not the application's: it spends no healing budget.
            if not dry_run:
                self.registry.audit(actor, "heal_host_fault", app.id, {"error": str(err)})
            return HealReport(app=app, diagnosis=None, host_fault=str(err))
        secrets = self.registry.get_app_secrets(app.id, self.box) if self.box else {}
        diagnosis = await diagnose(
            host, app, self.manager, secrets=secrets, mode=mode or app.healing_mode
        )
        if not dry_run and diagnosis.note is None:
            self.registry.record_diagnosis(
                app.id,
                diagnosis.results,
                health_score=diagnosis.health_score,
                health_status=diagnosis.health_status,
                at=diagnosis.started_at,
            )
        report = _ReportBuilder(
            app=app,
            diagnosis=diagnosis,
            host=host,
            approve=frozenset(approve),
            results={r.check: r for r in diagnosis.results},
            secrets=secrets,
            dry_run=dry_run,
            actor=actor,
        )
        for planned in diagnosis.plan.auto:
            await self._consider(report, planned, automatic=True)
        for planned in diagnosis.plan.needs_approval:
            await self._consider(report, planned, automatic=False)
        return report.build()

    async def _consider(
        self, req: _ReportBuilder, planned: PlannedAction, *, automatic: bool
    ) -> None:
        """Run, refuse, dry-run or ask approval for one planned action."""
        app, action, finding = req.app, planned.action, planned.result
        fingerprint = action.fingerprint(finding)
        approval = self._approval_for(req, action, fingerprint)
        # CRITICAL never runs on policy alone, whatever the mode.
        automatic = automatic and action.risk is not RiskLevel.CRITICAL
        refusal = self._refusal(req, action, fingerprint, finding, automatic=automatic,
                                approved=approval is not None)  # fmt: skip
        if refusal is not None:
            req.skipped.append(Skipped(
                action=action.name, check=action.check, rule=refusal.rule, reason=refusal.reason,
            ))  # fmt: skip
            if req.dry_run:
                req.dry_runs.append(self._dry(req, action, would_run=False, reason=refusal.reason))
            return
        if not automatic and approval is None:
            if req.dry_run:
                reason = f"{planned.reason}; no approval yet"
                req.dry_runs.append(self._dry(req, action, would_run=False, reason=reason))
            else:
                req.pending.append(self._request_approval(req, action, finding, fingerprint))
            return
        if req.dry_run:
            req.dry_runs.append(self._dry(req, action, would_run=True, reason=planned.reason))
            return
        request = ActionRequest(
            app=app,
            host=req.host,
            action=action,
            finding=finding,
            secrets=req.secrets,
            approval=approval,
            backup=self._backup_for(app, action),
            actor=req.actor,
        )
        req.executions.append(await self.executor.execute(request))

    # -- decisions --------------------------------------------------------------------------

    def _refusal(
        self,
        req: _ReportBuilder,
        action: HealingAction,
        fingerprint: str,
        finding: CheckResult,
        *,
        automatic: bool,
        approved: bool,
    ) -> guards.Refusal | None:
        """The first safety rule that stops this action now, if any."""
        app = req.app
        check = next(
            (c for c in self.manager.checks_for(app.stack) if c.name == action.check), None
        )
        refusal = guards.blocked_by_dependency(check.depends_on if check else (), req.results)
        if refusal is not None or approved:
            return refusal  # a person's approval answers the rules below for this one run
        is_paused, why = self.registry.pause_state(app.id)
        history = self.registry.recent_executions(
            app.id, action.check, self.clock() - self.settings.flap_window
        )
        statuses = self.registry.recent_statuses(
            app.id, action.check, self.settings.min_consecutive
        )
        if req.dry_run:  # a dry run records nothing: count the diagnosis it just made
            statuses = (*statuses, finding.status)[-self.settings.min_consecutive :]
        return (
            (guards.paused(is_paused, why) if automatic else None)
            or guards.not_persistent(statuses, self.settings.min_consecutive)
            or guards.flapping(
                history,
                now=self.clock(),
                window=self.settings.flap_window,
                limit=self.settings.flap_limit,
            )
            or guards.unchanged_since_failure(
                history, fingerprint=fingerprint, digest=guards.finding_digest(finding)
            )
        )

    def _approval_for(
        self, req: _ReportBuilder, action: HealingAction, fingerprint: str
    ) -> Approval | None:
        """A valid approval for exactly this action and finding, stored or given now."""
        app, approve, dry_run, actor = req.app, req.approve, req.dry_run, req.actor
        now = self.clock()
        for stored in self.registry.list_approvals(status=ApprovalStatus.APPROVED, app_id=app.id):
            if (
                stored.action_name == action.name
                and stored.fingerprint == fingerprint
                and stored.expires_at > now
            ):
                return stored
        if action.name not in approve:
            return None
        approval = attrs.evolve(
            self._new_approval(req, action, fingerprint, ApprovalStatus.APPROVED),
            decided_at=now,
            decided_by=actor,
        )
        if not dry_run:
            self.registry.create_approval(approval)
            self.registry.audit(actor, "approve", app.id, {
                "approval": approval.id, "action": action.name, "inline": True,
            })  # fmt: skip
        return approval

    def _request_approval(
        self, req: _ReportBuilder, action: HealingAction, finding: CheckResult, fingerprint: str
    ) -> Approval:
        """A pending approval for this exact action and finding (the existing one, if any)."""
        app, actor = req.app, req.actor
        now = self.clock()
        for pending in self.registry.list_approvals(status=ApprovalStatus.PENDING, app_id=app.id):
            if pending.fingerprint == fingerprint and pending.expires_at > now:
                return pending
        approval = self._new_approval(req, action, fingerprint, ApprovalStatus.PENDING)
        self.registry.create_approval(approval)
        self.registry.audit(actor, "approval_requested", app.id, {
            "approval": approval.id, "action": action.name, "risk": action.risk.value,
        })  # fmt: skip
        return approval

    def _new_approval(
        self,
        req: _ReportBuilder,
        action: HealingAction,
        fingerprint: str,
        status: ApprovalStatus,
    ) -> Approval:
        """An approval (request) for this exact action, as of now; its snapshot redacted."""
        now = self.clock()
        return Approval(
            id=str(uuid.uuid4()),
            app_id=req.app.id,
            action_name=action.name,
            check=action.check,
            risk=action.risk,
            fingerprint=fingerprint,
            status=status,
            requested_at=now,
            requested_by=req.actor,
            expires_at=now + self.settings.approval_ttl,
            action=redact_tree(serde.unstructure(action), req.secrets.values()),
        )

    def _backup_for(self, app: Application, action: HealingAction) -> BackupStrategy | None:
        strategy = self.manager.backup_for(app.stack)
        if strategy is None and action.touches:
            strategy = FileSetBackup(paths=action.touches)
        return strategy

    def _dry(
        self, req: _ReportBuilder, action: HealingAction, *, would_run: bool, reason: str
    ) -> DryRunAction:
        app, host = req.app, req.host
        backup = None
        if needs_backup(action):
            strategy = self._backup_for(app, action)
            backup = (
                f"{strategy.name} ({', '.join(strategy.describe(app))}) to "
                f"{self.settings.backup_root}/{app.id}/"
                if strategy
                else "none available: the action would be refused"
            )
        return DryRunAction(
            action=action.name,
            check=action.check,
            risk=action.risk,
            host=host.name,
            steps=tuple(describe_step(step) for step in action.steps),
            backup=backup,
            would_run=would_run,
            reason=reason,
        )

    # -- operator actions -------------------------------------------------------------------

    async def rollback(self, execution_id: str, *, actor: str) -> Execution:
        """Restore the backup an execution took, under the application's heal lock.

        For an execution that succeeded but should not have, or one that was interrupted.
        Returns the execution as recorded afterwards (``rolled_back`` set).
        """
        execution = self.registry.get_execution(execution_id)
        if not execution.backup_id:
            raise StrategyError(f"execution {execution.id[:8]} took no backup: nothing to restore")
        if execution.status is ExecutionStatus.RUNNING:
            raise StrategyError(f"execution {execution.id[:8]} is still running")
        stored = self.registry.get_backup(execution.backup_id)
        app = self.registry.get_application(execution.app_id)
        host = self.hosts(app.server)
        strategy = self._backup_named(app, stored.strategy, execution)
        now = self.clock()
        lock = self.executor.lock(app.id)
        if lock.locked() or not self.registry.acquire_heal_lock(app.id, execution.id, now):
            raise StrategyError(f"application {app.id[:8]} is being healed right now; try later")
        try:
            async with lock:
                await strategy.restore(host, app, artifact_of(stored))
        except (BackupError, RemoteError) as err:
            self.registry.audit(actor, "rollback_failed", app.id, {
                "execution": execution.id, "error": str(err),
            })  # fmt: skip
            raise
        finally:
            self.registry.release_heal_lock(app.id, execution.id)
        self.registry.mark_backup_restored(stored.id, self.clock())
        done = attrs.evolve(execution, rolled_back=True)
        self.registry.update_execution(done)
        self.registry.audit(actor, "rollback", app.id, {
            "execution": execution.id, "backup": stored.id,
        })  # fmt: skip
        return done

    def _backup_named(self, app: Application, name: str, execution: Execution) -> BackupStrategy:
        strategy = self.manager.backup_for(app.stack)
        if strategy is not None and strategy.name == name:
            return strategy
        recorded = execution.action.get("touches")
        touches = tuple(str(p) for p in recorded) if isinstance(recorded, list | tuple) else ()
        if name == FileSetBackup.name and touches:
            return FileSetBackup(paths=touches)
        raise StrategyError(
            f"the backup was taken by {name!r}, which no enabled plugin provides any more"
        )


@attrs.define
class _ReportBuilder:
    """One heal request in progress: its inputs, and the report it builds up."""

    app: Application
    diagnosis: Diagnosis
    host: Host
    approve: frozenset[str]
    results: Mapping[str, CheckResult]
    secrets: Mapping[str, str]
    dry_run: bool
    actor: str
    executions: list[Execution] = attrs.field(factory=list)
    skipped: list[Skipped] = attrs.field(factory=list)
    pending: list[Approval] = attrs.field(factory=list)
    dry_runs: list[DryRunAction] = attrs.field(factory=list)

    def build(self) -> HealReport:
        return HealReport(
            app=self.app,
            diagnosis=self.diagnosis,
            executions=tuple(self.executions),
            skipped=tuple(self.skipped),
            pending=tuple(self.pending),
            dry_run=tuple(self.dry_runs),
        )
