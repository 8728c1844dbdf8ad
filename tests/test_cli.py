"""The `healer` command line as scripts use it: JSON shapes, exit codes and messages."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from universal_healer.cli import ExitCode, cli

EXAMPLES = Path(__file__).parent.parent / "examples" / "apps"
APP_KEYS = {
    "id",
    "server",
    "path",
    "stack",
    "version",
    "confidence",
    "detection_method",
    "health_status",
}
RESULT_KEYS = {
    "check",
    "category",
    "status",
    "severity",
    "message",
    "details",
    "suggested_fix",
    "execution_time_ms",
}


@pytest.fixture
def healer(tmp_path):
    """Run `healer` in-process against a fresh SQLite registry; returns (exit code, output)."""
    env = {"HEALER_DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}"}

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
        return result.exit_code, result.output

    return invoke


@pytest.fixture
def apps(tmp_path):
    """A private copy of the sample apps, safe to change."""
    target = tmp_path / "apps"
    shutil.copytree(EXAMPLES, target)
    return target


def discover_json(healer, *paths) -> dict:
    code, out = healer("discover", *map(str, paths), "--json")
    assert code == ExitCode.OK, out
    return json.loads(out)


class TestDiscover:
    def test_discover_finds_the_sample_apps_with_their_stacks_and_versions(self, healer, apps):
        found = discover_json(healer, apps)["applications"]
        by_path = {Path(a["path"]).relative_to(apps).as_posix(): a for a in found}
        assert {p: (a["stack"], a["version"]) for p, a in by_path.items()} == {
            "express-api": ("express", "4.19.2"),
            "laravel-app": ("laravel", "10.48.4"),
            "monorepo/backend": ("express", "4.19.2"),
            "monorepo/frontend": ("nextjs", "14.2.3"),
            "nextjs-app": ("nextjs", "14.2.3"),
            "node-worker": ("nodejs", "20"),
            "php-site": ("php", "8.1"),
            "wordpress-site": ("wordpress", "6.4.3"),
        }
        assert all(set(app) >= APP_KEYS for app in found)

    def test_services_adds_this_machines_mariadb_only_when_asked(self, healer, tmp_path):
        # With PATHS, host services come only with --services (the sample apps stay exact).
        assert discover_json(healer, tmp_path)["applications"] == []
        code, out = healer("discover", str(tmp_path), "--services", "--json")
        assert code == ExitCode.OK, out
        found = {a["path"]: a for a in json.loads(out)["applications"]}
        assert found["/var/lib/mysql"]["stack"] == "mysql"

    def test_discovering_twice_keeps_application_ids(self, healer, apps):
        first = {a["path"]: a["id"] for a in discover_json(healer, apps)["applications"]}
        second = {a["path"]: a["id"] for a in discover_json(healer, apps)["applications"]}
        assert first == second

    def test_a_missing_search_path_is_named_and_exits_partial(self, healer, tmp_path):
        missing = tmp_path / "no-such-dir"
        code, out = healer("discover", str(missing), "--json")
        assert code == ExitCode.PARTIAL
        assert json.loads(out)["errors"] == [f"{missing}: missing"]

    def test_a_hostile_path_is_discovered_and_shown_display_safe(self, healer, tmp_path):
        root = os.fsencode(tmp_path) + b'/it\'s a "site"; $(reboot)\n\xff'
        os.makedirs(root)
        with open(root + b"/index.php", "w") as handle:
            handle.write("<?php echo 'hi';")
        found = discover_json(healer, tmp_path)["applications"]
        assert [a["path"] for a in found] == [
            os.fsdecode(os.fsencode(tmp_path)) + '/it\'s a "site"; $(reboot)\n\\xff'
        ]


class TestApps:
    def test_apps_lists_what_discovery_recorded_filtered_by_stack(self, healer, apps):
        discover_json(healer, apps)
        code, out = healer("apps", "--stack", "nextjs", "--json")
        assert code == ExitCode.OK
        listed = json.loads(out)
        assert sorted(Path(a["path"]).name for a in listed) == ["frontend", "nextjs-app"]
        assert all(set(app) >= APP_KEYS for app in listed)

    def test_apps_filters_by_health(self, healer, apps):
        discover_json(healer, apps)
        code, out = healer("apps", "--health", "healthy", "--json")
        assert code == ExitCode.OK
        assert json.loads(out) == []  # nothing diagnosed yet: all UNKNOWN


class TestDiagnose:
    def test_diagnose_json_has_results_health_and_plan(self, healer, apps):
        found = discover_json(healer, apps)["applications"]
        laravel = next(a for a in found if a["stack"] == "laravel")
        (apps / "laravel-app" / ".env").chmod(0o644)
        code, out = healer("diagnose", laravel["id"][:6], "--json")
        [diagnosis] = json.loads(out)
        assert code == ExitCode.CRITICAL
        assert diagnosis["health_status"] == "CRITICAL"
        assert 0 <= diagnosis["health_score"] <= 100
        assert all(set(r) >= RESULT_KEYS for r in diagnosis["results"])
        permissions = next(r for r in diagnosis["results"] if r["check"] == "file_permissions")
        assert permissions["status"] == "FAIL"
        assert set(diagnosis["plan"]) == {"auto", "needs_approval", "cannot_heal"}

    def test_diagnose_records_the_health_it_found(self, healer, apps):
        discover_json(healer, apps)
        code, out = healer("diagnose", "--all", "--json")
        diagnosed = {d["application"]["id"]: d["health_status"] for d in json.loads(out)}
        assert code == _verdict_for(diagnosed.values())
        _, listed = healer("apps", "--json")
        assert {a["id"]: a["health_status"] for a in json.loads(listed)} == diagnosed

    def test_a_secret_in_an_env_file_never_reaches_the_output(self, healer, apps):
        canary = "canary-Zq8vV3-not-for-output"
        env_file = apps / "laravel-app" / ".env"
        env_file.write_text(f"DB_PASSWORD={canary}\n")
        env_file.chmod(0o644)
        discover_json(healer, apps)
        for args in (("diagnose", "--all", "--json"), ("diagnose", "--all"), ("apps", "-v")):
            _, out = healer(*args)
            assert canary not in out

    @pytest.mark.parametrize(
        ("args", "code", "message"),
        [
            pytest.param(
                ("diagnose", "ffffffff"), ExitCode.NOT_FOUND, "no application", id="unknown"
            ),
            pytest.param(("diagnose",), ExitCode.USAGE, "give one APP_ID or --all", id="neither"),
            pytest.param(("diagnose", "abc", "--all"), ExitCode.USAGE, "give one", id="both"),
        ],
    )
    def test_bad_requests_exit_with_their_code_and_say_why(self, healer, apps, args, code, message):
        discover_json(healer, apps)
        exit_code, out = healer(*args)
        assert exit_code == code
        assert message in out

    def test_diagnose_all_on_an_empty_registry_says_to_discover_first(self, healer):
        code, out = healer("diagnose", "--all")
        assert code == ExitCode.NOT_FOUND
        assert "healer discover" in out


def _verdict_for(statuses) -> int:
    """The documented exit code for a run: the worst health wins."""
    found = set(statuses)
    for status, code in (("CRITICAL", 7), ("DEGRADED", 6), ("UNKNOWN", 3)):
        if status in found:
            return code
    return 0


class TestPins:
    def test_a_manual_pin_survives_the_next_discovery(self, healer, apps):
        found = discover_json(healer, apps)["applications"]
        php = next(a for a in found if a["stack"] == "php")
        code, _ = healer("pin", php["id"], "laravel", "--version", "11.0.0")
        assert code == ExitCode.OK
        again = {a["id"]: a for a in discover_json(healer, apps)["applications"]}
        assert (again[php["id"]]["stack"], again[php["id"]]["version"]) == ("laravel", "11.0.0")
        assert again[php["id"]]["detection_method"] == "MANUAL"

    def test_a_hybrid_pin_keeps_the_stack_and_detects_the_version(self, healer, apps):
        found = discover_json(healer, apps)["applications"]
        worker = next(a for a in found if a["stack"] == "nodejs")
        assert healer("pin", worker["id"], "nodejs", "--hybrid")[0] == ExitCode.OK
        package = apps / "node-worker" / "package.json"
        manifest = json.loads(package.read_text())
        manifest["engines"]["node"] = ">=22"
        package.write_text(json.dumps(manifest))
        again = {a["id"]: a for a in discover_json(healer, apps)["applications"]}
        assert (again[worker["id"]]["stack"], again[worker["id"]]["version"]) == ("nodejs", "22")
        assert again[worker["id"]]["detection_method"] == "HYBRID"

    def test_unpin_lets_detection_decide_again(self, healer, apps):
        found = discover_json(healer, apps)["applications"]
        php = next(a for a in found if a["stack"] == "php")
        healer("pin", php["id"], "laravel")
        healer("unpin", php["id"])
        again = {a["id"]: a for a in discover_json(healer, apps)["applications"]}
        assert (again[php["id"]]["stack"], again[php["id"]]["detection_method"]) == ("php", "AUTO")


class TestRegistryErrors:
    def test_an_unreachable_database_exits_5_without_the_password(self, tmp_path):
        url = "postgresql://healer:s3cret-pw@127.0.0.1:1/healer"
        result = CliRunner().invoke(cli, ["--db", url, "apps"])
        assert result.exit_code == ExitCode.CONFIG
        assert "s3cret-pw" not in result.output
        assert "127.0.0.1" in result.output


class TestPlainText:
    def test_brackets_in_paths_and_messages_are_shown_not_read_as_markup(self, healer, tmp_path):
        root = tmp_path / "[red]site[bold]"
        root.mkdir()
        (root / "index.php").write_text("<?php echo 'hi';")
        (root / ".env").write_text("X=1\n")
        (root / ".env").chmod(0o644)
        discover_json(healer, tmp_path)
        _, listed = healer("apps")
        assert "[red]site[bold]" in listed
        _, diagnosed = healer("diagnose", "--all")
        assert "[red]site[bold]" in diagnosed
