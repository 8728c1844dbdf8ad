"""The shared checks: what every application needs whatever its stack.

Their names are a public contract (results, strategies and approvals refer to them):

==================== ========== ======== ===================================================
name                 category   severity looks at
==================== ========== ======== ===================================================
``disk_space``       SYSTEM     MEDIUM   space on the filesystem holding the application
``inode_usage``      SYSTEM     MEDIUM   inodes on that filesystem
``memory_usage``     SYSTEM     LOW      the host's memory in use
``cpu_load``         SYSTEM     LOW      the host's 5-minute load average per core
``file_permissions`` SECURITY   HIGH     world-writable paths, world-readable secret files
==================== ========== ======== ===================================================

Thresholds are class attributes: tune them by subclassing (``warn_above``, ``fail_above``) and
returning the subclass from a plugin of your own. A value equal to a threshold is still below it.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from collections.abc import Hashable, Iterable
from typing import Any, ClassVar

import attrs

from universal_healer.builtin._world_writable import WorldWritable, WritableScan
from universal_healer.checks import CheckContext, DiagnosticCheck, HostQuery
from universal_healer.hosts.base import MountUsage
from universal_healer.model import (
    Application,
    CheckCategory,
    CheckResult,
    CheckStatus,
    RiskLevel,
    StackInfo,
)

__all__ = [
    "SHARED_CHECKS",
    "CpuLoadCheck",
    "DiskSpaceCheck",
    "FilePermissionsCheck",
    "InodeUsageCheck",
    "MemoryUsageCheck",
]


def _grade(value: float, warn_above: float, fail_above: float) -> CheckStatus:
    if value > fail_above:
        return CheckStatus.FAIL
    if value > warn_above:
        return CheckStatus.WARN
    return CheckStatus.PASS


def _shown(path: str | bytes) -> str:
    """A path fit for a message: undecodable bytes as ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def _size(count: int) -> str:
    """A byte count for people: ``512 B``, ``1.5 GiB``."""
    if count < 1024:
        return f"{count} B"
    units = ("KiB", "MiB", "GiB", "TiB", "PiB")
    value, index = count / 1024, 0
    while value >= 1024 and index < len(units) - 1:
        value, index = value / 1024, index + 1
    return f"{value:.1f} {units[index]}"


class _ThresholdCheck(DiagnosticCheck):
    """A check that grades one percentage (or ratio) against a WARN and a FAIL threshold.

    :cvar warn_above: WARN when the value is strictly above this.
    :cvar fail_above: FAIL when the value is strictly above this.
    """

    category = CheckCategory.SYSTEM
    warn_above: ClassVar[float]
    fail_above: ClassVar[float]

    def graded(
        self,
        ctx: CheckContext,
        value: float,
        message: str,
        *,
        suggested_fix: str,
        details: dict[str, Any],
    ) -> CheckResult:
        """The result for ``value``, with the fix only when it is not a PASS."""
        status = _grade(value, self.warn_above, self.fail_above)
        fix = None if status is CheckStatus.PASS else suggested_fix
        return ctx.result(status, message, details=details, suggested_fix=fix)


async def _app_mount(ctx: CheckContext) -> MountUsage | None:
    return (await ctx.facts()).mount_for(ctx.app.path)


def _mount_details(mount: MountUsage) -> dict[str, Any]:
    return {
        "mountpoint": _shown(mount.mountpoint),
        "fstype": mount.fstype,
        "used_percent": round(mount.used_percent, 2),
        "free_bytes": mount.free_bytes,
        "total_bytes": mount.total_bytes,
    }


class DiskSpaceCheck(_ThresholdCheck):
    """Space used on the filesystem that holds the application root.

    WARN above 80 %, FAIL above 90 %, measured against what unprivileged users can still
    write: the blocks reserved for root count as used.
    """

    name = "disk_space"
    severity = RiskLevel.MEDIUM
    description = "Free space on the filesystem holding the application"
    warn_above = 80.0
    fail_above = 90.0

    async def run(self, ctx: CheckContext) -> CheckResult:
        """Grade the used space of the application's mount."""
        mount = await _app_mount(ctx)
        if mount is None:
            return ctx.error(f"no mounted filesystem found for {ctx.app.display_path}")
        return self.graded(
            ctx,
            mount.used_percent,
            f"disk {mount.used_percent:.1f} % used on {_shown(mount.mountpoint)} "
            f"({_size(mount.free_bytes)} free of {_size(mount.total_bytes)})",
            suggested_fix=f"Free space on {_shown(mount.mountpoint)} (old logs, caches, backups, "
            "release directories) or grow the filesystem",
            details=_mount_details(mount),
        )


