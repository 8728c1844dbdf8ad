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
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, Self, TypeVar

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

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "CheckContext",
    "DiagnosticCheck",
    "HostQuery",
    "HostRun",
    "close_run",
    "run_checks",
]

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

    def queries(
        self, app: Application, stack: StackInfo | None
    ) -> Iterable[tuple[HostQuery[Any, Any], Hashable]]:
        """The host-wide questions :meth:`run` will ask about ``app``, as (query, key) pairs.

        A fleet diagnosis asks them for every application of a host at once, before the checks
        run (:meth:`HostRun.prime`), so that one call answers as many keys as it may. Optional:
        declaring none is always correct, only slower on a host with many applications. Must
        not do I/O.
        """
        return ()

    def __repr__(self) -> str:
        return f"<check {self.name}>"


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class HostQuery(Generic[K, V]):
    """A question the checks of many applications ask of one host, answered for all at once.

    Some checks need a command per application (a ``find`` over its root, say). On a host with
    fifty applications that is fifty processes, and over SSH fifty round trips. A query lets
    them ask together: each check calls ``await ctx.ask(query, key)`` with its own key (its
    root), and the run hands every key asked of the host in the meantime to ONE call of
    :meth:`answer`::

        @attrs.frozen
        class CountFiles(HostQuery[str, int]):
            async def answer(self, host: Host, keys: Sequence[str]) -> Mapping[str, int]:
                done = await host.run(("find", *keys, "-printf", "%H\\0"), timeout=20)
                names = done.stdout.split(b"\\0")[:-1]
                return {key: names.count(os.fsencode(key)) for key in keys}

    Queries are compared by value: make them frozen attrs classes, so that two checks asking
    the same question share the batches. An answer must hold every key it was given; the
    answer for one key must be exactly what :meth:`answer` would say for that key alone (fall
    back to asking key by key whenever the batch cannot tell them apart). An exception from
    :meth:`answer` is raised to every check that waits on it.

    :cvar max_keys: keys handed to one call of :meth:`answer` at most.
    :cvar max_in_flight: calls of :meth:`answer` running at once on one host.
    """

    max_keys: ClassVar[int] = 64
    max_in_flight: ClassVar[int] = 2

    async def answer(self, host: Host, keys: Sequence[K]) -> Mapping[K, V]:
        """Answer for every key (distinct keys, in the order they were asked)."""
        raise NotImplementedError


class _Batches(Generic[K, V]):
    """One query's keys on one host: asked together, answered once each per run.

    The keys asked in one turn of the event loop go together. At most
    :attr:`HostQuery.max_in_flight` calls run at once; keys asked while every slot is busy
    wait, and leave together when a slot frees: the busier the host, the fuller the batches.
    """

    def __init__(self, query: HostQuery[K, V], host: Host) -> None:
        self.query = query
        self.host = host
        self.answered: dict[K, V] = {}
        self.waiting: dict[K, list[asyncio.Future[V]]] = {}
        self.in_flight: dict[K, list[asyncio.Future[V]]] = {}
        self.slots = asyncio.Semaphore(max(1, query.max_in_flight))
        self.flushing = False
        self.tasks: set[asyncio.Task[None]] = set()

    async def ask(self, key: K) -> V:
        if key in self.answered:
            return self.answered[key]
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        if key in self.in_flight:
            self.in_flight[key].append(future)
        else:
            self.waiting.setdefault(key, []).append(future)
            self._schedule()
        return await future

    def _schedule(self) -> None:
        if not self.flushing:
            self.flushing = True
            task = asyncio.get_running_loop().create_task(self._flush())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # every check woken in this turn adds its key first
        async with self.slots:
            self.flushing = False
            keys = [key for key, futures in self.waiting.items() if _wanted(futures)]
            batch = {key: self.waiting.pop(key) for key in keys[: max(1, self.query.max_keys)]}
            if any(_wanted(futures) for futures in self.waiting.values()):
                self._schedule()
            else:
                self.waiting.clear()
            if batch:
                self.in_flight.update(batch)
                try:
                    await self._answer(batch)
                finally:
                    for key in batch:
                        self.in_flight.pop(key, None)

    async def _answer(self, batch: dict[K, list[asyncio.Future[V]]]) -> None:
        try:
            answers = await self.query.answer(self.host, list(batch))
        except Exception as err:  # noqa: BLE001 - handed to every check that asked
            for futures in batch.values():
                _settle(futures, error=err)
            return
        for key, futures in batch.items():
            if key in answers:
                self.answered[key] = answers[key]
                _settle(futures, value=answers[key])
            else:
                missing = ValueError(f"{type(self.query).__name__} gave no answer for {key!r}")
                _settle(futures, error=missing)


async def close_run(run: HostRun) -> None:
    """Close ``run``; what its resources could not undo is logged as an error, never raised
    (the checks' results stand)."""
    try:
        await run.aclose()
    except Exception:
        log.exception("closing the checks' run on %s left something behind", run.host.name)


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # whoever asks meets it (or asks again); no "never retrieved" warning


