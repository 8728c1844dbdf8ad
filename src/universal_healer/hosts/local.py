"""LocalHost: the machine the healer runs on, through the OS directly."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import glob
import os
import signal
import socket
import stat
import time
from collections.abc import Mapping, Sequence

import attrs

from universal_healer.exceptions import CommandTimeoutError, RemoteError
from universal_healer.hosts import _procnet
from universal_healer.hosts.base import (
    CommandResult,
    DirEntry,
    FileRead,
    FileStat,
    HostFacts,
    Listener,
    MountUsage,
    ScannedDir,
    ScanResult,
)

__all__ = ["LocalHost"]

# Filesystems that hold no application data: their usage means nothing to an operator.
_PSEUDO_FS = frozenset(
    {
        "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
        "devtmpfs", "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "proc", "pstore",
        "ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tracefs",
    }
)  # fmt: skip

# A command sees a fixed, minimal environment plus what the caller adds, so nothing from the
# healer's own environment (tokens, passwords) leaks into the commands it runs.
_BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
}

_MAX_ENTRIES = 2000


def _describe(err: OSError) -> str:
    if err.errno == errno.ENOENT:
        return "missing"
    if err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if err.errno == errno.ELOOP:
        return "too many levels of symbolic links"
    if err.errno == errno.EISDIR:
        return "is a directory"
    return err.strerror or type(err).__name__


def _read_capped(path: str, max_bytes: int) -> FileRead:
    try:
        # O_NONBLOCK: a FIFO planted where a manifest should be must not hang the scan.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        return FileRead(path=path, error=_describe(err))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            return FileRead(path=path, size=info.st_size, error=kind)
        chunks: list[bytes] = []
        remaining = max_bytes + 1  # one byte more tells us the file is longer than the cap
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        truncated = len(data) > max_bytes
        return FileRead(path=path, data=data[:max_bytes], size=info.st_size, truncated=truncated)
    except OSError as err:
        return FileRead(path=path, error=_describe(err))
    finally:
        os.close(fd)


def _expand_roots(roots: Sequence[str]) -> list[str]:
    expanded: list[str] = []
    for root in roots:
        if glob.has_magic(root):
            matches = sorted(glob.glob(root))
            expanded.extend(matches)
        else:
            expanded.append(root)
    return expanded


def _shown(path: str) -> str:
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def _walk(
    root: str,
    *,
    markers: frozenset[str],
    prune: frozenset[str],
    max_depth: int,
    seen: set[tuple[int, int]],
    candidates: list[ScannedDir],
    errors: list[str],
) -> None:
    """Depth-first walk of one root, never through symlinks, each directory once."""
    stack: list[tuple[str, int]] = [(root, 0)]
    while stack:
        path, depth = stack.pop()
        try:
            info = os.stat(path, follow_symlinks=False)
            key = (info.st_dev, info.st_ino)
            if key in seen:
                continue
            seen.add(key)
            entries: set[str] = set()
            subdirs: list[str] = []
            truncated = False
            with os.scandir(path) as listing:
                for entry in listing:
                    is_dir = entry.is_dir(follow_symlinks=False)
                    if len(entries) < _MAX_ENTRIES or entry.name in markers:
                        entries.add(entry.name + "/" if is_dir else entry.name)
                    else:
                        truncated = True
                    if is_dir and entry.name not in prune:
                        subdirs.append(entry.path)
        except OSError as err:
            errors.append(f"{_shown(path)}: {_describe(err)}")
            continue
        if not markers.isdisjoint(entries):
            candidates.append(
                ScannedDir(path=path, entries=frozenset(entries), truncated=truncated)
            )
        if depth < max_depth:
            stack.extend((sub, depth + 1) for sub in sorted(subdirs, reverse=True))


def _scan(
    roots: Sequence[str], markers: frozenset[str], prune: frozenset[str], max_depth: int
) -> ScanResult:
    candidates: list[ScannedDir] = []
    errors: list[str] = []
    seen: set[tuple[int, int]] = set()
    for root in _expand_roots(roots):
        if not os.path.isabs(root):
            errors.append(f"{_shown(root)}: search paths must be absolute")
            continue
        try:
            real = os.path.realpath(root)
            is_dir = stat.S_ISDIR(os.stat(real).st_mode)
        except OSError as err:
            errors.append(f"{_shown(root)}: {_describe(err)}")
            continue
        if not is_dir:
            errors.append(f"{_shown(root)}: not a directory")
            continue
        _walk(
            real,
            markers=markers,
            prune=prune,
            max_depth=max_depth,
            seen=seen,
            candidates=candidates,
            errors=errors,
        )
    candidates.sort(key=lambda c: c.path)
    return ScanResult(candidates=tuple(candidates), errors=tuple(errors))


def _meminfo() -> tuple[int, int]:
    total = available = 0
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key == "MemTotal":
                total = int(rest.split()[0]) * 1024
            elif key == "MemAvailable":
                available = int(rest.split()[0]) * 1024
    return total, available


def _unescape_mount(field: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as octal (\040 ...).
    raw = field.encode("utf-8", errors="surrogateescape")
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i : i + 1] == b"\\" and raw[i + 1 : i + 4].isdigit():
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))


def _mounts() -> tuple[MountUsage, ...]:
    mounts: dict[str, MountUsage] = {}
    with open("/proc/self/mounts", "rb") as handle:
        lines = handle.read().decode("utf-8", errors="surrogateescape").splitlines()
    for line in lines:
        fields = line.split()
        if len(fields) < 3 or fields[2] in _PSEUDO_FS:
            continue
        device, mountpoint, fstype = fields[0], _unescape_mount(fields[1]), fields[2]
        try:
            usage = os.statvfs(mountpoint)
        except OSError:
            continue  # a stale or inaccessible mount has no usage to report
        if usage.f_blocks == 0:
            continue
        mounts[mountpoint] = MountUsage(
            mountpoint=mountpoint,
            fstype=fstype,
            device=device,
            total_bytes=usage.f_blocks * usage.f_frsize,
            free_bytes=usage.f_bavail * usage.f_frsize,
            used_bytes=(usage.f_blocks - usage.f_bfree) * usage.f_frsize,
            total_inodes=usage.f_files,
            free_inodes=usage.f_favail,
        )
    return tuple(sorted(mounts.values(), key=lambda m: m.mountpoint))


def _proc_text(path: str) -> str:
    """A /proc file's text, or "" when it cannot be read (no IPv6, a process that just ended)."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", errors="surrogateescape")
    except OSError:
        return ""


