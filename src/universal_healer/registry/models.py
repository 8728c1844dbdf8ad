"""The registry's tables as peewee models, and the column types they share.

These models describe the columns as the newest migration leaves them and create nothing:
:mod:`universal_healer.registry.migrations` does, from frozen copies of its own, and declares
the indexes and unique constraints too. The models are not bound to a database: the
:class:`~universal_healer.registry.Registry` binds every query to its own, so two registries
on two databases can live in one process.

Conventions: ids are uuid4 strings, datetimes are aware UTC in Python and naive UTC with
microseconds in the database, JSON columns hold text written through :mod:`universal_healer.serde`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any, ClassVar

import peewee

from universal_healer import serde

__all__ = [
    "MODELS",
    "ApplicationRow",
    "ApprovalRow",
    "AuditLogRow",
    "BackupRow",
    "DiagnosticResultRow",
    "DisplayTextField",
    "HealingExecutionRow",
    "JSONTextField",
    "ServerRow",
    "SettingRow",
    "TechStackPluginRow",
    "UTCDateTimeField",
    "display_text",
]


def display_text(value: str) -> str:
    """``value`` as text every database accepts.

    Undecodable bytes carried as surrogate escapes (``os.fsdecode``) become ``\\xNN``, any other
    lone surrogate becomes ``\\udNNN`` and NUL becomes ``\\x00``: PostgreSQL and MySQL reject all
    three, and a message or path is still readable this way.
    """
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = value.encode("utf-8", "backslashreplace")
    return data.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


# peewee's stubs make fields generic in the value they hold; the runtime classes are not.
if TYPE_CHECKING:
    _DateTimeField = peewee.DateTimeField[Any]
    _Field = peewee.Field[Any]
    _TextField = peewee.TextField[Any]
else:
    _DateTimeField = peewee.DateTimeField
    _Field = peewee.Field
    _TextField = peewee.TextField


def _is_mysql(field: _Field) -> bool:
    database = field.model._meta.database
    database = getattr(database, "obj", database)  # a DatabaseProxy stands for its target
    return isinstance(database, peewee.MySQLDatabase)


class UTCDateTimeField(_DateTimeField):
    """An aware UTC datetime, stored naive in UTC with microseconds.

    Writing a naive datetime is a bug and raises ValueError: the registry never guesses a zone.
    """

    def get_modifiers(self) -> list[int]:
        # DATETIME(6) / TIMESTAMP(6): MySQL would otherwise round to whole seconds.
        return [6]

    def db_value(self, value: Any) -> Any:
        if isinstance(value, dt.datetime):
            if value.utcoffset() is None:
                raise ValueError(f"{self.name} needs an aware datetime, got {value!r}")
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return super().db_value(value)  # type: ignore[no-untyped-call]  # peewee is untyped

    def python_value(self, value: Any) -> Any:
        value = super().python_value(value)  # type: ignore[no-untyped-call]  # see above
        if isinstance(value, dt.datetime):
            if value.utcoffset() is None:
                return value.replace(tzinfo=dt.UTC)
            return value.astimezone(dt.UTC)
        return value


class JSONTextField(_Field):
    """JSON held as text (LONGTEXT on MySQL, whose TEXT stops at 64 KiB).

    Values go through the project's one cattrs converter, so enums, datetimes and value objects
    are written the way the API writes them. ``ensure_ascii`` keeps lone surrogates escaped, so a
    path carrying undecodable bytes survives the round trip exactly.
    """

    field_type: ClassVar[str] = "TEXT"

    def ddl_datatype(self, ctx: Any) -> peewee.SQL:
        if _is_mysql(self):
            return peewee.SQL("LONGTEXT")
        return super().ddl_datatype(ctx)

    def db_value(self, value: Any) -> Any:
        if value is None:
            return None
        return json.dumps(serde.unstructure(value))

    def python_value(self, value: Any) -> Any:
        if value is None:
            return None
        return json.loads(value)


class DisplayTextField(_TextField):
    """Free text (messages, errors, paths for display) made safe for every database.

    See :func:`display_text`; the exact bytes of a path are kept elsewhere (``path_raw``).
    """

    def db_value(self, value: Any) -> Any:
        if isinstance(value, str):
            value = display_text(value)
        return super().db_value(value)  # type: ignore[no-untyped-call]  # peewee is untyped


class _Row(peewee.Model):
    class Meta:
        legacy_table_names = False


class ServerRow(_Row):
    """A host that applications live on (``servers``)."""

    id = peewee.CharField(36, primary_key=True)
    name = peewee.CharField(255)
    kind = peewee.CharField(16)
    address = peewee.CharField(255, null=True)
    port = peewee.IntegerField(null=True)
    username = peewee.CharField(255, null=True)
    metadata = JSONTextField()
    created_at = UTCDateTimeField()
    updated_at = UTCDateTimeField()
    client_keys = JSONTextField(default=list)
    known_hosts = DisplayTextField(null=True)
    password_encrypted = peewee.TextField(null=True)  # a SecretBox token
    jump = peewee.CharField(255, null=True)  # another server's name
    search_paths = JSONTextField(default=list)
    tags = JSONTextField(default=list)
    trust_on_first_use = peewee.BooleanField(default=False)
    max_channels = peewee.IntegerField(default=8)
    trusted_host_key = peewee.TextField(null=True)  # "<key type> <fingerprint>"
    trusted_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "servers"


class ApplicationRow(_Row):
    """One application on one server (``applications``); the plan's section 3.1.

    ``path`` is for people and may have lost bytes; ``path_raw`` holds ``os.fsencode(path)``
    exactly and ``path_key`` its SHA-256, unique per server.
    """

    id = peewee.CharField(36, primary_key=True)
    server = peewee.ForeignKeyField(ServerRow, column_name="server_id", on_delete="RESTRICT")
    domain = peewee.CharField(255, null=True)
    path = DisplayTextField()
    path_raw = peewee.BlobField()
    path_key = peewee.CharField(64)
    tech_stack = peewee.CharField(64)
    tech_stack_version = peewee.CharField(100, null=True)
    detection_method = peewee.CharField(16)
    detection_confidence = peewee.DoubleField()
    detection_evidence = JSONTextField()
    health_status = peewee.CharField(16)
    health_score = peewee.IntegerField()
    last_health_check = UTCDateTimeField(null=True)
    last_run_id = peewee.CharField(36, null=True)
    healing_mode = peewee.CharField(16)
    is_healer_enabled = peewee.BooleanField()
    max_healing_attempts = peewee.IntegerField(default=3)
    healing_cooldown = peewee.IntegerField(default=3600)
    current_healing_attempts = peewee.IntegerField(default=0)
    last_healing_attempt = UTCDateTimeField(null=True)
    breaker_state = JSONTextField(null=True)
    metadata = JSONTextField()
    created_at = UTCDateTimeField()
    updated_at = UTCDateTimeField()
    paused = peewee.BooleanField(default=False)
    pause_info = JSONTextField(null=True)  # {"paused", "by", "at", "reason"} of the last change
    heal_lock = peewee.CharField(36, null=True)  # the id of the execution holding it
    heal_locked_at = UTCDateTimeField(null=True)
    secrets_encrypted = peewee.TextField(null=True)  # a SecretBox token

    class Meta:
        table_name = "applications"


class DiagnosticResultRow(_Row):
    """One check's result; the results of one diagnosis share a ``run_id``."""

    id = peewee.CharField(36, primary_key=True)
    application = peewee.ForeignKeyField(
        ApplicationRow, column_name="application_id", on_delete="CASCADE"
    )
    check_name = peewee.CharField(255)
    check_category = peewee.CharField(32)
    status = peewee.CharField(16)
    severity = peewee.CharField(16)
    message = DisplayTextField()
    details = JSONTextField()
    suggested_fix = DisplayTextField(null=True)
    execution_time_ms = peewee.IntegerField()
    run_id = peewee.CharField(36)
    created_at = UTCDateTimeField()

    class Meta:
        table_name = "diagnostic_results"


