"""The registry against SQLite, PostgreSQL and MariaDB: every database test runs on all three."""

from __future__ import annotations

import datetime as dt
import os
import stat

import pytest

from _databases import database_servers, database_url  # noqa: F401 - fixtures, used by name
from universal_healer.exceptions import (
    ApplicationNotFoundError,
    ConfigurationError,
    RegistryError,
)
from universal_healer.model import (
    CheckCategory,
    CheckResult,
    CheckStatus,
    DetectionMethod,
    HealingMode,
    HealthStatus,
    RiskLevel,
)
from universal_healer.registry import (
    BreakerRecord,
    Server,
    connect_database,
    default_database_url,
    open_registry,
    redact_url,
)
from universal_healer.registry.models import TechStackPluginRow

HOSTILE_PATH = '/srv/it\'s a "test"; $(rm -rf /) `id`\nsecond line ' + os.fsdecode(b"\xff\xfe")
AT = dt.datetime(2024, 5, 17, 9, 30, 15, 123456, tzinfo=dt.UTC)


@pytest.fixture
def registry(database_url):  # noqa: F811 - the imported fixture
    with open_registry(database_url) as opened:
        yield opened


@pytest.fixture
def web1(registry):
    registry.ensure_server("web1")
    return "web1"


def upsert(registry, path="/var/www/blog", *, server="web1", **changes):
    values = {
        "stack": "wordpress",
        "stack_version": "6.4.2",
        "confidence": 0.9,
        "evidence": ("wp-includes/version.php says 6.4.2",),
    }
    values.update(changes)
    return registry.upsert_application(server=server, path=path, **values)


def result(check="disk_space", **changes):
    values = {
        "check": check,
        "category": CheckCategory.SYSTEM,
        "status": CheckStatus.WARN,
        "severity": RiskLevel.MEDIUM,
        "message": "disk 85 % full",
        "details": {"used_percent": 85.5, "mounts": [{"path": "/", "free": 1024}], "ok": None},
        "suggested_fix": "remove old logs",
        "execution_time_ms": 42,
    }
    values.update(changes)
    return CheckResult(**values)


class TestDefaultUrl:
    def test_environment_variable_wins(self, monkeypatch):
        monkeypatch.setenv("HEALER_DATABASE_URL", "postgresql://healer@db.example/healer")
        assert default_database_url() == "postgresql://healer@db.example/healer"

    def test_sqlite_file_under_xdg_data_home_whose_directory_is_created(
        self, monkeypatch, tmp_path
    ):
        monkeypatch.delenv("HEALER_DATABASE_URL", raising=False)
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        url = default_database_url()
        assert url == f"sqlite:///{tmp_path}/data/universal-healer/healer.db"
        assert os.path.isdir(tmp_path / "data" / "universal-healer")

    @pytest.mark.parametrize(
        "xdg", [pytest.param(None, id="unset"), pytest.param("relative/dir", id="relative")]
    )
    def test_falls_back_to_local_share_in_home(self, monkeypatch, tmp_path, xdg):
        monkeypatch.delenv("HEALER_DATABASE_URL", raising=False)
        monkeypatch.setenv("HOME", str(tmp_path))
        if xdg is None:
            monkeypatch.delenv("XDG_DATA_HOME", raising=False)
        else:
            monkeypatch.setenv("XDG_DATA_HOME", xdg)
        url = default_database_url()
        assert url == f"sqlite:///{tmp_path}/.local/share/universal-healer/healer.db"

    def test_default_registry_opens_in_a_private_file(self, monkeypatch, tmp_path):
        monkeypatch.delenv("HEALER_DATABASE_URL", raising=False)
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
        with open_registry() as registry:
            registry.ensure_server("web1")
        mode = os.stat(tmp_path / "universal-healer" / "healer.db").st_mode
        assert stat.S_IMODE(mode) == 0o600


