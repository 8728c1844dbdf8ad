"""The registry's server inventory on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt

import pytest

from _databases import database_servers  # noqa: F401 - a fixture, used by name
from test_registry_healing import (  # noqa: F401 - the fixtures are used by name
    _module_database_url,
    _registry,
    _registry_url,
    approval,
    backup,
    execution,
)
from universal_healer.exceptions import ConfigurationError, RegistryError
from universal_healer.inventory import ServerKind, ServerSpec
from universal_healer.model import CheckCategory, CheckResult, CheckStatus, HealthStatus, RiskLevel
from universal_healer.registry import TrustedKey, connect_database
from universal_healer.registry.models import (
    ApplicationRow,
    ApprovalRow,
    BackupRow,
    DiagnosticResultRow,
    HealingExecutionRow,
    ServerRow,
)
from universal_healer.secrets import SecretBox

AT = dt.datetime(2024, 5, 17, 9, 30, 15, 123456, tzinfo=dt.UTC)
CANARY = "canary-pw-Zx81!"
ANOTHER = "another-pw-Q7"


@pytest.fixture
def box():
    return SecretBox.generate()


def spec(name="web1", **changes):
    values = {
        "address": "10.0.0.5",
        "port": 2222,
        "username": "deploy",
        "client_keys": ("~/.ssh/id_ed25519", "/etc/healer/key"),
        "known_hosts": "/etc/healer/known_hosts",
        "jump": "bastion",
        "search_paths": ("/var/www", "/srv/apps — ✓"),
        "tags": ("prod", "eu"),
        "trust_on_first_use": True,
        "max_channels": 4,
    }
    values.update(changes)
    return ServerSpec(name=name, **values)


def raw_servers(url):
    database = connect_database(url)
    try:
        return list(ServerRow.select().bind(database).dicts())
    finally:
        database.close()


class TestAddAndRead:
    def test_a_spec_round_trips_and_its_password_only_with_a_box(self, registry, box):
        added = spec(password=CANARY)
        registry.add_server(added, box)
        assert registry.get_server("web1", box) == added
        assert registry.get_server("web1").password is None
        assert registry.get_server("web1") == spec()

    def test_the_password_is_stored_encrypted(self, registry, box, registry_url):
        registry.add_server(spec(password=CANARY), box)
        [row] = raw_servers(registry_url)
        assert row["password_encrypted"]
        assert all(CANARY not in str(value) for value in row.values())

    def test_defaults_round_trip(self, registry):
        registry.add_server(ServerSpec(name="plain", address="h.example"))
        assert registry.get_server("plain") == ServerSpec(name="plain", address="h.example")

    def test_a_password_without_a_box_is_refused_and_nothing_is_stored(self, registry):
        with pytest.raises(ConfigurationError, match="SecretBox") as caught:
            registry.add_server(spec(password=CANARY))
        assert CANARY not in str(caught.value)
        assert registry.list_server_specs() == []

    def test_a_duplicate_name_is_refused_by_name(self, registry):
        registry.add_server(spec())
        with pytest.raises(RegistryError, match="'web1' exists already"):
            registry.add_server(spec(address="10.0.0.9"))
        assert registry.get_server("web1").address == "10.0.0.5"

    def test_specs_are_listed_by_name_with_the_local_server(self, registry, box):
        registry.add_server(spec("web2", password=CANARY), box)
        registry.add_server(spec("db1"))
        registry.ensure_server("local")
        specs = registry.list_server_specs()
        assert [s.name for s in specs] == ["db1", "local", "web2"]
        assert specs[1] == ServerSpec(name="local", kind=ServerKind.LOCAL)
        assert specs[2].password is None
        assert registry.list_server_specs(box)[2].password == CANARY
        assert [s.name for s in registry.list_servers()] == ["db1", "local", "web2"]

    def test_another_key_cannot_read_the_password(self, registry, box):
        registry.add_server(spec(password=CANARY), box)
        with pytest.raises(ConfigurationError, match="another key") as caught:
            registry.get_server("web1", SecretBox.generate())
        assert CANARY not in str(caught.value)

    def test_an_unknown_server_is_an_error(self, registry):
        with pytest.raises(RegistryError, match="no server called 'ghost'"):
            registry.get_server("ghost")

    def test_ensure_server_keeps_the_inventory_settings(self, registry):
        registry.add_server(spec())
        registry.ensure_server("web1", kind="ssh", address="10.0.0.6", port=22, username="x")
        stored = registry.get_server("web1")
        assert (stored.address, stored.port, stored.username) == ("10.0.0.6", 22, "x")
        assert stored.tags == ("prod", "eu")


class TestUpdate:
    def test_update_replaces_the_settings_and_keeps_the_password(self, registry, box):
        registry.add_server(spec(password=CANARY), box)
        changed = spec(address="10.0.0.7", tags=(), jump=None, client_keys=("k",))
        registry.update_server(changed)
        assert registry.get_server("web1", box) == spec(
            address="10.0.0.7", tags=(), jump=None, client_keys=("k",), password=CANARY
        )

    def test_a_read_modify_write_never_loses_the_password(self, registry, box):
        registry.add_server(spec(password=CANARY), box)
        registry.update_server(registry.get_server("web1"))
        assert registry.get_server("web1", box).password == CANARY

    def test_a_new_password_replaces_the_old_and_clear_removes_it(self, registry, box):
        registry.add_server(spec(password=CANARY), box)
        registry.update_server(spec(password=ANOTHER), box)
        assert registry.get_server("web1", box).password == ANOTHER
        registry.update_server(spec(), clear_password=True)
        assert registry.get_server("web1", box).password is None

    def test_an_unknown_server_cannot_be_updated(self, registry):
        with pytest.raises(RegistryError, match="no server called 'web1'"):
            registry.update_server(spec())


class TestRemove:
    @pytest.fixture
    def app_id(self, registry):
        registry.add_server(spec())
        app = registry.upsert_application(
            server="web1", path="/var/www/a", stack="php", stack_version=None, confidence=1.0,
            evidence=(),
        )  # fmt: skip
        result = CheckResult(
            check="c", category=CheckCategory.SYSTEM, status=CheckStatus.FAIL,
            severity=RiskLevel.HIGH, message="bad",
        )  # fmt: skip
        registry.record_diagnosis(
            app.id, [result], health_score=0, health_status=HealthStatus.CRITICAL, at=AT
        )
        registry.create_execution(execution(app.id))
        registry.create_approval(approval(app.id))
        registry.record_backup(backup(app.id))
        return app.id

    def test_a_server_with_applications_is_kept_and_the_error_counts_them(self, registry, app_id):
        registry.upsert_application(
            server="web1", path="/var/www/b", stack="php", stack_version=None, confidence=1.0,
            evidence=(),
        )  # fmt: skip
        with pytest.raises(RegistryError, match=r"still has 2 application\(s\).*force"):
            registry.remove_server("web1")
        assert registry.get_server("web1").name == "web1"
        assert len(registry.list_applications()) == 2

    def test_force_removes_the_applications_and_every_record_of_them(
        self, registry, app_id, registry_url
    ):
        registry.remove_server("web1", force=True)
        assert registry.list_server_specs() == []
        database = connect_database(registry_url)
        try:
            for model in (
                ApplicationRow,
                DiagnosticResultRow,
                HealingExecutionRow,
                ApprovalRow,
                BackupRow,
            ):
                assert model.select().count(database) == 0, model.__name__
        finally:
            database.close()

    def test_a_server_without_applications_is_removed(self, registry):
        registry.add_server(spec())
        registry.remove_server("web1")
        with pytest.raises(RegistryError, match="no server"):
            registry.remove_server("web1")

    def test_a_jump_host_in_use_is_kept_even_with_force(self, registry):
        registry.add_server(spec("bastion", jump=None))
        registry.add_server(spec("web1"))
        registry.add_server(spec("web2"))
        with pytest.raises(RegistryError, match=r"jump host of 2 server\(s\) \(web1, web2\)"):
            registry.remove_server("bastion", force=True)
        registry.remove_server("web1")
        registry.remove_server("web2")
        registry.remove_server("bastion")


class TestTrustedKeys:
    def test_a_key_trusted_on_first_use_is_recorded_once(self, registry):
        registry.add_server(spec())
        assert registry.trusted_key("web1") is None
        registry.record_trusted_key("web1", "ssh-ed25519", "SHA256:abc+/=", AT)
        registry.record_trusted_key("web1", "ssh-ed25519", "SHA256:abc+/=", AT)  # same: fine
        expected = TrustedKey(key_type="ssh-ed25519", fingerprint="SHA256:abc+/=", at=AT)
        assert registry.trusted_key("web1") == expected

    def test_a_changed_key_is_never_recorded_over_the_trusted_one(self, registry):
        registry.add_server(spec())
        registry.record_trusted_key("web1", "ssh-ed25519", "SHA256:old", AT)
        with pytest.raises(RegistryError, match="already trusts the host key ssh-ed25519 SHA256"):
            registry.record_trusted_key("web1", "ssh-rsa", "SHA256:new", AT)
        assert registry.trusted_key("web1").fingerprint == "SHA256:old"

    def test_forgetting_makes_room_for_a_new_key_and_updates_keep_it(self, registry):
        registry.add_server(spec())
        registry.record_trusted_key("web1", "ssh-ed25519", "SHA256:old", AT)
        registry.update_server(spec(address="10.0.0.8"))
        assert registry.trusted_key("web1").fingerprint == "SHA256:old"
        registry.forget_trusted_key("web1")
        registry.record_trusted_key("web1", "ssh-rsa", "SHA256:new", AT)
        assert registry.trusted_key("web1").key_type == "ssh-rsa"

    def test_bad_input_and_unknown_servers_are_refused(self, registry):
        registry.add_server(spec())
        with pytest.raises(ValueError, match="key_type"):
            registry.record_trusted_key("web1", "ssh ed25519", "SHA256:x", AT)
        with pytest.raises(ValueError, match="fingerprint"):
            registry.record_trusted_key("web1", "ssh-ed25519", "", AT)
        with pytest.raises(ValueError, match="timezone-aware"):
            registry.record_trusted_key("web1", "ssh-ed25519", "SHA256:x", AT.replace(tzinfo=None))
        with pytest.raises(RegistryError, match="no server"):
            registry.record_trusted_key("ghost", "ssh-ed25519", "SHA256:x", AT)
        assert registry.trusted_key("web1") is None
