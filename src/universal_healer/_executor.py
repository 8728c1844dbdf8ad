"""Running one healing action: lock → breaker → backup → steps → verify → rollback → record.

The :class:`Executor` is the only code that changes an application. Everything it does is
recorded as it happens, so a crash leaves an execution that says how far it got (and a later
start marks it INTERRUPTED, with the backup that restores it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping

import attrs

from universal_healer import breaker, guards, serde
from universal_healer.backup import BackupStrategy, select_for_pruning
from universal_healer.diagnosis import diagnose
from universal_healer.exceptions import (
    AuthenticationError,
    BackupError,
    HostUnreachableError,
    RemoteError,
)
from universal_healer.executions import (
    Approval,
    BackupArtifact,
    BackupRecord,
    Execution,
    ExecutionStatus,
    StepRecord,
)
from universal_healer.hosts.base import Host
from universal_healer.metrics import Metrics
from universal_healer.model import Application, CheckResult, CommandStep, HealingAction, Step
from universal_healer.plugins import PluginManager
from universal_healer.policy import needs_backup
from universal_healer.registry import Registry
from universal_healer.secrets import redact, redact_tree

__all__ = [
    "ActionRequest",
    "Executor",
    "artifact_of",
    "describe_step",
    "process_alive",
    "process_identity",
]

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def process_identity() -> str:
    """``hostname:pid:start`` of this process; the start time tells a reused pid apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_ticks(os.getpid())}"


