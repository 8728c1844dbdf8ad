"""MySQL dump backups against the machine's MariaDB, with a password that must never show.

Each test gets its own database with a few thousand rows (InnoDB, Aria and MyISAM tables, a
view, a trigger and a procedure) and its own user, whose password holds a random canary. While
a dump or a restore runs, a thread reads every process's command line and environment every
couple of milliseconds; the canary must never be there, nor in an error, a log record, the
artifact's name or its files. A server that is down fails the tests with the command that
starts it; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import secrets
import stat
import subprocess
import threading
from pathlib import Path

import pymysql
import pytest

from universal_healer import _mysql
from universal_healer.backup import (
    CompositeBackup,
    FileSetBackup,
    MySQLCredentials,
    MySQLDumpBackup,
)
from universal_healer.exceptions import BackupError
from universal_healer.hosts import LocalHost
from universal_healer.model import Application

pytestmark = pytest.mark.mysql

START = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"


@contextlib.contextmanager
def backup_error(reason):
    """Expect a BackupError whose ``reason`` matches: not its whole message, which names
    temporary paths, and those hold the test's name and so any word at all."""
    with pytest.raises(BackupError) as caught:
        yield caught
    assert re.search(reason, caught.value.reason), caught.value.reason


def run(coroutine):
    return asyncio.run(coroutine)


def connect(database=None):
    try:
        return pymysql.connect(
            host="127.0.0.1", port=3306, user="root", password="", database=database,
            connect_timeout=5, autocommit=True,
        )  # fmt: skip
    except pymysql.err.OperationalError as err:
        pytest.fail(
            f"MariaDB on 127.0.0.1 is not answering ({err}). These tests need it; start it "
            f"with:\n    {START}",
            pytrace=False,
        )


def quoted(name):
    return "`" + name.replace("`", "``") + "`"


ODD_TABLE = "odd `name; drop"


def fill(cursor, rng):
    """A few thousand rows across engines, plus the objects --routines/--triggers keep."""
    cursor.execute(
        "CREATE TABLE posts (id INT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(200), "
        "body TEXT, data BLOB, created DATETIME) ENGINE=InnoDB"
    )
    cursor.executemany(
        "INSERT INTO posts (title, body, data, created) VALUES (%s, %s, %s, %s)",
        [
            (f"post {i} ünïcødé 'q' \"d\"", "body\n" * rng.randint(1, 20), rng.randbytes(64),
             f"2024-01-{1 + i % 28:02d} 12:00:00")
            for i in range(3000)
        ],
    )  # fmt: skip
    cursor.execute(
        "CREATE TABLE postmeta (id INT PRIMARY KEY AUTO_INCREMENT, post_id INT, "
        "meta_key VARCHAR(64), meta_value TEXT, "
        "FOREIGN KEY (post_id) REFERENCES posts (id)) ENGINE=InnoDB"
    )
    cursor.executemany(
        "INSERT INTO postmeta (post_id, meta_key, meta_value) VALUES (%s, %s, %s)",
        [(1 + i % 3000, f"key{i % 7}", str(rng.random())) for i in range(2000)],
    )
    cursor.execute("CREATE TABLE options (name VARCHAR(64) PRIMARY KEY, value TEXT) ENGINE=Aria")
    cursor.executemany(
        "INSERT INTO options VALUES (%s, %s)", [(f"opt{i}", "v" * i) for i in range(500)]
    )
    cursor.execute(f"CREATE TABLE {quoted(ODD_TABLE)} (n INT) ENGINE=MyISAM")
    rows = [(i,) for i in range(100)]
    cursor.executemany(f"INSERT INTO {quoted(ODD_TABLE)} VALUES (%s)", rows)  # noqa: S608 - quoted
    cursor.execute("CREATE VIEW recent AS SELECT id, title FROM posts WHERE id > 2990")
    cursor.execute(
        "CREATE TRIGGER touch BEFORE UPDATE ON options FOR EACH ROW SET NEW.value = NEW.value"
    )
    cursor.execute("CREATE PROCEDURE count_posts() SELECT COUNT(*) FROM posts")


def table_states(database):
    """Per-table row count and CHECKSUM TABLE, read independently with pymysql as root."""
    connection = connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT TABLE_NAME FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'", (database,),
            )  # fmt: skip
            states = {}
            for (name,) in cursor.fetchall():
                cursor.execute(f"SELECT COUNT(*) FROM {quoted(name)}")  # noqa: S608
                (rows,) = cursor.fetchone()
                cursor.execute(f"CHECKSUM TABLE {quoted(name)} EXTENDED")
                states[name] = (rows, cursor.fetchone()[1])
            return states
    finally:
        connection.close()


