"""The fallback signatures of the plan (section 4.1): WordPress, PHP, Laravel, Node.js, Next.js
and Express, as a built-in plugin written exactly like an external one.

A dedicated plugin (``healer-wordpress``, ...) may answer with more confidence; these rules
make sure every common stack is recognised with core alone. ``healer_detect`` returns this
plugin's single best reading of a root:

- a framework beats the generic stack it refines (Express over Node.js even though the generic
  signature's confidence is higher, WordPress over plain PHP);
- a workspace root or a package.json of build tooling only is not an application;
- a manifest that cannot be parsed (invalid JSON, binary garbage, over its size cap) still
  yields the generic stack at low confidence, the problem in the evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from universal_healer.builtin._manifests import (
    composer_lock_version,
    file_problem,
    installed_package_version,
    laravel_application_version,
    lock_file_version,
    mapping,
    version_from_range,
    wordpress_multisite,
    wordpress_version,
)
from universal_healer.hookspecs import hookimpl
from universal_healer.model import Detection, ProbeFile, SiteProbe, StackInfo

__all__ = ["healer_detect", "healer_probe_files", "healer_stacks"]

_MIB = 1024 * 1024
_LOCK_CAP = 8 * _MIB  # lock files of real projects run to megabytes

_LARAVEL_APPLICATION = "vendor/laravel/framework/src/Illuminate/Foundation/Application.php"
_NEXT_CONFIGS = ("next.config.js", "next.config.mjs", "next.config.ts", "next.config.cjs")
_SERVER_FILES = ("server.js", "app.js", "index.js", "server.mjs", "app.mjs", "index.mjs")
# A "start" script that only runs one of these watches assets; it serves no application.
_BUILD_TOOLS = frozenset(
    {
        "browser-sync", "esbuild", "grunt", "gulp", "mix", "node-sass", "parcel", "postcss",
        "rollup", "sass", "tailwindcss", "vite", "webpack", "webpack-dev-server", "wp-scripts",
    }
)  # fmt: skip

_STACKS = (
    StackInfo(id="wordpress", display_name="WordPress", secret_files=("wp-config.php",)),
    StackInfo(id="php", display_name="PHP", secret_files=(".env",)),
    StackInfo(id="laravel", display_name="Laravel", parent="php", secret_files=(".env",)),
    StackInfo(id="nodejs", display_name="Node.js", secret_files=(".env",)),
    StackInfo(id="nextjs", display_name="Next.js", parent="nodejs", secret_files=(".env",)),
    StackInfo(id="express", display_name="Express", parent="nodejs", secret_files=(".env",)),
)
_DEPTH = {stack.id: 0 if stack.parent is None else 1 for stack in _STACKS}

_PROBE_FILES = (
    *(
        ProbeFile(path=name, marker=True)
        for name in (
            "package.json",
            "composer.json",
            "artisan",
            "wp-config.php",
            "wp-config-sample.php",
            "index.php",
        )
    ),
    ProbeFile(path="wp-includes/version.php"),
    *(
        ProbeFile(path=name, max_bytes=_LOCK_CAP)
        for name in (
            "package-lock.json",
            "npm-shrinkwrap.json",
            "yarn.lock",
            "pnpm-lock.yaml",
            "composer.lock",
        )
    ),
    ProbeFile(path="node_modules/next/package.json"),
    ProbeFile(path="node_modules/express/package.json"),
    ProbeFile(path=_LARAVEL_APPLICATION),
    *(ProbeFile(path=name) for name in _NEXT_CONFIGS),
)

_WORDPRESS_CLAIMS = ("wp-content", "wp-admin", "wp-includes")
_LARAVEL_CLAIMS = (
    "resources", "public", "storage", "bootstrap", "app", "config", "database", "routes", "tests",
)  # fmt: skip
# A plain PHP site's own folders; any index.php in them is a page of the site, not a new app.
_PHP_CLAIMS = ("public", "web", "src", "lib", "includes", "inc", "templates", "config", "admin")
_NEXTJS_CLAIMS = ("pages", "app", "src", "public", "components", "styles")
_EXPRESS_CLAIMS = ("public", "views", "routes", "src")
# Build output often carries its own package.json; it belongs to the app that built it.
_NODEJS_CLAIMS = ("public", "src", "lib", "dist", "build")


@hookimpl
def healer_stacks() -> Sequence[StackInfo]:
    """WordPress, PHP, Laravel (refines PHP), Node.js, Next.js and Express (refine Node.js)."""
    return _STACKS


@hookimpl
def healer_probe_files() -> Sequence[ProbeFile]:
    """Manifests as markers; version files, lock files and installed packages to read."""
    return _PROBE_FILES


@hookimpl
def healer_detect(probe: SiteProbe) -> Detection | None:
    """This plugin's best reading of ``probe``, or None when it is none of its stacks."""
    wordpress = _wordpress(probe)
    php = _php_family(probe)
    if wordpress is not None and php is not None and php.stack == "php":
        php = None  # the same PHP files, read more specifically
    found = [d for d in (wordpress, php, _node_family(probe)) if d is not None]
    if not found:
        return None
    return min(found, key=lambda d: (-d.confidence, -_DEPTH[d.stack], d.stack))


