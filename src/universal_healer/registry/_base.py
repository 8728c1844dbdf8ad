"""The part of the Registry every concern shares: the connection, its life cycle, and helpers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

import attrs
import peewee

from universal_healer.exceptions import ApplicationNotFoundError, RegistryError
from universal_healer.model import utcnow
from universal_healer.registry.models import ApplicationRow

__all__ = ["RegistryBase"]

T = TypeVar("T")
M = TypeVar("M", bound=peewee.Model)

MIN_PREFIX = 4
"""The shortest id prefix that lookups accept, as git does for abbreviated hashes."""
_ID_CHARS = frozenset("0123456789abcdef-")


@attrs.define
class RegistryBase:
    """A connection to the registry database and the helpers the Registry's methods share.

    Every query is bound to this registry's database explicitly (``query.bind(self._db)``,
    ``execute(self._db)``): the models are never bound globally.

    :param url: the database URL with any password redacted, for messages.
    """

    _db: peewee.Database = attrs.field(repr=False)
    url: str
    _closed: bool = attrs.field(default=False, init=False, repr=False)

    # ----------------------------------------------------------------------------------------
    # Life cycle

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; the registry cannot be used afterwards. Safe to repeat."""
        self._closed = True
        if not self._db.is_closed():
            self._db.close()

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        if self._closed:
            raise RegistryError(f"cannot go on {doing}: the registry at {self.url} is closed")
        try:
            yield
        except peewee.PeeweeException as err:
            raise RegistryError(f"{doing} in the registry at {self.url} failed: {err}") from err

    def _retrying(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` in a transaction, once more if a concurrent insert beat it."""
        try:
            with self._db.atomic():
                return operation()
        except peewee.IntegrityError:
            with self._db.atomic():
                return operation()

    def _one(self, query: peewee.ModelSelect[M]) -> M | None:
        try:
            return query.get(self._db)
        except peewee.DoesNotExist:
            return None

    def _update_application(self, app_id: str, **changes: Any) -> None:
        changes["updated_at"] = utcnow()
        query = ApplicationRow.update(**changes).where(ApplicationRow.id == app_id)
        # MySQL counts only rows whose values changed, so zero is not proof of absence.
        if not query.execute(self._db) and not self._application_exists(app_id):
            raise ApplicationNotFoundError(app_id)

    def _application_exists(self, app_id: str) -> bool:
        return ApplicationRow.select().where(ApplicationRow.id == app_id).exists(self._db)

    def _require_application(self, app_id: str) -> None:
        if not self._application_exists(app_id):
            raise ApplicationNotFoundError(app_id)

    def _matching_ids(self, model: type[peewee.Model], id_or_prefix: str) -> list[str]:
        """The ids of ``model`` rows equal to ``id_or_prefix``, or else starting with it.

        A prefix needs :data:`MIN_PREFIX` characters and is not case sensitive; one that holds
        anything but hex digits and dashes (a LIKE wildcard, say) matches nothing.
        """
        key: Any = model._meta.primary_key
        if model.select().where(key == id_or_prefix).exists(self._db):
            return [id_or_prefix]
        prefix = id_or_prefix.lower()
        if len(prefix) < MIN_PREFIX or not _ID_CHARS.issuperset(prefix):
            return []
        query = model.select(key).where(key.startswith(prefix))
        return sorted(getattr(row, key.name) for row in query.bind(self._db))

    def _resolve_id(self, model: type[peewee.Model], id_or_prefix: str, what: str) -> str:
        """The one id :meth:`_matching_ids` finds, or a RegistryError that says why not."""
        ids = self._matching_ids(model, id_or_prefix)
        if len(ids) == 1:
            return ids[0]
        if ids:
            raise RegistryError(
                f"{what} id {id_or_prefix!r} is ambiguous: it matches {len(ids)} "
                f"({', '.join(ids)}); give more characters"
            )
        raise RegistryError(f"no {what} with id {id_or_prefix!r}")