def routines(database):
    connection = connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s "
                "UNION ALL SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
                "WHERE TRIGGER_SCHEMA = %s UNION ALL SELECT TABLE_NAME FROM "
                "information_schema.VIEWS WHERE TABLE_SCHEMA = %s",
                (database, database, database),
            )
            return sorted(row[0] for row in cursor.fetchall())
    finally:
        connection.close()


@pytest.fixture
def canary():
    # Odd characters exercise the option file's quoting; the token makes it findable.
    return f"canary-{secrets.token_hex(12)}-p\"a'ss\\w;$(x)#x y"


@pytest.fixture
def database(canary):
    """A database full of rows and a user of its own with the canary as its password."""
    name = f"healer_bk_{secrets.token_hex(4)}"
    user = f"healer_bk_{secrets.token_hex(4)}"
    connection = connect()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {quoted(name)} CHARACTER SET utf8mb4")
        cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, canary))
        cursor.execute(f"GRANT ALL ON {quoted(name)}.* TO %s@'%%'", (user,))
    owner = pymysql.connect(
        host="127.0.0.1", user=user, password=canary, database=name, autocommit=True
    )
    with owner.cursor() as cursor:
        fill(cursor, random.Random(name))  # noqa: S311 - repeatable test data, not a secret
    owner.close()
    yield name, MySQLCredentials(user=user, password=canary, host="127.0.0.1", port=3306)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {quoted(name)}")
        cursor.execute("DROP USER IF EXISTS %s@'%%'", (user,))
    connection.close()


def damage(database):
    connection = connect(database)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM postmeta WHERE id % 3 = 0")
        cursor.execute(
            "DELETE FROM posts WHERE id > 2500 AND id NOT IN (SELECT post_id FROM postmeta)"
        )
        cursor.execute("UPDATE options SET value = 'broken' WHERE name LIKE 'opt1%'")
        cursor.execute(f"DROP TABLE {quoted(ODD_TABLE)}")
        cursor.execute("DROP VIEW recent")
        cursor.execute("DROP PROCEDURE count_posts")
        cursor.execute("CREATE TABLE added_by_the_action (i INT)")
    connection.close()


class ProcessWatch(threading.Thread):
    """Reads every process's cmdline and environ every ~2 ms until stopped.

    Remembers where the canary showed up (it must not), which MySQL clients it saw (to prove
    it was looking while they ran) and every option file they were pointed at.
    """

    def __init__(self, canary: bytes) -> None:
        super().__init__(name="process-watch", daemon=True)
        self.canary = canary
        self.halt = threading.Event()
        self.leaked = threading.Event()
        self.leaks: list[tuple[int, str, bytes]] = []
        self.clients: set[bytes] = set()
        self.option_files: set[str] = set()
        self.rounds = 0

    def run(self) -> None:
        while not self.halt.is_set():
            self.rounds += 1
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    self.look(int(entry))
            self.halt.wait(0.002)

    def look(self, pid: int) -> None:
        for where in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{where}", "rb") as handle:
                    data = handle.read()
            except OSError:
                continue  # gone already, or a kernel thread
            if self.canary in data:
                self.leaks.append((pid, where, data))
                self.leaked.set()
            if where == "cmdline":
                argv = data.split(b"\0")
                program = os.path.basename(argv[0])
                if program in (b"mysqldump", b"mysql", b"mariadb", b"mariadb-dump"):
                    self.clients.add(program)
                for arg in argv:
                    if arg.startswith(b"--defaults-extra-file="):
                        self.option_files.add(os.fsdecode(arg.partition(b"=")[2]))

    @contextlib.contextmanager
    def watching(self):
        self.start()
        try:
            yield self
        finally:
            self.halt.set()
            self.join()


def artifact_bytes(location: str) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(Path(location).rglob("*")) if p.is_file())


def app():
    return Application(id="wp-1", server="local", path="/srv/nowhere", stack="wordpress")


class TestProcessWatch:
    def test_the_watch_sees_a_password_on_a_command_line(self, canary):
        """The negative control: the sampler would catch a leak, so its silence means something."""
        token = canary.split("-p")[0]
        watch = ProcessWatch(token.encode())
        with watch.watching():
            leaky = subprocess.Popen(["sh", "-c", "read line", "sh", token], stdin=subprocess.PIPE)
            try:
                assert watch.leaked.wait(10), "the watch never saw the leaky command line"
            finally:
                leaky.communicate(b"done\n")
        assert any(where == "cmdline" for _, where, _ in watch.leaks)


