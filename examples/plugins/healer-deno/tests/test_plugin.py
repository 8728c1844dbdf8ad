"""The Deno plugin: its declarations, its detection (pure, from dicts) and its checks (on disk)."""

from __future__ import annotations

import asyncio
import json
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from universal_healer.checks import CheckContext, DiagnosticCheck, HostRun
from universal_healer.hosts import LocalHost
from universal_healer.model import (
    Application,
    CheckCategory,
    CheckResult,
    CheckStatus,
    ProbedFile,
    RiskLevel,
    SiteProbe,
    StackInfo,
)
from universal_healer.plugins import build_plugin_manager
from universal_healer.testing import make_probe

from healer_deno import config, plugin
from healer_deno.checks import CHECKS, DenoConfigValid, DenoLockfile

README = pathlib.Path(__file__).parents[1] / "README.md"
DENO = StackInfo(id="deno", display_name="Deno")
STD = "https://deno.land/std@0.224.0/"


def deno_json(**fields: object) -> str:
    return json.dumps(fields)


class TestDeclarations:
    def test_declares_the_deno_stack_with_env_as_its_secret_file(self):
        assert plugin.healer_stacks() == [
            StackInfo(id="deno", display_name="Deno", secret_files=(".env",))
        ]

    def test_asks_for_deno_json_and_deno_jsonc_as_markers(self):
        wanted = {f.path: f.marker for f in plugin.healer_probe_files()}
        assert wanted == {"deno.json": True, "deno.jsonc": True}


class TestDetect:
    def test_a_root_with_deno_json_is_a_deno_app(self):
        found = plugin.healer_detect(make_probe({"deno.json": deno_json(tasks={"dev": "x"})}))
        assert found is not None
        assert (found.stack, found.version, found.confidence) == ("deno", None, 0.9)
        assert found.evidence == ("has deno.json",)

    @pytest.mark.parametrize(
        ("imports", "version"),
        [
            pytest.param({"@std/": STD}, "0.224.0", id="deno-land-std"),
            pytest.param({"std/": "std@v0.200.1/"}, "0.200.1", id="bare-v-prefixed"),
            pytest.param(
                {"a/": "https://deno.land/std@0.99.0/", "b/": "https://deno.land/std@0.100.0/"},
                "0.100.0",
                id="highest-of-two",
            ),
            pytest.param({"@std/path": "jsr:@std/path@^1.0.8"}, None, id="jsr-package-not-std"),
            pytest.param({"x/": "https://example.com/notstd@1.2.3/"}, None, id="other-module"),
            pytest.param(["not", "a", "map"], None, id="imports-not-a-map"),
        ],
    )
    def test_version_is_the_standard_library_pinned_in_imports(self, imports, version):
        found = plugin.healer_detect(make_probe({"deno.json": deno_json(imports=imports)}))
        assert found is not None
        assert found.version == version
        assert (f"imports the Deno standard library {version}" in found.evidence) == bool(version)

    def test_deno_jsonc_with_comments_and_trailing_commas_is_read(self):
        text = '{\n  // the std pin\n  "imports": {"@std/": "' + STD + '",},  /* done */\n}\n'
        found = plugin.healer_detect(make_probe({"deno.jsonc": text}))
        assert found is not None
        assert (found.version, found.confidence) == ("0.224.0", 0.9)

    def test_deno_json_is_read_before_deno_jsonc(self):
        probe = make_probe({"deno.json": deno_json(imports={"s/": STD}), "deno.jsonc": "{,"})
        found = plugin.healer_detect(probe)
        assert found is not None
        assert (found.version, found.evidence[0]) == ("0.224.0", "has deno.json")

    def test_invalid_json_is_a_low_confidence_detection_with_the_problem_as_evidence(self):
        found = plugin.healer_detect(make_probe({"deno.json": '{"imports": {'}))
        assert found is not None
        assert (found.stack, found.version, found.confidence) == ("deno", None, 0.3)
        assert found.evidence[0] == "has deno.json"
        assert found.evidence[1].startswith("deno.json: invalid JSON")

    @pytest.mark.parametrize(
        ("content", "problem"),
        [
            pytest.param(b"\xff\xfe\x00", "deno.json: not UTF-8 text", id="binary"),
            pytest.param("[1, 2]", "deno.json: not a JSON object", id="array"),
            pytest.param("null", "deno.json: not a JSON object", id="null"),
            pytest.param(
                ProbedFile(path="deno.json", error="permission denied"),
                "deno.json: permission denied",
                id="unreadable",
            ),
        ],
    )
    def test_a_config_that_cannot_be_used_is_evidence_not_an_exception(self, content, problem):
        found = plugin.healer_detect(make_probe({"deno.json": content}))
        assert found is not None
        assert found.confidence == 0.3
        assert found.evidence[1].startswith(problem)

    def test_a_truncated_config_is_not_parsed(self):
        found = plugin.healer_detect(make_probe({"deno.json": deno_json(a="x" * 50)}, max_bytes=10))
        assert found is not None
        assert found.evidence[1] == "deno.json: larger than 10 bytes, not parsed"

    @pytest.mark.parametrize(
        "files",
        [
            pytest.param({"package.json": '{"name": "x"}'}, id="node-app"),
            pytest.param({}, id="empty-root"),
            pytest.param(
                {"deno.json": ProbedFile(path="deno.json", error="missing")}, id="asked-missing"
            ),
        ],
    )
    def test_a_root_without_a_deno_config_is_not_a_deno_app(self, files):
        assert plugin.healer_detect(make_probe(files)) is None

    @settings(deadline=None)
    @given(name=st.sampled_from(config.CONFIG_FILES), data=st.binary(max_size=300))
    def test_detect_answers_deno_for_any_bytes_in_a_config_file(self, name, data):
        found = plugin.healer_detect(make_probe({name: data}))
        assert found is not None
        assert found.stack == "deno"
        assert found.confidence in {0.3, 0.9}


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)


