"""Pure parsing helpers for the fallback signatures: manifests, lock files, version strings.

Nothing here does I/O or raises on bad input: every function takes text or an already parsed
JSON value of any shape and answers None when it cannot tell.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from universal_healer.model import SiteProbe

__all__ = [
    "composer_lock_version",
    "file_problem",
    "installed_package_version",
    "laravel_application_version",
    "lock_file_version",
    "mapping",
    "npm_lock_version",
    "pnpm_lock_version",
    "version_from_range",
    "wordpress_multisite",
    "wordpress_version",
    "yarn_lock_version",
]

# npm's lock files first, shrinkwrap before package-lock as npm itself prefers it; then yarn, pnpm.
NPM_LOCK_FILES = ("npm-shrinkwrap.json", "package-lock.json", "yarn.lock", "pnpm-lock.yaml")

_LOWER_BOUND = re.compile(
    r"(?:>=?|\^|~>?|==?)?v?(?P<release>\d+(?:\.\d+)*)(?P<pre>-[0-9A-Za-z.]+)?"
)
_WP_VERSION = re.compile(r"""\$wp_version\s*=\s*['"]([^'"]+)['"]""")
_WP_MULTISITE = re.compile(
    r"""define\s*\(\s*['"](MULTISITE|WP_ALLOW_MULTISITE)['"]\s*,\s*(?:true|1|['"]true['"])\s*\)""",
    re.IGNORECASE,
)
_LARAVEL_VERSION = re.compile(r"""const\s+VERSION\s*=\s*['"]([^'"]+)['"]""")


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty mapping (manifests lie about shapes)."""
    return value if isinstance(value, Mapping) else {}


def file_problem(probe: SiteProbe, path: str) -> str | None:
    """Why ``path`` in ``probe`` cannot be parsed as JSON, or None when it parses.

    A file over its size cap says "too large" with its real size, which reads better in
    evidence than the generic reason.
    """
    probed = probe.file(path)
    if probed is not None and probed.truncated and probed.data is not None:
        size = f"{probed.size} bytes" if probed.size is not None else "size unknown"
        return f"{path}: too large to parse ({size}; read capped at {len(probed.data)} bytes)"
    return probe.json(path).problem


def version_from_range(spec: Any) -> str | None:
    """The lowest version a semver (npm) or composer constraint allows, when it names one.

    ``"^14.2.3"`` → ``"14.2.3"``, ``">=8.1 <9"`` → ``"8.1"``, ``"~10.0|^11"`` → ``"10.0"``,
    ``"4.x"`` → ``"4"``, ``"npm:next@^14.1"`` → ``"14.1"``; ``"*"``, ``"latest"``,
    ``"dev-main"``, git and file URLs → None.
    """
    if not isinstance(spec, str):
        return None
    text = spec.strip()
    if text.startswith("npm:"):
        text = text.rpartition("@")[2]  # an alias: npm:next@^14.1
    elif ":" in text or "/" in text:
        return None  # git+https://, file:, link:, workspace:, github:user/repo
    text = re.sub(r"@[a-zA-Z]+$", "", text)  # composer stability flag: ^10.0@dev
    text = re.sub(r"([<>=^~]+)\s+", r"\1", text)  # ">= 8.1" -> ">=8.1"
    for alternative in re.split(r"\|\|?", text):
        for comparator in re.split(r"[\s,]+", alternative.strip()):
            if comparator.startswith(("<", "!")):
                continue  # an upper bound or an exclusion says nothing about the lowest version
            match = _LOWER_BOUND.match(comparator)
            if match is not None:
                return match.group("release") + (match.group("pre") or "")
    return None


def installed_package_version(manifest: Any) -> str | None:
    """The ``version`` of an installed package's own package.json (node_modules/x/package.json)."""
    version = mapping(manifest).get("version")
    return version if isinstance(version, str) and version else None


def npm_lock_version(lock: Any, name: str) -> str | None:
    """The version of ``name`` pinned by a package-lock.json or npm-shrinkwrap.json.

    lockfileVersion 2 and 3 list ``packages["node_modules/<name>"]``; version 1 lists
    ``dependencies[<name>]``.
    """
    document = mapping(lock)
    entry = mapping(mapping(document.get("packages")).get(f"node_modules/{name}"))
    if not entry:
        entry = mapping(mapping(document.get("dependencies")).get(name))
    version = entry.get("version")
    return version if isinstance(version, str) and version else None


def yarn_lock_version(text: str, name: str) -> str | None:
    """The version of ``name`` in a yarn.lock (classic ``version "x"`` or berry ``version: x``)."""
    in_entry = False
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            keys = (key.strip().strip("\"'") for key in line.rstrip().rstrip(":").split(","))
            in_entry = any(key.startswith(f"{name}@") for key in keys)
            continue
        if in_entry:
            field, _, value = line.strip().partition(" ")
            if field.rstrip(":") == "version":
                version = value.strip().strip("\"'")
                return version or None
    return None


def pnpm_lock_version(text: str, name: str) -> str | None:
    """The version of ``name`` in a pnpm-lock.yaml, from its package keys.

    v5 writes ``/next/14.2.3_react@18.3.1:``, v6 ``/next@14.2.3(react@18.2.0):`` and v9
    ``next@14.2.3:``; a peer-dependency suffix is not part of the version.
    """
    pattern = re.compile(rf"""^\s+['"]?/?{re.escape(name)}[@/](\d[^\s:('"_]*)""", re.MULTILINE)
    match = pattern.search(text)
    return match.group(1) if match else None


def lock_file_version(probe: SiteProbe, name: str) -> tuple[str, str] | tuple[None, None]:
    """``(version, lock file)`` for npm package ``name`` from the first lock file that pins
    it, or ``(None, None)``. Lock files are read as far as their cap allows."""
    for lock in NPM_LOCK_FILES:
        text = probe.text(lock)
        if text is None:
            continue
        if lock.endswith(".json"):
            parsed = probe.json(lock)
            if parsed.ok:
                version = npm_lock_version(parsed.value, name)
            else:  # truncated or damaged: what can be read of it still names versions
                version = _npm_lock_version_by_pattern(text, name)
        elif lock == "yarn.lock":
            version = yarn_lock_version(text, name)
        else:
            version = pnpm_lock_version(text, name)
        if version is not None:
            return version, lock
    return None, None


def _npm_lock_version_by_pattern(text: str, name: str) -> str | None:
    escaped = re.escape(name)
    pattern = re.compile(rf'"(?:node_modules/)?{escaped}"\s*:\s*\{{\s*"version"\s*:\s*"([^"]+)"')
    match = pattern.search(text)
    return match.group(1) if match else None


def composer_lock_version(lock: Any, name: str) -> str | None:
    """The version of ``name`` in a composer.lock (``packages`` or ``packages-dev``), without
    the leading ``v`` composer keeps from the git tag."""
    document = mapping(lock)
    for section in ("packages", "packages-dev"):
        packages = document.get(section)
        if not isinstance(packages, list):
            continue
        for package in packages:
            entry = mapping(package)
            version = entry.get("version")
            if entry.get("name") == name and isinstance(version, str) and version:
                return version.removeprefix("v")
    return None


def laravel_application_version(text: str) -> str | None:
    """The ``VERSION`` constant of Laravel's ``Illuminate/Foundation/Application.php``."""
    match = _LARAVEL_VERSION.search(text)
    return match.group(1) if match else None


def wordpress_version(text: str) -> str | None:
    """``$wp_version`` from ``wp-includes/version.php``."""
    match = _WP_VERSION.search(text)
    return match.group(1) if match else None


def wordpress_multisite(text: str) -> str | None:
    """``"MULTISITE"`` or ``"WP_ALLOW_MULTISITE"`` when wp-config.php turns either on."""
    found = {match.group(1).upper() for match in _WP_MULTISITE.finditer(text)}
    if "MULTISITE" in found:
        return "MULTISITE"
    return "WP_ALLOW_MULTISITE" if found else None
