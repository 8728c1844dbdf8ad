"""SSHHost: a remote machine over one pooled asyncssh connection.

:class:`SSHHost` answers the questions :class:`~universal_healer.hosts.local.LocalHost` answers
and returns the same values for the same files. Each answer costs round trips, so each
operation is ONE remote command whatever its size: ``read_files`` frames every file of a batch
in one stream, ``scan`` walks every root in one command, ``facts`` reads everything at once
(the scripts and their parsers live in :mod:`universal_healer.hosts._sshwire`).

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
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import asyncssh
import attrs

from universal_healer.exceptions import (
    AuthenticationError,
    CommandTimeoutError,
    HostUnreachableError,
    RemoteError,
)
from universal_healer.hosts import _sshwire as wire
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


@attrs.frozen(kw_only=True)
class TrustedHostKey:
    """A host key accepted on first use and appended to ``known_hosts``."""

    host: str
    port: int
    key_type: str
    fingerprint: str  # "SHA256:..."
    known_hosts: str


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


class _Client(asyncssh.SSHClient):
    """Notices when its connection is gone, and judges host keys known_hosts does not list."""

    def __init__(self, host: SSHHost, config: SSHConfig, known: asyncssh.SSHKnownHosts) -> None:
        self._host = host
        self._config = config
        self._known = known
        self.lost = False
        self.key_problem: str | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        """Called by asyncssh for a key that known_hosts does not list for this host."""
        key_type, fingerprint = key.get_algorithm(), key.get_fingerprint("sha256")
        path = os.path.expanduser(self._config.known_hosts)
        pattern = host if port == 22 else f"[{host}]:{port}"
        listed, ca_keys, *_ = self._known.match(host, addr, port if port != 22 else None)
        if listed or ca_keys:
            on_file = ", ".join(
                dict.fromkeys(f"{k.get_algorithm()} {k.get_fingerprint('sha256')}" for k in listed)
            )
            self.key_problem = (
                f"the host key of {pattern} has CHANGED: the server offered {key_type} "
                f"{fingerprint} but {path} holds {on_file or 'a CA key'} for it. Someone may be "
                "intercepting the connection, or the server was reinstalled; the key is refused "
                "(trust on first use never replaces a key). If the change is expected, remove "
                f"the old key with: ssh-keygen -R '{pattern}' -f {path}"
            )
            return False
        if not self._config.trust_on_first_use:
            self.key_problem = (
                f"the host key of {pattern} is unknown: the server offered {key_type} "
                f"{fingerprint}, which is not in {path}. If that is the server's key, trust it "
                f"with: ssh-keyscan -p {port} {host} >> {path} (or enable trust_on_first_use)"
            )
            return False
        trusted = TrustedHostKey(
            host=host, port=port, key_type=key_type, fingerprint=fingerprint, known_hosts=path
        )
        try:
            # The record comes first: a key the registry refuses (it trusts another one for
            # this server) must never reach known_hosts, or the next run would accept it.
            self._host.trusted(trusted)
        except Exception as err:  # noqa: BLE001 - any refusal refuses the key, with its reason
            self.key_problem = (
                f"the host key of {pattern} ({key_type} {fingerprint}) was not trusted: {err}"
            )
            return False
        key_line = " ".join(key.export_public_key("openssh").decode("ascii").split()[:2])
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a") as file:
            file.write(f"{pattern} {key_line}\n")
        return True


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


def _credentials(config: SSHConfig) -> tuple[Sequence[asyncssh.SSHKeyPair], asyncssh.SSHKnownHosts]:
    """Load the client keys and the known_hosts file (blocking: run in a thread)."""
    keys: Sequence[asyncssh.SSHKeyPair] = ()
    if config.client_keys:
        try:
            keys = asyncssh.load_keypairs([os.path.expanduser(k) for k in config.client_keys])
        except (OSError, asyncssh.KeyImportError) as err:
            raise AuthenticationError(config.address, f"cannot load a client key: {err}") from err
    path = os.path.expanduser(config.known_hosts)
    try:
        with open(path, encoding="utf-8") as handle:
            known = asyncssh.import_known_hosts(handle.read())
    except FileNotFoundError:
        known = asyncssh.import_known_hosts("")
    except (OSError, ValueError) as err:
        raise AuthenticationError(config.address, f"cannot read known_hosts {path}: {err}") from err
    return keys, known


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


@attrs.define
class SSHHost:
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
        script, args = wire.scan_command(roots, prune=prune, max_depth=max_depth)
        result = await self._script(script, *args)
        return self._parsed(
            lambda: wire.scan_result(
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

    async def _script(self, script: str, *args: str) -> CommandResult:
        """Run one of :mod:`_sshwire`'s scripts with ``args`` as its positional parameters."""
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
        args = wire.read_args(paths, boundary=boundary, max_bytes=max_bytes, way=way)
        result = await self._script(wire.READ_SCRIPT, *args)
        return self._parsed(
            lambda: wire.parse_reads(paths, result.stdout, boundary=boundary, max_bytes=max_bytes)
        )

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
