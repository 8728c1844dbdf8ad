"""The safety rules that stand between a plan and an action. Pure, like the policy.

Each rule looks at facts the executor gathered (history, pause state, the diagnosis) and
returns a :class:`Refusal` that says why an action must not run now, or None. The rules come
from what operators of Monit, systemd, Kubernetes and supervisord learned the hard way:

- act only on a finding that held for N consecutive diagnoses (a blip is not a fault);
- a finding that keeps coming back after heals that "succeeded" needs a root-cause fix, not a
  fourth heal;
- a heal that failed is not re-run while nothing observable changed;
- when a check's dependency fails (the database is down), its heals are pointless and risky;
- a pause (global or per application) stops all automatic healing at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence

import attrs

from universal_healer.executions import Execution, ExecutionStatus
from universal_healer.model import CheckResult, CheckStatus
from universal_healer.policy import finding_is_persistent

__all__ = [
    "Refusal",
    "blocked_by_dependency",
    "finding_digest",
    "flapping",
    "not_persistent",
    "paused",
    "unchanged_since_failure",
]


@attrs.frozen(kw_only=True)
class Refusal:
    """Why an action may not run now.

    :param rule: a stable id of the rule (``"persistence"``, ``"flapping"``, ...).
    """

    rule: str
    reason: str


def finding_digest(result: CheckResult) -> str:
    """A digest of everything observable about a finding: status, message and details."""
    payload = {
        "check": result.check,
        "status": result.status.value,
        "message": result.message,
        "details": result.details,
    }
    canonical = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()


def paused(app_paused: bool, reason: str | None) -> Refusal | None:
    """Refuse everything automatic while healing is paused."""
    if not app_paused:
        return None
    return Refusal(rule="paused", reason=f"healing is paused: {reason or 'no reason given'}")


def not_persistent(history: Sequence[CheckStatus], required: int) -> Refusal | None:
    """Refuse unless the finding held for ``required`` consecutive diagnoses.

    :param history: the check's statuses, oldest to newest, the current diagnosis last.
    """
    if finding_is_persistent(history, required=required):
        return None
    seen = 0
    for status in reversed(history):
        if status not in (CheckStatus.FAIL, CheckStatus.WARN):
            break
        seen += 1
    return Refusal(
        rule="persistence",
        reason=f"the finding held for {seen} of the {required} consecutive diagnoses required",
    )


def flapping(
    history: Iterable[Execution], *, now: dt.datetime, window: dt.timedelta, limit: int
) -> Refusal | None:
    """Refuse when heals of this finding "succeeded" ``limit`` times inside ``window``: the
    fault keeps coming back, so the fix is elsewhere."""
    since = now - window
    successes = [
        e for e in history if e.status is ExecutionStatus.SUCCEEDED and e.started_at > since
    ]
    if len(successes) < limit:
        return None
    hours = window.total_seconds() / 3600
    return Refusal(
        rule="flapping",
        reason=(
            f"healed {len(successes)} times in the last {hours:g} h and it came back every "
            "time: this needs a root-cause fix, so it is no longer healed automatically"
        ),
    )


def unchanged_since_failure(
    history: Sequence[Execution], *, fingerprint: str, digest: str
) -> Refusal | None:
    """Refuse re-running an action whose last run on this finding failed while nothing
    observable has changed since (same action, same finding, same details).

    :param history: executions for this application and check, newest first.
    """
    last = next((e for e in history if e.status.finished), None)
    if last is None or not last.status.failed:
        return None
    if last.fingerprint != fingerprint or last.action.get("finding_digest") != digest:
        return None
    return Refusal(
        rule="unchanged",
        reason=(
            f"the same action failed on this same finding in execution {last.id[:8]} "
            f"({last.status.value}) and nothing observable changed since"
        ),
    )


def blocked_by_dependency(
    depends_on: Sequence[str], results: Mapping[str, CheckResult]
) -> Refusal | None:
    """Refuse when a check this finding depends on failed in the same diagnosis (a database
    outage must never trigger an application restart)."""
    failing = [
        name
        for name in depends_on
        if name in results and results[name].status in (CheckStatus.FAIL, CheckStatus.ERROR)
    ]
    if not failing:
        return None
    return Refusal(
        rule="dependency",
        reason=f"suppressed because {', '.join(failing)} failed: fix that first",
    )
