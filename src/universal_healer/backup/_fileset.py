"""File-set backups: a tar archive plus manifests, restored by swapping paths in."""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

import attrs

from universal_healer import serde
from universal_healer.backup._base import (
    _FORMAT,
    _LARGE,
    _RUN_PRIVATE,
    _SHOWN_DIFFERENCES,
    _SHOWN_STDERR,
    BackupStrategy,
    _artifact_location,
    _decode,
    _encode,
    _shown,
    _Target,
    _Work,
)
from universal_healer.exceptions import BackupError, RemoteError
from universal_healer.executions import BackupArtifact
from universal_healer.hosts.base import Host
from universal_healer.model import Application

log = logging.getLogger(__name__)

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
    """The ``find -printf`` and ``sha256sum -z`` records of :data:`_SCAN`."""
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


def _under(path: str, prefix: str) -> bool:
    return prefix in (".", path) or path.startswith(prefix + "/")


def _relative_paths(values: Iterable[str]) -> tuple[str, ...]:
    paths = []
    for value in values:
        if not isinstance(value, str) or not value or "\0" in value or value.startswith("/"):
            raise ValueError(f"paths must be relative to the application root: {value!r}")
        normal = posixpath.normpath(value)
        if normal == ".." or normal.startswith("../"):
            raise ValueError(f"paths must stay inside the application root: {value!r}")
        paths.append(normal)
    return tuple(paths)


def _disjoint(
    _: object, attribute: attrs.Attribute[tuple[str, ...]], paths: tuple[str, ...]
) -> None:
    if attribute.name == "paths" and not paths:
        raise ValueError("a file set needs at least one path")
    for index, path in enumerate(paths):
        for other in paths[index + 1 :]:
            if _under(path, other) or _under(other, path):
                raise ValueError(f"{attribute.name} overlap: {path!r} and {other!r}")


# The walk of a restore: every entry's type, mode, owner and symlink target (find), then the
# content hash of every regular file (sha256sum -z: no escaping of odd names). $1 is the base
# directory, the rest are "./relative" paths; those that do not exist are skipped.
_SCAN = """set -u
cd -- "$1" || exit 2
shift
status=0
for p in "$@"; do
  [ -e "$p" ] || [ -L "$p" ] || continue
  find "$p" -printf 'E\\0%y\\0%m\\0%U\\0%G\\0%p\\0%l\\0' || status=1
  find "$p" -type f -exec sha256sum -z -- {} + || status=1
done
exit $status
"""

# What the archive holds, for the manifests: tar runs this for every regular file.
_HASH_MEMBER = "printf '%s\\0' \"$TAR_FILENAME\" && exec sha256sum"

# Is tar GNU tar, and can it keep xattrs and ACLs? Where is the root really? Which paths exist?
_PROBE = """set -u
root=$1
shift
version=$(tar --version 2>/dev/null | head -n 1)
printf '%s\\n' "$version"
help=$(tar --help 2>/dev/null)
case $help in *--xattrs*) printf 'xattrs ';; esac
case $help in *--acls*) printf 'acls';; esac
printf '\\n'
realpath -z -e -- "$root" || exit 3
cd -- "$root" || exit 3
for p in "$@"; do
  if [ -e "$p" ] || [ -L "$p" ]; then printf 1; else printf 0; fi
done
"""

# The swap of a restore, in 5-argument groups: OP LIVE STAGED ASIDE PARENT. It prints the
# number of each group done, so a failure says how far it got.
#   keep  carry an excluded LIVE path into the staged tree (PARENT: its staged parent)
#   put   replace LIVE with STAGED: one atomic rename when neither is a directory, else LIVE
#         moves ASIDE first (PARENT: LIVE's parent, made when missing)
#   drop  move LIVE (created since the backup) ASIDE
_SWAP = """set -u
n=0
exists() { [ -e "$1" ] || [ -L "$1" ]; }
is_dir() { [ -d "$1" ] && [ ! -L "$1" ]; }
while [ $# -ge 5 ]; do
  op=$1 live=$2 staged=$3 aside=$4 parent=$5
  shift 5
  case $op in
    keep)
      if exists "$live" && is_dir "$parent" && ! exists "$staged"; then
        mv -T -- "$live" "$staged" || exit 1
      fi ;;
    put)
      is_dir "$parent" || mkdir -p -- "$parent" || exit 1
      if exists "$live" && { is_dir "$live" || is_dir "$staged"; }; then
        mv -T -- "$live" "$aside" || exit 1
      fi
      mv -T -f -- "$staged" "$live" || exit 1 ;;
    drop)
      if exists "$live"; then mv -T -- "$live" "$aside" || exit 1; fi ;;
    *) exit 2 ;;
  esac
  n=$((n + 1))
  printf '%s\\n' "$n"
done
"""