def _wanted(futures: list[asyncio.Future[Any]]) -> bool:
    return any(not future.done() for future in futures)


def _settle(
    futures: list[asyncio.Future[Any]], *, value: Any = None, error: Exception | None = None
) -> None:
    for future in futures:
        if future.done():  # its check gave up waiting
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


@attrs.define
class _Shared:
    facts: asyncio.Task[HostFacts] | None = None
    batches: dict[HostQuery[Any, Any], _Batches[Any, Any]] = attrs.Factory(dict)
    priming: set[asyncio.Task[Any]] = attrs.Factory(set)
    resources: dict[Hashable, asyncio.Task[Any]] = attrs.Factory(dict)
    exits: contextlib.AsyncExitStack = attrs.Factory(contextlib.AsyncExitStack)
    closed: bool = False


@attrs.frozen
class HostRun:
    """What the checks of one host share during a run: the host's facts, gathered once, the
    :class:`HostQuery` batches, and resources kept for the run (:meth:`enter`).

    Make one per host and run, hand it to every check of every application on that host
    (``diagnose(..., host_run=...)`` does), and close it at the end: ``async with
    HostRun(host) as run:``, or :meth:`aclose`. :meth:`watched` gives one application a view
    of the same run that tells it about the errors its checks meet there.
    """

    host: Host
    _shared: _Shared = attrs.field(factory=_Shared, alias="_shared")
    _watch: Callable[[BaseException], None] | None = attrs.field(default=None, alias="_watch")

    async def facts(self) -> HostFacts:
        """The host's facts, gathered on first use."""
        if self._shared.facts is None:
            self._shared.facts = asyncio.ensure_future(self.host.facts())
        return await self._watched(asyncio.shield(self._shared.facts))

    async def ask(self, query: HostQuery[K, V], key: K) -> V:
        """``query``'s answer for ``key``, asked together with the other checks' keys."""
        return await self._watched(self._batches(query).ask(key))

    def prime(self, asks: Iterable[tuple[HostQuery[Any, Any], Hashable]]) -> None:
        """Ask these now, all together, without waiting for the answers.

        A check that asks one of them later gets the answer from the run, or joins the call on
        its way. A failure is not remembered: a check that asks after it gets a call of its own.
        """
        loop = asyncio.get_running_loop()
        for query, key in asks:
            task = loop.create_task(self._batches(query).ask(key))
            self._shared.priming.add(task)
            task.add_done_callback(self._shared.priming.discard)
            task.add_done_callback(_retrieve)

    def _batches(self, query: HostQuery[K, V]) -> _Batches[K, V]:
        batches = self._shared.batches.get(query)
        if batches is None:
            batches = self._shared.batches[query] = _Batches(query, self.host)
        return batches

    async def enter(
        self, key: Hashable, opener: Callable[[], contextlib.AbstractAsyncContextManager[V]]
    ) -> V:
        """A resource kept for the rest of the run, such as a database login that several
        checks of an application use: the first check to ask for ``key`` enters ``opener()``;
        every check that asks for ``key`` meanwhile or later gets what it gave, or the error it
        raised. It is exited when the run is closed.
        """
        if self._shared.closed:
            raise RuntimeError("this run is closed: its resources are gone")
        task = self._shared.resources.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(
                self._shared.exits.enter_async_context(opener())
            )
            task.add_done_callback(_retrieve)
            self._shared.resources[key] = task
        result: V = await self._watched(asyncio.shield(task))
        return result

    async def aclose(self) -> None:
        """Exit every resource of the run, the last entered first; an error in one (say, a
        file that could not be removed) is raised once all have been tried."""
        self._shared.closed = True
        opening = [task for task in self._shared.resources.values() if not task.done()]
        await asyncio.gather(*opening, return_exceptions=True)
        await self._shared.exits.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def watched(self, watch: Callable[[BaseException], None]) -> HostRun:
        """The same run, calling ``watch`` with every exception a check meets in it."""
        return HostRun(self.host, _shared=self._shared, _watch=watch)

    async def _watched(self, work: Awaitable[V]) -> V:
        try:
            return await work
        except Exception as err:
            if self._watch is not None:
                self._watch(err)
            raise


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
    host_run: HostRun

    async def facts(self) -> HostFacts:
        """Host-wide facts (disk, memory, load), gathered once per host per run."""
        return await self.host_run.facts()

    async def ask(self, query: HostQuery[K, V], key: K) -> V:
        """Ask ``query`` about ``key`` together with the checks of the host's other
        applications (see :class:`HostQuery`)."""
        return await self.host_run.ask(query, key)

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
        async with asyncio.timeout(timeout):  # no task of its own, unlike wait_for
            outcome: object = await check.run(make_context(check))
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
