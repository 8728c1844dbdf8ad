"""What :class:`~universal_healer._fleet_host.BatchingHost` sends and how it reads the answers.

POSIX sh scripts that do the work of many paths or commands in one remote command, with a
constant number of processes wherever the tools allow it, and pure parsers that trust an answer
only when it adds up. Data travels as positional parameters, never inside a script's text.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from universal_healer.hosts import _sshwire as wire
from universal_healer.hosts.base import FileStat

__all__ = [
    "LIST_EACH_SCRIPT",
    "LIST_SCRIPT",
    "RUN_SCRIPT",
    "STAT_SCRIPT",
    "each_listing",
    "raw",
    "read_listing",
    "settled_stats",
]

# One find for every path, then shell builtins only: no process per path. First find's record
# pair for each path it could lstat, "PATH\0<type> <mode> <uid> <gid> <size> <mtime>\0" (%p of a
# starting point is the argument as given; the fields as SSHHost.stat prints them); then an
# empty record; then one mark per path, in order: "M" when the path is clearly missing (neither
# it nor a link by its name is there, and its parent is a directory we may search), else "F".
# A path find did not print and not marked "M" is asked again with SSHHost.stat, for its exact
# answer. ${p%/*} of "dir/" is "dir", which is either there or not a directory: a trailing
# slash is never "M" (lstat follows it, and a link loop there is an error, not None).
STAT_SCRIPT = r"""find -P "$@" -maxdepth 0 -printf '%p\0%y %m %U %G %s %T@\0' 2>/dev/null
printf '\0'
for p do
  d=${p%/*}
  if [ ! -e "$p" ] && [ ! -L "$p" ] && [ -d "${d:-/}" ] && [ -x "${d:-/}" ]; then
    printf 'M\0'
  else
    printf 'F\0'
  fi
done
"""
# lstat says "File name too long", not "missing", past these (bytes): no "M" beyond them.
_NAME_MAX = 255
_PATH_MAX = 4096

# "<index> <type> <name>" per entry of the index-th directory, then "<index> ok" once it was
# listed completely; a directory without its "ok" could not be listed.
LIST_EACH_SCRIPT = r"""i=0
for d do
  if [ -d "$d" ] && find -H "$d" -mindepth 1 -maxdepth 1 -printf "$i %y %f\0" 2>/dev/null; then
    printf '%s ok\0' "$i"
  fi
  i=$((i + 1))
done
"""

# One find for every directory. First one mark per path, in order: "D" for a directory, "N"
# for anything else (left out). Then, for the directories only, find's "DIR\0<type> <name>\0"
# per entry (%H is the directory as given; -H lists the target of a link to a directory, as
# SSHHost.list_dir does); then "\0ok\0" when find succeeded, so that every directory was listed
# completely. When it failed, which directory it could not list is unknown: "\0each\0", and
# :data:`LIST_EACH_SCRIPT` lists the directories again one by one (indexes count directories).
# eval only ever sees references to the parameters ("${3}"), never their text.
LIST_SCRIPT = (
    r"""i=0 dirs=
for d do
  i=$((i + 1))
  if [ -d "$d" ]; then dirs="$dirs \"\${$i}\""; printf 'D\0'; else printf 'N\0'; fi
done
eval "set -- $dirs"
if [ $# -eq 0 ] || find -H "$@" -mindepth 1 -maxdepth 1 -printf '%H\0%y %f\0' 2>/dev/null; then
  printf '\0ok\0'
  exit 0
fi
printf '\0each\0'
"""
    + LIST_EACH_SCRIPT
)

# Many commands in one: each runs in the background under coreutils' timeout (TERM, then KILL
# 2 s later: status 124 or 137 means it timed out), stdin from /dev/null, stdout and stderr to
# files. Then, in order: "BOUNDARY STATUS\0", up to cap + 1 bytes of stdout, "\0BOUNDARY\0", up
# to cap + 1 bytes of stderr, "\0BOUNDARY\0". Positional parameters: BOUNDARY, then per command
# TIMEOUT CAP ARGC ARG1 ... ARGC; eval only ever sees references to them ("${4}") and our own
# numbers, never the arguments' text. Status 125 before anything ran: no timeout(1) here.
# Three processes per command (timeout, the command, head): fewer than a channel of its own.
RUN_SCRIPT = r"""command -v timeout >/dev/null 2>&1 || exit 125
d=$(mktemp -d) || exit 125
trap 'rm -rf "$d"' EXIT
b=$1; shift
printf '\0%s\0' "$b" >"$d/sep"
i=0
while [ $# -gt 0 ]; do
  t=$1; c=$2; n=$3; shift 3
  refs=''; j=1
  while [ "$j" -le "$n" ]; do refs="$refs \"\${$j}\""; j=$((j + 1)); done
  eval "exec timeout -k 2 $t $refs" >"$d/$i.o" 2>"$d/$i.e" </dev/null &
  eval "p$i=\$! c$i=$c"
  shift "$n"
  i=$((i + 1))
done
k=0
while [ "$k" -lt "$i" ]; do
  eval "p=\$p$k c=\$c$k"
  wait "$p"; s=$?
  printf '%s %s\0' "$b" "$s"
  head -q -c "$((c + 1))" "$d/$k.o" "$d/sep" "$d/$k.e" "$d/sep"
  k=$((k + 1))
done
"""


def raw(path: str) -> bytes:
    """``path`` as the remote side sees it (how :func:`wire.remote_command` encodes it)."""
    return path.encode("utf-8", errors="surrogateescape")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="surrogateescape")


def settled_stats(paths: Sequence[str], data: bytes) -> dict[str, FileStat | None] | None:
    """What :data:`STAT_SCRIPT` settled: a FileStat for each path find printed, None for each
    path clearly missing; any other path is unsure. None when the answer does not add up."""
    records = data.split(b"\0")[:-1]
    count = len(paths)
    printed, marks = records[: -count - 1], records[-count:]
    if len(records) <= count or records[-count - 1] or len(printed) % 2:
        return None
    if any(mark not in (b"M", b"F") for mark in marks):
        return None
    fields = dict(zip(printed[::2], printed[1::2], strict=True))
    settled: dict[str, FileStat | None] = {}
    for path, mark in zip(paths, marks, strict=True):
        encoded = raw(path)
        if encoded in fields:
            with contextlib.suppress(wire.WireError, ValueError, IndexError):
                settled[path] = wire.parse_stat(path, fields[encoded])
        elif mark == b"M" and _within_limits(encoded):
            settled[path] = None
    return settled


def _within_limits(path: bytes) -> bool:
    """Whether lstat can say "missing" of ``path`` (past the limits it says "too long")."""
    return len(path) < _PATH_MAX and len(path.rpartition(b"/")[2]) <= _NAME_MAX


def _entry_name(record: bytes) -> str | None:
    """A listed name from ``<type> <name>`` (a directory's ends with ``/``); None if garbled."""
    kind, _, name = record.partition(b" ")
    if len(kind) != 1 or not name:
        return None
    return _text(name) + "/" if kind == b"d" else _text(name)


def read_listing(paths: Sequence[str], data: bytes) -> dict[str, frozenset[str]] | None:
    """The directories :data:`LIST_SCRIPT` listed completely; None when its answer does not
    add up (then nothing it says is trusted)."""
    records = data.split(b"\0")[:-1]
    marks, rest = records[: len(paths)], records[len(paths) :]
    if len(marks) != len(paths) or any(mark not in (b"D", b"N") for mark in marks):
        return None
    directories = [path for path, mark in zip(paths, marks, strict=True) if mark == b"D"]
    # No record of find's is empty (names and absolute paths never are): the first empty one
    # is the end of find's answer.
    end = rest.index(b"") if b"" in rest else -1
    if end >= 0 and rest[end + 1 : end + 2] == [b"each"]:
        return each_listing(directories, rest[end + 2 :])
    if end < 0 or end % 2 or rest[end + 1 :] != [b"ok"]:
        return None
    entries: dict[bytes, set[str]] = {raw(path): set() for path in directories}
    for start, record in zip(rest[0:end:2], rest[1:end:2], strict=True):
        name = _entry_name(record)
        if start not in entries or name is None:
            return None
        entries[start].add(name)
    return {path: frozenset(entries[raw(path)]) for path in directories}


def each_listing(paths: Sequence[str], records: Sequence[bytes]) -> dict[str, frozenset[str]]:
    """The directories :data:`LIST_EACH_SCRIPT` listed completely (those with their "ok")."""
    entries: dict[int, set[str]] = {}
    complete: set[int] = set()
    for record in records:
        index, _, rest = record.partition(b" ")
        if not index.isdigit():
            continue
        if rest == b"ok":
            complete.add(int(index))
        elif (name := _entry_name(rest)) is not None:
            entries.setdefault(int(index), set()).add(name)
    return {
        paths[number]: frozenset(entries.get(number, ()))
        for number in sorted(complete)
        if number < len(paths)
    }