class TestOpening:
    def test_sqlite_runs_with_wal_foreign_keys_and_a_busy_timeout(self, tmp_path):
        database = connect_database(f"sqlite:///{tmp_path}/healer.db")
        try:
            pragma = lambda name: database.execute_sql(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
            assert pragma("journal_mode") == "wal"
            assert pragma("foreign_keys") == 1
            assert pragma("busy_timeout") >= 1000
        finally:
            database.close()

    @pytest.mark.parametrize(
        "url",
        [
            pytest.param("postgresql://healer:s3cr3t-pw@127.0.0.1:1/healer", id="postgresql-down"),
            pytest.param(
                "mysql://root:s3cr3t-pw@127.0.0.1:3306/mysql",
                id="mysql-wrong-password",
                marks=pytest.mark.mysql,
            ),
            pytest.param("mysql://root:s3cr3t%2Dpw@127.0.0.1:1/x", id="percent-encoded"),
            pytest.param("oracle://scott:s3cr3t-pw@db/orcl", id="unknown-scheme"),
            pytest.param("postgresql://healer:s3cr3t-pw@127.0.0.1:port/x", id="bad-port"),
            pytest.param("postgresql://healer:s3cr3t-pw@127.0.0.1:5432/", id="no-database"),
            pytest.param("mysql://root:s3cr3t/pw@127.0.0.1:1/x", id="unescaped-slash"),
        ],
    )
    def test_unusable_url_raises_registry_error_without_the_password(self, url):
        with pytest.raises(RegistryError) as caught:
            open_registry(url)
        message = str(caught.value)
        assert "s3cr3t" not in message
        assert "***" in message
        assert "s3cr3t" not in repr(caught.value.__cause__ or "")

    def test_sqlite_file_in_a_missing_directory_raises_registry_error(self, tmp_path):
        with pytest.raises(RegistryError, match="does not exist"):
            open_registry(f"sqlite:///{tmp_path}/missing/healer.db")

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            pytest.param(
                "postgresql://u:p%40ss@h:5432/d", "postgresql://u:***@h:5432/d", id="password"
            ),
            pytest.param("mysql://u@h/d", "mysql://u@h/d", id="user-only"),
            pytest.param("sqlite:////var/lib/a@b/h.db", "sqlite:////var/lib/a@b/h.db", id="sqlite"),
            pytest.param("mysql://u:p@ss@h/d", "mysql://u:***@h/d", id="unescaped-at"),
        ],
    )
    def test_redacted_url_hides_only_the_password(self, url, shown):
        assert redact_url(url) == shown

    def test_closed_registry_refuses_work(self, tmp_path):
        registry = open_registry(f"sqlite:///{tmp_path}/healer.db")
        registry.close()
        registry.close()
        with pytest.raises(RegistryError, match="closed"):
            registry.list_applications()

    def test_context_manager_closes_the_registry(self, tmp_path):
        with open_registry(f"sqlite:///{tmp_path}/healer.db") as registry:
            pass
        with pytest.raises(RegistryError, match="closed"):
            registry.plugin_states()


class TestValidation:
    """Input refused before any SQL runs: one backend is enough."""

    @pytest.fixture
    def registry(self, tmp_path):
        with open_registry(f"sqlite:///{tmp_path}/healer.db") as opened:
            opened.ensure_server("web1")
            yield opened

    def test_unknown_server_kind_is_refused(self, registry):
        with pytest.raises(ConfigurationError, match="kind"):
            registry.ensure_server("web2", kind="telnet")

    def test_empty_path_and_bad_confidence_are_refused(self, registry):
        with pytest.raises(ValueError, match="empty"):
            upsert(registry, "")
        with pytest.raises(ValueError, match="confidence"):
            upsert(registry, confidence=1.5)
        assert registry.list_applications() == []

    def test_naive_times_are_refused(self, registry):
        app = upsert(registry)
        naive = AT.replace(tzinfo=None)
        with pytest.raises(ValueError, match="timezone-aware"):
            registry.record_diagnosis(
                app.id, [], health_score=0, health_status=HealthStatus.UNKNOWN, at=naive
            )
        with pytest.raises(ValueError, match="timezone-aware"):
            registry.save_breaker_state(app.id, None, 1, naive)
        assert registry.get_application(app.id).last_health_check is None


