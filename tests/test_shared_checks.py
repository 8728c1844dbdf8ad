"""The shared checks, against the real local host and real files.

Thresholds are tested with :class:`FixedFactsHost`: a disk at exactly 90 % or a load of 3.0 per
core is a state the real machine cannot be put in on demand, so those tests hand the checks
host facts built by hand. Everything else (mounts, permissions, ``find``) is the real thing.
"""

from __future__ import annotations

import asyncio
import os
import stat

import attrs
import pytest

from universal_healer.builtin import shared
from universal_healer.builtin.checks import (
    CpuLoadCheck,
    DiskSpaceCheck,
    FilePermissionsCheck,
    InodeUsageCheck,
    MemoryUsageCheck,
)
from universal_healer.checks import CheckContext, HostRun, run_checks
from universal_healer.hookspecs import hookimpl
from universal_healer.hosts import HostFacts, LocalHost, MountUsage
from universal_healer.metrics import Metrics
from universal_healer.model import (
    Application,
    CheckCategory,
    CheckStatus,
    RiskLevel,
    StackInfo,
    StackKind,
)
from universal_healer.plugins import build_plugin_manager

WORDPRESS = StackInfo(id="wordpress", display_name="WordPress", secret_files=("wp-config.php",))
SHARED_NAMES = ["cpu_load", "disk_space", "file_permissions", "inode_usage", "memory_usage"]


@attrs.define
class FixedFactsHost:
    """The local host, except that its facts are the ones given.

    Stands in for a machine whose disk, memory or load sits at a chosen value: a fault the
    real machine cannot show on demand.
    """

    fixed: HostFacts
    inner: LocalHost = attrs.field(factory=LocalHost)

    @property
    def name(self):
        return "fixed-facts"

    async def facts(self):
        return self.fixed

    def __getattr__(self, attribute):
        return getattr(self.inner, attribute)


@attrs.define
class UnprivilegedHost:
    """The local host running commands without root's power to ignore file permissions.

    The tests run as root, who reads every directory; the healer over SSH usually is not root.
    ``setpriv`` drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so a 000 directory is really
    unreadable to the real ``find``.
    """

    inner: LocalHost = attrs.field(factory=LocalHost)

    @property
    def name(self):
        return self.inner.name

    async def run(self, argv, **kwargs):
        drop = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--")
        return await self.inner.run((*drop, *argv), **kwargs)

    def __getattr__(self, attribute):
        return getattr(self.inner, attribute)


@attrs.define
class NoFindHost:
    """The local host as a minimal container without findutils: ``find`` is not there."""

    inner: LocalHost = attrs.field(factory=LocalHost)

    @property
    def name(self):
        return self.inner.name

    async def run(self, argv, **kwargs):
        if argv[0] == "find":
            argv = ("/nonexistent/bin/find", *argv[1:])
        return await self.inner.run(argv, **kwargs)

    def __getattr__(self, attribute):
        return getattr(self.inner, attribute)


def application(path):
    return Application(id="app-1", server="local", path=os.fsdecode(path), stack="wordpress")


def check_app(check, path, *, host=None, stack=None):
    """Run one check directly (not through the runner), so a crash shows as a crash."""
    host = host or LocalHost()
    ctx = CheckContext(
        check=check, host=host, app=application(path), stack=stack, host_run=HostRun(host)
    )
    return asyncio.run(check.run(ctx))


def facts(*, mounts=(), cpu_count=2, load=(0.1, 0.1, 0.1), memory=(1000, 500)):
    return HostFacts(
        hostname="web-1",
        cpu_count=cpu_count,
        load_average=load,
        memory_total_bytes=memory[0],
        memory_available_bytes=memory[1],
        mounts=tuple(mounts),
    )


def mount(mountpoint="/", *, total=1000, free=500, inodes=1000, free_inodes=500):
    return MountUsage(
        mountpoint=mountpoint,
        fstype="ext4",
        device="/dev/vda",
        total_bytes=total,
        free_bytes=free,
        total_inodes=inodes,
        free_inodes=free_inodes,
    )


def with_facts(check, host_facts, path="/srv/www/site"):
    return check_app(check, path, host=FixedFactsHost(host_facts))


