"""The plugin's declarations and catalogue, and what each strategy proposes (pure: no I/O)."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest
from healer_wordpress import _web, edits, plugin, site
from healer_wordpress.backup import WordPressBackup
from healer_wordpress.checks import CHECKS
from healer_wordpress.strategies import (
    STRATEGIES,
    ClearExpiredTransients,
    DeactivateCrashingPlugin,
    DisableDebug,
    FixPermissions,
    RepairTables,
    UpdateCore,
    UpdatePlugins,
    UpdateThemes,
)

from universal_healer.model import (
    Application,
    CallableStep,
    CheckCategory,
    CheckResult,
    CheckStatus,
    CommandStep,
    RiskLevel,
    StackInfo,
)
from universal_healer.plugins import build_plugin_manager

PLUGIN = Path(__file__).resolve().parents[1]
WORDPRESS = StackInfo(id="wordpress", display_name="WordPress")
PHP = StackInfo(id="php", display_name="PHP")
APP = Application(id="a", server="local", path="/srv/shop", stack="wordpress")


def finding(check: str, status: CheckStatus = CheckStatus.FAIL, **details) -> CheckResult:
    return CheckResult(
        check=check,
        category=CheckCategory.CONFIGURATION,
        status=status,
        severity=RiskLevel.HIGH,
        message="finding",
        details=details,
    )


class TestDeclarations:
    def test_declares_no_stack_because_core_declares_wordpress(self):
        manager = build_plugin_manager(load_entry_points=False, extra=[("wordpress", plugin)])
        assert plugin.healer_stacks() == ()
        assert manager.stack("wordpress") is not None
        assert manager.failures == []
        assert [i.stacks for i in manager.plugins() if i.name == "wordpress"] == [()]

    def test_wordpress_gets_every_check_strategy_and_the_backup_other_stacks_nothing(self):
        assert [type(c) for c in plugin.healer_get_checks(WORDPRESS)] == list(CHECKS)
        assert [type(s) for s in plugin.healer_get_strategies(WORDPRESS)] == list(STRATEGIES)
        assert isinstance(plugin.healer_get_backup(WORDPRESS), WordPressBackup)
        assert plugin.healer_get_checks(PHP) == []
        assert plugin.healer_get_strategies(PHP) == []
        assert plugin.healer_get_backup(PHP) is None

    def test_probe_files_mark_wp_config_and_its_sample(self):
        wanted = {f.path: f.marker for f in plugin.healer_probe_files()}
        assert wanted == {
            "wp-config.php": True,
            "wp-config-sample.php": True,
            "wp-includes/version.php": False,
        }


class TestCatalogue:
    def test_check_names_are_unique_and_prefixed(self):
        names = [c.name for c in CHECKS]
        assert len(set(names)) == len(names)
        assert all(name.startswith("wp_") for name in names)

    def test_database_checks_depend_on_the_connection_check(self):
        reads_db = {c.name for c in CHECKS if "wp_database_connection" in c.depends_on}
        assert reads_db >= {
            "wp_core_update", "wp_plugin_updates", "wp_theme_updates", "wp_autoload_size",
            "wp_cron", "wp_expired_transients", "wp_plugin_fatal_errors", "wp_database_tables",
        }  # fmt: skip

    def test_every_strategy_answers_a_check_of_the_catalogue(self):
        names = {c.name for c in CHECKS}
        for strategy in STRATEGIES:
            assert set(strategy.fixes) <= names, strategy

    @pytest.mark.parametrize("document", ["README.md", "docs/index.md"])
    def test_the_docs_list_each_check_and_strategy_with_its_declaration(self, document):
        text = (PLUGIN / document).read_text()
        for check in CHECKS:
            row = f"| `{check.name}` | {check.category.value} | {check.severity.value} |"
            assert row in text, f"{document} has no row {row!r}"
        for strategy in STRATEGIES:
            assert re.search(rf"\| `{strategy.name}` \| `{strategy.fixes[0]}` \|", text), (
                f"{document} has no row for {strategy.name}"
            )


class TestHttpAddress:
    @pytest.mark.parametrize(
        ("url", "address", "expected"),
        [
            pytest.param(
                "https://shop.example/", "127.0.0.1",
                ("shop.example", 443, "https://127.0.0.1/"), id="https-default-port",
            ),
            pytest.param(
                "http://shop.example:8080/x?y", "::1",
                ("shop.example", 8080, "http://[::1]:8080/x?y"), id="ipv6-and-port",
            ),
            pytest.param("http://127.0.0.1:8080/", "127.0.0.1", None, id="already-an-address"),
            pytest.param("http://shop.example/", None, None, id="dns"),
        ],
    )  # fmt: skip
    def test_a_site_name_is_pinned_to_the_local_address(self, url, address, expected):
        pin = _web._pinned(url, address)
        assert (None if pin is None else (pin.name, pin.port, pin.url)) == expected

    @pytest.mark.parametrize(
        ("metadata", "address"),
        [
            pytest.param({}, "127.0.0.1", id="default-local"),
            pytest.param({"http_address": "10.0.0.5"}, "10.0.0.5", id="configured"),
            pytest.param({"http_address": "dns"}, None, id="dns"),
        ],
    )
    def test_the_address_comes_from_the_metadata(self, metadata, address):
        assert site.http_address(attrs.evolve(APP, metadata=metadata)) == address


class TestProposals:
    def test_debug_is_edited_only_when_the_file_says_it_plainly(self):
        result = finding(
            "wp_debug_mode", on=["WP_DEBUG"], config="/srv/shop/wp-config.php", editable=True
        )
        action = DisableDebug().propose(result, APP)
        assert action is not None
        assert (action.risk, action.requires_backup, action.touches) == (
            RiskLevel.MEDIUM,
            True,
            ("wp-config.php",),
        )
        (step,) = action.steps
        assert isinstance(step, CallableStep)
        assert step.run == edits.DisableDebug("/srv/shop/wp-config.php", ("WP_DEBUG",))
        computed = finding("wp_debug_mode", on=["WP_DEBUG"], config="/srv/shop/wp-config.php")
        assert DisableDebug().propose(computed, APP) is None
        above = finding(
            "wp_debug_mode", on=["WP_DEBUG"], config="/srv/wp-config.php", editable=True
        )
        assert DisableDebug().propose(above, APP) is None  # outside the root: not backed up

    def test_permissions_are_fixed_only_when_the_web_server_keeps_its_access(self):
        result = finding(
            "wp_file_permissions", healable=True, fix_config=True, wp_config="wp-config.php",
            fix_paths=["wp-content/uploads/x.jpg", "../etc/passwd"],
        )  # fmt: skip
        action = FixPermissions().propose(result, APP)
        assert action is not None
        assert [s.argv for s in action.steps if isinstance(s, CommandStep)] == [
            ("chmod", "0640", "--", "/srv/shop/wp-config.php"),
            ("chmod", "o-w", "--", "/srv/shop/wp-content/uploads/x.jpg"),
        ]
        assert action.touches == ("wp-config.php", "wp-content/uploads/x.jpg")
        unsafe = finding("wp_file_permissions", healable=False, fix_config=True)
        assert FixPermissions().propose(unsafe, APP) is None

    def test_expired_transients_are_a_low_risk_action_that_may_empty_the_cache(self):
        action = ClearExpiredTransients().propose(
            finding("wp_expired_transients", CheckStatus.WARN, cache_dir="wp-content/cache"), APP
        )
        assert action is not None
        assert (action.risk, action.requires_backup) == (RiskLevel.LOW, False)
        assert action.steps[1].argv == (
            "find", "/srv/shop/wp-content/cache", "-xdev", "-mindepth", "1", "-delete",
        )  # fmt: skip

    def test_repairs_are_high_risk_and_name_the_tables(self):
        action = RepairTables().propose(
            finding("wp_database_tables", repair=["wp_log"], optimize=["wp_posts"]), APP
        )
        assert action is not None
        assert (action.risk, action.description) == (
            RiskLevel.HIGH,
            "REPAIR TABLE wp_log; OPTIMIZE TABLE wp_posts",
        )
        assert RepairTables().propose(finding("wp_database_tables", repair=[]), APP) is None

    def test_only_a_plugin_active_plugins_activates_is_deactivated(self):
        plugins = [
            {"plugin": "loader.php", "must_use": True, "active_entries": []},
            {"plugin": "shop", "must_use": False, "active_entries": ["shop/shop.php"]},
        ]
        result = finding(
            "wp_plugin_fatal_errors", plugins=plugins, logs=["/srv/shop/wp-content/debug.log"],
            plugin_dir="/srv/shop/wp-content/plugins",
        )  # fmt: skip
        action = DeactivateCrashingPlugin().propose(result, APP)
        assert action is not None
        assert action.risk is RiskLevel.HIGH
        assert [s.run for s in action.steps] == [
            edits.DeactivatePlugin("shop"),
            edits.ConfirmNoNewFatal(
                plugin="shop",
                log_files=("/srv/shop/wp-content/debug.log",),
                plugin_dir="/srv/shop/wp-content/plugins",
            ),
        ]
        only_must_use = finding("wp_plugin_fatal_errors", plugins=plugins[:1])
        assert DeactivateCrashingPlugin().propose(only_must_use, APP) is None

    @pytest.mark.parametrize(
        ("strategy", "details", "argv"),
        [
            pytest.param(
                UpdateCore(),
                {"available": ["6.4.3", "6.5.1"]},
                [
                    ("/usr/bin/wp", "--path=/srv/shop", "--allow-root", "core", "update",
                     "--version=6.5.1"),
                    ("/usr/bin/wp", "--path=/srv/shop", "--allow-root", "core", "update-db"),
                ],
                id="core",
            ),
            pytest.param(
                UpdatePlugins(),
                {"updates": [{"slug": "akismet"}, {"slug": "shop"}]},
                [("/usr/bin/wp", "--path=/srv/shop", "--allow-root", "plugin", "update",
                  "akismet", "shop")],
                id="plugins",
            ),
            pytest.param(
                UpdateThemes(),
                {"updates": [{"name": "twentytwentythree"}]},
                [("/usr/bin/wp", "--path=/srv/shop", "--allow-root", "theme", "update",
                  "twentytwentythree")],
                id="themes",
            ),
        ],
    )  # fmt: skip
    def test_updates_run_wp_cli_when_it_is_installed(self, strategy, details, argv):
        result = finding(strategy.fixes[0], wp_cli="/usr/bin/wp", as_root=True, **details)
        action = strategy.propose(result, APP)
        assert action is not None
        assert (action.risk, action.requires_backup) == (RiskLevel.HIGH, True)
        assert [s.argv for s in action.steps] == argv

    @pytest.mark.parametrize("strategy", [UpdateCore(), UpdatePlugins(), UpdateThemes()])
    def test_updates_propose_nothing_without_wp_cli(self, strategy):
        result = finding(
            strategy.fixes[0], wp_cli=None, available=["9.9"], updates=[{"slug": "x", "name": "x"}]
        )
        assert strategy.propose(result, APP) is None
