"""Helpers for the MySQL plugin's tests: the machine's MariaDB, real faults, the executor.

Test modules import them by name (``from _mysql_world import ...``); the fixtures built on them
are in ``conftest.py``. A server that does not answer fails the test with the command that
starts it; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import threading
import time
from pathlib import Path

import attrs
import pymysql
import pytest
from universal_healer.checks import CheckContext, HostRun
from universal_healer.healing import Healer
from universal_healer.hosts import LocalHost
from universal_healer.model import Application
from universal_healer.plugins import build_plugin_manager
from universal_healer.secrets import SecretBox

from healer_mysql import STACK_ID, plugin
from healer_mysql.plugin import healer_stacks

START = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
DATADIR = "/var/lib/mysql"
MYSQL = healer_stacks()[0]


def run(coroutine):
    return asyncio.run(coroutine)


def connect(database=None, *, user="root", password=""):
    """A connection over TCP, as root unless told (root has an empty password on 127.0.0.1)."""
    try:
        return pymysql.connect(
            host="127.0.0.1", port=3306, user=user, password=password, database=database,
            connect_timeout=5, autocommit=True,
        )  # fmt: skip
    except pymysql.err.OperationalError as err:
        pytest.fail(
            f"MariaDB on 127.0.0.1:3306 is not answering ({err}). These tests need it; start it "
            f"with:\n    {START}",
            pytrace=False,
        )


def sql(statement, *args, database=None):
    """Run one statement as root and return its rows."""
    connection = connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, args or None)
            return cursor.fetchall()
    finally:
        connection.close()


def quoted(name):
    return "`" + name.replace("`", "``") + "`"


def drop_schema(name):
    """Drop a scratch schema with whatever the server left in it (MyISAM's automatic recovery
    leaves ``*.BAK`` copies beside the table, and DROP DATABASE refuses a directory it does not
    know entirely)."""
    for leftover in glob.glob(os.path.join(DATADIR, name, "*.BAK")):
        os.unlink(leftover)
    sql(f"DROP DATABASE IF EXISTS {quoted(name)}")


def make_app(metadata=None, *, app_id="mysql-app", path=DATADIR):
    return Application(
        id=app_id, server="local", path=path, stack=STACK_ID, metadata=dict(metadata or {})
    )


def manager():
    """A plugin manager with this plugin only (other installed plugins stay out)."""
    return build_plugin_manager(load_entry_points=False, extra=[("mysql", plugin)])


def run_check(check, app, secrets_=None):
    host = LocalHost()
    ctx = CheckContext(
        check=check, host=host, app=app, stack=MYSQL, secrets=dict(secrets_ or {}),
        host_run=HostRun(host),
    )  # fmt: skip
    return run(check.run(ctx))


# --------------------------------------------------------------------------------------------
# Faults


def fill_myisam(schema, table="t", rows=5000, engine="MyISAM"):
    """A table with an index big enough to corrupt, every tenth row deleted (a delete chain)."""
    sql(
        f"CREATE TABLE {quoted(schema)}.{quoted(table)} (id INT PRIMARY KEY AUTO_INCREMENT, "
        f"v VARCHAR(100), KEY (v)) ENGINE={engine}"
    )
    sql(
        f"INSERT INTO {quoted(schema)}.{quoted(table)} (v) "
        f"SELECT CONCAT('row', seq) FROM seq_1_to_{rows}",
        database=schema,
    )
    sql(f"DELETE FROM {quoted(schema)}.{quoted(table)} WHERE id % 10 = 0")


def scribble(schema, table, suffix, offset, length):
    """Write junk over part of a table's file behind the server's back: FLUSH TABLES first,
    so the server has closed it cleanly and knows nothing of what follows."""
    sql(f"FLUSH TABLES {quoted(schema)}.{quoted(table)}")
    path = Path(DATADIR, schema, f"{table}.{suffix}")
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(b"\xee" * length)


def crash_index(schema, table="t"):
    """Damage the MyISAM index: CHECK TABLE finds it corrupt and marks the table crashed; the
    server's automatic recovery (myisam_recover_options=BACKUP,QUICK) can rebuild it."""
    scribble(schema, table, "MYI", 8192, 8192)


def crash_beyond_recovery(schema, table="t"):
    """Damage the MyISAM data file's delete chain, then let the server try to open it: its
    automatic recovery fails, and the table stays "marked as crashed and last (automatic?)
    repair failed" (error 144) until REPAIR TABLE."""
    scribble(schema, table, "MYD", 20000, 3000)
    with contextlib.suppress(pymysql.err.MySQLError):
        sql(f"CHECK TABLE {quoted(schema)}.{quoted(table)} QUICK")
    with contextlib.suppress(pymysql.err.MySQLError):
        sql(f"SELECT COUNT(*) FROM {quoted(schema)}.{quoted(table)} WHERE v > ''")
    with pytest.raises(pymysql.err.MySQLError) as caught:
        sql(f"SELECT * FROM {quoted(schema)}.{quoted(table)}")
    assert caught.value.args[0] in (144, 145, 1034), caught.value


def check_table(schema, table="t"):
    return sql(f"CHECK TABLE {quoted(schema)}.{quoted(table)}")[-1][3]


@attrs.define
class Victim:
    """A client whose statement runs away: ``SELECT SLEEP(300)`` in the scratch schema."""

    schema: str
    connection: object = None
    thread_id: int = 0
    outcome: object = None
    thread: threading.Thread | None = None

    def start(self, statement="SELECT SLEEP(300)", *, user="root", password=""):
        self.connection = connect(self.schema, user=user, password=password)
        self.thread_id = self.connection.thread_id()

        def work():
            try:
                with self.connection.cursor() as cursor:
                    cursor.execute(statement)
                    self.outcome = cursor.fetchall()
            except pymysql.err.MySQLError as err:
                self.outcome = err

        self.thread = threading.Thread(target=work, daemon=True)
        self.thread.start()
        return self

    def wait_running(self, seconds):
        """Until the server says the statement has run for more than ``seconds``."""
        deadline = time.monotonic() + seconds + 10
        while time.monotonic() < deadline:
            rows = sql(
                "SELECT TIME FROM information_schema.PROCESSLIST WHERE ID = %s", self.thread_id
            )
            if rows and rows[0][0] > seconds:
                return
            time.sleep(0.1)  # polling the server, bounded by the deadline above
        pytest.fail(f"the victim's statement did not run for {seconds} s")

    def stop(self):
        if self.thread is not None and self.thread.is_alive():
            with contextlib.suppress(pymysql.err.MySQLError):
                sql(f"KILL {self.thread_id}")
            self.thread.join(10)
        with contextlib.suppress(pymysql.err.MySQLError):
            self.connection.close()


# --------------------------------------------------------------------------------------------
# The real executor


@attrs.define
class World:
    """An SQLite registry holding the MariaDB server as an application, and a Healer."""

    registry: object
    healer: Healer
    app_id: str
    box: SecretBox
    backups: Path
    schema: str

    def heal(self, **kwargs):
        return run(self.healer.heal(self.app_id, **kwargs))

    def app(self):
        return self.registry.get_application(self.app_id)