class TestTheSharedPlugin:
    def test_every_application_stack_gets_the_shared_checks(self):
        stack = StackInfo(id="deno", display_name="Deno", kind=StackKind.APP)
        assert sorted(c.name for c in shared.healer_get_checks(stack=stack)) == SHARED_NAMES

    @pytest.mark.parametrize(
        "kind",
        [
            pytest.param(StackKind.DATABASE, id="database"),
            pytest.param(StackKind.SERVICE, id="service"),
        ],
    )
    def test_databases_and_services_get_none(self, kind):
        stack = StackInfo(id="mysql", display_name="MySQL", kind=kind)
        assert list(shared.healer_get_checks(stack=stack)) == []

    def test_app_stacks_get_the_shared_strategies_and_databases_none(self):
        names = sorted(s.name for s in shared.healer_get_strategies(stack=WORDPRESS))
        assert names == ["clear_cache_dirs", "restrict_secret_files"]
        database = StackInfo(id="mysql", display_name="MySQL", kind=StackKind.DATABASE)
        assert list(shared.healer_get_strategies(stack=database)) == []

    def test_the_plugin_declares_no_stack(self):
        assert not hasattr(shared, "healer_stacks")

    def test_the_plugin_manager_gives_the_shared_checks_to_any_app_stack(self):
        class Stacks:
            @hookimpl
            def healer_stacks(self):
                return [
                    StackInfo(id="zz-testapp", display_name="Test app"),
                    StackInfo(id="zz-testdb", display_name="Test DB", kind=StackKind.DATABASE),
                ]

        manager = build_plugin_manager(
            load_entry_points=False, extra=[("test-stacks", Stacks())], metrics=Metrics.create()
        )
        assert [c.name for c in manager.checks_for("zz-testapp")] == SHARED_NAMES
        assert manager.checks_for("zz-testdb") == ()

    @pytest.mark.parametrize(
        ("check", "name", "category", "severity"),
        [
            pytest.param(DiskSpaceCheck, "disk_space", "SYSTEM", "MEDIUM", id="disk_space"),
            pytest.param(InodeUsageCheck, "inode_usage", "SYSTEM", "MEDIUM", id="inode_usage"),
            pytest.param(MemoryUsageCheck, "memory_usage", "SYSTEM", "LOW", id="memory_usage"),
            pytest.param(CpuLoadCheck, "cpu_load", "SYSTEM", "LOW", id="cpu_load"),
            pytest.param(
                FilePermissionsCheck, "file_permissions", "SECURITY", "HIGH", id="file_permissions"
            ),
        ],
    )
    def test_each_check_keeps_its_public_contract(self, check, name, category, severity):
        assert (check.name, check.category, check.severity) == (
            name,
            CheckCategory(category),
            RiskLevel(severity),
        )
        assert check.description

    def test_all_shared_checks_run_on_a_real_app_without_error(self, tmp_path):
        host = LocalHost()
        cache = HostRun(host)
        checks = shared.healer_get_checks(stack=WORDPRESS)

        def make_context(check):
            app = application(tmp_path)
            return CheckContext(check=check, host=host, app=app, stack=WORDPRESS, host_run=cache)

        results = asyncio.run(run_checks(checks, make_context))
        assert [r.check for r in results] == SHARED_NAMES
        assert CheckStatus.ERROR not in {r.status for r in results}


