"""SSHHost's connection: one pooled asyncssh connection, and a channel for each command.

:class:`_Connection` is the part of :class:`~universal_healer.hosts.ssh.SSHHost` below the
Host protocol (SSHHost inherits it): it connects, through the jump host if there is one, with
every concurrent caller sharing one attempt; replaces a connection found dead, once; opens a
session channel for each command, asking again when the server refuses one for a moment; runs
the command in the wrapper of :func:`~universal_healer.hosts._sshwire.remote_command`, feeds
its stdin and collects its output; and kills the remote process group on a timeout or a
cancellation. asyncssh's and the OS's exceptions are translated here, in one place,
:func:`translate_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

import asyncssh
import attrs

from universal_healer.exceptions import (
    AuthenticationError,
    CommandTimeoutError,
    HostUnreachableError,
    RemoteError,
)
from universal_healer.hosts import _sshwire as wire
from universal_healer.hosts._sshtrust import TrustedHostKey, _Client, _credentials

if TYPE_CHECKING:
    from universal_healer.hosts.ssh import SSHConfig

T = TypeVar("T")

# Every asyncssh error a connection or a channel can raise, and what it means to us. A test
# walks asyncssh's exception classes and fails when one is missing here.
_ASYNCSSH_ERRORS: Mapping[type[asyncssh.Error], type[RemoteError]] = {
    asyncssh.DisconnectError: HostUnreachableError,
    asyncssh.CompressionError: HostUnreachableError,
    asyncssh.ConnectionLost: HostUnreachableError,
    asyncssh.HostKeyNotVerifiable: AuthenticationError,
    asyncssh.IllegalUserName: AuthenticationError,
    # No algorithm in common: with known_hosts, usually a host key of another type than on file.
    asyncssh.KeyExchangeFailed: AuthenticationError,
    asyncssh.MACError: HostUnreachableError,
    asyncssh.PermissionDenied: AuthenticationError,
    asyncssh.ProtocolError: HostUnreachableError,
    asyncssh.ProtocolNotSupported: HostUnreachableError,
    asyncssh.ServiceNotAvailable: HostUnreachableError,
    asyncssh.ChannelOpenError: HostUnreachableError,
}

_KILL_TIMEOUT_S = 10.0
_REFUSED_CHANNEL_BACKOFF_S = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


def translate_error(host: str, err: BaseException, *, timeout: float | None = None) -> RemoteError:
    """Turn an asyncssh or OS error met on the way to ``host`` into our exception tree.

    :param timeout: the connect timeout, named in the message of a host that never answered.
    """
    kind: type[RemoteError] = HostUnreachableError
    if isinstance(err, RemoteError):
        return err
    if isinstance(err, asyncssh.DisconnectError | asyncssh.ChannelOpenError):
        mapped = (_ASYNCSSH_ERRORS.get(cls) for cls in type(err).__mro__)
        kind = next((k for k in mapped if k is not None), HostUnreachableError)
        reason = err.reason.strip() or type(err).__name__
    elif isinstance(err, TimeoutError):
        after = f" after {timeout:g} s" if timeout is not None else ""
        reason = f"timed out{after}: the host accepted no SSH session"
    elif isinstance(err, ConnectionRefusedError):
        reason = "connection refused (nothing listens on that port)"
    elif isinstance(err, socket.gaierror):
        reason = f"cannot resolve the host name: {err.strerror or err}"
    elif isinstance(err, OSError):
        reason = err.strerror or str(err) or type(err).__name__
    else:
        reason = f"{type(err).__name__}: {err}"
    return kind(host, reason)


# AES-GCM first: it runs in OpenSSL, where asyncssh's ChaCha20-Poly1305 spends Python time on
# every packet (the largest share of the healer's own CPU in the fleet benchmark).
_CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)


@attrs.define
class _Pool:
    """The connection and its limits, bound to the event loop that made them."""

    loop: asyncio.AbstractEventLoop
    channels: asyncio.Semaphore
    kill_lane: asyncio.Lock = attrs.field(factory=asyncio.Lock)
    conn: asyncssh.SSHClientConnection | None = None
    jump: asyncssh.SSHClientConnection | None = None
    client: _Client | None = None
    connecting: asyncio.Task[asyncssh.SSHClientConnection] | None = None
    ever_connected: bool = False
    background: set[asyncio.Task[None]] = attrs.field(factory=set)

    def alive(self) -> asyncssh.SSHClientConnection | None:
        if self.conn is not None and self.client is not None and not self.client.lost:
            return self.conn
        return None


@attrs.define
class _Output:
    stdout: bytearray = attrs.field(factory=bytearray)
    stderr: bytearray = attrs.field(factory=bytearray)
    truncated: bool = False
    pid: int | None = None  # the remote process group, once the wrapper has said it


class _Connection:
    """The pooled connection and the command channels of an SSHHost (a base class of it).

    The state is SSHHost's: its attrs fields, and its ``trusted``, declared below for the type
    checker.
    """

    # No slots of its own, so that SSHHost keeps no __dict__; hidden from mypy, which would
    # otherwise refuse the assignments below to the fields SSHHost's slots hold.
    if not TYPE_CHECKING:
        __slots__ = ()

    config: SSHConfig
    name: str
    round_trips: int
    connections_made: int
    open_channels: int
    peak_channels: int
    channels_refused: int
    _pool: _Pool | None
    trusted: Callable[[TrustedHostKey], None]

    # -- the connection ---------------------------------------------------------------------

    def _state(self) -> _Pool:
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool.loop is not loop:
            # A pool made under another event loop can be neither used nor closed from this one.
            self._pool = _Pool(loop=loop, channels=asyncio.Semaphore(self.config.max_channels))
        return self._pool

    async def _connection(self) -> asyncssh.SSHClientConnection:
        """The pooled connection. Concurrent callers share one attempt and its outcome, so a
        dead host costs one connect timeout, not one per caller."""
        pool = self._state()
        conn = pool.alive()
        if conn is not None:
            return conn
        if pool.connecting is None:
            task = pool.loop.create_task(self._connect(pool))

            def finished(done: asyncio.Task[asyncssh.SSHClientConnection]) -> None:
                pool.connecting = None
                if not done.cancelled():
                    done.exception()  # retrieved: a failure nobody awaits is not logged

            task.add_done_callback(finished)
            pool.connecting = task
        return await asyncio.shield(pool.connecting)

    async def _connect(self, pool: _Pool) -> asyncssh.SSHClientConnection:
        await _close(pool.conn, pool.jump)
        pool.conn = pool.jump = pool.client = None
        try:
            if self.config.jump is not None:
                pool.jump, _ = await self._open(self.config.jump, None)
            pool.conn, pool.client = await self._open(self.config, pool.jump)
        except RemoteError as err:
            await _close(pool.jump)
            pool.jump = None
            if pool.ever_connected:
                reason = f"connection lost; reconnecting failed: {err.reason}"
                raise type(err)(self.name, reason) from err
            raise
        pool.ever_connected = True
        self.connections_made += 1
        return pool.conn

    async def _open(
        self, config: SSHConfig, tunnel: asyncssh.SSHClientConnection | None
    ) -> tuple[asyncssh.SSHClientConnection, _Client]:
        where = self.name if config is self.config else f"{self.name} (jump host {config.address})"
        try:
            keys, known = await asyncio.to_thread(_credentials, config)
        except RemoteError as err:
            raise type(err)(where, err.reason) from err
        clients: list[_Client] = []

        def client_factory() -> _Client:
            clients.append(_Client(self, config, known))
            return clients[-1]

        try:
            async with asyncio.timeout(config.connect_timeout):
                conn = await asyncssh.connect(
                    config.host,
                    config.port,
                    tunnel=tunnel or (),
                    config=None,  # the inventory is the configuration, not ~/.ssh/config
                    username=config.username or (),
                    client_keys=keys or (),
                    password=config.password,
                    agent_path=() if config.agent else None,
                    known_hosts=known,
                    client_factory=client_factory,
                    connect_timeout=config.connect_timeout,
                    keepalive_interval=config.keepalive_interval,
                    keepalive_count_max=config.keepalive_count_max,
                    encryption_algs=_CIPHERS,
                )
        except (asyncssh.Error, OSError) as err:
            problem = clients[-1].key_problem if clients else None
            if problem is not None:
                raise AuthenticationError(where, problem) from err
            raise translate_error(where, err, timeout=config.connect_timeout) from err
        return conn, clients[-1]

    async def _on_connection(
        self, operation: Callable[[asyncssh.SSHClientConnection], Awaitable[T]]
    ) -> T:
        """Start ``operation`` on the pooled connection. A connection that turns out to be
        dead before anything ran on it is replaced once; other failures are translated."""
        for attempt in (1, 2):
            conn = await self._connection()
            try:
                return await operation(conn)
            except (asyncssh.Error, OSError) as err:
                if attempt == 1 and self._state().alive() is not conn:
                    continue
                raise translate_error(self.name, err) from err
        raise AssertionError("unreachable")  # pragma: no cover

    # -- commands ---------------------------------------------------------------------------

    async def _execute(
        self,
        vector: tuple[str, ...],
        *,
        cwd: str | None,
        stdin: bytes,
        timeout: float | None,
        max_output: int | None,
    ) -> tuple[_Output, int]:
        """Run ``vector`` in the wrapper over one channel; ``stdin`` starts with the env header."""
        token = secrets.token_hex(8)
        command = wire.remote_command(token, cwd, vector)
        pool = self._state()
        # Connect before queueing for a channel: every caller of a host that cannot be reached
        # then shares the one failed attempt, instead of trying again as channels free up.
        await self._connection()
        async with pool.channels:
            self.open_channels += 1
            self.peak_channels = max(self.peak_channels, self.open_channels)
            try:
                process = await self._on_connection(lambda conn: self._open_channel(conn, command))
                try:
                    return await self._communicate(
                        pool, process, vector,
                        marker=f"{token} ".encode(), stdin=stdin, timeout=timeout,
                        max_output=max_output,
                    )  # fmt: skip
                finally:
                    process.close()
            finally:
                self.open_channels -= 1

    async def _open_channel(
        self, conn: asyncssh.SSHClientConnection, command: bytes
    ) -> asyncssh.SSHClientProcess[bytes]:
        """Open a session channel running ``command``.

        sshd counts a closed session against MaxSessions until its main loop has collected it,
        so a burst can be refused ("open failed") even below the limit: while the connection
        lives, a refusal is asked again after a short, growing pause.
        """
        for delay in (*_REFUSED_CHANNEL_BACKOFF_S, None):
            try:
                process = await conn.create_process(command, encoding=None)
            except asyncssh.ChannelOpenError as err:
                if self._state().alive() is not conn:
                    raise  # the connection is gone: not a refusal (the caller reconnects)
                self.channels_refused += 1
                if delay is None:
                    raise HostUnreachableError(
                        self.name,
                        f"the server refused a new session ({err.reason}): is its MaxSessions "
                        f"below max_channels + 1 = {self.config.max_channels + 1}?",
                    ) from err
                await asyncio.sleep(delay)
            else:
                self.round_trips += 1
                return process
        raise AssertionError("unreachable")  # pragma: no cover

    async def _communicate(
        self,
        pool: _Pool,
        process: asyncssh.SSHClientProcess[bytes],
        vector: tuple[str, ...],
        *,
        marker: bytes,
        stdin: bytes,
        timeout: float | None,
        max_output: int | None,
    ) -> tuple[_Output, int]:
        output = _Output()

        async def feed() -> None:
            # The command may exit without reading its stdin: that is not an error.
            with contextlib.suppress(OSError, asyncssh.Error):
                # No env and no input: the end of stdin alone ends the wrapper's env header,
                # one packet fewer per command.
                if stdin != wire.NO_ENV:
                    process.stdin.write(stdin)
                    await process.stdin.drain()
                process.stdin.write_eof()

        async def pump_stdout() -> None:
            while chunk := await process.stdout.read(65536):
                output.truncated |= _keep(output.stdout, chunk, max_output)

        async def pump_stderr() -> None:
            head = bytearray()  # stderr up to the wrapper's pid line, which is not the command's
            searching = True
            while chunk := await process.stderr.read(65536):
                if searching:
                    head += chunk
                    at = head.find(marker)
                    end = head.find(b"\n", at) if at >= 0 else -1
                    if end < 0 and len(head) < 65536:
                        continue
                    searching = False
                    if end >= 0 and head[at + len(marker) : end].isdigit():
                        output.pid = int(head[at + len(marker) : end])
                        del head[at : end + 1]
                    chunk = bytes(head)
                output.truncated |= _keep(output.stderr, chunk, max_output)
            if searching:
                output.truncated |= _keep(output.stderr, bytes(head), max_output)

        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(feed(), pump_stdout(), pump_stderr())
                await process.wait_closed()
        except TimeoutError:
            await self._kill(pool, output.pid)
            raise CommandTimeoutError(self.name, vector, timeout or 0.0) from None
        except asyncio.CancelledError:
            if output.pid is not None:
                task = pool.loop.create_task(self._kill(pool, output.pid))
                pool.background.add(task)
                task.add_done_callback(pool.background.discard)
            raise
        except (asyncssh.Error, OSError) as err:
            lost = translate_error(self.name, err)
            reason = f"lost the connection while running {vector[0]!r}: {lost.reason}"
            raise type(lost)(self.name, reason) from err
        status = process.returncode
        if status is None:
            why = "lost the connection" if pool.alive() is None else "the channel closed"
            raise HostUnreachableError(
                self.name, f"{why} while running {vector[0]!r} (no exit status)"
            )
        return output, status

    async def _kill(self, pool: _Pool, pid: int | None) -> None:
        """Kill a remote command's process group over one more channel (best effort)."""
        conn = pool.alive()
        if pid is None or conn is None:
            return
        async with pool.kill_lane:
            # RemoteError: refused for good; OSError covers TimeoutError.
            with contextlib.suppress(RemoteError, asyncssh.Error, OSError):
                async with asyncio.timeout(_KILL_TIMEOUT_S):
                    killer = await self._open_channel(conn, f"kill -KILL -- -{pid}".encode())
                    killer.stdin.write_eof()
                    await killer.wait_closed()


def _keep(kept: bytearray, chunk: bytes, cap: int | None) -> bool:
    """Append what fits under ``cap``; True when something was cut."""
    if cap is None:
        kept += chunk
        return False
    room = cap - len(kept)
    if room > 0:
        kept += chunk[:room]
    return len(chunk) > room


async def _close(*connections: asyncssh.SSHClientConnection | None) -> None:
    for conn in connections:
        if conn is not None:
            conn.close()
            with contextlib.suppress(asyncssh.Error, OSError):
                await conn.wait_closed()
