"""The WordPress backup: the site's own files and its database, taken and restored together.

``healer_get_backup`` is given only the stack, so :class:`WordPressBackup` learns the rest when
it runs: :meth:`~WordPressBackup.create` reads ``wp-config.php`` through the host for the
database's name and credentials, and builds core's building blocks from them:

- :class:`~universal_healer.backup.FileSetBackup` of ``wp-config.php``, ``.htaccess`` and
  ``wp-content`` without what WordPress regenerates or appends to (``cache``, ``upgrade``,
  ``upgrade-temp-backup``, ``debug.log``);
- :class:`~universal_healer.backup.MySQLDumpBackup` of the database ``wp-config.php`` names,
  with its credentials (the password only ever reaches a 0600 option file);

as one :class:`~universal_healer.backup.CompositeBackup` artifact. A restore verifies every
part first, puts the files back (so ``wp-config.php`` is the one that matches the dump), reads
the credentials from it, and then re-creates the database from the dump.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any, ClassVar

import attrs

from healer_wordpress import site
from universal_healer.backup import (
    BackupStrategy,
    CompositeBackup,
    FileSetBackup,
    MySQLCredentials,
    MySQLDumpBackup,
)
from universal_healer.exceptions import BackupError
from universal_healer.executions import BackupArtifact
from universal_healer.hosts.base import Host
from universal_healer.model import Application

__all__ = ["FILES", "SKIPPED", "WordPressBackup"]

FILES = ("wp-config.php", ".htaccess", "wp-content")
"""What the file part holds, relative to the site's root (missing ones are recorded absent)."""

SKIPPED = (
    "wp-content/cache",
    "wp-content/upgrade",
    "wp-content/upgrade-temp-backup",
    "wp-content/debug.log",
)
"""What it leaves out: caches and upgrade leftovers refill, and a restore must not take lines
away from the debug log (it is carried over as it is)."""

# Verifying a dump needs no login; MySQLDumpBackup wants one all the same.
_NO_LOGIN = MySQLCredentials(user="verify-only", password="")


def _composite(*parts: BackupStrategy) -> CompositeBackup:
    # Typed as the base class: CompositeBackup converts with a bare ``tuple``, and mypy cannot
    # solve its element type from a tuple of two different subclasses.
    return CompositeBackup(parts)


@attrs.frozen
class WordPressBackup(BackupStrategy):
    """Files and database of a WordPress site, as one artifact.

    :param timeout: seconds allowed for each command (archiving, dumping, loading).
    """

    name: ClassVar[str] = "wordpress_files_and_db"
    includes: ClassVar[tuple[str, ...]] = (
        "wp-config.php, .htaccess and wp-content (without caches and debug.log)",
        "the database wp-config.php names (logical dump)",
    )

    timeout: float = 3600.0

    def _files(self) -> FileSetBackup:
        return FileSetBackup(paths=FILES, excludes=SKIPPED, timeout=self.timeout)

    def _dump(self, database: str, login: MySQLCredentials = _NO_LOGIN) -> MySQLDumpBackup:
        return MySQLDumpBackup(database=database, credentials=login, timeout=self.timeout)

    def describe(self, app: Application) -> tuple[str, ...]:
        """The files under the root, then the database (named when the backup is taken)."""
        return (*self._files().describe(app), self.includes[1])

    async def _login(
        self, host: Host, app: Application, where: str, *, doing: str
    ) -> tuple[MySQLCredentials, str]:
        try:
            config = await site.load_config(host, app)
            login, database, _ = site.credentials(config.settings)
        except site.SiteError as err:
            raise BackupError(f"{doing}: {err.reason}", host=host.name, location=where) from None
        return login, database

    async def create(self, host: Host, app: Application, destination: str) -> BackupArtifact:
        """Read ``wp-config.php``, then archive the files and dump the database it names."""
        login, database = await self._login(
            host, app, destination, doing="cannot back up the site's database"
        )
        composite = _composite(self._files(), self._dump(database, login))
        return await composite.create(host, app, destination)

    async def _parts(
        self, host: Host, artifact: BackupArtifact
    ) -> tuple[BackupArtifact, BackupArtifact, str]:
        """The file and dump parts of an artifact, and the database the dump holds."""
        location = artifact.location
        reads = await host.read_files([posixpath.join(location, "index.json")], max_bytes=1 << 20)
        raw = reads[posixpath.join(location, "index.json")].data
        try:
            index: dict[str, Any] = json.loads(raw or b"")
            parts = [
                BackupArtifact(
                    location=posixpath.join(location, str(p["name"])),
                    size_bytes=int(p["size_bytes"]),
                    sha256=str(p["sha256"]),
                    includes=tuple(p.get("includes", ())),
                )
                for p in index["parts"]
            ]
            files, dump = parts
        except (ValueError, KeyError, TypeError) as err:
            raise BackupError(
                f"the backup is damaged: unreadable index ({err})",
                host=host.name,
                location=location,
            ) from None
        manifest_path = posixpath.join(dump.location, "manifest.json")
        manifest = (await host.read_files([manifest_path], max_bytes=64 << 20))[manifest_path]
        try:
            database = str(json.loads(manifest.data or b"")["database"])
        except (ValueError, KeyError, TypeError) as err:
            raise BackupError(
                f"the backup is damaged: unreadable dump manifest ({err})",
                host=host.name,
                location=location,
            ) from None
        return files, dump, database

    async def verify(self, host: Host, artifact: BackupArtifact) -> None:
        """Check the index and every part's digests (the dump is checked against the database
        it says it holds)."""
        _, _, database = await self._parts(host, artifact)
        await _composite(self._files(), self._dump(database)).verify(host, artifact)

    async def restore(self, host: Host, app: Application, artifact: BackupArtifact) -> None:
        """Verify everything, restore the files, then the database named by the restored
        ``wp-config.php`` (which must be the one the dump holds)."""
        files, dump, database = await self._parts(host, artifact)
        await _composite(self._files(), self._dump(database)).verify(host, artifact)
        await self._files().restore(host, app, files)
        login, named = await self._login(
            host, app, artifact.location,
            doing="files restored, database not: the restored wp-config.php is unusable",
        )  # fmt: skip
        if named != database:
            raise BackupError(
                f"files restored, database not: wp-config.php names {named!r} but the dump holds "
                f"{database!r}",
                host=host.name,
                location=artifact.location,
            )
        await self._dump(database, login).restore(host, app, dump)
