"""The one exception tree of Universal Healer.

Every error the SDK raises on purpose is a :class:`HealerError`. Third-party errors (OSError,
asyncssh, peewee, drivers) are translated at the boundary that meets them, so callers catch
ours only::

    HealerError
    ├── ConfigurationError          bad settings, URLs, inventory, CLI input
    ├── PluginError                 a plugin failed to import or raised in a hook
    ├── ApplicationNotFoundError    no application matches an id (or the prefix is ambiguous)
    ├── RemoteError                 something went wrong on (or on the way to) a host
    │   ├── HostUnreachableError    connection refused, DNS, dead host
    │   ├── AuthenticationError     wrong credentials, rejected or unknown host key
    │   ├── CommandFailedError      a command exited non-zero where success was required
    │   └── CommandTimeoutError     a command ran past its timeout and was killed
    ├── StrategyError               a healing strategy could not build or run its action
    ├── BackupError                 a backup could not be taken or restored
    ├── BreakerOpenError            the circuit breaker refused an attempt
    └── RegistryError               the database could not be reached, migrated or written

Errors carry structured attributes and build their message from them, so a log line and a test
can both look at ``err.host`` or ``err.argv`` rather than parse text.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ApplicationNotFoundError",
    "AuthenticationError",
    "BackupError",
    "BreakerOpenError",
    "CommandFailedError",
    "CommandTimeoutError",
    "ConfigurationError",
    "HealerError",
    "HostUnreachableError",
    "PluginError",
    "RegistryError",
    "RemoteError",
    "StrategyError",
]


class HealerError(Exception):
    """The root of every error Universal Healer raises on purpose."""


class ConfigurationError(HealerError):
    """Settings, URLs, inventories or command-line input that cannot be used as given."""


class PluginError(HealerError):
    """A plugin failed to load, or raised inside one of its hooks.

    :param plugin: the plugin's registered name.
    :param hook: the hook that raised, or ``None`` when loading failed.
    :param reason: what went wrong, usually ``repr`` of the original exception.
    """

    def __init__(self, plugin: str, reason: str, *, hook: str | None = None) -> None:
        self.plugin = plugin
        self.hook = hook
        self.reason = reason
        where = f"in hook {hook}" if hook else "while loading"
        super().__init__(f"plugin {plugin!r} failed {where}: {reason}")


class ApplicationNotFoundError(HealerError):
    """No application (or more than one) matches the id or id prefix given."""

    def __init__(self, app_id: str, *, matches: Sequence[str] = ()) -> None:
        self.app_id = app_id
        self.matches = tuple(matches)
        if self.matches:
            message = f"application id {app_id!r} is ambiguous: it matches {len(matches)}"
        else:
            message = f"no application with id {app_id!r}"
        super().__init__(message)


class RemoteError(HealerError):
    """Something failed on a host, or on the way to it.

    :param host: the host's name.
    :param reason: a short human explanation.
    """

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(f"{host}: {reason}")


class HostUnreachableError(RemoteError):
    """The host could not be reached: refused, unresolvable, or silent."""


class AuthenticationError(RemoteError):
    """The host refused our credentials, or its host key could not be verified."""


class CommandFailedError(RemoteError):
    """A command exited non-zero where the caller required success.

    The message names the program (``argv[0]``) and exit status; the full vector stays in
    :attr:`argv` for logs that redact it.
    """

    def __init__(self, host: str, argv: Sequence[str], exit_status: int, stderr: str = "") -> None:
        self.argv = tuple(argv)
        self.exit_status = exit_status
        self.stderr = stderr
        detail = f": {stderr.strip()[:200]}" if stderr.strip() else ""
        super().__init__(host, f"{self.argv[0]!r} exited with status {exit_status}{detail}")


class CommandTimeoutError(RemoteError):
    """A command ran past its timeout; it and its children were killed."""

    def __init__(self, host: str, argv: Sequence[str], timeout: float) -> None:
        self.argv = tuple(argv)
        self.timeout = timeout
        super().__init__(host, f"{self.argv[0]!r} timed out after {timeout:g} s and was killed")


class StrategyError(HealerError):
    """A healing strategy could not build or carry out its action."""


class BackupError(HealerError):
    """A backup could not be taken, verified, restored or removed.

    :param reason: what went wrong, for a person.
    :param host: the host it happened on, when there is one.
    :param location: the artifact or directory concerned, when there is one.
    """

    def __init__(
        self, reason: str, *, host: str | None = None, location: str | None = None
    ) -> None:
        self.reason = reason
        self.host = host
        self.location = location
        shown = (
            location.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            if location
            else None
        )
        where = f" [{shown}]" if shown else ""
        super().__init__(f"{host}: {reason}{where}" if host else f"{reason}{where}")


class BreakerOpenError(HealerError):
    """The circuit breaker refused a healing attempt.

    :param app_id: the application whose breaker is open.
    :param retry_at: when an attempt may be let through again (ISO 8601), if ever.
    """

    def __init__(self, app_id: str, retry_at: str | None) -> None:
        self.app_id = app_id
        self.retry_at = retry_at
        when = f"until {retry_at}" if retry_at else "until an operator resets it"
        super().__init__(f"circuit breaker open for application {app_id} {when}")


class RegistryError(HealerError):
    """The registry database could not be opened, migrated, read or written."""
