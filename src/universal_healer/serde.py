"""The one cattrs converter: value objects to JSON-ready data and back.

Used for ``--json`` output, the registry's JSON columns and the daemon's API, so all three
agree on shapes. Datetimes are ISO 8601 with offset; enums are their values; tuples and
frozensets become lists (frozensets sorted, so output is stable).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from cattrs.preconf.json import make_converter

from universal_healer.model import CallableStep, CommandStep, Step

__all__ = ["converter", "dumps", "loads", "structure", "unstructure"]

T = TypeVar("T")

converter = make_converter()


def _structure_datetime(value: Any, _: type) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(parsed, dt.datetime) or parsed.utcoffset() is None:
        raise ValueError(f"expected an aware ISO 8601 datetime, got {value!r}")
    return parsed.astimezone(dt.UTC)


converter.register_unstructure_hook(dt.datetime, lambda value: value.isoformat())
converter.register_structure_hook(dt.datetime, _structure_datetime)
converter.register_unstructure_hook(frozenset, sorted)
# A callable step travels as its description: the code itself stays in the plugin.
converter.register_unstructure_hook(
    CallableStep,
    lambda step: {"kind": "callable", "description": step.description, "timeout": step.timeout},
)


def _structure_step(value: Any, _: type) -> CommandStep:
    if isinstance(value, Mapping) and value.get("kind") == "callable":
        # The code of a callable step lives in its plugin: a record can show it, not rerun it.
        raise ValueError(f"a callable step ({value.get('description')!r}) cannot be rebuilt")
    return converter.structure(value, CommandStep)


converter.register_structure_hook(Step, _structure_step)
converter.register_structure_hook_func(
    lambda cls: getattr(cls, "__origin__", None) is Mapping,
    lambda value, _: dict(value) if value is not None else {},
)


def unstructure(value: object) -> Any:
    """A value object as plain JSON-ready data."""
    return converter.unstructure(value)


def structure(data: Any, cls: type[T]) -> T:
    """Plain data back into ``cls``; raises cattrs' ClassValidationError when it does not fit."""
    return converter.structure(data, cls)


def dumps(value: object, **kwargs: Any) -> str:
    """A value object as a JSON string."""
    return json.dumps(unstructure(value), **kwargs)


def loads(text: str, cls: type[T]) -> T:
    """A JSON string into ``cls``."""
    return structure(json.loads(text), cls)