class HealingExecutionRow(_Row):
    """One healing action as it was carried out (``healing_executions``).

    ``backup_id`` names a row of ``backups`` without a foreign key: backups also name their
    execution, and either may be recorded first.
    """

    id = peewee.CharField(36, primary_key=True)
    application = peewee.ForeignKeyField(
        ApplicationRow, column_name="application_id", on_delete="CASCADE"
    )
    if TYPE_CHECKING:
        application_id: str  # peewee's accessor for the key's own value
    action_name = peewee.CharField(255)
    risk = peewee.CharField(16)
    status = peewee.CharField(32)
    steps = JSONTextField()
    backup_location = DisplayTextField(null=True)
    rolled_back = peewee.BooleanField(default=False)
    error = DisplayTextField(null=True)
    started_at = UTCDateTimeField(null=True)
    finished_at = UTCDateTimeField(null=True)
    triggered_by = peewee.CharField(255)
    created_at = UTCDateTimeField()
    check_name = peewee.CharField(255, default="")
    fingerprint = peewee.CharField(64, default="")
    mode = peewee.CharField(16, default="MANUAL")
    backup_id = peewee.CharField(36, null=True)
    process = DisplayTextField(null=True)  # "hostname:pid"
    action = JSONTextField(default=dict)

    class Meta:
        table_name = "healing_executions"


