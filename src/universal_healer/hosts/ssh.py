"""SSHHost: a remote machine over one pooled asyncssh connection.

:class:`SSHHost` answers the questions :class:`~universal_healer.hosts.local.LocalHost` answers
and returns the same values for the same files. Each answer costs round trips, so each
operation is ONE remote command whatever its size: ``read_files`` frames every file of a batch
in one stream, ``scan`` walks every root in one command, ``facts`` reads everything at once
(the scripts and their parsers live in :mod:`universal_healer.hosts._sshwire`, and for
``read_files`` and ``scan`` in :mod:`universal_healer.hosts._sshread` and
:mod:`universal_healer.hosts._sshscan`). The connection and the channels the commands run on
are in :mod:`universal_healer.hosts._sshconnection`, the trust of host keys in
:mod:`universal_healer.hosts._sshtrust`.

How a command travels
    The vector is quoted with :func:`shlex.join` behind a fixed POSIX ``sh`` wrapper started as
    ``exec env -i PATH=... LANG=C.UTF-8 LC_ALL=C.UTF-8 sh -c WRAPPER ...``, so that it sees the
    same minimal environment as a local command. Bytes that are not UTF-8 (surrogate escapes)
    reach the remote side as the original bytes. The remote login shell must be POSIX-like.

Secrets never appear on a command line
    ``env`` values travel on the command's stdin, ahead of the caller's ``input``: one
    ``NAME VALUE`` line each (VALUE octal-escaped), then an empty line. The wrapper exports
    them and ``exec``\\ s the command, which reads the rest of the same stdin (``read`` takes a
    pipe one byte at a time). Nothing shows in ``ps`` or ``/proc/*/cmdline``; no ``AcceptEnv``
    on the server, no temporary file.

A timeout kills the remote command
    sshd starts each session's command as the leader of a new session and process group. The
    wrapper prints its pid, which the ``exec``\\ ed command keeps, behind a random token as the
    first line of stderr (removed from the result). On timeout (or cancellation) the host runs
    ``kill -KILL -- -PID`` over one extra channel, killing the command and its children, and
    raises :class:`~universal_healer.exceptions.CommandTimeoutError`. Unlike LocalHost, children
    left running by a command that *finished* are not killed.

Trust
    Host keys are checked against ``known_hosts``. An unknown key is refused with its type, its
    SHA256 fingerprint and the command that trusts it; a key other than the one on file is
    refused as *changed*, always. ``trust_on_first_use`` only ever adds keys for hosts that
    have none, and records each in :attr:`SSHHost.keys_trusted_on_first_use`.

Errors
    asyncssh's and the OS's exceptions are translated in one place, :func:`translate_error`.
    A connection found dead is replaced once, by the next operation; an operation that was
    running when it dropped fails with :class:`~universal_healer.exceptions.HostUnreachableError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, TypeVar

import asyncssh
import attrs

from universal_healer.exceptions import HostUnreachableError, RemoteError
from universal_healer.hosts import _sshwire as wire
from universal_healer.hosts._sshconnection import (
    _KILL_TIMEOUT_S,
    _close,
    _Connection,
    _Pool,
    translate_error,
)
from universal_healer.hosts._sshread import READ_SCRIPT, parse_reads, read_args
from universal_healer.hosts._sshscan import scan_command, scan_result
from universal_healer.hosts._sshtrust import TrustedHostKey
from universal_healer.hosts.base import (
    CommandResult,
    DirEntry,
    FileRead,
    FileStat,
    HostFacts,
    ScanResult,
)

__all__ = ["SSHConfig", "SSHHost", "TrustedHostKey", "translate_error"]

T = TypeVar("T")

# The environment of the host's own scripts, on top of the wrapper's minimal one: nothing. Tests
# set PATH here to run them, against a real sshd, as on a host without tar or with a broken one.
_SCRIPT_ENV: Mapping[str, str] = {}


def _positive(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


def _port(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 < value < 65536:
        raise ValueError(f"{attribute.name} must be a TCP port (1-65535), not {value!r}")


@attrs.frozen(kw_only=True)
class SSHConfig:
    """How to reach and log into one SSH host.

    :param username: the remote user; None for the local user's name, as ssh does.
    :param client_keys: private key files; empty means ssh's defaults (``~/.ssh/id_*``).
    :param known_hosts: the file host keys are checked against (and appended to on first use).
    :param password: tried when keys fail; never logged, never in ``repr``.
    :param agent: also offer the keys of the agent at ``$SSH_AUTH_SOCK``.
    :param connect_timeout: seconds to connect, exchange keys and log in.
    :param keepalive_interval: seconds between keepalives; a connection that misses
        ``keepalive_count_max`` of them in a row is dropped.
    :param max_channels: commands in flight at once. Keep it, plus one briefly used to kill a
        timed-out command, below the server's ``MaxSessions`` (10 by default).
    :param command_timeout: the timeout of the host's own commands (``read_files``, ``scan``,
        ``stat``, ``list_dir``, ``facts``); ``run`` takes its own.
    :param jump: a host to connect through, as ``ssh -J`` does.
    :param trust_on_first_use: accept, append and record the key of a host known_hosts has no
        key for. A key that differs from the one on file is refused all the same.
    """

    host: str
    port: int = attrs.field(default=22, validator=_port)
    username: str | None = None
    client_keys: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    known_hosts: str = "~/.ssh/known_hosts"
    password: str | None = attrs.field(default=None, repr=False)
    agent: bool = False
    connect_timeout: float = attrs.field(default=10.0, validator=_positive)
    keepalive_interval: float = attrs.field(default=15.0, validator=_positive)
    keepalive_count_max: int = attrs.field(default=3, validator=_positive)
    max_channels: int = attrs.field(default=8, validator=_positive)
    command_timeout: float | None = attrs.field(default=60.0, validator=_positive)
    jump: SSHConfig | None = None
    trust_on_first_use: bool = False

    @property
    def address(self) -> str:
        """``host``, or ``host:port`` when the port is not 22."""
        return self.host if self.port == 22 else f"{self.host}:{self.port}"


@attrs.define
class SSHHost(_Connection):
    """A server reached over SSH; see the module docstring for how each operation travels.

    :param name: the host's name in the inventory (default: ``host`` or ``host:port``).
    :param on_first_use: called with each key accepted by trust on first use.
    :ivar round_trips: remote commands run, one channel each, for tests and benchmarks.
    :ivar connections_made: SSH connections opened, reconnects included.
    :ivar peak_channels: the most command channels that were open at once.
    :ivar channels_refused: session channels the server refused for a moment (and that were
        asked for again).
    :ivar keys_trusted_on_first_use: every key accepted by trust on first use.
    """

    config: SSHConfig
    name: str = attrs.field(
        default=attrs.Factory(lambda self: self.config.address, takes_self=True)
    )
    on_first_use: Callable[[TrustedHostKey], None] | None = None
    round_trips: int = attrs.field(default=0, init=False)
    connections_made: int = attrs.field(default=0, init=False)
    open_channels: int = attrs.field(default=0, init=False)
    peak_channels: int = attrs.field(default=0, init=False)
    channels_refused: int = attrs.field(default=0, init=False)
    keys_trusted_on_first_use: list[TrustedHostKey] = attrs.field(factory=list, init=False)
    _pool: _Pool | None = attrs.field(default=None, init=False, repr=False)

    # -- the Host protocol ------------------------------------------------------------------

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
        """Run an argument vector remotely; a timeout kills it and its process group."""
        vector = tuple(argv)
        if not vector:
            raise ValueError("argv must not be empty")
        started = time.monotonic()
        stdin = wire.encode_env(env) + (input or b"")
        output, status = await self._execute(
            vector, cwd=cwd, stdin=stdin, timeout=timeout, max_output=max_output
        )
        return CommandResult(
            argv=vector,
            exit_status=status,
            stdout=bytes(output.stdout),
            stderr=bytes(output.stderr),
            duration_s=time.monotonic() - started,
            truncated=output.truncated,
        )

    async def read_files(self, paths: Sequence[str], *, max_bytes: int) -> Mapping[str, FileRead]:
        """Read every path with one remote command (one per ~96 KiB of quoted paths)."""
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        unique = list(dict.fromkeys(paths))
        reads: dict[str, FileRead] = (
            {"": FileRead(path="", error="missing")} if "" in unique else {}
        )
        batches = wire.batches([path for path in unique if path])
        for batch in await asyncio.gather(*(self._read_batch(b, max_bytes) for b in batches)):
            reads.update(batch)
        return {path: reads[path] for path in unique}

    async def stat(self, path: str) -> FileStat | None:
        """``lstat`` one path, with one ``find -printf``."""
        result = await self._script(wire.STAT_SCRIPT, wire.safe(path))
        if not result.ok or not result.stdout:
            reason = wire.describe(result.stderr)
            if reason in ("missing", "Not a directory"):
                return None
            raise RemoteError(self.name, f"cannot stat {wire.shown(path)}: {reason}")
        return self._parsed(wire.parse_stat, path, result.stdout)

    async def list_dir(self, path: str) -> tuple[DirEntry, ...]:
        """List one directory, sorted by name; raises OSError as ``os.scandir`` would."""
        result = await self._script(wire.LIST_SCRIPT, wire.safe(path))
        if not result.ok:
            raise wire.os_error(wire.describe(result.stderr), path)
        return self._parsed(wire.parse_listing, result.stdout)

    async def scan(
        self,
        roots: Sequence[str],
        *,
        markers: frozenset[str],
        prune: frozenset[str],
        max_depth: int,
    ) -> ScanResult:
        """Walk every root with one remote command, then choose candidates here exactly as
        LocalHost does: same candidates, same errors in the same order."""
        if not roots:
            return ScanResult()
        script, args = scan_command(roots, prune=prune, max_depth=max_depth)
        result = await self._script(script, *args)
        return self._parsed(
            lambda: scan_result(
                roots, result.stdout, result.stderr,
                markers=markers, prune=prune, max_depth=max_depth,
            )
        )  # fmt: skip

    async def facts(self) -> HostFacts:
        """Hostname, CPUs, load, memory, every real filesystem, the listening sockets and the
        process names, in one command."""
        boundary = secrets.token_hex(16)
        result = await self._script(wire.FACTS_SCRIPT, boundary)
        return self._parsed(lambda: wire.parse_facts(result.stdout, boundary=boundary))

    async def close(self) -> None:
        """Close the connection (and the jump host's); the next call connects again."""
        pool, self._pool = self._pool, None
        if pool is None or pool.loop is not asyncio.get_running_loop():
            return
        if pool.background:
            await asyncio.wait(pool.background, timeout=_KILL_TIMEOUT_S)
        if pool.connecting is not None:
            pool.connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, RemoteError):
                await pool.connecting
        await _close(pool.conn, pool.jump)

    # -- beyond the protocol ----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def forward_port(self, remote_host: str, remote_port: int) -> AsyncIterator[int]:
        """Forward a port on 127.0.0.1 here to ``remote_host:remote_port`` as the server sees
        it, while the context is open; yields the local port.

        A check reaches a remote database through it with a driver, so the password goes
        through the tunnel and never onto a command line.
        """

        async def listen(conn: asyncssh.SSHClientConnection) -> asyncssh.SSHListener:
            return await conn.forward_local_port("127.0.0.1", 0, remote_host, remote_port)

        listener = await self._on_connection(listen)
        try:
            yield listener.get_port()
        finally:
            listener.close()
            await listener.wait_closed()

    def trusted(self, key: TrustedHostKey) -> None:
        """Record a key accepted on first use (called while connecting)."""
        self.keys_trusted_on_first_use.append(key)
        if self.on_first_use is not None:
            self.on_first_use(key)

    # -- commands ---------------------------------------------------------------------------

    async def _script(self, script: str, *args: str) -> CommandResult:
        """Run one of the scripts (:mod:`_sshwire`, :mod:`_sshread`, :mod:`_sshscan`) with
        ``args`` as its positional parameters."""
        vector = ("sh", "-c", script, "sh", *args)
        stdin = wire.encode_env(_SCRIPT_ENV)
        output, status = await self._execute(
            vector, cwd=None, stdin=stdin, timeout=self.config.command_timeout, max_output=None
        )
        return CommandResult(
            argv=vector, exit_status=status, stdout=bytes(output.stdout),
            stderr=bytes(output.stderr),
        )  # fmt: skip

    def _parsed(self, parse: Callable[..., T], *args: object) -> T:
        try:
            return parse(*args)
        except (wire.WireError, ValueError, IndexError) as err:
            raise HostUnreachableError(self.name, f"unexpected answer: {err}") from err

    async def _read_batch(self, paths: list[str], max_bytes: int) -> dict[str, FileRead]:
        reads = await self._read_once(paths, max_bytes, way="tar")
        # Paths the answer left out (a file that changed while the script looked at it): one
        # more look, the head way, which answers for every path.
        again = [path for path in paths if path not in reads]
        if again:
            reads.update(await self._read_once(again, max_bytes, way="head"))
        if len(reads) != len(paths):
            raise HostUnreachableError(
                self.name, f"unexpected answer: read_files: {len(reads)} of {len(paths)} files"
            )
        return reads

    async def _read_once(
        self, paths: list[str], max_bytes: int, *, way: str
    ) -> dict[str, FileRead]:
        boundary = secrets.token_hex(16)
        args = read_args(paths, boundary=boundary, max_bytes=max_bytes, way=way)
        result = await self._script(READ_SCRIPT, *args)
        return self._parsed(
            lambda: parse_reads(paths, result.stdout, boundary=boundary, max_bytes=max_bytes)
        )
