"""Fixtures for the MySQL plugin's tests, on the machine's MariaDB.

Every test that touches the server gets a scratch schema of its own (``CREATE DATABASE``,
dropped afterwards) and sets ``mysql_schemas`` to it, so nothing here reads, checks, dumps or
kills what other users of the server have. A server that does not answer fails the test with
the command that starts it; nothing is skipped.

Hypothesis profiles are chosen with ``HYPOTHESIS_PROFILE`` (``dev`` by default, ``ci`` in CI).
"""

from __future__ import annotations

import os
import secrets

import pytest
from _mysql_world import DATADIR, Victim, World, connect, drop_schema, manager, quoted, sql
from hypothesis import HealthCheck, settings
from universal_healer.healing import Healer, HealSettings
from universal_healer.hosts import LocalHost
from universal_healer.model import HealingMode
from universal_healer.registry import open_registry
from universal_healer.secrets import SecretBox

from healer_mysql import STACK_ID

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def mariadb():
    """The server answers (or the session fails loudly, saying how to start it)."""
    connect().close()


@pytest.fixture
def scratch(mariadb):
    """A schema of the test's own."""
    name = f"healer_mysql_{secrets.token_hex(5)}"
    sql(f"CREATE DATABASE {quoted(name)} CHARACTER SET utf8mb4")
    yield name
    drop_schema(name)


@pytest.fixture
def victim(scratch):
    """A client connection in the scratch schema, ready to run a statement that runs away."""
    made = Victim(schema=scratch)
    yield made
    made.stop()


@pytest.fixture
def world(tmp_path, scratch):
    """The server registered as a ``mysql`` application whose schema is the scratch one, in
    AUTO mode, with a Healer over an SQLite registry in ``tmp_path``."""
    registry = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    registry.ensure_server("local", kind="local")
    app = registry.upsert_application(
        server="local", path=DATADIR, stack=STACK_ID, stack_version=None, confidence=0.9,
        evidence=(),
    )  # fmt: skip
    registry.set_app_metadata(app.id, {"mysql_schemas": [scratch]})
    registry.set_healing_mode(app.id, HealingMode.AUTO)
    box = SecretBox.generate()
    backups = tmp_path / "backups"
    healer = Healer(
        registry=registry,
        manager=manager(),
        hosts=lambda name: LocalHost(),
        box=box,
        settings=HealSettings(min_consecutive=1, backup_root=str(backups)),
    )
    yield World(registry=registry, healer=healer, app_id=app.id, box=box, backups=backups,
                schema=scratch)  # fmt: skip
    registry.close()
