"""The healing commands of ``healer``: plan, heal, approvals, executions, rollback, backups,
pause and the breaker. See docs/cli.md for the contract."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from universal_healer import _render, breaker, serde
from universal_healer._cli_common import (
    LOCAL_SERVER,
    ExitCode,
    State,
    emit_json,
    fail,
    handle_errors,
    pass_state,
)
from universal_healer.exceptions import RegistryError, StrategyError
from universal_healer.executions import ApprovalStatus, Execution, ExecutionStatus
from universal_healer.healing import Healer, HealReport
from universal_healer.hosts.base import Host
from universal_healer.hosts.local import LocalHost
from universal_healer.model import HealingMode, utcnow
from universal_healer.secrets import SecretBox

__all__ = ["register"]

ACTOR = "cli"

_MODE = click.Choice([m.value for m in HealingMode], case_sensitive=False)


def _resolver(state: State, box: SecretBox) -> Callable[[str], Host]:
    """Hosts by server name: this machine, or an SSH server from the inventory."""
    made: dict[str, Host] = {}

    def resolve(name: str) -> Host:
        if name not in made:
            if name == LOCAL_SERVER:
                made[name] = LocalHost()
            else:
                from universal_healer.fleet import host_for  # noqa: PLC0415 - SSH only when needed

                spec = state.registry.get_server(name, box)
                made[name] = host_for(spec, box, registry=state.registry)
        return made[name]

    return resolve


def _healer(state: State) -> Healer:
    box = SecretBox.from_environment()
    healer = Healer(
        registry=state.registry,
        manager=state.plugins(),
        hosts=_resolver(state, box),
        box=box,
    )
    for execution in healer.recover_interrupted(actor=ACTOR):
        state.err.print(
            f"[bold red]interrupted:[/bold red] execution {execution.id[:8]} "
            f"({execution.action_name}) {execution.error}",
            highlight=False,
        )
    return healer


def _exit_code(reports: Sequence[HealReport]) -> ExitCode:
    statuses = {e.status for report in reports for e in report.executions}
    if statuses & {ExecutionStatus.ROLLBACK_FAILED, ExecutionStatus.INTERRUPTED}:
        return ExitCode.ROLLBACK_FAILED
    if statuses & {ExecutionStatus.FAILED, ExecutionStatus.ROLLED_BACK}:
        return ExitCode.HEAL_FAILED
    if statuses & {
        ExecutionStatus.REFUSED,
        ExecutionStatus.REFUSED_BREAKER,
        ExecutionStatus.REFUSED_NO_BACKUP,
    }:
        return ExitCode.REFUSED
    if any(report.host_fault for report in reports):
        return ExitCode.PARTIAL
    return ExitCode.OK


def _report_json(report: HealReport) -> dict[str, Any]:
    data: dict[str, Any] = {
        "application": _render.app_json(report.app),
        "host_fault": report.host_fault,
        "health_status": report.diagnosis.health_status.value if report.diagnosis else None,
        "plan": serde.unstructure(report.diagnosis.plan) if report.diagnosis else None,
        "executions": [serde.unstructure(e) for e in report.executions],
        "skipped": [serde.unstructure(s) for s in report.skipped],
        "pending_approvals": [serde.unstructure(a) for a in report.pending],
        "dry_run": [serde.unstructure(d) for d in report.dry_run],
    }
    return data


def _print_execution(console: Console, execution: Execution) -> None:
    style = "green" if execution.status is ExecutionStatus.SUCCEEDED else "bold red"
    what = escape(f"{execution.action_name} ({execution.risk.value}) execution {execution.id[:8]}")
    console.print(f"  [{style}]{execution.status.value}[/{style}] {what}", markup=True)
    for step in execution.steps:
        mark = "ok" if step.ok else "FAILED"
        console.print(f"    step {step.index + 1} {mark}: {step.description}", highlight=False)
    if execution.backup_id:
        rolled = " (restored)" if execution.rolled_back else ""
        console.print(f"    backup {execution.backup_id[:8]}{rolled}", highlight=False)
    if execution.error:
        console.print(f"    {execution.error}", highlight=False, markup=False)


def _print_report(console: Console, report: HealReport) -> None:
    app = report.app
    where = escape(f"{app.stack} at {app.display_path} on {app.server}")
    console.print(f"[bold]{app.id[:8]}[/bold] {where}", markup=True)
    if report.host_fault:
        fault = escape(report.host_fault)
        console.print(f"  [yellow]host fault, nothing done:[/yellow] {fault}", markup=True)
        return
    for dry in report.dry_run:
        verdict = "would run" if dry.would_run else "would not run"
        console.print(f"  {verdict}: {dry.action} ({dry.risk.value}) on {dry.host}: {dry.reason}")
        for index, step in enumerate(dry.steps, 1):
            console.print(f"    step {index}: {step}", highlight=False, markup=False)
        if dry.backup:
            console.print(f"    backup first: {dry.backup}", highlight=False, markup=False)
    for execution in report.executions:
        _print_execution(console, execution)
    for skipped in report.skipped:
        console.print(
            f"  skipped {skipped.action} [{skipped.rule}]: {skipped.reason}", markup=False
        )
    for approval in report.pending:
        console.print(
            f"  needs approval: {approval.action_name} ({approval.risk.value}): "
            f"healer approve {approval.id[:8]}",
            highlight=False,
        )
    if (
        report.diagnosis is not None
        and not (report.executions or report.skipped or report.pending or report.dry_run)
        and not report.diagnosis.plan.cannot_heal
    ):
        console.print("  nothing to heal")
    if report.diagnosis is not None:
        for item in report.diagnosis.plan.cannot_heal:
            console.print(f"  cannot heal {item.result.check}: {item.reason}", highlight=False)


@click.command("plan")
@click.argument("app_id")
@click.option("--mode", type=_MODE, help="Plan as if the application were in this mode.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
@pass_state
@handle_errors
def plan_command(state: State, app_id: str, mode: str | None, as_json: bool) -> None:
    """Show what a heal of APP_ID would do now (a dry run): each action, its risk, the steps on
    which host, the backup first, and why it would or would not run. Changes nothing."""
    healer = _healer(state)
    chosen = HealingMode(mode.upper()) if mode else None
    report = asyncio.run(healer.heal(app_id, mode=chosen, dry_run=True, actor=ACTOR))
    if as_json:
        emit_json(_report_json(report))
    else:
        _print_report(state.out, report)


@click.command("heal")
@click.argument("app_id")
@click.option("--mode", type=_MODE, help="Heal as if the application were in this mode.")
@click.option("--dry-run", is_flag=True, help="Show what would run, change nothing.")
@click.option(
    "--approve",
    "approve",
    multiple=True,
    metavar="ACTION",
    help="Approve this action by name for this run (repeatable). CRITICAL actions run only so.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
@pass_state
@handle_errors
def heal_command(
    state: State,
    *,
    app_id: str,
    mode: str | None,
    dry_run: bool,
    approve: tuple[str, ...],
    as_json: bool,
) -> None:
    """Diagnose APP_ID and carry out what its healing mode, the safety rules and approvals allow,
    each action behind the circuit breaker and a backup, verified and rolled back on failure."""
    healer = _healer(state)
    chosen = HealingMode(mode.upper()) if mode else None
    report = asyncio.run(
        healer.heal(app_id, mode=chosen, approve=approve, dry_run=dry_run, actor=ACTOR)
    )
    if as_json:
        emit_json(_report_json(report))
    else:
        _print_report(state.out, report)
    raise SystemExit(int(_exit_code([report])))


@click.command("approvals")
@click.option("--all", "show_all", is_flag=True, help="Every approval, not only pending ones.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
@pass_state
@handle_errors
def approvals_command(state: State, show_all: bool, as_json: bool) -> None:
    """List approval requests (pending ones by default); expired ones are marked so first."""
    state.registry.expire_approvals(utcnow())
    status = None if show_all else ApprovalStatus.PENDING
    approvals = state.registry.list_approvals(status=status)
    if as_json:
        emit_json([serde.unstructure(a) for a in approvals])
        return
    if not approvals:
        state.out.print("No approvals." if show_all else "No pending approvals.")
    for approval in approvals:
        state.out.print(
            f"{approval.id[:8]}  {approval.status.value:<8} {approval.action_name} "
            f"({approval.risk.value}) for {approval.check} on app {approval.app_id[:8]}, "
            f"expires {approval.expires_at:%Y-%m-%d %H:%M} UTC",
            highlight=False,
        )


def _decide(state: State, approval_id: str, *, approved: bool) -> None:
    try:
        wanted = state.registry.get_approval(approval_id)
    except RegistryError as err:
        fail(state, ExitCode.NOT_FOUND, str(err))
    try:
        approval = state.registry.decide_approval(
            wanted.id, approved=approved, actor=ACTOR, at=utcnow()
        )
    except RegistryError as err:
        fail(state, ExitCode.REFUSED, str(err))
    state.registry.audit(ACTOR, "approve" if approved else "reject", approval.app_id, {
        "approval": approval.id, "action": approval.action_name,
    })  # fmt: skip
    verdict = "approved" if approved else "rejected"
    state.out.print(f"{approval.action_name} on app {approval.app_id[:8]} {verdict}")
    if approved:
        state.out.print(f"run it with: healer heal {approval.app_id[:8]}")


@click.command("approve")
@click.argument("approval_id")
@pass_state
@handle_errors
def approve_command(state: State, approval_id: str) -> None:
    """Approve APPROVAL_ID: the exact action for the exact finding it was requested for, once."""
    _decide(state, approval_id, approved=True)


@click.command("reject")
@click.argument("approval_id")
@pass_state
@handle_errors
def reject_command(state: State, approval_id: str) -> None:
    """Reject APPROVAL_ID."""
    _decide(state, approval_id, approved=False)


@click.command("executions")
@click.argument("app_id", required=False)
@click.option("--limit", default=50, show_default=True, help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
@pass_state
@handle_errors
def executions_command(state: State, app_id: str | None, limit: int, as_json: bool) -> None:
    """List healing executions (of APP_ID, or all), newest first, with steps and outcome."""
    wanted = state.registry.get_application(app_id).id if app_id else None
    executions = state.registry.list_executions(wanted, limit=limit)
    if as_json:
        emit_json([serde.unstructure(e) for e in executions])
        return
    if not executions:
        state.out.print("No executions.")
    for execution in executions:
        state.out.print(
            f"{execution.started_at:%Y-%m-%d %H:%M:%S} app {execution.app_id[:8]}", end=""
        )
        _print_execution(state.out, execution)


@click.command("rollback")
@click.argument("execution_id")
@pass_state
@handle_errors
def rollback_command(state: State, execution_id: str) -> None:
    """Restore the backup EXECUTION_ID took (after a heal that should not have happened, or
    one that was interrupted), and verify the restore."""
    healer = _healer(state)
    try:
        execution = asyncio.run(healer.rollback(execution_id, actor=ACTOR))
    except StrategyError as err:
        fail(state, ExitCode.REFUSED, str(err))
    except Exception as err:  # noqa: BLE001 - any restore failure leaves the app in doubt
        fail(state, ExitCode.ROLLBACK_FAILED, f"restoring the backup failed: {err}")
    state.out.print(f"execution {execution.id[:8]}: backup {execution.backup_id} restored")


@click.command("backups")
@click.argument("app_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
@pass_state
@handle_errors
def backups_command(state: State, app_id: str | None, as_json: bool) -> None:
    """List the backups taken before heals (of APP_ID, or all), newest first."""
    wanted = state.registry.get_application(app_id).id if app_id else None
    backups = state.registry.list_backups(wanted)
    if as_json:
        emit_json([serde.unstructure(b) for b in backups])
        return
    if not backups:
        state.out.print("No backups.")
    for backup in backups:
        restored = f", restored {backup.restored_at:%Y-%m-%d %H:%M}" if backup.restored_at else ""
        state.out.print(
            f"{backup.id[:8]}  {backup.created_at:%Y-%m-%d %H:%M:%S}  app {backup.app_id[:8]}  "
            f"{backup.strategy}  {backup.size_bytes} bytes  {backup.host}:{backup.location}"
            f"{restored}",
            highlight=False,
        )


@click.command("pause")
@click.argument("app_id", required=False)
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@pass_state
@handle_errors
def pause_command(state: State, app_id: str | None, reason: str) -> None:
    """Stop all automatic healing (of APP_ID, or everywhere) at once; diagnosis goes on."""
    target = state.registry.get_application(app_id).id if app_id else None
    state.registry.set_paused(target, True, actor=ACTOR, reason=reason)
    state.out.print(f"automatic healing paused {'for ' + target[:8] if target else 'everywhere'}")


@click.command("resume")
@click.argument("app_id", required=False)
@pass_state
@handle_errors
def resume_command(state: State, app_id: str | None) -> None:
    """Let automatic healing run again (for APP_ID, or everywhere)."""
    target = state.registry.get_application(app_id).id if app_id else None
    state.registry.set_paused(target, False, actor=ACTOR, reason="resumed")
    state.out.print(f"automatic healing resumed {'for ' + target[:8] if target else 'everywhere'}")


@click.group("breaker")
def breaker_group() -> None:
    """Look at or reset an application's circuit breaker."""


