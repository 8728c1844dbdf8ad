"""Reading a Deno configuration file (``deno.json`` or ``deno.jsonc``) without I/O.

Pure functions of bytes, shared by detection (on the probe) and by the checks (on a fresh
read): both must agree on what a valid configuration is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from universal_healer.model import JsonRead, SiteProbe

__all__ = [
    "CONFIG_FILES",
    "MAX_BYTES",
    "config_file",
    "lock_disabled",
    "parse",
    "read_probe",
    "std_version",
]

CONFIG_FILES = ("deno.json", "deno.jsonc")
"""The files that make a directory a Deno project; Deno reads ``deno.json`` first."""

MAX_BYTES = 256 * 1024
"""Read at most this much of a configuration file."""

# "https://deno.land/std@0.224.0/path/mod.ts" or a bare "std@0.224.0"; not "jsr:@std/path@1".
_STD_PIN = re.compile(r"(?:^|/)std@v?(\d+)\.(\d+)\.(\d+)(?![\w.])")


def config_file(probe: SiteProbe) -> str | None:
    """The configuration file Deno would use in ``probe``'s root, or None."""
    for name in CONFIG_FILES:
        if probe.exists(name):
            return name
    return None


def _strip_jsonc(text: str) -> str:
    """``text`` without ``//`` and ``/* */`` comments and trailing commas (JSONC to JSON).

    Line breaks are kept, so a JSON error still names the right line.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == '"':  # copy a string verbatim, escapes included
            end = i + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            out.append(text[i : end + 1])
            i = end + 1
        elif text.startswith("//", i):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            end = n if close < 0 else close + 2
            out.append("\n" * text.count("\n", i, end) or " ")
            i = end
        else:
            if char in "}]":
                _drop_trailing_comma(out)
            out.append(char)
            i += 1
    return "".join(out)


def _drop_trailing_comma(out: list[str]) -> None:
    """Remove a comma that only blanks separate from the end of ``out``."""
    at = len(out) - 1
    while at >= 0 and out[at].isspace():
        at -= 1
    if at >= 0 and out[at] == ",":
        del out[at]


def parse(
    name: str, data: bytes | None, *, truncated: bool = False, error: str | None = None
) -> JsonRead:
    """Parse a configuration file; the problem, never an exception, when it is not valid.

    :param name: the file's name, for the message (``.jsonc`` allows comments and trailing
        commas, as Deno does).
    :param data: its bytes, or None when it could not be read.
    :param truncated: True when only the first part was read.
    :param error: why ``data`` is None (``"permission denied"``).
    :returns: the parsed object, or the problem; a document that is not an object is a problem.
    """
    if data is None or truncated:
        reason = (
            (error or "could not be read")
            if data is None
            else f"larger than {len(data)} bytes, not parsed"
        )
        return JsonRead(problem=f"{name}: {reason}")
    try:
        text = data.decode("utf-8")
        value = json.loads(_strip_jsonc(text) if name.endswith(".jsonc") else text)
    except UnicodeDecodeError as err:
        return JsonRead(problem=f"{name}: not UTF-8 text ({err.reason} at byte {err.start})")
    except json.JSONDecodeError as err:
        return JsonRead(problem=f"{name}: invalid JSON ({err.msg} at line {err.lineno})")
    except RecursionError:
        return JsonRead(problem=f"{name}: JSON nested too deeply")
    if not isinstance(value, dict):
        return JsonRead(problem=f"{name}: not a JSON object")
    return JsonRead(value=value)


def read_probe(probe: SiteProbe, name: str) -> JsonRead:
    """Parse the configuration file ``name`` as discovery read it into ``probe``."""
    probed = probe.file(name)
    if probed is None:
        return JsonRead(problem=f"{name}: not probed")
    return parse(name, probed.data, truncated=probed.truncated, error=probed.error)


def lock_disabled(probe: SiteProbe) -> bool:
    """Whether the configuration turns the lock file off (``"lock": false``)."""
    name = config_file(probe)
    read = read_probe(probe, name) if name else None
    return read is not None and read.ok and read.value.get("lock") is False


def std_version(config: Mapping[str, Any]) -> str | None:
    """The highest Deno standard library version pinned in the ``imports`` map, if any."""
    imports = config.get("imports")
    if not isinstance(imports, Mapping):
        return None
    pins = [
        tuple(int(part) for part in match.groups())
        for target in imports.values()
        if isinstance(target, str)
        for match in _STD_PIN.finditer(target)
    ]
    return ".".join(map(str, max(pins))) if pins else None
