"""The ``healer`` command line: a public contract that scripts rely on (see docs/cli.md).

Exit codes:

====  ======================================================================================
0     success; for ``diagnose``, every application diagnosed is HEALTHY
1     an unexpected internal error (a bug: please report it)
2     usage error: bad options or arguments
3     partial: some paths, hosts or applications could not be looked at or diagnosed
4     not found: no application (or plugin) matches what was named
5     configuration or registry error: bad database URL, database unreachable
6     ``diagnose``: at least one application is DEGRADED (none CRITICAL)
7     ``diagnose``: at least one application is CRITICAL
8     ``heal``: an action failed (rolled back where a backup existed: the app is as before)
9     ``heal``/``rollback``: restoring a backup failed, or a heal was interrupted: the
      application may be half-changed and needs a person now
10    ``heal``: an action was refused (circuit breaker open, no backup, another heal running)
====  ======================================================================================
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import click
from rich.markup import escape

from universal_healer import _cli_heal, _cli_legacy, _render
from universal_healer._cli_common import (
    LOCAL_SERVER,
    ExitCode,
    State,
    emit_json,
    fail,
    handle_errors,
)
from universal_healer._cli_fleet import (
    diagnose_apps,
    discover_servers,
    failure_json,
    record_discovery,
    resolve_servers,
    unreachable_json,
)
from universal_healer._cli_servers import servers_group
from universal_healer._host_factory import DEFAULT_CONNECT_TIMEOUT_S
from universal_healer.detection import Override
from universal_healer.diagnosis import Diagnosis
from universal_healer.discovery import DEFAULT_MAX_DEPTH, DEFAULT_SEARCH_PATHS, discover
from universal_healer.hosts.local import LocalHost
from universal_healer.model import DetectionMethod, HealingMode, HealthStatus
from universal_healer.plugins import build_plugin_manager
from universal_healer.registry import default_database_url, redact_url

__all__ = ["ExitCode", "cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--db",
    "db_url",
    envvar="HEALER_DATABASE_URL",
    metavar="URL",
    help="Registry database URL (sqlite:///..., postgresql://..., mysql://...). "
    "Default: an SQLite file under the user's data directory.",
)
@click.option("-v", "--verbose", count=True, help="Show evidence and log details (-vv: debug).")
@click.version_option(package_name="universal-healer", prog_name="healer")
@click.pass_context
def cli(ctx: click.Context, db_url: str | None, verbose: int) -> None:
    """Find, recognise, diagnose and heal the web applications on your servers."""
    logging.basicConfig(
        level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    ctx.obj = State(db_url, verbose)


@cli.command("discover")
@click.argument("paths", nargs=-1)
@click.option(
    "--server",
    "servers",
    multiple=True,
    metavar="NAME",
    help="Discover on this server of the inventory (repeatable).",
)
@click.option("--all-servers", is_flag=True, help="Discover on every SSH server of the inventory.")
@click.option(
    "--depth",
    default=DEFAULT_MAX_DEPTH,
    show_default=True,
    help="How deep to look below each path.",
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_CONNECT_TIMEOUT_S,
    show_default=True,
    metavar="SECONDS",
    help="Give up on a server that does not let us in within this time.",
)
@click.option(
    "--services",
    is_flag=True,
    help="Also find host services (databases, caches) by their processes and listening "
    "sockets; always on for this machine without PATHS.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
@click.pass_obj
@handle_errors
def discover_command(
    state: State,
    *,
    paths: tuple[str, ...],
    servers: tuple[str, ...],
    all_servers: bool,
    depth: int,
    connect_timeout: float,
    services: bool,
    as_json: bool,
) -> None:
    """Find applications under PATHS (default: /var/www /srv /opt /home/*/public_html) on this
    machine, or on --server NAME / --all-servers at once, recognise their stacks and record
    them in the registry."""
    if servers and all_servers:
        raise click.UsageError("give --server NAME or --all-servers, not both")
    if not (servers or all_servers):
        _discover_here(state, paths, depth, as_json, services=services or not paths)
        return
    if any(not path.startswith("/") for path in paths):
        raise click.UsageError("paths on servers must be absolute")
    names = resolve_servers(state, servers, every_ssh_server=all_servers)
    if not names:
        fail(state, ExitCode.NOT_FOUND, "no SSH servers yet: add one with `healer servers add`")
    manager = state.plugins()
    run = discover_servers(
        state,
        manager,
        names,
        paths=list(paths) or None,
        depth=depth,
        connect_timeout=connect_timeout,
        show_progress=not as_json,
        services=services,
    )
    errors = [f"{name}: {error}" for name, report in run.reports.items() for error in report.errors]
    if as_json:
        emit_json(
            {
                "applications": [
                    _render.app_json(app) for apps in run.recorded.values() for app in apps
                ],
                "skipped": [
                    {"server": name, "path": s.path, "reason": s.reason}
                    for name, report in run.reports.items()
                    for s in report.skipped
                ],
                "errors": errors,
                "plugin_errors": [str(f) for f in manager.failures],
                "failures": [failure_json(f) for f in run.failures],
            }
        )
    else:
        for name, report in run.reports.items():
            _render.print_discovery(
                state.out, report, run.recorded[name], verbose=state.verbose > 0
            )
        for failure in run.failures:
            state.err.print(f"[red]server failed:[/red] {escape(str(failure))}", markup=True)
        for plugin_failure in manager.failures:
            state.err.print(f"[red]plugin error:[/red] {escape(str(plugin_failure))}", markup=True)
    if errors or run.failures or manager.failures:
        raise SystemExit(int(ExitCode.PARTIAL))


def _discover_here(
    state: State, paths: tuple[str, ...], depth: int, as_json: bool, *, services: bool
) -> None:
    """``healer discover [PATHS]``: this machine, as before there were servers (host services
    too when ``services``)."""
    search = [os.path.abspath(p) for p in paths] if paths else list(DEFAULT_SEARCH_PATHS)
    manager = state.plugins()
    host = LocalHost()
    pins = {
        app.path: Override(stack=app.stack, version=app.stack_version, method=app.detection_method)
        for app in state.registry.list_applications(server=LOCAL_SERVER)
        if app.detection_method is not DetectionMethod.AUTO
    }
    report = asyncio.run(
        discover(host, manager, search, max_depth=depth, overrides=pins, services=services)
    )
    recorded = record_discovery(state, manager, LOCAL_SERVER, report)
    if as_json:
        emit_json(
            {
                "applications": [_render.app_json(app) for app in recorded],
                "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
                "errors": list(report.errors),
                "plugin_errors": [str(f) for f in manager.failures],
                "failures": [],
            }
        )
    else:
        _render.print_discovery(state.out, report, recorded, verbose=state.verbose > 0)
        for failure in manager.failures:
            state.err.print(f"[red]plugin error:[/red] {escape(str(failure))}", markup=True)
    if report.errors or manager.failures:
        raise SystemExit(int(ExitCode.PARTIAL))


def _health(value: str | None) -> HealthStatus | None:
    return HealthStatus(value.upper()) if value else None


@cli.command("apps")
@click.option("--stack", help="Only applications of this stack id (e.g. wordpress).")
@click.option(
    "--health",
    type=click.Choice([h.value for h in HealthStatus], case_sensitive=False),
    help="Only applications in this health status.",
)
@click.option("--server", help="Only applications on this server.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
@click.pass_obj
@handle_errors
def apps_command(
    state: State, stack: str | None, health: str | None, server: str | None, as_json: bool
) -> None:
    """List the applications in the registry."""
    apps = state.registry.list_applications(server=server, stack=stack, health=_health(health))
    if as_json:
        emit_json([_render.app_json(app) for app in apps])
    else:
        _render.print_apps(state.out, apps)


@cli.command("diagnose")
@click.argument("app_id", required=False)
@click.option("--all", "all_apps", is_flag=True, help="Diagnose every application.")
@click.option(
    "--server",
    "servers",
    multiple=True,
    metavar="NAME",
    help="Diagnose every application on this server (repeatable).",
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_CONNECT_TIMEOUT_S,
    show_default=True,
    metavar="SECONDS",
    help="Give up on a server that does not let us in within this time.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
@click.pass_obj
@handle_errors
def diagnose_command(
    state: State,
    *,
    app_id: str | None,
    all_apps: bool,
    servers: tuple[str, ...],
    connect_timeout: float,
    as_json: bool,
) -> None:
    """Run the checks of APP_ID (an id or a unique prefix), of --all applications or of those on
    --server NAME, on every server at once; record the results and show the healing plan."""
    if (bool(app_id) + all_apps + bool(servers)) != 1:
        raise click.UsageError("give one APP_ID or --all (or --server NAME)")
    if all_apps:
        apps = state.registry.list_applications()
        if not apps:
            fail(state, ExitCode.NOT_FOUND, "no applications yet: run `healer discover` first")
    elif servers:
        names = resolve_servers(state, servers, every_ssh_server=False)
        apps = [app for name in names for app in state.registry.list_applications(server=name)]
        if not apps:
            fail(
                state,
                ExitCode.NOT_FOUND,
                f"no applications on {', '.join(names)} yet: run `healer discover --server` first",
            )
    else:
        assert app_id is not None  # noqa: S101 - checked above
        apps = [state.registry.get_application(app_id)]
    manager = state.plugins()
    outcome = diagnose_apps(
        state, manager, apps, connect_timeout=connect_timeout, show_progress=not as_json
    )
    if as_json:
        entries = [{**_render.diagnosis_json(d), "failure": None} for d in outcome.diagnoses]
        entries += [unreachable_json(app, f) for f in outcome.failures for app in f.apps]
        emit_json(entries)
    else:
        for item in outcome.diagnoses:
            _render.print_diagnosis(state.out, item)
        for failure in outcome.failures:
            state.err.print(
                f"[red]server failed:[/red] {failure.server}: {failure.error}; "
                f"{len(failure.apps)} application(s) not diagnosed, now UNKNOWN: "
                + ", ".join(app.id[:8] for app in failure.apps),
                highlight=False,
            )
    raise SystemExit(int(_verdict(outcome.diagnoses, partial=bool(outcome.failures))))


def _verdict(diagnoses: Sequence[Diagnosis], *, partial: bool) -> ExitCode:
    """The exit code of a diagnosis run: the worst health wins, then partial work."""
    statuses = {d.health_status for d in diagnoses}
    if HealthStatus.CRITICAL in statuses:
        return ExitCode.CRITICAL
    if HealthStatus.DEGRADED in statuses:
        return ExitCode.DEGRADED
    if partial or HealthStatus.UNKNOWN in statuses:
        return ExitCode.PARTIAL
    return ExitCode.OK


@cli.command("pin")
@click.argument("app_id")
@click.argument("stack")
@click.option("--version", "stack_version", help="Pin the version too (MANUAL).")
@click.option("--hybrid", is_flag=True, help="Pin only the stack; detection finds the version.")
@click.pass_obj
@handle_errors
def pin_command(
    state: State, app_id: str, stack: str, stack_version: str | None, hybrid: bool
) -> None:
    """Pin APP_ID to STACK (MANUAL, or HYBRID with --hybrid); discovery then keeps it."""
    if hybrid and stack_version:
        raise click.UsageError("--hybrid lets detection find the version; drop --version")
    app = state.registry.get_application(app_id)
    method = DetectionMethod.HYBRID if hybrid else DetectionMethod.MANUAL
    state.registry.set_override(app.id, stack=stack, version=stack_version, method=method)
    state.registry.audit("cli", "pin", app.id, {"stack": stack, "method": method.value})
    state.out.print(f"{app.id[:8]} pinned to {stack} ({method.value})")


@cli.command("unpin")
@click.argument("app_id")
@click.pass_obj
@handle_errors
def unpin_command(state: State, app_id: str) -> None:
    """Let detection decide APP_ID's stack again (AUTO) from the next discovery."""
    app = state.registry.get_application(app_id)
    state.registry.set_override(
        app.id, stack=app.stack, version=app.stack_version, method=DetectionMethod.AUTO
    )
    state.registry.audit("cli", "unpin", app.id, {})
    state.out.print(f"{app.id[:8]} detection is AUTO again")


@cli.command("mode")
@click.argument("app_id")
@click.argument("mode", type=click.Choice([m.value for m in HealingMode], case_sensitive=False))
@click.pass_obj
@handle_errors
def mode_command(state: State, app_id: str, mode: str) -> None:
    """Set APP_ID's healing mode (MANUAL, SUPERVISED or AUTO)."""
    app = state.registry.get_application(app_id)
    state.registry.set_healing_mode(app.id, HealingMode(mode.upper()))
    state.registry.audit("cli", "set_healing_mode", app.id, {"mode": mode.upper()})
    state.out.print(f"{app.id[:8]} healing mode is {mode.upper()}")


@cli.group("plugins", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
@click.pass_context
def plugins_group(ctx: click.Context, as_json: bool) -> None:
    """List the plugins (built-in and installed), with their stacks and load errors."""
    if ctx.invoked_subcommand is not None:
        return
    _list_plugins(as_json)


@handle_errors
def _list_plugins(as_json: bool) -> None:
    state: State = click.get_current_context().find_object(State)  # type: ignore[assignment]
    manager = state.plugins()
    infos = manager.plugins()
    if as_json:
        emit_json([_render.plugin_json(info) for info in infos])
    else:
        _render.print_plugins(state.out, infos)
    if any(info.error for info in infos):
        raise SystemExit(int(ExitCode.PARTIAL))


def _set_enabled(state: State, name: str, enabled: bool) -> None:
    known = {info.name for info in build_plugin_manager(disabled=()).plugins()}
    if name not in known:
        fail(state, ExitCode.NOT_FOUND, f"no plugin named {name!r} (see `healer plugins`)")
    state.registry.set_plugin_enabled(name, enabled)
    state.registry.audit("cli", "enable_plugin" if enabled else "disable_plugin", name, {})
    state.out.print(f"plugin {name} {'enabled' if enabled else 'disabled'}")


@plugins_group.command("enable")
@click.argument("name")
@click.pass_obj
@handle_errors
def plugins_enable(state: State, name: str) -> None:
    """Enable plugin NAME."""
    _set_enabled(state, name, True)


@plugins_group.command("disable")
@click.argument("name")
@click.pass_obj
@handle_errors
def plugins_disable(state: State, name: str) -> None:
    """Disable plugin NAME (its stacks' applications are kept but not diagnosed)."""
    _set_enabled(state, name, False)


cli.add_command(servers_group)
_cli_heal.register(cli)
_cli_legacy.register(cli)


@cli.command("where")
@click.pass_obj
def where_command(state: State) -> None:
    """Print the registry database URL in use (password hidden)."""
    url = state.db_url or default_database_url()
    state.out.print(redact_url(url))


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``healer`` script."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="healer")
    except SystemExit:
        raise
    except Exception:
        logging.getLogger("universal_healer").exception("internal error")
        raise SystemExit(int(ExitCode.INTERNAL)) from None
    raise SystemExit(0)
