"""The Registry's controls over healing: settings, the pause switches, the heal lock, secrets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from universal_healer.exceptions import ApplicationNotFoundError
from universal_healer.model import utcnow
from universal_healer.registry._base import RegistryBase
from universal_healer.registry._records import require_aware
from universal_healer.registry.models import ApplicationRow, AuditLogRow, SettingRow
from universal_healer.secrets import SecretBox

__all__ = ["PAUSE_KEY", "HealingControls"]

PAUSE_KEY = "healing.paused"
"""The setting that holds the global pause: ``{"paused", "by", "at", "reason"}``."""
_MAX_KEY = 100


def _describe_pause(scope: str, info: Mapping[str, Any]) -> str:
    reason = f": {info['reason']}" if info.get("reason") else ""
    return f"healing is paused {scope} (by {info.get('by')} at {info.get('at')}){reason}"


class HealingControls(RegistryBase):
    """Registry methods for ``settings`` and the control columns of ``applications``."""

    __slots__ = ()

    # ----------------------------------------------------------------------------------------
    # Settings

    def setting(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key``, or ``default`` when there is none."""
        with self._guard(f"reading setting {key!r}"):
            row = self._one(SettingRow.select().where(SettingRow.key == key))
        return default if row is None else row.value

    def set_setting(self, key: str, value: Any, *, actor: str) -> None:
        """Store a JSON value under ``key`` (at most 100 characters), replacing any other.

        :param actor: who changed it, kept with the value.
        """
        with self._guard(f"storing setting {key!r}"):
            self._retrying(lambda: self._put_setting(key, value, actor))

    def _put_setting(self, key: str, value: Any, actor: str) -> None:
        if not key or len(key) > _MAX_KEY:
            raise ValueError(f"a setting key must have 1 to {_MAX_KEY} characters, got {key!r}")
        values = {"value": value, "updated_at": utcnow(), "updated_by": actor}
        updated = SettingRow.update(**values).where(SettingRow.key == key).execute(self._db)
        # Zero rows: absent, or (MySQL) unchanged. An insert that loses a race raises
        # IntegrityError, which _retrying answers by running this again.
        if not updated and not SettingRow.select().where(SettingRow.key == key).exists(self._db):
            SettingRow.insert(key=key, **values).execute(self._db)

    # ----------------------------------------------------------------------------------------
    # Pause

    def set_paused(
        self, app_id: str | None, paused: bool, *, actor: str, reason: str | None = None
    ) -> None:
        """Pause or resume automatic healing, of one application or (``app_id=None``) of all.

        Diagnosis goes on while paused. The change and an audit entry (``pause_healing`` or
        ``resume_healing``, target the app id or ``global``) are written together.

        :raises ApplicationNotFoundError: when ``app_id`` is unknown.
        """
        now = utcnow()
        info = {"paused": paused, "by": actor, "at": now.isoformat(), "reason": reason}

        def store() -> None:
            if app_id is None:
                self._put_setting(PAUSE_KEY, info, actor)
            else:
                self._update_application(app_id, paused=paused, pause_info=info)
            AuditLogRow.insert(
                at=now,
                actor=actor,
                action="pause_healing" if paused else "resume_healing",
                target="global" if app_id is None else app_id,
                details={"scope": "global" if app_id is None else "application", "reason": reason},
            ).execute(self._db)

        with self._guard("pausing healing" if paused else "resuming healing"):
            self._retrying(store)

    def pause_state(self, app_id: str | None = None) -> tuple[bool, str | None]:
        """Whether automatic healing of ``app_id`` (or of everything, for None) is paused,
        and why: the global pause wins over the application's own and says so.

        :returns: ``(False, None)``, or ``(True, "healing is paused globally (by alice at
            ...): maintenance window")``.
        :raises ApplicationNotFoundError: when ``app_id`` is unknown.
        """
        with self._guard("reading the pause state"):
            setting = self._one(SettingRow.select().where(SettingRow.key == PAUSE_KEY))
            row = None
            if app_id is not None:
                row = self._one(
                    ApplicationRow.select(ApplicationRow.paused, ApplicationRow.pause_info).where(
                        ApplicationRow.id == app_id
                    )
                )
                if row is None:
                    raise ApplicationNotFoundError(app_id)
        if setting is not None and setting.value.get("paused"):
            return True, _describe_pause("globally", setting.value)
        if row is not None and row.paused:
            return True, _describe_pause(f"for application {app_id}", row.pause_info or {})
        return False, None

    # ----------------------------------------------------------------------------------------
    # Heal lock: one execution at a time per application

    def acquire_heal_lock(self, app_id: str, execution_id: str, at: dt.datetime) -> bool:
        """Take the application's heal lock for ``execution_id``, if nobody holds it.

        One compare-and-set statement: of any number of processes trying at once, exactly one
        gets True. Asking again for the execution that holds it also gets True.

        :raises ApplicationNotFoundError: when ``app_id`` is unknown.
        """
        require_aware(at, "at")
        with self._guard(f"locking application {app_id} for healing"):
            taken = (
                ApplicationRow.update(heal_lock=execution_id, heal_locked_at=at)
                .where((ApplicationRow.id == app_id) & ApplicationRow.heal_lock.is_null())
                .execute(self._db)
            )
            return bool(taken) or self._lock_holder(app_id) == execution_id

    def release_heal_lock(self, app_id: str, execution_id: str) -> bool:
        """Release the heal lock if ``execution_id`` holds it.

        :returns: True when it was released; False when that execution did not hold it
            (nothing changes: only the holder releases).
        :raises ApplicationNotFoundError: when ``app_id`` is unknown.
        """
        with self._guard(f"unlocking application {app_id}"):
            released = (
                ApplicationRow.update(heal_lock=None, heal_locked_at=None)
                .where((ApplicationRow.id == app_id) & (ApplicationRow.heal_lock == execution_id))
                .execute(self._db)
            )
            if not released:
                self._require_application(app_id)
            return bool(released)

    def heal_lock_holder(self, app_id: str) -> str | None:
        """The id of the execution holding the application's heal lock, or None.

        :raises ApplicationNotFoundError: when ``app_id`` is unknown.
        """
        with self._guard(f"reading the heal lock of application {app_id}"):
            return self._lock_holder(app_id)

    def _lock_holder(self, app_id: str) -> str | None:
        row = self._one(
            ApplicationRow.select(ApplicationRow.heal_lock).where(ApplicationRow.id == app_id)
        )
        if row is None:
            raise ApplicationNotFoundError(app_id)
        holder: str | None = row.heal_lock
        return holder

    # ----------------------------------------------------------------------------------------
    # Application secrets

    def set_app_secrets(self, app_id: str, secrets: Mapping[str, str], box: SecretBox) -> None:
        """Store an application's secrets (database passwords, API tokens...) encrypted,
        replacing the ones it had; an empty mapping removes them.

        :raises ApplicationNotFoundError: when ``app_id`` is unknown.
        :raises TypeError: when a name or value is not a string (the name is given, never the
            value).
        """
        for name, value in secrets.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(
                    f"secret {name!r} of application {app_id}: names and values must be strings"
                )
        token = box.encrypt_mapping(secrets) if secrets else None
        with self._guard(f"storing the secrets of application {app_id}"), self._db.atomic():
            self._update_application(app_id, secrets_encrypted=token)

    def get_app_secrets(self, app_id: str, box: SecretBox) -> dict[str, str]:
        """An application's secrets, decrypted; empty when it has none.

        :raises ApplicationNotFoundError: when ``app_id`` is unknown.
        :raises ConfigurationError: when they were encrypted with another key.
        """
        with self._guard(f"reading the secrets of application {app_id}"):
            row = self._one(
                ApplicationRow.select(ApplicationRow.secrets_encrypted).where(
                    ApplicationRow.id == app_id
                )
            )
        if row is None:
            raise ApplicationNotFoundError(app_id)
        if row.secrets_encrypted is None:
            return {}
        return {str(k): str(v) for k, v in box.decrypt_mapping(row.secrets_encrypted).items()}
