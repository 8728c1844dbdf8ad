"""The Deno plugin's hooks: declarations only, a few lines each.

Registered through the entry point ``[project.entry-points.universal_healer] deno =
"healer_deno.plugin"``; the work is done by :mod:`healer_deno.config` (pure) and the checks.
"""

from __future__ import annotations

from collections.abc import Sequence

from universal_healer.checks import DiagnosticCheck
from universal_healer.hookspecs import hookimpl
from universal_healer.model import Detection, ProbeFile, SiteProbe, StackInfo

from healer_deno import STACK_ID, config
from healer_deno.checks import CHECKS


@hookimpl
def healer_stacks() -> Sequence[StackInfo]:
    """Deno: an application stack of its own, with its secrets in ``.env``."""
    return [StackInfo(id=STACK_ID, display_name="Deno", secret_files=(".env",))]


@hookimpl
def healer_probe_files() -> Sequence[ProbeFile]:
    """``deno.json`` and ``deno.jsonc`` both mark a Deno project root."""
    return [
        ProbeFile(path=name, marker=True, max_bytes=config.MAX_BYTES)
        for name in config.CONFIG_FILES
    ]


@hookimpl
def healer_detect(probe: SiteProbe) -> Detection | None:
    """A root with a Deno configuration file is a Deno app; a broken one, probably."""
    name = config.config_file(probe)
    if name is None:
        return None
    read = config.read_probe(probe, name)
    if read.problem is not None:
        return Detection(stack=STACK_ID, confidence=0.3, evidence=(f"has {name}", read.problem))
    version = config.std_version(read.value)
    pinned = (f"imports the Deno standard library {version}",) if version else ()
    return Detection(
        stack=STACK_ID, version=version, confidence=0.9, evidence=(f"has {name}", *pinned)
    )


@hookimpl
def healer_get_checks(stack: StackInfo) -> Sequence[DiagnosticCheck]:
    """The checks in :data:`healer_deno.checks.CHECKS`, for Deno applications only."""
    return [check() for check in CHECKS] if stack.id == STACK_ID else []
