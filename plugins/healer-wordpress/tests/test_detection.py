"""Detection from probes built with dicts: no I/O, and it must beat core's fallback."""

from __future__ import annotations

from pathlib import Path

import pytest
from healer_wordpress import detection, plugin
from hypothesis import given
from hypothesis import strategies as st

from universal_healer.detection import rank
from universal_healer.model import ProbedFile
from universal_healer.plugins import build_plugin_manager
from universal_healer.testing import make_probe

VERSION_PHP = "<?php\n$wp_version = '6.4.2';\n$wp_db_version = 56657;\n"
CONFIG = (
    "<?php\ndefine('DB_NAME', 'wp');\ndefine('DB_USER', 'u');\ndefine('DB_PASSWORD', 'p');\n"
    "define('DB_HOST', 'localhost');\n$table_prefix = 'wp_';\n"
    "require_once ABSPATH . 'wp-settings.php';\n"
)
INSTALLED = {"wp-config.php": CONFIG, "wp-includes/version.php": VERSION_PHP}


def probe(files, dirs=("wp-content", "wp-includes", "wp-admin")):
    return make_probe(files, dirs=dirs)


class TestDetect:
    def test_an_installed_site_is_wordpress_at_0_97_with_its_version(self):
        found = detection.detect(probe(INSTALLED))
        assert found is not None
        assert (found.stack, found.version, found.confidence) == ("wordpress", "6.4.2", 0.97)
        assert found.claims == ("wp-content", "wp-admin", "wp-includes")
        assert "wp-config.php settings are plain literals" in found.evidence

    def test_only_the_sample_is_an_uninstalled_wordpress_at_lower_confidence(self):
        found = detection.detect(
            probe({"wp-config-sample.php": CONFIG, "wp-includes/version.php": VERSION_PHP},
                  dirs=("wp-includes", "wp-admin"))
        )  # fmt: skip
        assert found is not None
        assert found.confidence == detection.UNINSTALLED < detection.INSTALLED
        assert found.evidence[0].startswith("uninstalled WordPress")

    def test_a_moved_wp_content_is_still_wordpress(self):
        found = detection.detect(probe(INSTALLED, dirs=("wp-includes",)))
        assert found is not None
        assert found.confidence == detection.NO_CONTENT

    @pytest.mark.parametrize(
        ("extra", "said"),
        [
            pytest.param(
                "define('MULTISITE', true);\ndefine('SUBDOMAIN_INSTALL', false);",
                "multisite subdirectory network (MULTISITE in wp-config.php)",
                id="subdirectories",
            ),
            pytest.param(
                "define( 'MULTISITE', true );\ndefine( 'SUBDOMAIN_INSTALL', true );",
                "multisite subdomain network (MULTISITE in wp-config.php)",
                id="subdomains",
            ),
            pytest.param(
                "define('WP_ALLOW_MULTISITE', true);",
                "multisite allowed but not set up (WP_ALLOW_MULTISITE in wp-config.php)",
                id="allowed",
            ),
            pytest.param("// define('MULTISITE', true);", None, id="commented-out-is-single-site"),
        ],
    )
    def test_multisite_is_noticed(self, extra, said):
        text = CONFIG.replace("$table_prefix", extra + "\n$table_prefix")
        found = detection.detect(probe({**INSTALLED, "wp-config.php": text}))
        assert found is not None
        multisite = [e for e in found.evidence if "multisite" in e]
        assert multisite == ([said] if said else [])

    def test_a_dynamic_config_is_said_so(self):
        text = CONFIG.replace("'localhost'", "getenv('DB_HOST')")
        found = detection.detect(probe({**INSTALLED, "wp-config.php": text}))
        assert found is not None
        assert any("dynamic (DB_HOST calls getenv()" in e for e in found.evidence)

    def test_an_unreadable_config_is_evidence(self):
        files = {**INSTALLED, "wp-config.php": ProbedFile(path="x", error="permission denied")}
        found = detection.detect(probe(files))
        assert found is not None
        assert found.confidence == 0.97
        assert "cannot look inside: wp-config.php unreadable (permission denied)" in found.evidence

    @pytest.mark.parametrize(
        "files",
        [
            pytest.param({"wp-config.php": CONFIG}, id="config-without-wp-includes"),
            pytest.param({"package.json": "{}"}, id="node-app"),
        ],
    )
    def test_other_roots_are_not_wordpress(self, files):
        assert detection.detect(make_probe(files)) is None

    @given(config=st.binary(max_size=400), version=st.binary(max_size=200))
    def test_any_bytes_in_the_probe_files_are_evidence_never_an_exception(self, config, version):
        found = detection.detect(
            probe({"wp-config.php": config, "wp-includes/version.php": version})
        )
        assert found is not None
        assert found.confidence == 0.97


class TestAgainstCore:
    def test_this_plugin_wins_over_the_core_fallback_and_declares_no_stack(self):
        manager = build_plugin_manager(load_entry_points=False, extra=[("wordpress", plugin)])
        found = manager.detect(probe(INSTALLED))
        best = rank(found, manager.stacks())[0]
        assert (best.plugin, best.confidence) == ("wordpress", 0.97)
        assert {d.plugin: d.confidence for d in found}[
            "universal_healer.builtin.signatures"
        ] == 0.95
        assert manager.failures == []

    def test_the_debian_tree_itself_is_detected_as_dynamic(self):
        root = Path("/usr/share/wordpress")
        files = {
            name: (root / name).read_bytes()
            for name in ("wp-config.php", "wp-includes/version.php")
        }
        found = detection.detect(probe(files))
        assert found is not None
        assert any("includes another file" in e for e in found.evidence)
