"""File-set backups: a tar archive plus manifests, restored by swapping paths in.

What an entry of a file set is, the manifests, and the parsers and comparisons of the states
they record are in :mod:`universal_healer.backup._filemanifest`.
"""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
from collections.abc import Iterable
from typing import ClassVar

import attrs

from universal_healer import serde
from universal_healer.backup._base import (
    _FORMAT,
    _LARGE,
    _RUN_PRIVATE,
    _SHOWN_STDERR,
    BackupStrategy,
    _artifact_location,
    _decode,
    _shown,
    _Target,
    _Work,
)
from universal_healer.backup._filemanifest import (
    _differences,
    _Entry,
    _FileManifest,
    _parse_listing,
    _parse_scan,
    _parse_sha256_lines,
    _parse_tar_hashes,
    _sha256_lines,
    _State,
    _state,
    _summary,
)
from universal_healer.exceptions import BackupError, RemoteError
from universal_healer.executions import BackupArtifact
from universal_healer.hosts.base import Host
from universal_healer.model import Application

log = logging.getLogger(__name__)


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