def _start_ticks(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            # The command name (field 2) may hold spaces; the fields after it are fixed.
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def process_alive(identity: str) -> bool | None:
    """Whether the process named by :func:`process_identity` still runs; None when it ran on
    another machine and cannot be checked from here."""
    hostname, _, rest = identity.partition(":")
    pid_text, _, start = rest.partition(":")
    if hostname != socket.gethostname() or not pid_text.isdigit():
        return None
    return _start_ticks(int(pid_text)) == start


def describe_step(step: Step) -> str:
    """A step as one line for people: the command, or the callable's description."""
    if isinstance(step, CommandStep):
        where = f" (in {step.cwd})" if step.cwd else ""
        return " ".join(step.argv) + where
    return f"[{step.description}]"


@attrs.frozen(kw_only=True)
class ActionRequest:
    """One action to carry out, with everything the executor needs to do it safely.

    :param backup: the strategy protecting the action, or None when none is available (an
        action that needs a backup is then refused).
    """

    app: Application
    host: Host
    action: HealingAction
    finding: CheckResult
    secrets: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    approval: Approval | None = None
    backup: BackupStrategy | None = None
    actor: str = "healer"


@attrs.define
class Executor:
    """Carries out actions one at a time per application, in this process and across
    processes (a compare-and-set lock in the registry)."""

    registry: Registry
    manager: PluginManager
    clock: Clock
    metrics: Metrics
    backup_root: str
    output_cap: int
    max_reopens: int
    keep_backups: int = 5
    backup_max_age: dt.timedelta = dt.timedelta(days=14)
    _locks: dict[str, asyncio.Lock] = attrs.field(factory=dict)

    def lock(self, app_id: str) -> asyncio.Lock:
        """This process's lock for one application."""
        return self._locks.setdefault(app_id, asyncio.Lock())

    async def execute(self, request: ActionRequest) -> Execution:
        """Run one action under the breaker, the lock and the backup; record everything."""
        app, action, finding = request.app, request.action, request.finding
        approval, actor = request.approval, request.actor
        now = self.clock()
        execution = Execution(
            id=str(uuid.uuid4()),
            app_id=app.id,
            action_name=action.name,
            check=action.check,
            risk=action.risk,
            status=ExecutionStatus.RUNNING,
            fingerprint=action.fingerprint(finding),
            mode=app.healing_mode,
            triggered_by=actor,
            started_at=now,
            process=process_identity(),
            action={
                # What was planned, kept for reports: redacted like every record.
                **redact_tree(serde.unstructure(action), request.secrets.values()),
                "finding_digest": guards.finding_digest(finding),
                "approval": approval.id if approval else None,
            },
        )
        lock = self.lock(app.id)
        if lock.locked() or not self.registry.acquire_heal_lock(app.id, execution.id, now):
            holder = self.registry.heal_lock_holder(app.id)
            refused = attrs.evolve(
                execution,
                status=ExecutionStatus.REFUSED,
                finished_at=now,
                error=f"another heal of this application is running (execution {holder})",
                process=None,
            )
            self.registry.create_execution(refused)
            return refused
        async with lock:
            try:
                return await self._run_locked(request, execution)
            finally:
                self.registry.release_heal_lock(app.id, execution.id)

    async def _run_locked(self, request: ActionRequest, execution: Execution) -> Execution:
        app = request.app
        record = self.registry.load_breaker_state(app.id)
        policy = breaker.BreakerPolicy(
            max_attempts=record.max_attempts,
            cooldown_s=record.cooldown_s,
            max_reopens=self.max_reopens,
        )
        before = (
            breaker.state_from_json(record.state)
            if record.state
            else breaker.BreakerState.initial()
        )
        decision = breaker.decide(before, self.clock(), policy)
        if not decision.allowed:
            refused = attrs.evolve(execution, process=None)
            self.registry.create_execution(refused)
            return self._finish(refused, ExecutionStatus.REFUSED_BREAKER, error=decision.reason)
        self.registry.create_execution(execution)
        if request.approval is not None:
            self.registry.use_approval(request.approval.id, execution.id, self.clock())
        self._save_breaker(app, decision.state)

        backup: tuple[BackupStrategy, BackupRecord] | None = None
        if needs_backup(request.action):
            try:
                backup = await self._take_backup(request, execution)
            except (BackupError, RemoteError) as err:
                # Nothing was touched (a host that failed while the backup was taken included):
                # the attempt never happened, so the breaker forgets it.
                self._save_breaker(app, before)
                return self._finish(execution, ExecutionStatus.REFUSED_NO_BACKUP, error=str(err))
            execution = attrs.evolve(execution, backup_id=backup[1].id)
            self.registry.update_execution(execution)

        try:
            steps, failure = await self._run_steps(request, execution)
            execution = attrs.evolve(execution, steps=steps)
            if failure is None:
                failure = await self._verify(request)
        except (HostUnreachableError, AuthenticationError) as err:
            # The host went away mid-run: a host fault spends no healing budget, and the app
            # may be half-changed; say so and where the backup is.
            self._save_breaker(app, before)
            where = f"; backup {backup[1].id[:8]} restores it" if backup else ""
            error = f"host fault during the heal: {err}{where}"
            return self._finish(execution, ExecutionStatus.INTERRUPTED, error=error)

        outcome = breaker.Outcome.SUCCESS if failure is None else breaker.Outcome.FAILURE
        after = breaker.record(decision.state, outcome, self.clock(), policy)
        if breaker.tripped(decision.state, after):
            self.metrics.circuit_breaker_trips_total.labels(stack=app.stack).inc()
        self._save_breaker(app, after)
        done = await self._settle(request, execution, failure, backup)
        if done.status is ExecutionStatus.SUCCEEDED and backup is not None:
            await self._prune_backups(request, backup[0])
        return done

    async def _prune_backups(self, request: ActionRequest, strategy: BackupStrategy) -> None:
        """Apply the retention policy to this application's backups after a success.

        Never touches the backup of a running or interrupted execution; a backup that cannot
        be removed stays listed and is tried again next time.
        """
        app = request.app
        protected = frozenset(
            e.backup_id
            for status in (ExecutionStatus.RUNNING, ExecutionStatus.INTERRUPTED)
            for e in self.registry.executions_with_status(status)
            if e.backup_id
        )
        doomed = select_for_pruning(
            self.registry.list_backups(app.id),
            keep_last=self.keep_backups,
            max_age=self.backup_max_age,
            now=self.clock(),
            protected_ids=protected,
        )
        for record in doomed:
            if record.host != request.host.name:
                continue  # another host's backup is pruned by a heal on that host
            try:
                await strategy.remove(request.host, artifact_of(record))
            except (BackupError, RemoteError) as err:
                log.warning("could not prune backup %s: %s", record.id, err)
                continue
            self.registry.mark_backup_pruned(record.id, self.clock())

    async def _settle(
        self,
        request: ActionRequest,
        execution: Execution,
        failure: str | None,
        backup: tuple[BackupStrategy, BackupRecord] | None,
    ) -> Execution:
        """Close the execution: success, or failure with the backup restored (or not)."""
        if failure is None:
            return self._finish(execution, ExecutionStatus.SUCCEEDED)
        if backup is None:
            return self._finish(execution, ExecutionStatus.FAILED, error=failure)
        strategy, stored = backup
        try:
            await strategy.restore(request.host, request.app, artifact_of(stored))
        except (BackupError, RemoteError) as err:
            error = f"{failure}; restoring the backup failed too: {err}"
            return self._finish(execution, ExecutionStatus.ROLLBACK_FAILED, error=error)
        self.registry.mark_backup_restored(stored.id, self.clock())
        return self._finish(execution, ExecutionStatus.ROLLED_BACK, rolled_back=True, error=failure)

    async def _take_backup(
        self, request: ActionRequest, execution: Execution
    ) -> tuple[BackupStrategy, BackupRecord]:
        app, host = request.app, request.host
        strategy = request.backup
        if strategy is None:
            raise BackupError(
                f"no backup strategy for stack {app.stack!r} and the action names no files: "
                "no backup, no action"
            )
        destination = f"{self.backup_root}/{app.id}/{execution.id}"
        made = await host.run(
            ("install", "-d", "-m", "0700", self.backup_root, destination), timeout=60
        )
        if not made.ok:
            raise BackupError(
                f"cannot create {destination} on {host.name}: "
                f"{made.stderr.decode('utf-8', 'replace').strip()}"
            )
        artifact = await strategy.create(host, app, destination)
        stored = BackupRecord(
            id=str(uuid.uuid4()),
            app_id=app.id,
            execution_id=execution.id,
            strategy=strategy.name,
            host=host.name,
            location=artifact.location,
            size_bytes=artifact.size_bytes,
            sha256=artifact.sha256,
            includes=artifact.includes,
            created_at=self.clock(),
        )
        self.registry.record_backup(stored)
        return strategy, stored

    async def _run_steps(
        self, request: ActionRequest, execution: Execution
    ) -> tuple[tuple[StepRecord, ...], str | None]:
        """Run the steps in order, stopping at the first failure; record each as it ends."""
        host, app = request.host, request.app
        done: list[StepRecord] = []
        hidden = list(request.secrets.values())
        for index, step in enumerate(request.action.steps):
            started_at, started = self.clock(), time.perf_counter()
            if isinstance(step, CommandStep):
                argv = tuple(redact(arg, hidden) for arg in step.argv)
                description = step.description or describe_step(step)
                try:
                    result = await host.run(step.argv, timeout=step.timeout, cwd=step.cwd)
                except (HostUnreachableError, AuthenticationError):
                    raise  # a host fault, handled by the caller
                except RemoteError as err:
                    # A step that ran past its timeout (killed with its children) failed like
                    # any other: the caller restores the backup.
                    record = StepRecord(
                        index=index,
                        description=description,
                        argv=argv,
                        duration_s=time.perf_counter() - started,
                        started_at=started_at,
                        error=redact(str(err), hidden),
                    )
                else:
                    output = (result.stdout + result.stderr).decode("utf-8", "replace")
                    record = StepRecord(
                        index=index,
                        description=description,
                        argv=argv,
                        exit_status=result.exit_status,
                        output=redact(output, hidden)[-self.output_cap :],
                        duration_s=result.duration_s,
                        started_at=started_at,
                        error=None if result.ok else f"exited with status {result.exit_status}",
                    )
            else:
                try:
                    said = await asyncio.wait_for(step.run(host, app), step.timeout)
                    error = None
                except (HostUnreachableError, AuthenticationError):
                    raise
                except TimeoutError:
                    said, error = "", f"timed out after {step.timeout:g} s and was cancelled"
                except Exception as err:  # noqa: BLE001 - a failing step is recorded, not raised
                    said, error = "", f"{type(err).__name__}: {err}"
                record = StepRecord(
                    index=index,
                    description=step.description,
                    output=redact(said, hidden)[-self.output_cap :],
                    duration_s=time.perf_counter() - started,
                    started_at=started_at,
                    error=redact(error, hidden) if error else None,
                )
            done.append(record)
            self.registry.update_execution(attrs.evolve(execution, steps=tuple(done)))
            if not record.ok:
                return tuple(
                    done
                ), f"step {index + 1} ({record.description}) failed: {record.error}"
        return tuple(done), None

    async def _verify(self, request: ActionRequest) -> str | None:
        """Re-run the verifying checks; None when all pass, else what still fails."""
        wanted = set(request.action.checks_to_verify)
        again = await diagnose(
            request.host, request.app, self.manager, secrets=request.secrets, only=wanted
        )
        found = {r.check: r for r in again.results}
        problems = [
            f"{name}: {found[name].status.value} ({found[name].message})"
            if name in found
            else f"{name}: the check is not available to verify with"
            for name in sorted(wanted)
            if name not in found or found[name].status.value != "PASS"
        ]
        return "verification failed: " + "; ".join(problems) if problems else None

    # -- bookkeeping ------------------------------------------------------------------------

    def _save_breaker(self, app: Application, state: breaker.BreakerState) -> None:
        self.registry.save_breaker_state(
            app.id, breaker.state_to_json(state), len(state.failures), state.last_attempt
        )

    def _finish(
        self,
        execution: Execution,
        status: ExecutionStatus,
        *,
        error: str | None = None,
        rolled_back: bool = False,
    ) -> Execution:
        """Record how an execution ended, count it and audit it."""
        done = attrs.evolve(
            execution,
            status=status,
            finished_at=self.clock(),
            error=error,
            rolled_back=rolled_back,
            process=None,
        )
        self.registry.update_execution(done)
        self.metrics.healing_attempts_total.labels(
            stack=self.registry.get_application(execution.app_id).stack,
            action=execution.action_name,
            outcome=status.value,
        ).inc()
        details = {
            "execution": done.id,
            "action": done.action_name,
            "status": status.value,
            "rolled_back": rolled_back,
            "error": error,
        }
        self.registry.audit(done.triggered_by, "execution_finished", execution.app_id, details)
        log.info("execution app=%s action=%s status=%s", done.app_id, done.action_name, status)
        return done


def artifact_of(stored: BackupRecord) -> BackupArtifact:
    """The artifact a stored backup record describes, for restoring it."""
    return BackupArtifact(
        location=stored.location,
        size_bytes=stored.size_bytes,
        sha256=stored.sha256,
        includes=stored.includes,
    )
