"""Several backup strategies as one."""

from __future__ import annotations

import hashlib
import logging
import posixpath
from collections.abc import Iterable
from typing import Any, ClassVar

import attrs

from universal_healer import serde
from universal_healer.backup._base import (
    _FORMAT,
    BackupStrategy,
    _artifact_location,
    _Target,
)
from universal_healer.exceptions import BackupError
from universal_healer.executions import BackupArtifact
from universal_healer.hosts.base import Host
from universal_healer.model import Application

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Several strategies as one


def _parts(value: Iterable[BackupStrategy]) -> tuple[BackupStrategy, ...]:
    """A typed converter (a bare ``tuple`` leaves mypy unable to type callers' arguments)."""
    return tuple(value)


@attrs.frozen(kw_only=True)
class _Part:
    strategy: str
    name: str  # the part's directory inside the composite artifact
    size_bytes: int
    sha256: str
    includes: tuple[str, ...]


@attrs.frozen(kw_only=True)
class _Index:
    format: int
    strategy: str
    parts: tuple[_Part, ...]


def _sha256_text(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@attrs.frozen
class CompositeBackup(BackupStrategy):
    """Several strategies taken, verified and restored together, in order.

    The artifact is a directory holding each part's artifact and ``index.json``, which names
    them with their digests; the artifact's sha256 is the index's, so it covers every part.
    When one part cannot be taken, the parts already taken are removed.
    """

    name: ClassVar[str] = "composite"
    includes: ClassVar[tuple[str, ...]] = ("several backups together",)

    parts: tuple[BackupStrategy, ...] = attrs.field(converter=_parts)

    @parts.validator
    def _check_parts(self, _: attrs.Attribute[Any], value: tuple[BackupStrategy, ...]) -> None:
        if not value or not all(isinstance(p, BackupStrategy) for p in value):
            raise ValueError("a composite backup needs one or more backup strategies")

    def describe(self, app: Application) -> tuple[str, ...]:
        """Every part's description, in order."""
        return tuple(line for part in self.parts for line in part.describe(app))

    async def create(self, host: Host, app: Application, destination: str) -> BackupArtifact:
        """Take every part under one directory, then write the index."""
        target = _Target(host, 600.0, destination)
        work = await target.begin(destination, self.name)
        try:
            parts = []
            for part in self.parts:
                made = await part.create(host, app, work.partial)
                parts.append(
                    _Part(
                        strategy=part.name,
                        name=posixpath.basename(made.location),
                        size_bytes=made.size_bytes,
                        sha256=made.sha256,
                        includes=made.includes,
                    )
                )
            index = serde.dumps(
                _Index(format=_FORMAT, strategy=self.name, parts=tuple(parts)), indent=1
            ).encode("ascii")
            await work.target.write_private(work.path("index.json"), index, what="writing")
            await work.commit()
        except BaseException:
            await work.abandon()
            raise
        return BackupArtifact(
            location=work.final,
            size_bytes=sum(p.size_bytes for p in parts) + len(index),
            sha256=_sha256_text(index),
            includes=self.describe(app),
        )

    async def _artifacts(self, host: Host, artifact: BackupArtifact) -> list[BackupArtifact]:
        target = _Target(host, 600.0, artifact.location)
        location = _artifact_location(host, artifact)
        raw = await target.read(
            posixpath.join(location, "index.json"), what="the backup is damaged"
        )
        if _sha256_text(raw) != artifact.sha256:
            raise target.error("the backup is damaged: index.json does not match its digest")
        try:
            index = serde.loads(raw.decode("ascii"), _Index)
        except Exception as err:  # cattrs or json: damaged
            raise target.error(f"the backup is damaged: unreadable index ({err})") from err
        names = [p.strategy for p in index.parts]
        if names != [p.name for p in self.parts]:
            raise target.error(f"the backup's parts {names} are not this strategy's")
        return [
            BackupArtifact(
                location=posixpath.join(location, part.name),
                size_bytes=part.size_bytes,
                sha256=part.sha256,
                includes=part.includes,
            )
            for part in index.parts
        ]

    async def verify(self, host: Host, artifact: BackupArtifact) -> None:
        """Check the index, then every part."""
        for part, made in zip(self.parts, await self._artifacts(host, artifact), strict=True):
            await part.verify(host, made)

    async def restore(self, host: Host, app: Application, artifact: BackupArtifact) -> None:
        """Verify every part first, then restore them in order."""
        artifacts = await self._artifacts(host, artifact)
        for part, made in zip(self.parts, artifacts, strict=True):
            await part.verify(host, made)
        for number, (part, made) in enumerate(zip(self.parts, artifacts, strict=True), 1):
            try:
                await part.restore(host, app, made)
            except BackupError as err:
                done = ", ".join(p.name for p in self.parts[: number - 1]) or "none"
                raise BackupError(
                    f"restoring part {number} of {len(self.parts)} ({part.name}) failed; parts "
                    f"restored before it: {done}: {getattr(err, 'reason', err)}",
                    host=host.name,
                    location=artifact.location,
                ) from err
