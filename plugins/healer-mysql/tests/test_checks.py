"""Every check on the machine's live MariaDB, its figures held against what the server says to
an independent pymysql connection; real faults (a crashed table, a fragmented one, a runaway
statement, a server that is not there) make the checks say so."""

from __future__ import annotations

import socket

import pytest
from _mysql_world import (
    DATADIR,
    check_table,
    crash_index,
    fill_myisam,
    make_app,
    quoted,
    run_check,
    sql,
)
from universal_healer.diagnosis import propose_actions
from universal_healer.model import CheckStatus, RiskLevel
from universal_healer.policy import plan_healing

from healer_mysql import checks
from healer_mysql.strategies import STRATEGIES

pytestmark = pytest.mark.mysql


def status(name):
    rows = sql("SHOW GLOBAL STATUS LIKE %s", name)
    return int(rows[0][1])


def variable(name):
    return sql("SHOW GLOBAL VARIABLES LIKE %s", name)[0][1]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TestTheLiveServer:
    """Each check on the server as it is, in a scratch schema with an InnoDB and an Aria
    table."""

    @pytest.fixture
    def app(self, scratch):
        sql(f"CREATE TABLE {quoted(scratch)}.i (n INT PRIMARY KEY) ENGINE=InnoDB")
        sql(f"CREATE TABLE {quoted(scratch)}.a (n INT PRIMARY KEY) ENGINE=Aria")
        sql(f"INSERT INTO {quoted(scratch)}.i SELECT seq FROM seq_1_to_100", database=scratch)
        return make_app({"mysql_schemas": [scratch]})

    def test_connection_logs_in_through_the_socket_as_root(self, app):
        result = run_check(checks.ConnectionCheck(), app)
        assert result.status is CheckStatus.PASS, result.message
        assert result.details["user"] == "root@localhost"
        assert result.details["version"] == sql("SELECT VERSION()")[0][0]
        assert "unix_socket" in result.details["login"]

    def test_version_and_uptime_are_the_servers(self, app):
        result = run_check(checks.VersionUptimeCheck(), app)
        assert result.status in (CheckStatus.PASS, CheckStatus.WARN), result.message
        assert result.details["flavour"] == "MariaDB"
        assert result.details["version"] == sql("SELECT VERSION()")[0][0]
        assert abs(result.details["uptime_s"] - status("Uptime")) <= 2
        expected = CheckStatus.WARN if status("Uptime") < 600 else CheckStatus.PASS
        assert result.status is expected

    def test_connections_used_against_max_connections(self, app):
        result = run_check(checks.ConnectionsUsedCheck(), app)
        assert result.details["max_connections"] == int(variable("max_connections"))
        assert result.status is CheckStatus.PASS
        assert 0 < result.details["threads_connected"] <= result.details["max_connections"]

    def test_slow_query_log_state_and_count(self, app):
        result = run_check(checks.SlowQueryLogCheck(), app)
        assert result.details["slow_query_log"] is (variable("slow_query_log") == "ON")
        assert result.details["slow_queries"] <= status("Slow_queries")
        if not result.details["slow_query_log"]:
            assert result.status is CheckStatus.WARN
            assert "slow query log is off" in result.message

    def test_buffer_pool_hit_ratio(self, app):
        result = run_check(checks.BufferPoolHitRatioCheck(), app)
        assert result.status is not CheckStatus.ERROR
        assert result.details["read_requests"] <= status("Innodb_buffer_pool_read_requests")
        assert 0 <= result.details["hit_percent"] <= 100

    def test_aborted_connections(self, app):
        result = run_check(checks.AbortedConnectionsCheck(), app)
        assert result.status is not CheckStatus.ERROR
        assert result.details["connections"] <= status("Connections")
        assert result.details["aborted_connects"] <= status("Aborted_connects")

    def test_datadir_disk_is_the_datadirs_filesystem(self, app):
        result = run_check(checks.DatadirDiskCheck(), app)
        assert result.status is not CheckStatus.ERROR, result.message
        assert result.details["datadir"] == DATADIR
        assert DATADIR.startswith(result.details["mountpoint"])

    def test_long_running_queries_finds_none_in_a_quiet_schema(self, app):
        result = run_check(checks.LongRunningQueriesCheck(), app)
        assert result.status is CheckStatus.PASS, result.message
        assert result.details["threads"] == []

    def test_integrity_checks_each_table_of_the_schema(self, app, scratch):
        result = run_check(checks.TableIntegrityCheck(), app)
        assert result.status is CheckStatus.PASS, result.message
        assert (result.details["schemas"], result.details["checked"]) == ([scratch], 2)

    def test_fragmentation_finds_none_in_fresh_tables(self, app):
        result = run_check(checks.TableFragmentationCheck(), app)
        assert result.status is CheckStatus.PASS, result.message

    def test_default_schemas_are_every_non_system_one(self, app, scratch):
        default = make_app({"mysql_check_tables_max": 1, "mysql_check_tables_seconds": 0.1})
        result = run_check(checks.TableIntegrityCheck(), default)
        assert scratch in result.details["schemas"]
        assert not {"mysql", "sys", "performance_schema"} & set(result.details["schemas"])


