"""Recognising a WordPress root from its probe, without I/O.

=========================================================  ==========  =======================
what the root holds                                        confidence  said
=========================================================  ==========  =======================
``wp-config.php``, ``wp-content/`` and ``wp-includes/``    0.97        installed
``wp-config.php`` and ``wp-includes/``, no ``wp-content/`` 0.85        content moved elsewhere
``wp-includes/`` with ``wp-content/`` or the sample only   0.65        uninstalled WordPress
=========================================================  ==========  =======================

Core's fallback signature says 0.95 for the first case: this plugin's answer wins and carries
more evidence (multisite mode, how dynamic ``wp-config.php`` is). The version comes from
``wp-includes/version.php``, read as PHP source, never run.
"""

from __future__ import annotations

from collections.abc import Sequence

from healer_wordpress import STACK_ID, php, versions, wpconfig
from universal_healer.model import Detection, ProbeFile, SiteProbe

__all__ = ["CLAIMS", "PROBE_FILES", "detect"]

CLAIMS = ("wp-content", "wp-admin", "wp-includes")
"""Directories a WordPress site owns: a candidate root inside them is part of the site."""

PROBE_FILES = (
    ProbeFile(path="wp-config.php", marker=True, max_bytes=256 * 1024),
    ProbeFile(path="wp-config-sample.php", marker=True, max_bytes=64 * 1024),
    ProbeFile(path="wp-includes/version.php", max_bytes=64 * 1024),
)
"""What discovery reads from every candidate root for :func:`detect`."""

INSTALLED, NO_CONTENT, UNINSTALLED = 0.97, 0.85, 0.65


def _unread(probe: SiteProbe, path: str) -> str:
    probed = probe.file(path)
    if probed is None or probed.error == "missing":
        return f"{path} missing"
    if probed.data is None:
        return f"{path} unreadable ({probed.error or 'no data'})"
    return f"no plain $wp_version in {path}"


def _version(probe: SiteProbe) -> tuple[str | None, str]:
    text = probe.text("wp-includes/version.php")
    found = versions.core_version(text).version if text is not None else None
    if found is None:
        return None, f"version unknown: {_unread(probe, 'wp-includes/version.php')}"
    return found, f"version {found} from wp-includes/version.php"


def _config_evidence(probe: SiteProbe) -> list[str]:
    """Multisite mode and how static ``wp-config.php`` is, from the probe."""
    probed = probe.file("wp-config.php")
    text = probe.text("wp-config.php")
    if text is None:
        return [f"cannot look inside: {_unread(probe, 'wp-config.php')}"]
    evidence: list[str] = []
    if probed is not None and probed.truncated:
        evidence.append("wp-config.php only read in part (it is unusually large)")
    source = php.parse(text)
    read = wpconfig.static_settings(source)
    if isinstance(read, wpconfig.Settings):
        settings = read
        evidence.append("wp-config.php settings are plain literals")
    else:
        first = read[0] if read else "it is dynamic"
        evidence.append(f"wp-config.php is dynamic ({first}): checks will ask PHP for it")
        settings = wpconfig.Settings(
            constants={
                d.name: d.value
                for d in source.defines
                if not isinstance(d.value, php.Dynamic) and not wpconfig.is_secret(d.name)
            }
        )
    evidence.extend(_multisite(settings))
    if not source.bootstraps:
        evidence.append("wp-config.php does not load wp-settings.php (not a standard config?)")
    return evidence


def _multisite(settings: wpconfig.Settings) -> Sequence[str]:
    if settings.flag("MULTISITE"):
        kind = "subdomain" if settings.flag("SUBDOMAIN_INSTALL") else "subdirectory"
        if not settings.defined("SUBDOMAIN_INSTALL"):
            kind = "network"
        return (f"multisite {kind} network (MULTISITE in wp-config.php)",)
    if settings.flag("WP_ALLOW_MULTISITE"):
        return ("multisite allowed but not set up (WP_ALLOW_MULTISITE in wp-config.php)",)
    return ()


def detect(probe: SiteProbe) -> Detection | None:
    """WordPress at ``probe``'s root, or None; see the module docstring for the confidences."""
    if not probe.has_dir("wp-includes"):
        return None
    configured = probe.has_file("wp-config.php")
    content = probe.has_dir("wp-content")
    if configured and content:
        confidence = INSTALLED
        evidence = ["wp-config.php, wp-content/ and wp-includes/ present"]
    elif configured:
        confidence = NO_CONTENT
        evidence = ["wp-config.php and wp-includes/ present; no wp-content/ (WP_CONTENT_DIR?)"]
    elif content or probe.has_file("wp-config-sample.php"):
        confidence = UNINSTALLED
        evidence = [
            "uninstalled WordPress: wp-includes/ present but no wp-config.php "
            "(only the sample, or a wp-config.php one directory up)"
        ]
    else:
        return None
    version, said = _version(probe)
    evidence.append(said)
    if configured:
        evidence.extend(_config_evidence(probe))
    return Detection(
        stack=STACK_ID,
        version=version,
        confidence=confidence,
        evidence=evidence,
        claims=CLAIMS,
    )