class TestDiskSpace:
    def test_disk_space_reports_the_real_filesystem_of_the_app(self, tmp_path):
        expected = asyncio.run(LocalHost().facts()).mount_for(str(tmp_path))
        result = check_app(DiskSpaceCheck(), tmp_path)
        assert result.status in {CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL}
        assert result.details["mountpoint"] == expected.mountpoint
        assert result.details["total_bytes"] == expected.total_bytes
        assert 0 <= result.details["free_bytes"] <= result.details["total_bytes"]
        assert 0 <= result.details["used_percent"] <= 100

    @pytest.mark.parametrize(
        ("free", "status"),
        [
            pytest.param(1000, CheckStatus.PASS, id="empty"),
            pytest.param(200, CheckStatus.PASS, id="80.0-is-not-above-80"),
            pytest.param(199, CheckStatus.WARN, id="80.1-warns"),
            pytest.param(100, CheckStatus.WARN, id="90.0-is-not-above-90"),
            pytest.param(99, CheckStatus.FAIL, id="90.1-fails"),
            pytest.param(0, CheckStatus.FAIL, id="full"),
        ],
    )
    def test_disk_space_warns_above_80_and_fails_above_90_percent(self, free, status):
        result = with_facts(DiskSpaceCheck(), facts(mounts=[mount("/", free=free)]))
        assert result.status is status
        assert result.details == {
            "mountpoint": "/",
            "fstype": "ext4",
            "used_percent": round(100 - free / 10, 2),
            "free_bytes": free,
            "total_bytes": 1000,
        }
        assert (result.suggested_fix is None) == (status is CheckStatus.PASS)

    def test_disk_space_looks_at_the_mount_holding_the_app_not_the_root(self):
        mounts = [mount("/", free=900), mount("/srv", free=10)]
        result = with_facts(DiskSpaceCheck(), facts(mounts=mounts), path="/srv/www/site")
        assert (result.status, result.details["mountpoint"]) == (CheckStatus.FAIL, "/srv")
        assert "/srv" in result.message
        assert "/srv" in result.suggested_fix

    def test_a_mount_sharing_only_a_prefix_of_the_name_is_not_the_apps(self):
        mounts = [mount("/", free=900), mount("/srv", free=10)]
        result = with_facts(DiskSpaceCheck(), facts(mounts=mounts), path="/srvx/site")
        assert (result.status, result.details["mountpoint"]) == (CheckStatus.PASS, "/")

    def test_no_known_mount_is_an_error(self):
        result = with_facts(DiskSpaceCheck(), facts(mounts=[mount("/srv")]), path="/var/www")
        assert result.status is CheckStatus.ERROR

    def test_thresholds_are_tuned_by_subclassing(self):
        class StrictDisk(DiskSpaceCheck):
            warn_above = 50.0
            fail_above = 70.0

        host_facts = facts(mounts=[mount("/", free=400)])  # 60 %
        assert with_facts(StrictDisk(), host_facts).status is CheckStatus.WARN
        assert with_facts(DiskSpaceCheck(), host_facts).status is CheckStatus.PASS


class TestInodeUsage:
    def test_inode_usage_reports_the_real_filesystem_of_the_app(self, tmp_path):
        expected = asyncio.run(LocalHost().facts()).mount_for(str(tmp_path))
        result = check_app(InodeUsageCheck(), tmp_path)
        assert result.status is not CheckStatus.ERROR
        assert result.details["mountpoint"] == expected.mountpoint

    @pytest.mark.parametrize(
        ("free_inodes", "status"),
        [
            pytest.param(200, CheckStatus.PASS, id="80.0-is-not-above-80"),
            pytest.param(199, CheckStatus.WARN, id="80.1-warns"),
            pytest.param(100, CheckStatus.WARN, id="90.0-is-not-above-90"),
            pytest.param(99, CheckStatus.FAIL, id="90.1-fails"),
        ],
    )
    def test_inode_usage_warns_above_80_and_fails_above_90_percent(self, free_inodes, status):
        result = with_facts(InodeUsageCheck(), facts(mounts=[mount(free_inodes=free_inodes)]))
        assert result.status is status
        assert result.details["free_inodes"] == free_inodes
        assert result.details["total_inodes"] == 1000
        assert (result.suggested_fix is None) == (status is CheckStatus.PASS)

    def test_a_filesystem_without_an_inode_table_passes_with_a_note(self):
        no_table = mount(inodes=0, free_inodes=0)
        result = with_facts(InodeUsageCheck(), facts(mounts=[no_table]))
        assert result.status is CheckStatus.PASS
        assert "no fixed inode table" in result.message
        assert result.details["note"]

    def test_no_known_mount_is_an_error(self):
        result = with_facts(InodeUsageCheck(), facts(), path="/var/www")
        assert result.status is CheckStatus.ERROR


