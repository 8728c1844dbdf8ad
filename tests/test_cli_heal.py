"""The healing commands as an operator uses them, on a real copy of the sample apps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from universal_healer.cli import ExitCode, cli

EXAMPLES = Path(__file__).parent.parent / "examples" / "apps"
CANARY = "canary-Hq2-never-in-output"


@pytest.fixture
def site(tmp_path):
    """The sample Laravel app with its .env readable by everyone, a canary inside."""
    root = tmp_path / "apps" / "laravel-app"
    shutil.copytree(EXAMPLES / "laravel-app", root)
    (root / ".env").write_text(f"APP_KEY=base64:abc\nDB_PASSWORD={CANARY}\n")
    (root / ".env").chmod(0o644)
    return root


@pytest.fixture
def healer(tmp_path, monkeypatch):
    monkeypatch.setenv("HEALER_SECRET_KEY_FILE", str(tmp_path / "secret.key"))
    env = {"HEALER_DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}"}

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
        return result.exit_code, result.output

    return invoke


@pytest.fixture
def app_id(healer, site):
    code, out = healer("discover", str(site.parent), "--json")
    assert code == ExitCode.OK, out
    [app] = json.loads(out)["applications"]
    return app["id"]


def heal_json(healer, *args) -> tuple[int, dict]:
    code, out = healer("heal", *args, "--json")
    return code, json.loads(out)


class TestHeal:
    def test_auto_mode_restricts_the_exposed_env_file_after_two_diagnoses(
        self, healer, site, app_id
    ):
        assert healer("mode", app_id, "auto")[0] == ExitCode.OK
        code, first = heal_json(healer, app_id)
        assert code == ExitCode.OK
        assert [s["rule"] for s in first["skipped"]] == ["persistence"]
        code, second = heal_json(healer, app_id)
        assert code == ExitCode.OK
        [execution] = second["executions"]
        assert (execution["action_name"], execution["status"]) == (
            "restrict_secret_files",
            "SUCCEEDED",
        )
        assert site.joinpath(".env").stat().st_mode & 0o777 == 0o640

    def test_manual_mode_asks_for_approval_and_runs_once_approved(self, healer, site, app_id):
        healer("diagnose", app_id)  # the finding holds for two diagnoses with the heal's own
        code, report = heal_json(healer, app_id)
        assert code == ExitCode.OK
        assert report["executions"] == []
        [pending] = report["pending_approvals"]
        code, listed = healer("approvals", "--json")
        assert [a["id"] for a in json.loads(listed)] == [pending["id"]]
        assert healer("approve", pending["id"][:8])[0] == ExitCode.OK
        code, report = heal_json(healer, app_id)
        assert [e["status"] for e in report["executions"]] == ["SUCCEEDED"]
        assert site.joinpath(".env").stat().st_mode & 0o777 == 0o640

    def test_a_dry_run_shows_the_step_and_changes_nothing(self, healer, site, app_id):
        code, report = heal_json(healer, app_id, "--dry-run", "--mode", "auto")
        assert code == ExitCode.OK
        [planned] = report["dry_run"]
        assert planned["steps"] == [f"chmod o-rwx -- {site / '.env'}"]
        assert planned["backup"].startswith("files (")
        assert site.joinpath(".env").stat().st_mode & 0o777 == 0o644
        assert json.loads(healer("executions", "--json")[1]) == []

    def test_rollback_puts_the_file_back_as_it_was(self, healer, site, app_id):
        healer("mode", app_id, "auto")
        healer("diagnose", app_id)
        _, report = heal_json(healer, app_id)
        [execution] = report["executions"]
        code, out = healer("rollback", execution["id"][:8])
        assert code == ExitCode.OK, out
        assert site.joinpath(".env").stat().st_mode & 0o777 == 0o644
        [backup] = json.loads(healer("backups", app_id, "--json")[1])
        assert backup["restored_at"] is not None

    def test_a_paused_app_is_not_healed_and_resume_lets_it(self, healer, site, app_id):
        healer("mode", app_id, "auto")
        healer("diagnose", app_id)
        assert healer("pause", app_id, "--reason", "deploy in progress")[0] == ExitCode.OK
        _, report = heal_json(healer, app_id)
        assert [s["rule"] for s in report["skipped"]] == ["paused"]
        assert healer("resume", app_id)[0] == ExitCode.OK
        _, report = heal_json(healer, app_id)
        assert [e["status"] for e in report["executions"]] == ["SUCCEEDED"]

    def test_the_breaker_can_be_shown_and_reset(self, healer, app_id):
        code, out = healer("breaker", "show", app_id, "--json")
        assert code == ExitCode.OK
        assert json.loads(out)["status"] == "CLOSED"
        assert healer("breaker", "reset", app_id)[0] == ExitCode.OK

    def test_the_secret_never_reaches_any_output_or_record(self, healer, site, app_id, tmp_path):
        healer("mode", app_id, "auto")
        outputs = [healer("diagnose", app_id)[1], healer("heal", app_id)[1]]
        outputs += [healer(*args)[1] for args in (
            ("heal", app_id, "--json"), ("executions", "--json"), ("executions",),
            ("backups", "--json"), ("approvals", "--all", "--json"), ("apps", "--json"),
        )]  # fmt: skip
        assert all(CANARY not in out for out in outputs)
        assert CANARY.encode() not in (tmp_path / "registry.db").read_bytes()
