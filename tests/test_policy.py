"""Tests of universal_healer.policy: the auto-heal table, planning, health score and status."""

from __future__ import annotations

import itertools

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import strategies as hs
from universal_healer.model import (
    CheckCategory,
    CheckResult,
    CheckStatus,
    HealingAction,
    HealingMode,
    HealingPlan,
    HealthStatus,
    RiskLevel,
)
from universal_healer.policy import (
    DEFAULT_MIN_CONSECUTIVE,
    can_auto_heal,
    finding_is_persistent,
    health_score,
    health_status,
    needs_backup,
    plan_healing,
)

MANUAL, SUPERVISED, AUTO = HealingMode.MANUAL, HealingMode.SUPERVISED, HealingMode.AUTO
LOW, MEDIUM, HIGH, CRITICAL = RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH, RiskLevel.CRITICAL
PASS, WARN, FAIL, ERROR = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.ERROR


def result(
    check: str = "disk_space",
    status: CheckStatus = FAIL,
    severity: RiskLevel = MEDIUM,
    message: str = "a finding",
) -> CheckResult:
    return CheckResult(
        check=check,
        category=CheckCategory.SYSTEM,
        status=status,
        severity=severity,
        message=message,
    )


def action(check: str = "disk_space", risk: RiskLevel = LOW, *, backup: bool = False):
    return HealingAction(
        name=f"fix_{check}", description="fix it", risk=risk, check=check, requires_backup=backup
    )


def planned_results(plan: HealingPlan) -> list[CheckResult]:
    return [planned.result for planned in (*plan.auto, *plan.needs_approval)]


# The plan's section 6.1, written out cell by cell (mode x action risk).
AUTO_HEAL_TABLE = [
    pytest.param(MANUAL, LOW, False, id="manual-low-waits"),
    pytest.param(MANUAL, MEDIUM, False, id="manual-medium-waits"),
    pytest.param(MANUAL, HIGH, False, id="manual-high-waits"),
    pytest.param(MANUAL, CRITICAL, False, id="manual-critical-waits"),
    pytest.param(SUPERVISED, LOW, True, id="supervised-low-heals"),
    pytest.param(SUPERVISED, MEDIUM, False, id="supervised-medium-waits"),
    pytest.param(SUPERVISED, HIGH, False, id="supervised-high-waits"),
    pytest.param(SUPERVISED, CRITICAL, False, id="supervised-critical-waits"),
    pytest.param(AUTO, LOW, True, id="auto-low-heals"),
    pytest.param(AUTO, MEDIUM, True, id="auto-medium-heals"),
    pytest.param(AUTO, HIGH, False, id="auto-high-waits"),
    pytest.param(AUTO, CRITICAL, False, id="auto-critical-waits"),
]


class TestCanAutoHeal:
    @pytest.mark.parametrize(("mode", "risk", "expected"), AUTO_HEAL_TABLE)
    def test_auto_heal_follows_the_plans_table(self, mode, risk, expected):
        assert can_auto_heal(mode, risk) is expected

    def test_the_table_covers_every_mode_and_risk(self):
        """A new mode or risk level must get its own row above, not a computed default."""
        cells = {(param.values[0], param.values[1]) for param in AUTO_HEAL_TABLE}
        assert cells == set(itertools.product(HealingMode, RiskLevel))
        assert len(AUTO_HEAL_TABLE) == len(cells)

    @given(mode=hs.healing_modes())
    def test_high_and_critical_actions_are_never_automatic_in_any_mode(self, mode):
        assert not can_auto_heal(mode, HIGH)
        assert not can_auto_heal(mode, CRITICAL)