class TestFaults:
    def test_a_crashed_myisam_table_fails_integrity_with_a_repair_on_offer(self, scratch):
        fill_myisam(scratch)
        crash_index(scratch)
        app = make_app({"mysql_schemas": [scratch]})
        result = run_check(checks.TableIntegrityCheck(), app)
        assert (result.status, result.severity) == (CheckStatus.FAIL, RiskLevel.HIGH)
        (table,) = result.details["corrupt"]
        assert (table["schema"], table["table"], table["repairable"]) == (scratch, "t", True)
        assert any("corrupt" in m.lower() for m in table["messages"]), table
        actions = propose_actions((result,), tuple(s() for s in STRATEGIES), app)
        assert actions["mysql_table_integrity"].name == "mysql_repair_tables"

    def test_a_bounded_run_leaves_tables_for_the_next(self, scratch):
        for name in ("a", "b", "c"):
            sql(f"CREATE TABLE {quoted(scratch)}.{name} (n INT) ENGINE=MyISAM")
        app = make_app({"mysql_schemas": [scratch], "mysql_check_tables_max": 2})
        result = run_check(checks.TableIntegrityCheck(), app)
        assert (result.details["checked"], result.details["not_checked"]) == (2, 1)
        assert result.status is CheckStatus.PASS
        first = [name.rpartition(".")[2] for name in result.details["checked_tables"]]
        assert first == ["a", "b"]
        again = run_check(checks.TableIntegrityCheck(), app)
        later = [name.rpartition(".")[2] for name in again.details["checked_tables"]]
        assert later[0] == "c", "the never-checked table goes first"

    def test_a_fragmented_myisam_table_is_found(self, scratch):
        fill_myisam(scratch, rows=20000)
        sql(f"DELETE FROM {quoted(scratch)}.t WHERE id % 3 <> 0")
        app = make_app({"mysql_schemas": [scratch], "mysql_fragmentation_min_bytes": 1024})
        result = run_check(checks.TableFragmentationCheck(), app)
        assert result.status is CheckStatus.WARN, result.message
        (table,) = result.details["tables"]
        assert (table["table"], table["engine"]) == ("t", "MyISAM")
        assert table["data_free"] >= 0.5 * table["data_length"]

    def test_a_runaway_statement_is_found_and_its_text_shown(self, victim, scratch):
        victim.start()
        victim.wait_running(1)
        app = make_app({"mysql_schemas": [scratch], "mysql_long_query_seconds": 1})
        result = run_check(checks.LongRunningQueriesCheck(), app)
        assert result.status is CheckStatus.FAIL, result.message
        (thread,) = result.details["threads"]
        assert (thread["id"], thread["query"], thread["db"]) == (
            victim.thread_id,
            "SELECT SLEEP(300)",
            scratch,
        )

    def test_a_statement_of_another_schema_is_not_this_applications(self, victim, scratch):
        victim.start()
        victim.wait_running(1)
        app = make_app({"mysql_schemas": ["test"], "mysql_long_query_seconds": 1})
        assert run_check(checks.LongRunningQueriesCheck(), app).status is CheckStatus.PASS

    def test_no_server_on_the_port_is_unreachable_and_cannot_heal_without_systemd(self):
        app = make_app()
        secrets = {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(free_port()), "MYSQL_USER": "x"}
        result = run_check(checks.ConnectionCheck(), app, secrets)
        assert (result.status, result.severity) == (CheckStatus.FAIL, RiskLevel.CRITICAL)
        assert result.details["error_code"] in (2002, 2003)  # MariaDB's client says 2002
        assert result.details["reachable"] is False
        with open("/proc/1/comm") as handle:
            pid1 = handle.read().strip()
        assert pid1 != "systemd", "this test expects the machine's PID 1 not to be systemd"
        assert result.details["service"] == {"manager": None, "pid1": pid1, "unit": None}
        assert f"PID 1 is {pid1!r}, not systemd" in result.suggested_fix
        actions = propose_actions((result,), tuple(s() for s in STRATEGIES), app)
        plan = plan_healing((result,), actions, app.healing_mode)
        (unhealable,) = plan.cannot_heal
        assert unhealable.result.check == "mysql_connection"
        assert "start-stop-daemon" in unhealable.result.suggested_fix

    def test_a_refused_login_is_reachable_and_no_restart(self, mariadb):
        app = make_app()
        secrets = {"MYSQL_USER": "no_such_user_here", "MYSQL_PASSWORD": "wrong-password"}
        result = run_check(checks.ConnectionCheck(), app, secrets)
        assert result.status is CheckStatus.FAIL
        assert (result.details["error_code"], result.details["reachable"]) == (1045, True)
        assert "service" not in result.details
        assert "wrong-password" not in repr(result)

    def test_a_check_after_an_unreachable_server_is_an_error_that_says_why(self):
        secrets = {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(free_port())}
        result = run_check(checks.ConnectionsUsedCheck(), make_app(), secrets)
        assert result.status is CheckStatus.ERROR
        assert "Can't connect to server" in result.message

    @pytest.mark.parametrize(
        ("metadata", "secrets", "message"),
        [
            pytest.param({"mysql_long_query_seconds": "soon"}, {}, "must be a number",
                         id="bad-metadata"),
            pytest.param({}, {"MYSQL_PORT": "http"}, "MYSQL_PORT must be a TCP port",
                         id="bad-secret"),
        ],
    )  # fmt: skip
    def test_bad_settings_are_an_error_naming_the_key(self, mariadb, metadata, secrets, message):
        result = run_check(checks.LongRunningQueriesCheck(), make_app(metadata), secrets)
        assert result.status is CheckStatus.ERROR
        assert message in result.message

    def test_a_configured_schema_that_does_not_exist_is_a_warning(self, scratch):
        app = make_app({"mysql_schemas": [scratch, "no_such_schema_here"]})
        result = run_check(checks.TableIntegrityCheck(), app)
        assert result.status is CheckStatus.WARN
        assert result.details["missing_schemas"] == ["no_such_schema_here"]

    def test_the_corrupt_table_is_still_corrupt_to_an_independent_check(self, scratch):
        """The fault is real: the server itself says so, not only the plugin."""
        fill_myisam(scratch)
        crash_index(scratch)
        assert check_table(scratch) == "Corrupt"

    def test_check_table_fast_would_have_missed_it(self, scratch):
        """Why the integrity check uses QUICK and not FAST: a table closed properly and
        damaged afterwards is 'already up to date' to FAST."""
        fill_myisam(scratch)
        crash_index(scratch)
        fast = sql(f"CHECK TABLE {quoted(scratch)}.t FAST QUICK")
        assert fast[-1][3] == "Table is already up to date"
        result = run_check(checks.TableIntegrityCheck(), make_app({"mysql_schemas": [scratch]}))
        assert result.status is CheckStatus.FAIL
