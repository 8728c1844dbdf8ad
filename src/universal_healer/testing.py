"""Helpers for testing plugins without a machine.

A detection hook takes a :class:`~universal_healer.model.SiteProbe` and does no I/O, so a test
can build the probe from a dict::

    from universal_healer.testing import make_probe

    probe = make_probe({"package.json": '{"dependencies": {"express": "^4.19.2"}}'})
    assert healer_detect(probe).stack == "express"
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from universal_healer.model import ProbedFile, SiteProbe

__all__ = ["make_probe"]


def make_probe(
    files: Mapping[str, bytes | str | ProbedFile],
    *,
    root: str = "/srv/app",
    host: str = "test",
    dirs: Iterable[str] = (),
    max_bytes: int | None = None,
) -> SiteProbe:
    """A probe of a root holding ``files``, as discovery would have read it.

    :param files: root-relative path to content (``str`` is encoded as UTF-8). A
        :class:`~universal_healer.model.ProbedFile` is taken as is (its path set to the key),
        to say a file is there but unreadable (``error="permission denied"``) or truncated.
    :param dirs: extra root-relative directories, empty or not (``"wp-content"``).
    :param max_bytes: cut each content at this size and flag it truncated, like a read cap.
    :returns: a probe whose ``entries`` list the top-level name of every file and directory
        (directories with a trailing ``/``). Files not in ``files`` are simply not probed.
    """
    entries = {path.strip("/").partition("/")[0] + "/" for path in dirs}
    for path, content in files.items():
        if isinstance(content, ProbedFile) and not content.exists:
            continue  # asked for and not found: no entry
        first, slash, _ = path.partition("/")
        entries.add(first + slash)
    probed: list[ProbedFile] = []
    for path, content in files.items():
        if isinstance(content, ProbedFile):
            probed.append(attrs.evolve(content, path=path))
            continue
        data = content.encode() if isinstance(content, str) else content
        truncated = max_bytes is not None and len(data) > max_bytes
        probed.append(
            ProbedFile(
                path=path,
                data=data[:max_bytes] if truncated else data,
                size=len(data),
                truncated=truncated,
            )
        )
    return SiteProbe(host=host, root=root, entries=frozenset(entries), files=tuple(probed))
