"""File checks: permissions as a web server needs them, PHP where only media belongs, and the
``eval(base64_decode(...))`` pattern of injected code. Each runs one ``find`` or ``grep`` on the
host with paths as arguments (never through a shell)."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

from healer_wordpress import site
from healer_wordpress._base import WordPressCheck, content_dir, relative
from universal_healer.checks import CheckContext
from universal_healer.model import CheckCategory, CheckResult, RiskLevel

__all__ = ["FileEvalCheck", "FilePermissionsCheck", "PhpInUploadsCheck", "uploads_dir"]

_EVAL = r"eval[[:space:]]*\(.*base64_decode[[:space:]]*\("  # wp doctor's file-eval pattern
_MAX_FIX = 500  # world-writable paths the healer fixes in one action; past it, a person decides
_SHOWN = 20
# WordPress writes here at run time; everything else it only needs to read.
_WRITABLE = ("uploads", "cache", "upgrade", "upgrade-temp-backup")


def uploads_dir(ctx: CheckContext, config: site.LoadedConfig) -> str:
    """``UPLOADS`` (relative to the root) when set plainly, else ``wp-content/uploads``."""
    value = config.settings.get("UPLOADS")
    if isinstance(value, str) and value and not value.startswith("/") and ".." not in value:
        return ctx.path(value.strip("/"))
    return posixpath.join(content_dir(ctx, config), "uploads")


@attrs.frozen(kw_only=True)
class _Entry:
    path: str  # relative to the root
    mode: int
    uid: int
    gid: int
    kind: str  # find's %y: f, d, ...


@attrs.frozen(kw_only=True)
class _Scan:
    entries: tuple[_Entry, ...]
    complete: bool


async def _world_writable(ctx: CheckContext) -> _Scan:
    argv = (
        "find", "-H", ctx.app.path, "-xdev",
        "(", "-perm", "-0002", "!", "-type", "l",
        "!", "(", "-type", "d", "-perm", "-1000", ")", ")",
        "-printf", "%m %U %G %y %P\\0",
    )  # fmt: skip
    done = await ctx.host.run(argv, timeout=25, max_output=4 << 20)
    entries = []
    for record in done.stdout.split(b"\0")[:-1]:
        mode, uid, gid, kind, path = record.decode("utf-8", "surrogateescape").split(" ", 4)
        entries.append(
            _Entry(path=path or ".", mode=int(mode, 8), uid=int(uid), gid=int(gid), kind=kind)
        )
    return _Scan(entries=tuple(entries), complete=done.ok and not done.truncated)


def _needs_write(path: str, content: str) -> bool:
    return any(path == f"{content}/{d}" or path.startswith(f"{content}/{d}/") for d in _WRITABLE)


def _keeps_access(web: site.WebUser | None, entry: _Entry, content: str) -> bool:
    """Whether the web server keeps the access it needs once others lose write permission."""
    if web is None:
        return False
    after = entry.mode & ~0o002
    if _needs_write(entry.path, content):
        return web.can(after, entry.uid, entry.gid, 2)
    return web.can(after, entry.uid, entry.gid, 4)


def _shown(paths: Sequence[str]) -> str:
    more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
    return ", ".join(paths[:3]) + more


class FilePermissionsCheck(WordPressCheck):
    """wp-config.php is not world-readable, nothing is world-writable, and the web server can
    write the uploads directory."""

    name = "wp_file_permissions"
    category = CheckCategory.SECURITY
    severity = RiskLevel.HIGH
    description = "wp-config.php not world-readable; nothing world-writable; uploads writable"

    async def judge(self, ctx: CheckContext, config: site.LoadedConfig) -> CheckResult:
        """Stat wp-config.php and the uploads directory, scan for world-writable paths, and
        say whether a chmod can fix it all without locking the web server out."""
        web = await site.web_user(ctx.host, ctx.app)
        info = await ctx.host.stat(config.path)
        scan = await _world_writable(ctx)
        uploads = uploads_dir(ctx, config)
        up = await ctx.host.stat(uploads)
        content = relative(ctx, content_dir(ctx, config))
        config_rel = relative(ctx, config.path)
        exposed = info is not None and not info.is_link and bool(info.mode & 0o004)
        config_fixable = (
            exposed
            and info is not None
            and web is not None
            and web.can(0o640, info.uid, info.gid, 4)
            and not config_rel.startswith("/")
        )
        writable = [e.path for e in scan.entries]
        unsafe = [e.path for e in scan.entries if not _keeps_access(web, e, content)]
        uploads_ok = up is None or (web is not None and web.can(up.mode, up.uid, up.gid, 2))
        details: dict[str, Any] = {
            "web_user": web.name if web else None,
            "wp_config": config_rel,
            "wp_config_mode": f"{info.mode & 0o7777:04o}" if info else None,
            "world_writable_count": len(writable),
            "world_writable": writable[:_SHOWN],
            "scan_complete": scan.complete,
            "uploads": relative(ctx, uploads),
            "uploads_writable": uploads_ok if up is not None else None,
            "fix_config": config_fixable,
            "fix_paths": writable if not unsafe and len(writable) <= _MAX_FIX else [],
        }
        details["healable"] = (
            (not exposed or config_fixable)
            and (not writable or bool(details["fix_paths"]))
            and uploads_ok
            and scan.complete
        )
        problems = []
        if exposed:
            problems.append(f"{config_rel} is readable by every user ({details['wp_config_mode']})")
        if writable:
            problems.append(f"{len(writable)} world-writable path(s): {_shown(writable)}")
        if not uploads_ok:
            who = web.name if web else "the web server (no web server user found)"
            problems.append(f"{relative(ctx, uploads)} is not writable by {who}")
        if not problems:
            return ctx.passed(
                "wp-config.php is private, nothing is world-writable, uploads are writable",
                **details,
            )
        return ctx.fail("; ".join(problems), suggested_fix=self._fix(details, unsafe), **details)

    def _fix(self, details: dict[str, Any], unsafe: Sequence[str]) -> str:
        steps = []
        web = details["web_user"] or "the web server's user"
        if details["wp_config_mode"] and int(details["wp_config_mode"], 8) & 0o004:
            steps.append(
                f"chmod 640 {details['wp_config']}"
                if details["fix_config"]
                else f"chgrp {web} {details['wp_config']} and chmod 640 it"
            )
        if details["world_writable_count"]:
            steps.append(
                "chmod o-w the world-writable paths"
                if not unsafe
                else f"chown/chgrp {_shown(list(unsafe))} to {web} first, then chmod o-w"
            )
        if details["uploads_writable"] is False:
            steps.append(f"make {details['uploads']} writable by {web} (chown or chgrp + g+w)")
        return "; ".join(steps)


class PhpInUploadsCheck(WordPressCheck):
    """No PHP in the uploads directory, where only media belongs (a classic backdoor spot)."""

    name = "wp_php_in_uploads"
    category = CheckCategory.SECURITY
    severity = RiskLevel.HIGH
    description = "no .php, .phtml or .phar file under the uploads directory"

    async def judge(self, ctx: CheckContext, config: site.LoadedConfig) -> CheckResult:
        """``find`` PHP files under the uploads directory."""
        uploads = uploads_dir(ctx, config)
        if await ctx.host.stat(uploads) is None:
            return ctx.passed("no uploads directory yet", uploads=relative(ctx, uploads))
        argv = (
            "find", uploads, "-xdev", "-type", "f", "(",
            "-iname", "*.php", "-o", "-iname", "*.php[0-9]", "-o", "-iname", "*.phtml",
            "-o", "-iname", "*.phar", ")", "-printf", "%P\\0",
        )  # fmt: skip
        done = await ctx.host.run(argv, timeout=25, max_output=1 << 20)
        found = sorted(p.decode("utf-8", "backslashreplace") for p in done.stdout.split(b"\0")[:-1])
        details = {
            "uploads": relative(ctx, uploads),
            "php_files": found[:_SHOWN],
            "count": len(found),
        }
        if found:
            return ctx.warn(
                f"{len(found)} PHP file(s) under {relative(ctx, uploads)}: {_shown(found)}",
                suggested_fix="look at them: uploads should hold media only; remove what is "
                "not yours and block PHP there in the web server",
                **details,
            )
        return ctx.passed(f"no PHP under {relative(ctx, uploads)}", **details)


class FileEvalCheck(WordPressCheck):
    """No ``eval(base64_decode(...))`` in the site's PHP under wp-content (injected code)."""

    name = "wp_file_eval"
    category = CheckCategory.SECURITY
    severity = RiskLevel.HIGH
    description = "no PHP file under wp-content runs eval(base64_decode(...))"
    timeout: ClassVar[float | None] = 60.0

    async def judge(self, ctx: CheckContext, config: site.LoadedConfig) -> CheckResult:
        """``grep`` the PHP files under the content directory for the pattern."""
        content = content_dir(ctx, config)
        argv = (
            "grep", "-rlIZE", "--include=*.php", "-e", _EVAL, "--", content,
        )  # fmt: skip
        done = await ctx.host.run(argv, timeout=55, max_output=1 << 20)
        if done.exit_status > 1:
            said = done.stderr.decode("utf-8", "replace").strip().splitlines()
            return ctx.error(f"grep failed: {said[-1] if said else done.exit_status}")
        found = sorted(relative(ctx, os.fsdecode(p)) for p in done.stdout.split(b"\0") if p.strip())
        details = {"files": found[:_SHOWN], "count": len(found)}
        if found:
            return ctx.warn(
                f"{len(found)} PHP file(s) run eval(base64_decode(...)): {_shown(found)}",
                suggested_fix="compare them with clean copies of the plugin or theme: this is "
                "how injected code usually hides",
                **details,
            )
        return ctx.passed("no eval(base64_decode(...)) under wp-content", **details)
