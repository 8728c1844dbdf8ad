"""The databases the registry is tested against: SQLite, and the machine's PostgreSQL and MariaDB.

Test modules import ``database_url`` and ``database_servers`` by name. Each test gets a database
of its own: an SQLite file under ``tmp_path``, or a ``healer_test_<random>`` database created on
the server and dropped afterwards. A server that is down fails the test with the command that
starts it; nothing is skipped.

``CREATE DATABASE`` costs PostgreSQL about 0.4 s (it copies and syncs ``template1``), so each
server's databases are created a few tests ahead, and dropped, by worker threads: the tests wait
only when the workers have fallen behind.
"""

from __future__ import annotations

import collections
import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg2
import pymysql
import pytest

__all__ = ["database_servers", "database_url"]

_URL = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/{name}",
    "mysql": "mysql://root@127.0.0.1:3306/{name}",
}
_SERVICE = {"postgresql": "PostgreSQL", "mysql": "MariaDB"}
_START = {
    "postgresql": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "mysql": "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
}


def _postgresql() -> Any:
    connection = psycopg2.connect(
        host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5
    )
    connection.autocommit = True
    return connection


def _mysql() -> Any:
    connection = pymysql.connect(
        host="127.0.0.1", port=3306, user="root", password="", connect_timeout=5
    )
    with connection.cursor() as cursor:
        # A test that left a transaction open must not hang a DROP forever.
        cursor.execute("SET SESSION lock_wait_timeout = 10")
    return connection


_CONNECT: dict[str, Callable[[], Any]] = {"postgresql": _postgresql, "mysql": _mysql}
_CREATE = {
    "postgresql": 'CREATE DATABASE "{name}"',
    "mysql": "CREATE DATABASE `{name}` CHARACTER SET utf8mb4",
}
_DROP = {
    "postgresql": 'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
    "mysql": "DROP DATABASE IF EXISTS `{name}`",
}


class DatabaseServer:
    """Creates test databases on one server a few tests ahead, and drops them behind.

    PostgreSQL's ``CREATE DATABASE`` waits mostly on fsync, so three at a time finish almost as
    fast as one: a few worker threads, each with its own connection, keep the tests supplied.
    """

    AHEAD = 3

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._workers = ThreadPoolExecutor(max_workers=self.AHEAD, thread_name_prefix=backend)
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._ahead: collections.deque[Future[str]] = collections.deque()

    def _execute(self, statement: str) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = _CONNECT[self.backend]()
            with self._lock:
                self._connections.append(connection)
        with connection.cursor() as cursor:
            cursor.execute(statement)

    def _create(self) -> str:
        name = f"healer_test_{secrets.token_hex(6)}"
        self._execute(_CREATE[self.backend].format(name=name))
        return name

    def _drop(self, name: str) -> None:
        self._execute(_DROP[self.backend].format(name=name))

    def take(self) -> str:
        """The URL of a new empty database; fails the test when the server is down."""
        while len(self._ahead) < self.AHEAD + 1:
            self._ahead.append(self._workers.submit(self._create))
        created = self._ahead.popleft()
        error = created.exception()
        if isinstance(error, psycopg2.OperationalError | pymysql.err.OperationalError):
            reason = " ".join(str(error).split())
            pytest.fail(
                f"{_SERVICE[self.backend]} on 127.0.0.1 is not answering ({reason}). These tests "
                f"need it; start it with:\n    {_START[self.backend]}",
                pytrace=False,
            )
        return _URL[self.backend].format(name=created.result())

    def release(self, url: str) -> None:
        """Drop the database behind ``url`` (in the background)."""
        self._workers.submit(self._drop, url.rpartition("/")[2])

    def close(self) -> None:
        """Drop the databases made ahead, wait for every drop, and disconnect."""
        for pending in self._ahead:
            if pending.exception() is None:
                self._workers.submit(self._drop, pending.result())
        self._workers.shutdown(wait=True)
        for connection in self._connections:
            connection.close()


@pytest.fixture(scope="session")
def database_servers() -> Iterator[dict[str, DatabaseServer]]:
    """The PostgreSQL and MariaDB servers, as sources of fresh databases."""
    servers = {backend: DatabaseServer(backend) for backend in _URL}
    yield servers
    for server in servers.values():
        server.close()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
        pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
    ]
)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Any, database_servers: dict[str, DatabaseServer]
) -> Iterator[str]:
    """The URL of an empty database of each backend in turn."""
    backend: str = request.param
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'healer.db'}"
        return
    server = database_servers[backend]
    url = server.take()
    yield url
    server.release(url)
