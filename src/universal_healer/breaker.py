"""The circuit breaker that stops the healer from retrying a failing heal forever.

Pure functions of frozen values: no I/O, no clock (``now`` is a parameter, aware), no logging.
The executor asks :func:`decide` before an attempt, reports the attempt's outcome with
:func:`record`, and the registry stores the state as JSON (:func:`state_to_json`)::

                 max_attempts failures
                 inside the cooldown window
      CLOSED ──────────────────────────────► OPEN ◄──────────────┐
        ▲ ▲                                   │ cooldown over:   │ the probe fails
        │ │ any success                       │ one probe        │ (reopen_count + 1)
        │ └───────────────────────────── HALF_OPEN ──────────────┘
        │                                     │ the probe fails for the max_reopens-th time
        │ reset (an operator)                 ▼
        └────────────────────────────────── HELD

Failures count inside a sliding window ``(now - cooldown, now]``; a success empties the window.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from universal_healer import serde

__all__ = [
    "BreakerPolicy",
    "BreakerState",
    "BreakerStatus",
    "Decision",
    "Outcome",
    "decide",
    "record",
    "reset",
    "state_from_json",
    "state_to_json",
    "tripped",
]


class BreakerStatus(enum.StrEnum):
    """Where a breaker stands.

    CLOSED lets attempts through; OPEN refuses them until the cooldown is over; HALF_OPEN lets
    one probe attempt through; HELD refuses everything until an operator resets it.
    """

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"
    HELD = "HELD"


class Outcome(enum.StrEnum):
    """How an attempt that the breaker let through ended."""

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


# --------------------------------------------------------------------------------------------
# Validators and converters


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    # `not value > 0` also refuses NaN.
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{attribute.name} must be a positive finite number, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value!r}")


def _utc(value: dt.datetime) -> dt.datetime:
    # A converter rather than a validator: astimezone() on a naive datetime would read the
    # machine's local zone, so refuse before converting.
    if value.utcoffset() is None:
        raise ValueError(f"datetimes must be timezone-aware, got {value!r}")
    return value.astimezone(dt.UTC)


def _utc_or_none(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _utc(value)


def _utc_tuple(values: Iterable[dt.datetime]) -> tuple[dt.datetime, ...]:
    return tuple(_utc(value) for value in values)


# --------------------------------------------------------------------------------------------
# Values


@attrs.frozen(kw_only=True)
class BreakerPolicy:
    """How patient the breaker is (the plan's defaults: 3 attempts, one hour).

    :param max_attempts: failed attempts inside the cooldown window that open the breaker.
    :param cooldown_s: seconds the breaker stays open before letting one probe through; also the
        width of the window in which failures are counted.
    :param max_reopens: consecutive failed probes after which the breaker is HELD for an
        operator.
    """

    max_attempts: int = attrs.field(default=3, validator=_positive)
    cooldown_s: float = attrs.field(default=3600.0, validator=_positive)
    max_reopens: int = attrs.field(default=3, validator=_positive)

    @property
    def cooldown(self) -> dt.timedelta:
        """The cooldown as a timedelta."""
        return dt.timedelta(seconds=self.cooldown_s)


@attrs.frozen(kw_only=True)
class BreakerState:
    """One application's breaker, as the registry stores it.

    :param status: where the breaker stands.
    :param failures: when the failed attempts inside the current window happened, oldest first
        (aware, normalised to UTC).
    :param opened_at: when the breaker last opened; None while it has not since the last close.
    :param probe_in_flight: a half-open breaker let its one probe attempt through and waits for
        its outcome.
    :param reopen_count: consecutive re-openings after a failed probe.
    :param last_attempt: when the last attempt's outcome was recorded.
    """

    status: BreakerStatus = attrs.field(default=BreakerStatus.CLOSED, converter=BreakerStatus)
    failures: tuple[dt.datetime, ...] = attrs.field(default=(), converter=_utc_tuple)
    opened_at: dt.datetime | None = attrs.field(default=None, converter=_utc_or_none)
    probe_in_flight: bool = False
    reopen_count: int = attrs.field(default=0, validator=_non_negative)
    last_attempt: dt.datetime | None = attrs.field(default=None, converter=_utc_or_none)

    def __attrs_post_init__(self) -> None:
        if self.probe_in_flight and self.status is not BreakerStatus.HALF_OPEN:
            raise ValueError(f"only a HALF_OPEN breaker has a probe in flight, not {self.status}")
        waits_for_cooldown = self.status in (BreakerStatus.OPEN, BreakerStatus.HALF_OPEN)
        if waits_for_cooldown and self.opened_at is None:
            raise ValueError(f"an OPEN or HALF_OPEN breaker needs opened_at, got {self!r}")

    @classmethod
    def initial(cls) -> BreakerState:
        """The state of a breaker that has never seen an attempt."""
        return cls.closed()

    @classmethod
    def closed(cls, *, last_attempt: dt.datetime | None = None) -> BreakerState:
        """A closed breaker with nothing counted against it.

        :param last_attempt: when the last attempt was recorded, if one was.
        """
        return cls(last_attempt=last_attempt)


@attrs.frozen(kw_only=True)
class Decision:
    """The breaker's answer to "may this application be healed now?".

    :param allowed: whether the attempt may go ahead.
    :param state: the state after deciding: store it, and pass it to :func:`record` after the
        attempt. Deciding prunes expired failures, and may move OPEN to HALF_OPEN with the
        probe in flight.
    :param reason: one sentence saying why.
    :param retry_at: when a refused attempt may be let through; None when allowed, when it
        depends on a probe still in flight, or when only an operator can clear the breaker.
    """

    allowed: bool
    state: BreakerState
    reason: str
    retry_at: dt.datetime | None = attrs.field(default=None, converter=_utc_or_none)


# --------------------------------------------------------------------------------------------
# Transitions


def _aware_now(now: dt.datetime) -> dt.datetime:
    if now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    return now.astimezone(dt.UTC)


def _in_window(
    failures: tuple[dt.datetime, ...], now: dt.datetime, policy: BreakerPolicy
) -> tuple[dt.datetime, ...]:
    # The window is (now - cooldown, now]; failures "after" now (a clock stepped back) stay
    # counted, since dropping them would loosen the breaker.
    start = now - policy.cooldown
    return tuple(failure for failure in failures if failure > start)


def _decide_closed(state: BreakerState, now: dt.datetime, policy: BreakerPolicy) -> Decision:
    failures = _in_window(state.failures, now, policy)
    pruned = attrs.evolve(state, failures=failures)
    if len(failures) >= policy.max_attempts:
        # Only reachable from a stored state and a stricter policy than the one that wrote it:
        # refuse until enough failures have left the window.
        retry_at = failures[-policy.max_attempts] + policy.cooldown
        reason = f"{len(failures)} failed attempts inside the cooldown window"
        return Decision(allowed=False, state=pruned, reason=reason, retry_at=retry_at)
    return Decision(allowed=True, state=pruned, reason="closed: attempts are allowed")


def _decide_open(state: BreakerState, now: dt.datetime, policy: BreakerPolicy) -> Decision:
    if state.opened_at is None:  # BreakerState refuses this; narrows the type
        raise ValueError("an OPEN breaker needs opened_at")
    retry_at = state.opened_at + policy.cooldown
    if now < retry_at:
        reason = "open: too many failed attempts; waiting for the cooldown"
        return Decision(allowed=False, state=state, reason=reason, retry_at=retry_at)
    probing = attrs.evolve(
        state,
        status=BreakerStatus.HALF_OPEN,
        probe_in_flight=True,
        failures=_in_window(state.failures, now, policy),
    )
    reason = "cooldown over: half-open, one probe attempt is let through"
    return Decision(allowed=True, state=probing, reason=reason)


def decide(state: BreakerState, now: dt.datetime, policy: BreakerPolicy) -> Decision:
    """Whether an attempt may go ahead now, and the breaker's state after deciding.

    - CLOSED: allowed; failures that left the window ``(now - cooldown, now]`` are dropped.
    - OPEN: refused until ``opened_at + cooldown``; from then on the breaker turns HALF_OPEN and
      lets exactly one probe through (``probe_in_flight``).
    - HALF_OPEN: refused while the probe is in flight: its outcome decides. A probe that died
      without one (the healer crashed) must be recorded as a FAILURE, or the breaker waits
      for it until an operator resets it.
    - HELD: always refused; only :func:`reset` clears it.

    A refused attempt leaves the state as it was (apart from pruning expired failures).

    :param state: the stored state.
    :param now: the current time, timezone-aware.
    :param policy: the breaker's settings.
    :returns: a new decision.
    :raises ValueError: when ``now`` is naive.
    """
    now = _aware_now(now)
    if state.status is BreakerStatus.CLOSED:
        return _decide_closed(state, now, policy)
    if state.status is BreakerStatus.OPEN:
        return _decide_open(state, now, policy)
    if state.status is BreakerStatus.HALF_OPEN:
        if state.probe_in_flight:
            reason = "half-open: the probe attempt is still in flight"
            return Decision(allowed=False, state=state, reason=reason)
        probing = attrs.evolve(state, probe_in_flight=True)
        reason = "half-open: one probe attempt is let through"
        return Decision(allowed=True, state=probing, reason=reason)
    return Decision(allowed=False, state=state, reason="held: only an operator can clear it")


def _record_failure(state: BreakerState, now: dt.datetime, policy: BreakerPolicy) -> BreakerState:
    failures = (*_in_window(state.failures, now, policy), now)
    if state.status is BreakerStatus.HALF_OPEN:
        reopen_count = state.reopen_count + 1
        status = BreakerStatus.HELD if reopen_count >= policy.max_reopens else BreakerStatus.OPEN
        return attrs.evolve(
            state,
            status=status,
            failures=failures,
            opened_at=now,
            probe_in_flight=False,
            reopen_count=reopen_count,
            last_attempt=now,
        )
    if len(failures) >= policy.max_attempts:
        return attrs.evolve(
            state,
            status=BreakerStatus.OPEN,
            failures=failures,
            opened_at=now,
            last_attempt=now,
        )
    return attrs.evolve(state, failures=failures, last_attempt=now)


def record(
    state: BreakerState, outcome: Outcome, now: dt.datetime, policy: BreakerPolicy
) -> BreakerState:
    """The state after an attempt that :func:`decide` allowed ended with ``outcome``.

    - A success, in any state, closes the breaker and forgets every failure and re-opening.
    - A failure while CLOSED joins the window; the ``max_attempts``-th failure inside it opens
      the breaker (``opened_at = now``).
    - A failed probe (HALF_OPEN) re-opens the breaker and counts one more re-opening; the
      ``max_reopens``-th holds it for an operator.

    ``last_attempt`` becomes ``now`` in every case.

    :param state: the state returned by the :class:`Decision` that allowed the attempt.
    :param outcome: how the attempt ended.
    :param now: when it ended, timezone-aware.
    :param policy: the breaker's settings.
    :returns: a new state.
    :raises ValueError: when ``now`` is naive, ``outcome`` is not an :class:`Outcome`, or
        ``state`` could not have allowed an attempt (OPEN, HELD, or HALF_OPEN without a probe
        in flight).
    """
    now = _aware_now(now)
    outcome = Outcome(outcome)  # a plain "SUCCESS" must not count as a failure
    probing = state.status is BreakerStatus.HALF_OPEN and state.probe_in_flight
    if state.status is not BreakerStatus.CLOSED and not probing:
        what = (
            "a HALF_OPEN breaker with no probe in flight"
            if state.status is BreakerStatus.HALF_OPEN
            else f"an {state.status} breaker"
        )
        raise ValueError(f"cannot record an attempt on {what}: the attempt was never allowed")
    if outcome is Outcome.SUCCESS:
        return BreakerState.closed(last_attempt=now)
    return _record_failure(state, now, policy)


def reset(state: BreakerState) -> BreakerState:
    """The state after an operator clears the breaker: closed, with nothing counted.

    :param state: the stored state, whatever its status.
    :returns: a new closed state that keeps ``last_attempt``.
    """
    return BreakerState.closed(last_attempt=state.last_attempt)


_OPENED = frozenset({BreakerStatus.OPEN, BreakerStatus.HELD})


def tripped(before: BreakerState, after: BreakerState) -> bool:
    """Whether going from ``before`` to ``after`` opened the breaker (a trip, for metrics).

    True when ``after`` is OPEN or HELD and either ``before`` was not, or the breaker opened
    again in between (a failed probe: ``opened_at`` moved).

    :param before: the state before the attempt (or before deciding).
    :param after: the state after recording the attempt.
    """
    if after.status not in _OPENED:
        return False
    return before.status not in _OPENED or before.opened_at != after.opened_at


# --------------------------------------------------------------------------------------------
# JSON


def state_to_json(state: BreakerState) -> dict[str, Any]:
    """The state as JSON-ready data (datetimes as ISO 8601 with offset, enums as values).

    :param state: the state to store.
    :returns: a new dict; :func:`state_from_json` turns it back into an equal state.
    """
    data: dict[str, Any] = serde.unstructure(state)
    return data


def state_from_json(data: Mapping[str, Any]) -> BreakerState:
    """A state from the data :func:`state_to_json` produced.

    :param data: the stored data.
    :returns: a new state.
    :raises cattrs.errors.ClassValidationError: when the data does not describe a valid state.
    """
    return serde.structure(dict(data), BreakerState)
