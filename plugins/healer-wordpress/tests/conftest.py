"""Shared set-up: hypothesis profiles, and the real WordPress site of the integration tests.

The site is installed once per session by ``scripts/install-site`` (Debian's ``wordpress``
package, the machine's MariaDB, PHP's CLI) into a temporary directory, with a database and user
of its own, and served by ``php -S`` on a free loopback port. Anything missing fails the tests
with the reason; nothing is skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pymysql
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

PLUGIN = Path(__file__).resolve().parents[1]
INSTALL_SITE = PLUGIN / "scripts" / "install-site"
START_MARIADB = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"


def root_connection(database: str | None = None) -> pymysql.Connection:
    """MariaDB as root over TCP (the machine's test set-up: root, no password)."""
    try:
        return pymysql.connect(
            host="127.0.0.1", port=3306, user="root", password="", database=database,
            connect_timeout=5, autocommit=True,
        )  # fmt: skip
    except pymysql.err.OperationalError as err:
        pytest.fail(
            f"MariaDB on 127.0.0.1 is not answering ({err}); start it with:\n    {START_MARIADB}",
            pytrace=False,
        )


@attrs.frozen(kw_only=True)
class Site:
    """The installed site, as ``install-site`` described it."""

    root: Path
    url: str
    database: str
    user: str
    prefix: str
    wordpress: str
    core_offered: tuple[str, ...]
    akismet: str
    akismet_offered: str
    theme_version: str
    theme_offered: str
    datadir: Path

    def sql(self, statement: str, args: object = None) -> list[tuple]:
        """Run one statement as root in the site's database; its rows."""
        connection = root_connection(self.database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, args)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def option(self, name: str) -> bytes | None:
        rows = self.sql(
            f"SELECT option_value FROM {self.prefix}options WHERE option_name = %s",  # noqa: S608
            (name,),
        )
        if not rows:
            return None
        value = rows[0][0]
        return value if isinstance(value, bytes) else str(value).encode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"php -S exited with status {server.returncode}", pytrace=False)
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)  # polling a real server that is starting, bounded by the deadline
    pytest.fail(f"php -S did not listen on port {port} within 10 s", pytrace=False)


def drop_database(datadir: Path, database: str, user: str) -> None:
    """Drop the site's database and user. MariaDB's automatic repair of crashed MyISAM/Aria
    tables leaves ``*.BAK`` copies in the database's directory, which DROP DATABASE refuses to
    remove: they go first."""
    for leftover in (datadir / database).glob("*.BAK"):
        leftover.unlink()
    connection = root_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
            cursor.execute("DROP USER IF EXISTS %s@'localhost'", (user,))
    finally:
        connection.close()


@pytest.fixture(scope="session")
def wordpress_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A real WordPress site, installed and served; dropped afterwards."""
    token = secrets.token_hex(4)
    database, user = f"healer_wp_test_{token}", f"healer_wp_{token}"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    root = tmp_path_factory.mktemp("wordpress") / "site"
    connection = root_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@datadir")
        datadir = Path(cursor.fetchone()[0])
    connection.close()
    try:
        done = subprocess.run(
            [str(INSTALL_SITE), str(root), "--database", database, "--user", user, "--url", url],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.fail(
                f"{INSTALL_SITE} exited with status {done.returncode}\n--- stdout\n"
                f"{done.stdout}--- stderr\n{done.stderr}",
                pytrace=False,
            )
        said = json.loads(done.stdout)
        site = Site(
            root=Path(said["root"]),
            url=url,
            database=database,
            user=user,
            prefix=said["table_prefix"],
            wordpress=said["wordpress"],
            core_offered=tuple(said["core_offered"]),
            akismet=said["akismet"],
            akismet_offered=said["akismet_offered"],
            theme_version=said["theme_version"],
            theme_offered=said["theme_offered"],
            datadir=datadir,
        )
        with subprocess.Popen(
            # OPcache is on in PHP's built-in server and looks at files every 2 s by default:
            # the tests change files and read the effect at once, so it looks every time.
            [
                "php",
                "-d",
                "opcache.revalidate_freq=0",
                "-S",
                f"127.0.0.1:{port}",
                "-t",
                str(site.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=site.root,
        ) as server:
            try:
                _wait_for(port, server)
                yield site
            finally:
                server.terminate()
                server.wait(timeout=10)
    finally:
        drop_database(datadir, database, user)
