"""What SSHHost sends to scan and how it reads the answer: one find per root, LocalHost's walk.

:func:`scan_command` builds the one command that walks every root (globs expanded on the host)
with find, which answers in NUL-separated records; :func:`scan_result` replays LocalHost's walk
over those records, so a scan finds the same candidates and reports the same errors, in the same
order, on either kind of host. The wrapper and the helpers the scripts share are in
:mod:`universal_healer.hosts._sshwire`.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from glob import has_magic

import attrs

from universal_healer.hosts._sshwire import _WHY, _decode, describe, shown
from universal_healer.hosts.base import ScannedDir, ScanResult
from universal_healer.hosts.local import _MAX_ENTRIES

# FIND is replaced by the find expression. $1 is max_depth + 1, then pairs "glob|path" ROOT.
_SCAN_SCRIPT = (
    _WHY
    + r"""d=$1; shift
root() {
  case $1 in /*) ;; *) printf 'R relative\0'; return ;; esac
  if [ -d "$1" ]; then
    if cd -P -- "$1" 2>/dev/null; then real=$PWD; else real=$(readlink -f -- "$1"); fi
    printf 'R ok\0%s\0' "$real"
    find -P "$real/." -maxdepth "$d" FIND
    printf 'E\0'
  elif [ -e "$1" ]; then
    printf 'R notdir\0'
  else
    printf 'R error\0'; why "$1"; printf '\0'
  fi
}
i=0
while [ $# -gt 0 ]; do
  if [ "$1" = glob ]; then
    IFS=''
    for m in $2; do
      if [ -e "$m" ] || [ -L "$m" ]; then printf 'M %s\0%s\0' "$i" "$m"; root "$m"; fi
    done
    unset IFS
  else
    printf 'M %s\0%s\0' "$i" "$2"; root "$2"
  fi
  i=$((i + 1)); shift 2
done
"""
)
_SCAN_FIELDS = " %D %i %d %P\\0"


def scan_command(
    roots: Sequence[str], *, prune: frozenset[str], max_depth: int
) -> tuple[str, list[str]]:
    """The script and its arguments that walk every root, one find each.

    Each record is ``TYPE DEV INODE DEPTH RELPATH``. Directories named in ``prune`` print as
    ``p`` and are not entered; unreadable ones print as ``u`` and are not entered either (the
    walk reports them). find starts at ``ROOT/.`` so that a root named like a pruned directory
    is still walked, as LocalHost walks it.
    """
    names: list[str] = []
    for name in sorted(prune):
        names += ["-o", "-name", re.sub(r"([\\*?\[])", r"\\\1", name)]  # literal, not a glob
    pruned = ["(", "-type", "d", "(", *names[1:], ")", "-printf", "p" + _SCAN_FIELDS, "-prune", ")"]
    unreadable = ["(", "-type", "d", "!", "-readable", "-printf", "u" + _SCAN_FIELDS, "-prune", ")"]
    expression = [
        *([*pruned, "-o"] if names else []),
        *unreadable,
        "-o",
        "-printf",
        "%y" + _SCAN_FIELDS,
    ]
    script = _SCAN_SCRIPT.replace("FIND", shlex.join(expression))
    args = [str(max_depth + 1)]
    for root in roots:
        args += ["glob" if has_magic(root) else "path", root]
    return script, args


@attrs.define
class _Root:
    """One root of a scan as the remote script saw it."""

    given: str
    status: str = ""
    detail: bytes = b""
    records: list[tuple[str, int, int, str]] = attrs.field(factory=list)


def _parse_scan(data: bytes) -> dict[int, list[_Root]]:
    tokens = data.split(b"\0")
    roots: dict[int, list[_Root]] = {}
    current: _Root | None = None
    i = 0
    while i < len(tokens) - 1:
        token = tokens[i]
        i += 1
        if token.startswith(b"M "):
            current = _Root(given=_decode(tokens[i]))
            roots.setdefault(int(token[2:]), []).append(current)
            i += 1
        elif current is None or token == b"E":
            continue
        elif token.startswith(b"R "):
            current.status = token[2:].decode()
            if current.status in ("ok", "error"):
                current.detail = tokens[i]
                i += 1
        else:
            kind, dev, ino, _depth, rel = token.split(b" ", 4)
            current.records.append((kind.decode(), int(dev), int(ino), _decode(rel)))
    return roots


def scan_result(
    roots: Sequence[str],
    data: bytes,
    stderr: bytes,
    *,
    markers: frozenset[str],
    prune: frozenset[str],
    max_depth: int,
) -> ScanResult:
    """LocalHost's walk, replayed over the listing the remote finds returned: same candidates,
    same errors in the same order, same entry cap."""
    found = _parse_scan(data)
    walk = _Walk(markers=markers, prune=prune, max_depth=max_depth)
    for index, root in enumerate(roots):
        blocks = found.get(index, [])
        if has_magic(root):
            blocks = sorted(blocks, key=lambda block: block.given)  # as sorted(glob.glob())
        for block in blocks:
            name = shown(block.given)
            if not os.path.isabs(block.given):
                walk.errors.append(f"{name}: search paths must be absolute")
            elif block.status == "error":
                walk.errors.append(f"{name}: {describe(block.detail)}")
            elif block.status == "notdir":
                walk.errors.append(f"{name}: not a directory")
            elif block.status == "ok":
                walk.root(block)
    # Whatever find itself complained about (a directory that vanished, a stat that failed).
    text = stderr.decode("utf-8", errors="backslashreplace")
    walk.errors.extend(line for line in text.splitlines() if line.startswith("find: "))
    walk.candidates.sort(key=lambda c: c.path)
    return ScanResult(candidates=tuple(walk.candidates), errors=tuple(walk.errors))


@attrs.define(kw_only=True)
class _Walk:
    markers: frozenset[str]
    prune: frozenset[str]
    max_depth: int
    seen: set[tuple[int, int]] = attrs.field(factory=set)
    candidates: list[ScannedDir] = attrs.field(factory=list)
    errors: list[str] = attrs.field(factory=list)

    def root(self, block: _Root) -> None:
        real = _decode(block.detail)
        kinds: dict[str, tuple[str, int, int]] = {}
        children: dict[str, list[tuple[str, str]]] = {}
        for kind, dev, ino, rel in block.records:
            kinds[rel] = (kind, dev, ino)
            if rel:
                parent, _, name = rel.rpartition("/")
                children.setdefault(parent, []).append((name, kind))
        stack: list[tuple[str, int]] = [("", 0)]
        while stack:
            rel, depth = stack.pop()
            path = os.path.join(real, rel) if rel else real
            if rel not in kinds:
                self.errors.append(f"{shown(path)}: cannot be read")
                continue
            kind, dev, ino = kinds[rel]
            if (dev, ino) in self.seen:
                continue
            self.seen.add((dev, ino))
            if kind == "u":
                self.errors.append(f"{shown(path)}: permission denied")
                continue
            entries: set[str] = set()
            subdirs: list[str] = []
            truncated = False
            for name, child in children.get(rel, ()):
                is_dir = child in ("d", "p", "u")
                if len(entries) < _MAX_ENTRIES or name in self.markers:
                    entries.add(name + "/" if is_dir else name)
                else:
                    truncated = True
                if is_dir and name not in self.prune:
                    subdirs.append(name)
            if not self.markers.isdisjoint(entries):
                found = ScannedDir(path=path, entries=frozenset(entries), truncated=truncated)
                self.candidates.append(found)
            if depth < self.max_depth:
                stack.extend(
                    (f"{rel}/{sub}" if rel else sub, depth + 1)
                    for sub in sorted(subdirs, reverse=True)
                )
