"""The plugin against a real WordPress: Debian's package, the machine's MariaDB, PHP's CLI.

The site comes from ``scripts/install-site`` (see conftest). Each fault is made the way it
happens in life (a config edited by hand, a plugin update that breaks, a table file damaged on
disk, transients piling up), then detected, planned and healed by the real executor
(:class:`~universal_healer.healing.Healer`, a registry on SQLite, the local host), and the
site is checked afterwards. Two heals are made to fail, and the rollback is proven by the
files and the database being exactly as they were. Every test leaves the site as it found it.
"""

from __future__ import annotations

import asyncio
import grp
import hashlib
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from healer_wordpress import edits, phpserial, plugin, site
from healer_wordpress.backup import WordPressBackup

from conftest import Site
from universal_healer import serde
from universal_healer.diagnosis import Diagnosis, diagnose
from universal_healer.discovery import discover
from universal_healer.exceptions import BackupError
from universal_healer.executions import ExecutionStatus
from universal_healer.healing import Healer, HealReport, HealSettings
from universal_healer.hosts import LocalHost
from universal_healer.metrics import Metrics
from universal_healer.model import Application, CheckStatus, HealingMode
from universal_healer.plugins import PluginManager, build_plugin_manager
from universal_healer.registry import Registry, open_registry

pytestmark = pytest.mark.site

CRASH_PLUGIN = "healer-crash"
WORKING_PLUGIN = """<?php
/**
 * Plugin Name: Healer Crash
 * Version: 1.0.0
 */
add_filter( 'the_title', 'strtoupper' );
"""
BROKEN_PLUGIN = """<?php
/**
 * Plugin Name: Healer Crash
 * Version: 1.0.1
 */
throw new RuntimeException( 'healer-crash 1.0.1 cannot start' );
"""


def run(coroutine):
    return asyncio.run(coroutine)


def manager() -> PluginManager:
    return build_plugin_manager(
        load_entry_points=False, extra=[("wordpress", plugin)], metrics=Metrics.create()
    )


def application(wordpress_site: Site) -> Application:
    return Application(
        id="wp-test", server="local", path=str(wordpress_site.root), stack="wordpress"
    )


def results(diagnosis: Diagnosis) -> dict:
    return {r.check: r for r in diagnosis.results}