class TestNeedsBackup:
    @pytest.mark.parametrize(
        ("risk", "requires_backup", "expected"),
        [
            pytest.param(LOW, False, False, id="low-without-flag-needs-none"),
            pytest.param(LOW, True, True, id="low-that-asks-gets-one"),
            pytest.param(MEDIUM, False, True, id="medium-always"),
            pytest.param(HIGH, False, True, id="high-always"),
            pytest.param(CRITICAL, False, True, id="critical-always"),
            pytest.param(CRITICAL, True, True, id="critical-that-asks"),
        ],
    )
    def test_backup_is_needed_from_medium_risk_or_when_asked(self, risk, requires_backup, expected):
        assert needs_backup(action(risk=risk, backup=requires_backup)) is expected

    @pytest.mark.parametrize(
        ("risk", "requires_backup", "expected"),
        [
            pytest.param(HIGH, False, False, id="high-changing-no-data-needs-none"),
            pytest.param(MEDIUM, False, False, id="medium-changing-no-data-needs-none"),
            pytest.param(HIGH, True, True, id="unless-it-asks"),
        ],
    )
    def test_an_action_that_changes_no_data_needs_no_backup(self, risk, requires_backup, expected):
        quiet = attrs.evolve(action(risk=risk, backup=requires_backup), changes_data=False)
        assert needs_backup(quiet) is expected