class InodeUsageCheck(_ThresholdCheck):
    """Inodes used on the filesystem that holds the application root.

    WARN above 80 %, FAIL above 90 %. Filesystems that allocate inodes on demand (btrfs, XFS
    on some kernels, ZFS) report no inode table: that is a PASS with a note.
    """

    name = "inode_usage"
    severity = RiskLevel.MEDIUM
    description = "Free inodes on the filesystem holding the application"
    warn_above = 80.0
    fail_above = 90.0

    async def run(self, ctx: CheckContext) -> CheckResult:
        """Grade the used inodes of the application's mount."""
        mount = await _app_mount(ctx)
        if mount is None:
            return ctx.error(f"no mounted filesystem found for {ctx.app.display_path}")
        where = _shown(mount.mountpoint)
        if not mount.total_inodes:
            return ctx.passed(
                f"{where} ({mount.fstype}) has no fixed inode table",
                mountpoint=where,
                fstype=mount.fstype,
                note="inodes are allocated on demand; nothing to run out of",
            )
        return self.graded(
            ctx,
            mount.inodes_used_percent,
            f"inodes {mount.inodes_used_percent:.1f} % used on {where}",
            suggested_fix=f"Remove many small files on {where} (cache entries, sessions, "
            "mail queues) or recreate the filesystem with more inodes",
            details={
                "mountpoint": where,
                "fstype": mount.fstype,
                "inodes_used_percent": round(mount.inodes_used_percent, 2),
                "free_inodes": mount.free_inodes,
                "total_inodes": mount.total_inodes,
            },
        )


class MemoryUsageCheck(_ThresholdCheck):
    """Memory in use on the host, counting reclaimable cache as available (as ``free`` does).

    WARN above 85 %, FAIL above 95 %.
    """

    name = "memory_usage"
    severity = RiskLevel.LOW
    description = "Memory in use on the host"
    warn_above = 85.0
    fail_above = 95.0

    async def run(self, ctx: CheckContext) -> CheckResult:
        """Grade the host's memory in use."""
        facts = await ctx.facts()
        used = facts.memory_used_percent
        return self.graded(
            ctx,
            used,
            f"memory {used:.1f} % used ({_size(facts.memory_available_bytes)} available "
            f"of {_size(facts.memory_total_bytes)})",
            suggested_fix="Find the processes using the most memory (ps aux --sort=-rss); "
            "restart leaking workers, lower worker counts or add memory",
            details={
                "used_percent": round(used, 2),
                "available_bytes": facts.memory_available_bytes,
                "total_bytes": facts.memory_total_bytes,
            },
        )


class CpuLoadCheck(_ThresholdCheck):
    """The host's 5-minute load average divided by its number of CPUs.

    WARN above 1.5 per core, FAIL above 3.0 per core. The 5-minute figure smooths out a
    short burst (a deploy, a cron job) without hiding a sustained overload.
    """

    name = "cpu_load"
    severity = RiskLevel.LOW
    description = "Load average per CPU core on the host"
    warn_above = 1.5
    fail_above = 3.0

    async def run(self, ctx: CheckContext) -> CheckResult:
        """Grade the 5-minute load per core."""
        facts = await ctx.facts()
        cores = max(facts.cpu_count, 1)
        one, five, fifteen = facts.load_average
        per_core = five / cores
        return self.graded(
            ctx,
            per_core,
            f"5-minute load {five:.2f} on {cores} CPU(s): {per_core:.2f} per core",
            suggested_fix="Find what keeps the CPUs busy (top, ps aux --sort=-pcpu); "
            "look for runaway workers or cron jobs, or add CPUs",
            details={
                "load_1m": one,
                "load_5m": five,
                "load_15m": fifteen,
                "cpu_count": facts.cpu_count,
                "load_per_core": round(per_core, 3),
            },
        )


@attrs.frozen(kw_only=True)
class _SecretModes:
    """Secret files other users can read, and those that are symlinks (not followed)."""

    exposed: tuple[str, ...]
    links: tuple[str, ...]


