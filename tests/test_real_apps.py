"""Discovery against real applications installed from Debian and npm packages.

``scripts/install-test-apps`` installs an Express, a Next.js and a plain Node.js app from npm,
and WordPress, a plain PHP site and a Laravel app from Debian packages, into ``.test-apps/``;
its manifest ``apps.json`` names each app's path, stack and the version really installed.
These tests hold discovery and the built-in signatures to that manifest, so no version is
written here. The script is idempotent: after the first run it takes a second or two.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import attrs
import pytest

from universal_healer.discovery import DiscoveredApp, DiscoveryReport, discover
from universal_healer.hosts.local import LocalHost
from universal_healer.plugins import PluginManager, build_plugin_manager

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "install-test-apps"
APPS_DIR = REPO / ".test-apps"
INSTALL_TIMEOUT = 30 * 60  # a first run downloads Debian and npm packages

APPS = (
    pytest.param("express", id="express"),
    pytest.param("nextjs", id="nextjs"),
    pytest.param("nodejs", id="nodejs"),
    pytest.param("wordpress", id="wordpress"),
    pytest.param("php", id="php"),
    pytest.param("laravel", id="laravel"),
)


@attrs.frozen(kw_only=True)
class InstalledApp:
    """One entry of ``apps.json``."""

    name: str
    path: str
    stack: str
    version: str


@pytest.fixture(scope="session")
def installed() -> dict[str, InstalledApp]:
    """The installed apps by name; the install script's output when it fails (never a skip)."""
    try:
        done = subprocess.run(
            [os.fspath(SCRIPT), os.fspath(APPS_DIR)],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        pytest.fail(f"{SCRIPT} could not run: {err}", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"{SCRIPT} exited with status {done.returncode}\n"
            f"--- stdout\n{done.stdout}--- stderr\n{done.stderr}",
            pytrace=False,
        )
    manifest = json.loads((APPS_DIR / "apps.json").read_text(encoding="utf-8"))
    return {entry["name"]: InstalledApp(**entry) for entry in manifest["apps"]}


@pytest.fixture(scope="session")
def manager() -> PluginManager:
    return build_plugin_manager(load_entry_points=False)


@pytest.fixture(scope="session")
def report(installed: dict[str, InstalledApp], manager: PluginManager) -> DiscoveryReport:
    return asyncio.run(discover(LocalHost(), manager, [os.fspath(APPS_DIR)]))


def found_at(report: DiscoveryReport, path: str) -> DiscoveredApp:
    """The app discovered at ``path``, or a failure that lists what was found instead."""
    for app in report.apps:
        if app.root == path:
            return app
    seen = "\n".join(f"  {a.root}: {a.stack}" for a in report.apps) or "  nothing"
    skipped = "\n".join(f"  {s.path}: {s.reason}" for s in report.skipped) or "  nothing"
    pytest.fail(f"no app discovered at {path}\nfound:\n{seen}\nskipped:\n{skipped}")


def evidence(app: DiscoveredApp) -> str:
    return "\n".join(f"  {line}" for line in app.outcome.evidence)


def test_manifest_lists_one_app_of_every_builtin_stack(installed):
    assert {app.name: app.stack for app in installed.values()} == {
        "express": "express",
        "nextjs": "nextjs",
        "nodejs": "nodejs",
        "wordpress": "wordpress",
        "php": "php",
        "laravel": "laravel",
    }


@pytest.mark.parametrize("name", APPS)
def test_discovery_recognises_the_installed_app_as_its_stack(installed, report, name):
    expected = installed[name]
    app = found_at(report, expected.path)
    assert app.stack == expected.stack, f"evidence:\n{evidence(app)}"


@pytest.mark.parametrize("name", APPS)
def test_discovery_reads_the_version_that_was_installed(installed, report, name):
    """Frameworks and WordPress: the installed version. Plain PHP and Node.js: the version the
    app requires (composer.json require.php, package.json engines.node), as no file tells
    which runtime runs them."""
    expected = installed[name]
    app = found_at(report, expected.path)
    assert app.outcome.best is not None
    assert app.outcome.best.version == expected.version, f"evidence:\n{evidence(app)}"


def test_discovery_finds_only_the_installed_apps(installed, report):
    """Nested candidates (wp-admin/, Laravel's public/) belong to their app; the npm cache and
    node_modules/ are never entered."""
    assert sorted(app.root for app in report.apps) == sorted(a.path for a in installed.values())
    assert report.errors == ()


def test_builtin_plugins_answer_the_real_apps_without_errors(report, manager):
    assert manager.failures == []


def run(argv: tuple[str, ...], cwd: str) -> str:
    """Run ``argv`` in ``cwd`` and return its stripped stdout; fail with its output otherwise."""
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        pytest.fail(f"{argv} in {cwd} exited {done.returncode}\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


class TestTheAppsAreReal:
    """The apps run on the packages they were installed from, at the manifest's versions."""

    def test_express_app_loads_express_from_its_node_modules(self, installed):
        app = installed["express"]
        run(("node", "-e", "require('express')"), app.path)
        said = run(("node", "-p", "require('express/package.json').version"), app.path)
        assert said == app.version

    def test_next_app_loads_next_from_its_node_modules(self, installed):
        app = installed["nextjs"]
        said = run(("node", "-p", "require('next/package.json').version"), app.path)
        assert said == app.version

    def test_node_worker_loads_its_dependency(self, installed):
        run(("node", "-e", "require('pg')"), installed["nodejs"].path)

    def test_wordpress_copy_says_the_debian_package_version(self, installed):
        app = installed["wordpress"]
        said = run(("php", "-r", "include 'wp-includes/version.php'; echo $wp_version;"), app.path)
        assert said == app.version

    def test_php_site_runs_under_the_php_cli(self, installed):
        said = run(("php", "index.php"), installed["php"].path)
        assert said.startswith("Hello from the Universal Healer PHP test site")

    def test_laravel_artisan_runs_on_the_debian_framework(self, installed):
        app = installed["laravel"]
        assert run(("php", "artisan", "--version"), app.path) == f"Laravel Framework {app.version}"
