"""The plugin's declarations and catalogue, and its strategies' proposals (pure: a finding in,
an action or None out)."""

from __future__ import annotations

import pathlib
from importlib.metadata import entry_points

import pytest
from _mysql_world import make_app, manager
from hypothesis import given
from hypothesis import strategies as st
from universal_healer.model import (
    CallableStep,
    CheckCategory,
    CheckResult,
    CheckStatus,
    RiskLevel,
    StackInfo,
    StackKind,
)

from healer_mysql import plugin
from healer_mysql.backup import MySQLSchemasBackup
from healer_mysql.checks import CHECKS, ConnectionCheck
from healer_mysql.strategies import (
    STRATEGIES,
    KillRunawayQueries,
    RepairCrashedTables,
    RestartService,
)
from healer_mysql.tables import REPAIRABLE_ENGINES

ROOT = pathlib.Path(__file__).parents[1]
MYSQL = plugin.healer_stacks()[0]
OTHER = StackInfo(id="wordpress", display_name="WordPress")


class TestDeclarations:
    def test_declares_mysql_as_a_database_stack(self):
        assert (MYSQL.id, MYSQL.display_name, MYSQL.kind) == (
            "mysql",
            "MySQL / MariaDB",
            StackKind.DATABASE,
        )

    def test_gives_every_check_strategy_and_the_backup_for_mysql_only(self):
        assert [type(c) for c in plugin.healer_get_checks(MYSQL)] == list(CHECKS)
        assert [type(s) for s in plugin.healer_get_strategies(MYSQL)] == list(STRATEGIES)
        assert isinstance(plugin.healer_get_backup(MYSQL), MySQLSchemasBackup)
        assert plugin.healer_get_checks(OTHER) == []
        assert plugin.healer_get_strategies(OTHER) == []
        assert plugin.healer_get_backup(OTHER) is None

    def test_every_check_but_the_connection_depends_on_the_connection(self):
        for check in CHECKS:
            if check is ConnectionCheck:
                assert check.depends_on == ()
            else:
                assert check.depends_on == ("mysql_connection",), check.name

    def test_check_names_are_unique_and_the_readme_and_docs_list_each_as_declared(self):
        names = [check.name for check in CHECKS]
        assert len(set(names)) == len(names)
        for page in (ROOT / "README.md", ROOT / "docs" / "index.md"):
            text = page.read_text()
            for check in CHECKS:
                row = f"| `{check.name}` | {check.category.value} | {check.severity.value} |"
                assert row in text, f"{page.name} has no row {row!r}"

    def test_the_readme_lists_every_strategy_with_its_check(self):
        readme = (ROOT / "README.md").read_text()
        for strategy in STRATEGIES:
            row = f"| `{strategy.name}` | `{strategy.fixes[0]}` |"
            assert row in readme, f"README.md has no row {row!r}"

    def test_the_plugin_manager_loads_it_and_asks_it(self):
        loaded = manager()
        assert loaded.stack("mysql") == MYSQL
        assert {c.name for c in loaded.checks_for("mysql")} == {c.name for c in CHECKS}
        assert isinstance(loaded.backup_for("mysql"), MySQLSchemasBackup)
        assert [f for f in loaded.failures if f.plugin == "mysql"] == []

    def test_the_entry_point_is_installed(self):
        (found,) = [e for e in entry_points(group="universal_healer") if e.name == "mysql"]
        assert found.value == "healer_mysql.plugin"


def finding(check, status=CheckStatus.FAIL, **details):
    return CheckResult(
        check=check,
        category=CheckCategory.DATABASE,
        status=status,
        severity=RiskLevel.HIGH,
        message="found",
        details=details,
    )


def corrupt(engine, *, repairable=None, schema="shop", table="t"):
    return {
        "schema": schema,
        "table": table,
        "engine": engine,
        "crash_marked": engine is None,
        "repairable": engine in REPAIRABLE_ENGINES if repairable is None else repairable,
        "messages": ["error: Corrupt"],
    }