class ApprovalRow(_Row):
    """A person's permission for one exact action on one finding (``approvals``)."""

    id = peewee.CharField(36, primary_key=True)
    application = peewee.ForeignKeyField(
        ApplicationRow, column_name="application_id", on_delete="CASCADE"
    )
    if TYPE_CHECKING:
        application_id: str  # peewee's accessor for the key's own value
    action_name = peewee.CharField(255)
    check_name = peewee.CharField(255)
    risk = peewee.CharField(16)
    fingerprint = peewee.CharField(64)
    status = peewee.CharField(16)
    requested_at = UTCDateTimeField()
    requested_by = peewee.CharField(255)
    expires_at = UTCDateTimeField()
    decided_at = UTCDateTimeField(null=True)
    decided_by = peewee.CharField(255, null=True)
    execution_id = peewee.CharField(36, null=True)
    action = JSONTextField()

    class Meta:
        table_name = "approvals"


class BackupRow(_Row):
    """A backup taken before a healing action (``backups``)."""

    id = peewee.CharField(36, primary_key=True)
    application = peewee.ForeignKeyField(
        ApplicationRow, column_name="application_id", on_delete="CASCADE"
    )
    if TYPE_CHECKING:
        application_id: str  # peewee's accessor for the key's own value
    execution_id = peewee.CharField(36, null=True)
    strategy = peewee.CharField(255)
    host = peewee.CharField(255)
    location = peewee.TextField()  # exact: a restore reads it back
    size_bytes = peewee.BigIntegerField()
    sha256 = peewee.CharField(64)
    includes = JSONTextField()
    created_at = UTCDateTimeField()
    restored_at = UTCDateTimeField(null=True)
    pruned_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "backups"


class SettingRow(_Row):
    """One fleet-wide setting, such as the global pause (``settings``)."""

    key = peewee.CharField(100, primary_key=True)
    value = JSONTextField()
    updated_at = UTCDateTimeField()
    updated_by = peewee.CharField(255)

    class Meta:
        table_name = "settings"


class TechStackPluginRow(_Row):
    """A plugin the healer has seen, and whether the operator enabled it."""

    id = peewee.CharField(36, primary_key=True)
    name = peewee.CharField(255)
    tech_stack = JSONTextField()  # a JSON list of the stack ids the plugin declares
    version = peewee.CharField(100)
    is_enabled = peewee.BooleanField(default=True)
    is_built_in = peewee.BooleanField(default=False)
    distribution = peewee.CharField(255, null=True)
    configuration = JSONTextField()
    created_at = UTCDateTimeField()
    updated_at = UTCDateTimeField()

    class Meta:
        table_name = "tech_stack_plugins"


class AuditLogRow(_Row):
    """Who did what to which target, and when (``audit_log``)."""

    id = peewee.BigAutoField()
    at = UTCDateTimeField()
    actor = peewee.CharField(255)
    action = peewee.CharField(255)
    target = DisplayTextField()
    details = JSONTextField()

    class Meta:
        table_name = "audit_log"


MODELS: tuple[type[peewee.Model], ...] = (
    ServerRow,
    ApplicationRow,
    DiagnosticResultRow,
    HealingExecutionRow,
    TechStackPluginRow,
    AuditLogRow,
    ApprovalRow,
    BackupRow,
    SettingRow,
)
"""Every table the migrations create, parents before children."""