class TestPlanHealing:
    def test_a_low_risk_action_heals_a_high_severity_finding_automatically(self):
        """Risk belongs to the action: clearing a cache is LOW even when the finding is HIGH."""
        finding = result("cache_size", FAIL, HIGH)
        plan = plan_healing([finding], {"cache_size": action("cache_size", LOW)}, SUPERVISED)
        assert [p.result for p in plan.auto] == [finding]
        assert plan.needs_approval == ()

    def test_a_high_risk_action_waits_even_for_a_low_severity_finding(self):
        finding = result("php_version", WARN, LOW)
        plan = plan_healing([finding], {"php_version": action("php_version", HIGH)}, AUTO)
        assert plan.auto == ()
        assert [p.result for p in plan.needs_approval] == [finding]

    @pytest.mark.parametrize(
        ("mode", "risk", "reason"),
        [
            pytest.param(
                AUTO, MEDIUM, "AUTO mode heals MEDIUM-risk actions automatically", id="auto-medium"
            ),
            pytest.param(
                SUPERVISED,
                LOW,
                "SUPERVISED mode heals LOW-risk actions automatically",
                id="sup-low",
            ),
            pytest.param(
                MANUAL, LOW, "MANUAL mode heals nothing without an approval", id="manual-low"
            ),
            pytest.param(
                SUPERVISED,
                MEDIUM,
                "SUPERVISED mode heals only LOW-risk actions automatically; "
                "MEDIUM-risk actions wait",
                id="supervised-medium",
            ),
            pytest.param(
                AUTO, HIGH, "HIGH-risk actions always wait for an approval", id="auto-high"
            ),
            pytest.param(
                MANUAL, HIGH, "HIGH-risk actions always wait for an approval", id="manual-high"
            ),
            pytest.param(
                AUTO,
                CRITICAL,
                "CRITICAL-risk actions run only on an approval that names them",
                id="auto-critical",
            ),
        ],
    )
    def test_each_planned_action_says_why_in_a_sentence(self, mode, risk, reason):
        plan = plan_healing([result()], {"disk_space": action(risk=risk)}, mode)
        (planned,) = (*plan.auto, *plan.needs_approval)
        assert planned.reason == reason

    def test_a_failure_without_a_strategy_cannot_heal(self):
        finding = result("wp_core_integrity", FAIL, HIGH)
        plan = plan_healing([finding], {}, AUTO)
        assert [(u.result, u.reason) for u in plan.cannot_heal] == [
            (finding, "no healing strategy for this finding")
        ]

    def test_an_error_cannot_heal_even_when_an_action_is_on_offer(self):
        """The check did not run, so nobody knows what there is to heal."""
        broken = result("db_connection", ERROR, HIGH, message="timed out after 30 s")
        plan = plan_healing([broken], {"db_connection": action("db_connection", LOW)}, AUTO)
        assert plan.auto == plan.needs_approval == ()
        assert [(u.result, u.reason) for u in plan.cannot_heal] == [
            (broken, "the check could not run: timed out after 30 s")
        ]

    @pytest.mark.parametrize(
        "finding",
        [
            pytest.param(result(status=WARN), id="warn-without-action"),
            pytest.param(result(status=PASS), id="pass-without-action"),
        ],
    )
    def test_warnings_without_an_action_and_passes_are_left_out(self, finding):
        assert plan_healing([finding], {}, AUTO).empty

    def test_a_pass_is_left_out_even_with_an_action(self):
        plan = plan_healing([result(status=PASS)], {"disk_space": action()}, AUTO)
        assert plan.empty

    def test_findings_are_ordered_by_severity_then_check_name(self):
        results = [
            result("b_low", FAIL, LOW),
            result("z_high", FAIL, HIGH),
            result("a_high", WARN, HIGH),
            result("m_critical", FAIL, CRITICAL),
            result("a_low", FAIL, LOW),
        ]
        actions = {r.check: action(r.check, LOW) for r in results}
        plan = plan_healing(results, actions, AUTO)
        assert [p.result.check for p in plan.auto] == [
            "m_critical",
            "a_high",
            "z_high",
            "a_low",
            "b_low",
        ]

    def test_the_plan_holds_tuples(self):
        results = [result("a", FAIL), result("b", FAIL), result("c", ERROR)]
        plan = plan_healing(results, {"a": action("a", LOW), "b": action("b", HIGH)}, AUTO)
        assert isinstance(plan.auto, tuple)
        assert isinstance(plan.needs_approval, tuple)
        assert isinstance(plan.cannot_heal, tuple)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            plan.auto = ()  # type: ignore[misc]

    @given(diagnosis=hs.diagnoses(), mode=hs.healing_modes())
    def test_every_finding_with_an_action_lands_once_in_auto_or_approval_by_the_actions_risk(
        self, diagnosis, mode
    ):
        results, actions = diagnosis
        plan = plan_healing(results, actions, mode)

        healable = [r for r in results if r.status in (FAIL, WARN) and r.check in actions]
        auto = [r for r in healable if can_auto_heal(mode, actions[r.check].risk)]
        waiting = [r for r in healable if not can_auto_heal(mode, actions[r.check].risk)]
        assert sorted(id(p.result) for p in plan.auto) == sorted(map(id, auto))
        assert sorted(id(p.result) for p in plan.needs_approval) == sorted(map(id, waiting))
        for planned in (*plan.auto, *plan.needs_approval):
            assert planned.action is actions[planned.result.check]
        assert all(planned.action.risk < HIGH for planned in plan.auto), "HIGH+ ran unapproved"

    @given(diagnosis=hs.diagnoses(), mode=hs.healing_modes())
    def test_cannot_heal_holds_exactly_errors_and_failures_without_an_action(self, diagnosis, mode):
        results, actions = diagnosis
        plan = plan_healing(results, actions, mode)
        expected = [
            r for r in results if r.status is ERROR or (r.status is FAIL and r.check not in actions)
        ]
        assert sorted(id(u.result) for u in plan.cannot_heal) == sorted(map(id, expected))

    @given(
        risk=hs.risk_levels(),
        severities=st.lists(hs.risk_levels(), min_size=2, max_size=2, unique=True),
        status=st.sampled_from([FAIL, WARN]),
        mode=hs.healing_modes(),
    )
    def test_the_decision_follows_the_actions_risk_not_the_findings_severity(
        self, risk, severities, status, mode
    ):
        """One action answers findings whose severity differs from its risk: one verdict."""
        severities = [severity for severity in severities if severity != risk]  # one or two
        proposed = {"cache_size": action("cache_size", risk)}
        for severity in severities:
            plan = plan_healing([result("cache_size", status, severity)], proposed, mode)
            assert len(plan.auto) == int(can_auto_heal(mode, risk))
            assert len(plan.needs_approval) == int(not can_auto_heal(mode, risk))

    @given(data=st.data(), mode=hs.healing_modes())
    def test_the_plan_is_ordered_by_severity_then_check_whatever_the_input_order(self, data, mode):
        results, actions = data.draw(hs.diagnoses())
        plan = plan_healing(results, actions, mode)
        for part in (plan.auto, plan.needs_approval, plan.cannot_heal):
            keys = [(-entry.result.severity.rank, entry.result.check) for entry in part]
            assert keys == sorted(keys)

        # Results that tie on severity and check keep their input order, so only a diagnosis
        # with one result per check is fully independent of it.
        distinct = list({r.check: r for r in results}.values())
        shuffled = data.draw(st.permutations(distinct))
        assert plan_healing(shuffled, actions, mode) == plan_healing(distinct, actions, mode)