class TestMemoryUsage:
    def test_memory_usage_reports_the_real_host(self, tmp_path):
        result = check_app(MemoryUsageCheck(), tmp_path)
        assert result.status is not CheckStatus.ERROR
        assert 0 < result.details["available_bytes"] <= result.details["total_bytes"]

    @pytest.mark.parametrize(
        ("available", "status"),
        [
            pytest.param(150, CheckStatus.PASS, id="85.0-is-not-above-85"),
            pytest.param(149, CheckStatus.WARN, id="85.1-warns"),
            pytest.param(50, CheckStatus.WARN, id="95.0-is-not-above-95"),
            pytest.param(49, CheckStatus.FAIL, id="95.1-fails"),
        ],
    )
    def test_memory_usage_warns_above_85_and_fails_above_95_percent(self, available, status):
        result = with_facts(MemoryUsageCheck(), facts(memory=(1000, available)))
        assert result.status is status
        assert result.details == {
            "used_percent": round(100 - available / 10, 2),
            "available_bytes": available,
            "total_bytes": 1000,
        }
        assert (result.suggested_fix is None) == (status is CheckStatus.PASS)


class TestCpuLoad:
    def test_cpu_load_reports_the_real_host(self, tmp_path):
        result = check_app(CpuLoadCheck(), tmp_path)
        assert result.status is not CheckStatus.ERROR
        assert result.details["cpu_count"] == os.cpu_count()

    @pytest.mark.parametrize(
        ("load_5m", "status"),
        [
            pytest.param(3.0, CheckStatus.PASS, id="1.5-per-core-is-not-above-1.5"),
            pytest.param(3.02, CheckStatus.WARN, id="1.51-per-core-warns"),
            pytest.param(6.0, CheckStatus.WARN, id="3.0-per-core-is-not-above-3.0"),
            pytest.param(6.02, CheckStatus.FAIL, id="3.01-per-core-fails"),
        ],
    )
    def test_cpu_load_warns_above_1_5_and_fails_above_3_per_core(self, load_5m, status):
        result = with_facts(CpuLoadCheck(), facts(cpu_count=2, load=(9.9, load_5m, 0.5)))
        assert result.status is status
        assert result.details["load_1m"] == 9.9
        assert result.details["load_5m"] == load_5m
        assert result.details["load_15m"] == 0.5
        assert result.details["cpu_count"] == 2
        assert (result.suggested_fix is None) == (status is CheckStatus.PASS)

    def test_only_the_5_minute_average_counts(self):
        """A one-minute spike (a deploy, a cron job) alone is not an overload."""
        result = with_facts(CpuLoadCheck(), facts(cpu_count=1, load=(50.0, 0.2, 0.1)))
        assert result.status is CheckStatus.PASS


def make_site(root, *, mode=0o755):
    root.mkdir()
    root.chmod(mode)
    (root / "index.php").write_text("<?php echo 'hi';\n")
    (root / "index.php").chmod(0o644)
    return root