class TestServers:
    def test_ensure_server_is_idempotent_and_keeps_the_id(self, registry):
        first = registry.ensure_server("web1", kind="ssh", address="10.0.0.5", port=22)
        again = registry.ensure_server("web1", kind="ssh", address="10.0.0.5", port=22)
        assert first == again
        assert registry.get_server_name(first) == "web1"

    def test_ensure_server_takes_new_settings(self, registry):
        server_id = registry.ensure_server("web1", kind="ssh", address="10.0.0.5")
        registry.ensure_server("web1", kind="ssh", address="10.0.0.6", username="deploy")
        assert registry.list_servers() == [
            Server(id=server_id, name="web1", kind="ssh", address="10.0.0.6", username="deploy")
        ]

    def test_servers_are_listed_by_name(self, registry):
        for name in ("web2", "Web3", "db1"):
            registry.ensure_server(name)
        assert [server.name for server in registry.list_servers()] == ["Web3", "db1", "web2"]

    def test_names_differing_only_in_case_are_different_servers(self, registry):
        assert registry.ensure_server("web1") != registry.ensure_server("WEB1")

    def test_unknown_server_id_raises(self, registry):
        with pytest.raises(RegistryError, match="no server"):
            registry.get_server_name("nope")

    def test_application_on_an_unknown_server_is_refused(self, registry):
        with pytest.raises(RegistryError, match="ensure_server"):
            upsert(registry, server="ghost")