class TestHealthScore:
    @pytest.mark.parametrize(
        ("results", "expected"),
        [
            pytest.param([result(status=PASS)], 100, id="one-pass"),
            pytest.param([result(status=FAIL, severity=LOW)], 95, id="fail-low"),
            pytest.param([result(status=FAIL, severity=MEDIUM)], 85, id="fail-medium"),
            pytest.param([result(status=FAIL, severity=HIGH)], 70, id="fail-high"),
            pytest.param([result(status=FAIL, severity=CRITICAL)], 50, id="fail-critical"),
            pytest.param([result(status=WARN, severity=LOW)], 98, id="warn-low"),
            pytest.param([result(status=WARN, severity=MEDIUM)], 95, id="warn-medium"),
            pytest.param([result(status=WARN, severity=HIGH)], 90, id="warn-high"),
            pytest.param([result(status=WARN, severity=CRITICAL)], 83, id="warn-critical"),
            pytest.param([result(status=ERROR, severity=CRITICAL)], 98, id="error"),
            pytest.param(
                [result(status=FAIL, severity=HIGH), result(status=WARN, severity=MEDIUM)],
                65,
                id="penalties-add-up",
            ),
            pytest.param([result(status=FAIL, severity=CRITICAL)] * 3, 0, id="clamped-at-zero"),
        ],
    )
    def test_score_is_100_minus_the_penalties(self, results, expected):
        assert health_score(results) == expected

    def test_no_results_score_zero_for_an_unknown_health(self):
        assert health_score([]) == 0
        assert health_status([]) is HealthStatus.UNKNOWN

    @given(results=st.lists(hs.findings(), max_size=12))
    def test_score_is_always_within_0_and_100(self, results):
        assert 0 <= health_score(results) <= 100

    @given(
        results=st.lists(hs.findings(), min_size=1, max_size=12),
        failure=hs.findings(status=st.just(FAIL)),
        at=st.integers(0, 12),
    )
    def test_adding_a_failure_never_raises_the_score(self, results, failure, at):
        """Monotone for any diagnosis with results (no results is 'unknown', scored 0)."""
        worse = [*results[:at], failure, *results[at:]]
        assert health_score(worse) <= health_score(results)


