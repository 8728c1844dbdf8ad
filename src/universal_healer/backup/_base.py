"""What every backup strategy shares: the base class and running scripts on the target host."""

from __future__ import annotations

import abc
import datetime as dt
import logging
import posixpath
import re
import secrets
from collections.abc import Container, Sequence
from typing import ClassVar

import attrs

from universal_healer.exceptions import BackupError, RemoteError
from universal_healer.executions import BackupArtifact
from universal_healer.hosts.base import CommandResult, Host
from universal_healer.model import Application

log = logging.getLogger(__name__)

_FORMAT = 1
_SMALL = 1024 * 1024
_LARGE = 512 * 1024 * 1024  # listings and manifests of very large trees
_SHOWN_STDERR = 400
_SHOWN_DIFFERENCES = 8

# Scripts get their data as positional parameters, never inside the script text.
_RUN_PRIVATE = 'umask 077 && exec "$@"'  # files 0600, directories 0700
_WRITE_PRIVATE = 'umask 077 && cat > "$1"'
_SHA256 = 'exec sha256sum < "$1"'
_BEGIN = """set -u
dest=$1 template=$2 made=0
if [ ! -d "$dest" ]; then
  mkdir -p -m 0700 -- "$dest" || exit 1
  made=1
fi
if ! dir=$(mktemp -d -p "$dest" "$template"); then
  [ "$made" = 1 ] && rmdir -- "$dest"
  exit 1
fi
printf '%s\\0%s' "$made" "$dir"
"""


def _shown(path: str) -> str:
    """A path for a message: bytes that are not UTF-8 as ``\\xNN``."""
    return path.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogateescape")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


@attrs.frozen
class _Target:
    """One host, seen by one operation: runs commands and turns every failure into a
    :class:`~universal_healer.exceptions.BackupError` that names the host and the location."""

    host: Host
    timeout: float
    location: str | None = None

    def error(self, reason: str) -> BackupError:
        return BackupError(reason, host=self.host.name, location=self.location)

    def at(self, location: str | None) -> _Target:
        return attrs.evolve(self, location=location)

    def absolute(self, path: str, what: str) -> str:
        if not path.startswith("/") or "\0" in path:
            raise self.error(f"{what} must be an absolute path, not {_shown(path)!r}")
        return posixpath.normpath(path)

    async def run(
        self,
        argv: Sequence[str],
        *,
        what: str,
        input: bytes | None = None,
        ok: Container[int] = (0,),
        max_output: int = _SMALL,
        program: str | None = None,
    ) -> CommandResult:
        """Run ``argv``; a failure is a :class:`~universal_healer.exceptions.BackupError`
        saying ``what`` failed and how ``program`` (default: ``argv[0]``) ended."""
        program = program or argv[0]
        try:
            result = await self.host.run(
                argv, timeout=self.timeout, input=input, max_output=max_output
            )
        except RemoteError as err:
            raise self.error(f"{what}: {err.reason}") from err
        except OSError as err:
            raise self.error(f"{what}: {err.strerror or err}") from err
        if result.exit_status not in ok:
            detail = _decode(result.stderr).strip()
            if len(detail) > _SHOWN_STDERR:
                detail = "..." + detail[-_SHOWN_STDERR:]
            detail = _shown(detail)
            shown = f": {detail}" if detail else ""
            raise self.error(f"{what}: {program} exited with status {result.exit_status}{shown}")
        if result.truncated:
            raise self.error(f"{what}: the output of {program} was too long")
        return result

    async def write_private(self, path: str, data: bytes, *, what: str) -> None:
        await self.run(
            ("sh", "-c", _WRITE_PRIVATE, "sh", path), input=data, what=what, program="cat"
        )

    async def sha256(self, path: str) -> str:
        result = await self.run(
            ("sh", "-c", _SHA256, "sh", path), what="checksumming", program="sha256sum"
        )
        digest = result.stdout[:64].decode("ascii", errors="replace")
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise self.error(f"sha256sum gave no digest for {_shown(path)}")
        return digest

    async def sizes(self, paths: Sequence[str]) -> int:
        result = await self.run(("stat", "--format=%s", "--", *paths), what="sizing the backup")
        return sum(int(line) for line in result.stdout.split())

    async def read(self, path: str, *, what: str) -> bytes:
        try:
            reads = await self.host.read_files((path,), max_bytes=_LARGE)
        except RemoteError as err:
            raise self.error(f"{what}: {err.reason}") from err
        read = reads[path]
        if read.data is None:
            raise self.error(f"{what}: {posixpath.basename(path)} is {read.error or 'unreadable'}")
        if read.truncated:
            raise self.error(f"{what}: {posixpath.basename(path)} is too large")
        return read.data

    async def begin(self, destination: str, prefix: str) -> _Work:
        """Make ``destination`` (0700) when missing and a private partial directory in it."""
        destination = self.absolute(destination, "the backup destination")
        result = await self.at(destination).run(
            ("sh", "-c", _BEGIN, "sh", destination, f".{prefix}-partial-XXXXXXXXXX"),
            what="making the backup directory",
        )
        made, _, directory = result.stdout.partition(b"\0")
        final = posixpath.join(destination, f"{prefix}-{_stamp()}-{secrets.token_hex(4)}")
        return _Work(
            target=self.at(destination),
            destination=destination,
            made_destination=made == b"1",
            partial=_decode(directory),
            final=final,
        )

    async def remove(self, path: str) -> None:
        await self.run(("rm", "-rf", "--", path), what="removing")