class TestRepairProposals:
    def test_repairs_a_crashed_myisam_table_at_high_risk_with_a_backup(self):
        action = RepairCrashedTables().propose(
            finding("mysql_table_integrity", corrupt=[corrupt("MyISAM")]), make_app()
        )
        assert (action.name, action.risk, action.requires_backup) == (
            "mysql_repair_tables",
            RiskLevel.HIGH,
            True,
        )
        (step,) = action.steps
        assert isinstance(step, CallableStep)
        assert step.description == "REPAIR TABLE shop.t"

    def test_an_innodb_table_gets_no_repair(self):
        result = finding("mysql_table_integrity", corrupt=[corrupt("InnoDB")])
        assert RepairCrashedTables().propose(result, make_app()) is None

    @given(
        st.lists(st.sampled_from([*sorted(REPAIRABLE_ENGINES), None]).map(corrupt), max_size=5),
        st.integers(0, 5),
    )
    def test_one_innodb_table_in_the_finding_means_no_repair_at_all(self, repairable, at):
        """Verification re-runs the whole check: repairing the others would still fail it,
        and a failed verification loads the dump back."""
        tables = list(repairable)
        tables.insert(min(at, len(tables)), corrupt("InnoDB", table="innodb"))
        result = finding("mysql_table_integrity", corrupt=tables)
        assert RepairCrashedTables().propose(result, make_app()) is None

    @given(st.text(), st.booleans())
    def test_innodb_is_never_repairable_whatever_the_details_claim_about_crashes(
        self, comment, marked
    ):
        entry = {**corrupt("InnoDB"), "crash_marked": marked, "note": comment}
        result = finding("mysql_table_integrity", corrupt=[entry])
        assert RepairCrashedTables().propose(result, make_app()) is None

    @pytest.mark.parametrize(
        "details",
        [
            pytest.param({}, id="nothing"),
            pytest.param({"corrupt": "shop.t"}, id="not-a-list"),
            pytest.param({"corrupt": [{"schema": "shop"}]}, id="no-table"),
        ],
    )
    def test_a_malformed_finding_gets_no_action(self, details):
        assert (
            RepairCrashedTables().propose(finding("mysql_table_integrity", **details), make_app())
            is None
        )


class TestKillProposals:
    def test_names_each_runaway_thread(self):
        threads = [
            {"id": 12, "user": "app", "time_s": 75},
            {"id": 13, "user": "app", "time_s": 90},
        ]
        action = KillRunawayQueries().propose(
            finding("mysql_long_running_queries", threads=threads), make_app()
        )
        assert (action.name, action.risk) == ("mysql_kill_runaway_queries", RiskLevel.MEDIUM)
        assert action.steps[0].description == "KILL QUERY 12, 13, then wait until they are gone"

    @pytest.mark.parametrize(
        "threads",
        [
            pytest.param([], id="none"),
            pytest.param([{"id": "12; DROP TABLE t", "user": "app"}], id="id-not-a-number"),
            pytest.param([{"id": True, "user": "app"}], id="bool"),
            pytest.param([{"id": -1, "user": "app"}], id="negative"),
        ],
    )
    def test_proposes_nothing_without_a_proper_thread_id(self, threads):
        result = finding("mysql_long_running_queries", threads=threads)
        assert KillRunawayQueries().propose(result, make_app()) is None


class TestRestartProposals:
    def down(self, **service):
        return finding(
            "mysql_connection",
            reachable=False,
            server_on_this_host=True,
            service={"manager": "systemd", "unit": "mariadb.service", **service},
        )

    def test_restarts_the_unit_systemd_knows_at_high_risk(self):
        action = RestartService().propose(self.down(), make_app())
        assert (action.name, action.risk) == ("mysql_restart_service", RiskLevel.HIGH)
        assert action.steps[0].description == "systemctl restart mariadb.service"

    @pytest.mark.parametrize(
        "result",
        [
            pytest.param(
                finding("mysql_connection", reachable=False, server_on_this_host=True,
                        service={"manager": None, "pid1": "process_api", "unit": None}),
                id="pid1-is-not-systemd",
            ),
            pytest.param(
                finding("mysql_connection", reachable=True, server_on_this_host=True,
                        service={"manager": "systemd", "unit": "mariadb.service"}),
                id="access-denied",
            ),
            pytest.param(
                finding("mysql_connection", reachable=False, server_on_this_host=False,
                        service={"manager": "systemd", "unit": "mariadb.service"}),
                id="server-elsewhere",
            ),
            pytest.param(
                finding("mysql_connection", reachable=False, server_on_this_host=True,
                        service={"manager": "systemd", "unit": "x; reboot"}),
                id="unknown-unit",
            ),
        ],
    )  # fmt: skip
    def test_proposes_nothing_when_a_restart_cannot_help_or_cannot_be_done(self, result):
        assert RestartService().propose(result, make_app()) is None
