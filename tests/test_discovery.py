"""Discovery on the local host, against real directory trees and the shipped example apps."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import types
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs
import pytest

from universal_healer.discovery import DiscoveredApp, DiscoveryReport, discover
from universal_healer.exceptions import HostUnreachableError
from universal_healer.hookspecs import hookimpl
from universal_healer.hosts.base import HostFacts
from universal_healer.hosts.local import LocalHost
from universal_healer.model import Detection, SiteProbe
from universal_healer.plugins import PluginManager, build_plugin_manager

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "apps"
EXPRESS = json.dumps({"dependencies": {"express": "^4.19.2"}})
NEXT = json.dumps({"dependencies": {"next": "^14.2.3", "react": "^18.3.1"}})
WORKER = json.dumps({"scripts": {"start": "node index.js"}, "dependencies": {"pg": "^8.11.5"}})


@pytest.fixture(scope="module")
def manager() -> PluginManager:
    return build_plugin_manager(load_entry_points=False)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp_path with symlinks resolved, as discovery reports real paths."""
    return tmp_path.resolve()


def write(root: Path, files: Mapping[str, str | bytes]) -> None:
    """Create ``files`` (relative path to content) under ``root``."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def run(manager: PluginManager, *paths: str | Path, max_depth: int = 5) -> DiscoveryReport:
    return asyncio.run(
        discover(LocalHost(), manager, [os.fspath(p) for p in paths], max_depth=max_depth)
    )


def found(report: DiscoveryReport, base: Path) -> dict[str, tuple[str, str | None]]:
    """The apps as {path relative to ``base``: (stack, version)}."""
    return {os.path.relpath(app.root, base): (app.stack, version(app)) for app in report.apps}


def version(app: DiscoveredApp) -> str | None:
    assert app.outcome.best is not None
    return app.outcome.best.version


def app_at(report: DiscoveryReport, root: Path) -> DiscoveredApp:
    matches = [app for app in report.apps if app.root == os.fspath(root)]
    assert matches, f"no app at {root}; found {[a.root for a in report.apps]}"
    return matches[0]


# --------------------------------------------------------------------------------------------
# A discovery run in a child process: as another user, or bounded by a timeout.

_CHILD = """
import asyncio, json, os, sys
from universal_healer.discovery import discover
from universal_healer.hosts.local import LocalHost
from universal_healer.plugins import build_plugin_manager

paths, checks, user = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
host, manager = LocalHost(), build_plugin_manager(load_entry_points=False)
asyncio.run(discover(host, manager, []))  # load every module while they are still readable
if user is not None:
    os.setgroups([])
    os.setgid(user[1])
    os.setuid(user[0])
