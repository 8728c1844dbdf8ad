"""``healer servers``: the inventory of servers the healer reaches over SSH.

Passwords come only from standard input (``--password-stdin``) or an inventory file, never
from the command line (visible in ``ps`` and shell history); they are stored encrypted with the
:class:`~universal_healer.secrets.SecretBox` and never shown: listings say whether one is set.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from rich import box as boxes
from rich.table import Table

from universal_healer._cli_common import ExitCode, State, emit_json, fail, handle_errors
from universal_healer.exceptions import HealerError
from universal_healer.inventory import ServerKind, ServerSpec, check_jumps, load_inventory
from universal_healer.registry import Registry
from universal_healer.secrets import SecretBox

__all__ = ["servers_group"]

ACTOR = "cli"


def _absolute(path: str) -> str:
    """A key or known_hosts path as given, made absolute if relative (``~`` is kept)."""
    return path if path.startswith("~") or os.path.isabs(path) else os.path.abspath(path)


def _read_password() -> str:
    if sys.stdin is None or sys.stdin.isatty():
        raise click.UsageError("--password-stdin reads the password from standard input: pipe it")
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.UsageError("--password-stdin read an empty password")
    return password


def _summary(spec: ServerSpec) -> dict[str, Any]:
    """What the audit log keeps of a server: everything but the password."""
    return {
        "address": spec.address,
        "port": spec.port,
        "user": spec.username,
        "jump": spec.jump,
        "tags": list(spec.tags),
        "trust_on_first_use": spec.trust_on_first_use,
        "password_set": spec.password is not None,
    }


def _known(registry: Registry) -> dict[str, ServerSpec]:
    return {spec.name: spec for spec in registry.list_server_specs()}


@click.group("servers")
def servers_group() -> None:
    """Manage the inventory of servers: add, list, remove, import."""


@servers_group.command("add")
@click.argument("name")
@click.option("--address", required=True, help="Host name or IP address to connect to.")
@click.option("--port", type=click.IntRange(1, 65535), default=22, show_default=True)
@click.option("--user", help="Remote user (default: the local user's name).")
@click.option("--key", "keys", multiple=True, metavar="PATH", help="Private key file (repeatable).")
@click.option("--known-hosts", metavar="PATH", help="known_hosts file to verify host keys with.")
@click.option(
    "--password-stdin", is_flag=True, help="Read a password from standard input (stored encrypted)."
)
@click.option("--jump", metavar="NAME", help="Reach this server through server NAME.")
@click.option(
    "--search-path",
    "search_paths",
    multiple=True,
    metavar="PATH",
    help="Where discovery looks on this server (repeatable).",
)
@click.option("--tag", "tags", multiple=True, help="A label (repeatable).")
@click.option(
    "--trust-on-first-use",
    is_flag=True,
    help="Accept and record the host key on the first connection if known_hosts has none.",
)
@click.option(
    "--max-channels",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Commands in flight at once on this server (keep below its MaxSessions).",
)
@click.pass_obj
@handle_errors
def servers_add(
    state: State,
    *,
    name: str,
    address: str,
    port: int,
    user: str | None,
    keys: tuple[str, ...],
    known_hosts: str | None,
    password_stdin: bool,
    jump: str | None,
    search_paths: tuple[str, ...],
    tags: tuple[str, ...],
    trust_on_first_use: bool,
    max_channels: int,
) -> None:
    """Add server NAME to the inventory."""
    for path in search_paths:
        if not path.startswith("/"):
            raise click.BadParameter(f"{path!r} is not absolute", param_hint="--search-path")
    try:
        spec = ServerSpec(
            name=name,
            address=address,
            port=port,
            username=user,
            client_keys=tuple(_absolute(key) for key in keys),
            known_hosts=_absolute(known_hosts) if known_hosts else None,
            password=_read_password() if password_stdin else None,
            jump=jump,
            search_paths=search_paths,
            tags=tags,
            trust_on_first_use=trust_on_first_use,
            max_channels=max_channels,
        )
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="NAME") from None
    check_jumps([spec], _known(state.registry))
    box = SecretBox.from_environment() if spec.password is not None else None
    state.registry.add_server(spec, box)
    state.registry.audit(ACTOR, "add_server", name, _summary(spec))
    state.out.print(f"server {name} added ({spec.username or 'local user'}@{address}:{port})")


def _password_states(registry: Registry, specs: list[ServerSpec]) -> dict[str, str]:
    """Whether each server has a password stored: "set" or "-" (nothing is decrypted)."""
    stored = {server.name for server in registry.list_servers() if server.has_password}
    return {spec.name: "set" if spec.name in stored else "-" for spec in specs}


def _server_json(registry: Registry, spec: ServerSpec, password: str) -> dict[str, Any]:
    trusted = registry.trusted_key(spec.name)
    return {
        "name": spec.name,
        "kind": spec.kind.value,
        "address": spec.address,
        "port": spec.port,
        "user": spec.username,
        "keys": list(spec.client_keys),
        "known_hosts": spec.known_hosts,
        "password_set": password == "set",  # noqa: S105 - a state, never the password
        "jump": spec.jump,
        "search_paths": list(spec.search_paths),
        "tags": list(spec.tags),
        "trust_on_first_use": spec.trust_on_first_use,
        "trusted_key": f"{trusted.key_type} {trusted.fingerprint}" if trusted else None,
        "max_channels": spec.max_channels,
    }


@servers_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
@click.pass_obj
@handle_errors
def servers_list(state: State, as_json: bool) -> None:
    """List the servers in the inventory (passwords are never shown, only whether one is set)."""
    specs = state.registry.list_server_specs()
    passwords = _password_states(state.registry, specs)
    if as_json:
        emit_json([_server_json(state.registry, spec, passwords[spec.name]) for spec in specs])
        return
    if not specs:
        state.out.print("No servers yet: add one with `healer servers add`.")
        return
    table = Table(box=boxes.SIMPLE_HEAD)
    for column in ("NAME", "ADDRESS", "USER", "KEYS", "PASSWORD", "JUMP", "SEARCH PATHS", "TAGS"):
        table.add_column(column, overflow="fold")
    for spec in specs:
        where = "this machine" if spec.kind is ServerKind.LOCAL else f"{spec.address}:{spec.port}"
        table.add_row(
            spec.name,
            where,
            spec.username or "-",
            "\n".join(spec.client_keys) or "-",
            passwords[spec.name],
            spec.jump or "-",
            "\n".join(spec.search_paths) or "(defaults)",
            ", ".join(spec.tags) or "-",
        )
    state.out.print(table)


@servers_group.command("remove")
@click.argument("name")
@click.option(
    "--force", is_flag=True, help="Also remove its applications and everything recorded of them."
)
@click.pass_obj
@handle_errors
def servers_remove(state: State, name: str, force: bool) -> None:
    """Remove server NAME from the inventory."""
    if name not in _known(state.registry):
        fail(state, ExitCode.NOT_FOUND, f"no server called {name!r} (see `healer servers list`)")
    apps = state.registry.list_applications(server=name)
    state.registry.remove_server(name, force=force)
    state.registry.audit(ACTOR, "remove_server", name, {"applications_removed": len(apps)})
    removed = f" and its {len(apps)} application(s)" if apps else ""
    state.out.print(f"server {name}{removed} removed")


@servers_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_obj
@handle_errors
def servers_import(state: State, file: str) -> None:
    """Add or update the servers of a TOML inventory FILE ([[servers]] tables)."""
    specs = load_inventory(file)
    known = _known(state.registry)
    check_jumps(specs, known)
    box = SecretBox.from_environment() if any(s.password is not None for s in specs) else None
    added = updated = 0
    # Jump hosts first, so a server never names one the registry does not hold yet.
    for spec in sorted(specs, key=lambda s: (s.jump is not None, s.name)):
        try:
            if spec.name in known:
                state.registry.update_server(spec, box)
                updated += 1
            else:
                state.registry.add_server(spec, box)
                added += 1
        except HealerError as err:
            fail(state, ExitCode.CONFIG, f"{file}: server {spec.name!r}: {err}")
        state.registry.audit(ACTOR, "import_server", spec.name, {"file": file, **_summary(spec)})
    state.out.print(
        f"imported {len(specs)} server(s) from {file}: {added} added, {updated} updated"
    )
