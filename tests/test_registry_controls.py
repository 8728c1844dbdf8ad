"""The registry's controls over healing on SQLite, PostgreSQL and MariaDB: pauses, the heal
lock, settings and application secrets."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from _databases import database_servers  # noqa: F401 - a fixture, used by name
from test_registry_healing import (  # noqa: F401 - the fixtures are used by name
    _app_id,
    _module_database_url,
    _other_app,
    _registry,
    _registry_url,
)
from universal_healer.exceptions import ApplicationNotFoundError, ConfigurationError
from universal_healer.registry import PAUSE_KEY, connect_database, open_registry
from universal_healer.registry.models import ApplicationRow
from universal_healer.secrets import SecretBox

AT = dt.datetime(2024, 5, 17, 9, 30, 15, 123456, tzinfo=dt.UTC)
CANARY = "canary-pw-Zx81!"


class TestPause:
    def test_an_application_is_paused_and_resumed_with_audit_entries(self, registry, app_id):
        assert registry.pause_state(app_id) == (False, None)
        registry.set_paused(app_id, True, actor="alice", reason="migrating the database")
        paused, why = registry.pause_state(app_id)
        assert paused
        assert f"paused for application {app_id} (by alice at " in why
        assert why.endswith("): migrating the database")
        registry.set_paused(app_id, False, actor="bob", reason=None)
        assert registry.pause_state(app_id) == (False, None)
        entries = registry.audit_entries()
        assert [(e.actor, e.action, e.target) for e in entries] == [
            ("bob", "resume_healing", app_id),
            ("alice", "pause_healing", app_id),
        ]
        assert entries[1].details == {"scope": "application", "reason": "migrating the database"}

    def test_the_global_pause_wins_and_says_so(self, registry, app_id, other_app):
        registry.set_paused(app_id, True, actor="alice", reason="own reason")
        registry.set_paused(None, True, actor="ops", reason="incident 42")
        for app in (app_id, other_app, None):
            paused, why = registry.pause_state(app)
            assert paused
            assert why.startswith("healing is paused globally (by ops at ")
            assert why.endswith("incident 42")
        value = registry.setting(PAUSE_KEY)
        assert value["paused"] is True
        assert (value["by"], value["reason"]) == ("ops", "incident 42")
        assert dt.datetime.fromisoformat(value["at"]).tzinfo is not None
        registry.set_paused(None, False, actor="ops", reason="resolved")
        assert registry.pause_state(other_app) == (False, None)
        assert registry.pause_state(app_id)[0]
        assert registry.audit_entries(limit=1)[0].target == "global"

    def test_an_unknown_application_cannot_be_paused(self, registry):
        with pytest.raises(ApplicationNotFoundError):
            registry.set_paused("nope", True, actor="alice", reason=None)
        with pytest.raises(ApplicationNotFoundError):
            registry.pause_state("nope")
        assert registry.audit_entries() == []


class TestHealLock:
    def test_only_the_holder_has_and_releases_the_lock(self, registry, app_id):
        assert registry.heal_lock_holder(app_id) is None
        assert registry.acquire_heal_lock(app_id, "exec-1", AT)
        assert registry.acquire_heal_lock(app_id, "exec-1", AT)  # the holder asking again
        assert not registry.acquire_heal_lock(app_id, "exec-2", AT)
        assert registry.heal_lock_holder(app_id) == "exec-1"
        assert not registry.release_heal_lock(app_id, "exec-2")
        assert registry.heal_lock_holder(app_id) == "exec-1"
        assert registry.release_heal_lock(app_id, "exec-1")
        assert registry.heal_lock_holder(app_id) is None
        assert registry.acquire_heal_lock(app_id, "exec-2", AT)

    def test_an_unknown_application_has_no_lock(self, registry):
        for call in (
            lambda: registry.acquire_heal_lock("nope", "exec-1", AT),
            lambda: registry.release_heal_lock("nope", "exec-1"),
            lambda: registry.heal_lock_holder("nope"),
        ):
            with pytest.raises(ApplicationNotFoundError):
                call()

    def test_of_many_processes_trying_at_once_exactly_one_gets_the_lock(
        self, registry, app_id, registry_url
    ):
        contenders = 8
        barrier = threading.Barrier(contenders)

        def contend(n):
            with open_registry(registry_url) as own:  # its own connection, as a process has
                barrier.wait()
                return own.acquire_heal_lock(app_id, f"exec-{n}", AT)

        with ThreadPoolExecutor(contenders) as pool:
            won = list(pool.map(contend, range(contenders)))
        assert won.count(True) == 1
        assert registry.heal_lock_holder(app_id) == f"exec-{won.index(True)}"


class TestSettings:
    def test_settings_are_stored_replaced_and_read_back(self, registry):
        assert registry.setting("approvals.ttl_s") is None
        assert registry.setting("approvals.ttl_s", 3600) == 3600
        registry.set_setting("approvals.ttl_s", 7200, actor="alice")
        registry.set_setting("approvals.ttl_s", 7200, actor="alice")  # unchanged: still fine
        registry.set_setting("retention", {"keep": 5, "days": [1, 7]}, actor="bob")
        assert registry.setting("approvals.ttl_s") == 7200
        assert registry.setting("retention") == {"keep": 5, "days": [1, 7]}
        with pytest.raises(ValueError, match="1 to 100 characters"):
            registry.set_setting("k" * 101, 1, actor="alice")


class TestAppSecrets:
    def test_secrets_round_trip_encrypted(self, registry, app_id, registry_url):
        box = SecretBox.generate()
        assert registry.get_app_secrets(app_id, box) == {}
        secrets = {"DB_PASSWORD": CANARY, "API_TOKEN": "tøken ✓"}
        registry.set_app_secrets(app_id, secrets, box)
        assert registry.get_app_secrets(app_id, box) == secrets
        database = connect_database(registry_url)
        try:
            row = ApplicationRow.select().where(ApplicationRow.id == app_id).dicts().get(database)
        finally:
            database.close()
        assert row["secrets_encrypted"]
        assert all(CANARY not in str(value) for value in row.values())

    def test_secrets_are_replaced_and_an_empty_mapping_removes_them(self, registry, app_id):
        box = SecretBox.generate()
        registry.set_app_secrets(app_id, {"A": "first-value"}, box)
        registry.set_app_secrets(app_id, {"B": "second-value"}, box)
        assert registry.get_app_secrets(app_id, box) == {"B": "second-value"}
        registry.set_app_secrets(app_id, {}, box)
        assert registry.get_app_secrets(app_id, SecretBox.generate()) == {}

    def test_another_key_and_bad_input_are_refused_without_the_value(self, registry, app_id):
        box = SecretBox.generate()
        registry.set_app_secrets(app_id, {"DB_PASSWORD": CANARY}, box)
        with pytest.raises(ConfigurationError, match="another key") as caught:
            registry.get_app_secrets(app_id, SecretBox.generate())
        assert CANARY not in str(caught.value)
        with pytest.raises(TypeError, match="'DB_PORT'") as caught:
            registry.set_app_secrets(app_id, {"DB_PORT": 3306, "PW": CANARY}, box)
        assert CANARY not in str(caught.value)
        with pytest.raises(ApplicationNotFoundError):
            registry.set_app_secrets("nope", {"A": "value"}, box)
        with pytest.raises(ApplicationNotFoundError):
            registry.get_app_secrets("nope", box)
