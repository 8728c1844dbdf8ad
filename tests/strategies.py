"""Hypothesis strategies for the whole suite: the one place that knows how to generate values.

Each strategy is a function returning a ``SearchStrategy``, so a test can pin what it cares about
(``check_results(status=st.just(CheckStatus.FAIL))``). Add new ones here, under a heading for the
module they serve, rather than in a test module.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping

import attrs
from hypothesis import strategies as st

from universal_healer.breaker import BreakerPolicy, BreakerState, BreakerStatus, Outcome
from universal_healer.executions import (
    Approval,
    ApprovalStatus,
    Execution,
    ExecutionStatus,
    StepRecord,
)
from universal_healer.model import (
    Application,
    CheckCategory,
    CheckResult,
    CheckStatus,
    CommandStep,
    HealingAction,
    HealingMode,
    RiskLevel,
)

__all__ = [
    "applications",
    "approvals",
    "aware_datetimes",
    "breaker_policies",
    "breaker_states",
    "check_categories",
    "check_names",
    "check_results",
    "check_statuses",
    "clock_nudges",
    "command_steps",
    "cooldown_thousandths",
    "diagnoses",
    "executions",
    "findings",
    "healing_actions",
    "healing_modes",
    "outcomes",
    "risk_levels",
    "step_records",
    "time_advances",
    "utc_datetimes",
]

# --------------------------------------------------------------------------------------------
# Time

_MIN_DATETIME = dt.datetime(2000, 1, 1)  # noqa: DTZ001 - hypothesis bounds are naive
_MAX_DATETIME = dt.datetime(2100, 1, 1)  # noqa: DTZ001 - hypothesis bounds are naive


def utc_datetimes() -> st.SearchStrategy[dt.datetime]:
    """Aware datetimes in UTC, between 2000 and 2100."""
    return st.datetimes(_MIN_DATETIME, _MAX_DATETIME, timezones=st.just(dt.UTC))


def aware_datetimes() -> st.SearchStrategy[dt.datetime]:
    """Aware datetimes with any fixed UTC offset (whole minutes), between 2000 and 2100."""
    offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
        lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
    )
    return st.datetimes(_MIN_DATETIME, _MAX_DATETIME, timezones=offsets)


# --------------------------------------------------------------------------------------------
# Checks, findings and healing actions

# Generation speed matters here: these feed most property tests, so names come from a small
# alphabet (cheap, and they collide often) rather than from regexes.
_NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyz_"
_NAMES = st.text(_NAME_ALPHABET, min_size=1, max_size=12)
_KNOWN_CHECKS = (
    "cache_size",
    "db_connection",
    "disk_space",
    "file_permissions",
    "php_version",
    "wp_core_integrity",
)
_FEW_CHECKS = st.sampled_from(_KNOWN_CHECKS) | st.text("abc", min_size=1, max_size=2)


def risk_levels() -> st.SearchStrategy[RiskLevel]:
    """Any risk level (a finding's severity or an action's risk)."""
    return st.sampled_from(RiskLevel)


def healing_modes() -> st.SearchStrategy[HealingMode]:
    """Any healing mode."""
    return st.sampled_from(HealingMode)


def check_statuses() -> st.SearchStrategy[CheckStatus]:
    """Any check status."""
    return st.sampled_from(CheckStatus)


def check_categories() -> st.SearchStrategy[CheckCategory]:
    """Any check category."""
    return st.sampled_from(CheckCategory)


def check_names() -> st.SearchStrategy[str]:
    """Check names; drawn from a small pool often, so names repeat within one diagnosis."""
    return st.one_of(
        st.sampled_from(_KNOWN_CHECKS),
        _NAMES,
    )


def check_results(
    *,
    check: st.SearchStrategy[str] | None = None,
    status: st.SearchStrategy[CheckStatus] | None = None,
    severity: st.SearchStrategy[RiskLevel] | None = None,
) -> st.SearchStrategy[CheckResult]:
    """Check results; pass a strategy to pin a field."""
    return st.builds(
        CheckResult,
        check=check if check is not None else check_names(),
        category=check_categories(),
        status=status if status is not None else check_statuses(),
        severity=severity if severity is not None else risk_levels(),
        message=st.text(max_size=20),
        details=st.just({}) | st.dictionaries(_NAMES, st.none() | st.integers(), max_size=2),
        suggested_fix=st.none() | st.text(max_size=20),
        execution_time_ms=st.integers(0, 60_000),
    )


def findings(
    *,
    status: st.SearchStrategy[CheckStatus] | None = None,
    severity: st.SearchStrategy[RiskLevel] | None = None,
) -> st.SearchStrategy[CheckResult]:
    """Lean check results that vary only what policy reads: check, status, severity, message.

    Three to four times faster to draw than :func:`check_results`, which matters for lists.
    """
    return st.builds(
        CheckResult,
        check=_FEW_CHECKS,
        category=st.just(CheckCategory.SYSTEM),
        status=status if status is not None else check_statuses(),
        severity=severity if severity is not None else risk_levels(),
        message=st.sampled_from(("", "timed out after 30 s", "disk 97 % full")),
    )


def command_steps() -> st.SearchStrategy[CommandStep]:
    """Command steps with a short argument vector."""
    return st.builds(
        CommandStep,
        argv=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=3).map(tuple),
        description=st.text(max_size=20),
    )


def healing_actions(
    *,
    check: st.SearchStrategy[str] | None = None,
    risk: st.SearchStrategy[RiskLevel] | None = None,
) -> st.SearchStrategy[HealingAction]:
    """Healing actions; pass a strategy to pin the check they answer or their risk."""
    return st.builds(
        HealingAction,
        name=_NAMES,
        description=st.text(max_size=20),
        risk=risk if risk is not None else risk_levels(),
        check=check if check is not None else check_names(),
        steps=st.just(()) | st.tuples(command_steps()),
        requires_backup=st.booleans(),
        estimated_duration_s=st.floats(0, 3600),
        verify_checks=st.lists(check_names(), max_size=2).map(tuple),
        touches=st.lists(st.sampled_from(("wp-config.php", ".env", "storage/logs")), max_size=2),
    )


# Built once: a strategy built inside a composite is validated again on every draw, which made
# diagnoses() ten times slower.
_ANY_FINDING = findings()
_MAYBE_ACTION = st.none() | st.builds(
    HealingAction,
    name=st.just("fix"),
    description=st.just(""),
    risk=risk_levels(),
    check=st.just(""),
    requires_backup=st.booleans(),
)


@st.composite
def diagnoses(
    draw: st.DrawFn, *, max_results: int = 8
) -> tuple[list[CheckResult], Mapping[str, HealingAction]]:
    """A diagnosis of :func:`findings` and the actions proposed for it: ``(results, actions by
    check name)``.

    Some checks have no action; an action's risk is drawn independently of the severity of the
    finding it answers, so the two often differ.
    """
    results = draw(st.lists(_ANY_FINDING, max_size=max_results))
    names = sorted({result.check for result in results})
    drawn = draw(st.lists(_MAYBE_ACTION, min_size=len(names), max_size=len(names)))
    actions = {
        name: attrs.evolve(proposed, check=name)
        for name, proposed in zip(names, drawn, strict=True)
        if proposed is not None
    }
    return results, actions


# --------------------------------------------------------------------------------------------
# Breaker


def breaker_policies() -> st.SearchStrategy[BreakerPolicy]:
    """Breaker policies, small enough that a few steps reach every status."""
    return st.builds(
        BreakerPolicy,
        max_attempts=st.integers(1, 4),
        cooldown_s=st.one_of(
            st.sampled_from((1.0, 60.0, 3600.0)),
            st.floats(0.001, 86_400.0),
        ),
        max_reopens=st.integers(1, 3),
    )


def outcomes(*, failure_weight: int = 1) -> st.SearchStrategy[Outcome]:
    """How an attempt ended; ``failure_weight`` failures are drawn for each success."""
    return st.sampled_from((Outcome.FAILURE,) * failure_weight + (Outcome.SUCCESS,))


def cooldown_thousandths() -> st.SearchStrategy[int]:
    """Spans of 0 to 2 cooldowns, in thousandths of one; zero and exactly one drawn often.

    For rule arguments of state machines, which cannot depend on the drawn policy: multiply
    ``policy.cooldown`` by the number and divide by 1000.
    """
    return st.just(0) | st.just(1000) | st.integers(1, 999) | st.integers(1001, 2000)


def clock_nudges() -> st.SearchStrategy[dt.timedelta]:
    """Nothing, or one microsecond either way: added to a span, it lands on every edge."""
    return st.sampled_from(
        (dt.timedelta(0), dt.timedelta(microseconds=1), -dt.timedelta(microseconds=1))
    )


@functools.cache
def time_advances(cooldown: dt.timedelta) -> st.SearchStrategy[dt.timedelta]:
    """Steps of the clock between 0 and twice ``cooldown``, its edges drawn often.

    Cached: state machines draw from it at every step, and a new strategy is validated anew.
    """
    tick = dt.timedelta(microseconds=1)
    edges = sorted({dt.timedelta(0), max(cooldown - tick, dt.timedelta(0)), cooldown})
    edges.append(cooldown + tick)
    span = int(2 * cooldown / tick)
    return st.one_of(
        st.sampled_from(edges),
        st.integers(0, span).map(lambda micros: dt.timedelta(microseconds=micros)),
    )


_AWARE = aware_datetimes()


@st.composite
def breaker_states(draw: st.DrawFn) -> BreakerState:
    """Any state the breaker accepts, with datetimes in any UTC offset."""
    status = draw(st.sampled_from(BreakerStatus))
    failures = tuple(sorted(draw(st.lists(_AWARE, max_size=5))))
    opened_at: dt.datetime | None = None
    if status in (BreakerStatus.OPEN, BreakerStatus.HALF_OPEN):
        opened_at = draw(_AWARE)
    elif status is BreakerStatus.HELD:
        opened_at = draw(st.none() | _AWARE)
    return BreakerState(
        status=status,
        failures=failures,
        opened_at=opened_at,
        probe_in_flight=status is BreakerStatus.HALF_OPEN and draw(st.booleans()),
        reopen_count=draw(st.integers(0, 5)),
        last_attempt=draw(st.none() | _AWARE),
    )


# --------------------------------------------------------------------------------------------
# Records (the serde round trips)

_TEXT = st.text(max_size=20)
_IDS = st.uuids().map(str)
# JSON-shaped details: what a check may put in a result and the registry stores.
_DETAILS = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=6,
    ),
    max_size=4,
)


def applications() -> st.SearchStrategy[Application]:
    """Applications with every field drawn, paths with odd characters included."""
    return st.builds(
        Application,
        id=_IDS,
        server=st.sampled_from(("local", "web-1")),
        path=st.text(min_size=1, max_size=30).map(lambda p: "/" + p),
        stack=st.sampled_from(("wordpress", "nodejs", "deno")),
        stack_version=st.none() | _TEXT,
        evidence=st.lists(_TEXT, max_size=3).map(tuple),
        confidence=st.floats(0, 1),
        last_health_check=st.none() | utc_datetimes(),
        metadata=_DETAILS,
    )


def step_records() -> st.SearchStrategy[StepRecord]:
    return st.builds(
        StepRecord,
        index=st.integers(0, 20),
        description=_TEXT,
        argv=st.none() | st.lists(_TEXT, min_size=1, max_size=4).map(tuple),
        exit_status=st.none() | st.integers(-9, 255),
        output=st.text(max_size=40),
        duration_s=st.floats(0, 1e4),
        error=st.none() | _TEXT,
        started_at=st.none() | utc_datetimes(),
    )


def executions() -> st.SearchStrategy[Execution]:
    return st.builds(
        Execution,
        id=_IDS,
        app_id=_IDS,
        action_name=check_names(),
        check=check_names(),
        risk=risk_levels(),
        status=st.sampled_from(ExecutionStatus),
        fingerprint=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
        mode=healing_modes(),
        triggered_by=_TEXT,
        started_at=utc_datetimes(),
        finished_at=st.none() | utc_datetimes(),
        steps=st.lists(step_records(), max_size=3).map(tuple),
        backup_id=st.none() | _IDS,
        rolled_back=st.booleans(),
        error=st.none() | _TEXT,
        process=st.none() | _TEXT,
        action=_DETAILS,
    )


def approvals() -> st.SearchStrategy[Approval]:
    return st.builds(
        Approval,
        id=_IDS,
        app_id=_IDS,
        action_name=check_names(),
        check=check_names(),
        risk=risk_levels(),
        fingerprint=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
        status=st.sampled_from(ApprovalStatus),
        requested_at=utc_datetimes(),
        requested_by=_TEXT,
        expires_at=utc_datetimes(),
        decided_at=st.none() | utc_datetimes(),
        decided_by=st.none() | _TEXT,
        execution_id=st.none() | _IDS,
        action=_DETAILS,
    )
