"""MySQL dump backups: one consistent dump, restored and checked table by table."""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
from collections.abc import Mapping, Sequence
from typing import ClassVar

import attrs

from universal_healer import _mysql, serde
from universal_healer._mysql import MySQLClient, MySQLClientError, MySQLCredentials
from universal_healer.backup._base import (
    _FORMAT,
    BackupStrategy,
    _artifact_location,
    _shown,
    _Target,
    _Work,
)
from universal_healer.backup._filemanifest import (
    _summary,
)
from universal_healer.exceptions import BackupError, RemoteError
from universal_healer.executions import BackupArtifact
from universal_healer.hosts.base import Host
from universal_healer.model import Application

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# MySQL


@attrs.frozen(kw_only=True)
class _Table:
    name: str
    engine: str
    rows: int
    checksum: str | None
    verified: bool  # False: it changed while the dump ran, so the dump's copy is not known


@attrs.frozen(kw_only=True)
class _DumpManifest:
    format: int
    strategy: str
    database: str
    charset: str
    collation: str
    dump_sha256: str
    created_at: dt.datetime
    tables: tuple[_Table, ...]


@attrs.frozen
class MySQLDumpBackup(BackupStrategy):
    """One MySQL or MariaDB database, dumped with ``mysqldump`` on the target host.

    The dump runs in one transaction (``--single-transaction``): consistent for InnoDB, not for
    MyISAM or Aria tables being written at the time. Routines, triggers and events are in it;
    it restores into the same database name. Every base table's row count and ``CHECKSUM
    TABLE`` are taken before and after the dump; a table that changed meanwhile is recorded as
    unverifiable, and the restore checks all the others.

    A restore drops and re-creates the database (with its character set and collation), so
    tables created since the backup go too, then loads the dump and compares the checksums.

    :param credentials: how to log in; the password only ever reaches a 0600 option file.
    """

    name: ClassVar[str] = "mysql_dump"
    includes: ClassVar[tuple[str, ...]] = ("a MySQL database (logical dump)",)

    database: str = attrs.field()
    credentials: MySQLCredentials
    timeout: float = 3600.0

    @database.validator
    def _check_database(self, _: attrs.Attribute[str], value: str) -> None:
        _mysql.quote_identifier(value)  # raises ValueError for an empty name or a NUL

    def describe(self, app: Application) -> tuple[str, ...]:
        """The database and the server it lives on."""
        where = self.credentials.socket or f"{self.credentials.host}:{self.credentials.port}"
        return (f"MySQL database {self.database!r} on {where} (logical dump)",)

    def _fail(self, target: _Target, err: MySQLClientError | RemoteError) -> BackupError:
        return target.error(self.credentials.redact(err.reason))

    async def create(self, host: Host, app: Application, destination: str) -> BackupArtifact:
        """Dump the database under ``destination``, with its table checksums."""
        target = _Target(host, self.timeout, destination)
        work = await target.begin(destination, self.name)
        try:
            artifact = await self._build(work)
        except BaseException:
            await work.abandon()
            raise
        log.info(
            "backup %s of database %r on %s: %s (%d bytes)",
            self.name, self.database, host.name, _shown(artifact.location), artifact.size_bytes,
        )  # fmt: skip
        return attrs.evolve(artifact, includes=self.describe(app))

    async def _build(self, work: _Work) -> BackupArtifact:
        target, dump = work.target, work.path("dump.sql")
        try:
            async with _mysql.private_option_file(target.host, self.credentials) as option_file:
                client = self._client(target.host, option_file)
                charset, collation = await client.schema_defaults()
                before = await client.table_states()
                await client.dump(dump)
                after = await client.table_states()
        except (MySQLClientError, RemoteError) as err:
            raise self._fail(target, err) from err
        changed = sorted(name for name in before if before[name] != after.get(name))
        if changed:
            log.warning(
                "tables of %r changed while they were dumped; their checksums cannot be checked "
                "on restore: %s", self.database, ", ".join(changed),
            )  # fmt: skip
        manifest = _DumpManifest(
            format=_FORMAT,
            strategy=self.name,
            database=self.database,
            charset=charset,
            collation=collation,
            dump_sha256=await target.sha256(dump),
            created_at=dt.datetime.now(dt.UTC),
            tables=tuple(
                _Table(
                    name=s.name,
                    engine=s.engine,
                    rows=s.rows,
                    checksum=s.checksum,
                    verified=s.name not in changed,
                )
                for s in before.values()
            ),
        )
        files = [dump, work.path("manifest.json")]
        await target.write_private(
            files[1], serde.dumps(manifest, indent=1).encode("ascii"), what="writing manifest.json"
        )
        size = await target.sizes(files)
        await work.commit()
        return BackupArtifact(location=work.final, size_bytes=size, sha256=manifest.dump_sha256)

    def _client(self, host: Host, option_file: str) -> MySQLClient:
        return MySQLClient(
            host=host,
            option_file=option_file,
            database=self.database,
            credentials=self.credentials,
            timeout=self.timeout,
        )

    async def verify(self, host: Host, artifact: BackupArtifact) -> None:
        """Check the dump's digest and that the manifest is readable and about this database."""
        await self._verified(_Target(host, self.timeout, artifact.location), artifact)

    async def _verified(self, target: _Target, artifact: BackupArtifact) -> _DumpManifest:
        location = _artifact_location(target.host, artifact)
        raw = await target.read(
            posixpath.join(location, "manifest.json"), what="the backup is damaged"
        )
        try:
            manifest = serde.loads(raw.decode("ascii"), _DumpManifest)
        except Exception as err:  # cattrs or json: damaged
            raise target.error(f"the backup is damaged: unreadable manifest ({err})") from err
        if manifest.format != _FORMAT or manifest.strategy != self.name:
            raise target.error(f"not a {self.name!r} backup of format {_FORMAT}")
        if manifest.database != self.database:
            raise target.error(
                f"the backup is of database {manifest.database!r}, not {self.database!r}"
            )
        digest = await target.sha256(posixpath.join(location, "dump.sql"))
        if digest != artifact.sha256 or digest != manifest.dump_sha256:
            raise target.error(
                f"the backup is damaged: dump.sql has sha256 {digest}, the backup was taken "
                f"with {artifact.sha256}"
            )
        return manifest

    async def restore(self, host: Host, app: Application, artifact: BackupArtifact) -> None:
        """Verify the dump, re-create the database from it, compare every table's checksum."""
        target = _Target(host, self.timeout, artifact.location)
        manifest = await self._verified(target, artifact)
        dump = posixpath.join(artifact.location, "dump.sql")
        try:
            async with _mysql.private_option_file(host, self.credentials) as option_file:
                client = self._client(host, option_file)
                await client.recreate(manifest.charset, manifest.collation)
                await client.load(dump)
                states = await client.table_states()
        except (MySQLClientError, RemoteError) as err:
            raise target.error(
                f"restoring database {self.database!r} failed (it may now be empty or partly "
                f"loaded): {self.credentials.redact(err.reason)}"
            ) from err
        differences = _table_differences(manifest.tables, states)
        if differences:
            raise target.error(
                f"restored database {self.database!r}, but it does not match the backup: "
                f"{_summary(differences)}"
            )
        unverified = [t.name for t in manifest.tables if not t.verified]
        log.info(
            "restored database %r on %s from %s%s",
            self.database, host.name, _shown(artifact.location),
            f" (not checked, changed during the backup: {', '.join(unverified)})"
            if unverified else "",
        )  # fmt: skip


def _table_differences(
    tables: Sequence[_Table], states: Mapping[str, _mysql.TableState]
) -> list[str]:
    lines = []
    names = {t.name for t in tables}
    for table in tables:
        state = states.get(table.name)
        if state is None:
            lines.append(f"table {table.name!r} is missing")
        elif table.verified and (state.rows, state.checksum) != (table.rows, table.checksum):
            lines.append(
                f"table {table.name!r}: {state.rows} rows, checksum {state.checksum} instead of "
                f"{table.rows} rows, checksum {table.checksum}"
            )
    lines += [f"table {name!r} should not exist" for name in sorted(states.keys() - names)]
    return lines