class TestJsonc:
    @settings(deadline=None)
    @given(value=st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5))
    def test_a_plain_json_object_reads_the_same_as_jsonc(self, value):
        data = json.dumps(value, indent=2).encode()
        assert config.parse("deno.jsonc", data) == config.parse("deno.json", data)

    def test_comment_markers_inside_strings_are_kept(self):
        data = b'{"url": "https://x.test/a//b/*c*/", "q": "say \\"//\\"",}'
        read = config.parse("deno.jsonc", data)
        assert read.value == {"url": "https://x.test/a//b/*c*/", "q": 'say "//"'}

    def test_a_jsonc_error_names_the_line_it_is_on(self):
        read = config.parse("deno.jsonc", b'{\n/* one\ntwo */\n"a": 1,\n"b" 2\n}')
        assert read.problem == "deno.jsonc: invalid JSON (Expecting ':' delimiter at line 5)"


class TestCatalogue:
    def test_get_checks_gives_one_of_each_catalogued_check_for_deno(self):
        checks = plugin.healer_get_checks(DENO)
        assert [type(c) for c in checks] == list(CHECKS)

    def test_get_checks_gives_nothing_for_other_stacks(self):
        assert plugin.healer_get_checks(StackInfo(id="nodejs", display_name="Node.js")) == []

    def test_check_names_are_unique_and_the_readme_lists_each_with_its_declaration(self):
        names = [check.name for check in CHECKS]
        assert len(set(names)) == len(names)
        readme = README.read_text()
        for check in CHECKS:
            row = f"| `{check.name}` | {check.category.value} | {check.severity.value} |"
            assert row in readme, f"README.md has no row {row!r}"

    def test_the_plugin_manager_loads_the_plugin_and_asks_it(self):
        manager = build_plugin_manager(load_entry_points=False, extra=[("deno", plugin)])
        probe = make_probe({"deno.json": deno_json(imports={"s/": STD})})
        deno = [d for d in manager.detect(probe) if d.stack == "deno"]
        assert [(d.plugin, d.version) for d in deno] == [("deno", "0.224.0")]
        assert {"deno_config_valid", "deno_lockfile"} <= {
            c.name for c in manager.checks_for("deno")
        }
        assert [f for f in manager.failures if f.plugin == "deno"] == []


def run_check(check: DiagnosticCheck, root: pathlib.Path, probe: SiteProbe | None = None):
    host = LocalHost()
    app = Application(id="app-1", server="local", path=str(root), stack="deno")
    ctx = CheckContext(
        check=check, host=host, app=app, stack=DENO, probe=probe, host_run=HostRun(host)
    )
    result = asyncio.run(check.run(ctx))
    assert isinstance(result, CheckResult)
    assert (result.check, result.category) == (check.name, CheckCategory.CONFIGURATION)
    return result


class TestConfigValidCheck:
    def test_passes_on_a_valid_deno_json(self, tmp_path):
        (tmp_path / "deno.json").write_text(deno_json(imports={"s/": STD}))
        result = run_check(DenoConfigValid(), tmp_path)
        assert (result.status, result.message) == (CheckStatus.PASS, "deno.json is valid")

    def test_passes_on_a_deno_jsonc_with_comments(self, tmp_path):
        (tmp_path / "deno.jsonc").write_text('{\n  // tasks\n  "tasks": {},\n}\n')
        assert run_check(DenoConfigValid(), tmp_path).status is CheckStatus.PASS

    def test_fails_with_the_problem_on_invalid_json(self, tmp_path):
        (tmp_path / "deno.json").write_text('{"tasks": ')
        result = run_check(DenoConfigValid(), tmp_path)
        assert (result.status, result.severity) == (CheckStatus.FAIL, RiskLevel.MEDIUM)
        assert result.message.startswith("deno.json: invalid JSON")
        assert result.suggested_fix

    def test_fails_when_no_config_file_is_left(self, tmp_path):
        result = run_check(DenoConfigValid(), tmp_path)
        assert result.status is CheckStatus.FAIL
        assert result.message == "neither deno.json nor deno.jsonc is there"


class TestLockfileCheck:
    def test_passes_when_deno_lock_is_there(self, tmp_path):
        (tmp_path / "deno.lock").write_text('{"version": "4"}')
        result = run_check(DenoLockfile(), tmp_path)
        assert (result.status, result.details) == (CheckStatus.PASS, {"size": 16})

    def test_warns_with_a_low_severity_when_deno_lock_is_missing(self, tmp_path):
        result = run_check(DenoLockfile(), tmp_path)
        assert (result.status, result.severity) == (CheckStatus.WARN, RiskLevel.LOW)
        assert "deno install" in (result.suggested_fix or "")

    def test_fails_when_deno_lock_is_a_directory(self, tmp_path):
        (tmp_path / "deno.lock").mkdir()
        assert run_check(DenoLockfile(), tmp_path).status is CheckStatus.FAIL

    def test_passes_without_deno_lock_when_the_config_turns_the_lock_off(self, tmp_path):
        probe = make_probe({"deno.json": deno_json(lock=False)}, root=str(tmp_path))
        result = run_check(DenoLockfile(), tmp_path, probe)
        assert result.status is CheckStatus.PASS
        assert "turned off" in result.message
