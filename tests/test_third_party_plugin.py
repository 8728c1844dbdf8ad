"""Third-party plugins load for real: pip-installed packages, found by their entry points.

The example plugin ``examples/plugins/healer-deno`` declares a stack core has never heard of.
These tests install it (and a deliberately broken package) with pip into a directory of their
own, put that directory on ``PYTHONPATH`` and run the ``healer`` command line in a subprocess,
so nothing is installed into the environment that runs the tests.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import types

import pytest

from universal_healer.cli import ExitCode
from universal_healer.hookspecs import hookimpl
from universal_healer.model import SiteProbe
from universal_healer.plugins import PluginFailure, build_plugin_manager
from universal_healer.testing import make_probe

ROOT = pathlib.Path(__file__).parents[1]
DENO_PLUGIN = ROOT / "examples" / "plugins" / "healer-deno"
DENO_CONFIG = '{"imports": {"@std/": "https://deno.land/std@0.224.0/"}}'

BROKEN_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "healer-broken"
version = "0.0.1"

[project.entry-points.universal_healer]
broken = "healer_broken.plugin"

[tool.hatch.build.targets.wheel]
packages = ["src/healer_broken"]
"""


def pip_install(source: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
    """Install ``source`` into ``target`` with pip, as a user would (minus the dependencies)."""
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--no-build-isolation", "--target", str(target), str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    return target


@pytest.fixture(scope="module")
def deno_site(tmp_path_factory) -> pathlib.Path:
    """A directory holding the pip-installed healer-deno package."""
    return pip_install(DENO_PLUGIN, tmp_path_factory.mktemp("deno") / "site")


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory) -> pathlib.Path:
    """A directory holding healer-broken, whose entry-point module fails to import."""
    source = tmp_path_factory.mktemp("broken-src")
    (source / "pyproject.toml").write_text(BROKEN_PYPROJECT)
    package = source / "src" / "healer_broken"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text("import healer_no_such_module  # noqa: F401\n")
    return pip_install(source, tmp_path_factory.mktemp("broken") / "site")


@pytest.fixture
def deno_apps(tmp_path) -> pathlib.Path:
    """A search path holding one Deno application."""
    app = tmp_path / "apps" / "hello-deno"
    app.mkdir(parents=True)
    (app / "deno.json").write_text(DENO_CONFIG)
    (app / "main.ts").write_text('Deno.serve(() => new Response("hello"));\n')
    return tmp_path / "apps"


class Healer:
    """Runs ``healer`` in a subprocess with its own registry and plugin directories."""

    def __init__(self, tmp_path: pathlib.Path, *sites: pathlib.Path) -> None:
        self.cwd = tmp_path
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(str(site) for site in sites),
            "HEALER_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from universal_healer.cli import main; main()", *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def json(self, *args: str, expect: ExitCode = ExitCode.OK) -> object:
        done = self(*args, "--json")
        assert done.returncode == expect, done.stderr
        return json.loads(done.stdout)

    def plugin(self, name: str) -> dict[str, object]:
        listed = self.json("plugins")
        return next(p for p in listed if p["name"] == name)

    def discovered_stacks(self, path: pathlib.Path) -> dict[str, str]:
        found = self.json("discover", str(path))
        return {pathlib.Path(app["path"]).name: app["stack"] for app in found["applications"]}


class TestInstalledPlugin:
    def test_healer_plugins_lists_it_with_its_distribution_and_stack(self, tmp_path, deno_site):
        deno = Healer(tmp_path, deno_site).plugin("deno")
        expected = {
            "version": "0.1.0",
            "builtin": False,
            "enabled": True,
            "distribution": "healer-deno",
            "stacks": ["deno"],
            "error": None,
        }
        assert {key: deno[key] for key in expected} == expected

    def test_healer_discover_recognises_a_deno_app(self, tmp_path, deno_site, deno_apps):
        found = Healer(tmp_path, deno_site).json("discover", str(deno_apps))
        (app,) = found["applications"]
        assert (app["path"], app["stack"], app["version"]) == (
            str(deno_apps / "hello-deno"),
            "deno",
            "0.224.0",
        )
        assert found["plugin_errors"] == []

    def test_without_it_the_deno_app_is_not_recognised(self, tmp_path, deno_apps):
        assert Healer(tmp_path).discovered_stacks(deno_apps) == {}


class TestEnableDisable:
    def test_disable_hides_the_stack_and_enable_restores_it(self, tmp_path, deno_site, deno_apps):
        healer = Healer(tmp_path, deno_site)

        assert healer("plugins", "disable", "deno").returncode == ExitCode.OK
        assert healer.plugin("deno")["enabled"] is False
        assert healer.discovered_stacks(deno_apps) == {}

        assert healer("plugins", "enable", "deno").returncode == ExitCode.OK
        assert healer.plugin("deno")["enabled"] is True
        assert healer.discovered_stacks(deno_apps) == {"hello-deno": "deno"}

    def test_disabling_an_unknown_plugin_is_not_found(self, tmp_path, deno_site):
        done = Healer(tmp_path, deno_site)("plugins", "disable", "no-such-plugin")
        assert done.returncode == ExitCode.NOT_FOUND
        assert "no-such-plugin" in done.stderr


class TestBrokenPlugins:
    def test_a_plugin_that_fails_to_import_is_listed_with_its_error_and_not_fatal(
        self, tmp_path, deno_site, broken_site
    ):
        healer = Healer(tmp_path, deno_site, broken_site)
        listed = healer.json("plugins", expect=ExitCode.PARTIAL)
        by_name = {p["name"]: p for p in listed}
        broken = by_name["broken"]
        assert (broken["enabled"], broken["distribution"]) == (False, "healer-broken")
        assert "ModuleNotFoundError" in broken["error"]
        assert "healer_no_such_module" in broken["error"]
        assert by_name["deno"]["enabled"] is True
        assert by_name["deno"]["error"] is None

    def test_discovery_still_works_beside_a_plugin_that_fails_to_import(
        self, tmp_path, deno_site, broken_site, deno_apps
    ):
        healer = Healer(tmp_path, deno_site, broken_site)
        found = healer.json("discover", str(deno_apps), expect=ExitCode.PARTIAL)
        assert [app["stack"] for app in found["applications"]] == ["deno"]
        (error,) = found["plugin_errors"]
        assert error.startswith("plugin 'broken' failed while loading: ModuleNotFoundError")

    def test_a_plugin_that_raises_in_detect_is_reported_while_the_others_answer(
        self, deno_site, monkeypatch
    ):
        monkeypatch.syspath_prepend(str(deno_site))
        import healer_deno.plugin  # noqa: PLC0415 - importable only from the pip target

        @hookimpl
        def healer_detect(probe: SiteProbe) -> None:
            raise RuntimeError(f"cannot read {probe.root}")

        exploding = types.ModuleType("exploding")
        exploding.healer_detect = healer_detect
        manager = build_plugin_manager(
            load_entry_points=False,
            extra=[("deno", healer_deno.plugin), ("exploding", exploding)],
        )

        detections = manager.detect(make_probe({"deno.json": DENO_CONFIG}, root="/srv/hello"))

        assert [(d.plugin, d.stack, d.version) for d in detections if d.plugin == "deno"] == [
            ("deno", "deno", "0.224.0")
        ]
        assert [f for f in manager.failures if f.plugin in {"deno", "exploding"}] == [
            PluginFailure(
                plugin="exploding",
                hook="healer_detect",
                reason="RuntimeError: cannot read /srv/hello",
            )
        ]
