"""What a file-set backup records and compares: entries, manifests, and the parsers of both.

An entry is one path of a file set, relative to the application root, with its type, mode,
owner and symlink target; with a regular file's content hash, those are the path's facts, and
a state is the facts of every path. States are read from tar's listing of an archive and the
hashes of its members, and from the find and sha256sum walk of a tree; ``manifest.json`` and
``files.sha256`` record one. :func:`_differences` says what differs between two states. The
strategy itself, :class:`~universal_healer.backup.FileSetBackup`, is in
:mod:`universal_healer.backup._fileset`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence

import attrs

from universal_healer.backup._base import _SHOWN_DIFFERENCES, _decode, _encode, _shown

# --------------------------------------------------------------------------------------------
# File sets: what an entry is, read from tar's listing and from find


@attrs.frozen(kw_only=True)
class _Entry:
    """One entry of a file set, relative to the application root (``"."`` is the root).

    :param type: ``f`` file (hard links too), ``d``, ``l`` symlink, ``p``, ``c``, ``b``, ``s``.
    :param mode: permission bits with set-user-ID, set-group-ID and sticky.
    """

    path: str
    type: str
    mode: int
    uid: int
    gid: int
    target: str | None = None


@attrs.frozen(kw_only=True)
class _FileManifest:
    """``manifest.json`` of a file-set backup (the content hashes are in ``files.sha256``)."""

    format: int
    strategy: str
    root: str
    paths: tuple[str, ...]
    absent: tuple[str, ...]
    excludes: tuple[str, ...]
    xattrs: bool
    acls: bool
    archive_sha256: str
    created_at: dt.datetime
    entries: tuple[_Entry, ...]


@attrs.frozen
class _Facts:
    type: str
    mode: int
    uid: int
    gid: int
    target: str | None
    sha256: str | None


_State = dict[str, _Facts]

_QUOTED = rb'"(?:[^"\\]|\\.)*"'
_LISTING = re.compile(
    rb"(?P<mode>\S)(?P<perms>[-rwxsStT]{9}) (?P<uid>\d+)/(?P<gid>\d+) +[\d,]+ [^\"]*?"
    rb"(?P<name>" + _QUOTED + rb")"
    rb"(?: -> (?P<target>" + _QUOTED + rb")| link to (?P<link>" + _QUOTED + rb"))?"
)
_C_ESCAPES = {
    ord("a"): 7, ord("b"): 8, ord("f"): 12, ord("n"): 10, ord("r"): 13, ord("t"): 9,
    ord("v"): 11, ord("\\"): 92, ord('"'): 34, ord("'"): 39, ord("?"): 63,
}  # fmt: skip
_TAR_TYPES = {"-": "f", "C": "f", "h": "f", "d": "d", "l": "l", "p": "p", "c": "c", "b": "b"}


def _c_unquote(quoted: bytes) -> bytes:
    """Undo tar's ``--quoting-style=c``: a double-quoted C string, octal for odd bytes."""
    body, out, i = quoted[1:-1], bytearray(), 0
    while i < len(body):
        char = body[i]
        if char != 0x5C:  # backslash
            out.append(char)
            i += 1
            continue
        nxt = body[i + 1]
        if 0x30 <= nxt <= 0x37:
            j = i + 1
            while j < min(i + 4, len(body)) and 0x30 <= body[j] <= 0x37:
                j += 1
            out.append(int(body[i + 1 : j], 8) & 0xFF)
            i = j
        else:
            out.append(_C_ESCAPES.get(nxt, nxt))
            i += 2
    return bytes(out)


def _mode_bits(perms: bytes) -> int:
    """``rwsr-xr-t`` as 0o5755."""
    bits = 0
    for index, (special, shift) in enumerate(((0o4000, 6), (0o2000, 3), (0o1000, 0))):
        read, write, execute = (chr(c) for c in perms[3 * index : 3 * index + 3])
        bits |= (4 if read == "r" else 0) << shift
        bits |= (2 if write == "w" else 0) << shift
        bits |= (1 if execute in "xst" else 0) << shift
        bits |= special if execute in "sStT" else 0
    return bits


def _member(name: bytes) -> str:
    """A tar member or find path as a path relative to the root (``"."`` for the root)."""
    text = _decode(name).rstrip("/")
    if text in ("", "."):
        return "."
    return text.removeprefix("./")


def _parse_listing(out: bytes) -> tuple[list[_Entry], dict[str, str]]:
    """Entries from ``tar --list --verbose``, and hard links (path -> the path it links to)."""
    entries: list[_Entry] = []
    links: dict[str, str] = {}
    for line in out.split(b"\n"):
        if not line:
            continue
        match = _LISTING.fullmatch(line)
        if match is None:
            raise ValueError(f"cannot read tar's listing line {line[:200]!r}")
        kind = _TAR_TYPES.get(chr(match["mode"][0]))
        if kind is None:
            raise ValueError(f"unexpected archive member type in {line[:200]!r}")
        path = _member(_c_unquote(match["name"]))
        target = _decode(_c_unquote(match["target"])) if match["target"] else None
        if match["link"]:
            links[path] = _member(_c_unquote(match["link"]))
        entries.append(
            _Entry(
                path=path,
                type=kind,
                mode=_mode_bits(match["perms"]),
                uid=int(match["uid"]),
                gid=int(match["gid"]),
                target=target,
            )
        )
    return entries, links


