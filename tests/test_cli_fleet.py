"""`healer servers`, and `healer discover` / `healer diagnose` across real SSH servers on
loopback (tests/sshfleet.py): JSON shapes, exit codes, failures named, secrets kept out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from sshfleet import SSHFleet, free_port
from universal_healer.cli import ExitCode, cli
from universal_healer.registry import open_registry

EXAMPLES = Path(__file__).parent.parent / "examples" / "apps"
SAMPLE_APPS = 8
PASSWORD = "canary-pw-Zq8vV3-never-shown"  # noqa: S105 - a canary


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet = SSHFleet(tmp_path_factory.mktemp("sshfleet"))
    yield fleet
    fleet.stop_all()


@pytest.fixture(scope="module")
def web1(fleet):
    return fleet.start("web1", address="127.0.0.2")


@pytest.fixture(scope="module")
def web2(fleet):
    return fleet.start("web2", address="127.0.0.3")


@pytest.fixture
def database(tmp_path):
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def healer(database):
    """Run `healer` in-process against a fresh registry and secret key; returns (code, stdout,
    stderr)."""
    env = {"HEALER_DATABASE_URL": database, "HEALER_SECRET_KEY": Fernet.generate_key().decode()}

    def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
        result = CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return invoke


def flat(text: str) -> str:
    """Text with rich's line wrapping undone."""
    return " ".join(text.split())


def tree(base: Path) -> Path:
    shutil.copytree(EXAMPLES, base)
    return base


def add(healer, fleet, server, root: Path, *extra: str, known_hosts=None, input=None) -> None:
    """``healer servers add`` for a server of the test fleet, logging in with its key."""
    code, out, err = healer(
        "servers", "add", server.name,
        "--address", server.address, "--port", str(server.port), "--user", "root",
        "--key", str(fleet.user_key), "--known-hosts", str(known_hosts or fleet.known_hosts),
        "--search-path", str(root), *extra,
        input=input,
    )  # fmt: skip
    assert code == ExitCode.OK, out + err


def expected_code(statuses, *, partial: bool) -> int:
    """The documented exit code: the worst health wins, then partial work."""
    found = set(statuses)
    for status, code in (("CRITICAL", 7), ("DEGRADED", 6)):
        if status in found:
            return code
    return 3 if partial or "UNKNOWN" in found else 0


