"""The Deno plugin's diagnostic checks, and :data:`CHECKS`, the catalogue of them.

Each check does its own I/O through ``ctx.host`` (local or SSH alike) and reports a finding;
none heals anything.
"""

from __future__ import annotations

from universal_healer.checks import CheckContext, DiagnosticCheck
from universal_healer.model import CheckCategory, CheckResult, RiskLevel

from healer_deno import config

__all__ = ["CHECKS", "DenoConfigValid", "DenoLockfile"]


class DenoConfigValid(DiagnosticCheck):
    """Deno refuses to start on a configuration file it cannot parse."""

    name = "deno_config_valid"
    category = CheckCategory.CONFIGURATION
    severity = RiskLevel.MEDIUM
    description = "deno.json (or deno.jsonc) is there and is a valid JSON object"

    async def run(self, ctx: CheckContext) -> CheckResult:
        """Read the configuration files afresh and parse the one Deno would use."""
        paths = {name: ctx.path(name) for name in config.CONFIG_FILES}
        reads = await ctx.host.read_files(list(paths.values()), max_bytes=config.MAX_BYTES)
        for name, path in paths.items():
            read = reads.get(path)
            if read is None or read.error == "missing":
                continue
            parsed = config.parse(name, read.data, truncated=read.truncated, error=read.error)
            if parsed.problem is not None:
                return ctx.fail(
                    parsed.problem,
                    suggested_fix=f"correct {name}: Deno will not start with it as it is",
                    file=name,
                )
            return ctx.passed(f"{name} is valid", file=name)
        return ctx.fail(
            "neither deno.json nor deno.jsonc is there",
            suggested_fix="restore the project's deno.json, or pin the application to "
            "another stack with `healer pin`",
        )


class DenoLockfile(DiagnosticCheck):
    """Without ``deno.lock`` a fresh install may fetch other versions than were tested."""

    name = "deno_lockfile"
    category = CheckCategory.CONFIGURATION
    severity = RiskLevel.LOW
    description = "deno.lock pins the versions of the application's dependencies"

    async def run(self, ctx: CheckContext) -> CheckResult:
        """Look for ``deno.lock`` unless the configuration turns the lock file off."""
        if ctx.probe is not None and config.lock_disabled(ctx.probe):
            return ctx.passed('the lock file is turned off ("lock": false)')
        found = await ctx.host.stat(ctx.path("deno.lock"))
        if found is None:
            return ctx.warn(
                "no deno.lock: dependency versions are not locked",
                suggested_fix="run `deno install` in the application root and keep deno.lock "
                "with the code",
            )
        if found.is_dir:
            return ctx.fail("deno.lock is a directory, not a lock file")
        return ctx.passed("deno.lock is there", size=found.size)


CHECKS: tuple[type[DiagnosticCheck], ...] = (DenoConfigValid, DenoLockfile)
"""Every check this plugin has; ``healer_get_checks`` returns one of each for Deno apps."""
