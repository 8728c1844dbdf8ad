"""A host as a fleet run sees it: work for many applications coalesced into few remote commands.

Diagnosing the applications of a remote host one by one would cost round trips that grow
with applications x checks. A view of a :class:`~universal_healer.hosts.base.Host` keeps them
growing with hosts instead, without changing a check or the Host protocol (each application
then sees it through an :class:`~universal_healer._app_host.AppHost`).

:class:`BatchingHost`
    One per host and run. ``stat`` calls made by concurrent checks in the same turn of the
    event loop travel in ONE remote command, and so do their ``read_files`` calls (one per
    size cap) and plain commands (several to a command, each under its own timeout);
    :meth:`BatchingHost.list_dirs` lists every application root in one command
    (:func:`probe_apps` then reads their probe files with one ``read_files`` per size cap).
    Answers are exactly the wrapped host's: anything the batch cannot tell for certain (a
    path that is neither there nor clearly missing) is asked again with the host's own
    ``stat``.

Everything travels as argument vectors; the scripts take the paths as positional parameters,
never inside the script text (DESIGN.md, decision 7). A batch of stats or listings starts one
``find`` on the host, however many paths it holds: there, creating processes is what costs.
The scripts and their parsers are in :mod:`universal_healer._fleet_wire`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping, Sequence

import attrs

from universal_healer import _fleet_wire as fw
from universal_healer.discovery import probe_paths, probe_roots
from universal_healer.exceptions import (
    CommandTimeoutError,
    HostUnreachableError,
)
from universal_healer.hosts import _sshwire as wire
from universal_healer.hosts.base import (
    CommandResult,
    DirEntry,
    FileRead,
    FileStat,
    Host,
    HostFacts,
    ScannedDir,
    ScanResult,
)
from universal_healer.model import SiteProbe
from universal_healer.plugins import PluginManager

__all__ = ["BatchingHost", "probe_apps"]

_RUN_BATCH = 8  # commands in one batch, all running at once on the host
_RUN_LANES = 2  # batches in flight per host: at most 16 batched commands at once
_TIMED_OUT = (124, 137)

_COMMAND_TIMEOUT_S = 60.0
_MAX_LISTING = 64 * 1024 * 1024


@attrs.define
class _Command:
    argv: tuple[str, ...]
    timeout: float
    max_output: int
    future: asyncio.Future[CommandResult]


class BatchingHost:
    """A host whose ``stat`` calls are coalesced and whose roots are listed in one command.

    :param host: the host to wrap.
    :param batch: coalesce (worth it over SSH); False passes every call straight through.
    :param command_timeout: seconds for each batched command.
    """

    def __init__(
        self, host: Host, *, batch: bool, command_timeout: float = _COMMAND_TIMEOUT_S
    ) -> None:
        self.host = host
        self.batch = batch
        self.command_timeout = command_timeout
        self._pending: list[tuple[str, asyncio.Future[FileStat | None]]] = []
        self._reads: dict[int, list[tuple[list[str], asyncio.Future[Mapping[str, FileRead]]]]] = {}
        self._flushing: set[asyncio.Task[None]] = set()
        self._known: dict[str, FileStat | None] = {}
        self._commands: list[_Command] = []
        self._lanes = 0
        self._lane_starting = False
        self._batch_runs = batch

    @property
    def name(self) -> str:
        """The wrapped host's name."""
        return self.host.name

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = 60.0,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        input: bytes | None = None,
        max_output: int = 1024 * 1024,
    ) -> CommandResult:
        """Run a command; concurrent plain commands (no ``env``, ``cwd`` or ``input``, with a
        timeout) share one remote command, each still under its own timeout."""
        vector = tuple(argv)
        if not vector:
            raise ValueError("argv must not be empty")
        if not self._batch_runs or env or cwd is not None or input is not None or not timeout:
            return await self.host.run(
                vector, timeout=timeout, env=env, cwd=cwd, input=input, max_output=max_output
            )
        loop = asyncio.get_running_loop()
        command = _Command(
            argv=vector, timeout=timeout, max_output=max_output, future=loop.create_future()
        )
        self._commands.append(command)
        if not self._lane_starting and self._lanes < _RUN_LANES:
            # Every check woken in this turn of the loop gets to add its command first.
            self._lane_starting = True
            loop.call_soon(self._start_lanes)
        return await command.future

    async def read_files(self, paths: Sequence[str], *, max_bytes: int) -> Mapping[str, FileRead]:
        """Read files; concurrent calls with the same cap share one ``read_files`` of the
        wrapped host (one remote command per ~96 KiB of paths)."""
        wanted = list(dict.fromkeys(paths))
        if not self.batch or not wanted:
            return await self.host.read_files(wanted, max_bytes=max_bytes)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Mapping[str, FileRead]] = loop.create_future()
        if not self._reads:
            # Every check woken in this turn of the loop gets to add its paths first.
            loop.call_soon(self._flush_reads)
        self._reads.setdefault(max_bytes, []).append((wanted, future))
        return await future

    async def stat(self, path: str) -> FileStat | None:
        """``lstat`` one path; concurrent calls share one remote command."""
        if path in self._known:
            return self._known[path]
        if not self.batch or not path.startswith("/"):
            return await self.host.stat(path)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[FileStat | None] = loop.create_future()
        if not self._pending:
            # Every check woken in this turn of the loop gets to add its paths first.
            loop.call_soon(self._flush)
        self._pending.append((path, future))
        return await future

    async def list_dir(self, path: str) -> tuple[DirEntry, ...]:
        """The wrapped host's ``list_dir``."""
        return await self.host.list_dir(path)

    async def scan(
        self,
        roots: Sequence[str],
        *,
        markers: frozenset[str],
        prune: frozenset[str],
        max_depth: int,
    ) -> ScanResult:
        """The wrapped host's ``scan`` (already one command)."""
        return await self.host.scan(roots, markers=markers, prune=prune, max_depth=max_depth)

    async def facts(self) -> HostFacts:
        """The wrapped host's ``facts``."""
        return await self.host.facts()

    async def close(self) -> None:
        """Wait for batches in flight; the wrapped host is closed by its owner."""
        if self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)

    # -- batches ----------------------------------------------------------------------------

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._stat_batch(pending))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    def _flush_reads(self) -> None:
        reads, self._reads = self._reads, {}
        for max_bytes, callers in reads.items():
            task = asyncio.get_running_loop().create_task(self._read_batch(max_bytes, callers))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def _read_batch(
        self,
        max_bytes: int,
        callers: list[tuple[list[str], asyncio.Future[Mapping[str, FileRead]]]],
    ) -> None:
        live = [(paths, future) for paths, future in callers if not future.done()]
        every = list(dict.fromkeys(path for paths, _ in live for path in paths))
        try:
            found = await self.host.read_files(every, max_bytes=max_bytes) if every else {}
        except asyncio.CancelledError:
            for _, future in live:
                future.cancel()
            raise
        except Exception as err:  # noqa: BLE001 - the batch's failure is each caller's
            for _, future in live:
                if not future.done():
                    future.set_exception(err)
            return
        for paths, future in live:
            if not future.done():
                future.set_result({path: found[path] for path in paths})

    async def _stat_batch(self, pending: list[tuple[str, asyncio.Future[FileStat | None]]]) -> None:
        waiting: dict[str, list[asyncio.Future[FileStat | None]]] = {}
        for path, future in pending:
            waiting.setdefault(path, []).append(future)
        chunks = wire.batches(list(waiting))
        answers = await asyncio.gather(
            *(self._stat_chunk(chunk) for chunk in chunks), return_exceptions=True
        )
        for chunk, answer in zip(chunks, answers, strict=True):
            for path in chunk:
                for future in waiting[path]:
                    if future.done():  # its caller was cancelled
                        continue
                    if isinstance(answer, asyncio.CancelledError):
                        future.cancel()
                    elif isinstance(answer, BaseException):
                        future.set_exception(answer)
                    else:
                        outcome = answer[path]
                        if isinstance(outcome, BaseException):
                            future.set_exception(outcome)
                        else:
                            future.set_result(outcome)

    async def prefetch_stats(self, paths: Sequence[str]) -> None:
        """``lstat`` these paths now, in as few commands as the batch allows, and answer later
        ``stat`` calls for them from what was found (a snapshot for one diagnosis run).

        A path the batch could not settle is simply not remembered.
        """
        if not self.batch:
            return
        wanted = [path for path in dict.fromkeys(paths) if path.startswith("/")]
        for chunk in wire.batches(wanted):
            for path, outcome in (await self._stat_chunk(chunk, settle=False)).items():
                if not isinstance(outcome, BaseException):
                    self._known[path] = outcome

    async def _stat_chunk(
        self, paths: list[str], *, settle: bool = True
    ) -> dict[str, FileStat | BaseException | None]:
        if not paths:
            return {}
        done = await self.host.run(
            ("sh", "-c", fw.STAT_SCRIPT, "sh", *paths),
            timeout=self.command_timeout,
            max_output=sum(len(fw.raw(path)) + 96 for path in paths) + 4096,
        )
        settled = fw.settled_stats(paths, done.stdout) if done.ok and not done.truncated else None
        # An answer that cannot be trusted settles nothing: every path is asked one by one.
        found: dict[str, FileStat | BaseException | None] = dict(settled or {})
        unsure = [path for path in paths if path not in found]
        if not settle:
            return found
        singles = await asyncio.gather(
            *(self.host.stat(path) for path in unsure), return_exceptions=True
        )
        for path, single in zip(unsure, singles, strict=True):
            if isinstance(single, BaseException) and not isinstance(single, Exception):
                raise single  # cancellation and the like are not an answer
            found[path] = single
        return found

    async def list_dirs(self, paths: Sequence[str]) -> dict[str, frozenset[str]]:
        """The names in each directory (a directory's name ends with ``/``), for every path
        that could be listed completely, in one remote command (one ``find``) per ~96 KiB of
        paths. Paths that are not directories, or cannot be listed, are left out."""
        absolute = [path for path in dict.fromkeys(paths) if path.startswith("/")]
        listed: dict[str, frozenset[str]] = {}
        for chunk in wire.batches(absolute):
            done = await self.host.run(
                ("sh", "-c", fw.LIST_SCRIPT, "sh", *chunk),
                timeout=self.command_timeout,
                max_output=_MAX_LISTING,
            )
            found = None if done.truncated else fw.read_listing(chunk, done.stdout)
            if found is None:  # cut short or garbled: list directory by directory instead
                done = await self.host.run(
                    ("sh", "-c", fw.LIST_EACH_SCRIPT, "sh", *chunk),
                    timeout=self.command_timeout,
                    max_output=_MAX_LISTING,
                )
                found = fw.each_listing(chunk, done.stdout.split(b"\0")[:-1])
            listed.update(found)
        return listed

    def _start_lanes(self) -> None:
        """Start lanes for the commands waiting. A lane sends up to :data:`_RUN_BATCH` of them
        at a time until none is left, so commands that arrive while every lane is busy wait
        together and leave together: the busier the host, the fuller the batches."""
        self._lane_starting = False
        loop = asyncio.get_running_loop()
        wanted = -(-len(self._commands) // _RUN_BATCH)  # batches the queue fills right now
        while self._lanes < min(_RUN_LANES, wanted):
            self._lanes += 1
            task = loop.create_task(self._lane())
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def _lane(self) -> None:
        try:
            while self._commands:
                batch = self._commands[:_RUN_BATCH]
                del self._commands[:_RUN_BATCH]
                await self._run_batch(batch)
        finally:
            self._lanes -= 1

    async def _run_batch(self, commands: list[_Command]) -> None:
        live = [command for command in commands if not command.future.done()]
        if not self._batch_runs or len(live) < 2:
            await asyncio.gather(*(self._run_alone(command) for command in live))
            return
        try:
            answers = await self._run_together(live)
        except Exception as err:  # noqa: BLE001 - the batch's failure is each command's
            for command in live:
                if not command.future.done():
                    command.future.set_exception(err)
            return
        if answers is None:  # no coreutils timeout on the host: nothing ran; one by one
            self._batch_runs = False
            await asyncio.gather(*(self._run_alone(command) for command in live))
            return
        for command, answer in zip(live, answers, strict=True):
            if command.future.done():
                continue
            if isinstance(answer, BaseException):
                command.future.set_exception(answer)
            else:
                command.future.set_result(answer)

    async def _run_alone(self, command: _Command) -> None:
        try:
            result = await self.host.run(
                command.argv, timeout=command.timeout, max_output=command.max_output
            )
        except Exception as err:  # noqa: BLE001 - handed to the caller as it is
            if not command.future.done():
                command.future.set_exception(err)
        else:
            if not command.future.done():
                command.future.set_result(result)

    async def _run_together(
        self, commands: list[_Command]
    ) -> list[CommandResult | BaseException] | None:
        boundary = secrets.token_hex(16)
        args = [boundary]
        for command in commands:
            args += [f"{command.timeout:.3f}", str(command.max_output), str(len(command.argv))]
            args += command.argv
        longest = max(command.timeout for command in commands)
        started = time.monotonic()
        done = await self.host.run(
            ("sh", "-c", fw.RUN_SCRIPT, "sh", *args),
            timeout=longest + 30.0,
            max_output=sum(c.max_output * 2 + 128 for c in commands),
        )
        if done.exit_status == 125 and not done.stdout:
            return None
        elapsed = time.monotonic() - started
        try:
            return self._split(commands, done.stdout, boundary.encode(), elapsed)
        except (ValueError, IndexError) as err:
            raise HostUnreachableError(
                self.name, f"unexpected answer to a batch of commands: {err}"
            ) from err

    def _split(
        self, commands: list[_Command], data: bytes, boundary: bytes, elapsed: float
    ) -> list[CommandResult | BaseException]:
        answers: list[CommandResult | BaseException] = []
        head, separator = boundary + b" ", b"\0" + boundary + b"\0"
        at = 0
        for command in commands:
            if not data.startswith(head, at):
                raise ValueError(f"no header for {command.argv[0]!r}")
            end = data.index(b"\0", at)
            status = int(data[at + len(head) : end])
            out_end = data.index(separator, end + 1)
            err_start = out_end + len(separator)
            err_end = data.index(separator, err_start)
            stdout, stderr = data[end + 1 : out_end], data[err_start:err_end]
            at = err_end + len(separator)
            if status in _TIMED_OUT:
                answers.append(CommandTimeoutError(self.name, command.argv, command.timeout))
                continue
            cap = command.max_output
            answers.append(
                CommandResult(
                    argv=command.argv,
                    # sh reports death by signal N as 128 + N; subprocess says -N.
                    exit_status=128 - status if 128 < status < 160 else status,
                    stdout=stdout[:cap],
                    stderr=stderr[:cap],
                    duration_s=elapsed,
                    truncated=len(stdout) > cap or len(stderr) > cap,
                )
            )
        return answers


async def probe_apps(
    host: BatchingHost, manager: PluginManager, roots: Sequence[str]
) -> dict[str, SiteProbe]:
    """Probe known application roots for diagnosis, keyed by root.

    Over SSH: one command lists every root, then one ``read_files`` per size cap reads the
    probe files of all of them, so a hundred roots cost what one costs. Elsewhere this is
    :func:`~universal_healer.discovery.probe_paths`. A root that cannot be listed is left out
    (its checks run without a probe).
    """
    if not host.batch:
        return await probe_paths(host.host, manager, roots)
    listed = await host.list_dirs(roots)
    scanned = [ScannedDir(path=root, entries=entries) for root, entries in listed.items()]
    probes = await probe_roots(host.host, scanned, manager.probe_files())
    return {probe.root: probe for probe in probes}
