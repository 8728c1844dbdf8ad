"""What SSHHost sends and how it reads the answers: POSIX sh scripts and pure parsers.

Every remote operation is one command: a fixed script, with all data as positional
parameters quoted by :func:`shlex.join`. Answers are framed so that no byte of a file or a
name can break them: NUL-separated records (names cannot hold NUL) or, for file contents, a
random boundary that a file cannot contain by chance. The parsers rebuild exactly the values
LocalHost returns, so a scan or a batch of reads is the same on either kind of host.

This module holds the wrapper every command runs in, what the scripts share, and the scripts
and parsers of ``stat``, ``list_dir`` and ``facts``. Those of ``read_files`` are in
:mod:`universal_healer.hosts._sshread`, those of ``scan`` in
:mod:`universal_healer.hosts._sshscan`.

The scripts need a POSIX ``sh`` and GNU ``find``, ``head``, ``df`` (coreutils, findutils), as
every mainstream Linux distribution has. ``read_files`` also uses GNU ``tar`` when the host
has it, and does without (one ``head`` per file) when it has not or its tar fails.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import stat
from collections.abc import Mapping, Sequence

from universal_healer.hosts import _procnet
from universal_healer.hosts.base import DirEntry, FileStat, HostFacts, MountUsage
from universal_healer.hosts.local import _BASE_ENV, _PSEUDO_FS

# sshd hands the whole command to the login shell as ONE argument, and Linux caps one argument
# at 128 KiB (MAX_ARG_STRLEN); read_files splits its paths into batches well below that.
COMMAND_LIMIT = 128 * 1024
_BATCH_BUDGET = 96 * 1024

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RESERVED_ENV_PREFIX = "__healer_"  # the wrapper's own variables

# The wrapper every command runs in. $1: pid token, $2: 1 to cd, $3: directory, then the vector.
# Its pid (kept by the exec'ed command, leader of its own process group since sshd starts each
# session with setsid) goes to stderr behind the token. Environment variables come on stdin,
# "NAME VALUE" with VALUE octal-escaped for printf, ended by an empty line; `read` takes a pipe
# one byte at a time, so the command then reads the caller's input from the same stdin.
WRAPPER = r"""printf '%s %s\n' "$1" "$$" >&2
if [ "$2" = 1 ]; then cd -- "$3" || exit 127; fi
unset PWD OLDPWD
while IFS=' ' read -r __healer_k __healer_v; do
  [ -n "$__healer_k" ] || break
  __healer_v=$(printf "$__healer_v"; printf x)
  export "$__healer_k=${__healer_v%x}"
