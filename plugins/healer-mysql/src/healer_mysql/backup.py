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
server leave every row as it was: their actions say ``changes_data=False``, so core takes no
dump before them and never loads one back over the live data (it could only discard the
writes made since).
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

__all__ = ["MySQLSchemasBackup"]

_INCLUDE = re.compile(r'MySQL schema ("(?:[^"\\]|\\.)*") \(logical dump')


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
        return CompositeBackup(parts)

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
        lines = tuple(_include_line(schema, login) for schema in schemas.present)
        return attrs.evolve(artifact, includes=lines)

    async def verify(self, host: Host, artifact: BackupArtifact) -> None:
        """Check every dump against its digest and manifest (no login needed)."""
        placeholder = MySQLCredentials(user="verify", password="")
        await self._composite(_schemas_of(artifact, host), placeholder).verify(host, artifact)

    async def restore(self, host: Host, app: Application, artifact: BackupArtifact) -> None:
        """Re-create each schema from its dump and compare every table's checksum."""
        schemas = _schemas_of(artifact, host)
        try:
            login = await login_for_action(host, app)
        except (MySQLClientError, RemoteError) as err:
            raise BackupError(str(err), host=host.name, location=artifact.location) from err
        await self._composite(schemas, login.credentials).restore(host, app, artifact)