# --------------------------------------------------------------------------------------------
# Shared


def _unread(probe: SiteProbe, path: str) -> str:
    """Why ``path`` gave nothing: missing, unreadable (with the reason), or empty."""
    probed = probe.file(path)
    if probed is None or probed.error == "missing":
        return f"{path} missing"
    if probed.data is None:
        return f"{path} unreadable ({probed.error or 'no data'})"
    return f"nothing usable in {path}"


def _json_object(probe: SiteProbe, path: str) -> tuple[Mapping[str, Any], str | None]:
    """``(document, None)`` for a JSON object at ``path``, else ``({}, problem)``."""
    problem = file_problem(probe, path)
    if problem is not None:
        return {}, problem
    value = probe.json(path).value
    if not isinstance(value, Mapping):
        return {}, f"{path}: not a JSON object"
    return value, None


# --------------------------------------------------------------------------------------------
# WordPress


def _wordpress(probe: SiteProbe) -> Detection | None:
    installed = probe.has_file("wp-config.php")
    has_content = probe.has_dir("wp-content")
    if not probe.has_dir("wp-includes"):
        return None
    evidence: list[str] = []
    if installed and has_content:
        confidence = 0.95
        evidence.append("wp-config.php, wp-content/ and wp-includes/ present")
    elif installed:
        confidence = 0.8
        evidence.append("wp-config.php and wp-includes/ present but no wp-content/ (moved?)")
    elif has_content or probe.has_file("wp-config-sample.php"):
        confidence = 0.6
        evidence.append("WordPress files present but not installed (no wp-config.php)")
    else:
        return None

    version = None
    text = probe.text("wp-includes/version.php")
    if text is not None:
        version = wordpress_version(text)
    if version is not None:
        evidence.append(f"version {version} from wp-includes/version.php")
    else:
        evidence.append(f"version unknown: {_unread(probe, 'wp-includes/version.php')}")

    config = probe.text("wp-config.php")
    if installed and config is None:
        evidence.append(f"cannot look inside: {_unread(probe, 'wp-config.php')}")
    elif config is not None:
        multisite = wordpress_multisite(config)
        if multisite == "MULTISITE":
            evidence.append("multisite network (MULTISITE defined in wp-config.php)")
        elif multisite is not None:
            evidence.append("multisite allowed (WP_ALLOW_MULTISITE defined in wp-config.php)")
    return Detection(
        stack="wordpress",
        version=version,
        confidence=confidence,
        evidence=evidence,
        claims=_WORDPRESS_CLAIMS,
    )


# --------------------------------------------------------------------------------------------
# PHP and Laravel


