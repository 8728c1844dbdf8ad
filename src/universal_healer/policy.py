"""Healing policy: what may heal by itself, what waits for a person, and how healthy an app is.

Everything here is pure: no I/O, no clock, no logging. Policy decides on the *action's* risk,
never on the finding's severity: clearing a cache is LOW even when the finding it answers is
HIGH. The table (the plan's section 6.1)::

    mode \\ action risk   LOW    MEDIUM   HIGH       CRITICAL
    MANUAL               wait   wait     wait       wait, named approval
    SUPERVISED           auto   wait     wait       wait, named approval
    AUTO                 auto   auto     wait       wait, named approval
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from universal_healer.model import (
    CheckResult,
    CheckStatus,
    HealingAction,
    HealingMode,
    HealingPlan,
    HealthStatus,
    PlannedAction,
    RiskLevel,
    Unhealable,
)

__all__ = [
    "DEFAULT_MIN_CONSECUTIVE",
    "can_auto_heal",
    "finding_is_persistent",
    "health_score",
    "health_status",
    "needs_backup",
    "plan_healing",
]

#: How many consecutive diagnoses must show a finding before the engine acts on it.
DEFAULT_MIN_CONSECUTIVE = 2

# The highest action risk each mode heals without an approval; None: nothing.
_AUTO_CEILING: Mapping[HealingMode, RiskLevel | None] = {
    HealingMode.MANUAL: None,
    HealingMode.SUPERVISED: RiskLevel.LOW,
    HealingMode.AUTO: RiskLevel.MEDIUM,
}

# Score penalties, written out rather than derived so the docstring and the code agree at a
# glance. A WARN costs a third of the FAIL penalty, rounded (5/3 -> 2, 50/3 -> 17).
_FAIL_PENALTY: Mapping[RiskLevel, int] = {
    RiskLevel.LOW: 5,
    RiskLevel.MEDIUM: 15,
    RiskLevel.HIGH: 30,
    RiskLevel.CRITICAL: 50,
}
_WARN_PENALTY: Mapping[RiskLevel, int] = {
    RiskLevel.LOW: 2,
    RiskLevel.MEDIUM: 5,
    RiskLevel.HIGH: 10,
    RiskLevel.CRITICAL: 17,
}
_ERROR_PENALTY = 2

_FINDINGS = frozenset({CheckStatus.FAIL, CheckStatus.WARN})


def can_auto_heal(mode: HealingMode, risk: RiskLevel) -> bool:
    """Whether an action of ``risk`` may run without an approval in ``mode``.

    MANUAL heals nothing by itself; SUPERVISED heals LOW; AUTO heals LOW and MEDIUM. HIGH and
    CRITICAL actions are never automatic, in any mode.

    :param mode: the application's healing mode.
    :param risk: the risk of the proposed *action* (not the finding's severity).
    :returns: True when the action may run now.
    """
    ceiling = _AUTO_CEILING[mode]
    return ceiling is not None and risk <= ceiling


def needs_backup(action: HealingAction) -> bool:
    """Whether the app's backup must be taken before ``action`` runs.

    :param action: the proposed action.
    :returns: True for actions of MEDIUM risk or more that change stored data, and for any
        action that asks for one. An action that changes no data (``changes_data=False``:
        killing a query, restarting a service) has nothing a backup could give back.
    """
    return action.requires_backup or (action.changes_data and action.risk >= RiskLevel.MEDIUM)


def _auto_reason(mode: HealingMode, risk: RiskLevel) -> str:
    return f"{mode} mode heals {risk}-risk actions automatically"


def _approval_reason(mode: HealingMode, risk: RiskLevel) -> str:
    if risk == RiskLevel.CRITICAL:
        return "CRITICAL-risk actions run only on an approval that names them"
    if risk == RiskLevel.HIGH:
        return "HIGH-risk actions always wait for an approval"
    if mode == HealingMode.MANUAL:
        return "MANUAL mode heals nothing without an approval"
    return f"{mode} mode heals only LOW-risk actions automatically; {risk}-risk actions wait"


def _finding_order(result: CheckResult) -> tuple[int, str]:
    return (-result.severity.rank, result.check)


def plan_healing(
    results: Sequence[CheckResult],
    actions: Mapping[str, HealingAction],
    mode: HealingMode,
) -> HealingPlan:
    """Sort a diagnosis into what heals now, what waits for an approval and what cannot heal.

    - FAIL and WARN results with an action go to ``auto`` when :func:`can_auto_heal` allows the
      *action's* risk in ``mode``, otherwise to ``needs_approval``.
    - FAIL results without an action go to ``cannot_heal``: no strategy answers them.
    - ERROR results go to ``cannot_heal``: the check could not run, so the finding is unknown
      (even when an action is on offer).
    - PASS results, and WARN results without an action, are not in the plan.

    Each part is ordered by the finding's severity, most severe first, then by check name;
    results that tie on both keep their order in ``results``.

    :param results: the latest diagnosis of one application.
    :param actions: the action proposed for each check's finding, keyed by check name.
    :param mode: the application's healing mode.
    :returns: a new plan; every entry carries a one-sentence reason.
    """
    auto: list[PlannedAction] = []
    wait: list[PlannedAction] = []
    unhealable: list[Unhealable] = []
    for result in sorted(results, key=_finding_order):
        if result.status == CheckStatus.ERROR:
            reason = f"the check could not run: {result.message}"
            unhealable.append(Unhealable(result=result, reason=reason))
            continue
        if result.status not in _FINDINGS:
            continue
        action = actions.get(result.check)
        if action is None:
            if result.status == CheckStatus.FAIL:
                reason = "no healing strategy for this finding"
                unhealable.append(Unhealable(result=result, reason=reason))
            continue
        if can_auto_heal(mode, action.risk):
            reason = _auto_reason(mode, action.risk)
            auto.append(PlannedAction(result=result, action=action, reason=reason))
        else:
            reason = _approval_reason(mode, action.risk)
            wait.append(PlannedAction(result=result, action=action, reason=reason))
    return HealingPlan(auto=auto, needs_approval=wait, cannot_heal=unhealable)


def _penalty(result: CheckResult) -> int:
    if result.status == CheckStatus.FAIL:
        return _FAIL_PENALTY[result.severity]
    if result.status == CheckStatus.WARN:
        return _WARN_PENALTY[result.severity]
    if result.status == CheckStatus.ERROR:
        return _ERROR_PENALTY
    return 0


def health_score(results: Sequence[CheckResult]) -> int:
    """A score from 0 (broken) to 100 (nothing found) for one diagnosis.

    ``score = max(0, 100 - sum(penalty(r) for r in results))`` where the penalty of a result is:

    ========  ====  ======  ====  ========
    status    LOW   MEDIUM  HIGH  CRITICAL
    ========  ====  ======  ====  ========
    FAIL      5     15      30    50
    WARN      2     5       10    17
    ERROR     2     2       2     2
    PASS      0     0       0     0
    ========  ====  ======  ====  ========

    (the columns are the finding's severity; a WARN costs a third of a FAIL, rounded). No results
    means the health is unknown: the score is 0 and :func:`health_status` says UNKNOWN.

    :param results: the latest diagnosis of one application.
    :returns: an integer within [0, 100].
    """
    if not results:
        return 0
    return max(0, 100 - sum(_penalty(result) for result in results))


def health_status(results: Sequence[CheckResult], score: int | None = None) -> HealthStatus:
    """An application's overall health from its latest diagnosis.

    - UNKNOWN when there are no results, or every result is ERROR (nothing was learnt);
    - CRITICAL when any FAIL has severity HIGH or CRITICAL, or the score is below 50;
    - DEGRADED when any result is FAIL or WARN, or the score is below 90;
    - HEALTHY otherwise.

    :param results: the latest diagnosis of one application.
    :param score: the diagnosis' score, when already computed; :func:`health_score` otherwise.
    :returns: the status.
    """
    if all(result.status == CheckStatus.ERROR for result in results):
        return HealthStatus.UNKNOWN
    if score is None:
        score = health_score(results)
    if score < 50 or any(
        result.status == CheckStatus.FAIL and result.severity >= RiskLevel.HIGH
        for result in results
    ):
        return HealthStatus.CRITICAL
    if score < 90 or any(result.status in _FINDINGS for result in results):
        return HealthStatus.DEGRADED
    return HealthStatus.HEALTHY


def finding_is_persistent(
    history: Sequence[CheckStatus], *, required: int = DEFAULT_MIN_CONSECUTIVE
) -> bool:
    """Whether a check's finding held for the last ``required`` diagnoses in a row.

    The healing engine acts only on persistent findings, so one flaky check does not trigger a
    change on the machine.

    :param history: one check's statuses, oldest first.
    :param required: how many of the most recent statuses must all be FAIL or WARN; at least 1.
    :returns: False when the history is shorter than ``required``.
    :raises ValueError: when ``required`` is less than 1.
    """
    if required < 1:
        raise ValueError(f"required must be at least 1, got {required}")
    recent = history[-required:]
    return len(recent) == required and all(status in _FINDINGS for status in recent)