class TestFilePermissions:
    def test_a_clean_tree_passes(self, tmp_path):
        site = make_site(tmp_path / "site")
        (site / ".env").write_text("APP_KEY=x\n")
        (site / ".env").chmod(0o640)
        result = check_app(FilePermissionsCheck(), site, stack=WORDPRESS)
        assert result.status is CheckStatus.PASS
        assert result.details == {
            "world_writable_count": 0,
            "world_writable": [],
            "world_readable_secrets": [],
            "scan_complete": True,
        }
        assert result.suggested_fix is None

    def test_a_real_wordpress_tree_with_every_kind_of_finding(self, tmp_path):
        site = make_site(tmp_path / "site")
        uploads = site / "wp-content" / "uploads"
        uploads.mkdir(parents=True)
        (uploads / "ww.jpg").write_bytes(b"jpeg")
        (uploads / "ww.jpg").chmod(0o666)
        (site / "cache").mkdir()
        (site / "cache").chmod(0o777)  # world-writable directory without the sticky bit
        (site / "tmp").mkdir()
        (site / "tmp").chmod(0o1777)  # shared tmp with the sticky bit: fine
        (site / "tmp" / "session").write_text("s")
        (site / "tmp" / "session").chmod(0o644)
        outside = tmp_path / "outside.txt"
        outside.write_text("not ours")
        outside.chmod(0o666)
        (site / "link-out").symlink_to(outside)  # a link to a world-writable target: ignored
        (site / ".env").write_text("DB_PASSWORD=x\n")
        (site / ".env").chmod(0o644)
        (site / "wp-config.php").write_text("<?php define('DB_PASSWORD', 'x');\n")
        (site / "wp-config.php").chmod(0o644)

        result = check_app(FilePermissionsCheck(), site, stack=WORDPRESS)

        assert result.status is CheckStatus.FAIL
        assert result.severity is RiskLevel.HIGH
        assert result.details["world_writable"] == ["cache", "wp-content/uploads/ww.jpg"]
        assert result.details["world_writable_count"] == 2
        assert result.details["world_readable_secrets"] == ["wp-config.php", ".env"]
        assert result.details["scan_complete"] is True
        assert "2 world-writable path(s)" in result.message
        assert f"chmod 640 {site}/wp-config.php {site}/.env" in result.suggested_fix
        assert "chmod o-w" in result.suggested_fix

    def test_without_a_stack_only_env_is_treated_as_secret(self, tmp_path):
        site = make_site(tmp_path / "site")
        for name in (".env", "wp-config.php"):
            (site / name).write_text("x")
            (site / name).chmod(0o644)
        result = check_app(FilePermissionsCheck(), site, stack=None)
        assert result.details["world_readable_secrets"] == [".env"]

    @pytest.mark.parametrize(
        "mode",
        [
            pytest.param(0o640, id="0640"),
            pytest.param(0o600, id="0600"),
            pytest.param(0o660, id="0660"),
        ],
    )
    def test_a_secret_file_others_cannot_read_is_fine(self, tmp_path, mode):
        site = make_site(tmp_path / "site")
        (site / "wp-config.php").write_text("x")
        (site / "wp-config.php").chmod(mode)
        result = check_app(FilePermissionsCheck(), site, stack=WORDPRESS)
        assert result.status is CheckStatus.PASS

    def test_a_secret_file_that_is_a_symlink_is_reported_as_not_followed(self, tmp_path):
        shared_env = tmp_path / "shared.env"
        shared_env.write_text("x")
        site = make_site(tmp_path / "site")
        (site / ".env").symlink_to(shared_env)
        result = check_app(FilePermissionsCheck(), site)
        assert result.status is CheckStatus.PASS
        assert result.details["secret_links_not_followed"] == [".env"]

    def test_the_contents_of_secret_files_never_reach_the_result(self, tmp_path):
        canary = "canary-0d5c1e-never-print-me"
        site = make_site(tmp_path / "site")
        for name in (".env", "wp-config.php"):
            (site / name).write_text(f"DB_PASSWORD={canary}\n")
            (site / name).chmod(0o666)  # world-readable and world-writable
        result = check_app(FilePermissionsCheck(), site, stack=WORDPRESS)
        assert result.status is CheckStatus.FAIL
        assert canary not in repr(result)
        assert canary not in result.message
        assert canary not in repr(result.details)
        assert canary not in result.suggested_fix

    def test_at_most_20_examples_are_listed_with_the_total_count(self, tmp_path):
        site = make_site(tmp_path / "site")
        for i in range(25):
            (site / f"f{i:02d}").write_text("x")
            (site / f"f{i:02d}").chmod(0o646)
        result = check_app(FilePermissionsCheck(), site)
        assert result.details["world_writable_count"] == 25
        assert result.details["world_writable"] == [f"f{i:02d}" for i in range(20)]

    def test_a_world_writable_root_is_shown_as_dot(self, tmp_path):
        site = make_site(tmp_path / "site", mode=0o777)
        result = check_app(FilePermissionsCheck(), site)
        assert result.details["world_writable"] == ["."]

    def test_a_root_that_is_a_release_symlink_is_scanned_through(self, tmp_path):
        release = make_site(tmp_path / "release-42")
        (release / "ww").write_text("x")
        (release / "ww").chmod(0o666)
        (tmp_path / "current").symlink_to(release)
        result = check_app(FilePermissionsCheck(), tmp_path / "current")
        assert result.details["world_writable"] == ["ww"]

    def test_a_hostile_root_path_reaches_find_as_data(self, tmp_path, monkeypatch):
        """Spaces, quotes, ';', '$()', a newline and a non-UTF-8 byte in the root: no shell
        ever sees it, and find scans exactly that directory."""
        monkeypatch.chdir(tmp_path)  # where a shell would run the embedded touch
        pwned = tmp_path / "pwned"
        name = b"my site 'q' \"dq\" ; $(touch pwned) `touch pwned` \nline2 \xff"
        root = os.path.join(os.fsencode(tmp_path), name)
        os.mkdir(root)
        for child, mode in ((b"ww.txt", 0o666), (b"bad\xffname", 0o666), (b"new\nline", 0o666)):
            with open(os.path.join(root, child), "wb") as handle:
                handle.write(b"x")
            os.chmod(os.path.join(root, child), mode)
        with open(os.path.join(root, b".env"), "wb") as handle:
            handle.write(b"SECRET=1\n")
        os.chmod(os.path.join(root, b".env"), 0o644)

        result = check_app(FilePermissionsCheck(), root)

        assert result.status is CheckStatus.FAIL
        assert result.details["world_writable"] == ["bad\\xffname", "new\nline", "ww.txt"]
        assert result.details["world_readable_secrets"] == [".env"]
        assert not pwned.exists()
        assert "\\xff" in result.suggested_fix  # shown escaped, never as a lone surrogate
        result.suggested_fix.encode("utf-8")
        result.message.encode("utf-8")

    def test_a_partial_scan_still_reports_what_it_found(self, tmp_path):
        site = make_site(tmp_path / "site")
        (site / "ww").write_text("x")
        (site / "ww").chmod(0o666)
        locked = site / "locked"
        locked.mkdir()
        (locked / "hidden-ww").write_text("x")
        (locked / "hidden-ww").chmod(0o666)
        locked.chmod(0)
        result = check_app(FilePermissionsCheck(), site, host=UnprivilegedHost())
        assert result.status is CheckStatus.FAIL
        assert result.details["world_writable"] == ["ww"]
        assert result.details["scan_complete"] is False
        assert any("Permission denied" in line for line in result.details["scan_errors"])
        assert "scan incomplete" in result.message

    def test_a_partial_scan_that_found_nothing_warns(self, tmp_path):
        site = make_site(tmp_path / "site")
        (site / "locked").mkdir()
        (site / "locked").chmod(0)
        result = check_app(FilePermissionsCheck(), site, host=UnprivilegedHost())
        assert result.status is CheckStatus.WARN
        assert result.details["scan_complete"] is False

    def test_output_past_the_cap_makes_the_count_a_lower_bound(self, tmp_path):
        class SmallCap(FilePermissionsCheck):
            max_output = 64

        site = make_site(tmp_path / "site")
        for i in range(30):
            (site / f"world-writable-{i:02d}").write_text("x")
            (site / f"world-writable-{i:02d}").chmod(0o666)
        result = check_app(SmallCap(), site)
        assert result.status is CheckStatus.FAIL
        assert 0 < result.details["world_writable_count"] < 30
        assert result.details["scan_complete"] is False
        assert "lower bound" in result.details["note"]
        assert "+ world-writable" in result.message

    def test_a_host_without_find_is_an_error(self, tmp_path):
        site = make_site(tmp_path / "site")
        result = check_app(FilePermissionsCheck(), site, host=NoFindHost())
        assert result.status is CheckStatus.ERROR
        assert "find" in result.message

    @pytest.mark.parametrize(
        "path",
        [
            pytest.param("missing", id="missing"),
            pytest.param("a-file", id="a-file"),
            pytest.param("relative/path", id="relative"),
        ],
    )
    def test_a_root_that_is_not_a_directory_is_an_error(self, tmp_path, path):
        (tmp_path / "a-file").write_text("x")
        root = path if path.startswith("relative") else tmp_path / path
        result = check_app(FilePermissionsCheck(), root)
        assert result.status is CheckStatus.ERROR
        assert "not a directory" in result.message

    def test_a_sticky_world_writable_directory_is_fine_but_its_world_writable_files_are_not(
        self, tmp_path
    ):
        site = make_site(tmp_path / "site")
        (site / "tmp").mkdir()
        (site / "tmp").chmod(0o1777)
        (site / "tmp" / "upload").write_text("x")
        (site / "tmp" / "upload").chmod(0o666)
        result = check_app(FilePermissionsCheck(), site)
        assert result.details["world_writable"] == ["tmp/upload"]
        assert stat.S_IMODE((site / "tmp").stat().st_mode) == 0o1777
