"""The backup that protects a MySQL application before a heal: a dump of each of its schemas.

Core's executor takes the stack's backup before any action of MEDIUM risk or more. For
``mysql`` that is :class:`MySQLSchemasBackup`: one :class:`~universal_healer.backup.
MySQLDumpBackup` (``mysqldump --single-transaction``, every table's row count and checksum
recorded) per schema of the application, taken together as a
:class:`~universal_healer.backup.CompositeBackup`. The schemas are the application's
``mysql_schemas`` metadata, else every non-system schema.

**Why not a whole-server dump.** ``--all-databases`` carries the ``mysql`` schema (users,
grants, passwords): restoring it would undo every grant and password change since, and restore
every other application's data on a shared server along with this one's. A heal of one table
needs only its schema back; an operator who wants a server backup runs one on a schedule.

**Actions that change no data.** Killing a statement, optimizing a table and restarting the
server leave every row as it was, yet core takes the dump before them too (their risk is
MEDIUM or HIGH) and loads it back when their verification fails, which would throw away every
write made since the dump. Their steps say so (:func:`action_changes_no_data`), and
:meth:`MySQLSchemasBackup.restore` then refuses to load that dump: the execution ends
ROLLBACK_FAILED with the reason, and the data stays as the server has it. (Core could say this
itself; see the plugin's README.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import ClassVar

import attrs
from universal_healer._mysql import MySQLClientError, MySQLCredentials
from universal_healer.backup import BackupStrategy, CompositeBackup, MySQLDumpBackup
from universal_healer.exceptions import BackupError, RemoteError
from universal_healer.executions import BackupArtifact
from universal_healer.hosts.base import Host
from universal_healer.model import Application

from healer_mysql import server
from healer_mysql.connection import Login, login_for_action, open_session
from healer_mysql.parsing import SYSTEM_SCHEMAS
from healer_mysql.settings import Settings, SettingsError

__all__ = ["MySQLSchemasBackup", "action_changes_no_data"]

_INCLUDE = re.compile(r'MySQL schema ("(?:[^"\\]|\\.)*") \(logical dump')


@attrs.define
class _Journal:
    """Which backup protects which action, in this process (the executor runs one action at a
    time per application, under its heal lock: backup, then steps, then maybe restore)."""

    latest: dict[tuple[str, str], str] = attrs.field(factory=dict)
    untouched: set[str] = attrs.field(factory=set)

    def created(self, app: Application, location: str) -> None:
        self.latest[(app.server, app.id)] = location

    def changes_no_data(self, app: Application) -> None:
        location = self.latest.get((app.server, app.id))
        if location is not None:
            self.untouched.add(location)

    def protects_unchanged_data(self, location: str) -> bool:
        return location in self.untouched


_JOURNAL = _Journal()


def action_changes_no_data(app: Application) -> None:
    """Say that the action now running on ``app`` changes no data, so the dump taken before it
    must not be loaded back over the live data should the action fail."""
    _JOURNAL.changes_no_data(app)


def _include_line(schema: str, login: Login) -> str:
    return f"MySQL schema {json.dumps(schema)} (logical dump via {login.via})"


def _schemas_of(artifact: BackupArtifact, host: Host) -> tuple[str, ...]:
    """The schemas a backup holds, as :meth:`MySQLSchemasBackup.create` recorded them."""
    found: list[str] = []
    for line in artifact.includes:
        match = _INCLUDE.match(line)
        if match is not None:
            name = json.loads(match.group(1))
            if isinstance(name, str):
                found.append(name)
    if not found or set(found) & SYSTEM_SCHEMAS:
        raise BackupError(
            "the backup does not say which application schemas it holds",
            host=host.name,
            location=artifact.location,
        )
    return tuple(found)


@attrs.frozen
class MySQLSchemasBackup(BackupStrategy):
    """A logical dump of each of a MySQL application's schemas, restored all together."""

    name: ClassVar[str] = "mysql_schemas"
    includes: ClassVar[tuple[str, ...]] = (
        "the application's MySQL schemas (a logical dump of each)",
    )

    timeout: float = 3600.0

    def describe(self, app: Application) -> tuple[str, ...]:
        """The configured schemas, or every non-system schema."""
        try:
            schemas = Settings.from_metadata(app.metadata).schemas
        except SettingsError as err:
            return (f"nothing: {err}",)
        if schemas is None:
            return ("every non-system MySQL schema on the server (a logical dump of each)",)
        return tuple(f"MySQL schema {json.dumps(s)} (logical dump)" for s in schemas)

    def _composite(self, schemas: Sequence[str], credentials: MySQLCredentials) -> CompositeBackup:
        parts: list[BackupStrategy] = [
            MySQLDumpBackup(database=schema, credentials=credentials, timeout=self.timeout)
            for schema in schemas
        ]
        # CompositeBackup's ``converter=tuple`` leaves mypy an unsolvable ``Iterable[_T_co]``.
        return CompositeBackup(parts)  # type: ignore[arg-type]

    async def create(self, host: Host, app: Application, destination: str) -> BackupArtifact:
        """Dump every schema of the application under ``destination``."""
        try:
            settings = Settings.from_metadata(app.metadata)
            login = await login_for_action(host, app)
            async with open_session(host, login, timeout=120.0) as db:
                schemas = await server.list_schemas(db, settings)
        except SettingsError as err:
            raise BackupError(str(err), host=host.name) from err
        except (MySQLClientError, RemoteError) as err:
            raise BackupError(
                f"cannot list the schemas to dump: {err.reason}", host=host.name
            ) from err
        if schemas.missing:
            raise BackupError(
                f"configured schema(s) {', '.join(schemas.missing)} do not exist: correct the "
                "application's mysql_schemas",
                host=host.name,
            )
        if not schemas.present:
            raise BackupError("the server holds no application schema to dump", host=host.name)
        artifact = await self._composite(schemas.present, login.credentials).create(
            host, app, destination
        )
        _JOURNAL.created(app, artifact.location)
        lines = tuple(_include_line(schema, login) for schema in schemas.present)
        return attrs.evolve(artifact, includes=lines)

    async def verify(self, host: Host, artifact: BackupArtifact) -> None:
        """Check every dump against its digest and manifest (no login needed)."""
        placeholder = MySQLCredentials(user="verify", password="")
        await self._composite(_schemas_of(artifact, host), placeholder).verify(host, artifact)

    async def restore(self, host: Host, app: Application, artifact: BackupArtifact) -> None:
        """Re-create each schema from its dump and compare every table's checksum.

        Refuses when the backup protected an action that changed no data: loading it would
        only discard what was written since it was taken.
        """
        if _JOURNAL.protects_unchanged_data(artifact.location):
            raise BackupError(
                "not restored: the action it protected changed no data, and loading the dump "
                "would discard every write made since it was taken; the schemas are as the "
                "server has them",
                host=host.name,
                location=artifact.location,
            )
        schemas = _schemas_of(artifact, host)
        try:
            login = await login_for_action(host, app)
        except (MySQLClientError, RemoteError) as err:
            raise BackupError(str(err), host=host.name, location=artifact.location) from err
        await self._composite(schemas, login.credentials).restore(host, app, artifact)
