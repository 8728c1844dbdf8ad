"""Versions: what ``wp-includes/version.php`` says, PHP's ``version_compare`` and the headers
of plugin and theme files (``Version: 5.0.2``), all read without running PHP."""

from __future__ import annotations

import re

import attrs

from healer_wordpress import php

__all__ = ["HEADER_BYTES", "CoreVersion", "compare", "core_version", "file_header", "newer"]

HEADER_BYTES = 8 * 1024
"""WordPress reads plugin and theme headers from the first 8 KiB of the file."""


@attrs.frozen(kw_only=True)
class CoreVersion:
    """What ``wp-includes/version.php`` assigns."""

    version: str | None = None
    db_version: int | None = None
    required_php: str | None = None
    required_mysql: str | None = None


def core_version(text: str) -> CoreVersion:
    """The versions assigned in ``version.php`` (None for each that is not a plain literal)."""
    source = php.parse(text)

    def literal(name: str) -> php.Scalar:
        found = source.assignments_of(name)
        return found[0].value if found and not isinstance(found[0].value, php.Dynamic) else None

    version, db_version = literal("wp_version"), literal("wp_db_version")
    required_php = literal("required_php_version")
    required_mysql = literal("required_mysql_version")
    return CoreVersion(
        version=version if isinstance(version, str) and version.strip() else None,
        db_version=db_version if isinstance(db_version, int) else None,
        required_php=required_php if isinstance(required_php, str) else None,
        required_mysql=required_mysql if isinstance(required_mysql, str) else None,
    )


# --------------------------------------------------------------------------------------------
# version_compare, as PHP does it


_SPECIAL_FORMS = (("dev", 0), ("alpha", 1), ("a", 1), ("beta", 2), ("b", 2), ("RC", 3),
                  ("rc", 3), ("#", 4), ("pl", 5), ("p", 5))  # fmt: skip


def _not_digit(char: str) -> bool:
    return not char.isdigit() and char != "."


def _canonical(version: str) -> list[str]:
    """PHP's ``php_canonicalize_version`` then split on dots: ``"6.5-RC1"`` -> 6, 5, RC, 1."""
    if not version:
        return []
    out = [version[0]]
    previous = version[0]
    for char in version[1:]:
        if char in "-_+":
            if out[-1] != ".":
                out.append(".")
        elif (_not_digit(previous) and char.isdigit()) or (previous.isdigit() and _not_digit(char)):
            if out[-1] != ".":
                out.append(".")
            out.append(char)
        elif not char.isalnum():
            if out[-1] != ".":
                out.append(".")
        else:
            out.append(char)
        previous = char
    return "".join(out).split(".")


def _special(form: str) -> int:
    for name, order in _SPECIAL_FORMS:
        if form.startswith(name):
            return order
    return -6


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def _compare_parts(left: str, right: str) -> int:
    left_digit, right_digit = left.isdigit(), right.isdigit()
    if left_digit and right_digit:
        return _sign(int(left) - int(right))
    if not left_digit and not right_digit:
        return _sign(_special(left) - _special(right))
    if left_digit:
        return _sign(_special("#N#") - _special(right))
    return _sign(_special(left) - _special("#N#"))


def compare(left: str, right: str) -> int:
    """PHP's ``version_compare(left, right)``: -1, 0 or 1 (``"6.5-RC1" < "6.5" < "6.5.1"``)."""
    if not left or not right:
        return _sign(len(left) - len(right))
    a, b = _canonical(left), _canonical(right)
    for x, y in zip(a, b, strict=False):
        result = _compare_parts(x, y)
        if result:
            return result
    if len(a) > len(b):
        rest = a[len(b)]
        return 1 if rest.isdigit() else compare(".".join(a[len(b) :]), "#N#")
    if len(b) > len(a):
        rest = b[len(a)]
        return -1 if rest.isdigit() else compare("#N#", ".".join(b[len(a) :]))
    return 0


def newer(candidate: str, installed: str) -> bool:
    """Whether ``candidate`` is a later version than ``installed``."""
    return compare(candidate, installed) > 0


# --------------------------------------------------------------------------------------------
# File headers


def _cleanup(value: str) -> str:
    return re.sub(r"\s*(?:\*/|\?>).*", "", value).strip()


def file_header(text: str, field: str) -> str | None:
    """A header field of a plugin or theme file as WordPress's ``get_file_data`` reads it
    (from the first 8 KiB, in a comment or not, case-insensitive); None when absent or empty."""
    head = text[:HEADER_BYTES].replace("\r", "\n")
    pattern = re.compile(
        r"^(?:[ \t]*<\?php)?[ \t/*#@]*" + re.escape(field) + r":(.*)$",
        re.IGNORECASE | re.MULTILINE,
    )
    found = pattern.search(head)
    if found is None:
        return None
    return _cleanup(found[1]) or None