class TestApplications:
    def test_new_application_starts_unknown_and_manual(self, registry, web1):
        app = upsert(registry, domain="blog.example")
        assert (app.server, app.path, app.stack, app.stack_version) == (
            "web1",
            "/var/www/blog",
            "wordpress",
            "6.4.2",
        )
        assert app.domain == "blog.example"
        assert app.confidence == 0.9
        assert app.evidence == ("wp-includes/version.php says 6.4.2",)
        assert app.detection_method is DetectionMethod.AUTO
        assert app.health_status is HealthStatus.UNKNOWN
        assert app.healing_mode is HealingMode.MANUAL
        assert not app.healer_enabled
        assert registry.load_breaker_state(app.id) == BreakerRecord(
            state=None, current_attempts=0, last_attempt=None, max_attempts=3, cooldown_s=3600
        )

    def test_upsert_keeps_the_id_and_takes_the_new_detection(self, registry, web1):
        first = upsert(registry, domain="blog.example")
        second = upsert(registry, stack="php", stack_version="8.2", confidence=0.5, evidence=())
        assert second.id == first.id
        assert (second.stack, second.stack_version, second.confidence) == ("php", "8.2", 0.5)
        assert second.evidence == ()
        assert second.domain == "blog.example"  # not given: kept
        assert len(registry.list_applications()) == 1

    def test_the_same_path_on_two_servers_is_two_applications(self, registry, web1):
        registry.ensure_server("web2")
        assert upsert(registry).id != upsert(registry, server="web2").id

    def test_manual_pin_keeps_stack_and_version_but_records_evidence(self, registry, web1):
        app = upsert(registry)
        registry.set_override(app.id, stack="laravel", version="10", method=DetectionMethod.MANUAL)
        again = upsert(registry, stack="php", stack_version="8.3", evidence=("composer.json",))
        assert (again.stack, again.stack_version, again.confidence) == ("laravel", "10", 1.0)
        assert again.detection_method is DetectionMethod.MANUAL
        assert again.evidence == ("composer.json",)

    def test_hybrid_pin_keeps_the_stack_and_takes_its_detected_version(self, registry, web1):
        app = upsert(registry)
        registry.set_override(
            app.id, stack="wordpress", version=None, method=DetectionMethod.HYBRID
        )
        again = upsert(registry, stack_version="6.5", confidence=0.4)
        assert (again.stack, again.stack_version, again.confidence) == ("wordpress", "6.5", 1.0)
        assert again.detection_method is DetectionMethod.HYBRID

    def test_hybrid_pin_ignores_the_version_of_another_stack(self, registry, web1):
        app = upsert(registry)
        registry.set_override(app.id, stack="laravel", version="10", method=DetectionMethod.HYBRID)
        again = upsert(registry, stack="php", stack_version="8.3")
        assert (again.stack, again.stack_version) == ("laravel", "10")

    def test_auto_removes_the_pin(self, registry, web1):
        app = upsert(registry)
        registry.set_override(app.id, stack="laravel", version="10", method=DetectionMethod.MANUAL)
        registry.set_override(app.id, stack="laravel", version="10", method=DetectionMethod.AUTO)
        again = upsert(registry, stack="php", stack_version="8.3")
        assert (again.stack, again.stack_version) == ("php", "8.3")
        assert again.detection_method is DetectionMethod.AUTO

    def test_unknown_stack_ids_are_kept(self, registry, web1):
        app = upsert(registry, stack="cobol-on-cogs", stack_version=None)
        assert registry.get_application(app.id).stack == "cobol-on-cogs"
        assert [a.id for a in registry.list_applications(stack="cobol-on-cogs")] == [app.id]

    def test_hostile_path_round_trips_exactly(self, registry, web1):
        app = upsert(registry, HOSTILE_PATH)
        assert app.path == HOSTILE_PATH
        assert os.fsencode(registry.get_application(app.id).path) == os.fsencode(HOSTILE_PATH)
        assert upsert(registry, HOSTILE_PATH).id == app.id
        [listed] = registry.list_applications()
        assert listed.path == HOSTILE_PATH

    def test_paths_that_display_alike_are_different_applications(self, registry, web1):
        undecodable = upsert(registry, "/srv/caf" + os.fsdecode(b"\xe9"))
        escaped = upsert(registry, "/srv/caf\\xe9")
        assert undecodable.id != escaped.id
        assert undecodable.display_path == escaped.display_path == "/srv/caf\\xe9"
        assert {a.path for a in registry.list_applications()} == {undecodable.path, escaped.path}

    def test_list_is_ordered_by_server_then_path_bytes_and_filtered(self, registry, web1):
        registry.ensure_server("alpha")
        upsert(registry, "/var/www/b", stack="php")
        upsert(registry, "/var/www/B", stack="php")
        upsert(registry, "/var/www/a")
        upsert(registry, "/srv/z", server="alpha")
        listed = [(a.server, a.path) for a in registry.list_applications()]
        assert listed == [
            ("alpha", "/srv/z"),
            ("web1", "/var/www/B"),
            ("web1", "/var/www/a"),
            ("web1", "/var/www/b"),
        ]
        assert [a.path for a in registry.list_applications(server="alpha")] == ["/srv/z"]
        php = registry.list_applications(server="web1", stack="php")
        assert [a.path for a in php] == ["/var/www/B", "/var/www/b"]
        assert registry.list_applications(health=HealthStatus.CRITICAL) == []
        assert len(registry.list_applications(health=HealthStatus.UNKNOWN)) == 4

    def test_healing_mode_is_stored(self, registry, web1):
        app = upsert(registry)
        registry.set_healing_mode(app.id, HealingMode.SUPERVISED)
        assert registry.get_application(app.id).healing_mode is HealingMode.SUPERVISED

    def test_every_method_taking_an_app_id_raises_not_found_for_an_unknown_one(self, registry):
        calls = {
            "set_healing_mode": lambda: registry.set_healing_mode("nope", HealingMode.AUTO),
            "set_override": lambda: registry.set_override(
                "nope", stack="php", version=None, method=DetectionMethod.MANUAL
            ),
            "latest_results": lambda: registry.latest_results("nope"),
            "save_breaker_state": lambda: registry.save_breaker_state("nope", None, 0, None),
            "load_breaker_state": lambda: registry.load_breaker_state("nope"),
        }
        for name, call in calls.items():
            try:
                call()
            except ApplicationNotFoundError:
                continue
            pytest.fail(f"{name} accepted an unknown application id")


