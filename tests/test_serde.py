"""The one converter: every value object survives JSON and comes back equal."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given

import strategies as hs
from universal_healer import serde
from universal_healer.executions import Approval, Execution
from universal_healer.model import (
    Application,
    CallableStep,
    CheckCategory,
    CheckResult,
    CheckStatus,
    HealingAction,
    HealingPlan,
    PlannedAction,
    RiskLevel,
    Step,
)


def round_trip(value, cls):
    """Through real JSON text, as the registry and the API store it."""
    return serde.loads(json.dumps(json.loads(serde.dumps(value))), cls)


class TestRoundTrips:
    @given(hs.check_results())
    def test_a_check_result_round_trips(self, result):
        assert round_trip(result, CheckResult) == result

    @given(hs.healing_actions())
    def test_a_healing_action_round_trips(self, action):
        assert round_trip(action, HealingAction) == action

    @given(hs.applications())
    def test_an_application_round_trips(self, app):
        assert round_trip(app, Application) == app

    @given(hs.executions())
    def test_an_execution_round_trips(self, execution):
        assert round_trip(execution, Execution) == execution

    @given(hs.approvals())
    def test_an_approval_round_trips(self, approval):
        assert round_trip(approval, Approval) == approval

    @given(hs.check_results(), hs.healing_actions())
    def test_a_plan_round_trips(self, result, action):
        plan = HealingPlan(needs_approval=[PlannedAction(result=result, action=action, reason="r")])
        assert round_trip(plan, HealingPlan) == plan


class TestShapes:
    def test_enums_travel_as_their_values_and_datetimes_as_iso_8601(self):
        data = json.loads(serde.dumps(_result()))
        assert (data["status"], data["severity"]) == ("FAIL", "HIGH")
        stamp = dt.datetime(2026, 11, 26, 12, 30, tzinfo=dt.UTC)
        assert serde.unstructure(stamp) == "2026-11-26T12:30:00+00:00"

    def test_a_callable_step_travels_as_its_description(self):
        async def edit(host, app):
            return "done"

        action = HealingAction(
            name="edit", description="d", risk=RiskLevel.LOW, check="c",
            steps=[CallableStep(description="rewrite one line", run=edit)],
        )  # fmt: skip
        data = json.loads(serde.dumps(action))
        assert data["steps"] == [
            {"kind": "callable", "description": "rewrite one line", "timeout": 120.0}
        ]

    def test_a_callable_step_cannot_be_rebuilt_from_a_record(self):
        data = {"kind": "callable", "description": "rewrite one line", "timeout": 1.0}
        with pytest.raises(ValueError, match="cannot be rebuilt"):
            serde.structure(data, Step)

    def test_a_naive_datetime_is_refused_on_the_way_in(self):
        with pytest.raises(ValueError, match="aware"):
            serde.structure("2026-01-01T00:00:00", dt.datetime)


def _result() -> CheckResult:
    return CheckResult(
        check="x",
        category=CheckCategory.SYSTEM,
        status=CheckStatus.FAIL,
        severity=RiskLevel.HIGH,
        message="m",
    )