class TestDumpAndRestore:
    def test_restore_brings_back_identical_checksums_and_the_password_never_shows(
        self, database, canary, tmp_path, caplog
    ):
        caplog.set_level(logging.DEBUG)
        name, credentials = database
        before, objects = table_states(name), routines(name)
        strategy, host = MySQLDumpBackup(name, credentials), LocalHost()
        watch = ProcessWatch(canary.split("-p")[0].encode())

        with watch.watching():
            artifact = run(strategy.create(host, app(), str(tmp_path / "backups")))
            damage(name)
            assert table_states(name) != before
            run(strategy.restore(host, app(), artifact))

        assert table_states(name) == before
        assert routines(name) == objects
        assert len(before) == 4
        assert sum(rows for rows, _ in before.values()) == 5600
        assert watch.leaks == []
        assert {b"mysqldump", b"mysql"} <= watch.clients, f"saw only {watch.clients}"
        assert watch.option_files, "never saw a client's --defaults-extra-file"
        assert not any(os.path.exists(path) for path in watch.option_files)
        assert not any(os.path.exists(os.path.dirname(p)) for p in watch.option_files)
        token = canary.split("-p")[0]
        assert token not in artifact.location
        assert token.encode() not in artifact_bytes(artifact.location)
        assert token not in caplog.text
        assert all(token not in str(r.args) for r in caplog.records)
        assert token not in repr(strategy)

    def test_the_artifact_is_private_and_describes_the_dump(self, database, tmp_path):
        name, credentials = database
        artifact = run(
            MySQLDumpBackup(name, credentials).create(LocalHost(), app(), str(tmp_path / "b"))
        )
        location = Path(artifact.location)
        assert location.parent == tmp_path / "b"
        assert stat.S_IMODE(location.stat().st_mode) == 0o700
        assert sorted(os.listdir(location)) == ["dump.sql", "manifest.json"]
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in location.iterdir())
        assert artifact.size_bytes == sum(p.stat().st_size for p in location.iterdir())
        assert artifact.includes == (f"MySQL database {name!r} on 127.0.0.1:3306 (logical dump)",)

    def test_a_database_dropped_by_the_action_is_created_again(self, database, tmp_path):
        name, credentials = database
        before = table_states(name)
        strategy, host = MySQLDumpBackup(name, credentials), LocalHost()
        artifact = run(strategy.create(host, app(), str(tmp_path / "b")))
        connection = connect()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE {quoted(name)}")
        connection.close()

        run(strategy.restore(host, app(), artifact))

        assert table_states(name) == before

    def test_a_database_the_server_cannot_drop_is_emptied_and_restored(self, database, tmp_path):
        """MariaDB refuses to drop a database whose directory holds files it does not own
        (error 1010: seen after its automatic repair of a crashed Aria table): the restore
        empties the database instead."""
        name, credentials = database
        before = table_states(name)
        strategy, host = MySQLDumpBackup(name, credentials), LocalHost()
        artifact = run(strategy.create(host, app(), str(tmp_path / "b")))
        damage(name)
        connection = connect()
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@datadir")
            (datadir,) = cursor.fetchone()
        connection.close()
        stray = Path(datadir, name, "left-over.txt")
        stray.write_bytes(b"a file the server does not own")
        try:
            run(strategy.restore(host, app(), artifact))
            assert table_states(name) == before
            assert stray.exists()
        finally:
            stray.unlink(missing_ok=True)


class TestFailures:
    def test_a_wrong_password_is_a_clear_error_without_the_password(
        self, database, canary, tmp_path, caplog
    ):
        caplog.set_level(logging.DEBUG)
        name, credentials = database
        wrong = MySQLCredentials(
            user=credentials.user, password=canary + "-wrong", host="127.0.0.1"
        )
        destination = tmp_path / "b"
        option_dirs = {e for e in os.listdir("/tmp") if e.startswith("healer-mysql.")}

        with pytest.raises(BackupError) as caught:
            run(MySQLDumpBackup(name, wrong).create(LocalHost(), app(), str(destination)))

        token = canary.split("-p")[0]
        assert "access denied" in caught.value.reason
        assert credentials.user in caught.value.reason
        assert token not in str(caught.value)
        assert token not in repr(caught.value)
        assert token not in caplog.text
        assert not destination.exists()
        assert {e for e in os.listdir("/tmp") if e.startswith("healer-mysql.")} == option_dirs

    def test_a_missing_database_is_a_backup_error(self, database, tmp_path):
        _, credentials = database
        with backup_error(r"not found|may not use"):
            run(MySQLDumpBackup("healer_no_such_db", credentials).create(
                LocalHost(), app(), str(tmp_path / "b")
            ))  # fmt: skip
        assert not (tmp_path / "b").exists()

    def test_restore_refuses_a_damaged_dump_without_touching_the_database(self, database, tmp_path):
        name, credentials = database
        strategy, host = MySQLDumpBackup(name, credentials), LocalHost()
        artifact = run(strategy.create(host, app(), str(tmp_path / "b")))
        damage(name)
        damaged = table_states(name)
        with Path(artifact.location, "dump.sql").open("ab") as dump:
            dump.write(b"DROP TABLE posts;\n")

        with backup_error("damaged"):
            run(strategy.verify(host, artifact))
        with backup_error("damaged"):
            run(strategy.restore(host, app(), artifact))

        assert table_states(name) == damaged

    def test_a_backup_of_another_database_is_refused(self, database, tmp_path):
        name, credentials = database
        artifact = run(
            MySQLDumpBackup(name, credentials).create(LocalHost(), app(), str(tmp_path / "b"))
        )
        with backup_error("not 'other'"):
            run(MySQLDumpBackup("other", credentials).verify(LocalHost(), artifact))