class TestLookup:
    @pytest.fixture
    def ids(self, registry, web1, monkeypatch):
        chosen = iter(
            [
                "abcd1111-0000-4000-8000-000000000001",
                "abcd2222-0000-4000-8000-000000000002",
                "ef012345-0000-4000-8000-000000000003",
            ]
        )
        monkeypatch.setattr("universal_healer.registry._store.new_id", lambda: next(chosen))
        return [upsert(registry, f"/var/www/{n}").id for n in range(3)]

    def test_exact_id_or_unique_prefix_finds_the_application(self, registry, ids):
        for given, expected in [
            ("abcd1111-0000-4000-8000-000000000001", ids[0]),
            ("abcd1", ids[0]),
            ("ef01", ids[2]),  # four characters are enough
            ("EF012", ids[2]),  # and case does not matter
        ]:
            assert registry.get_application(given).id == expected, given

    def test_ambiguous_prefix_names_the_matches(self, registry, ids):
        with pytest.raises(ApplicationNotFoundError, match="ambiguous") as caught:
            registry.get_application("abcd")
        assert caught.value.matches == tuple(ids[:2])

    def test_short_unknown_or_wildcard_prefix_finds_nothing(self, registry, ids):
        for given in ["ef0", "9999", "ab%d", "ab_d", "abcd%"]:
            with pytest.raises(ApplicationNotFoundError, match="no application") as caught:
                registry.get_application(given)
            assert caught.value.matches == (), given


class TestDiagnoses:
    def test_results_and_health_round_trip(self, registry, web1):
        app = upsert(registry)
        results = [
            result("disk_space"),
            result(
                "wp_debug",
                category=CheckCategory.CONFIGURATION,
                status=CheckStatus.PASS,
                severity=RiskLevel.LOW,
                message="WP_DEBUG is off — good ✓",
                details={},
                suggested_fix=None,
                execution_time_ms=0,
            ),
        ]
        run_id = registry.record_diagnosis(
            app.id,
            results,
            health_score=72,
            health_status=HealthStatus.DEGRADED,
            at=AT.astimezone(dt.timezone(dt.timedelta(hours=2))),
        )
        assert len(run_id) == 36
        assert registry.latest_results(app.id) == tuple(results)
        stored = registry.get_application(app.id)
        assert (stored.health_score, stored.health_status) == (72, HealthStatus.DEGRADED)
        assert stored.last_health_check == AT
        assert stored.last_health_check.tzinfo is dt.UTC

    def test_latest_results_are_those_of_the_last_run(self, registry, web1):
        app = upsert(registry)
        kwargs = {"health_score": 50, "health_status": HealthStatus.DEGRADED, "at": AT}
        registry.record_diagnosis(app.id, [result("old_check"), result("disk_space")], **kwargs)
        registry.record_diagnosis(app.id, [result("new_check", status=CheckStatus.FAIL)], **kwargs)
        assert [r.check for r in registry.latest_results(app.id)] == ["new_check"]

    def test_results_come_back_ordered_by_check_name(self, registry, web1):
        app = upsert(registry)
        checks = [result(name) for name in ("b", "c", "a")]
        registry.record_diagnosis(
            app.id, checks, health_score=90, health_status=HealthStatus.HEALTHY, at=AT
        )
        assert [r.check for r in registry.latest_results(app.id)] == ["a", "b", "c"]

    def test_a_run_without_results_leaves_none_latest(self, registry, web1):
        app = upsert(registry)
        kwargs = {"health_score": 100, "health_status": HealthStatus.HEALTHY, "at": AT}
        assert registry.latest_results(app.id) == ()
        registry.record_diagnosis(app.id, [result()], **kwargs)
        registry.record_diagnosis(app.id, [], **kwargs)
        assert registry.latest_results(app.id) == ()

    def test_message_with_undecodable_bytes_is_stored_readably(self, registry, web1):
        app = upsert(registry)
        message = "cannot read " + os.fsdecode(b"/srv/\xff") + " \x00"
        registry.record_diagnosis(
            app.id,
            [result(message=message, details={"path": message})],
            health_score=0,
            health_status=HealthStatus.CRITICAL,
            at=AT,
        )
        [stored] = registry.latest_results(app.id)
        assert stored.message == "cannot read /srv/\\xff \\x00"
        assert stored.details == {"path": message}  # JSON keeps the exact string

    def test_failed_diagnosis_writes_nothing(self, registry, web1):
        with pytest.raises(ApplicationNotFoundError):
            registry.record_diagnosis(
                "nope", [result()], health_score=0, health_status=HealthStatus.CRITICAL, at=AT
            )