done
unset __healer_k __healer_v
shift 3
exec "$@"
"""

# why PATH: print why PATH cannot be opened, ending in ": REASON" (strerror). dash words both
# ENOENT and ENOTDIR "No such file", so a path below an existing file says so itself.
_WHY = r"""why() {
  { true < "$1"; } 2>&1
  q=$1
  while :; do
    case $q in */*) q=${q%/*} ;; *) return ;; esac
    [ -n "$q" ] || return
    if [ -e "$q" ]; then [ -d "$q" ] || echo ': Not a directory'; return; fi
  done
}
"""

STAT_SCRIPT = r"""exec find -P "$1" -maxdepth 0 -printf '%y %m %U %G %s %T@\0'"""

LIST_SCRIPT = (
    _WHY
    + r"""if [ -d "$1" ]; then
  exec find -H "$1" -mindepth 1 -maxdepth 1 -printf '%y %f\0'
elif [ -e "$1" ]; then
  printf '%s: Not a directory\n' "$1" >&2
else
  why "$1" >&2
fi
exit 2
"""
)

# $1 is a random boundary: the sections that follow df hold socket paths and process names,
# which any local user can choose, so each opens with a line no file can contain by chance.
# A file that cannot be read (no IPv6, a process that just ended) is simply left out.
FACTS_SCRIPT = r"""uname -n; getconf _NPROCESSORS_ONLN; cat /proc/loadavg
echo @meminfo; cat /proc/meminfo
echo @df; df -a -B1 --output=source,fstype,size,used,avail,itotal,iavail,target 2>/dev/null
printf '\n%s tcp\n' "$1"; cat /proc/net/tcp 2>/dev/null
printf '\n%s tcp6\n' "$1"; cat /proc/net/tcp6 2>/dev/null
printf '\n%s unix\n' "$1"; cat /proc/net/unix 2>/dev/null
printf '\n%s comm\n' "$1"; cat /proc/[0-9]*/comm 2>/dev/null
printf '\n%s end\n' "$1"
"""
_FACTS_SECTIONS = ("tcp", "tcp6", "unix", "comm")

_FILE_TYPES = {
    "f": stat.S_IFREG, "d": stat.S_IFDIR, "l": stat.S_IFLNK, "p": stat.S_IFIFO,
    "s": stat.S_IFSOCK, "c": stat.S_IFCHR, "b": stat.S_IFBLK,
}  # fmt: skip


class WireError(Exception):
    """An answer that does not parse; SSHHost reports it as the host's fault."""


def remote_command(token: str, cwd: str | None, vector: Sequence[str]) -> bytes:
    """The command line sshd runs: the wrapper, in a clean environment, around ``vector``."""
    if any("\0" in arg for arg in vector) or (cwd is not None and "\0" in cwd):
        raise ValueError("embedded null byte")
    remote = (
        "exec", "env", "-i", *(f"{k}={v}" for k, v in _BASE_ENV.items()),
        "sh", "-c", WRAPPER, "healer", token, "0" if cwd is None else "1", cwd or "", *vector,
    )  # fmt: skip
    # bytes, not str: an argument that is not UTF-8 must arrive as its own bytes.
    command = shlex.join(remote).encode("utf-8", errors="surrogateescape")
    if len(command) >= COMMAND_LIMIT:
        raise ValueError("the command line is longer than sshd can pass on (128 KiB)")
    return command


NO_ENV = b"\n"  # the env header of no variables: an empty line


def encode_env(env: Mapping[str, str] | None) -> bytes:
    """The stdin header that carries ``env`` to the wrapper (never a command line)."""
    lines = []
    for name, value in (env or {}).items():
        if not _ENV_NAME.match(name) or name.startswith(_RESERVED_ENV_PREFIX):
            raise ValueError(f"not a usable environment variable name: {name!r}")
        data = value.encode("utf-8", errors="surrogateescape")
        if b"\0" in data:
            raise ValueError(f"environment variable {name} holds a NUL byte")
        # ASCII letters and digits as they are, every other byte as a 3-digit octal escape:
        # no quote, backslash, percent sign or newline survives to confuse read or printf.
        escaped = "".join(chr(b) if chr(b).isalnum() and b < 128 else f"\\{b:03o}" for b in data)
        lines.append(f"{name} {escaped}\n")
    return "".join(lines).encode("ascii") + b"\n"


def safe(path: str) -> str:
    """A path that find cannot take for an option or an operator."""
    return path if not path or path.startswith("/") else "./" + path


def describe(message: bytes) -> str:
    """The reason at the end of a tool's error message, worded as LocalHost words errno."""
    lines = message.decode("utf-8", errors="replace").strip().splitlines()
    reason = lines[-1].rsplit(": ", 1)[-1].strip() if lines else "unknown error"
    words = {
        "Permission denied": "permission denied",
        "Operation not permitted": "permission denied",
        "Too many levels of symbolic links": "too many levels of symbolic links",
        "Is a directory": "is a directory",
    }
    return "missing" if reason.startswith("No such file") else words.get(reason, reason)


def os_error(reason: str, path: str) -> OSError:
    """The OSError that LocalHost would have raised for ``reason``."""
    codes = {
        "missing": errno.ENOENT,
        "permission denied": errno.EACCES,
        "Not a directory": errno.ENOTDIR,
        "too many levels of symbolic links": errno.ELOOP,
    }
    code = codes.get(reason)
    return OSError(code, os.strerror(code), path) if code else OSError(reason)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="surrogateescape")


def shown(path: str) -> str:
    """A path fit for a message: bytes that are not UTF-8 as backslash escapes."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def batches(paths: Sequence[str]) -> list[list[str]]:
    """Split paths so that each batch's command line stays well under the argument limit."""
    found: list[list[str]] = [[]]
    budget = 0
    for path in paths:
        size = len(shlex.quote(path).encode("utf-8", errors="surrogateescape")) + 1
        if found[-1] and budget + size > _BATCH_BUDGET:
            found.append([])
            budget = 0
        found[-1].append(path)
        budget += size
    return [batch for batch in found if batch]


