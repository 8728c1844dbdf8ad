"""Real faults on the machine's MariaDB, healed by core's real executor (``Healer`` over an
SQLite registry): a runaway statement killed, a crashed MyISAM table repaired after a dump, a
table too broken to dump left alone, a fragmented table optimized; and the safety rules of the
strategies and the backup proved on the server itself."""

from __future__ import annotations

import os

import pymysql
import pytest
from _mysql_world import (
    check_table,
    crash_beyond_recovery,
    crash_index,
    fill_myisam,
    make_app,
    quoted,
    run,
    run_check,
    sql,
)
from universal_healer.exceptions import BackupError
from universal_healer.executions import BackupArtifact, ExecutionStatus
from universal_healer.hosts import LocalHost
from universal_healer.model import CheckStatus

from healer_mysql import checks, server
from healer_mysql._schema_checks import _corrupt_entry, _repair_advice
from healer_mysql.backup import MySQLSchemasBackup
from healer_mysql.connection import login_for_action, open_session
from healer_mysql.strategies import RepairCrashedTables, StepFailedError
from healer_mysql.tables import TableVerdict

pytestmark = pytest.mark.mysql


def only_execution(report):
    assert report.diagnosis is not None
    assert len(report.executions) == 1, (report.executions, report.skipped, report.pending)
    return report.executions[0]


class TestRunawayQuery:
    def test_the_executor_kills_it_verifies_it_gone_and_the_client_sees_the_kill(
        self, world, victim
    ):
        world.registry.set_app_metadata(world.app_id, {"mysql_long_query_seconds": 1})
        victim.start()
        victim.wait_running(1)

        execution = only_execution(world.heal())

        assert execution.status is ExecutionStatus.SUCCEEDED, execution.error
        assert execution.action_name == "mysql_kill_runaway_queries"
        (step,) = execution.steps
        assert f"thread {victim.thread_id}" in step.output
        assert "KILL QUERY sent" in step.output
        assert execution.backup_id is None  # a KILL changes no data: nothing to dump or restore
        victim.thread.join(10)
        assert isinstance(victim.outcome, pymysql.err.OperationalError)
        assert victim.outcome.args[0] == 1317  # Query execution was interrupted
        row = sql("SELECT COMMAND FROM information_schema.PROCESSLIST WHERE ID = %s",
                  victim.thread_id)  # fmt: skip
        assert row == (("Sleep",),), "the connection stays; only its statement was killed"

    def test_a_runaway_in_another_schema_is_not_this_applications_to_kill(
        self, world, victim, scratch
    ):
        """With mysql_schemas set, a runaway elsewhere is someone else's: no finding, no kill."""
        world.registry.set_app_metadata(
            world.app_id, {"mysql_schemas": ["test"], "mysql_long_query_seconds": 1}
        )
        victim.start()
        victim.wait_running(1)
        report = world.heal()
        assert report.executions == ()
        assert victim.thread.is_alive()


