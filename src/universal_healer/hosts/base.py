"""The Host protocol: the only door to a machine.

Everything that reads a file, lists a directory or runs a command on a server goes through a
:class:`Host`. :class:`~universal_healer.hosts.local.LocalHost` does it with the OS;
an SSH host does it over one pooled connection. Operations are shaped for the wire: reads and
scans are batched so that probing many applications costs a fixed number of round trips.

Paths are ``str``; bytes that are not UTF-8 travel as surrogate escapes (``os.fsdecode``).
Commands are argument vectors, never shell strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import attrs

__all__ = [
    "CommandResult",
    "DirEntry",
    "FileRead",
    "FileStat",
    "Host",
    "HostFacts",
    "Listener",
    "MountUsage",
    "ScanResult",
    "ScannedDir",
]


@attrs.frozen(kw_only=True)
class CommandResult:
    """How a command ended.

    :param exit_status: the process's exit status; negative for a signal (as subprocess does).
    :param truncated: stdout or stderr was longer than the cap and was cut.
    """

    argv: tuple[str, ...]
    exit_status: int
    stdout: bytes = b""
    stderr: bytes = b""
    duration_s: float = 0.0
    truncated: bool = False

    @property
    def ok(self) -> bool:
        """True when the command exited with status 0."""
        return self.exit_status == 0

    @property
    def text(self) -> str:
        """stdout decoded as UTF-8 (bad bytes replaced)."""
        return self.stdout.decode("utf-8", errors="replace")


@attrs.frozen(kw_only=True)
class FileRead:
    """One file read with a size cap.

    ``data`` is None when the file could not be read; ``error`` says why, ``"missing"`` when it
    does not exist.
    """

    path: str
    data: bytes | None = None
    size: int | None = None
    truncated: bool = False
    error: str | None = None


@attrs.frozen(kw_only=True)
class FileStat:
    """The parts of ``lstat`` the healer uses."""

    path: str
    mode: int  # full st_mode, type bits included
    uid: int
    gid: int
    size: int
    mtime: float
    is_dir: bool
    is_link: bool


@attrs.frozen(kw_only=True)
class DirEntry:
    """One name in a directory; ``is_dir`` does not follow symlinks."""

    name: str
    is_dir: bool
    is_link: bool


@attrs.frozen(kw_only=True)
class ScannedDir:
    """A directory found by :meth:`Host.scan` that holds at least one marker file.

    :param entries: every name in it (capped), directories ending with ``/``.
    """

    path: str
    entries: frozenset[str]
    truncated: bool = False  # the directory had more names than were listed (markers always are)


@attrs.frozen(kw_only=True)
class ScanResult:
    """What a scan found, and what it could not look at (each with its reason)."""

    candidates: tuple[ScannedDir, ...] = ()
    errors: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class MountUsage:
    """Space and inode usage of one mounted filesystem."""

    mountpoint: str
    fstype: str
    device: str
    total_bytes: int
    free_bytes: int  # available to unprivileged users, as df shows
    total_inodes: int
    free_inodes: int
    used_bytes: int | None = None  # blocks in use; None when the source gives no figure

    @property
    def used_percent(self) -> float:
        """Used space as ``df`` computes it: used / (used + available), so the blocks reserved
        for root count neither way. Without ``used_bytes``: (total - available) / total."""
        if self.used_bytes is not None:
            denominator = self.used_bytes + self.free_bytes
            return 100.0 * self.used_bytes / denominator if denominator else 0.0
        used = self.total_bytes - self.free_bytes
        return 100.0 * used / self.total_bytes if self.total_bytes else 0.0

    @property
    def inodes_used_percent(self) -> float:
        """Used inodes in percent; 0 on filesystems without a fixed inode table."""
        if not self.total_inodes:
            return 0.0
        return 100.0 * (self.total_inodes - self.free_inodes) / self.total_inodes


@attrs.frozen(kw_only=True)
class Listener:
    """A socket listening on the host: a TCP port or a unix-domain socket path.

    ``address`` and ``port`` are set for ``kind="tcp"`` (IPv4 or IPv6, ``"0.0.0.0"`` / ``"::"``
    for every address); ``path`` for ``kind="unix"`` (an abstract socket starts with ``@``).
    """

    kind: str  # "tcp" | "unix"
    address: str | None = None
    port: int | None = None
    path: str | None = None


@attrs.frozen(kw_only=True)
class HostFacts:
    """Host-wide facts, gathered once per host per run and shared by all its applications.

    :param listeners: listening TCP and unix sockets, sorted, for service detection.
    :param processes: sorted unique process names (``/proc/<pid>/comm``): names only, never
        command lines, which can hold secrets.
    """

    hostname: str
    cpu_count: int
    load_average: tuple[float, float, float]
    memory_total_bytes: int
    memory_available_bytes: int
    mounts: tuple[MountUsage, ...] = ()
    listeners: tuple[Listener, ...] = ()
    processes: tuple[str, ...] = ()

    @property
    def memory_used_percent(self) -> float:
        """Memory in use, counting reclaimable cache as available (as ``free`` does)."""
        if not self.memory_total_bytes:
            return 0.0
        used = self.memory_total_bytes - self.memory_available_bytes
        return 100.0 * used / self.memory_total_bytes

    def mount_for(self, path: str) -> MountUsage | None:
        """The mount holding ``path`` (longest mountpoint prefix), if known."""
        best: MountUsage | None = None
        for mount in self.mounts:
            prefix = mount.mountpoint.rstrip("/") + "/"
            if (
                path == mount.mountpoint or path.startswith(prefix) or mount.mountpoint == "/"
            ) and (best is None or len(mount.mountpoint) > len(best.mountpoint)):
                best = mount
        return best


@runtime_checkable
class Host(Protocol):
    """A machine the healer can look at and act on.

    Implementations raise :class:`~universal_healer.exceptions.RemoteError` subclasses for
    faults of the host or the way to it (unreachable, authentication, timeout); a missing
    file or a failing command is a value, not an exception.
    """

    @property
    def name(self) -> str:
        """The host's name in the inventory (``"local"`` for this machine)."""

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
        """Run an argument vector and return how it ended.

        :param timeout: seconds before the command and all its children are killed and
            :class:`~universal_healer.exceptions.CommandTimeoutError` is raised.
        :param env: extra environment variables (added to a minimal, fixed environment).
        :param max_output: keep at most this many bytes of stdout and of stderr.
        """

    async def read_files(self, paths: Sequence[str], *, max_bytes: int) -> Mapping[str, FileRead]:
        """Read many absolute paths at once, each capped at ``max_bytes``; never raises for
        a file that is missing or unreadable (its FileRead says why)."""

    async def stat(self, path: str) -> FileStat | None:
        """``lstat`` one path; None when it does not exist."""

    async def list_dir(self, path: str) -> tuple[DirEntry, ...]:
        """The entries of a directory, sorted by name."""

    async def scan(
        self,
        roots: Sequence[str],
        *,
        markers: frozenset[str],
        prune: frozenset[str],
        max_depth: int,
    ) -> ScanResult:
        """Walk ``roots`` down to ``max_depth`` and return every directory holding a marker.

        Never descends into a directory named in ``prune`` or through a symlink; each root that
        is missing or unreadable, and each unreadable directory, is an error in the result,
        not an exception.
        """

    async def facts(self) -> HostFacts:
        """Gather host-wide facts: CPU, load, memory, every real filesystem's usage, the
        listening sockets and the running processes' names."""

    async def close(self) -> None:
        """Release connections; the host may be used again afterwards (it reconnects)."""