report = asyncio.run(discover(host, manager, paths))
print(json.dumps({
    "apps": {a.root: [a.stack, a.outcome.best.confidence, list(a.outcome.evidence)]
             for a in report.apps},
    "errors": list(report.errors),
    "readable": {path: os.access(path, os.R_OK) for path in checks},
}))
"""


def discover_in_child(
    paths: list[str], *, unprivileged: bool = False, readable: list[str] | tuple[()] = ()
) -> dict[str, object]:
    """Run discovery in a fresh interpreter, bounded by a timeout so that a hang fails the test
    instead of stalling the suite.

    ``unprivileged`` drops to ``nobody`` inside the child when the suite runs as root (root
    reads everything). The interpreter starts as the current user and switches before
    discovering, so it never needs to read its own installation as ``nobody``.
    """
    user = None
    if unprivileged and os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        user = [nobody.pw_uid, nobody.pw_gid]
    argv = [sys.executable, "-c", _CHILD, json.dumps(paths), json.dumps(list(readable))]
    try:
        done = subprocess.run(
            [*argv, json.dumps(user)],
            capture_output=True,
            check=False,
            cwd="/",
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"discovery of {paths} did not finish within 60 s")
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.fixture
def shared_tree() -> Iterator[Path]:
    """A tree under /tmp that the unprivileged user can reach (pytest's tmp_path is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="healer-discovery-")).resolve()
    base.chmod(0o755)
    try:
        yield base
    finally:
        for directory, subdirs, _ in os.walk(base):
            for sub in subdirs:
                os.chmod(os.path.join(directory, sub), 0o755)  # noqa: S103 - to delete it
        shutil.rmtree(base)


# --------------------------------------------------------------------------------------------
# The example apps shipped in the repository


@pytest.fixture(scope="module")
def examples(manager: PluginManager) -> DiscoveryReport:
    return run(manager, EXAMPLES)


class TestExampleApps:
    def test_examples_yield_exactly_the_expected_apps_stacks_and_versions(self, examples):
        assert found(examples, EXAMPLES) == {
            "wordpress-site": ("wordpress", "6.4.3"),
            "express-api": ("express", "4.19.2"),
            "nextjs-app": ("nextjs", "14.2.3"),
            "laravel-app": ("laravel", "10.48.4"),
            "php-site": ("php", "8.1"),
            "node-worker": ("nodejs", "20"),
            "monorepo/backend": ("express", "4.19.2"),
            "monorepo/frontend": ("nextjs", "14.2.3"),
        }
        assert examples.errors == ()

    def test_monorepo_root_is_not_an_app(self, examples):
        skipped = {os.path.relpath(s.path, EXAMPLES): s.reason for s in examples.skipped}
        assert skipped["monorepo"] == "no plugin recognised it"

    @pytest.mark.parametrize(
        ("nested", "owner"),
        [
            pytest.param(
                "wordpress-site/wp-content/themes/flavor", "wordpress", id="theme-tooling"
            ),
            pytest.param("wordpress-site/wp-admin", "wordpress", id="wp-admin"),
            pytest.param("laravel-app/public", "laravel", id="laravel-public"),
        ],
    )
    def test_candidates_inside_a_claimed_directory_belong_to_their_app(
        self, examples, nested, owner
    ):
        skipped = {os.path.relpath(s.path, EXAMPLES): s.reason for s in examples.skipped}
        assert skipped[nested].startswith(f"part of the {owner} app at ")

    @pytest.mark.parametrize(
        ("app", "evidence"),
        [
            pytest.param("express-api", "version 4.19.2 pinned by package-lock.json", id="express"),
            pytest.param("nextjs-app", "version 14.2.3 pinned by package-lock.json", id="nextjs"),
            pytest.param("laravel-app", "version 10.48.4 from composer.lock", id="laravel"),
            pytest.param(
                "wordpress-site", "version 6.4.3 from wp-includes/version.php", id="wordpress"
            ),
        ],
    )
    def test_versions_come_from_the_files_that_pin_them(self, examples, app, evidence):
        assert evidence in app_at(examples, EXAMPLES / app).outcome.evidence

    def test_every_app_was_recognised_by_the_signatures_plugin(self, examples):
        assert {app.outcome.best.plugin for app in examples.apps if app.outcome.best} == {
            "universal_healer.builtin.signatures"
        }


# --------------------------------------------------------------------------------------------
# Trees built for the test


class TestTrees:
    def test_nested_monorepo_apps_are_apps_of_their_own(self, manager, tree):
        write(
            tree,
            {
                "mono/package.json": json.dumps({"workspaces": {"packages": ["packages/*"]}}),
                "mono/packages/api/package.json": EXPRESS,
                "mono/packages/web/package.json": NEXT,
                "mono/packages/web/src/app/page.tsx": "export default () => null;\n",
                "mono/packages/worker/package.json": WORKER,
                "mono/legacy/index.php": "<?php\n",
                "mono/legacy/composer.json": json.dumps({"require": {"php": "^8.2"}}),
            },
        )
        assert found(run(manager, tree), tree) == {
            "mono/packages/api": ("express", "4.19.2"),
            "mono/packages/web": ("nextjs", "14.2.3"),
            "mono/packages/worker": ("nodejs", None),
            "mono/legacy": ("php", "8.2"),
        }

    def test_an_app_inside_an_unclaimed_folder_of_another_app_is_its_own(self, manager, tree):
        write(
            tree,
            {
                "shop/package.json": EXPRESS,
                "shop/admin/package.json": NEXT,
                "shop/public/widget/package.json": WORKER,
            },
        )
        report = run(manager, tree)
        assert found(report, tree) == {
            "shop": ("express", "4.19.2"),
            "shop/admin": ("nextjs", "14.2.3"),
        }
        assert [os.path.relpath(s.path, tree) for s in report.skipped] == ["shop/public/widget"]

    @pytest.mark.parametrize(
        "pruned",
        [
            pytest.param("node_modules/some-package", id="node_modules"),
            pytest.param("vendor/acme/tool", id="vendor"),
            pytest.param(".git/hooks", id="git"),
            pytest.param("app/node_modules/.bin/deep", id="nested-node_modules"),
        ],
    )
    def test_pruned_directories_are_never_descended_into(self, manager, tree, pruned):
        write(
            tree,
            {
                "site/package.json": WORKER,
                f"site/{pruned}/package.json": EXPRESS,
                f"site/{pruned}/composer.json": "{}",
            },
        )
        report = run(manager, tree)
        assert found(report, tree) == {"site": ("nodejs", None)}
        assert report.skipped == ()

    @pytest.mark.parametrize(
        ("max_depth", "expected"),
        [
            pytest.param(2, {}, id="too-shallow"),
            pytest.param(3, {"a/b/c": ("express", "4.19.2")}, id="deep-enough"),
        ],
    )
    def test_max_depth_bounds_the_walk(self, manager, tree, max_depth, expected):
        write(tree, {"a/b/c/package.json": EXPRESS})
        assert found(run(manager, tree, max_depth=max_depth), tree) == expected


# --------------------------------------------------------------------------------------------
# Bad input: a clear message each, nothing crashing


class TestBadInput:
    def test_a_missing_search_path_is_an_error_naming_it(self, manager, tree):
        missing = tree / "no-such-dir"
        report = run(manager, missing)
        assert report.apps == ()
        assert report.errors == (f"{missing}: missing",)

    def test_a_relative_search_path_is_refused(self, manager):
        report = run(manager, "srv/www")
        assert report.errors == ("srv/www: search paths must be absolute",)

    def test_a_file_as_search_path_is_an_error(self, manager, tree):
        write(tree, {"package.json": EXPRESS})
        report = run(manager, tree / "package.json")
        assert report.errors == (f"{tree / 'package.json'}: not a directory",)

    def test_unreadable_directories_are_errors_and_the_rest_is_found(self, shared_tree):
        """As a user who really cannot read them (``nobody`` when the suite runs as root)."""
        write(
            shared_tree,
            {
                "site/package.json": EXPRESS,
                "locked/hidden/package.json": EXPRESS,
                "private/package.json": EXPRESS,
            },
        )
        locked = shared_tree / "locked"
        manifest = shared_tree / "private" / "package.json"
        locked.chmod(0o000)
        manifest.chmod(0o000)
        result = discover_in_child(
            [os.fspath(shared_tree)],
            unprivileged=True,
            readable=[os.fspath(locked), os.fspath(manifest)],
        )
        assert result["readable"] == {os.fspath(locked): False, os.fspath(manifest): False}
        assert result["errors"] == [f"{locked}: permission denied"]
        apps = result["apps"]
        assert isinstance(apps, dict)
        assert apps[os.fspath(shared_tree / "site")][:2] == ["express", 0.85]
        stack, confidence, evidence = apps[os.fspath(shared_tree / "private")]
        assert (stack, confidence) == ("nodejs", 0.3)
        assert "package.json: permission denied" in evidence
        assert os.fspath(locked / "hidden") not in apps

    def test_symlink_loops_terminate(self, manager, tree):
        write(tree, {"app/package.json": EXPRESS})
        (tree / "a").symlink_to(tree / "b")
        (tree / "b").symlink_to(tree / "a")
        (tree / "app" / "up").symlink_to(tree)  # a directory link to its parent
        (tree / "app" / "self").symlink_to(".")
        (tree / "elsewhere").symlink_to(tree / "app")
        report = run(manager, tree, tree / "a")
        assert found(report, tree) == {"app": ("express", "4.19.2")}
        assert report.errors == (f"{tree / 'a'}: too many levels of symbolic links",)

    def test_a_huge_sparse_manifest_is_read_capped_and_said_too_large(self, manager, tree):
        manifest = tree / "big" / "package.json"
        manifest.parent.mkdir()
        manifest.touch()
        os.truncate(manifest, 2 * 1024**3)
        app = app_at(run(manager, tree), tree / "big")
        assert app.outcome.best is not None
        assert (app.stack, app.outcome.best.confidence) == ("nodejs", 0.3)
        probed = app.probe.file("package.json")
        assert probed is not None
        assert probed.truncated
        assert probed.data is not None
        assert len(probed.data) == 256 * 1024
        assert (
            "package.json: too large to parse (2147483648 bytes; read capped at 262144 bytes)"
            in app.outcome.evidence
        )

    @pytest.mark.parametrize(
        ("name", "content", "problem"),
        [
            pytest.param(
                "package.json",
                '{\n  "name": "x",\n}\n',
                "package.json: invalid JSON (Expecting property name enclosed in double quotes "
                "at line 3)",
                id="package-json-trailing-comma",
            ),
            pytest.param(
                "package.json",
                bytes(range(256)),
                "package.json: not UTF-8 text (invalid start byte at byte 128)",
                id="package-json-binary",
            ),
            pytest.param(
                "composer.json",
                "{'require': {}}",
                "composer.json: invalid JSON (Expecting property name enclosed in double quotes "
                "at line 1)",
                id="composer-json-single-quotes",
            ),
            pytest.param(
                "composer.json",
                b"\x1f\x8b\x08\x00garbage",
                "composer.json: not UTF-8 text (invalid start byte at byte 1)",
                id="composer-json-gzip",
            ),
        ],
    )
    def test_broken_manifests_appear_in_evidence(self, manager, tree, name, content, problem):
        write(tree, {f"site/{name}": content})
        app = app_at(run(manager, tree), tree / "site")
        assert app.stack == {"package.json": "nodejs", "composer.json": "php"}[name]
        assert problem in app.outcome.evidence

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param(b"my app", id="space"),
            pytest.param(b'it\'s "quoted"', id="quotes"),
            pytest.param(b"a;touch pwned", id="semicolon"),
            pytest.param(b"$(touch pwned)", id="command-substitution"),
            pytest.param(b"new\nline", id="newline"),
            pytest.param(b"caf\xe9 \xff", id="non-utf8"),
        ],
    )
    def test_odd_app_paths_are_discovered_exactly(self, manager, tree, name):
        root = os.path.join(os.fsencode(tree), b"apps", name)
        os.makedirs(root)
        with open(os.path.join(root, b"package.json"), "w") as handle:
            handle.write(EXPRESS)
        report = run(manager, tree)
        assert [os.fsencode(app.root) for app in report.apps] == [root]
        assert (report.apps[0].stack, version(report.apps[0])) == ("express", "4.19.2")
        assert report.errors == ()
        assert not (tree / "pwned").exists()

    def test_a_fifo_named_package_json_does_not_hang(self, tree):
        (tree / "pipe").mkdir()
        os.mkfifo(tree / "pipe" / "package.json")
        write(tree, {"ok/package.json": EXPRESS})
        result = discover_in_child([os.fspath(tree)])
        apps = result["apps"]
        assert isinstance(apps, dict)
        assert apps[os.fspath(tree / "ok")][0] == "express"
        stack, confidence, evidence = apps[os.fspath(tree / "pipe")]
        assert (stack, confidence) == ("nodejs", 0.3)
        assert "package.json: not a regular file" in evidence


