"""What SSHHost sends and how it reads the answers: POSIX sh scripts and pure parsers.

Every remote operation is one command: a fixed script, with all data as positional
parameters quoted by :func:`shlex.join`. Answers are framed so that no byte of a file or a
name can break them: NUL-separated records (names cannot hold NUL) or, for file contents, a
random boundary that a file cannot contain by chance. The parsers rebuild exactly the values
LocalHost returns, so a scan or a batch of reads is the same on either kind of host.

The scripts need a POSIX ``sh`` and GNU ``find``, ``head``, ``df`` (coreutils, findutils), as
every mainstream Linux distribution has. ``read_files`` also uses GNU ``tar`` when the host
has it, and does without (one ``head`` per file) when it has not or its tar fails.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import shlex
import stat
import tarfile
from collections.abc import Mapping, Sequence
from glob import has_magic

import attrs

from universal_healer.hosts import _procnet
from universal_healer.hosts.base import (
    DirEntry,
    FileRead,
    FileStat,
    HostFacts,
    MountUsage,
    ScannedDir,
    ScanResult,
)
from universal_healer.hosts.local import _BASE_ENV, _MAX_ENTRIES, _PSEUDO_FS

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

# read_files answers in records: BODY, then "\n", the random boundary, a space, fields, a NUL.
#   m TYPE SIZE NAME   find -L's %Y and %s of NAME (no body)
#   t STATUS           BODY is tar's archive of the files it could take; STATUS its exit status
#   r STATUS NAME      BODY is `head -c CAP+1` of NAME; STATUS head's exit status
#   o NAME             NAME exists and is not a regular file (no body)
#   e NAME             NAME cannot be opened; BODY is the shell's message, which says why
# No body can forge a record: it would have to hold the boundary, chosen after it was written.
# NAME is the path exactly as sent (find's %p of a starting point) and cannot hold a NUL.

# Filesystems whose files do not hold the size they report (procfs says 0, sysfs 4096).
_SIZE_LIES = ("proc", "sysfs", "configfs", "debugfs", "tracefs", "securityfs", "cgroup", "cgroup2")

# The files ONE tar reads for the whole batch: regular, 1 byte up to the cap, readable, and with
# a true size, since tar reads st_size bytes where LocalHost reads until EOF. Not on the
# filesystems above, nor below /proc and /sys whatever is mounted there (lxcfs in an LXC
# container); not empty either, as a virtual file that is not empty may say 0. Those few go
# through head. A file that is shorter than it said fails tar, and tar's files then go through
# head too; one that is longer than it said when tar looked at it is read as it was then.
_TAR_TAKES = (
    r"""\( -type f ! -empty -size -"$n"c -readable ! -path '/proc/*' ! -path '/sys/*' """
    + " ".join(f"! -fstype {fs}" for fs in _SIZE_LIES)
    + r" \)"
)

# -h --hard-dereference: a symlink, or a second link to a file already archived, is archived
# with its data, as LocalHost reads it. --null: names verbatim, NUL-terminated (and safe() made
# them start with / or ./). No --ignore-failed-read: with it, a file that shrank while tar read
# it would come back padded with zeros and tar would still say 0. -b 20, tar's usual 10 KiB
# records: fewer, fuller SSH packets than 512-byte ones, for at most 10 KiB of zeros.
_TAR = (
    "tar -c -f - -P -h --hard-dereference --no-recursion --null -T - "
    "--format=gnu --numeric-owner -b 20"
)

# One head per path, capped, reading until EOF as LocalHost does; `test -f` first: a FIFO must
# not hang the batch. $1 boundary, $2 cap + 1, then the paths.
_HEADS = (
    _WHY
    + r"""b=$1 n=$2; shift 2
for p do
  if [ -f "$p" ]; then
    head -c "$n" -- "$p" 2>&1
    printf '\n%s r %s %s\0' "$b" "$?" "$p"
  elif [ -e "$p" ]; then
    printf '\n%s o %s\0' "$b" "$p"
  else
    why "$p"
    printf '\n%s e %s\0' "$b" "$p"
  fi
done
"""
)

# $1 boundary, $2 cap + 1, $3 "tar" or "head", then the paths. The tar way, in three steps:
# 1. one find prints every path's metadata, hands the regular files tar does not take (bigger
#    than the cap, empty, unreadable, virtual) to ONE sh that heads each, and says `o` for the
#    other paths that exist; 2. shell builtins say why each path that does not exist cannot be
#    opened; 3. find lists the files tar takes, and one tar archives them all. If tar fails,
#    find hands its files to head after all. Two finds and one tar, whatever the number of
#    files. The head way (no tar on the host, or a second look at paths a first answer left
#    out, see parse_reads) is one find for the metadata, then one head per regular file.
READ_SCRIPT = (
    _WHY
    + f"heads={shlex.quote(_HEADS)}\n"
    + r"""b=$1 n=$2 way=$3; shift 3
if [ "$way" = head ] || ! command -v tar >/dev/null 2>&1; then
  find -L "$@" -maxdepth 0 -printf "\n$b m %Y %s %p\0" 2>/dev/null
  exec sh -c "$heads" sh "$b" "$n" "$@"
fi
find -L "$@" -maxdepth 0 -printf "\n$b m %Y %s %p\0" \( TAR_TAKES -o -type l \
  -o -type f -exec sh -c "$heads" sh "$b" "$n" {} + -o -printf "\n$b o %p\0" \) 2>/dev/null
for p do
  [ -e "$p" ] || { why "$p"; printf '\n%s e %s\0' "$b" "$p"; }
done
find -L "$@" -maxdepth 0 TAR_TAKES -print0 2>/dev/null | TAR_ARCHIVE 2>/dev/null
s=$?
printf '\n%s t %s\0' "$b" "$s"
if [ "$s" != 0 ]; then
  find -L "$@" -maxdepth 0 TAR_TAKES -exec sh -c "$heads" sh "$b" "$n" {} + 2>/dev/null
fi
""".replace("TAR_TAKES", _TAR_TAKES).replace("TAR_ARCHIVE", _TAR)
)

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

# FIND is replaced by the find expression. $1 is max_depth + 1, then pairs "glob|path" ROOT.
_SCAN_SCRIPT = (
    _WHY
    + r"""d=$1; shift
root() {
  case $1 in /*) ;; *) printf 'R relative\0'; return ;; esac
  if [ -d "$1" ]; then
    if cd -P -- "$1" 2>/dev/null; then real=$PWD; else real=$(readlink -f -- "$1"); fi
    printf 'R ok\0%s\0' "$real"
    find -P "$real/." -maxdepth "$d" FIND
    printf 'E\0'
  elif [ -e "$1" ]; then
    printf 'R notdir\0'
  else
    printf 'R error\0'; why "$1"; printf '\0'
  fi
}
i=0
while [ $# -gt 0 ]; do
  if [ "$1" = glob ]; then
    IFS=''
    for m in $2; do
      if [ -e "$m" ] || [ -L "$m" ]; then printf 'M %s\0%s\0' "$i" "$m"; root "$m"; fi
    done
    unset IFS
  else
    printf 'M %s\0%s\0' "$i" "$2"; root "$2"
  fi
  i=$((i + 1)); shift 2
done
"""
)
_SCAN_FIELDS = " %D %i %d %P\\0"

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


# -- read_files ---------------------------------------------------------------------------------


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


def read_args(paths: Sequence[str], *, boundary: str, max_bytes: int, way: str) -> list[str]:
    """:data:`READ_SCRIPT`'s positional parameters; ``way`` is ``"tar"`` or ``"head"``."""
    return [boundary, str(max_bytes + 1), way, *(safe(path) for path in paths)]


def parse_reads(
    paths: Sequence[str], data: bytes, *, boundary: str, max_bytes: int
) -> dict[str, FileRead]:
    """Rebuild each path's FileRead from :data:`READ_SCRIPT`'s answer.

    A path the answer does not account for is left out: a file that changed between the
    script's steps (one find saw it, the next did not), or one tar did not deliver. The caller
    asks again for those, the head way.
    """
    answer = _ReadAnswer.parse(data, boundary)
    reads: dict[str, FileRead] = {}
    for path in paths:
        name = safe(path)
        kind, size = answer.meta.get(name, ("", -1))
        known = size if size >= 0 else None
        record, status, body = answer.records.get(name, (b"", b"", b""))
        if record == b"o":
            error = "a directory" if kind == "d" else "not a regular file"
            reads[path] = FileRead(path=path, size=known, error=error)
        elif record == b"e" or (record == b"r" and status != b"0"):
            reads[path] = FileRead(path=path, error=describe(body))
        elif record == b"r" or name in answer.archived:
            content = body if record == b"r" else answer.archived[name]
            truncated = len(content) > max_bytes
            reads[path] = FileRead(
                path=path, data=content[:max_bytes], size=known, truncated=truncated
            )
    return reads


@attrs.define
class _ReadAnswer:
    """The records of a :data:`READ_SCRIPT` answer, by name."""

    meta: dict[str, tuple[str, int]] = attrs.field(factory=dict)  # name: (type, size)
    # name: (record, status, body) of each r, o and e record; the first one of a name wins
    records: dict[str, tuple[bytes, bytes, bytes]] = attrs.field(factory=dict)
    archived: dict[str, bytes] = attrs.field(factory=dict)  # name: content, from tar

    @classmethod
    def parse(cls, data: bytes, boundary: str) -> _ReadAnswer:
        answer = cls()
        chunks = data.split(f"\n{boundary} ".encode())
        body = chunks[0]
        for chunk in chunks[1:]:
            fields, nul, following = chunk.partition(b"\0")
            if not nul:
                raise WireError(f"read_files: unterminated record {fields[:100]!r}")
            record, _, rest = fields.partition(b" ")
            if record == b"m":
                kind, size, name = rest.split(b" ", 2)
                answer.meta[_decode(name)] = (kind.decode(), int(size))
            elif record == b"t":
                if rest == b"0":  # else tar failed, and the script read its files with head
                    answer.archived = _unpack(body)
            elif record == b"r":
                status, name = rest.split(b" ", 1)
                answer.records.setdefault(_decode(name), (record, status, body))
            elif record in (b"o", b"e"):
                answer.records.setdefault(_decode(rest), (record, b"", body))
            else:
                raise WireError(f"read_files: unknown record {fields[:100]!r}")
            body = following
        if body:
            raise WireError(f"read_files: {len(body)} bytes after the last record")
        return answer


def _unpack(archive: bytes) -> dict[str, bytes]:
    """The regular files of a tar archive, by name (decoded as :func:`_decode` decodes).

    An archive that stops parsing gives the files before that point; the others are asked for
    again.
    """
    files: dict[str, bytes] = {}
    with (
        contextlib.suppress(tarfile.TarError),
        tarfile.open(
            fileobj=io.BytesIO(archive), mode="r:", encoding="utf-8", errors="surrogateescape"
        ) as tar,
    ):
        for member in tar:
            content = tar.extractfile(member) if member.isreg() else None
            if content is not None:
                files[member.name] = content.read()
    return files


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


# -- scan ---------------------------------------------------------------------------------------


def scan_command(
    roots: Sequence[str], *, prune: frozenset[str], max_depth: int
) -> tuple[str, list[str]]:
    """The script and its arguments that walk every root, one find each.

    Each record is ``TYPE DEV INODE DEPTH RELPATH``. Directories named in ``prune`` print as
    ``p`` and are not entered; unreadable ones print as ``u`` and are not entered either (the
    walk reports them). find starts at ``ROOT/.`` so that a root named like a pruned directory
    is still walked, as LocalHost walks it.
    """
    names: list[str] = []
    for name in sorted(prune):
        names += ["-o", "-name", re.sub(r"([\\*?\[])", r"\\\1", name)]  # literal, not a glob
    pruned = ["(", "-type", "d", "(", *names[1:], ")", "-printf", "p" + _SCAN_FIELDS, "-prune", ")"]
    unreadable = ["(", "-type", "d", "!", "-readable", "-printf", "u" + _SCAN_FIELDS, "-prune", ")"]
    expression = [
        *([*pruned, "-o"] if names else []),
        *unreadable,
        "-o",
        "-printf",
        "%y" + _SCAN_FIELDS,
    ]
    script = _SCAN_SCRIPT.replace("FIND", shlex.join(expression))
    args = [str(max_depth + 1)]
    for root in roots:
        args += ["glob" if has_magic(root) else "path", root]
    return script, args


@attrs.define
class _Root:
    """One root of a scan as the remote script saw it."""

    given: str
    status: str = ""
    detail: bytes = b""
    records: list[tuple[str, int, int, str]] = attrs.field(factory=list)


def _parse_scan(data: bytes) -> dict[int, list[_Root]]:
    tokens = data.split(b"\0")
    roots: dict[int, list[_Root]] = {}
    current: _Root | None = None
    i = 0
    while i < len(tokens) - 1:
        token = tokens[i]
        i += 1
        if token.startswith(b"M "):
            current = _Root(given=_decode(tokens[i]))
            roots.setdefault(int(token[2:]), []).append(current)
            i += 1
        elif current is None or token == b"E":
            continue
        elif token.startswith(b"R "):
            current.status = token[2:].decode()
            if current.status in ("ok", "error"):
                current.detail = tokens[i]
                i += 1
        else:
            kind, dev, ino, _depth, rel = token.split(b" ", 4)
            current.records.append((kind.decode(), int(dev), int(ino), _decode(rel)))
    return roots


def scan_result(
    roots: Sequence[str],
    data: bytes,
    stderr: bytes,
    *,
    markers: frozenset[str],
    prune: frozenset[str],
    max_depth: int,
) -> ScanResult:
    """LocalHost's walk, replayed over the listing the remote finds returned: same candidates,
    same errors in the same order, same entry cap."""
    found = _parse_scan(data)
    walk = _Walk(markers=markers, prune=prune, max_depth=max_depth)
    for index, root in enumerate(roots):
        blocks = found.get(index, [])
        if has_magic(root):
            blocks = sorted(blocks, key=lambda block: block.given)  # as sorted(glob.glob())
        for block in blocks:
            name = shown(block.given)
            if not os.path.isabs(block.given):
                walk.errors.append(f"{name}: search paths must be absolute")
            elif block.status == "error":
                walk.errors.append(f"{name}: {describe(block.detail)}")
            elif block.status == "notdir":
                walk.errors.append(f"{name}: not a directory")
            elif block.status == "ok":
                walk.root(block)
    # Whatever find itself complained about (a directory that vanished, a stat that failed).
    text = stderr.decode("utf-8", errors="backslashreplace")
    walk.errors.extend(line for line in text.splitlines() if line.startswith("find: "))
    walk.candidates.sort(key=lambda c: c.path)
    return ScanResult(candidates=tuple(walk.candidates), errors=tuple(walk.errors))


@attrs.define(kw_only=True)
class _Walk:
    markers: frozenset[str]
    prune: frozenset[str]
    max_depth: int
    seen: set[tuple[int, int]] = attrs.field(factory=set)
    candidates: list[ScannedDir] = attrs.field(factory=list)
    errors: list[str] = attrs.field(factory=list)

    def root(self, block: _Root) -> None:
        real = _decode(block.detail)
        kinds: dict[str, tuple[str, int, int]] = {}
        children: dict[str, list[tuple[str, str]]] = {}
        for kind, dev, ino, rel in block.records:
            kinds[rel] = (kind, dev, ino)
            if rel:
                parent, _, name = rel.rpartition("/")
                children.setdefault(parent, []).append((name, kind))
        stack: list[tuple[str, int]] = [("", 0)]
        while stack:
            rel, depth = stack.pop()
            path = os.path.join(real, rel) if rel else real
            if rel not in kinds:
                self.errors.append(f"{shown(path)}: cannot be read")
                continue
            kind, dev, ino = kinds[rel]
            if (dev, ino) in self.seen:
                continue
            self.seen.add((dev, ino))
            if kind == "u":
                self.errors.append(f"{shown(path)}: permission denied")
                continue
            entries: set[str] = set()
            subdirs: list[str] = []
            truncated = False
            for name, child in children.get(rel, ()):
                is_dir = child in ("d", "p", "u")
                if len(entries) < _MAX_ENTRIES or name in self.markers:
                    entries.add(name + "/" if is_dir else name)
                else:
                    truncated = True
                if is_dir and name not in self.prune:
                    subdirs.append(name)
            if not self.markers.isdisjoint(entries):
                found = ScannedDir(path=path, entries=frozenset(entries), truncated=truncated)
                self.candidates.append(found)
            if depth < self.max_depth:
                stack.extend(
                    (f"{rel}/{sub}" if rel else sub, depth + 1)
                    for sub in sorted(subdirs, reverse=True)
                )


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
