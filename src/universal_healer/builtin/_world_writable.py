"""The ``file_permissions`` check's scan for world-writable paths, for one root or many at once.

One ``find`` per application root is one process per application, and over SSH the largest
share of a diagnosis. :class:`WorldWritable` is the scan as a
:class:`~universal_healer.checks.HostQuery`: the roots asked of a host at the same time go to
ONE ``find`` with every root as a starting point, each record tagged with its starting point
(``%H``), and each root's answer rebuilt exactly as its own ``find`` would have given it.

Whenever the shared ``find`` cannot vouch for a root, that root is scanned on its own: the
roots an error message names (or every root, when a message names none of them), and every
root when the shared ``find`` timed out or said more than its output cap.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import ClassVar

import attrs

from universal_healer.checks import HostQuery
from universal_healer.exceptions import CommandTimeoutError
from universal_healer.hosts.base import CommandResult, Host

__all__ = ["WorldWritable", "WritableScan"]

# World-writable, not a symlink (its mode means nothing), not a sticky directory (a shared tmp/).
_EXPRESSION = (
    "-xdev",
    "(", "-perm", "-0002", "!", "-type", "l",
    "!", "(", "-type", "d", "-perm", "-1000", ")", ")",
)  # fmt: skip
_MAX_BATCH_OUTPUT = 32 * 1024 * 1024
_QUOTES = ("\u2018", "'", '"')  # how find quotes a path in its messages (UTF-8 locale, C, ...)
_CLOSING = ("\u2019", "'", '"')


def _shown(path: bytes) -> str:
    return path.decode("utf-8", errors="backslashreplace")


@attrs.frozen(kw_only=True)
class WritableScan:
    """What ``find`` reported for one root: world-writable paths (relative, display-safe)
    and its troubles."""

    paths: tuple[str, ...]
    complete: bool
    truncated: bool
    errors: tuple[str, ...]
    find_missing: bool = False


@attrs.frozen(kw_only=True)
class WorldWritable(HostQuery[str, WritableScan]):
    """World-writable paths under absolute roots (``find -H ROOT... -xdev``).

    :param scan_timeout_s: seconds for one root's own ``find``.
    :param batch_timeout_s: seconds for the shared ``find`` of many roots; past it, each root
        is scanned on its own.
    :param max_output: bytes of one root's records kept; past it the root is ``truncated``.
    """

    max_keys: ClassVar[int] = 32

    scan_timeout_s: float
    batch_timeout_s: float
    max_output: int

    async def answer(self, host: Host, keys: Sequence[str]) -> Mapping[str, WritableScan]:
        """Scan every root: together when the shared ``find`` can vouch for it, else alone."""
        roots = list(keys)
        if len(roots) == 1:
            return {roots[0]: await self.scan_one(host, roots[0])}
        vouched: dict[str, WritableScan] = {}
        try:
            done = await host.run(
                ("find", "-H", *roots, *_EXPRESSION, "-printf", "%H\\0%P\\0"),
                timeout=self.batch_timeout_s,
                max_output=min(_MAX_BATCH_OUTPUT, len(roots) * (self.max_output + 4096)),
            )
        except CommandTimeoutError:
            pass
        else:
            vouched = self._split(roots, done)
        alone = [root for root in roots if root not in vouched]
        scans = await asyncio.gather(*(self.scan_one(host, root) for root in alone))
        return {**vouched, **dict(zip(alone, scans, strict=True))}

    async def scan_one(self, host: Host, root: str) -> WritableScan:
        """One root's own ``find``."""
        done = await host.run(
            ("find", "-H", root, *_EXPRESSION, "-printf", "%P\\0"),
            timeout=self.scan_timeout_s,
            max_output=self.max_output,
        )
        errors = done.stderr.decode("utf-8", errors="backslashreplace").splitlines()
        return WritableScan(
            paths=self._paths(done.stdout),
            complete=done.ok,
            truncated=done.truncated,
            errors=tuple(line for line in errors if line.strip())[:5],
            find_missing=done.exit_status == 127 and not done.stdout,
        )

    def _paths(self, stdout: bytes) -> tuple[str, ...]:
        records = sorted(stdout.split(b"\0")[:-1])  # the last piece is empty or cut short
        return tuple(_shown(record or b".") for record in records)

    def _split(self, roots: list[str], done: CommandResult) -> dict[str, WritableScan]:
        """The roots the shared ``find`` vouches for, each with exactly its own answer."""
        if done.truncated or done.exit_status == 127:
            return {}
        pieces = done.stdout.split(b"\0")
        if len(pieces) % 2 != 1 or pieces[-1]:
            return {}
        found: dict[bytes, list[bytes]] = {os.fsencode(root): [] for root in roots}
        for start, record in zip(pieces[0:-1:2], pieces[1:-1:2], strict=True):
            if start not in found:
                return {}
            found[start].append(record)
        doubtful = set() if done.ok else _named_in(roots, done.stderr)
        vouched = {}
        for root in roots:
            if root in doubtful:
                continue
            # Exactly what the root's own find would have printed, cut at the same cap.
            stdout = b"".join(record + b"\0" for record in found[os.fsencode(root)])
            vouched[root] = WritableScan(
                paths=self._paths(stdout[: self.max_output]),
                complete=True,
                truncated=len(stdout) > self.max_output,
                errors=(),
            )
        return vouched


def _named_in(roots: Sequence[str], stderr: bytes) -> set[str]:
    """The roots ``find``'s error messages may be about: those a message's path starts in,
    or every root when a message (or the lack of one) names no root we can recognise."""
    text = stderr.decode("utf-8", errors="surrogateescape")
    if any(_escaped(root) for root in roots):
        return set(roots)  # find escapes such a name in its messages: no telling
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return set(roots)  # a failure that says nothing (a signal, say) names no root
    named: set[str] = set()
    for line in lines:
        rest = line.removeprefix("find: ")
        if rest == line or not rest.startswith(_QUOTES):
            return set(roots)
        path = rest[1:]
        these = {
            root
            for root in roots
            if path.startswith(root) and path[len(root) : len(root) + 1] in ("/", *_CLOSING)
        }
        if not these:
            return set(roots)
        named |= these
    return named


def _escaped(root: str) -> bool:
    return not root.isprintable() or any(char in root for char in (*_QUOTES, *_CLOSING, "\\"))