# --------------------------------------------------------------------------------------------
# Host services: found from the host's facts by healer_detect_services.


def _service_plugin(root: str, confidence: float, stack: str = "php") -> types.SimpleNamespace:
    """A plugin that sees a service of ``stack`` at ``root`` on every host."""

    def healer_detect_services(facts: HostFacts) -> list[Detection]:
        return [
            Detection(
                stack=stack,
                confidence=confidence,
                version="9.9",
                root=root,
                evidence=(f"a server is running on {facts.hostname}",),
            )
        ]

    return types.SimpleNamespace(healer_detect_services=hookimpl(healer_detect_services))


def _with_services(plugin: types.SimpleNamespace) -> PluginManager:
    return build_plugin_manager(load_entry_points=False, extra=[("svc", plugin)])


@attrs.define
class _FaultyFactsHost(LocalHost):
    async def facts(self) -> HostFacts:
        raise HostUnreachableError(self.name, "connection reset")


class TestServices:
    def test_a_service_is_an_app_at_its_root_with_an_empty_probe(self, tree):
        manager = _with_services(_service_plugin("/var/lib/svc", 0.8))
        report = asyncio.run(discover(LocalHost(), manager, [os.fspath(tree)], services=True))
        [app] = report.apps
        assert (app.root, app.stack, app.outcome.best.plugin) == ("/var/lib/svc", "php", "svc")
        assert app.probe == SiteProbe(host="local", root="/var/lib/svc")
        assert report.errors == ()

    def test_without_services_the_hook_is_not_asked(self, tree):
        manager = _with_services(_service_plugin("/var/lib/svc", 0.8))
        report = asyncio.run(discover(LocalHost(), manager, [os.fspath(tree)], services=False))
        assert report.apps == ()

    def test_a_service_at_a_scanned_root_merges_into_one_app(self, manager, tree):
        write(tree / "site", {"index.php": "<?php echo 1;"})
        scanned = asyncio.run(discover(LocalHost(), manager, [os.fspath(tree)]))
        [alone] = scanned.apps
        root = os.fspath(tree / "site")
        for confidence in (0.1, 0.99):
            with_svc = _with_services(_service_plugin(root, confidence))
            report = asyncio.run(discover(LocalHost(), with_svc, [os.fspath(tree)]))
            [app] = report.apps
            best = app.outcome.best
            assert app.root == root
            assert app.probe == alone.probe
            assert best.confidence == max(confidence, alone.outcome.best.confidence)
            assert set(best.evidence) == {
                *alone.outcome.best.evidence,
                f"a server is running on {socket.gethostname()}",
            }
            assert best.version == (alone.outcome.best.version or "9.9")

    def test_a_host_fault_is_an_error_and_discovery_goes_on(self, manager, tree):
        write(tree / "site", {"index.php": "<?php echo 1;"})
        with_svc = _with_services(_service_plugin("/var/lib/svc", 0.8))
        report = asyncio.run(discover(_FaultyFactsHost(), with_svc, [os.fspath(tree)]))
        assert [app.root for app in report.apps] == [os.fspath(tree / "site")]
        assert len(report.errors) == 1
        assert "connection reset" in report.errors[0]