class TestHealthStatus:
    @pytest.mark.parametrize(
        ("results", "expected"),
        [
            pytest.param([], HealthStatus.UNKNOWN, id="no-results"),
            pytest.param([result(status=ERROR)] * 2, HealthStatus.UNKNOWN, id="only-errors"),
            pytest.param([result(status=PASS)], HealthStatus.HEALTHY, id="all-pass"),
            pytest.param(
                [result(status=PASS), result(status=ERROR)], HealthStatus.HEALTHY, id="one-error"
            ),
            pytest.param(
                [result(status=PASS)] + [result(status=ERROR)] * 6,
                HealthStatus.DEGRADED,
                id="many-errors-pull-the-score-under-90",
            ),
            pytest.param([result(severity=HIGH)], HealthStatus.CRITICAL, id="high-fail"),
            pytest.param([result(severity=CRITICAL)], HealthStatus.CRITICAL, id="critical-fail"),
            pytest.param([result(severity=MEDIUM)], HealthStatus.DEGRADED, id="medium-fail"),
            pytest.param(
                [result(status=WARN, severity=CRITICAL)],
                HealthStatus.DEGRADED,
                id="critical-warning-is-not-critical",
            ),
            pytest.param([result(status=WARN, severity=LOW)], HealthStatus.DEGRADED, id="warn"),
            pytest.param(
                [result(f"c{i}", FAIL, MEDIUM) for i in range(4)],
                HealthStatus.CRITICAL,
                id="medium-failures-pull-the-score-under-50",
            ),
        ],
    )
    def test_status_follows_the_worst_finding_and_the_score(self, results, expected):
        assert health_status(results) is expected

    @pytest.mark.parametrize(
        ("score", "expected"),
        [
            pytest.param(100, HealthStatus.HEALTHY, id="100-healthy"),
            pytest.param(90, HealthStatus.HEALTHY, id="90-healthy"),
            pytest.param(89, HealthStatus.DEGRADED, id="89-degraded"),
            pytest.param(50, HealthStatus.DEGRADED, id="50-degraded"),
            pytest.param(49, HealthStatus.CRITICAL, id="49-critical"),
        ],
    )
    def test_a_given_score_is_used_instead_of_computing_one(self, score, expected):
        assert health_status([result(status=PASS)], score) is expected

    def test_a_given_score_does_not_make_an_error_only_diagnosis_known(self):
        assert health_status([result(status=ERROR)], 100) is HealthStatus.UNKNOWN

    @given(results=st.lists(hs.findings(), max_size=12))
    def test_status_is_unknown_exactly_when_no_check_ran(self, results):
        ran = [r for r in results if r.status is not ERROR]
        assert (health_status(results) is HealthStatus.UNKNOWN) == (not ran)

    @given(results=st.lists(hs.findings(), min_size=1, max_size=12))
    def test_a_healthy_status_means_no_findings_and_a_score_of_at_least_90(self, results):
        if health_status(results) is HealthStatus.HEALTHY:
            assert health_score(results) >= 90
            assert all(r.status in (PASS, ERROR) for r in results)


class TestFindingIsPersistent:
    @pytest.mark.parametrize(
        ("history", "required", "expected"),
        [
            pytest.param([], 2, False, id="no-history"),
            pytest.param([FAIL], 2, False, id="one-failure-is-not-enough"),
            pytest.param([FAIL, FAIL], 2, True, id="two-failures"),
            pytest.param([WARN, FAIL], 2, True, id="warn-then-fail"),
            pytest.param([FAIL, PASS], 2, False, id="recovered"),
            pytest.param([FAIL, ERROR], 2, False, id="error-breaks-the-run"),
            pytest.param([PASS, FAIL, FAIL], 2, True, id="older-pass-does-not-matter"),
            pytest.param([FAIL, PASS, FAIL], 2, False, id="interrupted"),
            pytest.param([FAIL], 1, True, id="one-required"),
            pytest.param([FAIL, FAIL, WARN], 3, True, id="three-required"),
            pytest.param([FAIL, FAIL], 3, False, id="three-required-two-seen"),
        ],
    )
    def test_the_last_statuses_must_all_be_findings(self, history, required, expected):
        assert finding_is_persistent(history, required=required) is expected

    def test_by_default_two_consecutive_diagnoses_are_needed(self):
        assert DEFAULT_MIN_CONSECUTIVE == 2
        assert not finding_is_persistent([PASS, FAIL])
        assert finding_is_persistent([FAIL, WARN])

    @pytest.mark.parametrize(
        "required", [pytest.param(0, id="zero"), pytest.param(-1, id="negative")]
    )
    def test_requiring_fewer_than_one_status_is_refused(self, required):
        with pytest.raises(ValueError, match="at least 1"):
            finding_is_persistent([FAIL], required=required)
