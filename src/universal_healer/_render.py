"""How the CLI shows things: rich tables for people, plain JSON-ready dicts for tools."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from universal_healer import serde
from universal_healer.diagnosis import Diagnosis
from universal_healer.discovery import DiscoveryReport
from universal_healer.model import (
    Application,
    CheckCategory,
    CheckResult,
    CheckStatus,
    HealingPlan,
    HealthStatus,
)
from universal_healer.plugins import PluginInfo

__all__ = [
    "app_json",
    "diagnosis_json",
    "plugin_json",
    "print_apps",
    "print_diagnosis",
    "print_discovery",
    "print_plugins",
]

_STATUS_STYLE = {
    CheckStatus.PASS: "green",
    CheckStatus.WARN: "yellow",
    CheckStatus.FAIL: "bold red",
    CheckStatus.ERROR: "magenta",
}
_HEALTH_STYLE = {
    HealthStatus.HEALTHY: "green",
    HealthStatus.DEGRADED: "yellow",
    HealthStatus.CRITICAL: "bold red",
    HealthStatus.UNKNOWN: "dim",
}


def short_id(app_id: str) -> str:
    """The first 8 characters of an id: enough to type, and accepted as a prefix."""
    return app_id[:8]


def app_json(app: Application) -> dict[str, Any]:
    """An application for ``--json`` output (the path display-safe)."""
    data: dict[str, Any] = serde.unstructure(app)
    data["path"] = app.display_path
    data["version"] = data.pop("stack_version")
    return data


def result_json(result: CheckResult) -> dict[str, Any]:
    """One check result for ``--json`` output."""
    return serde.unstructure(result)  # type: ignore[no-any-return]


def plan_json(plan: HealingPlan) -> dict[str, Any]:
    """A healing plan for ``--json`` output."""
    return serde.unstructure(plan)  # type: ignore[no-any-return]


def diagnosis_json(diagnosis: Diagnosis) -> dict[str, Any]:
    """One diagnosis for ``--json`` output."""
    return {
        "application": app_json(diagnosis.app),
        "health_score": diagnosis.health_score,
        "health_status": diagnosis.health_status.value,
        "started_at": diagnosis.started_at.isoformat(),
        "duration_s": round(diagnosis.duration_s, 3),
        "note": diagnosis.note,
        "results": [result_json(r) for r in diagnosis.results],
        "plan": plan_json(diagnosis.plan),
    }


def plugin_json(info: PluginInfo) -> dict[str, Any]:
    """One plugin for ``--json`` output."""
    return serde.unstructure(info)  # type: ignore[no-any-return]


def _row(table: Table, *cells: str | Text) -> None:
    """Add a row whose text cells are data: shown as they are, never read as rich markup (a
    path or message may hold ``[brackets]``)."""
    table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in cells))


def _apps_table(apps: Iterable[Application], title: str | None = None) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("ID", "SERVER", "PATH", "STACK", "VERSION", "CONF.", "METHOD", "HEALTH"):
        table.add_column(column, overflow="fold", no_wrap=column != "PATH")
    for app in apps:
        _row(
            table,
            short_id(app.id),
            app.server,
            app.display_path,
            app.stack,
            app.stack_version or "-",
            f"{app.confidence:.2f}",
            app.detection_method.value,
            Text(app.health_status.value, style=_HEALTH_STYLE[app.health_status]),
        )
    return table


def print_apps(console: Console, apps: Sequence[Application]) -> None:
    """The applications as a table."""
    if not apps:
        console.print("No applications match.")
        return
    console.print(_apps_table(apps))


def print_discovery(
    console: Console, report: DiscoveryReport, apps: Sequence[Application], *, verbose: bool
) -> None:
    """What one discovery run found, and what it could not look at."""
    console.print(_apps_table(apps, title=f"Applications found on {report.host}: {len(apps)}"))
    if verbose:
        for found in report.apps:
            for line in found.outcome.evidence:
                root, said = escape(found.root), escape(line)
                console.print(f"  [dim]{root}[/dim]: {said}", markup=True)
    if report.skipped and verbose:
        console.print("Not applications:")
        for skipped in report.skipped:
            console.print(f"  {skipped.path}: {skipped.reason}", markup=False, highlight=False)
    for error in report.errors:
        console.print(f"[yellow]could not look at[/yellow] {escape(error)}", markup=True)


def print_diagnosis(console: Console, diagnosis: Diagnosis) -> None:
    """One application's results grouped by category, its health and its plan."""
    app = diagnosis.app
    health = Text(diagnosis.health_status.value, style=_HEALTH_STYLE[diagnosis.health_status])
    header = Text.assemble(
        (f"{short_id(app.id)} ", "bold"),
        f"{app.stack} {app.stack_version or ''} at {app.display_path} on {app.server}: ",
        health,
        f" (score {diagnosis.health_score})",
    )
    console.print(header)
    if diagnosis.note:
        console.print(f"  [yellow]{escape(diagnosis.note)}[/yellow]", markup=True)
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("CATEGORY", "CHECK", "STATUS", "SEVERITY", "MESSAGE", "MS"):
        table.add_column(column, overflow="fold", no_wrap=column != "MESSAGE")
    for category in CheckCategory:
        for result in (r for r in diagnosis.results if r.category is category):
            _row(
                table,
                category.value,
                result.check,
                Text(result.status.value, style=_STATUS_STYLE[result.status]),
                result.severity.value,
                result.message + (f"\nfix: {result.suggested_fix}" if result.suggested_fix else ""),
                str(result.execution_time_ms),
            )
    console.print(table)
    plan = diagnosis.plan
    for planned in plan.auto:
        console.print(
            f"  would heal automatically: {planned.action.name} ({planned.reason})", markup=False
        )
    for planned in plan.needs_approval:
        console.print(f"  needs approval: {planned.action.name} ({planned.reason})", markup=False)
    for item in plan.cannot_heal:
        console.print(
            f"  cannot heal {item.result.check}: {item.reason}", highlight=False, markup=False
        )


def print_plugins(console: Console, plugins: Sequence[PluginInfo]) -> None:
    """The plugins as a table, with load errors."""
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("NAME", "VERSION", "ORIGIN", "ENABLED", "STACKS"):
        table.add_column(column, overflow="fold")
    for info in plugins:
        origin = "built-in" if info.builtin else (info.distribution or "external")
        enabled = Text("yes", style="green") if info.enabled else Text("no", style="dim")
        if info.error:
            enabled = Text("broken", style="bold red")
        _row(table, info.name, info.version or "-", origin, enabled, ", ".join(info.stacks))
    console.print(table)
    for info in plugins:
        if info.error:
            console.print(f"[red]{escape(info.name)}[/red]: {escape(info.error)}", markup=True)