def _listeners() -> tuple[Listener, ...]:
    return _procnet.sorted_listeners(
        (
            *_procnet.parse_tcp(_proc_text("/proc/net/tcp")),
            *_procnet.parse_tcp(_proc_text("/proc/net/tcp6")),
            *_procnet.parse_unix(_proc_text("/proc/net/unix")),
        )
    )


def _processes() -> tuple[str, ...]:
    # comm only (the kernel's 15-byte name), never cmdline: a command line can hold a password.
    return _procnet.parse_comms(
        "\n".join(_proc_text(path) for path in glob.glob("/proc/[0-9]*/comm"))
    )


def _facts() -> HostFacts:
    total, available = _meminfo()
    return HostFacts(
        hostname=socket.gethostname(),
        cpu_count=os.cpu_count() or 1,
        load_average=os.getloadavg(),
        memory_total_bytes=total,
        memory_available_bytes=available,
        mounts=_mounts(),
        listeners=_listeners(),
        processes=_processes(),
    )


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


async def _read_stream(stream: asyncio.StreamReader | None, cap: int) -> tuple[bytes, bool]:
    if stream is None:
        return b"", False
    kept = bytearray()
    truncated = False
    while chunk := await stream.read(65536):
        room = cap - len(kept)
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > room:
            truncated = True  # keep draining so the child never blocks on a full pipe
    return bytes(kept), truncated


