"""What every ``healer`` command shares: exit codes, the per-invocation state, error
translation and JSON output. Command modules import from here; ``cli`` assembles them."""

from __future__ import annotations

import enum
import functools
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from universal_healer.exceptions import (
    ApplicationNotFoundError,
    ConfigurationError,
    HealerError,
    RegistryError,
)
from universal_healer.plugins import PluginManager, build_plugin_manager
from universal_healer.registry import Registry, open_registry

__all__ = [
    "LOCAL_SERVER",
    "ExitCode",
    "State",
    "emit_json",
    "fail",
    "handle_errors",
    "pass_state",
]

F = TypeVar("F", bound=Callable[..., Any])


class ExitCode(enum.IntEnum):
    """The exit codes of ``healer``; the table is in :mod:`universal_healer.cli` and docs/cli.md."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    PARTIAL = 3
    NOT_FOUND = 4
    CONFIG = 5
    DEGRADED = 6
    CRITICAL = 7
    HEAL_FAILED = 8
    ROLLBACK_FAILED = 9
    REFUSED = 10


LOCAL_SERVER = "local"


class State:
    """What every command shares: options, consoles and lazily opened services."""

    def __init__(self, db_url: str | None, verbose: int) -> None:
        self.db_url = db_url
        self.verbose = verbose
        # Piped output keeps whole lines (tools grep it); a terminal gets its own width.
        width = None if sys.stdout.isatty() else 200
        # Markup is off by default: what we print is mostly data (paths, messages) that may hold
        # [brackets]. The few styled lines say markup=True and escape their data.
        self.out = Console(soft_wrap=False, highlight=False, width=width, markup=False)
        self.err = Console(stderr=True, highlight=False, markup=False)
        self._registry: Registry | None = None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = open_registry(self.db_url)
        return self._registry

    def plugins(self) -> PluginManager:
        manager = build_plugin_manager(disabled=self.disabled_plugins())
        self.registry.sync_plugins(
            (info.name, info.version or "", info.stacks, info.builtin, info.distribution)
            for info in manager.plugins()
            if info.enabled  # a disabled plugin is not loaded: its stacks are unknown now
        )
        return manager

    def disabled_plugins(self) -> set[str]:
        return {name for name, enabled in self.registry.plugin_states().items() if not enabled}

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()


def fail(state: State, code: ExitCode, message: str) -> NoReturn:
    state.err.print(f"[bold red]error:[/bold red] {escape(message)}", markup=True)
    raise SystemExit(int(code))


def handle_errors(command: F) -> F:
    """Translate our exceptions into messages and exit codes at one boundary."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state: State = click.get_current_context().find_object(State)  # type: ignore[assignment]
        try:
            return command(*args, **kwargs)
        except ApplicationNotFoundError as err:
            fail(state, ExitCode.NOT_FOUND, str(err))
        except (RegistryError, ConfigurationError) as err:
            fail(state, ExitCode.CONFIG, str(err))
        except HealerError as err:
            fail(state, ExitCode.INTERNAL, str(err))
        finally:
            state.close()

    return wrapper  # type: ignore[return-value]


def emit_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def pass_state(command: F) -> F:
    """Pass the invocation's :class:`State` as the command's first argument."""
    return click.pass_obj(command)  # type: ignore[return-value]