def _php_family(probe: SiteProbe) -> Detection | None:
    has_composer = probe.has_file("composer.json")
    has_artisan = probe.has_file("artisan")
    has_index = probe.has_file("index.php")
    if not (has_composer or has_artisan or has_index):
        return None
    evidence: list[str] = []
    composer: Mapping[str, Any] = {}
    problem = None
    if has_composer:
        composer, problem = _json_object(probe, "composer.json")
        if problem is not None:
            evidence.append(problem)
    require = mapping(composer.get("require"))

    if has_artisan and "laravel/framework" in require:
        return _laravel(probe, require, evidence)
    if has_artisan:
        why = "no composer.json" if not has_composer else "composer.json does not require it"
        evidence.append(f"artisan present but no laravel/framework ({why}): plain PHP")
    elif "laravel/framework" in require:
        evidence.append("composer.json requires laravel/framework but there is no artisan")

    if has_index:
        confidence = 0.7
        evidence.insert(0, "index.php present")
    elif has_composer and problem is None:
        confidence = 0.7
        evidence.insert(0, "composer.json present")
    elif problem is not None:
        confidence = 0.3
    else:
        confidence = 0.5  # artisan alone

    version = None
    constraint = require.get("php")
    if isinstance(constraint, str):
        version = version_from_range(constraint)
        if version is not None:
            evidence.append(
                f"version {version} is the required PHP version "
                f"(composer.json require.php {constraint}), not necessarily the installed one"
            )
    return Detection(
        stack="php", version=version, confidence=confidence, evidence=evidence, claims=_PHP_CLAIMS
    )


def _laravel(probe: SiteProbe, require: Mapping[str, Any], evidence: list[str]) -> Detection:
    evidence.insert(0, "artisan present and composer.json requires laravel/framework")
    version = None
    if probe.has_file("composer.lock"):
        lock, problem = _json_object(probe, "composer.lock")
        version = composer_lock_version(lock, "laravel/framework")
        if problem is not None:
            evidence.append(problem)
        elif version is not None:
            evidence.append(f"version {version} from composer.lock")
    if version is None:
        text = probe.text(_LARAVEL_APPLICATION)
        version = laravel_application_version(text) if text is not None else None
        if version is not None:
            evidence.append(f"version {version} from the installed framework (Application.php)")
    if version is None:
        constraint = require.get("laravel/framework")
        version = version_from_range(constraint)
        if version is not None:
            evidence.append(f"version from constraint {constraint} (no composer.lock pins it)")
        else:
            evidence.append(f"version unknown (laravel/framework constraint {constraint!r})")
    return Detection(
        stack="laravel", version=version, confidence=0.95, evidence=evidence, claims=_LARAVEL_CLAIMS
    )


# --------------------------------------------------------------------------------------------
# Node.js, Next.js and Express


def _node_family(probe: SiteProbe) -> Detection | None:
    if not probe.has_file("package.json"):
        return None
    package, problem = _json_object(probe, "package.json")
    if problem is not None:
        return Detection(
            stack="nodejs",
            confidence=0.3,
            evidence=(problem, "a package.json is there, so probably Node.js"),
            claims=_NODEJS_CLAIMS,
        )
    dependencies = mapping(package.get("dependencies"))
    dev_dependencies = mapping(package.get("devDependencies"))
    scripts = mapping(package.get("scripts"))
    if _is_workspace_root(package, dependencies, scripts):
        return None  # its workspaces are the applications
    if "next" in dependencies or "next" in dev_dependencies:
        return _nextjs(probe, dependencies, dev_dependencies)
    if "express" in dependencies:
        return _framework(
            probe,
            stack="express",
            spec=dependencies["express"],
            confidence=0.85,
            claims=_EXPRESS_CLAIMS,
            evidence=["express in dependencies"],
        )
    return _nodejs(probe, package, dependencies, scripts)


def _nodejs(
    probe: SiteProbe,
    package: Mapping[str, Any],
    dependencies: Mapping[str, Any],
    scripts: Mapping[str, Any],
) -> Detection | None:
    reasons = _runs_as_app(probe, package, dependencies, scripts)
    if not reasons:
        return None  # build tooling (webpack, sass, wp-scripts...) or a library
    evidence = [f"package.json of an application: {', '.join(reasons)}"]
    constraint = mapping(package.get("engines")).get("node")
    version = version_from_range(constraint)
    if version is not None:
        evidence.append(
            f"version {version} is the required Node version "
            f"(engines.node {constraint}), not necessarily the installed one"
        )
    return Detection(
        stack="nodejs", version=version, confidence=0.9, evidence=evidence, claims=_NODEJS_CLAIMS
    )


