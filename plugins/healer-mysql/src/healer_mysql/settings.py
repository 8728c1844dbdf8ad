"""The operator's settings for one MySQL application, read from its registry metadata.

Metadata is set with ``healer`` (or :meth:`Registry.set_app_metadata`) and never holds secrets;
credentials come from the application's encrypted secrets (see :mod:`healer_mysql.connection`).

=================================  ============  ===============================================
key                                default       meaning
=================================  ============  ===============================================
``mysql_schemas``                  every         the schemas that are this application's: checked,
                                   non-system    dumped before a heal, and the only ones whose
                                   schema        queries count as runaway (a list, or a
                                                 comma-separated string)
``mysql_long_query_seconds``       60            a statement running longer is a runaway
``mysql_check_tables_max``         50            CHECK TABLE at most this many tables per run
``mysql_check_tables_seconds``     20            ... and stop starting new ones after this long
``mysql_fragmentation_min_bytes``  67108864      a table is fragmented only with this much free
``mysql_fragmentation_ratio``      0.5           ... and free space at least this fraction of
                                                 its data
=================================  ============  ===============================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from healer_mysql.parsing import SYSTEM_SCHEMAS

__all__ = ["Settings", "SettingsError"]


class SettingsError(ValueError):
    """A metadata value this plugin cannot use; the message names the key."""


def _number(metadata: Mapping[str, Any], key: str, default: float, *, minimum: float) -> float:
    value = metadata.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SettingsError(f"metadata {key} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"metadata {key} must be a number, not {value!r}") from None
    if not math.isfinite(number) or number < minimum:
        raise SettingsError(f"metadata {key} must be a number of at least {minimum:g}")
    return number


def _schemas(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
    elif isinstance(value, list | tuple):
        names = [part for part in value if isinstance(part, str)]
        if len(names) != len(value):
            raise SettingsError("metadata mysql_schemas must hold only schema names (strings)")
    else:
        raise SettingsError("metadata mysql_schemas must be a list of names or a string")
    names = [name for name in names if name]
    if not names:
        raise SettingsError("metadata mysql_schemas names no schema")
    system = sorted(set(names) & SYSTEM_SCHEMAS)
    if system:
        raise SettingsError(
            f"metadata mysql_schemas names the server's own schema(s) {', '.join(system)}: "
            "they are never an application's"
        )
    if any("\0" in name for name in names):
        raise SettingsError("metadata mysql_schemas holds a name with a NUL character")
    return tuple(dict.fromkeys(names))


@attrs.frozen(kw_only=True)
class Settings:
    """What one MySQL application's metadata asks for, validated.

    :param schemas: the application's schemas; None means every non-system schema.
    """

    schemas: tuple[str, ...] | None = None
    long_query_s: float = 60.0
    check_tables_max: int = 50
    check_tables_s: float = 20.0
    fragmentation_min_bytes: int = 64 * 1024 * 1024
    fragmentation_ratio: float = 0.5

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> Settings:
        """The settings in ``metadata``.

        :raises SettingsError: a value is of the wrong type or out of range (the key is named).
        """
        return cls(
            schemas=_schemas(metadata.get("mysql_schemas")),
            long_query_s=_number(metadata, "mysql_long_query_seconds", 60.0, minimum=1.0),
            check_tables_max=int(_number(metadata, "mysql_check_tables_max", 50, minimum=1)),
            check_tables_s=_number(metadata, "mysql_check_tables_seconds", 20.0, minimum=0.1),
            fragmentation_min_bytes=int(
                _number(metadata, "mysql_fragmentation_min_bytes", 64 * 1024 * 1024, minimum=0)
            ),
            fragmentation_ratio=_number(metadata, "mysql_fragmentation_ratio", 0.5, minimum=0.0),
        )

    @property
    def schema_set(self) -> frozenset[str] | None:
        """:attr:`schemas` as a set, or None for every non-system schema."""
        return frozenset(self.schemas) if self.schemas is not None else None
