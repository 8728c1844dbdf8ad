"""A fleet of real OpenSSH servers on loopback, for the tests of :mod:`universal_healer.hosts.ssh`.

Each :class:`SSHServer` is Debian's ``/usr/sbin/sshd`` started in the foreground with its own
config, host key and port on a loopback address (``127.0.0.1``, ``127.0.0.2``, ...). The fleet
generates one user key pair, authorises it on every server and writes a known_hosts file that
holds every server's host key, so a test connects exactly as an operator would.

Nothing here skips: when sshd is missing or does not start, the fixture fails with the reason
and sshd's own log (``scripts/install-system-packages`` installs it).

Usage::

    fleet = SSHFleet(tmp_path_factory.mktemp("fleet"))
    server = fleet.start("web1", address="127.0.0.2")
    config = fleet.config_for(server)          # an SSHConfig that trusts and logs into it
    ...
    fleet.stop_all()
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

import attrs
import pytest

from universal_healer.hosts.ssh import SSHConfig

__all__ = ["SSHFleet", "SSHServer", "free_port", "kill_tree", "processes_with", "wait_for_exit"]

SSHD = "/usr/sbin/sshd"
_READY_DEADLINE_S = 10.0
# sshd refuses to start without its privilege-separation directory (systemd makes it on boot).
_PRIVSEP_DIR = Path("/run/sshd")


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``address`` right now."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # exited while we looked
        # The command name may hold spaces and parentheses: the fields follow the last ')'.
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process descended from it."""
    tree = _children()
    doomed, todo = [], [pid]
    while todo:
        current = todo.pop()
        doomed.append(current)
        todo.extend(tree.get(current, ()))
    for victim in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)


def _keygen(path: Path, comment: str) -> str:
    """Make an ed25519 key pair at ``path`` and return the public key line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().strip()


@attrs.define
class SSHServer:
    """One sshd on a loopback address and port, with its own host key."""

    name: str
    address: str
    port: int
    directory: Path
    host_public_key: str  # "ssh-ed25519 AAAA... comment"
    process: subprocess.Popen[bytes] | None = None
    log: list[str] = attrs.field(factory=list)
    _ready: threading.Event = attrs.field(factory=threading.Event)

    @property
    def config_path(self) -> Path:
        return self.directory / "sshd_config"

    @property
    def known_hosts_line(self) -> str:
        """This server's line for a known_hosts file (``[addr]:port keytype key``)."""
        key_type, key = self.host_public_key.split()[:2]
        pattern = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        return f"{pattern} {key_type} {key}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start sshd in the foreground and wait until it listens; fail loudly otherwise."""
        if self.running:
            return
        self._ready.clear()
        self.log.clear()
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        threading.Thread(
            target=self._drain, args=(self.process,), name=f"sshd-{self.name}", daemon=True
        ).start()
        # sshd logs "Server listening on ADDR port N." once it has bound and listens: wait on
        # that event (set by the log reader) rather than polling the port.
        if not self._ready.wait(_READY_DEADLINE_S) or not self.running:
            self.stop()
            log = "\n".join(self.log) or "(no output)"
            pytest.fail(
                f"sshd {self.name} did not start listening on {self.address}:{self.port} "
                f"within {_READY_DEADLINE_S:g} s; its log:\n{log}",
                pytrace=False,
            )

    def _drain(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            line = raw.decode("utf-8", errors="replace").rstrip()
            self.log.append(line)
            if line.startswith("Server listening on") and f"port {self.port}" in line:
                self._ready.set()
        self._ready.set()  # exited: wake the waiter, which then sees the process is gone

    def stop(self) -> None:
        """Stop sshd and every connection it serves."""
        if self.process is None:
            return
        kill_tree(self.process.pid)
        self.process.wait(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def kill(self) -> None:
        """Crash the server: SIGKILL sshd, its per-connection processes and their commands."""
        self.stop()


@attrs.define
class SSHFleet:
    """Several sshd servers sharing one user key and one known_hosts file."""

    directory: Path
    servers: dict[str, SSHServer] = attrs.field(factory=dict)
    user_key: Path = attrs.field(init=False)
    known_hosts: Path = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if not os.access(SSHD, os.X_OK):
            pytest.fail(
                f"{SSHD} not found: install openssh-server (scripts/install-system-packages)",
                pytrace=False,
            )
        if shutil.which("ssh-keygen") is None:
            pytest.fail("ssh-keygen not found: install openssh-client", pytrace=False)
        _PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        self.user_key = self.directory / "id_user"
        _keygen(self.user_key, "healer-tests")
        (self.directory / "authorized_keys").write_text(
            self.user_key.with_suffix(".pub").read_text()
        )
        self.known_hosts = self.directory / "known_hosts"
        self.known_hosts.write_text("")

    def start(self, name: str, *, address: str = "127.0.0.1", port: int | None = None) -> SSHServer:
        """Start a server called ``name`` on ``address`` (loopback only) and trust its key."""
        if not address.startswith("127."):
            raise ValueError(f"the test fleet stays on loopback, not {address}")
        if name in self.servers:
            raise ValueError(f"server {name!r} already exists")
        directory = self.directory / name
        directory.mkdir()
        host_key = directory / "ssh_host_ed25519_key"
        server = SSHServer(
            name=name,
            address=address,
            port=port or free_port(address),
            directory=directory,
            host_public_key=_keygen(host_key, f"host-{name}"),
        )
        server.config_path.write_text(
            "\n".join(
                [
                    f"ListenAddress {address}",
                    f"Port {server.port}",
                    f"HostKey {host_key}",
                    f"AuthorizedKeysFile {self.directory / 'authorized_keys'}",
                    f"PidFile {directory / 'sshd.pid'}",
                    "StrictModes no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UseDNS no",
                    "MaxSessions 10",
                    "MaxStartups 10",
                    "AllowTcpForwarding yes",
                    "LogLevel INFO",
                    "Subsystem sftp internal-sftp",
                    # bash sources ~/.bashrc for commands run by sshd unless SHLVL says it is
                    # nested; this machine's root .bashrc runs `pyenv init` (~0.2 s a command).
                    # A server's shell start-up is its own business: keep it out of the tests.
                    "SetEnv SHLVL=2",
                    "",
                ]
            )
        )
        self.servers[name] = server
        server.start()
        with self.known_hosts.open("a") as handle:
            handle.write(server.known_hosts_line + "\n")
        return server

    def config_for(self, server: SSHServer, **changes: object) -> SSHConfig:
        """An SSHConfig that logs into ``server`` as root with the fleet's key."""
        config = SSHConfig(
            host=server.address,
            port=server.port,
            username="root",
            client_keys=(str(self.user_key),),
            known_hosts=str(self.known_hosts),
            connect_timeout=5.0,
        )
        return attrs.evolve(config, **changes)

    def stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()


def wait_for_exit(pid: int, *, deadline_s: float = 5.0) -> bool:
    """Wait until ``pid`` has exited (a zombie counts: it is dead, its parent reaps it later).

    A pidfd becomes readable when the process exits, so this waits on the event itself.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], deadline_s)
    finally:
        os.close(fd)
    return bool(readable)


def processes_with(needle: bytes, *, where: str) -> list[int]:
    """Pids whose ``/proc/PID/<where>`` (``cmdline`` or ``environ``) holds ``needle``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/{where}", "rb") as handle:
                    if needle in handle.read():
                        found.append(int(entry))
            except OSError:
                continue  # exited, or a kernel thread
    return found