class TestPlugins:
    def test_synced_plugins_start_enabled(self, registry):
        registry.sync_plugins(
            [
                ("wordpress", "1.0.0", ["wordpress"], True, None),
                ("healer-rails", "0.3", ["rails", "ruby"], False, "healer-rails"),
            ]
        )
        assert registry.plugin_states() == {"wordpress": True, "healer-rails": True}

    def test_sync_updates_metadata_but_never_the_operators_choice(self, registry, database_url):  # noqa: F811
        registry.sync_plugins([("healer-rails", "0.3", ["rails"], False, "healer-rails")])
        registry.set_plugin_enabled("healer-rails", False)
        registry.sync_plugins([("healer-rails", "0.4", ["rails", "ruby"], False, "healer-rails")])
        assert registry.plugin_states() == {"healer-rails": False}
        database = connect_database(database_url)
        try:
            row = TechStackPluginRow.select().bind(database).get()
        finally:
            database.close()
        assert (row.version, row.tech_stack, row.distribution) == (
            "0.4",
            ["rails", "ruby"],
            "healer-rails",
        )

    def test_a_plugin_can_be_disabled_before_it_is_installed(self, registry):
        registry.set_plugin_enabled("healer-cobol", False)
        assert registry.plugin_states() == {"healer-cobol": False}
        registry.sync_plugins([("healer-cobol", "1.0", ["cobol"], False, "healer-cobol")])
        registry.set_plugin_enabled("healer-cobol", True)
        assert registry.plugin_states() == {"healer-cobol": True}


class TestAudit:
    def test_entries_come_back_newest_first_with_their_details(self, registry):
        for n in range(3):
            registry.audit("cli", "pin", f"app-{n}", {"stack": "php", "n": n, "nested": [1, {}]})
        entries = registry.audit_entries(limit=2)
        assert [e.target for e in entries] == ["app-2", "app-1"]
        assert entries[0].details == {"stack": "php", "n": 2, "nested": [1, {}]}
        assert (entries[0].actor, entries[0].action) == ("cli", "pin")
        assert entries[0].at.tzinfo is dt.UTC
        assert entries[0].at >= entries[1].at
        assert len(registry.audit_entries()) == 3


class TestBreaker:
    def test_state_round_trips_as_plain_json(self, registry, web1):
        app = upsert(registry)
        state = {"status": "open", "failures": ["2024-05-17T09:30:15+00:00"], "n": 2}
        registry.save_breaker_state(app.id, state, 2, AT)
        assert registry.load_breaker_state(app.id) == BreakerRecord(
            state=state, current_attempts=2, last_attempt=AT, max_attempts=3, cooldown_s=3600
        )
        registry.save_breaker_state(app.id, None, 0, None)
        assert registry.load_breaker_state(app.id).state is None


def test_two_registries_on_two_databases_do_not_mix(tmp_path):
    """The models are never bound globally, so each registry sees only its own rows."""
    with (
        open_registry(f"sqlite:///{tmp_path}/one.db") as one,
        open_registry(f"sqlite:///{tmp_path}/two.db") as two,
    ):
        one.ensure_server("web1")
        two.ensure_server("web2")
        assert [s.name for s in one.list_servers()] == ["web1"]
        assert [s.name for s in two.list_servers()] == ["web2"]


def test_ids_are_uuid4_strings(registry, web1):
    app = upsert(registry)
    assert len(app.id) == 36
    assert app.id[14] == "4"
    assert set(app.id) <= set("0123456789abcdef-")
    assert len({upsert(registry, f"/p{n}").id for n in range(5)}) == 5
