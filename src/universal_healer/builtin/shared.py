"""The shared checks and strategies as a built-in plugin, written exactly like an external one.

Every application stack (kind ``app``) gets the checks of :mod:`universal_healer.builtin.checks`
and the strategies of :mod:`universal_healer.builtin.strategies`; databases and services get
none of them. This plugin declares no stack of its own.
"""

from __future__ import annotations

from universal_healer.builtin.checks import SHARED_CHECKS
from universal_healer.builtin.strategies import SHARED_STRATEGIES
from universal_healer.checks import DiagnosticCheck
from universal_healer.hookspecs import hookimpl
from universal_healer.model import StackInfo, StackKind
from universal_healer.strategies import HealingStrategy

__all__ = ["healer_get_checks", "healer_get_strategies"]


@hookimpl
def healer_get_checks(stack: StackInfo) -> list[DiagnosticCheck]:
    """The shared checks, for application stacks only."""
    if stack.kind is not StackKind.APP:
        return []
    return [check() for check in SHARED_CHECKS]


@hookimpl
def healer_get_strategies(stack: StackInfo) -> list[HealingStrategy]:
    """The shared strategies, for application stacks only."""
    if stack.kind is not StackKind.APP:
        return []
    return [strategy() for strategy in SHARED_STRATEGIES]
