"""One application's view of a host that many applications share during a fleet run.

:class:`AppHost` notices when its application lost the host (unreachable, or authentication
refused) so that the application is reported as not diagnosed, rather than as a list of ERROR
results that would look like findings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

from universal_healer.exceptions import AuthenticationError, HostUnreachableError, RemoteError
from universal_healer.hosts.base import (
    CommandResult,
    DirEntry,
    FileRead,
    FileStat,
    Host,
    HostFacts,
    ScanResult,
)

__all__ = ["AppHost"]

_LOST = (HostUnreachableError, AuthenticationError)


class AppHost:
    """One application's view of a shared host; remembers whether the host was lost.

    :ivar lost: the first error that said the host is gone (unreachable, or refusing us).
    """

    def __init__(self, host: Host) -> None:
        self.host = host
        self.lost: RemoteError | None = None

    @property
    def name(self) -> str:
        """The host's name."""
        return self.host.name

    def notice(self, err: BaseException) -> None:
        """Remember ``err`` if it says the host is lost (for work done on the application's
        behalf elsewhere, such as a host-wide query)."""
        if isinstance(err, _LOST) and self.lost is None:
            self.lost = err

    @contextlib.contextmanager
    def _watch(self) -> Iterator[None]:
        try:
            yield
        except _LOST as err:
            self.notice(err)
            raise

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
        """The host's ``run``."""
        with self._watch():
            return await self.host.run(
                argv, timeout=timeout, env=env, cwd=cwd, input=input, max_output=max_output
            )

    async def read_files(self, paths: Sequence[str], *, max_bytes: int) -> Mapping[str, FileRead]:
        """The host's ``read_files``."""
        with self._watch():
            return await self.host.read_files(paths, max_bytes=max_bytes)

    async def stat(self, path: str) -> FileStat | None:
        """The host's ``stat``."""
        with self._watch():
            return await self.host.stat(path)

    async def list_dir(self, path: str) -> tuple[DirEntry, ...]:
        """The host's ``list_dir``."""
        with self._watch():
            return await self.host.list_dir(path)

    async def scan(
        self,
        roots: Sequence[str],
        *,
        markers: frozenset[str],
        prune: frozenset[str],
        max_depth: int,
    ) -> ScanResult:
        """The host's ``scan``."""
        with self._watch():
            return await self.host.scan(roots, markers=markers, prune=prune, max_depth=max_depth)

    async def facts(self) -> HostFacts:
        """The host's ``facts``."""
        with self._watch():
            return await self.host.facts()

    async def close(self) -> None:
        """Nothing: the host is shared, and closed by the fleet."""