@breaker_group.command("show")
@click.argument("app_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
@pass_state
@handle_errors
def breaker_show(state: State, app_id: str, as_json: bool) -> None:
    """Show APP_ID's breaker: status, failures in the window, when it lets an attempt through."""
    app = state.registry.get_application(app_id)
    stored = state.registry.load_breaker_state(app.id)
    current = (
        breaker.state_from_json(stored.state) if stored.state else breaker.BreakerState.initial()
    )
    if as_json:
        emit_json({"application": app.id, **breaker.state_to_json(current)})
        return
    state.out.print(
        f"{app.id[:8]}: {current.status.value}, {len(current.failures)} failure(s) in the window, "
        f"{current.reopen_count} re-opening(s)"
    )


@breaker_group.command("reset")
@click.argument("app_id")
@pass_state
@handle_errors
def breaker_reset(state: State, app_id: str) -> None:
    """Close APP_ID's breaker, including a HELD one (audited): the operator takes over."""
    app = state.registry.get_application(app_id)
    stored = state.registry.load_breaker_state(app.id)
    before = (
        breaker.state_from_json(stored.state) if stored.state else breaker.BreakerState.initial()
    )
    after = breaker.reset(before)
    state.registry.save_breaker_state(app.id, breaker.state_to_json(after), 0, after.last_attempt)
    state.registry.audit(ACTOR, "breaker_reset", app.id, {"was": before.status.value})
    state.out.print(f"{app.id[:8]}: breaker {before.status.value} -> {after.status.value}")


def register(group: click.Group) -> None:
    """Add the healing commands to the ``healer`` group."""
    for command in (
        plan_command,
        heal_command,
        approvals_command,
        approve_command,
        reject_command,
        executions_command,
        rollback_command,
        backups_command,
        pause_command,
        resume_command,
        breaker_group,
    ):
        group.add_command(command)