@attrs.frozen
class FileSetBackup(BackupStrategy):
    """Files and directories of the application, archived with GNU tar on the target host.

    :param paths: relative to the application root, not overlapping; ``"."`` is the whole root.
        A path missing at backup time is recorded as absent, and a restore removes it.
    :param excludes: relative paths inside ``paths`` left out of the backup. A restore leaves
        them as they are (it carries them over into the restored tree).
    :param timeout: seconds allowed for each command (archiving, extracting, hashing).

    The target needs GNU tar and GNU coreutils (8.30 or later: ``sha256sum -z``). Owners are
    kept by number. Restoring owners needs root on the target; a restore that cannot put an
    owner back fails its final check rather than pretend.
    """

    name: ClassVar[str] = "files"
    includes: ClassVar[tuple[str, ...]] = ("files of the application",)

    paths: tuple[str, ...] = attrs.field(converter=_relative_paths, validator=_disjoint)
    excludes: tuple[str, ...] = attrs.field(
        default=(), converter=_relative_paths, validator=_disjoint
    )
    timeout: float = 3600.0

    def __attrs_post_init__(self) -> None:
        for exclude in self.excludes:
            if not any(_under(exclude, p) and exclude != p for p in self.paths):
                raise ValueError(f"exclude {exclude!r} is not inside one of the paths")

    def describe(self, app: Application) -> tuple[str, ...]:
        """Each backed-up path under the application root, then what is left out."""
        root = app.display_path.rstrip("/") or "/"
        shown = [root if p == "." else f"{root}/{_shown(p)}" for p in self.paths]
        shown += [f"not {root}/{_shown(e)}" for e in self.excludes]
        return tuple(shown)

    # -- create ------------------------------------------------------------------------------

    async def create(self, host: Host, app: Application, destination: str) -> BackupArtifact:
        """Archive the paths under ``destination``; see the module docstring."""
        target = _Target(host, self.timeout, app.path)
        tar_line, features, root, present = await self._probe(target, app.path)
        if "GNU tar" not in tar_line:
            raise target.error(f"GNU tar is needed on the host, found {tar_line or 'no tar'!r}")
        work = await target.begin(destination, self.name)
        try:
            artifact = await self._build(work, root, present, features)
        except BaseException:
            await work.abandon()
            raise
        log.info(
            "backup %s of %s on %s: %s (%d bytes)",
            self.name, app.display_path, host.name, _shown(artifact.location), artifact.size_bytes,
        )  # fmt: skip
        return attrs.evolve(artifact, includes=self.describe(app))

    async def _probe(
        self, target: _Target, root: str
    ) -> tuple[str, frozenset[str], str, tuple[str, ...]]:
        root = target.absolute(root, "the application root")
        result = await target.run(
            ("sh", "-c", _PROBE, "sh", root, *(_dot(p) for p in self.paths)),
            what="looking at the application root",
        )
        version, _, rest = result.stdout.partition(b"\n")
        features, _, rest = rest.partition(b"\n")
        real, _, flags = rest.partition(b"\0")
        present = tuple(
            p for p, flag in zip(self.paths, flags.decode(), strict=True) if flag == "1"
        )
        return (
            version.decode(errors="replace"),
            frozenset(features.decode(errors="replace").split()),
            _decode(real),
            present,
        )

    def _tar_options(self, xattrs: bool, acls: bool) -> list[str]:
        return ["--numeric-owner"] + ["--xattrs"] * xattrs + ["--acls"] * acls

    async def _build(
        self, work: _Work, root: str, present: tuple[str, ...], features: frozenset[str]
    ) -> BackupArtifact:
        target = work.target
        xattrs, acls = "xattrs" in features, "acls" in features
        archive = work.path("files.tar")
        dot = "." in self.paths
        excludes = [f"--exclude={'./' + e if dot else e}" for e in self.excludes]
        names = ["--", *present] if present else ["--files-from=/dev/null"]
        result = await target.run(
            ("sh", "-c", _RUN_PRIVATE, "sh", "tar", "--create", f"--file={archive}",
             f"--directory={root}", "--format=posix", *self._tar_options(xattrs, acls),
             "--anchored", "--no-wildcards", *excludes, *names),
            what="archiving", ok=(0, 1), program="tar",
        )  # fmt: skip
        if result.exit_status == 1:
            # GNU tar: some file changed while it was read. The archive holds a copy of it
            # all the same, and the manifests below are read from the archive, so they agree.
            log.warning(
                "files changed while they were archived: %s", _shown(_decode(result.stderr))
            )
        state = await self._archive_state(target, archive)
        hashes = {path: facts.sha256 for path, facts in state.items() if facts.sha256}
        manifest = _FileManifest(
            format=_FORMAT,
            strategy=self.name,
            root=root,
            paths=self.paths,
            absent=tuple(p for p in self.paths if p not in present),
            excludes=self.excludes,
            xattrs=xattrs,
            acls=acls,
            archive_sha256=await target.sha256(archive),
            created_at=dt.datetime.now(dt.UTC),
            entries=tuple(
                _Entry(path=p, type=f.type, mode=f.mode, uid=f.uid, gid=f.gid, target=f.target)
                for p, f in sorted(state.items())
            ),
        )
        files = [archive, work.path("files.sha256"), work.path("manifest.json")]
        await target.write_private(files[1], _sha256_lines(hashes), what="writing files.sha256")
        await target.write_private(
            files[2], serde.dumps(manifest, indent=1).encode("ascii"), what="writing manifest.json"
        )
        size = await target.sizes(files)
        await work.commit()
        return BackupArtifact(location=work.final, size_bytes=size, sha256=manifest.archive_sha256)

    async def _archive_state(self, target: _Target, archive: str) -> _State:
        """Every member's facts and every regular file's hash, read from the archive."""
        listing = await target.run(
            ("tar", "--list", "--verbose", f"--file={archive}", "--numeric-owner",
             "--quoting-style=c", "--full-time"),
            what="listing the archive", max_output=_LARGE,
        )  # fmt: skip
        hashed = await target.run(
            ("tar", "--extract", f"--file={archive}", f"--to-command={_HASH_MEMBER}"),
            what="hashing the archive", max_output=_LARGE,
        )  # fmt: skip
        try:
            entries, links = _parse_listing(listing.stdout)
            hashes = _parse_tar_hashes(hashed.stdout)
        except (ValueError, IndexError) as err:
            raise target.error(f"cannot read the archive: {err}") from err
        for path, linked in links.items():
            if linked in hashes:
                hashes[path] = hashes[linked]
        return _state(entries, hashes)

    # -- verify -------------------------------------------------------------------------------

    async def verify(self, host: Host, artifact: BackupArtifact) -> None:
        """Check the archive's digest, then every member against both manifests."""
        await self._verified(_Target(host, self.timeout, artifact.location), artifact)

    async def _verified(
        self, target: _Target, artifact: BackupArtifact
    ) -> tuple[_FileManifest, _State]:
        location = _artifact_location(target.host, artifact)
        manifest, hashes = await self._manifests(target, location)
        archive = posixpath.join(location, "files.tar")
        digest = await target.sha256(archive)
        if digest != artifact.sha256 or digest != manifest.archive_sha256:
            raise target.error(
                f"the backup is damaged: files.tar has sha256 {digest}, the backup was taken "
                f"with {artifact.sha256}"
            )
        expected = _state(manifest.entries, hashes)
        differences = _differences(
            expected,
            await self._archive_state(target, archive),
            missing="in the manifest, not in the archive",
            extra="in the archive, not in the manifest",
        )
        if differences:
            raise target.error(
                f"the backup is damaged: the archive and its manifests disagree: "
                f"{_summary(differences)}"
            )
        return manifest, expected

    async def _manifests(
        self, target: _Target, location: str
    ) -> tuple[_FileManifest, dict[str, str]]:
        raw = await target.read(
            posixpath.join(location, "manifest.json"), what="the backup is damaged"
        )
        lines = await target.read(
            posixpath.join(location, "files.sha256"), what="the backup is damaged"
        )
        try:
            manifest = serde.loads(raw.decode("ascii"), _FileManifest)
            hashes = _parse_sha256_lines(lines)
        except Exception as err:  # cattrs, json and our parser: all mean damaged
            raise target.error(f"the backup is damaged: unreadable manifest ({err})") from err
        if manifest.format != _FORMAT or manifest.strategy != self.name:
            raise target.error(
                f"not a {self.name!r} backup of format {_FORMAT}: "
                f"{manifest.strategy!r} format {manifest.format}"
            )
        return manifest, hashes

    # -- restore ------------------------------------------------------------------------------

    async def restore(self, host: Host, app: Application, artifact: BackupArtifact) -> None:
        """Verify, extract beside the root, check, swap in, check again."""
        target = _Target(host, self.timeout, artifact.location)
        manifest, expected = await self._verified(target, artifact)
        root = await self._resolve(target, app.path)
        present = [p for p in manifest.paths if p not in manifest.absent]
        stage = await self._stage(target, root)
        tree = posixpath.join(stage, "tree")
        try:
            await target.run(("mkdir", "-m", "0700", "--", tree, posixpath.join(stage, "old")),
                             what="making the staging directory")  # fmt: skip
            await target.run(
                ("tar", "--extract", f"--file={posixpath.join(artifact.location, 'files.tar')}",
                 f"--directory={tree}", "--same-owner", "--preserve-permissions",
                 *self._tar_options(manifest.xattrs, manifest.acls)),
                what="extracting the backup",
            )  # fmt: skip
            differences = _differences(expected, await self._scan(target, tree, present))
        except BaseException:
            await _quietly_remove(target, stage)
            raise
        if differences:
            await _quietly_remove(target, stage)
            raise target.error(
                "the extracted backup does not match its manifest, so the application was not "
                f"touched: {_summary(differences)}"
            )
        await self._swap(target, manifest, root, stage)
        await _quietly_remove(target, stage)
        live = await self._scan(target, root, manifest.paths)
        kept = [p for p in live if not any(_under(p, e) for e in manifest.excludes)]
        differences = _differences(expected, {p: live[p] for p in kept})
        if differences:
            raise target.error(
                f"restored {_shown(root)}, but it does not match the backup: "
                f"{_summary(differences)}"
            )
        log.info("restored %s on %s from %s", _shown(root), host.name, _shown(artifact.location))

    async def _resolve(self, target: _Target, root: str) -> str:
        root = target.absolute(root, "the application root")
        result = await target.run(("realpath", "-z", "-m", "--", root), what="resolving the root")
        return _decode(result.stdout.removesuffix(b"\0"))

    async def _stage(self, target: _Target, root: str) -> str:
        """A private directory beside the root: on its filesystem, so renames are atomic."""
        parent = posixpath.dirname(root)
        result = await target.run(
            ("mktemp", "-d", "-p", parent, ".healer-restore-XXXXXXXXXX"),
            what="making a staging directory beside the application",
        )
        return _decode(result.stdout.removesuffix(b"\n"))

    async def _scan(self, target: _Target, base: str, paths: Iterable[str]) -> _State:
        result = await target.run(
            ("sh", "-c", _SCAN, "sh", base, *(_dot(p) for p in paths)),
            what="checking the files", max_output=_LARGE,
        )  # fmt: skip
        try:
            return _parse_scan(result.stdout)
        except (ValueError, IndexError) as err:
            raise target.error(f"cannot read the file scan: {err}") from err

    async def _swap(self, target: _Target, manifest: _FileManifest, root: str, stage: str) -> None:
        types = {e.path: e.type for e in manifest.entries}

        def live(path: str) -> str:
            return root if path == "." else posixpath.join(root, path)

        def staged(path: str) -> str:
            tree = posixpath.join(stage, "tree")
            return tree if path == "." else posixpath.join(tree, path)

        groups: list[str] = []
        for index, path in enumerate(manifest.paths):
            aside = posixpath.join(stage, "old", str(index))
            if path in manifest.absent:
                groups += ["drop", live(path), "", aside, ""]
                continue
            for exclude in manifest.excludes:
                # Only through real directories of the backup, never out of the staged tree.
                ancestors = _ancestors(exclude, path)
                if _under(exclude, path) and all(types.get(a) == "d" for a in ancestors):
                    parent = posixpath.dirname(exclude) or "."
                    groups += ["keep", live(exclude), staged(exclude), "", staged(parent)]
            groups += ["put", live(path), staged(path), aside, posixpath.dirname(live(path))]
        if not groups:
            return
        try:
            result = await target.host.run(("sh", "-c", _SWAP, "sh", *groups), timeout=self.timeout)
        except RemoteError as err:
            raise target.error(
                f"restoring {_shown(root)} was cut off ({err.reason}); the application may be "
                f"half restored, and what was replaced is kept in {_shown(stage)}"
            ) from err
        if not result.ok:
            done = len(result.stdout.split())
            detail = _shown(_decode(result.stderr).strip()[-_SHOWN_STDERR:])
            raise target.error(
                f"restoring {_shown(root)} failed part-way ({done} of {len(groups) // 5} steps "
                f"done: {detail}); the application may be half restored, and what was replaced "
                f"is kept in {_shown(stage)}"
            )


def _dot(path: str) -> str:
    """A relative path as ``./path``, so no command can take it for an option."""
    return "." if path == "." else f"./{path}"


def _ancestors(path: str, top: str) -> list[str]:
    """The directories from ``top`` down to ``path``'s parent."""
    parts = path.split("/")
    chain = ["/".join(parts[:i]) for i in range(1, len(parts))]
    return ([top] if top == "." else []) + [c for c in chain if _under(c, top)]


async def _quietly_remove(target: _Target, path: str) -> None:
    try:
        await target.remove(path)
    except BackupError:
        log.exception("could not remove %s", _shown(path))