class TestServers:
    def test_added_servers_are_listed_with_their_settings(self, healer, tmp_path):
        code, out, _ = healer(
            "servers", "add", "web-1", "--address", "192.0.2.10", "--port", "2222",
            "--user", "deploy", "--key", "keys/id", "--search-path", "/srv",
            "--tag", "prod", "--tag", "eu", "--trust-on-first-use",
        )  # fmt: skip
        assert code == ExitCode.OK, out
        code, out, _ = healer("servers", "list", "--json")
        assert code == ExitCode.OK
        [server] = json.loads(out)
        assert server["name"] == "web-1"
        assert (server["address"], server["port"], server["user"]) == ("192.0.2.10", 2222, "deploy")
        assert server["keys"] == [str(Path.cwd() / "keys" / "id")]
        assert (server["search_paths"], server["tags"]) == (["/srv"], ["prod", "eu"])
        assert server["trust_on_first_use"] is True
        assert server["password_set"] is False
        assert server["trusted_key"] is None

    def test_a_password_comes_from_stdin_is_stored_encrypted_and_never_shown(
        self, healer, database
    ):
        code, out, err = healer(
            "servers", "add", "db-1", "--address", "192.0.2.11", "--password-stdin",
            input=PASSWORD + "\n",
        )  # fmt: skip
        assert code == ExitCode.OK, out + err
        for args in (("servers", "list"), ("servers", "list", "--json")):
            code, out, err = healer(*args)
            assert code == ExitCode.OK
            assert PASSWORD not in out + err
        assert json.loads(healer("servers", "list", "--json")[1])[0]["password_set"] is True
        stored = Path(database.removeprefix("sqlite:///")).read_bytes()
        assert PASSWORD.encode() not in stored

    def test_there_is_no_way_to_give_a_password_on_the_command_line(self, healer):
        code, _, err = healer("servers", "add", "x", "--address", "192.0.2.1", "--password", "pw")
        assert code == ExitCode.USAGE
        assert "No such option" in err

    @pytest.mark.parametrize(
        ("args", "code", "message"),
        [
            pytest.param(
                ("servers", "add", "a", "--address", "192.0.2.1", "--jump", "nowhere"),
                ExitCode.CONFIG,
                "jump host 'nowhere' is not in the inventory",
                id="unknown-jump",
            ),
            pytest.param(
                ("servers", "add", "a b", "--address", "192.0.2.1"),
                ExitCode.USAGE,
                "non-empty name",
                id="bad-name",
            ),
            pytest.param(
                ("servers", "add", "a", "--address", "192.0.2.1", "--search-path", "srv"),
                ExitCode.USAGE,
                "not absolute",
                id="relative-search-path",
            ),
            pytest.param(
                ("servers", "remove", "nowhere"), ExitCode.NOT_FOUND, "no server", id="remove"
            ),
        ],
    )
    def test_bad_requests_exit_with_their_code_and_say_why(self, healer, args, code, message):
        exit_code, out, err = healer(*args)
        assert exit_code == code
        assert message in flat(out + err)

    def test_adding_a_name_twice_is_refused(self, healer):
        assert healer("servers", "add", "a", "--address", "192.0.2.1")[0] == ExitCode.OK
        code, _, err = healer("servers", "add", "a", "--address", "192.0.2.2")
        assert code == ExitCode.CONFIG
        assert "exists already" in err

    def test_import_adds_then_updates_and_takes_passwords_from_the_file(self, healer, tmp_path):
        inventory = tmp_path / "fleet.toml"
        inventory.write_text(
            f"""
[[servers]]
name = "web-2"
address = "192.0.2.20"
jump = "bastion"
password = "{PASSWORD}"

[[servers]]
name = "bastion"
address = "192.0.2.1"
"""
        )
        code, out, _ = healer("servers", "import", str(inventory))
        assert code == ExitCode.OK, out
        assert "2 added, 0 updated" in out
        inventory.write_text(inventory.read_text().replace("192.0.2.20", "192.0.2.21"))
        code, out, _ = healer("servers", "import", str(inventory))
        assert "0 added, 2 updated" in out
        listed = {s["name"]: s for s in json.loads(healer("servers", "list", "--json")[1])}
        assert listed["web-2"]["address"] == "192.0.2.21"
        assert listed["web-2"]["jump"] == "bastion"
        assert listed["web-2"]["password_set"] is True

    def test_an_import_mistake_names_the_file_the_entry_and_the_field(self, healer, tmp_path):
        inventory = tmp_path / "fleet.toml"
        inventory.write_text('[[servers]]\nname = "a"\naddress = "192.0.2.5"\nport = "ssh"\n')
        code, _, err = healer("servers", "import", str(inventory))
        assert code == ExitCode.CONFIG
        assert f"{inventory}: server #1 ('a'): field 'port'" in flat(err)
        assert json.loads(healer("servers", "list", "--json")[1]) == []

    def test_a_server_with_applications_is_removed_only_with_force(
        self, healer, fleet, web1, tmp_path
    ):
        add(healer, fleet, web1, tree(tmp_path / "apps"))
        assert healer("discover", "--server", "web1", "--json")[0] == ExitCode.OK
        code, _, err = healer("servers", "remove", "web1")
        assert code == ExitCode.CONFIG
        assert "--force" in err
        code, out, _ = healer("servers", "remove", "web1", "--force")
        assert code == ExitCode.OK
        assert f"and its {SAMPLE_APPS} application(s) removed" in out
        assert json.loads(healer("apps", "--json")[1]) == []


