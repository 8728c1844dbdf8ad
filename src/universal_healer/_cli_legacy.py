"""The ``healer migrate-legacy`` command: bring the WordPress-only healer's ``wp_sites`` and
executions into the registry, check it, undo it. See docs/cli.md and docs/migration.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console

from universal_healer._cli_common import ExitCode, State, emit_json, handle_errors, pass_state
from universal_healer.registry import (
    LegacyReport,
    LegacyRollback,
    apply_legacy_migration,
    check_legacy_migration,
    rollback_legacy_migration,
)

__all__ = ["register"]

ACTOR = "cli"
SHOWN = 20
"""Issues listed per kind without --json; the JSON output lists them all."""


def _issues_json(issues: Sequence[Any]) -> list[dict[str, str]]:
    return [{"table": i.table, "id": i.id, "reason": i.reason} for i in issues]


def _report_json(report: LegacyReport) -> dict[str, Any]:
    def counts(table: Any) -> dict[str, int]:
        return {
            "legacy": table.legacy,
            "verified": table.verified,
            "pending": table.pending,
            "added": table.added,
        }

    return {
        "source": report.source,
        "sites_table": report.sites_table,
        "executions_table": report.executions_table,
        "sites": counts(report.sites),
        "executions": counts(report.executions),
        "blocked": _issues_json(report.blocked),
        "changed": _issues_json(report.changed),
        "unknown_servers": [
            {"server_id": server, "sites": sites} for server, sites in report.unknown_servers
        ],
        "refused": report.refused,
    }


def _rollback_json(rollback: LegacyRollback) -> dict[str, Any]:
    return {
        "recorded": rollback.recorded,
        "removed": {"sites": rollback.removed_sites, "executions": rollback.removed_executions},
        "changed": _issues_json(rollback.changed),
        "gone": _issues_json(rollback.gone),
        "refused": rollback.refused,
    }


def _print_issues(console: Console, title: str, issues: Sequence[Any]) -> None:
    if not issues:
        return
    console.print(f"{title} ({len(issues)}):")
    for issue in issues[:SHOWN]:
        console.print(f"  {issue.table} {issue.id}: {issue.reason}", markup=False)
    if len(issues) > SHOWN:
        console.print(f"  ... and {len(issues) - SHOWN} more (--json lists them all)")


def _print_report(console: Console, report: LegacyReport, *, applying: bool) -> None:
    where = "the registry database" if report.source == "registry" else report.source
    console.print(f"legacy registry: {where}", markup=False)
    tables = ((report.sites_table, report.sites), (report.executions_table, report.executions))
    for name, counts in tables:
        if name is None:
            console.print("executions: no legacy executions table (nothing to import)")
            continue
        line = (
            f"{name}: {counts.legacy} row(s); {counts.verified} imported and verified, "
            f"{counts.pending} to import"
        )
        if applying:
            line += f", {counts.added} imported now"
        console.print(line, markup=False)
    _print_issues(console, "blocked: cannot be imported", report.blocked)
    _print_issues(console, "changed since imported", report.changed)
    for server, sites in report.unknown_servers:
        console.print(
            f"unknown server {server!r} ({sites} site(s)): "
            f"healer servers add {server} --address HOST",
            markup=False,
        )
    if report.refused:
        console.print("nothing imported: fix the blocked rows, or import the rest with --partial")


def _print_rollback(console: Console, rollback: LegacyRollback) -> None:
    if not rollback.recorded:
        console.print("no legacy migration recorded in this registry: nothing to roll back")
        return
    _print_issues(console, "changed since imported", rollback.changed)
    _print_issues(console, "already gone from the registry", rollback.gone)
    if rollback.refused:
        console.print("nothing removed: the rows above changed since; --force removes them too")
        return
    console.print(
        f"removed {rollback.removed_sites} application(s) and {rollback.removed_executions} "
        "execution(s) imported from the legacy registry, and the ledger"
    )


def _report_code(report: LegacyReport, *, applying: bool) -> ExitCode:
    if report.refused or (report.blocked and not applying):
        return ExitCode.REFUSED
    if report.blocked or report.changed:
        return ExitCode.PARTIAL
    return ExitCode.OK


@click.command("migrate-legacy")
@click.option("--check", is_flag=True, help="Report what --apply would import; change nothing.")
@click.option(
    "--apply", "apply_", is_flag=True, help="Import, verify and record, in one transaction."
)
@click.option("--rollback", is_flag=True, help="Remove exactly what --apply added.")
@click.option(
    "--from",
    "source",
    metavar="URL",
    help="The legacy database (default: the legacy tables in the registry's own database).",
)
@click.option("--partial", is_flag=True, help="With --apply: import what can be, skip the rest.")
@click.option("--force", is_flag=True, help="With --rollback: also remove rows changed since.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
@pass_state
@handle_errors
def migrate_legacy_command(
    state: State,
    *,
    check: bool,
    apply_: bool,
    rollback: bool,
    source: str | None,
    partial: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Import the WordPress-only healer's wp_sites and executions into the registry (--apply),
    report on it (--check) or undo it (--rollback). The legacy tables are only read."""
    if check + apply_ + rollback != 1:
        raise click.UsageError("give exactly one of --check, --apply and --rollback")
    if partial and not apply_:
        raise click.UsageError("--partial goes with --apply")
    if force and not rollback:
        raise click.UsageError("--force goes with --rollback")
    if source is not None and rollback:
        raise click.UsageError("--rollback reads only the registry: leave out --from")
    if rollback:
        undone = rollback_legacy_migration(state.registry, force=force, actor=ACTOR)
        if as_json:
            emit_json(_rollback_json(undone))
        else:
            _print_rollback(state.out, undone)
        raise SystemExit(int(ExitCode.REFUSED if undone.refused else ExitCode.OK))
    if apply_:
        report = apply_legacy_migration(state.registry, source, partial=partial, actor=ACTOR)
    else:
        report = check_legacy_migration(state.registry, source)
    if as_json:
        emit_json(_report_json(report))
    else:
        _print_report(state.out, report, applying=apply_)
    raise SystemExit(int(_report_code(report, applying=apply_)))


def register(group: click.Group) -> None:
    """Add ``migrate-legacy`` to the ``healer`` group."""
    group.add_command(migrate_legacy_command)