def password(wordpress_site: Site) -> str:
    text = (wordpress_site.root / "wp-config.php").read_text()
    found = re.search(r"define\( 'DB_PASSWORD', '([^']+)' \)", text)
    assert found, "no DB_PASSWORD in wp-config.php"
    return found[1]


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=20) as answer:  # noqa: S310 - our own site
            return int(answer.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def wordpress_php(wordpress_site: Site, code: str) -> str:
    """Run PHP with WordPress loaded (as a request to the site would load it)."""
    script = (
        "$_SERVER['HTTP_HOST'] = parse_url($argv[2], PHP_URL_HOST) . ':' . "
        "parse_url($argv[2], PHP_URL_PORT); $_SERVER['REQUEST_URI'] = '/';"
        " require $argv[1] . '/wp-load.php';"
        " require_once ABSPATH . 'wp-admin/includes/plugin.php';" + code
    )
    done = subprocess.run(
        ["php", "-r", script, "--", str(wordpress_site.root), wordpress_site.url],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def active_plugins(wordpress_site: Site) -> list[str]:
    raw = wordpress_site.option("active_plugins")
    assert raw is not None
    return list(phpserial.loads(raw).values())


@attrs.frozen
class Snapshot:
    """What the tests change and must put back: wp-config.php (bytes, mode, owner) and the
    active plugins."""

    config: bytes
    mode: int
    owner: tuple[int, int]
    plugins: bytes
    cron: bytes


@pytest.fixture
def pristine(wordpress_site: Site) -> Iterator[Site]:
    """The site, put back as it was after the test whatever the test did to it."""
    config = wordpress_site.root / "wp-config.php"
    info = config.stat()
    before = Snapshot(
        config=config.read_bytes(),
        mode=info.st_mode & 0o7777,
        owner=(info.st_uid, info.st_gid),
        plugins=wordpress_site.option("active_plugins") or b"",
        cron=wordpress_site.option("cron") or b"",
    )
    probe = wordpress_site.root / "wp-content/plugins/healer-probe/healer-probe.php"
    yield wordpress_site
    config.write_bytes(before.config)
    os.chmod(config, before.mode)
    os.chown(config, *before.owner)
    probe.chmod(0o644)
    wordpress_site.sql(
        f"UPDATE {wordpress_site.prefix}options SET option_value = %s "  # noqa: S608
        "WHERE option_name = 'active_plugins'",
        (before.plugins,),
    )
    wordpress_site.sql(
        f"UPDATE {wordpress_site.prefix}options SET option_value = %s "  # noqa: S608
        "WHERE option_name = 'cron'",
        (before.cron,),
    )
    wordpress_site.sql(
        f"UPDATE {wordpress_site.prefix}options SET option_value = %s "  # noqa: S608
        "WHERE option_name IN ('home', 'siteurl')",
        (wordpress_site.url,),
    )
    wordpress_site.sql(
        f"DELETE FROM {wordpress_site.prefix}options WHERE option_name LIKE '%%healer!_t!_%%' "  # noqa: S608
        "ESCAPE '!'"
    )
    content = wordpress_site.root / "wp-content"
    for leftover in (
        content / "plugins" / CRASH_PLUGIN,
        content / "mu-plugins",
        content / "cache",
        content / "debug.log",
        wordpress_site.root / "wp-config-local.php",
    ):
        subprocess.run(["rm", "-rf", "--", str(leftover)], check=True)
    for leftover in (wordpress_site.datadir / wordpress_site.database).glob("*.BAK"):
        leftover.unlink()


@attrs.define
class World:
    """A registry on SQLite holding the site, and a Healer over both."""

    site: Site
    registry: Registry
    app_id: str
    healer: Healer

    def heal(self, **kwargs) -> HealReport:
        return run(self.healer.heal(self.app_id, **kwargs))

    def execution(self, report: HealReport, action: str):
        found = [e for e in report.executions if e.action_name == action]
        assert len(found) == 1, (report.executions, report.skipped, report.pending)
        return found[0]

    def leaked(self, secret: str) -> list[str]:
        """Where ``secret`` shows up in what the registry recorded."""
        records = [serde.dumps(e) for e in self.registry.list_executions(self.app_id)]
        return [r for r in records if secret in r]


@pytest.fixture
def world(pristine: Site, tmp_path: Path) -> Iterator[World]:
    with open_registry(f"sqlite:///{tmp_path / 'registry.db'}") as registry:
        registry.ensure_server("local", kind="local")
        app = registry.upsert_application(
            server="local", path=str(pristine.root), stack="wordpress",
            stack_version=pristine.wordpress, confidence=0.97, evidence=(),
        )  # fmt: skip
        metrics = Metrics.create()
        healer = Healer(
            registry=registry,
            manager=build_plugin_manager(
                load_entry_points=False, extra=[("wordpress", plugin)], metrics=metrics
            ),
            hosts=lambda name: LocalHost(),
            settings=HealSettings(min_consecutive=1, backup_root=str(tmp_path / "backups")),
            metrics=metrics,
        )
        yield World(site=pristine, registry=registry, app_id=app.id, healer=healer)


def diagnosis_of(wordpress_site: Site, *only: str) -> Diagnosis:
    return run(
        diagnose(LocalHost(), application(wordpress_site), manager(), only=set(only) or None)
    )


# --------------------------------------------------------------------------------------------
# The healthy site


class TestHealthySite:
    def test_every_check_passes_but_the_updates_wordpress_stored(self, wordpress_site):
        found = results(diagnosis_of(wordpress_site))
        updates = {"wp_core_update", "wp_plugin_updates", "wp_theme_updates", "wp_language_updates"}
        # What these say is the test machine's state (its load, memory, disks), not the site's.
        machine = {"cpu_load", "memory_usage", "disk_space", "inode_usage"}
        failing = {
            name: (r.status, r.message)
            for name, r in found.items()
            if r.status is not CheckStatus.PASS and name not in updates | machine
        }
        assert failing == {}
        core = found["wp_core_update"]
        assert core.status is CheckStatus.FAIL
        assert core.details["available"] == sorted(wordpress_site.core_offered)  # 6.1.10 < 6.2.1
        assert core.suggested_fix.endswith(
            "install WP-CLI to let the healer update; cannot heal without it"
        )
        plugins = found["wp_plugin_updates"]
        assert (plugins.status, plugins.details["updates"]) == (
            CheckStatus.WARN,
            [
                {
                    "name": "akismet/akismet.php",
                    "installed": wordpress_site.akismet,
                    "available": wordpress_site.akismet_offered,
                    "slug": "akismet",
                }
            ],
        )
        themes = found["wp_theme_updates"]
        assert themes.details["updates"] == [
            {
                "name": "twentytwentythree",
                "installed": wordpress_site.theme_version,
                "available": wordpress_site.theme_offered,
            }
        ]
        assert found["wp_language_updates"].details["updates"][0]["language"] == "de_DE"

    def test_updates_without_wp_cli_cannot_heal_and_say_why(self, wordpress_site):
        diagnosis = diagnosis_of(wordpress_site)
        cannot = {u.result.check: u for u in diagnosis.plan.cannot_heal}
        assert set(cannot) == {"wp_core_update"}
        assert cannot["wp_core_update"].reason == "no healing strategy for this finding"
        assert diagnosis.plan.auto == ()
        assert diagnosis.plan.needs_approval == ()

    def test_the_database_password_is_in_no_result(self, wordpress_site):
        said = serde.dumps(diagnosis_of(wordpress_site).results)
        assert password(wordpress_site) not in said

    def test_discovery_finds_the_site_through_this_plugin(self, wordpress_site):
        report = run(discover(LocalHost(), manager(), [str(wordpress_site.root.parent)]))
        found = [a for a in report.apps if a.root == str(wordpress_site.root)]
        assert len(found) == 1
        best = found[0].outcome.best
        assert (best.stack, best.plugin, best.version) == (
            "wordpress",
            "wordpress",
            wordpress_site.wordpress,
        )


# --------------------------------------------------------------------------------------------
# wp-config.php


class TestDebugMode:
    def test_wp_debug_on_is_switched_off_automatically_with_a_backup(self, world):
        config = world.site.root / "wp-config.php"
        healthy = config.read_text()
        config.write_text(healthy.replace("'WP_DEBUG', false", "'WP_DEBUG', true"))
        report = world.heal(mode=HealingMode.AUTO)
        assert results(report.diagnosis)["wp_debug_mode"].status is CheckStatus.FAIL
        execution = world.execution(report, "wp_disable_debug")
        assert execution.status is ExecutionStatus.SUCCEEDED, execution.error
        assert execution.backup_id is not None
        assert config.read_text() == healthy
        info = config.stat()
        assert (info.st_mode & 0o7777, info.st_gid) == (0o640, _www_data_gid())
        assert world.leaked(password(world.site)) == []

    def test_a_debug_switch_the_edit_cannot_reach_rolls_the_edit_back(self, world):
        """WP_DEBUG is also defined by an included file, which PHP reads first: the edit of
        wp-config.php cannot turn debugging off, verification fails, the backup goes back."""
        config = world.site.root / "wp-config.php"
        faulty = config.read_text().replace(
            "define( 'WP_DEBUG', false );",
            "require_once __DIR__ . '/wp-config-local.php';\ndefine( 'WP_DEBUG', true );",
        )
        config.write_text(faulty)
        (world.site.root / "wp-config-local.php").write_text("<?php define('WP_DEBUG', true);\n")
        report = world.heal(mode=HealingMode.AUTO)
        found = results(report.diagnosis)
        assert found["wp_config"].details["read_by"] == "php"
        assert found["wp_database_connection"].status is CheckStatus.PASS
        execution = world.execution(report, "wp_disable_debug")
        assert execution.status is ExecutionStatus.ROLLED_BACK
        assert execution.rolled_back
        assert "verification failed: wp_debug_mode: FAIL" in execution.error
        assert config.read_text() == faulty
        assert world.leaked(password(world.site)) == []


def _www_data_gid() -> int:
    return grp.getgrnam("www-data").gr_gid


class TestDynamicConfig:
    def test_a_config_computed_at_run_time_is_read_by_php_without_leaking(self, pristine):
        config = pristine.root / "wp-config.php"
        secret = password(pristine)
        text = config.read_text().replace(
            f"'{secret}'", "getenv('HEALER_NO_SUCH_VAR') ?: " + repr(secret)
        )
        config.write_text(text)
        loaded = run(site.load_config(LocalHost(), application(pristine)))
        assert loaded.settings.source == "php"
        assert loaded.settings.notes == ("DB_PASSWORD calls getenv() (line 29)",)
        assert loaded.settings.db_password == secret
        assert secret not in repr(loaded.settings)

    def test_a_config_php_cannot_run_is_reported_without_its_contents(self, pristine):
        """Computed (so PHP is asked) and broken (so PHP fails): the reason names PHP's error
        and its line, never what the file holds."""
        config = pristine.root / "wp-config.php"
        secret = password(pristine)
        config.write_text(
            config.read_text().replace("'localhost'", "getenv('HEALER_DB_HOST') ?: 'localhost'")
        )
        config.write_text(
            config.read_text().replace("require_once ABSPATH", "if ($x { require_once ABSPATH")
        )
        with pytest.raises(site.SiteError) as caught:
            run(site.load_config(LocalHost(), application(pristine)))
        assert caught.value.reason.startswith("PHP could not evaluate wp-config.php: ParseError")
        assert secret not in caught.value.reason


# --------------------------------------------------------------------------------------------
# Permissions


class TestPermissions:
    def test_a_world_readable_config_and_a_world_writable_file_are_fixed(self, world):
        config = world.site.root / "wp-config.php"
        probe = world.site.root / "wp-content/plugins/healer-probe/healer-probe.php"
        config.chmod(0o644)
        probe.chmod(0o666)
        report = world.heal(mode=HealingMode.AUTO)
        found = results(report.diagnosis)
        assert found["wp_file_permissions"].details["world_writable"] == [
            "wp-content/plugins/healer-probe/healer-probe.php"
        ]
        # core's shared check sees it too, and leaves world-writable files to a person
        assert "file_permissions" in {u.result.check for u in report.diagnosis.plan.cannot_heal}
        execution = world.execution(report, "wp_fix_permissions")
        assert execution.status is ExecutionStatus.SUCCEEDED, execution.error
        assert (config.stat().st_mode & 0o777, probe.stat().st_mode & 0o777) == (0o640, 0o664)
        after = results(diagnosis_of(world.site))
        assert after["wp_file_permissions"].status is CheckStatus.PASS
        assert after["file_permissions"].status is CheckStatus.PASS


# --------------------------------------------------------------------------------------------
# A plugin that crashes


def _install_crashing_plugin(wordpress_site: Site, *, must_use_loader: bool = False) -> None:
    """healer-crash 1.0.0 is installed and activated, then 'updated' to 1.0.1, which throws
    while loading; WordPress logs to wp-content/debug.log; one visit logs the fatal error."""
    directory = wordpress_site.root / "wp-content/plugins" / CRASH_PLUGIN
    directory.mkdir()
    (directory / f"{CRASH_PLUGIN}.php").write_text(WORKING_PLUGIN)
    wordpress_php(wordpress_site, f"activate_plugin('{CRASH_PLUGIN}/{CRASH_PLUGIN}.php');")
    config = wordpress_site.root / "wp-config.php"
    config.write_text(
        config.read_text().replace(
            "define( 'WP_DEBUG', false );",
            "define( 'WP_DEBUG', true );\ndefine( 'WP_DEBUG_LOG', true );\n"
            "define( 'WP_DEBUG_DISPLAY', false );",
        )
    )
    if must_use_loader:
        loader = wordpress_site.root / "wp-content/mu-plugins"
        loader.mkdir()
        (loader / "load-crash.php").write_text(
            "<?php require_once WP_PLUGIN_DIR . '/healer-crash/healer-crash.php';\n"
        )
    (directory / f"{CRASH_PLUGIN}.php").write_text(BROKEN_PLUGIN)
    assert get(wordpress_site.url) == 500
    log = (wordpress_site.root / "wp-content/debug.log").read_text()
    assert "PHP Fatal error:  Uncaught RuntimeException: healer-crash 1.0.1 cannot start" in log


class TestCrashingPlugin:
    def test_the_crashing_plugin_is_named_deactivated_and_the_site_answers_again(self, world):
        _install_crashing_plugin(world.site)
        report = world.heal(mode=HealingMode.MANUAL, approve=["wp_deactivate_plugin"])
        found = results(report.diagnosis)
        fatal = found["wp_plugin_fatal_errors"]
        assert fatal.status is CheckStatus.FAIL
        assert fatal.message.startswith(f"plugin {CRASH_PLUGIN} caused 1 PHP fatal error(s)")
        assert found["wp_site_reachable"].details["status"] == 500
        execution = world.execution(report, "wp_deactivate_plugin")
        assert execution.status is ExecutionStatus.SUCCEEDED, execution.error
        assert f"no new fatal error from {CRASH_PLUGIN}" in execution.steps[1].output
        assert f"{CRASH_PLUGIN}/{CRASH_PLUGIN}.php" not in active_plugins(world.site)
        assert "akismet/akismet.php" in active_plugins(world.site)
        assert get(world.site.url) == 200

    def test_a_plugin_a_must_use_loader_still_loads_rolls_the_database_back(self, world):
        """Deactivating does not stop the fatal errors (a must-use plugin loads the file
        anyway): the step that watches the logs fails, and the dump restores active_plugins."""
        _install_crashing_plugin(world.site, must_use_loader=True)
        before = world.site.option("active_plugins")
        report = world.heal(mode=HealingMode.MANUAL, approve=["wp_deactivate_plugin"])
        execution = world.execution(report, "wp_deactivate_plugin")
        assert execution.status is ExecutionStatus.ROLLED_BACK, execution.error
        assert f"{CRASH_PLUGIN} still causes fatal errors after it was deactivated" in (
            execution.error
        )
        assert execution.steps[0].ok
        assert not execution.steps[1].ok
        assert world.site.option("active_plugins") == before
        restored = world.registry.get_backup(execution.backup_id)
        assert restored.restored_at is not None


# --------------------------------------------------------------------------------------------
# A crashed table


def _crash_table(wordpress_site: Site) -> str:
    """Damage the Aria table of healer-probe on disk, as a crash mid-write would: the index
    file loses its tail. The server is told to close the table first."""
    table = f"{wordpress_site.prefix}healer_probe_log"
    wordpress_site.sql(f"FLUSH TABLES `{table}`")
    index = wordpress_site.datadir / wordpress_site.database / f"{table}.MAI"
    os.truncate(index, 8192)
    return table


class TestCrashedTable:
    def test_a_crashed_aria_table_is_found_and_repaired_after_a_dump(self, world):
        table = _crash_table(world.site)
        report = world.heal(mode=HealingMode.MANUAL, approve=["wp_repair_tables"])
        found = results(report.diagnosis)["wp_database_tables"]
        assert found.status is CheckStatus.FAIL
        assert found.details["repair"] == [table]
        assert found.details["corrupt"][0]["engine"] == "Aria"
        execution = world.execution(report, "wp_repair_tables")
        assert execution.status is ExecutionStatus.SUCCEEDED, execution.error
        assert execution.backup_id is not None
        assert world.site.sql(f"CHECK TABLE `{table}`")[-1][3] == "OK"
        assert world.site.sql(f"SELECT COUNT(*) FROM `{table}`")[0][0] >= 500  # noqa: S608

    def test_the_repair_step_itself_repairs_a_table_marked_crashed(self, pristine):
        """CHECK TABLE marks the table crashed; REPAIR TABLE opens it for repair, so the
        server's automatic recovery (which leaves a .BAK copy) never runs: the step did it."""
        table = _crash_table(pristine)
        assert pristine.sql(f"CHECK TABLE `{table}`")[-1][3] == "Corrupt"
        said = run(edits.RepairTables(repair=(table,))(LocalHost(), application(pristine)))
        assert said == f"REPAIR TABLE {table}: OK"
        assert pristine.sql(f"CHECK TABLE `{table}`")[-1][3] == "OK"
        assert list((pristine.datadir / pristine.database).glob(f"{table}*.BAK")) == []


# --------------------------------------------------------------------------------------------
# Expired transients


class TestExpiredTransients:
    def test_expired_transients_are_deleted_automatically_and_live_ones_kept(self, world):
        options = f"{world.site.prefix}options"
        rows = []
        for n in range(150):
            rows += [
                (f"_transient_healer_t_{n}", "stale"),
                (f"_transient_timeout_healer_t_{n}", "1"),
            ]
        for n in range(5):
            rows += [(f"_transient_healer_t_live_{n}", "fresh"),
                     (f"_transient_timeout_healer_t_live_{n}", "4102444800")]  # fmt: skip
        connection_rows = ", ".join(["(%s, %s, 'off')"] * len(rows))
        world.site.sql(
            f"INSERT INTO {options} (option_name, option_value, autoload) VALUES {connection_rows}",  # noqa: S608
            [v for row in rows for v in row],
        )
        cache = world.site.root / "wp-content/cache/page"
        cache.mkdir(parents=True)
        (cache / "index.html").write_text("<html>cached</html>")
        report = world.heal(mode=HealingMode.SUPERVISED)
        assert results(report.diagnosis)["wp_expired_transients"].details["expired"] == 150
        execution = world.execution(report, "wp_clear_expired_transients")
        assert execution.status is ExecutionStatus.SUCCEEDED, execution.error
        assert execution.backup_id is None  # LOW risk: no backup
        left = world.site.sql(
            f"SELECT option_name FROM {options} WHERE option_name LIKE '%%healer!_t!_%%' "  # noqa: S608
            "ESCAPE '!' ORDER BY option_name"
        )
        assert len(left) == 10
        assert all("live" in name for (name,) in left)
        assert list((world.site.root / "wp-content/cache").iterdir()) == []


# --------------------------------------------------------------------------------------------
# Reachability


class TestReachability:
    def test_the_site_is_asked_on_its_own_host_whatever_dns_says(self, pristine):
        """The site's name does not resolve (.invalid): the request still reaches this
        server, because it is sent to 127.0.0.1 with the site's name; following DNS fails."""
        port = pristine.url.rsplit(":", 1)[1]
        named = f"http://healer-test.invalid:{port}"
        pristine.sql(
            f"UPDATE {pristine.prefix}options SET option_value = %s "  # noqa: S608
            "WHERE option_name IN ('home', 'siteurl')",
            (named,),
        )
        local = results(diagnosis_of(pristine, "wp_site_reachable"))["wp_site_reachable"]
        assert (local.status, local.details["via"], local.details["status"]) == (
            CheckStatus.PASS,
            "127.0.0.1",
            200,
        )
        dns = attrs.evolve(application(pristine), metadata={"http_address": "dns"})
        check = next(c for c in manager().checks_for("wordpress") if c.name == "wp_site_reachable")
        found = run(diagnose(LocalHost(), dns, manager(), only={check.name})).results[0]
        assert found.status is CheckStatus.FAIL
        assert found.message.startswith(f"no answer from {named}")


# --------------------------------------------------------------------------------------------
# What the database holds


class TestDatabaseContents:
    def test_an_overdue_cron_event_is_named_and_a_disabled_wp_cron_said(self, pristine):
        now = int(pristine.sql("SELECT UNIX_TIMESTAMP()")[0][0])
        schedule = phpserial.loads(pristine.option("cron"))
        schedule[now - 3 * 3600] = {
            "healer_overdue_hook": {
                "40cd750bba9870f18aada2478b24840a": {"schedule": False, "args": {}}
            }
        }
        pristine.sql(
            f"UPDATE {pristine.prefix}options SET option_value = %s WHERE option_name = 'cron'",  # noqa: S608
            (phpserial.dumps(dict(sorted(schedule.items(), key=lambda kv: str(kv[0])))),),
        )
        found = results(diagnosis_of(pristine, "wp_cron"))["wp_cron"]
        assert found.status is CheckStatus.WARN
        assert "oldest: healer_overdue_hook, 3 h late" in found.message
        assert found.details["disabled"] is True
        assert found.suggested_fix.startswith("WP-Cron is disabled (DISABLE_WP_CRON)")

    def test_a_big_autoloaded_option_is_named(self, pristine):
        pristine.sql(
            f"INSERT INTO {pristine.prefix}options (option_name, option_value, autoload) "  # noqa: S608
            "VALUES ('healer_t_big', REPEAT('x', 1100000), 'yes')"
        )
        found = results(diagnosis_of(pristine, "wp_autoload_size"))["wp_autoload_size"]
        assert found.status is CheckStatus.WARN
        assert found.details["largest"][0] == {"option": "healer_t_big", "bytes": 1100000}
        assert "largest: healer_t_big (1.0 MiB)" in found.message


# --------------------------------------------------------------------------------------------
# The backup on its own


class TestBackup:
    def test_files_and_database_come_back_and_the_debug_log_stays(self, pristine, tmp_path):
        app = application(pristine)
        strategy = WordPressBackup()
        artifact = run(strategy.create(LocalHost(), app, str(tmp_path / "backups")))
        assert any("healer_wp_test" in line or "database" in line for line in artifact.includes)
        run(strategy.verify(LocalHost(), artifact))
        config = pristine.root / "wp-config.php"
        before = config.read_bytes()
        config.write_text(config.read_text().replace("'WP_DEBUG', false", "'WP_DEBUG', true"))
        pristine.sql(
            f"UPDATE {pristine.prefix}options SET option_value = 'changed' "  # noqa: S608
            "WHERE option_name = 'blogname'"
        )
        stray = pristine.root / "wp-content/plugins/stray.php"
        stray.write_text("<?php // added after the backup\n")
        log = pristine.root / "wp-content/debug.log"
        log.write_text("a line written after the backup\n")
        run(strategy.restore(LocalHost(), app, artifact))
        assert config.read_bytes() == before
        assert pristine.option("blogname") == b"Healer Test Site"
        assert not stray.exists()
        assert log.read_text() == "a line written after the backup\n"

    def test_a_config_broken_after_the_backup_does_not_stop_the_restore(self, pristine, tmp_path):
        """The files go back first, so the credentials come from the wp-config.php that
        matches the dump, even when the live one no longer runs."""
        app = application(pristine)
        strategy = WordPressBackup()
        artifact = run(strategy.create(LocalHost(), app, str(tmp_path / "backups")))
        config = pristine.root / "wp-config.php"
        before = config.read_bytes()
        config.write_text("<?php define('DB_NAME', getenv('X') ?: ; // broken\n")
        pristine.sql(
            f"UPDATE {pristine.prefix}options SET option_value = 'changed' "  # noqa: S608
            "WHERE option_name = 'blogname'"
        )
        run(strategy.restore(LocalHost(), app, artifact))
        assert config.read_bytes() == before
        assert pristine.option("blogname") == b"Healer Test Site"

    def test_a_damaged_dump_is_refused_before_anything_is_touched(self, pristine, tmp_path):
        app = application(pristine)
        strategy = WordPressBackup()
        artifact = run(strategy.create(LocalHost(), app, str(tmp_path / "backups")))
        dump = next(Path(artifact.location).glob("mysql_dump-*/dump.sql"))
        dump.write_text(dump.read_text() + "-- tampered\n")
        config = pristine.root / "wp-config.php"
        config.write_text(config.read_text() + "\n// edited after the backup\n")
        edited = config.read_bytes()
        with pytest.raises(BackupError, match="the backup is damaged"):
            run(strategy.restore(LocalHost(), app, artifact))
        assert config.read_bytes() == edited
        assert hashlib.sha256(edited).hexdigest()
        assert json.loads((Path(artifact.location) / "index.json").read_text())["parts"]