class TestFleetDiscovery:
    def test_discover_all_servers_records_each_servers_apps(
        self, healer, fleet, web1, web2, tmp_path
    ):
        add(healer, fleet, web1, tree(tmp_path / "one"))
        add(healer, fleet, web2, tree(tmp_path / "two"))
        code, out, err = healer("discover", "--all-servers", "--json")
        assert code == ExitCode.OK, out + err
        found = json.loads(out)
        assert found["failures"] == []
        by_server = {}
        for app in found["applications"]:
            by_server.setdefault(app["server"], []).append(app["path"])
        assert {name: len(paths) for name, paths in by_server.items()} == {
            "web1": SAMPLE_APPS,
            "web2": SAMPLE_APPS,
        }
        assert all(p.startswith(str(tmp_path / "one")) for p in by_server["web1"])
        code, out, _ = healer("apps", "--server", "web2", "--json")
        assert len(json.loads(out)) == SAMPLE_APPS

    def test_a_dead_server_is_named_and_the_others_are_recorded(
        self, healer, fleet, web1, tmp_path
    ):
        add(healer, fleet, web1, tree(tmp_path / "one"))
        code, out, _ = healer(
            "servers", "add", "dead", "--address", "127.0.0.1", "--port", str(free_port())
        )
        assert code == ExitCode.OK, out
        code, out, _ = healer("discover", "--all-servers", "--json")
        assert code == ExitCode.PARTIAL
        found = json.loads(out)
        [failure] = found["failures"]
        assert failure["server"] == "dead"
        assert "connection refused" in failure["error"]
        assert {app["server"] for app in found["applications"]} == {"web1"}
        code, _, err = healer("discover", "--all-servers")
        assert code == ExitCode.PARTIAL
        assert "dead: connection refused" in flat(err)

    def test_paths_given_are_searched_on_each_server(self, healer, fleet, web1, tmp_path):
        root = tree(tmp_path / "elsewhere")
        add(healer, fleet, web1, tmp_path / "not-there")
        code, out, _ = healer("discover", "--server", "web1", str(root / "php-site"), "--json")
        assert code == ExitCode.OK, out
        assert [a["stack"] for a in json.loads(out)["applications"]] == ["php"]

    def test_a_missing_path_on_a_server_is_named_with_the_server(
        self, healer, fleet, web1, tmp_path
    ):
        add(healer, fleet, web1, tmp_path / "not-there")
        code, out, _ = healer("discover", "--server", "web1", "--json")
        assert code == ExitCode.PARTIAL
        assert json.loads(out)["errors"] == [f"web1: {tmp_path / 'not-there'}: missing"]

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            pytest.param(("--server", "nowhere"), "no server called 'nowhere'", id="unknown"),
            pytest.param(
                ("--server", "a", "--all-servers"), "not both", id="server-and-all-servers"
            ),
            pytest.param(("--server", "a", "srv"), "must be absolute", id="relative-path"),
        ],
    )
    def test_bad_fleet_requests_say_why(self, healer, args, message):
        healer("servers", "add", "a", "--address", "192.0.2.1")
        code, _, err = healer("discover", *args)
        assert code in (ExitCode.USAGE, ExitCode.CONFIG)
        assert message in flat(err)