def _parse_tar_hashes(out: bytes) -> dict[str, str]:
    """``NAME\\0HASH  -\\n`` records, as the hashing ``--to-command`` prints them."""
    hashes: dict[str, str] = {}
    position = 0
    while position < len(out):
        end = out.index(b"\0", position)
        digest, tail = out[end + 1 : end + 65], out[end + 65 : end + 69]
        if tail != b"  -\n" or not re.fullmatch(rb"[0-9a-f]{64}", digest):
            raise ValueError("cannot read the archive's content hashes")
        hashes[_member(out[position:end])] = digest.decode("ascii")
        position = end + 69
    return hashes


def _parse_scan(out: bytes) -> _State:
    """The ``find -printf`` and ``sha256sum -z`` records of the restore's walk (``_SCAN`` in
    :mod:`universal_healer.backup._fileset`)."""
    fields = out.split(b"\0")
    entries: dict[str, _Entry] = {}
    hashes: dict[str, str] = {}
    i = 0
    while i < len(fields):
        field = fields[i]
        if field == b"E":
            kind, mode, uid, gid, name, target = fields[i + 1 : i + 7]
            path = _member(name)
            entries[path] = _Entry(
                path=path,
                type=kind.decode("ascii"),
                mode=int(mode, 8),
                uid=int(uid),
                gid=int(gid),
                target=_decode(target) if kind == b"l" else None,
            )
            i += 7
        elif len(field) >= 67 and field[64:66] == b"  ":
            hashes[_member(field[66:])] = field[:64].decode("ascii")
            i += 1
        elif not field and i == len(fields) - 1:
            i += 1
        else:
            raise ValueError(f"cannot read the file scan near {field[:100]!r}")
    return _state(entries.values(), hashes)


def _state(entries: Iterable[_Entry], hashes: Mapping[str, str]) -> _State:
    return {
        e.path: _Facts(e.type, e.mode, e.uid, e.gid, e.target, hashes.get(e.path)) for e in entries
    }


def _sha256_lines(hashes: Mapping[str, str]) -> bytes:
    """``files.sha256`` in sha256sum's format, so ``sha256sum -c`` can read it in the root."""
    lines = []
    for path in sorted(hashes):
        name = _encode(path)
        if b"\\" in name or b"\n" in name:
            escaped = name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")
            lines.append(b"\\" + hashes[path].encode() + b"  " + escaped + b"\n")
        else:
            lines.append(hashes[path].encode() + b"  " + name + b"\n")
    return b"".join(lines)


def _parse_sha256_lines(data: bytes) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for line in data.split(b"\n"):
        if not line:
            continue
        escaped = line.startswith(b"\\")
        body = line[1:] if escaped else line
        digest, separator, name = body[:64], body[64:66], body[66:]
        if separator != b"  " or not re.fullmatch(rb"[0-9a-f]{64}", digest):
            raise ValueError(f"cannot read the line {line[:100]!r}")
        if escaped:
            name = re.sub(rb"\\(.)", lambda m: b"\n" if m[1] == b"n" else m[1], name)
        hashes[_decode(name)] = digest.decode("ascii")
    return hashes


def _differences(
    expected: _State, found: _State, *, missing: str = "missing", extra: str = "should not exist"
) -> list[str]:
    """What differs between two states, one short line per path, sorted."""
    lines: list[str] = []
    for path in sorted(expected.keys() | found.keys()):
        want, got = expected.get(path), found.get(path)
        shown = _shown(path)
        if got is None:
            lines.append(f"{shown}: {missing}")
        elif want is None:
            lines.append(f"{shown}: {extra}")
        elif want != got:
            what = []
            if want.type != got.type:
                what.append(f"type {got.type} instead of {want.type}")
            if want.mode != got.mode:
                what.append(f"mode {got.mode:04o} instead of {want.mode:04o}")
            if (want.uid, want.gid) != (got.uid, got.gid):
                what.append(f"owner {got.uid}:{got.gid} instead of {want.uid}:{want.gid}")
            if want.target != got.target:
                what.append("symlink target differs")
            if want.sha256 != got.sha256:
                what.append("content differs")
            lines.append(f"{shown}: {', '.join(what)}")
    return lines


def _summary(lines: Sequence[str]) -> str:
    shown = "; ".join(lines[:_SHOWN_DIFFERENCES])
    more = len(lines) - _SHOWN_DIFFERENCES
    return shown + (f"; and {more} more" if more > 0 else "")