@attrs.define
class LocalHost:
    """This machine. Blocking file-system work runs in a worker thread."""

    name: str = "local"

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
        """Run an argument vector in its own process group; a timeout kills the whole group."""
        vector = tuple(argv)
        if not vector:
            raise ValueError("argv must not be empty")
        started = time.monotonic()
        try:
            process = await asyncio.create_subprocess_exec(
                *vector,
                stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=cwd,
                env={**_BASE_ENV, **(env or {})},
                start_new_session=True,  # its own group, so a timeout can kill the children too
            )
        except FileNotFoundError:
            return CommandResult(
                argv=vector,
                exit_status=127,
                stderr=f"{vector[0]}: command not found".encode(),
                duration_s=time.monotonic() - started,
            )
        except OSError as err:
            return CommandResult(
                argv=vector,
                exit_status=126,
                stderr=f"{vector[0]}: {_describe(err)}".encode(),
                duration_s=time.monotonic() - started,
            )

        async def communicate() -> tuple[tuple[bytes, bool], tuple[bytes, bool], int]:
            if input is not None and process.stdin is not None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    process.stdin.write(input)
                    await process.stdin.drain()
                process.stdin.close()
            out, err = await asyncio.gather(
                _read_stream(process.stdout, max_output), _read_stream(process.stderr, max_output)
            )
            return out, err, await process.wait()

        try:
            (stdout, out_cut), (stderr, err_cut), status = await asyncio.wait_for(
                communicate(), timeout
            )
        except TimeoutError:
            _kill_group(process)
            await process.wait()
            raise CommandTimeoutError(self.name, vector, timeout or 0.0) from None
        except asyncio.CancelledError:
            _kill_group(process)
            raise
        # Children that outlived the main process would hold resources: end the group.
        _kill_group(process)
        return CommandResult(
            argv=vector,
            exit_status=status,
            stdout=stdout,
            stderr=stderr,
            duration_s=time.monotonic() - started,
            truncated=out_cut or err_cut,
        )

    async def read_files(self, paths: Sequence[str], *, max_bytes: int) -> Mapping[str, FileRead]:
        """Read each path with a cap, in one worker thread."""

        def read_all() -> dict[str, FileRead]:
            return {path: _read_capped(path, max_bytes) for path in paths}

        return await asyncio.to_thread(read_all)

    async def stat(self, path: str) -> FileStat | None:
        """``lstat`` one path."""
        try:
            info = await asyncio.to_thread(os.lstat, path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            raise RemoteError(self.name, f"cannot stat {_shown(path)}: {_describe(err)}") from err
        return FileStat(
            path=path,
            mode=info.st_mode,
            uid=info.st_uid,
            gid=info.st_gid,
            size=info.st_size,
            mtime=info.st_mtime,
            is_dir=stat.S_ISDIR(info.st_mode),
            is_link=stat.S_ISLNK(info.st_mode),
        )

    async def list_dir(self, path: str) -> tuple[DirEntry, ...]:
        """List one directory, sorted by name."""

        def listing() -> tuple[DirEntry, ...]:
            with os.scandir(path) as entries:
                found = [
                    DirEntry(
                        name=e.name,
                        is_dir=e.is_dir(follow_symlinks=False),
                        is_link=e.is_symlink(),
                    )
                    for e in entries
                ]
            return tuple(sorted(found, key=lambda e: e.name))

        return await asyncio.to_thread(listing)

    async def scan(
        self,
        roots: Sequence[str],
        *,
        markers: frozenset[str],
        prune: frozenset[str],
        max_depth: int,
    ) -> ScanResult:
        """Walk the roots in a worker thread; see :meth:`Host.scan`."""
        return await asyncio.to_thread(_scan, roots, markers, prune, max_depth)

    async def facts(self) -> HostFacts:
        """CPU, load, memory (``/proc/meminfo``) and real mounts (``/proc/self/mounts``)."""
        return await asyncio.to_thread(_facts)

    async def close(self) -> None:
        """Nothing to release for the local machine."""
