"""Tests of universal_healer.breaker: scenarios, then a state machine that hunts for a way out."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cattrs.errors import ClassValidationError
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

import strategies as hs
from universal_healer.breaker import (
    BreakerPolicy,
    BreakerState,
    BreakerStatus,
    Decision,
    Outcome,
    decide,
    record,
    reset,
    state_from_json,
    state_to_json,
    tripped,
)

CLOSED, OPEN = BreakerStatus.CLOSED, BreakerStatus.OPEN
HALF_OPEN, HELD = BreakerStatus.HALF_OPEN, BreakerStatus.HELD
SUCCESS, FAILURE = Outcome.SUCCESS, Outcome.FAILURE

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
POLICY = BreakerPolicy()
HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)
TICK = dt.timedelta(microseconds=1)


def minutes(n: float) -> dt.datetime:
    return T0 + n * MINUTE


def attempt(state: BreakerState, outcome: Outcome, at: dt.datetime) -> BreakerState:
    """Ask, and when allowed, record how the attempt ended (what the executor does)."""
    decision = decide(state, at, POLICY)
    assert decision.allowed, decision.reason
    return record(decision.state, outcome, at, POLICY)


def opened_at_t0() -> BreakerState:
    """A breaker that three failures opened at T0."""
    state = BreakerState.initial()
    for _ in range(3):
        state = attempt(state, FAILURE, T0)
    assert state.status is OPEN
    return state


def held() -> BreakerState:
    """A breaker whose probes failed max_reopens times."""
    state = opened_at_t0()
    at = T0
    for _ in range(POLICY.max_reopens):
        at += HOUR
        state = attempt(state, FAILURE, at)
    assert state.status is HELD
    return state


class TestBreakerPolicy:
    def test_defaults_are_the_plans_three_attempts_and_one_hour(self):
        policy = BreakerPolicy()
        assert (policy.max_attempts, policy.cooldown_s, policy.max_reopens) == (3, 3600, 3)
        assert policy.cooldown == HOUR

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"max_attempts": 0}, id="no-attempts"),
            pytest.param({"max_attempts": -1}, id="negative-attempts"),
            pytest.param({"cooldown_s": 0}, id="no-cooldown"),
            pytest.param({"cooldown_s": -5.0}, id="negative-cooldown"),
            pytest.param({"cooldown_s": float("nan")}, id="nan-cooldown"),
            pytest.param({"cooldown_s": float("inf")}, id="endless-cooldown"),
            pytest.param({"max_reopens": 0}, id="no-reopens"),
        ],
    )
    def test_settings_must_be_positive(self, kwargs):
        with pytest.raises(ValueError, match="positive"):
            BreakerPolicy(**kwargs)


class TestBreakerState:
    def test_a_new_breaker_is_closed_with_nothing_counted(self):
        state = BreakerState.initial()
        assert state == BreakerState.closed()
        assert state.status is CLOSED
        assert state.failures == ()
        assert state.opened_at is None
        assert state.probe_in_flight is False
        assert state.reopen_count == 0
        assert state.last_attempt is None

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"failures": (dt.datetime(2024, 1, 1),)}, id="failures"),  # noqa: DTZ001
            pytest.param(
                {"status": OPEN, "opened_at": dt.datetime(2024, 1, 1)},  # noqa: DTZ001
                id="opened-at",
            ),
            pytest.param({"last_attempt": dt.datetime(2024, 1, 1)}, id="last-attempt"),  # noqa: DTZ001
        ],
    )
    def test_naive_datetimes_are_refused(self, kwargs):
        with pytest.raises(ValueError, match="timezone-aware"):
            BreakerState(**kwargs)

    def test_a_status_given_as_its_value_becomes_the_enum(self):
        assert BreakerState(status="HELD").status is HELD

    def test_datetimes_are_kept_in_utc(self):
        paris = dt.timezone(dt.timedelta(hours=2))
        state = BreakerState(failures=(dt.datetime(2024, 5, 1, 14, tzinfo=paris),))
        assert state.failures == (T0,)
        assert state.failures[0].tzinfo is dt.UTC

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"status": OPEN}, id="open-without-opened-at"),
            pytest.param({"status": HALF_OPEN}, id="half-open-without-opened-at"),
            pytest.param({"probe_in_flight": True}, id="probe-while-closed"),
            pytest.param(
                {"status": OPEN, "opened_at": T0, "probe_in_flight": True}, id="probe-while-open"
            ),
            pytest.param({"reopen_count": -1}, id="negative-reopen-count"),
        ],
    )
    def test_inconsistent_states_are_refused(self, kwargs):
        with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
            BreakerState(**kwargs)


class TestDecide:
    def test_a_closed_breaker_lets_attempts_through(self):
        decision = decide(BreakerState.initial(), T0, POLICY)
        assert decision == Decision(
            allowed=True, state=BreakerState.initial(), reason="closed: attempts are allowed"
        )

    def test_breaker_refuses_fourth_attempt_inside_cooldown(self):
        state = BreakerState.initial()
        for at in (minutes(0), minutes(10), minutes(20)):
            state = attempt(state, FAILURE, at)
        assert state.status is OPEN
        assert state.opened_at == minutes(20)

        decision = decide(state, minutes(30), POLICY)

        assert not decision.allowed
        assert decision.state == state
        assert decision.retry_at == minutes(20) + HOUR

    def test_failures_spread_wider_than_the_cooldown_do_not_open_the_breaker(self):
        state = BreakerState.initial()
        for at in (minutes(0), minutes(30), minutes(61)):
            state = attempt(state, FAILURE, at)
        assert state.status is CLOSED
        assert state.failures == (minutes(30), minutes(61))

    def test_deciding_drops_failures_that_left_the_window(self):
        """The window is (now - cooldown, now]: a failure exactly one cooldown old is out."""
        state = attempt(attempt(BreakerState.initial(), FAILURE, minutes(0)), FAILURE, minutes(1))
        decision = decide(state, minutes(60), POLICY)
        assert decision.allowed
        assert decision.state.failures == (minutes(1),)

    def test_an_open_breaker_refuses_until_one_microsecond_before_the_cooldown_ends(self):
        decision = decide(opened_at_t0(), T0 + HOUR - TICK, POLICY)
        assert not decision.allowed
        assert decision.retry_at == T0 + HOUR

    def test_after_the_cooldown_exactly_one_probe_is_let_through(self):
        state = opened_at_t0()

        probe = decide(state, T0 + HOUR, POLICY)
        concurrent = decide(probe.state, T0 + HOUR + MINUTE, POLICY)

        assert probe.allowed
        assert probe.state.status is HALF_OPEN
        assert probe.state.probe_in_flight
        assert not concurrent.allowed
        assert concurrent.state == probe.state
        assert concurrent.retry_at is None

    @given(policy=hs.breaker_policies(), opened_at=hs.utc_datetimes(), data=st.data())
    def test_an_open_breaker_lets_a_probe_through_exactly_when_the_cooldown_is_over(
        self, policy, opened_at, data
    ):
        state = BreakerState(status=OPEN, opened_at=opened_at, failures=(opened_at,))
        wait = data.draw(hs.time_advances(policy.cooldown))
        decision = decide(state, opened_at + wait, policy)
        assert decision.allowed == (wait >= policy.cooldown)
        assert decision.state.probe_in_flight == decision.allowed

    def test_a_half_open_breaker_without_a_probe_lets_one_through(self):
        state = BreakerState(status=HALF_OPEN, opened_at=T0)
        decision = decide(state, T0 + HOUR, POLICY)
        assert decision.allowed
        assert decision.state.probe_in_flight

    def test_a_held_breaker_refuses_forever(self):
        state = held()
        decision = decide(state, T0 + dt.timedelta(days=3650), POLICY)
        assert decision == Decision(
            allowed=False, state=state, reason="held: only an operator can clear it", retry_at=None
        )

    def test_a_stricter_policy_refuses_until_enough_failures_leave_the_window(self):
        """A stored closed state with more failures than a new policy allows stays refused."""
        state = BreakerState(failures=(minutes(0), minutes(10), minutes(20)))
        strict = BreakerPolicy(max_attempts=2)
        decision = decide(state, minutes(30), strict)
        assert not decision.allowed
        assert decision.retry_at == minutes(10) + HOUR
        assert decide(state, minutes(70), strict).allowed

    def test_a_naive_now_is_refused(self):
        with pytest.raises(ValueError, match="timezone-aware"):
            decide(BreakerState.initial(), dt.datetime(2024, 1, 1), POLICY)  # noqa: DTZ001

    @given(state=hs.breaker_states(), now=hs.aware_datetimes(), policy=hs.breaker_policies())
    def test_a_refusal_changes_nothing_but_expired_failures(self, state, now, policy):
        decision = decide(state, now, policy)
        if not decision.allowed:
            assert decision.state.status is state.status
            assert decision.state.opened_at == state.opened_at
            assert decision.state.probe_in_flight == state.probe_in_flight
            assert set(decision.state.failures) <= set(state.failures)
            assert decision.retry_at is None or decision.retry_at > now


class TestRecord:
    def test_a_failure_is_counted_and_stamped(self):
        state = attempt(BreakerState.initial(), FAILURE, T0)
        assert state == BreakerState(failures=(T0,), last_attempt=T0)

    def test_the_third_failure_inside_the_window_opens_the_breaker(self):
        state = BreakerState.initial()
        for at in (minutes(0), minutes(1)):
            state = attempt(state, FAILURE, at)
            assert state.status is CLOSED
        state = attempt(state, FAILURE, minutes(2))
        assert state.status is OPEN
        assert state.opened_at == minutes(2)
        assert state.last_attempt == minutes(2)

    def test_a_failure_after_a_long_attempt_counts_the_window_at_its_end(self):
        """Failures that left the window while the attempt ran do not count towards opening."""
        state = BreakerState.initial()
        for at in (minutes(0), minutes(10)):
            state = attempt(state, FAILURE, at)
        decision = decide(state, minutes(50), POLICY)
        state = record(decision.state, FAILURE, minutes(65), POLICY)
        assert state.status is CLOSED
        assert state.failures == (minutes(10), minutes(65))

    def test_a_success_closes_an_open_breaker_and_forgets_everything(self):
        state = opened_at_t0()
        probe = decide(state, T0 + HOUR, POLICY)
        after = record(probe.state, SUCCESS, T0 + HOUR, POLICY)
        assert after == BreakerState.closed(last_attempt=T0 + HOUR)

    def test_a_success_in_a_closed_breaker_forgets_earlier_failures(self):
        state = attempt(attempt(BreakerState.initial(), FAILURE, minutes(0)), FAILURE, minutes(1))
        assert attempt(state, SUCCESS, minutes(2)) == BreakerState.closed(last_attempt=minutes(2))

    def test_a_failed_probe_reopens_the_breaker_for_another_cooldown(self):
        state = attempt(opened_at_t0(), FAILURE, T0 + HOUR)
        assert state.status is OPEN
        assert state.opened_at == T0 + HOUR
        assert state.reopen_count == 1
        assert not state.probe_in_flight
        assert not decide(state, T0 + 2 * HOUR - TICK, POLICY).allowed
        assert decide(state, T0 + 2 * HOUR, POLICY).allowed

    def test_repeated_failed_probes_hold_the_breaker_until_an_operator_resets_it(self):
        state = opened_at_t0()
        for n in range(1, POLICY.max_reopens):
            state = attempt(state, FAILURE, T0 + n * HOUR)
            assert (state.status, state.reopen_count) == (OPEN, n)
        state = attempt(state, FAILURE, T0 + POLICY.max_reopens * HOUR)
        assert (state.status, state.reopen_count) == (HELD, POLICY.max_reopens)

        assert not decide(state, T0 + dt.timedelta(days=365), POLICY).allowed
        cleared = reset(state)
        assert cleared.status is CLOSED
        assert decide(cleared, T0 + dt.timedelta(days=365), POLICY).allowed

    def test_a_successful_probe_clears_the_reopen_count(self):
        state = attempt(opened_at_t0(), FAILURE, T0 + HOUR)
        state = attempt(state, SUCCESS, T0 + 2 * HOUR)
        assert state.status is CLOSED
        assert state.reopen_count == 0

    @pytest.mark.parametrize(
        "state",
        [
            pytest.param(BreakerState(status=OPEN, opened_at=T0), id="open"),
            pytest.param(BreakerState(status=HELD, opened_at=T0), id="held"),
            pytest.param(BreakerState(status=HALF_OPEN, opened_at=T0), id="half-open-no-probe"),
        ],
    )
    @pytest.mark.parametrize(
        "outcome", [pytest.param(SUCCESS, id="success"), pytest.param(FAILURE, id="failure")]
    )
    def test_an_attempt_that_was_never_allowed_cannot_be_recorded(self, state, outcome):
        with pytest.raises(ValueError, match="never allowed"):
            record(state, outcome, T0 + 2 * HOUR, POLICY)

    def test_an_outcome_given_as_its_value_is_understood(self):
        assert attempt(BreakerState.initial(), "SUCCESS", T0).failures == ()
        with pytest.raises(ValueError, match="SUCCES"):
            record(BreakerState.initial(), "SUCCES", T0, POLICY)

    def test_a_naive_now_is_refused(self):
        with pytest.raises(ValueError, match="timezone-aware"):
            record(BreakerState.initial(), FAILURE, dt.datetime(2024, 1, 1), POLICY)  # noqa: DTZ001

    def test_times_are_stored_in_utc(self):
        tokyo = dt.timezone(dt.timedelta(hours=9))
        state = attempt(BreakerState.initial(), FAILURE, T0.astimezone(tokyo))
        assert state.last_attempt == T0
        assert state.last_attempt.tzinfo is dt.UTC


class TestResetAndTripped:
    @pytest.mark.parametrize(
        "state",
        [
            pytest.param(BreakerState(last_attempt=T0, failures=(T0,)), id="closed"),
            pytest.param(BreakerState(status=OPEN, opened_at=T0, last_attempt=T0), id="open"),
            pytest.param(
                BreakerState(status=HALF_OPEN, opened_at=T0, probe_in_flight=True, last_attempt=T0),
                id="half-open",
            ),
            pytest.param(
                BreakerState(status=HELD, opened_at=T0, reopen_count=3, last_attempt=T0), id="held"
            ),
        ],
    )
    def test_reset_closes_any_breaker_and_keeps_the_last_attempt(self, state):
        assert reset(state) == BreakerState.closed(last_attempt=T0)

    @pytest.mark.parametrize(
        ("before", "after", "expected"),
        [
            pytest.param(
                BreakerState(), BreakerState(status=OPEN, opened_at=T0), True, id="closed-to-open"
            ),
            pytest.param(BreakerState(), BreakerState(failures=(T0,)), False, id="still-closed"),
            pytest.param(
                BreakerState(status=HALF_OPEN, opened_at=T0, probe_in_flight=True),
                BreakerState(status=OPEN, opened_at=T0 + HOUR, reopen_count=1),
                True,
                id="failed-probe-reopens",
            ),
            pytest.param(
                BreakerState(status=HALF_OPEN, opened_at=T0, probe_in_flight=True),
                BreakerState(status=HELD, opened_at=T0 + HOUR, reopen_count=3),
                True,
                id="failed-probe-holds",
            ),
            pytest.param(
                BreakerState(status=OPEN, opened_at=T0),
                BreakerState(status=OPEN, opened_at=T0 + HOUR, reopen_count=1),
                True,
                id="open-before-deciding-reopened-after-the-probe",
            ),
            pytest.param(
                BreakerState(status=OPEN, opened_at=T0),
                BreakerState(status=OPEN, opened_at=T0),
                False,
                id="refused-while-open",
            ),
            pytest.param(
                BreakerState(status=OPEN, opened_at=T0),
                BreakerState(status=HALF_OPEN, opened_at=T0, probe_in_flight=True),
                False,
                id="open-to-half-open",
            ),
            pytest.param(
                BreakerState(status=HELD, opened_at=T0),
                BreakerState(),
                False,
                id="reset",
            ),
        ],
    )
    def test_tripped_says_whether_a_transition_opened_the_breaker(self, before, after, expected):
        assert tripped(before, after) is expected


class TestJson:
    def test_the_stored_shape_is_plain_json(self):
        state = attempt(opened_at_t0(), FAILURE, T0 + HOUR)
        assert state_to_json(state) == {
            "status": "OPEN",
            "failures": ["2024-05-01T13:00:00+00:00"],
            "opened_at": "2024-05-01T13:00:00+00:00",
            "probe_in_flight": False,
            "reopen_count": 1,
            "last_attempt": "2024-05-01T13:00:00+00:00",
        }

    @given(state=hs.breaker_states())
    def test_any_state_round_trips_exactly_through_json(self, state):
        data = json.loads(json.dumps(state_to_json(state)))
        again = state_from_json(data)
        assert again == state
        assert state_to_json(again) == state_to_json(state)

    @pytest.mark.parametrize(
        "data",
        [
            pytest.param({"status": "OPEN"}, id="open-without-opened-at"),
            pytest.param({"status": "AJAR"}, id="unknown-status"),
            pytest.param({"last_attempt": "2024-05-01T12:00:00"}, id="naive-timestamp"),
        ],
    )
    def test_invalid_data_is_refused(self, data):
        with pytest.raises(ClassValidationError):
            state_from_json(data)


class BreakerMachine(RuleBasedStateMachine):
    """Random clocks and outcomes against a breaker, checked against a model of its promises."""

    def __init__(self) -> None:
        super().__init__()
        self.policy = POLICY
        self.now = T0
        self.state = BreakerState.initial()
        # Failed attempts since the last success or reset: what the window promise is about.
        self.failures: list[dt.datetime] = []

    @initialize(policy=hs.breaker_policies(), start=hs.utc_datetimes())
    def start(self, policy: BreakerPolicy, start: dt.datetime) -> None:
        self.policy = policy
        self.now = start

    # One rule that does a whole step (wait, maybe an operator, attempt): separate rules for
    # each made Hypothesis spend most of the runtime choosing rules, for half the coverage.
    @rule(
        wait=hs.cooldown_thousandths(),
        nudge=hs.clock_nudges(),
        operator_looks=st.booleans(),
        # Failures weigh three to one, or runs seldom get past a few re-openings to HELD.
        outcome=hs.outcomes(failure_weight=3),
        took=st.just(0) | st.integers(1, 1000),
    )
    def an_attempt_after_a_while(
        self, wait: int, nudge: dt.timedelta, operator_looks: bool, outcome: Outcome, took: int
    ) -> None:
        """Wait ``wait`` thousandths of a cooldown (give or take a microsecond), then attempt.

        Meanwhile an operator may look at the breaker, and clear it only if it is held. The
        attempt itself takes ``took`` thousandths of a cooldown.
        """
        self.now += max(self.policy.cooldown * wait / 1000 + nudge, dt.timedelta(0))
        if operator_looks and self.state.status is HELD:
            self.operator_resets()
        before = self.state.status
        self.attempt(outcome, self.policy.cooldown * took / 1000)
        if before is HELD:
            assert self.state.status is HELD, "only an operator can clear a held breaker"

    def operator_resets(self) -> None:
        self.state = reset(self.state)
        assert self.state == BreakerState.closed(last_attempt=self.state.last_attempt)
        assert decide(self.state, self.now, self.policy).allowed
        self.failures = []
        event("an operator reset a held breaker")

    def attempt(self, outcome: Outcome, took: dt.timedelta) -> None:
        before = self.state
        decision = decide(before, self.now, self.policy)
        if not decision.allowed:
            assert before.status is not CLOSED
            assert decision.state == before
            if before.status is HELD:
                assert decision.retry_at is None
            else:
                assert decision.retry_at is not None
                assert decision.retry_at > self.now
            return
        if decision.state.status is HALF_OPEN:
            assert decision.state.probe_in_flight
            concurrent = decide(decision.state, self.now, self.policy)
            assert not concurrent.allowed
            assert concurrent.state == decision.state

        self.now += took
        after = record(decision.state, outcome, self.now, self.policy)

        if outcome is SUCCESS:
            assert after == BreakerState.closed(last_attempt=self.now)
            self.failures = []
        else:
            self.failures.append(self.now)
            window_start = self.now - self.policy.cooldown
            in_window = [failure for failure in self.failures if failure > window_start]
            assert len(in_window) <= self.policy.max_attempts
            if before.status is CLOSED:
                # Opens exactly when the window is full: neither later nor sooner.
                full = len(in_window) == self.policy.max_attempts
                assert (after.status is OPEN) == full
        assert after.last_attempt == self.now
        assert tripped(before, after) == (after.status in (OPEN, HELD))
        event(f"{before.status} -> {after.status}")
        self.state = after

    @invariant()
    def no_probe_is_left_in_flight(self) -> None:
        # Every allowed attempt here is recorded at once, so none is stored half-way.
        assert not self.state.probe_in_flight

    @invariant()
    def reopenings_hold_the_breaker_at_the_limit(self) -> None:
        if self.state.status is HELD:
            assert self.state.reopen_count == self.policy.max_reopens
        else:
            assert self.state.reopen_count < self.policy.max_reopens

    @invariant()
    def a_closed_breaker_holds_fewer_failures_than_the_limit(self) -> None:
        if self.state.status is CLOSED:
            assert len(self.state.failures) < self.policy.max_attempts

    @invariant()
    def the_state_round_trips_exactly_through_json(self) -> None:
        data = json.loads(json.dumps(state_to_json(self.state)))
        assert state_from_json(data) == self.state


TestBreakerMachine = BreakerMachine.TestCase
# Twenty steps can reach HELD under every generated policy (at most 4 failures to open, 3 failed
# probes); the number of runs still comes from the loaded profile.
TestBreakerMachine.settings = settings(stateful_step_count=20)