class TestCrashedTable:
    def test_a_crashed_myisam_table_is_repaired_after_a_dump_of_its_schema(self, world, scratch):
        """CHECK TABLE finds the damaged index and marks the table crashed. The dump then
        opens it, and MariaDB's own recovery (myisam_recover_options=BACKUP,QUICK) rebuilds
        the index right there; REPAIR TABLE confirms, and the check passes again. The test
        after the next proves the step repairs a table that recovery could not mend."""
        fill_myisam(scratch)
        crash_index(scratch)

        report = world.heal(approve=["mysql_repair_tables"])  # HIGH: needs a person's approval

        integrity = {r.check: r for r in report.diagnosis.results}["mysql_table_integrity"]
        assert integrity.status is CheckStatus.FAIL
        assert integrity.details["corrupt"][0]["engine"] == "MyISAM"
        execution = only_execution(report)
        assert execution.status is ExecutionStatus.SUCCEEDED, execution.error
        assert execution.action_name == "mysql_repair_tables"
        (step,) = execution.steps
        assert step.output.startswith(f"{scratch}.t: ")
        backup = world.registry.get_backup(execution.backup_id)
        assert backup.strategy == "mysql_schemas"
        assert backup.includes == (f'MySQL schema "{scratch}" (logical dump via the local socket)',)
        dumps = [
            os.path.join(folder, name)
            for folder, _, names in os.walk(backup.location)
            for name in names
            if name == "dump.sql"
        ]
        (dump,) = dumps
        with open(dump, encoding="utf-8") as handle:
            assert "INSERT INTO `t`" in handle.read()
        assert check_table(scratch) == "OK"
        assert sql(f"SELECT COUNT(*) FROM {quoted(scratch)}.t")[0][0] == 4500
        run(MySQLSchemasBackup().verify(LocalHost(), _artifact(backup)))

    def test_a_table_too_broken_to_dump_is_not_repaired_no_backup_no_action(self, world, scratch):
        """MariaDB's automatic recovery failed on it: mysqldump cannot read it, so the dump
        that must come first cannot be taken, and the executor refuses."""
        fill_myisam(scratch)
        crash_beyond_recovery(scratch)

        execution = only_execution(world.heal(approve=["mysql_repair_tables"]))

        assert execution.status is ExecutionStatus.REFUSED_NO_BACKUP
        assert "144" in execution.error or "crashed" in execution.error, execution.error
        assert execution.steps == ()
        assert check_table(scratch) != "OK", "nothing was repaired"

    def test_the_repair_step_mends_a_table_the_servers_own_recovery_could_not(self, scratch):
        fill_myisam(scratch)
        crash_beyond_recovery(scratch)
        app = make_app({"mysql_schemas": [scratch]})
        finding = run_check(checks.TableIntegrityCheck(), app)
        action = RepairCrashedTables().propose(finding, app)

        said = run(action.steps[0].run(LocalHost(), app))

        assert "Number of rows changed from 4500 to" in said
        assert check_table(scratch) == "OK"

    def test_the_repair_step_refuses_an_innodb_table_whatever_the_finding_said(self, scratch):
        sql(f"CREATE TABLE {quoted(scratch)}.t (n INT PRIMARY KEY) ENGINE=InnoDB")
        app = make_app({"mysql_schemas": [scratch]})
        forged = run_check(checks.TableIntegrityCheck(), app)
        forged = type(forged)(
            check=forged.check, category=forged.category, status=CheckStatus.FAIL,
            severity=forged.severity, message="forged",
            details={"corrupt": [{"schema": scratch, "table": "t", "engine": "MyISAM",
                                  "repairable": True}]},
        )  # fmt: skip
        action = RepairCrashedTables().propose(forged, app)
        with pytest.raises(StepFailedError, match="its engine is InnoDB"):
            run(action.steps[0].run(LocalHost(), app))

    def test_a_live_innodb_table_reported_corrupt_gets_no_repair_proposal(self, scratch):
        sql(f"CREATE TABLE {quoted(scratch)}.t (n INT PRIMARY KEY) ENGINE=InnoDB")
        app = make_app({"mysql_schemas": [scratch]})
        run_check(checks.ConnectionCheck(), app)  # remembers the login
        (table,) = run(_tables(app, scratch))
        assert table.engine == "InnoDB"
        entry = _corrupt_entry(TableVerdict(schema=scratch, table="t", verdict="corrupt"), table)
        finding = type(run_check(checks.TableIntegrityCheck(), app))(
            check="mysql_table_integrity", category=checks.TableIntegrityCheck.category,
            status=CheckStatus.FAIL, severity=checks.TableIntegrityCheck.severity,
            message="corrupt", details={"corrupt": [entry]},
            suggested_fix=_repair_advice([entry]),
        )  # fmt: skip
        assert RepairCrashedTables().propose(finding, app) is None
        assert "cannot heal" in finding.suggested_fix
        assert "InnoDB" in finding.suggested_fix


class TestFragmentedTable:
    def test_the_executor_optimizes_it_and_the_free_space_is_gone(self, world, scratch):
        fill_myisam(scratch, rows=20000)
        sql(f"DELETE FROM {quoted(scratch)}.t WHERE id % 3 <> 0")
        world.registry.set_app_metadata(world.app_id, {"mysql_fragmentation_min_bytes": 1024})

        execution = only_execution(world.heal())

        assert execution.status is ExecutionStatus.SUCCEEDED, execution.error
        assert execution.action_name == "mysql_optimize_tables"
        free = sql(
            "SELECT DATA_FREE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = 't'",
            scratch,
        )
        assert free == ((0,),)


class TestBackupSafety:
    def test_a_dump_is_restored_after_a_failed_data_changing_action(self, scratch, tmp_path):
        app = make_app({"mysql_schemas": [scratch]})
        sql(f"CREATE TABLE {quoted(scratch)}.t (n INT PRIMARY KEY) ENGINE=InnoDB")
        sql(f"INSERT INTO {quoted(scratch)}.t VALUES (1)")
        artifact = run(MySQLSchemasBackup().create(LocalHost(), app, str(tmp_path / "b")))
        sql(f"INSERT INTO {quoted(scratch)}.t VALUES (2)")
        run(MySQLSchemasBackup().restore(LocalHost(), app, artifact))
        assert sql(f"SELECT n FROM {quoted(scratch)}.t") == ((1,),)

    def test_a_backup_is_refused_when_a_configured_schema_is_missing(self, tmp_path, mariadb):
        app = make_app({"mysql_schemas": ["no_such_schema_here"]})
        with pytest.raises(BackupError, match="do not exist"):
            run(MySQLSchemasBackup().create(LocalHost(), app, str(tmp_path / "b")))

    def test_by_default_every_non_system_schema_and_never_the_servers_own(self, scratch):
        backup = MySQLSchemasBackup()
        assert backup.describe(make_app()) == (
            "every non-system MySQL schema on the server (a logical dump of each)",
        )
        assert backup.describe(make_app({"mysql_schemas": [scratch]})) == (
            f'MySQL schema "{scratch}" (logical dump)',
        )
        assert backup.describe(make_app({"mysql_schemas": ["mysql"]}))[0].startswith("nothing:")


async def _tables(app, schema):
    login = await login_for_action(LocalHost(), app)
    async with open_session(LocalHost(), login, timeout=30) as db:
        return await server.list_tables(db, [schema])


def _artifact(record):
    return BackupArtifact(
        location=record.location, size_bytes=record.size_bytes, sha256=record.sha256,
        includes=record.includes,
    )  # fmt: skip