# -- stat and list_dir --------------------------------------------------------------------------


def parse_stat(path: str, data: bytes) -> FileStat:
    """A FileStat from :data:`STAT_SCRIPT`'s one record."""
    fields = _decode(data.rstrip(b"\0")).split(" ", 5)
    if len(fields) != 6:
        raise WireError(f"stat: unexpected answer {data[:100]!r}")
    kind, mode, uid, gid, size, mtime = fields
    seconds, _, fraction = mtime.partition(".")
    nanoseconds = int(fraction[:9].ljust(9, "0"))
    return FileStat(
        path=path,
        mode=_FILE_TYPES.get(kind, 0) | int(mode, 8),
        uid=int(uid),
        gid=int(gid),
        size=int(size),
        mtime=int(seconds) + nanoseconds * 1e-9,  # computed as os.stat computes st_mtime
        is_dir=kind == "d",
        is_link=kind == "l",
    )


def parse_listing(data: bytes) -> tuple[DirEntry, ...]:
    """DirEntries, sorted by name, from :data:`LIST_SCRIPT`'s records."""
    entries = []
    for record in data.split(b"\0")[:-1]:
        kind, _, name = record.partition(b" ")
        entries.append(DirEntry(name=_decode(name), is_dir=kind == b"d", is_link=kind == b"l"))
    return tuple(sorted(entries, key=lambda e: e.name))


# -- facts --------------------------------------------------------------------------------------


def parse_facts(data: bytes, *, boundary: str) -> HostFacts:
    """HostFacts from :data:`FACTS_SCRIPT`'s answer (mounts filtered as LocalHost filters,
    listeners and process names parsed by :mod:`_procnet` as LocalHost parses them)."""
    text, *chunks = _decode(data).split(f"\n{boundary} ")
    sections: dict[str, str] = {}
    for chunk in chunks:
        name, _, body = chunk.partition("\n")
        sections[name] = body
    if any(name not in sections for name in (*_FACTS_SECTIONS, "end")):
        raise WireError(f"facts: missing sections in {data[:200]!r}")
    head, _, rest = text.partition("@meminfo\n")
    meminfo, _, df = rest.partition("@df\n")
    lines = head.splitlines()
    if len(lines) < 3:
        raise WireError(f"facts: unexpected answer {data[:200]!r}")
    load = [float(x) for x in lines[2].split()[:3]]
    memory = {}
    for line in meminfo.splitlines():
        key, _, value = line.partition(":")
        if value.split():
            memory[key] = int(value.split()[0]) * 1024
    return HostFacts(
        hostname=lines[0].strip(),
        cpu_count=int(lines[1]) if lines[1].strip().isdigit() else 1,
        load_average=(load[0], load[1], load[2]),
        memory_total_bytes=memory.get("MemTotal", 0),
        memory_available_bytes=memory.get("MemAvailable", 0),
        mounts=_parse_df(df),
        listeners=_procnet.sorted_listeners(
            (
                *_procnet.parse_tcp(sections["tcp"]),
                *_procnet.parse_tcp(sections["tcp6"]),
                *_procnet.parse_unix(sections["unix"]),
            )
        ),
        processes=_procnet.parse_comms(sections["comm"]),
    )


def _parse_df(text: str) -> tuple[MountUsage, ...]:
    def number(field: str) -> int:
        return int(field) if field.isdigit() else 0

    mounts: dict[str, MountUsage] = {}
    for line in text.splitlines()[1:]:
        fields = line.split(None, 7)
        if len(fields) < 8 or fields[1] in _PSEUDO_FS or number(fields[2]) == 0:
            continue
        device, fstype, size, used, avail, inodes, free_inodes, mountpoint = fields
        mounts[mountpoint] = MountUsage(
            mountpoint=mountpoint,
            fstype=fstype,
            device=device,
            total_bytes=number(size),
            free_bytes=number(avail),
            used_bytes=number(used),
            total_inodes=number(inodes),
            free_inodes=number(free_inodes),
        )
    return tuple(sorted(mounts.values(), key=lambda m: m.mountpoint))
