"""The detection engine: rank what the plugins said about a root, apply an operator's pin.

Pure: it takes detections (already gathered by the plugin manager from an immutable probe) and
the declared stacks, and returns a new value. Ranking is by confidence; on a tie the more
specific stack (the child: ``nextjs`` over ``nodejs``) wins, then stack id, then plugin name,
so the answer never depends on the order plugins were called in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from universal_healer.model import Detection, DetectionMethod, StackInfo

__all__ = ["DetectionOutcome", "Override", "decide", "rank"]


@attrs.frozen(kw_only=True)
class Override:
    """An operator's pin for one application.

    MANUAL pins the stack and the version; HYBRID pins the stack and lets detection find the
    version.
    """

    stack: str
    version: str | None = None
    method: DetectionMethod = DetectionMethod.MANUAL

    def __attrs_post_init__(self) -> None:
        if self.method is DetectionMethod.AUTO:
            raise ValueError("an override is MANUAL or HYBRID; AUTO means no override")


@attrs.frozen(kw_only=True)
class DetectionOutcome:
    """The engine's verdict for one root.

    :param best: the winning detection, or None when nothing recognised the root.
    :param runners_up: the other detections, best first, kept as evidence.
    """

    root: str
    best: Detection | None
    runners_up: tuple[Detection, ...] = ()
    method: DetectionMethod = DetectionMethod.AUTO

    @property
    def evidence(self) -> tuple[str, ...]:
        """The winner's evidence, then one line per runner-up."""
        lines = list(self.best.evidence) if self.best else []
        lines.extend(
            f"also looks like {d.stack} ({d.confidence:.2f}"
            + (f", version {d.version}" if d.version else "")
            + ")"
            for d in self.runners_up
        )
        return tuple(lines)


def _depth(stack_id: str, stacks: Mapping[str, StackInfo]) -> int:
    depth = 0
    seen: set[str] = set()
    current = stacks.get(stack_id)
    while current is not None and current.parent and current.id not in seen:
        seen.add(current.id)
        depth += 1
        current = stacks.get(current.parent)
    return depth


def rank(detections: Sequence[Detection], stacks: Mapping[str, StackInfo]) -> tuple[Detection, ...]:
    """Detections best first: confidence, then the deeper (more specific) stack, then id."""
    return tuple(
        sorted(
            detections,
            key=lambda d: (
                -d.confidence,
                -_depth(d.stack, stacks),
                d.stack,
                d.plugin or "",
                d.version or "",
            ),
        )
    )


def decide(
    root: str,
    detections: Sequence[Detection],
    stacks: Mapping[str, StackInfo],
    override: Override | None = None,
) -> DetectionOutcome:
    """Rank ``detections`` for ``root`` and apply ``override`` if there is one."""
    ranked = rank(detections, stacks)
    if override is None:
        if not ranked:
            return DetectionOutcome(root=root, best=None)
        return DetectionOutcome(root=root, best=ranked[0], runners_up=ranked[1:])

    same_stack = [d for d in ranked if d.stack == override.stack]
    if override.method is DetectionMethod.HYBRID:
        version = same_stack[0].version if same_stack else None
        evidence = ("stack pinned by an operator (HYBRID); version detected",)
    else:
        version = override.version
        evidence = ("stack and version pinned by an operator (MANUAL)",)
    pinned = Detection(
        stack=override.stack,
        version=version,
        confidence=1.0,
        evidence=evidence + (same_stack[0].evidence if same_stack else ()),
        claims=same_stack[0].claims if same_stack else (),
        plugin=same_stack[0].plugin if same_stack else None,
    )
    others = tuple(d for d in ranked if d.stack != override.stack)
    return DetectionOutcome(root=root, best=pinned, runners_up=others, method=override.method)