@attrs.frozen(kw_only=True)
class _Work:
    """An artifact being built: a partial directory renamed to ``final`` when complete."""

    target: _Target
    destination: str
    made_destination: bool
    partial: str
    final: str

    def path(self, name: str) -> str:
        return posixpath.join(self.partial, name)

    async def commit(self) -> None:
        await self.target.run(("mv", "-T", "--", self.partial, self.final), what="finishing")

    async def abandon(self) -> None:
        """Remove everything made so far; never raises (the first error is the one to see)."""
        try:
            await self.target.remove(self.partial)
            if self.made_destination:
                await self.target.host.run(("rmdir", "--", self.destination), timeout=60.0)
        except (BackupError, RemoteError, OSError):
            log.exception("could not clean up the partial backup %s", _shown(self.partial))


# --------------------------------------------------------------------------------------------
# The base class


class BackupStrategy(abc.ABC):
    """Base class of backup strategies.

    Every method works on the target host through ``host`` only, and every failure is a
    :class:`~universal_healer.exceptions.BackupError` (with
    ``host``, ``location`` and ``reason``); nothing else escapes.

    :cvar name: unique, stable id of the strategy (``"wordpress_files_and_db"``).
    :cvar includes: human-readable list of what the backup holds, shown in dry runs.
    """

    name: ClassVar[str]
    includes: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    async def create(self, host: Host, app: Application, destination: str) -> BackupArtifact:
        """Take a backup of ``app`` on ``host``.

        :param destination: a directory on ``host``; made (0700) when missing. The artifact's
            location is a new directory inside it, present only once the backup is complete.
        :raises BackupError: the backup could not be taken; nothing is left behind.
        """

    @abc.abstractmethod
    async def verify(self, host: Host, artifact: BackupArtifact) -> None:
        """Check that the backup at ``artifact`` is whole: every checksum matches.

        :raises BackupError: the backup is missing or damaged.
        """

    @abc.abstractmethod
    async def restore(self, host: Host, app: Application, artifact: BackupArtifact) -> None:
        """Put ``app`` back exactly as the backup holds it, and check the result.

        A damaged backup is refused before anything is touched.

        :raises BackupError: the backup is damaged, or restoring or checking it failed.
        """

    def describe(self, app: Application) -> tuple[str, ...]:
        """What a backup of ``app`` would hold, for dry runs; does no I/O."""
        return self.includes

    async def remove(self, host: Host, artifact: BackupArtifact) -> None:
        """Delete the artifact's files. Removing one that is already gone is not an error."""
        location = _artifact_location(host, artifact)
        await _Target(host, 600.0, location).remove(location)

    def __repr__(self) -> str:
        return f"<backup {self.name}>"


def _artifact_location(host: Host, artifact: BackupArtifact) -> str:
    location = artifact.location
    if not location.startswith("/") or posixpath.normpath(location) in ("/", "//"):
        raise BackupError(
            "refusing an artifact location that is not an absolute path below /",
            host=host.name,
            location=location,
        )
    return posixpath.normpath(location)
