"""Healing strategies: what can be done about a finding, and at what risk.

A strategy answers findings of the checks it names in :attr:`HealingStrategy.fixes` by
proposing a :class:`~universal_healer.model.HealingAction`. The action carries its own risk
level; policy decides on that, not on the finding's severity (clearing a cache is LOW even when
the finding is HIGH)::

    class ClearCache(HealingStrategy):
        name = "clear_cache"
        fixes = ("cache_size",)

        def propose(self, result, app):
            return HealingAction(
                name="clear_cache", description="Empty the cache directory",
                risk=RiskLevel.LOW, check=result.check,
                steps=[CommandStep(argv=("find", f"{app.path}/cache", "-mindepth", "1",
                                         "-delete"))],
            )
"""

from __future__ import annotations

from typing import ClassVar

from universal_healer.model import Application, CheckResult, HealingAction

__all__ = ["HealingStrategy"]


class HealingStrategy:
    """Base class of healing strategies.

    :cvar name: unique, stable id of the strategy.
    :cvar fixes: names of the checks whose findings this strategy can answer.
    """

    name: ClassVar[str]
    fixes: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""

    def applies_to(self, result: CheckResult) -> bool:
        """Whether this strategy answers ``result`` at all (by default: the check is in fixes)."""
        return result.check in self.fixes

    def propose(self, result: CheckResult, app: Application) -> HealingAction | None:
        """The action this strategy would take for ``result``, or None when it has none.

        Must not do I/O: everything needed is in the result's details and the application.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<strategy {self.name}>"