class TestFleetDiagnosis:
    def test_diagnose_all_covers_local_and_remote_apps(self, healer, fleet, web1, web2, tmp_path):
        local = tree(tmp_path / "local")
        add(healer, fleet, web1, tree(tmp_path / "one"))
        add(healer, fleet, web2, tree(tmp_path / "two"))
        assert healer("discover", str(local), "--json")[0] == ExitCode.OK
        assert healer("discover", "--all-servers", "--json")[0] == ExitCode.OK
        code, out, _ = healer("diagnose", "--all", "--json")
        diagnoses = json.loads(out)
        assert code == expected_code((d["health_status"] for d in diagnoses), partial=False)
        assert len(diagnoses) == 3 * SAMPLE_APPS
        assert {d["application"]["server"] for d in diagnoses} == {"local", "web1", "web2"}
        assert all(d["failure"] is None and d["results"] for d in diagnoses)
        _, listed, _ = healer("apps", "--json")
        assert {a["id"]: a["health_status"] for a in json.loads(listed)} == {
            d["application"]["id"]: d["health_status"] for d in diagnoses
        }

    def test_diagnose_server_covers_only_that_servers_apps(
        self, healer, fleet, web1, web2, tmp_path
    ):
        add(healer, fleet, web1, tree(tmp_path / "one"))
        add(healer, fleet, web2, tree(tmp_path / "two"))
        healer("discover", "--all-servers")
        code, out, _ = healer("diagnose", "--server", "web2", "--json")
        diagnoses = json.loads(out)
        assert {d["application"]["server"] for d in diagnoses} == {"web2"}
        assert len(diagnoses) == SAMPLE_APPS
        assert code == expected_code((d["health_status"] for d in diagnoses), partial=False)

    def test_an_unreachable_server_marks_its_apps_unknown_with_the_reason(
        self, healer, database, fleet, web1, tmp_path
    ):
        doomed = fleet.start("doomed-cli", address="127.0.0.9")
        add(healer, fleet, web1, tree(tmp_path / "one"))
        add(healer, fleet, doomed, tree(tmp_path / "two"))
        assert healer("discover", "--all-servers")[0] == ExitCode.OK
        doomed.stop()
        code, out, err = healer("diagnose", "--all", "--json")
        entries = json.loads(out)
        assert code == expected_code((e["health_status"] for e in entries), partial=True)
        failed = [e for e in entries if e["failure"] is not None]
        assert len(failed) == SAMPLE_APPS
        assert {e["application"]["server"] for e in failed} == {"doomed-cli"}
        assert all(e["health_status"] == "UNKNOWN" for e in failed)
        assert all("connection refused" in e["note"] for e in failed)
        assert all(
            e["health_status"] != "UNKNOWN" for e in entries if e["application"]["server"] == "web1"
        )
        _, listed, _ = healer("apps", "--server", "doomed-cli", "--json")
        assert {a["health_status"] for a in json.loads(listed)} == {"UNKNOWN"}
        with open_registry(database) as registry:
            [result] = registry.latest_results(failed[0]["application"]["id"])
        assert result.status.value == "ERROR"
        assert "connection refused" in result.message
        code, out, err = healer("diagnose", "--server", "doomed-cli")
        assert code == ExitCode.PARTIAL
        assert "doomed-cli: connection refused" in flat(err)
        assert f"{SAMPLE_APPS} application(s) not diagnosed, now UNKNOWN" in flat(err)

    def test_trust_on_first_use_is_recorded_and_shown(self, healer, fleet, web1, tmp_path):
        known_hosts = tmp_path / "known_hosts"
        root = tree(tmp_path / "one")
        add(healer, fleet, web1, root, "--trust-on-first-use", known_hosts=known_hosts)
        code, out, err = healer("discover", "--server", "web1", "--json")
        assert code == ExitCode.OK, out + err
        [listed] = json.loads(healer("servers", "list", "--json")[1])
        assert listed["trusted_key"].startswith("ssh-ed25519 SHA256:")
        assert web1.known_hosts_line.split()[-1] in known_hosts.read_text()

    def test_a_password_never_reaches_the_output_of_a_fleet_run(
        self, healer, fleet, web1, tmp_path
    ):
        # The key logs in; the password is stored and handed to SSH, never shown.
        add(healer, fleet, web1, tree(tmp_path / "one"), "--password-stdin", input=PASSWORD)
        for args in (
            ("discover", "--all-servers", "--json"),
            ("diagnose", "--all", "--json"),
            ("diagnose", "--all"),
            ("servers", "list", "--json"),
            ("servers", "list"),
        ):
            _, out, err = healer(*args)
            assert PASSWORD not in out + err
