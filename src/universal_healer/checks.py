"""Diagnostic checks and the runner that makes sure none of them can break a diagnosis.

A check is a small class with a name, category, severity and an ``async run(ctx)``::

    class EnvFileCheck(DiagnosticCheck):
        name = "env_file"
        category = CheckCategory.CONFIGURATION
        severity = RiskLevel.MEDIUM
        description = "The application has a .env file"

        async def run(self, ctx: CheckContext) -> CheckResult:
            if await ctx.host.stat(ctx.path(".env")) is None:
                return ctx.fail("no .env file", suggested_fix="copy .env.example to .env")
            return ctx.passed(".env present")

The runner runs an application's checks concurrently (bounded), each under a timeout, turns
every exception into an ERROR result that says what happened, and records how long each took.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from universal_healer.exceptions import CommandTimeoutError, RemoteError
from universal_healer.hosts.base import Host, HostFacts
from universal_healer.model import (
    Application,
    CheckCategory,
    CheckResult,
    CheckStatus,
    RiskLevel,
    SiteProbe,
    StackInfo,
)

__all__ = ["DEFAULT_TIMEOUT_S", "CheckContext", "DiagnosticCheck", "FactsCache", "run_checks"]

DEFAULT_TIMEOUT_S = 30.0

log = logging.getLogger(__name__)


class DiagnosticCheck:
    """Base class of every diagnostic check.

    Subclasses set the class attributes and implement :meth:`run`. A check reports a finding
    with its own severity; it never heals anything.

    :cvar name: unique, stable id (``"disk_space"``); results and strategies refer to it.
    :cvar timeout: seconds before the runner gives up on it; None takes the runner's default.
    :cvar depends_on: names of checks whose failure makes this one's healing pointless.
    """

    name: ClassVar[str]
    category: ClassVar[CheckCategory]
    severity: ClassVar[RiskLevel]
    description: ClassVar[str] = ""
    timeout: ClassVar[float | None] = None
    depends_on: ClassVar[tuple[str, ...]] = ()

    async def run(self, ctx: CheckContext) -> CheckResult:
        """Look at the application and return a result built with ``ctx``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<check {self.name}>"


@attrs.define
class FactsCache:
    """Gathers a host's facts once and shares them between every check of a run."""

    host: Host
    _task: asyncio.Task[HostFacts] | None = None

    async def get(self) -> HostFacts:
        """The host's facts, gathered on first use."""
        if self._task is None:
            self._task = asyncio.ensure_future(self.host.facts())
        return await asyncio.shield(self._task)


@attrs.frozen(kw_only=True)
class CheckContext:
    """What a check gets to work with, and helpers to build its result.

    :param secrets: decrypted credentials for this application. Never put them in a result.
    """

    check: DiagnosticCheck
    host: Host
    app: Application
    stack: StackInfo | None
    probe: SiteProbe | None = None
    secrets: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    facts_cache: FactsCache

    async def facts(self) -> HostFacts:
        """Host-wide facts (disk, memory, load), gathered once per host per run."""
        return await self.facts_cache.get()

    def path(self, *parts: str) -> str:
        """An absolute path inside the application root."""
        return os.path.join(self.app.path, *parts)

    def result(
        self,
        status: CheckStatus,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        suggested_fix: str | None = None,
        severity: RiskLevel | None = None,
    ) -> CheckResult:
        """A result of this check; ``severity`` defaults to the check's own."""
        return CheckResult(
            check=self.check.name,
            category=self.check.category,
            status=status,
            severity=severity or self.check.severity,
            message=message,
            details=dict(details or {}),
            suggested_fix=suggested_fix,
        )

    def passed(self, message: str, **details: Any) -> CheckResult:
        """A PASS result with optional details."""
        return self.result(CheckStatus.PASS, message, details=details)

    def warn(
        self, message: str, *, suggested_fix: str | None = None, **details: Any
    ) -> CheckResult:
        """A WARN result."""
        return self.result(CheckStatus.WARN, message, details=details, suggested_fix=suggested_fix)

    def fail(
        self, message: str, *, suggested_fix: str | None = None, **details: Any
    ) -> CheckResult:
        """A FAIL result."""
        return self.result(CheckStatus.FAIL, message, details=details, suggested_fix=suggested_fix)

    def error(self, message: str, **details: Any) -> CheckResult:
        """An ERROR result: the check could not tell."""
        return self.result(CheckStatus.ERROR, message, details=details)


def _error_result(check: DiagnosticCheck, message: str, **details: Any) -> CheckResult:
    return CheckResult(
        check=getattr(check, "name", type(check).__name__),
        category=getattr(check, "category", CheckCategory.SYSTEM),
        status=CheckStatus.ERROR,
        severity=getattr(check, "severity", RiskLevel.LOW),
        message=message,
        details=details,
    )


async def _run_one(
    check: DiagnosticCheck,
    make_context: Callable[[DiagnosticCheck], CheckContext],
    default_timeout: float,
) -> CheckResult:
    timeout = check.timeout if getattr(check, "timeout", None) is not None else default_timeout
    started = time.perf_counter()
    try:
        outcome: object = await asyncio.wait_for(check.run(make_context(check)), timeout)
        if not isinstance(outcome, CheckResult):  # plugins are untyped at runtime
            result = _error_result(
                check, f"check returned {type(outcome).__name__}, not a CheckResult"
            )
        else:
            result = outcome
    except TimeoutError:
        result = _error_result(check, f"check timed out after {timeout:g} s", timeout_s=timeout)
    except CommandTimeoutError as err:
        result = _error_result(check, str(err), timeout_s=err.timeout)
    except RemoteError as err:
        result = _error_result(check, f"host error: {err}", host=err.host)
    except asyncio.CancelledError:
        raise
    except Exception as err:
        log.warning("check %s crashed", getattr(check, "name", check), exc_info=True)
        result = _error_result(check, f"check crashed: {type(err).__name__}: {err}")
    elapsed_ms = round((time.perf_counter() - started) * 1000)
    return attrs.evolve(result, execution_time_ms=elapsed_ms)


async def run_checks(
    checks: Iterable[DiagnosticCheck],
    make_context: Callable[[DiagnosticCheck], CheckContext],
    *,
    limit: asyncio.Semaphore | None = None,
    default_timeout: float = DEFAULT_TIMEOUT_S,
) -> tuple[CheckResult, ...]:
    """Run checks concurrently and return one result per check, sorted by check name.

    :param make_context: builds the context a check runs with.
    :param limit: bounds how many checks run at once (share one per host); None means 8.
    :param default_timeout: seconds for checks that set no timeout of their own.

    Never raises for anything a check does: exceptions and timeouts become ERROR results.
    """
    gate = limit or asyncio.Semaphore(8)

    async def gated(check: DiagnosticCheck) -> CheckResult:
        async with gate:
            return await _run_one(check, make_context, default_timeout)

    jobs: Sequence[Awaitable[CheckResult]] = [gated(check) for check in checks]
    results = await asyncio.gather(*jobs)
    return tuple(sorted(results, key=lambda r: r.check))
