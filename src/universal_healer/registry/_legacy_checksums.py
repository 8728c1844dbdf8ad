"""The legacy migration's checksums: the canonical JSON of a row, whichever database it came
from, legacy timestamps, and the checksums of ``wp_sites`` and executions rows. Pure: see
:mod:`universal_healer.registry._legacy`."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

_SITE_TIMES = ("created_at", "updated_at")
_SITE_FLAGS = ("is_healer_enabled",)
_EXECUTION_TIMES = ("started_at", "finished_at")


def _utc_text(value: dt.datetime) -> Any:
    if value.tzinfo is not dt.UTC and value.utcoffset() is not None:  # naive is UTC already
        try:
            value = value.astimezone(dt.UTC)
        except OverflowError:
            return {"$repr": repr(value)}
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _jsonable(value: Any) -> Any:
    """What JSON cannot hold, as JSON: the encoder's fallback (and :func:`canonical_value`'s)."""
    if isinstance(value, dt.datetime):
        return _utc_text(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, Mapping):
        return dict(value)
    return {"$repr": repr(value)}


def canonical_value(value: Any) -> Any:
    """``value`` as plain JSON data that reads the same whichever database it came from.

    Datetimes become ISO 8601 in UTC with microseconds and a ``Z`` (naive ones are UTC);
    bytes, memoryviews, decimals and anything else JSON cannot hold become a tagged object
    (``{"$bytes": "2f76"}``). Total: it never raises.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(key): canonical_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [canonical_value(item) for item in value]
    return canonical_value(_jsonable(value))


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_jsonable
)


def canonical_json(value: Any) -> str:
    """The canonical JSON of ``value`` (:func:`canonical_value`): keys sorted, no spaces,
    ASCII only."""
    try:
        # The C encoder, calling _jsonable for the few values that need it: 10x faster.
        return _ENCODER.encode(value)
    except (TypeError, ValueError):  # keys of mixed types cannot be sorted
        return _ENCODER.encode(canonical_value(value))


def checksum(value: Any) -> str:
    """The SHA-256 of :func:`canonical_json`, in hex."""
    return hashlib.sha256(canonical_json(value).encode("ascii")).hexdigest()


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def parse_timestamp(value: object) -> dt.datetime | None:  # noqa: PLR0911 - one per type
    """A legacy timestamp as an aware UTC datetime, or None when it is not one.

    Accepts a datetime (naive means UTC), ISO 8601 text, or integer milliseconds since the
    epoch (Prisma's encoding in SQLite).
    """
    if isinstance(value, dt.datetime):
        try:
            aware = value.replace(tzinfo=dt.UTC) if value.utcoffset() is None else value
            return aware.astimezone(dt.UTC)
        except OverflowError:
            return None
    if isinstance(value, str):
        try:
            return parse_timestamp(dt.datetime.fromisoformat(value))
        except ValueError:
            return None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return _EPOCH + dt.timedelta(milliseconds=value)
        except OverflowError:
            return None
    return None


def _canonical_row(
    values: Mapping[str, Any], times: Sequence[str], flags: Sequence[str] = ()
) -> dict[str, Any]:
    """A legacy row with its timestamps parsed and its 0/1 flags made booleans, so that the
    three databases' spellings of one value checksum alike."""
    row = dict(values)
    for column in times:
        parsed = parse_timestamp(row.get(column))
        if parsed is not None:
            row[column] = parsed
    for column in flags:
        flag = row.get(column)
        if type(flag) is int and flag in (0, 1):
            row[column] = bool(flag)
    return row


def site_checksum(values: Mapping[str, Any]) -> str:
    """The checksum of a ``wp_sites`` row (its :data:`SITE_COLUMNS`)."""
    return checksum(_canonical_row(values, _SITE_TIMES, _SITE_FLAGS))


def execution_checksum(values: Mapping[str, Any]) -> str:
    """The checksum of a legacy execution row (its :data:`EXECUTION_COLUMNS`)."""
    return checksum(_canonical_row(values, _EXECUTION_TIMES))
