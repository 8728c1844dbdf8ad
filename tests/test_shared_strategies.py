"""The shared strategies: what they propose, what they refuse to touch, and that healing twice
changes nothing the second time (run through the real executor on real files)."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _healing_fixtures import snapshot
from universal_healer.builtin.strategies import ClearCacheDirs, RestrictSecretFiles, cache_dirs
from universal_healer.executions import ExecutionStatus
from universal_healer.healing import Healer, HealSettings
from universal_healer.hosts.local import LocalHost
from universal_healer.metrics import Metrics
from universal_healer.model import (
    Application,
    CheckCategory,
    CheckResult,
    CheckStatus,
    HealingMode,
    RiskLevel,
)
from universal_healer.plugins import build_plugin_manager
from universal_healer.registry import open_registry


def app(root="/srv/app", **metadata) -> Application:
    return Application(id="a" * 36, server="local", path=root, stack="php", metadata=metadata)


def permissions_finding(**details) -> CheckResult:
    return CheckResult(
        check="file_permissions",
        category=CheckCategory.SECURITY,
        status=CheckStatus.FAIL,
        severity=RiskLevel.HIGH,
        message="secret file(s) readable by others",
        details={
            "world_writable_count": 0,
            "world_readable_secrets": [".env"],
            "scan_complete": True,
            **details,
        },
    )


def disk_finding(status=CheckStatus.WARN) -> CheckResult:
    return CheckResult(
        check="disk_space",
        category=CheckCategory.SYSTEM,
        status=status,
        severity=RiskLevel.MEDIUM,
        message="disk 85 % used",
    )


class TestRestrictSecretFiles:
    def test_it_proposes_chmod_for_each_exposed_secret_with_a_backup(self):
        action = RestrictSecretFiles().propose(
            permissions_finding(world_readable_secrets=[".env", "wp-config.php"]), app()
        )
        assert action.risk is RiskLevel.MEDIUM
        assert action.requires_backup
        assert action.touches == (".env", "wp-config.php")
        assert [s.argv for s in action.steps] == [
            ("chmod", "o-rwx", "--", "/srv/app/.env"),
            ("chmod", "o-rwx", "--", "/srv/app/wp-config.php"),
        ]

    @pytest.mark.parametrize(
        "details",
        [
            pytest.param({"world_writable_count": 2}, id="also-world-writable"),
            pytest.param({"scan_complete": False}, id="scan-incomplete"),
            pytest.param({"world_readable_secrets": []}, id="no-secrets"),
        ],
    )
    def test_it_leaves_findings_that_need_a_person_alone(self, details):
        assert RestrictSecretFiles().propose(permissions_finding(**details), app()) is None


class TestClearCacheDirs:
    def test_it_empties_only_the_configured_directories(self):
        action = ClearCacheDirs().propose(disk_finding(), app(cache_dirs=["var/cache", "tmp/"]))
        assert action.risk is RiskLevel.LOW
        assert [s.argv for s in action.steps] == [
            ("find", "/srv/app/var/cache", "-xdev", "-mindepth", "1", "-delete"),
            ("find", "/srv/app/tmp", "-xdev", "-mindepth", "1", "-delete"),
        ]

    def test_it_proposes_nothing_without_configured_directories(self):
        assert ClearCacheDirs().propose(disk_finding(), app()) is None

    def test_it_proposes_nothing_for_a_passing_disk(self):
        result = disk_finding(CheckStatus.PASS)
        assert ClearCacheDirs().propose(result, app(cache_dirs=["cache"])) is None

    @pytest.mark.parametrize(
        "configured",
        [
            pytest.param(["."], id="the-root"),
            pytest.param([""], id="empty"),
            pytest.param(["../elsewhere"], id="parent"),
            pytest.param(["cache/../.."], id="climbing-out"),
            pytest.param(["/var/cache"], id="absolute"),
            pytest.param("cache", id="a-string-not-a-list"),
            pytest.param([7], id="not-a-string"),
        ],
    )
    def test_unsafe_cache_settings_are_ignored(self, configured):
        assert cache_dirs(app(cache_dirs=configured)) == ()

    @given(st.lists(st.text(alphabet="ab./", max_size=12), max_size=5))
    def test_a_configured_cache_never_reaches_outside_the_root(self, configured):
        root = "/srv/app"
        for relative in cache_dirs(app(root, cache_dirs=configured)):
            target = os.path.normpath(os.path.join(root, relative))
            assert target.startswith(root + "/")


@pytest.fixture
def healer(tmp_path):
    with open_registry(f"sqlite:///{tmp_path / 'registry.db'}") as registry:
        registry.ensure_server("local", kind="local")
        yield Healer(
            registry=registry,
            manager=build_plugin_manager(load_entry_points=False, metrics=Metrics.create()),
            hosts=lambda name: LocalHost(),
            settings=HealSettings(min_consecutive=1, backup_root=str(tmp_path / "backups")),
            metrics=Metrics.create(),
        )


def register(healer, root, **metadata) -> str:
    found = healer.registry.upsert_application(
        server="local", path=str(root), stack="php", stack_version=None, confidence=1.0,
        evidence=(),
    )  # fmt: skip
    healer.registry.set_healing_mode(found.id, HealingMode.AUTO)
    return found.id


class TestIdempotence:
    def test_restricting_secrets_twice_changes_nothing_the_second_time(self, tmp_path, healer):
        root = tmp_path / "site"
        root.mkdir()
        (root / "index.php").write_text("<?php echo 'hi';")
        (root / ".env").write_text("DB_PASSWORD=not-shown\n")
        (root / ".env").chmod(0o644)
        app_id = register(healer, root)
        first = asyncio.run(healer.heal(app_id))
        assert [e.status for e in first.executions] == [ExecutionStatus.SUCCEEDED]
        assert (root / ".env").stat().st_mode & 0o777 == 0o640
        after = snapshot(root)
        second = asyncio.run(healer.heal(app_id))
        assert second.executions == ()
        assert snapshot(root) == after

    def test_clearing_caches_twice_changes_nothing_the_second_time(self, tmp_path, healer):
        """A real, nearly full filesystem (a 1 MiB tmpfs) holds the app and its cache."""
        root = tmp_path / "site"
        root.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", root], check=True)
        try:
            (root / "index.php").write_text("<?php echo 'hi';")
            (root / "cache").mkdir()
            (root / "cache" / "page.html").write_bytes(b"x" * 880 * 1024)
            app_id = register(healer, root)
            healer.registry.set_app_metadata(app_id, {"cache_dirs": ["cache"]})
            first = asyncio.run(healer.heal(app_id))
            assert [e.status for e in first.executions] == [ExecutionStatus.SUCCEEDED]
            assert list((root / "cache").iterdir()) == []
            assert (root / "index.php").exists()
            after = snapshot(root)
            second = asyncio.run(healer.heal(app_id))
            assert second.executions == ()
            assert snapshot(root) == after
        finally:
            subprocess.run(["umount", root], check=True)