def _is_workspace_root(
    package: Mapping[str, Any], dependencies: Mapping[str, Any], scripts: Mapping[str, Any]
) -> bool:
    """A monorepo root: workspaces, no runtime dependencies, nothing to start."""
    workspaces = package.get("workspaces")
    declared = isinstance(workspaces, list) or isinstance(mapping(workspaces).get("packages"), list)
    return declared and not dependencies and "start" not in scripts and "main" not in package


def _runs_as_app(
    probe: SiteProbe,
    package: Mapping[str, Any],
    dependencies: Mapping[str, Any],
    scripts: Mapping[str, Any],
) -> list[str]:
    """Why this package.json is an application rather than build tooling; empty if it is not."""
    reasons: list[str] = []
    if dependencies:
        reasons.append(f"dependencies {', '.join(sorted(dependencies)[:3])}")
    for script in ("start", "serve"):
        command = scripts.get(script)
        if isinstance(command, str) and command.split()[:1] and not _builds_only(command):
            reasons.append(f"a {script} script")
    reasons.extend(f'"{field}"' for field in ("main", "bin") if package.get(field))
    reasons.extend(f"{name} present" for name in _SERVER_FILES if probe.has_file(name))
    return reasons


def _builds_only(command: str) -> bool:
    words = command.split()
    if words[:1] == ["npx"]:
        words = words[1:]
    return bool(words) and words[0] in _BUILD_TOOLS


def _nextjs(
    probe: SiteProbe, dependencies: Mapping[str, Any], dev_dependencies: Mapping[str, Any]
) -> Detection:
    configs = [name for name in _NEXT_CONFIGS if probe.exists(name)]
    if configs:
        evidence = [f"next in package.json and {configs[0]} present"]
    else:
        evidence = ["next in package.json; no next.config.* (it is optional)"]
    if "next" not in dependencies:
        evidence.append("next only in devDependencies")
    layout = [f"{name}/" for name in ("app", "pages", "src") if probe.has_dir(name)]
    if layout:
        evidence.append(f"source in {', '.join(layout)}")
    spec = dependencies.get("next", dev_dependencies.get("next"))
    return _framework(
        probe,
        stack="nextjs",
        spec=spec,
        confidence=0.95 if configs else 0.9,
        claims=_NEXTJS_CLAIMS,
        evidence=evidence,
    )


_PACKAGE_OF = {"nextjs": "next", "express": "express"}


def _framework(
    probe: SiteProbe,
    *,
    stack: str,
    spec: Any,
    confidence: float,
    claims: tuple[str, ...],
    evidence: list[str],
) -> Detection:
    version, where = _package_version(probe, _PACKAGE_OF[stack], spec)
    evidence.extend(where)
    return Detection(
        stack=stack, version=version, confidence=confidence, evidence=evidence, claims=claims
    )


def _package_version(probe: SiteProbe, name: str, spec: Any) -> tuple[str | None, list[str]]:
    """The version of npm package ``name``: installed, else locked, else from its range."""
    notes: list[str] = []
    installed = f"node_modules/{name}/package.json"
    if probe.exists(installed):
        manifest, problem = _json_object(probe, installed)
        version = installed_package_version(manifest)
        if version is not None:
            return version, [*notes, f"version {version} installed ({installed})"]
        notes.append(problem or f"no version in {installed}")
    version, lock = lock_file_version(probe, name)
    if version is not None:
        return version, [*notes, f"version {version} pinned by {lock}"]
    version = version_from_range(spec)
    if version is not None:
        return version, [*notes, f"version from range {spec} in package.json (not installed "
                         "and no lock file pins it)"]  # fmt: skip
    return None, [*notes, f"version unknown ({name} {spec!r} in package.json)"]
