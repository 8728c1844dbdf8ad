"""PHP's ``serialize()`` format, read and written without PHP and without running anything.

WordPress stores arrays and objects in its options table this way (``active_plugins``, ``cron``,
the update transients). :func:`loads` reads null, booleans, integers, floats, strings, arrays
and objects; references, custom-serialized objects and enums are refused with
:class:`PhpSerialError`, as is anything malformed, nested too deeply or longer than it says.
Reading never instantiates a class: an object is a :class:`PhpObject`, a name and properties.

Strings are bytes in PHP; here they are ``str`` decoded as UTF-8 with surrogate escapes, so
:func:`dumps` writes back exactly the bytes that were read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

__all__ = ["PhpObject", "PhpSerialError", "dumps", "loads", "looks_serialized", "maybe_loads"]

MAX_DEPTH = 128


class PhpSerialError(ValueError):
    """The data is not a value this reader accepts; ``offset`` says where it went wrong."""

    def __init__(self, reason: str, offset: int) -> None:
        self.reason = reason
        self.offset = offset
        super().__init__(f"{reason} at byte {offset}")


@attrs.frozen(kw_only=True)
class PhpObject:
    """A serialized PHP object: its class name and its properties.

    Property names are as PHP mangles them: ``"\\0*\\0name"`` for protected, ``"\\0Class\\0name"``
    for private ones; :meth:`get` finds a property whatever its visibility.
    """

    class_name: str
    properties: Mapping[str | int, Any] = attrs.field(factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        """The property ``name`` (public, protected or private), or ``default``."""
        for key, value in self.properties.items():
            if key == name or (isinstance(key, str) and key.rpartition("\0")[2] == name):
                return value
        return default


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogateescape")


def _bytes(text: str) -> bytes:
    try:
        return text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that never came from a byte
        return text.encode("utf-8", errors="surrogatepass")


_INT = re.compile(rb"[+-]?[0-9]+")
_FLOAT = re.compile(rb"[+-]?(?:[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+\.)|INF|-INF|NAN")
_SPECIAL = {b"INF": math.inf, b"-INF": -math.inf, b"NAN": math.nan}


@attrs.define
class _Reader:
    data: bytes
    pos: int = 0

    def fail(self, reason: str) -> PhpSerialError:
        return PhpSerialError(reason, self.pos)

    def expect(self, literal: bytes) -> None:
        if not self.data.startswith(literal, self.pos):
            raise self.fail(f"expected {literal.decode()!r}")
        self.pos += len(literal)

    def until(self, stop: bytes, pattern: re.Pattern[bytes], what: str) -> bytes:
        end = self.data.find(stop, self.pos)
        if end < 0:
            raise self.fail(f"unterminated {what}")
        raw = self.data[self.pos : end]
        if not pattern.fullmatch(raw):
            raise self.fail(f"bad {what} {raw[:20]!r}")
        self.pos = end + len(stop)
        return raw

    def count(self, stop: bytes = b":") -> int:
        raw = self.until(stop, re.compile(rb"[0-9]{1,10}"), "length")
        return int(raw)

    def chunk(self, length: int) -> bytes:
        if self.pos + length > len(self.data):
            raise self.fail(f"a string of {length} bytes runs past the end")
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH}")
        kind = self.data[self.pos : self.pos + 2]
        reader = _READERS.get(kind)
        if reader is None:
            if kind[:1] in (b"r", b"R", b"C", b"E"):
                raise self.fail(f"unsupported type {kind[:1].decode()!r}")
            raise self.fail("not a serialized value")
        self.pos += 2
        return reader(self, depth)

    def key(self) -> str | int:
        kind = self.data[self.pos : self.pos + 2]
        if kind == b"i:":
            self.pos += 2
            return int(self.until(b";", _INT, "integer"))
        if kind == b"s:":
            self.pos += 2
            return _string(self, 0)
        raise self.fail("an array key must be an integer or a string")

    def members(self, depth: int) -> dict[str | int, Any]:
        count = self.count()
        self.expect(b"{")
        out: dict[str | int, Any] = {}
        for _ in range(count):
            key = self.key()
            out[key] = self.value(depth + 1)
        self.expect(b"}")
        return out


def _null(reader: _Reader, depth: int) -> None:
    return None  # "N;" is whole already


def _bool(reader: _Reader, depth: int) -> bool:
    raw = reader.until(b";", re.compile(rb"[01]"), "boolean")
    return raw == b"1"


def _int(reader: _Reader, depth: int) -> int:
    return int(reader.until(b";", _INT, "integer"))


def _float(reader: _Reader, depth: int) -> float:
    raw = reader.until(b";", _FLOAT, "float")
    return _SPECIAL[raw] if raw in _SPECIAL else float(raw)


def _string(reader: _Reader, depth: int) -> str:
    length = reader.count()
    reader.expect(b'"')
    raw = reader.chunk(length)
    reader.expect(b'";')
    return _text(raw)


def _array(reader: _Reader, depth: int) -> dict[str | int, Any]:
    return reader.members(depth)


def _object(reader: _Reader, depth: int) -> PhpObject:
    length = reader.count()
    reader.expect(b'"')
    name = _text(reader.chunk(length))
    reader.expect(b'":')
    return PhpObject(class_name=name, properties=reader.members(depth))


_READERS = {
    b"N;": _null, b"b:": _bool, b"i:": _int, b"d:": _float, b"s:": _string, b"a:": _array,
    b"O:": _object,
}  # fmt: skip


def loads(data: bytes | str) -> Any:
    """The value serialized in ``data``.

    Arrays come back as ``dict`` (keys ``int`` or ``str``, in order), objects as
    :class:`PhpObject`. Trailing whitespace is allowed, anything else after the value is not.

    :raises PhpSerialError: the data is malformed or holds an unsupported type.
    """
    raw = _bytes(data) if isinstance(data, str) else data
    reader = _Reader(raw)
    value = reader.value(0)
    if raw[reader.pos :].strip():
        raise reader.fail("data after the value")
    return value


_SERIALIZED = re.compile(
    rb"^(?:N;|b:[01];|i:-?\d+;|d:[^;]+;|s:\d+:\".*\";|[aO]:\d+:.*[;}])$", re.DOTALL
)


def looks_serialized(data: bytes) -> bool:
    """Whether ``data`` looks like a serialized value (WordPress's ``is_serialized``)."""
    return bool(_SERIALIZED.match(data.strip()))


def maybe_loads(data: bytes) -> Any:
    """Like WordPress's ``maybe_unserialize``: the value when ``data`` is serialized and
    readable, else ``data`` as text."""
    if looks_serialized(data):
        try:
            return loads(data)
        except PhpSerialError:
            pass
    return _text(data)


# --------------------------------------------------------------------------------------------
# Writing


def _float_text(value: float) -> str:
    """A float as PHP 7.1+ serializes it (shortest round-trip form, ``1.0E+25`` style)."""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    text = repr(value)
    if "e" in text:
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        sign = "-" if exponent.startswith("-") else "+"
        return f"{mantissa}E{sign}{exponent.lstrip('+-')}"
    return text.removesuffix(".0")


def _dump(value: Any, out: list[bytes], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH}")
    if value is None:
        out.append(b"N;")
    elif isinstance(value, bool):
        out.append(b"b:1;" if value else b"b:0;")
    elif isinstance(value, int):
        out.append(b"i:%d;" % value)
    elif isinstance(value, float):
        out.append(f"d:{_float_text(value)};".encode())
    elif isinstance(value, str | bytes):
        raw = _bytes(value) if isinstance(value, str) else value
        out.append(b's:%d:"' % len(raw) + raw + b'";')
    elif isinstance(value, PhpObject):
        name = _bytes(value.class_name)
        out.append(b'O:%d:"' % len(name) + name + b'":')
        _members(value.properties, out, depth)
    elif isinstance(value, Mapping):
        out.append(b"a:")
        _members(value, out, depth)
    elif isinstance(value, Sequence):
        out.append(b"a:")
        _members(dict(enumerate(value)), out, depth)
    else:
        raise TypeError(f"cannot serialize a {type(value).__name__}")


def _members(items: Mapping[Any, Any], out: list[bytes], depth: int) -> None:
    out.append(b"%d:{" % len(items))
    for key, item in items.items():
        if isinstance(key, bool) or not isinstance(key, int | str):
            raise TypeError(f"an array key must be an int or a str, not {type(key).__name__}")
        _dump(key, out, depth + 1)
        _dump(item, out, depth + 1)
    out.append(b"}")


def dumps(value: Any) -> bytes:
    """``value`` serialized as PHP's ``serialize()`` writes it: ``None``, ``bool``, ``int``,
    ``float``, ``str``, mappings and sequences (arrays), :class:`PhpObject`.

    :raises TypeError: for anything else.
    """
    out: list[bytes] = []
    _dump(value, out, 0)
    return b"".join(out)