class FilePermissionsCheck(DiagnosticCheck):
    """World-writable paths under the application root, and secret files others can read.

    The scan runs GNU ``find`` on the host with the root as one argument (never through a
    shell), stays on the root's filesystem (``-xdev``), follows the root itself when it is a
    symlink (``-H``, as with a ``current`` release link) but no link below it, and skips
    directories with the sticky bit (a shared ``tmp/`` is fine). Secret files are the stack's
    :attr:`~universal_healer.model.StackInfo.secret_files` plus ``.env``; only their modes are
    looked at, never their contents. A secret file that is a symlink is reported as not
    followed.

    The scans of the applications diagnosed together on one host share one ``find``
    (:class:`~universal_healer.builtin._world_writable.WorldWritable`, a host-wide query); each
    root still gets exactly the answer its own ``find`` would give, and is scanned on its own
    whenever the shared one cannot vouch for it.

    :cvar max_examples: at most this many paths are listed in the details.
    :cvar scan_timeout_s: seconds before one root's own ``find`` is killed.
    :cvar batch_timeout_s: seconds before the shared ``find`` of many roots is killed (each of
        them is then scanned on its own).
    :cvar max_output: bytes of ``find`` output kept; past it the count is a lower bound.
    """

    name = "file_permissions"
    category = CheckCategory.SECURITY
    severity = RiskLevel.HIGH
    description = "No world-writable files, and no secret files readable by other users"
    max_examples: ClassVar[int] = 20
    scan_timeout_s: ClassVar[float] = 25.0
    batch_timeout_s: ClassVar[float] = 10.0
    max_output: ClassVar[int] = 1024 * 1024
    # The shared find, then the root's own if need be, and the time to judge.
    timeout: ClassVar[float | None] = batch_timeout_s + scan_timeout_s + 5.0

    async def run(self, ctx: CheckContext) -> CheckResult:
        """Scan the root and stat the secret files, then judge both together."""
        # An absolute root starts with "/", so find can never take it for an option.
        root = await ctx.host.stat(ctx.app.path) if os.path.isabs(ctx.app.path) else None
        if root is None or not (root.is_dir or root.is_link):
            return ctx.error(f"application root {ctx.app.display_path} is not a directory")
        scan, secrets = await asyncio.gather(self._scan(ctx), self._secrets(ctx))
        if scan.find_missing:
            return ctx.error("GNU find is not installed on the host", scan_errors=list(scan.errors))
        return self._verdict(ctx, scan, secrets)

    def queries(
        self, app: Application, stack: StackInfo | None
    ) -> Iterable[tuple[HostQuery[Any, Any], Hashable]]:
        """The scan of the application's root, to be asked with every other root of the host."""
        return [(self._query(), app.path)] if os.path.isabs(app.path) else []

    def _query(self) -> WorldWritable:
        return WorldWritable(
            scan_timeout_s=self.scan_timeout_s,
            batch_timeout_s=self.batch_timeout_s,
            max_output=self.max_output,
        )

    async def _scan(self, ctx: CheckContext) -> WritableScan:
        return await ctx.ask(self._query(), ctx.app.path)

    async def _secrets(self, ctx: CheckContext) -> _SecretModes:
        declared = ctx.stack.secret_files if ctx.stack is not None else ()
        names = list(dict.fromkeys((*declared, ".env")))
        stats = await asyncio.gather(*(ctx.host.stat(ctx.path(name)) for name in names))
        exposed: list[str] = []
        links: list[str] = []
        for name, info in zip(names, stats, strict=True):
            if info is None:
                continue
            if info.is_link:
                links.append(_shown(name))  # lstat cannot tell what the target allows
            elif info.mode & 0o004:
                exposed.append(_shown(name))
        return _SecretModes(exposed=tuple(exposed), links=tuple(links))

    def _verdict(self, ctx: CheckContext, scan: WritableScan, secrets: _SecretModes) -> CheckResult:
        complete = scan.complete and not scan.truncated
        details: dict[str, Any] = {
            "world_writable_count": len(scan.paths),
            "world_writable": list(scan.paths[: self.max_examples]),
            "world_readable_secrets": list(secrets.exposed),
            "scan_complete": complete,
        }
        if secrets.links:
            details["secret_links_not_followed"] = list(secrets.links)
        if not scan.complete:
            details["scan_errors"] = list(scan.errors)
        if scan.truncated:
            details["note"] = "find output was cut short: the count is a lower bound"
        found = []
        if scan.paths:
            more = "+" if scan.truncated else ""
            found.append(f"{len(scan.paths)}{more} world-writable path(s)")
        if secrets.exposed:
            found.append(f"secret file(s) readable by others: {', '.join(secrets.exposed)}")
        if found:
            message = "; ".join(found) + ("" if complete else " (scan incomplete)")
            return ctx.fail(message, suggested_fix=self._fix(ctx, scan, secrets), **details)
        if not complete:
            return ctx.warn(
                "no world-writable paths in the part of the root that could be read",
                suggested_fix="Run the healer as a user that can read the whole application root",
                **details,
            )
        return ctx.passed("no world-writable paths and no exposed secret files", **details)

    def _fix(self, ctx: CheckContext, scan: WritableScan, secrets: _SecretModes) -> str:
        root = ctx.app.display_path
        steps = []
        if scan.paths:
            steps.append(
                f"Remove write permission for others under {shlex.quote(root)} "
                "(chmod o-w on each listed path; keep the sticky bit on shared tmp directories)"
            )
        if secrets.exposed:
            files = " ".join(shlex.quote(os.path.join(root, name)) for name in secrets.exposed)
            steps.append(f"chmod 640 {files}")
        return "; ".join(steps)


SHARED_CHECKS: tuple[type[DiagnosticCheck], ...] = (
    CpuLoadCheck,
    DiskSpaceCheck,
    FilePermissionsCheck,
    InodeUsageCheck,
    MemoryUsageCheck,
)
"""The shared check classes, sorted by check name."""
