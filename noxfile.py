"""Sessions: tests, lint, typecheck, docs, core_imports, the demo and the benchmark.

Run ``nox -l`` to list them. Each installs what it needs into its own virtualenv.
"""

from __future__ import annotations

import pathlib

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "core_imports", "tests"]

ROOT = pathlib.Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
PLUGINS = sorted(str(p.parent) for p in ROOT.glob("plugins/*/pyproject.toml"))


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite: core, every plugin under plugins/, against the real services."""
    session.install("-e", ".[daemon,postgresql,mysql]", *_editable(PLUGINS))
    session.install(*nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("pytest", *session.posargs, env={"HYPOTHESIS_PROFILE": "ci"})
    # Each plugin's own suite; the example plugin is tested without being installed, so it
    # never shows up in the core suite's plugin lists.
    for plugin in [*PLUGINS, str(ROOT / "examples" / "plugins" / "healer-deno")]:
        session.run("pytest", plugin, env={"HYPOTHESIS_PROFILE": "ci"})


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint and formatting."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the SDK's public API."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "typing"))
    session.run("mypy")


@nox.session
def core_imports(session: nox.Session) -> None:
    """The SDK imports with only its core dependencies (no daemon extras)."""
    session.install(".")
    session.run("python", "-c", IMPORT_EVERY_MODULE)


IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
import universal_healer
for module in pkgutil.walk_packages(universal_healer.__path__, "universal_healer."):
    if not module.name.endswith(".__main__"):  # running that one starts the CLI
        importlib.import_module(module.name)
assert "apscheduler" not in sys.modules, "the SDK must not need the daemon extras"
print("universal_healer imports with its core dependencies only")
"""


@nox.session
def docs(session: nox.Session) -> None:
    """Build the docs with warnings as errors."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "docs"))
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session
def demo(session: nox.Session) -> None:
    """Install, then discover and diagnose the sample apps in examples/ plus any PATHS given
    after ``--``, with the registry in the default embedded SQLite file."""
    session.install(".")
    paths = [str(ROOT / "examples" / "apps"), *session.posargs]
    session.run("healer", "discover", *paths, success_codes=[0, 3])
    session.run("healer", "diagnose", "--all", success_codes=[0, 3, 6, 7])


@nox.session
def benchmark(session: nox.Session) -> None:
    """Discover and diagnose 20 hosts x 50 apps over real sshd servers on loopback, and run the
    same probe commands with Ansible (forks = hosts); prints the figures. Not a test. Sizes go
    after ``--``: ``nox -s benchmark -- --hosts 5 --apps 20``."""
    # pytest: the benchmark starts its servers with the test suite's helper (tests/sshfleet.py).
    session.install("-e", ".", "pytest", "ansible-core")
    session.run("python", "benchmarks/fleet.py", *session.posargs)


@nox.session
def benchmark_plugins(session: nox.Session) -> None:
    """The healer's half of the benchmark with every plugin under plugins/ installed (the
    WordPress plugin's checks run on every sixth sample app). A virtualenv of its own, so that
    ``benchmark`` stays the core alone."""
    session.install("-e", ".", *_editable(PLUGINS), "pytest")
    session.run("python", "benchmarks/fleet.py", "--no-ansible", *session.posargs)


def _editable(paths: list[str]) -> list[str]:
    return [arg for path in paths for arg in ("-e", path)]