class TestOptionFile:
    def test_the_option_file_is_private_while_used_and_gone_after(self, canary):
        credentials = MySQLCredentials(user="u", password=canary)
        seen = {}

        async def main():
            async with _mysql.private_option_file(LocalHost(), credentials) as path:
                seen["path"] = path
                seen["mode"] = stat.S_IMODE(os.stat(path).st_mode)
                seen["dir_mode"] = stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)
                seen["text"] = await asyncio.to_thread(Path(path).read_text)

        run(main())

        assert seen["mode"] == 0o600
        assert seen["dir_mode"] == 0o700
        assert seen["text"].startswith("[client]\n")
        assert not os.path.exists(os.path.dirname(seen["path"]))

    def test_the_option_file_is_removed_when_the_work_fails(self, canary):
        credentials = MySQLCredentials(user="u", password=canary)
        seen = {}

        async def main():
            async with _mysql.private_option_file(LocalHost(), credentials) as path:
                seen["path"] = path
                raise RuntimeError("the work failed")

        with pytest.raises(RuntimeError):
            run(main())
        assert not os.path.exists(os.path.dirname(seen["path"]))

    @pytest.mark.parametrize(
        "password",
        [
            pytest.param('with "double" quotes', id="double-quotes"),
            pytest.param("back\\slash\\", id="backslashes"),
            pytest.param("hash # and ; semicolon", id="comment-characters"),
            pytest.param("  spaces around  ", id="surrounding-spaces"),
            pytest.param("tab\tand 'single'", id="tab-and-single-quotes"),
        ],
    )
    def test_odd_passwords_reach_the_server_intact(self, password):
        """The client logs in with a user whose password is exactly ``password``."""
        user = f"healer_pw_{secrets.token_hex(4)}"
        connection = connect()
        with connection.cursor() as cursor:
            cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        try:
            credentials = MySQLCredentials(user=user, password=password, host="127.0.0.1")

            async def main():
                async with _mysql.private_option_file(LocalHost(), credentials) as path:
                    client = _mysql.MySQLClient(
                        host=LocalHost(), option_file=path, database="mysql",
                        credentials=credentials,
                    )  # fmt: skip
                    return await client.query("SELECT CURRENT_USER()", database=False, what="x")

            assert run(main()) == [[f"{user}@%"]]
        finally:
            with connection.cursor() as cursor:
                cursor.execute("DROP USER %s@'%%'", (user,))
            connection.close()

    def test_credentials_never_show_the_password(self, canary):
        credentials = MySQLCredentials(user="u", password=canary)
        assert canary not in repr(credentials)
        assert canary not in repr(MySQLDumpBackup("db", credentials))


class TestComposite:
    def test_files_and_database_are_restored_together(self, database, tmp_path):
        name, credentials = database
        root = tmp_path / "site"
        root.mkdir()
        (root / "wp-config.php").write_text("<?php define('DB_NAME', 'x');\n")
        site = Application(id="wp-1", server="local", path=str(root), stack="wordpress")
        strategy = CompositeBackup(
            (FileSetBackup(("wp-config.php",)), MySQLDumpBackup(name, credentials))
        )
        before, host = table_states(name), LocalHost()

        artifact = run(strategy.create(host, site, str(tmp_path / "b")))
        (root / "wp-config.php").write_text("broken")
        damage(name)
        run(strategy.restore(host, site, artifact))

        assert (root / "wp-config.php").read_text() == "<?php define('DB_NAME', 'x');\n"
        assert table_states(name) == before
