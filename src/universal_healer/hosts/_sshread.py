"""What SSHHost sends to read files and how it reads the answer: one script for a batch.

``read_files`` reads a whole batch of paths with one command, :data:`READ_SCRIPT`. One GNU tar
archives every regular file it can take; the others, and all of them on a host without tar or
with a tar that fails, go through one ``head`` each. The answer is framed by a random boundary
that a file cannot contain by chance, and :func:`parse_reads` rebuilds exactly the FileReads
LocalHost returns. The wrapper, the helpers the scripts share and the splitting of paths into
batches are in :mod:`universal_healer.hosts._sshwire`.
"""

from __future__ import annotations

import contextlib
import io
import shlex
import tarfile
from collections.abc import Sequence

import attrs

from universal_healer.hosts._sshwire import _WHY, WireError, _decode, describe, safe
from universal_healer.hosts.base import FileRead

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
