"""Detection: the built-in fallback signatures and the ranking engine, with probes from dicts."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import strategies as hs
from universal_healer.builtin import signatures
from universal_healer.builtin._manifests import (
    pnpm_lock_version,
    version_from_range,
    yarn_lock_version,
)
from universal_healer.detection import Override, decide, rank
from universal_healer.model import Detection, DetectionMethod, ProbedFile
from universal_healer.plugins import PluginManager, build_plugin_manager
from universal_healer.testing import make_probe

PLUGIN = "universal_healer.builtin.signatures"
WP_VERSION_PHP = "<?php\n/** The WordPress version string. */\n$wp_version = '6.4.2';\n"
LARAVEL_APPLICATION = "vendor/laravel/framework/src/Illuminate/Foundation/Application.php"


def detect(
    files: dict[str, Any], *, dirs: tuple[str, ...] = (), max_bytes: int | None = None
) -> Detection | None:
    """The signatures plugin's answer for a root holding ``files``."""
    return signatures.healer_detect(make_probe(files, dirs=dirs, max_bytes=max_bytes))


def manifest(**fields: Any) -> str:
    """A JSON manifest (package.json, composer.json, a lock file) with these fields."""
    return json.dumps(fields, indent=2)


def detected(files: dict[str, Any], **kwargs: Any) -> Detection:
    found = detect(files, **kwargs)
    assert found is not None, "expected a detection"
    return found


def wordpress(**extra: Any) -> dict[str, Any]:
    return {
        "wp-config.php": "<?php\ndefine( 'DB_NAME', 'wordpress' );\n",
        "index.php": "<?php require __DIR__ . '/wp-blog-header.php';\n",
        "wp-includes/version.php": WP_VERSION_PHP,
        **extra,
    }


def laravel(**extra: Any) -> dict[str, Any]:
    return {
        "artisan": "#!/usr/bin/env php\n<?php\n",
        "composer.json": manifest(require={"php": "^8.1", "laravel/framework": "^10.10"}),
        **extra,
    }


@pytest.fixture(scope="module")
def manager() -> PluginManager:
    return build_plugin_manager(load_entry_points=False)


# --------------------------------------------------------------------------------------------
# Declarations


class TestDeclarations:
    def test_plugin_declares_six_stacks_with_parents_and_secret_files(self):
        stacks = {
            s.id: (s.display_name, s.parent, s.secret_files) for s in signatures.healer_stacks()
        }
        assert stacks == {
            "wordpress": ("WordPress", None, ("wp-config.php",)),
            "php": ("PHP", None, (".env",)),
            "laravel": ("Laravel", "php", (".env",)),
            "nodejs": ("Node.js", None, (".env",)),
            "nextjs": ("Next.js", "nodejs", (".env",)),
            "express": ("Express", "nodejs", (".env",)),
        }

    def test_markers_are_the_manifests_of_each_stack(self):
        markers = {f.path for f in signatures.healer_probe_files() if f.marker}
        assert markers == {
            "package.json",
            "composer.json",
            "artisan",
            "wp-config.php",
            "wp-config-sample.php",
            "index.php",
        }

    @pytest.mark.parametrize(
        ("path", "cap"),
        [
            pytest.param("package.json", 256 * 1024, id="manifest"),
            pytest.param("wp-includes/version.php", 256 * 1024, id="version-file"),
            pytest.param("package-lock.json", 8 * 1024 * 1024, id="npm-lock"),
            pytest.param("composer.lock", 8 * 1024 * 1024, id="composer-lock"),
            pytest.param("node_modules/next/package.json", 256 * 1024, id="installed-next"),
            pytest.param(LARAVEL_APPLICATION, 256 * 1024, id="laravel-application"),
            pytest.param("next.config.ts", 256 * 1024, id="next-config"),
        ],
    )
    def test_probe_files_are_read_with_a_cap_that_fits_them(self, path, cap):
        caps = {f.path: f.max_bytes for f in signatures.healer_probe_files()}
        assert caps[path] == cap

    def test_plugin_loads_in_the_manager_without_failures(self, manager):
        info = {p.name: p for p in manager.plugins()}[PLUGIN]
        assert info.enabled
        assert info.error is None
        assert set(info.stacks) == {"wordpress", "php", "laravel", "nodejs", "nextjs", "express"}
        assert not [f for f in manager.failures if f.plugin == PLUGIN]

    def test_empty_root_is_nothing(self):
        assert detect({}) is None


# --------------------------------------------------------------------------------------------
# WordPress


class TestWordPress:
    def test_installed_site_is_wordpress_with_its_version(self):
        found = detected(wordpress(), dirs=("wp-content",))
        assert (found.stack, found.version, found.confidence) == ("wordpress", "6.4.2", 0.95)
        assert found.claims == ("wp-content", "wp-admin", "wp-includes")

    @pytest.mark.parametrize(
        "line",
        [
            pytest.param("$wp_version = '6.4.2';", id="single-quotes"),
            pytest.param('$wp_version = "6.4.2";', id="double-quotes"),
            pytest.param("$wp_version='6.4.2';", id="no-spaces"),
        ],
    )
    def test_version_is_read_from_version_php(self, line):
        found = detected(
            wordpress(**{"wp-includes/version.php": f"<?php\n{line}\n"}), dirs=("wp-content",)
        )
        assert found.version == "6.4.2"

    def test_missing_version_file_leaves_the_version_unknown_and_says_so(self):
        files = wordpress()
        del files["wp-includes/version.php"]
        found = detected(files, dirs=("wp-content", "wp-includes"))
        assert found.version is None
        assert any("wp-includes/version.php missing" in line for line in found.evidence)

    def test_only_the_sample_config_means_not_installed(self):
        files = {
            "wp-config-sample.php": "<?php\ndefine( 'DB_NAME', 'database_name_here' );\n",
            "index.php": "<?php\n",
            "wp-includes/version.php": WP_VERSION_PHP,
        }
        found = detected(files, dirs=("wp-content",))
        assert (found.stack, found.confidence) == ("wordpress", 0.6)
        assert "WordPress files present but not installed (no wp-config.php)" in found.evidence

    def test_uninstalled_wordpress_is_not_read_as_plain_php(self):
        """index.php alone would say PHP at 0.70; the WordPress reading is kept instead."""
        files = {"wp-config-sample.php": "<?php\n", "index.php": "<?php\n"}
        assert detected(files, dirs=("wp-includes",)).stack == "wordpress"

    @pytest.mark.parametrize(
        ("define", "expected"),
        [
            pytest.param("define( 'MULTISITE', true );", "multisite network", id="multisite"),
            pytest.param(
                "define('WP_ALLOW_MULTISITE', true);", "multisite allowed", id="allow-multisite"
            ),
            pytest.param('define("MULTISITE", 1);', "multisite network", id="double-quotes-one"),
        ],
    )
    def test_multisite_is_noticed_in_evidence(self, define, expected):
        found = detected(wordpress(**{"wp-config.php": f"<?php\n{define}\n"}), dirs=("wp-content",))
        assert any(expected in line for line in found.evidence)

    def test_multisite_turned_off_is_not_noticed(self):
        config = "<?php\ndefine( 'MULTISITE', false );\n"
        found = detected(wordpress(**{"wp-config.php": config}), dirs=("wp-content",))
        assert not any("multisite" in line for line in found.evidence)

    def test_unreadable_config_still_is_wordpress(self):
        files = wordpress(**{"wp-config.php": ProbedFile(path="", error="permission denied")})
        found = detected(files, dirs=("wp-content",))
        assert (found.stack, found.confidence) == ("wordpress", 0.95)
        assert "cannot look inside: wp-config.php unreadable (permission denied)" in found.evidence

    def test_config_without_wp_includes_is_not_wordpress(self):
        found = detected({"wp-config.php": "<?php\n", "index.php": "<?php\n"})
        assert found.stack == "php"

    def test_moved_wp_content_lowers_confidence(self):
        found = detected(wordpress())
        assert (found.stack, found.confidence) == ("wordpress", 0.8)

    def test_theme_build_tooling_beside_wordpress_does_not_win(self):
        package = manifest(dependencies={"jquery": "^3.7.1"})
        found = detected(wordpress(**{"package.json": package}), dirs=("wp-content",))
        assert found.stack == "wordpress"


# --------------------------------------------------------------------------------------------
# Laravel and PHP


class TestLaravel:
    def test_version_comes_from_composer_lock_without_the_v(self):
        lock = manifest(packages=[{"name": "laravel/framework", "version": "v10.48.4"}])
        found = detected(laravel(**{"composer.lock": lock}))
        assert (found.stack, found.version, found.confidence) == ("laravel", "10.48.4", 0.95)
        assert "version 10.48.4 from composer.lock" in found.evidence

    def test_version_comes_from_the_installed_framework_without_a_lock(self):
        application = "<?php\nclass Application\n{\n    const VERSION = '10.48.2';\n"
        found = detected(laravel(**{LARAVEL_APPLICATION: application}))
        assert found.version == "10.48.2"

    def test_lock_wins_over_the_installed_framework(self):
        lock = manifest(packages=[{"name": "laravel/framework", "version": "v10.48.4"}])
        application = "<?php const VERSION = '10.0.0';"
        found = detected(laravel(**{"composer.lock": lock, LARAVEL_APPLICATION: application}))
        assert found.version == "10.48.4"

    def test_version_comes_from_the_constraint_as_a_last_resort_and_says_so(self):
        found = detected(laravel())
        assert found.version == "10.10"
        assert any("version from constraint ^10.10" in line for line in found.evidence)

    def test_broken_lock_is_evidence_and_the_next_source_is_used(self):
        application = "<?php const VERSION = '10.48.2';"
        found = detected(laravel(**{"composer.lock": "{", LARAVEL_APPLICATION: application}))
        assert found.version == "10.48.2"
        assert any(line.startswith("composer.lock: invalid JSON") for line in found.evidence)

    def test_lock_without_the_framework_falls_back_to_the_constraint(self):
        lock = manifest(packages=[{"name": "laravel/tinker", "version": "v2.9.0"}])
        assert detected(laravel(**{"composer.lock": lock})).version == "10.10"

    def test_claims_the_laravel_directories(self):
        assert detected(laravel()).claims == (
            "resources", "public", "storage", "bootstrap", "app", "config", "database", "routes",
            "tests",
        )  # fmt: skip

    def test_front_end_package_json_does_not_change_the_answer(self):
        package = manifest(
            private=True,
            scripts={"dev": "vite", "build": "vite build"},
            dependencies={"axios": "^1.6.4"},
            devDependencies={"vite": "^5.0.0"},
        )
        assert detected(laravel(**{"package.json": package})).stack == "laravel"

    def test_artisan_without_composer_json_is_php_with_less_confidence(self):
        found = detected({"artisan": "#!/usr/bin/env php\n"})
        assert (found.stack, found.confidence) == ("php", 0.5)
        assert any("no composer.json" in line for line in found.evidence)

    def test_artisan_without_laravel_framework_is_php(self):
        found = detected(
            {"artisan": "<?php\n", "composer.json": manifest(require={"symfony/console": "^6"})}
        )
        assert (found.stack, found.confidence) == ("php", 0.7)
        assert any("does not require it" in line for line in found.evidence)

    def test_laravel_framework_without_artisan_is_php(self):
        found = detected({"composer.json": manifest(require={"laravel/framework": "^10.10"})})
        assert found.stack == "php"
        assert any("no artisan" in line for line in found.evidence)


class TestPhp:
    def test_index_php_alone_is_php_without_a_version(self):
        found = detected({"index.php": "<?php echo 'hi';\n"})
        assert (found.stack, found.version, found.confidence) == ("php", None, 0.7)

    def test_required_php_version_is_the_version_and_evidence_says_what_it_is(self):
        found = detected({"composer.json": manifest(require={"php": ">=8.1"})})
        assert (found.stack, found.version, found.confidence) == ("php", "8.1", 0.7)
        assert any("required PHP version" in line for line in found.evidence)

    @pytest.mark.parametrize(
        ("content", "problem"),
        [
            pytest.param("{", "composer.json: invalid JSON (", id="invalid-json"),
            pytest.param(b"\xff\xfe\x00garbage\x89PNG", "composer.json: not UTF-8", id="binary"),
            pytest.param("[1, 2]", "composer.json: not a JSON object", id="array"),
        ],
    )
    def test_unusable_composer_json_is_php_at_low_confidence(self, content, problem):
        found = detected({"composer.json": content})
        assert (found.stack, found.confidence) == ("php", 0.3)
        assert any(line.startswith(problem) for line in found.evidence)

    def test_unusable_composer_json_beside_index_php_stays_php(self):
        found = detected({"composer.json": "{nope", "index.php": "<?php\n"})
        assert (found.stack, found.confidence) == ("php", 0.7)
        assert any(line.startswith("composer.json: invalid JSON") for line in found.evidence)

    def test_truncated_composer_json_says_it_is_too_large(self):
        found = detected({"composer.json": manifest(require={"php": "^8.2"})}, max_bytes=10)
        assert found.confidence == 0.3
        assert any("composer.json: too large to parse" in line for line in found.evidence)

    @pytest.mark.parametrize(
        "require",
        [
            pytest.param("not-a-mapping", id="string"),
            pytest.param({"php": 8}, id="number-constraint"),
            pytest.param(None, id="null"),
        ],
    )
    def test_odd_shapes_inside_composer_json_are_tolerated(self, require):
        found = detected({"composer.json": manifest(require=require)})
        assert (found.stack, found.version) == ("php", None)


# --------------------------------------------------------------------------------------------
# Node.js, Next.js and Express


def next_app(**extra: Any) -> dict[str, Any]:
    package = manifest(scripts={"start": "next start"}, dependencies={"next": "^14.2.3"})
    return {"package.json": package, **extra}


def express_app(**extra: Any) -> dict[str, Any]:
    return {"package.json": manifest(dependencies={"express": "^4.19.2"}), **extra}


YARN_CLASSIC = """\
# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.
# yarn lockfile v1


"@next/env@14.2.1":
  version "14.2.1"

next-auth@^4.24.0:
  version "4.24.7"

next@^14.2.0, next@^14.2.3:
  version "14.2.3"
  resolved "https://registry.yarnpkg.com/next/-/next-14.2.3.tgz"
"""

YARN_BERRY = """\
__metadata:
  version: 8

"next@npm:^14.2.3":
  version: 14.2.3
  resolution: "next@npm:14.2.3"
"""

PNPM_V5 = """\
lockfileVersion: 5.4
packages:
  /@next/env/14.2.1:
    resolution: {integrity: sha512-x}
  /next/14.2.3_react@18.3.1:
    resolution: {integrity: sha512-y}
"""

PNPM_V6 = """\
lockfileVersion: '6.0'
packages:
  /next-auth@4.24.7:
    resolution: {integrity: sha512-z}
  /next@14.2.3(react-dom@18.3.1)(react@18.3.1):
    resolution: {integrity: sha512-y}
"""

PNPM_V9 = """\
lockfileVersion: '9.0'
packages:
  '@next/env@14.2.1':
    resolution: {integrity: sha512-x}
  next@14.2.3:
    resolution: {integrity: sha512-y}
"""


class TestNextjs:
    @pytest.mark.parametrize(
        "config",
        [
            pytest.param("next.config.js", id="js"),
            pytest.param("next.config.mjs", id="mjs"),
            pytest.param("next.config.ts", id="ts"),
            pytest.param("next.config.cjs", id="cjs"),
        ],
    )
    def test_next_with_a_config_is_nextjs_at_095(self, config):
        found = detected(next_app(**{config: "export default {};\n"}))
        assert (found.stack, found.confidence) == ("nextjs", 0.95)
        assert any(config in line for line in found.evidence)

    def test_next_without_a_config_is_nextjs_at_090(self):
        found = detected(next_app())
        assert (found.stack, found.confidence) == ("nextjs", 0.9)
        assert any("no next.config.*" in line for line in found.evidence)

    def test_next_in_dev_dependencies_only_is_still_nextjs(self):
        found = detected({"package.json": manifest(devDependencies={"next": "14.2.3"})})
        assert (found.stack, found.version) == ("nextjs", "14.2.3")
        assert "next only in devDependencies" in found.evidence

    @pytest.mark.parametrize(
        "layout",
        [
            pytest.param(("src/app/page.tsx",), id="src-app"),
            pytest.param(("src/pages/index.tsx",), id="src-pages"),
            pytest.param(("app/page.tsx",), id="app"),
            pytest.param(("pages/index.js",), id="pages"),
        ],
    )
    def test_source_layouts_are_claimed(self, layout):
        files = next_app(**dict.fromkeys(layout, "export default function Page() {}\n"))
        found = detected(files)
        top = layout[0].split("/")[0]
        assert found.stack == "nextjs"
        assert top in found.claims
        assert any(f"{top}/" in line for line in found.evidence)

    def test_claims_the_next_directories(self):
        assert detected(next_app()).claims == (
            "pages", "app", "src", "public", "components", "styles",
        )  # fmt: skip

    @pytest.mark.parametrize(
        ("extra", "version", "source"),
        [
            pytest.param(
                {"node_modules/next/package.json": manifest(name="next", version="14.2.4")},
                "14.2.4",
                "installed",
                id="installed",
            ),
            pytest.param(
                {
                    "package-lock.json": manifest(
                        lockfileVersion=3,
                        packages={"": {}, "node_modules/next": {"version": "14.2.3"}},
                    )
                },
                "14.2.3",
                "package-lock.json",
                id="package-lock-v3",
            ),
            pytest.param(
                {
                    "package-lock.json": manifest(
                        lockfileVersion=2,
                        packages={"node_modules/next": {"version": "14.2.2"}},
                        dependencies={"next": {"version": "14.2.2"}},
                    )
                },
                "14.2.2",
                "package-lock.json",
                id="package-lock-v2",
            ),
            pytest.param(
                {
                    "package-lock.json": manifest(
                        lockfileVersion=1, dependencies={"next": {"version": "13.5.6"}}
                    )
                },
                "13.5.6",
                "package-lock.json",
                id="package-lock-v1",
            ),
            pytest.param(
                {
                    "npm-shrinkwrap.json": manifest(
                        lockfileVersion=3, packages={"node_modules/next": {"version": "14.1.0"}}
                    )
                },
                "14.1.0",
                "npm-shrinkwrap.json",
                id="shrinkwrap",
            ),
            pytest.param({"yarn.lock": YARN_CLASSIC}, "14.2.3", "yarn.lock", id="yarn-classic"),
            pytest.param({"yarn.lock": YARN_BERRY}, "14.2.3", "yarn.lock", id="yarn-berry"),
            pytest.param({"pnpm-lock.yaml": PNPM_V5}, "14.2.3", "pnpm-lock.yaml", id="pnpm-v5"),
            pytest.param({"pnpm-lock.yaml": PNPM_V6}, "14.2.3", "pnpm-lock.yaml", id="pnpm-v6"),
            pytest.param({"pnpm-lock.yaml": PNPM_V9}, "14.2.3", "pnpm-lock.yaml", id="pnpm-v9"),
            pytest.param({}, "14.2.3", "range ^14.2.3", id="range"),
        ],
    )
    def test_version_comes_from_the_best_source_available(self, extra, version, source):
        found = detected(next_app(**extra))
        assert found.version == version
        assert any(source in line for line in found.evidence)

    def test_installed_version_wins_over_the_lock_file(self):
        found = detected(
            next_app(
                **{
                    "node_modules/next/package.json": manifest(version="14.2.4"),
                    "yarn.lock": YARN_CLASSIC,
                }
            )
        )
        assert found.version == "14.2.4"

    def test_broken_installed_manifest_falls_back_to_the_lock_file(self):
        found = detected(
            next_app(**{"node_modules/next/package.json": "\x00\x01", "yarn.lock": YARN_CLASSIC})
        )
        assert found.version == "14.2.3"
        assert any(line.startswith("node_modules/next/package.json:") for line in found.evidence)

    def test_truncated_package_lock_is_still_searched(self):
        lock = manifest(
            lockfileVersion=3,
            packages={
                "node_modules/next": {"version": "14.2.3"},
                "node_modules/zzz": {"x": "y" * 500},
            },
        )
        probe = make_probe(
            {
                **next_app(),
                "package-lock.json": ProbedFile(
                    path="", data=lock.encode()[:200], size=len(lock), truncated=True
                ),
            }
        )
        found = signatures.healer_detect(probe)
        assert found is not None
        assert found.version == "14.2.3"

    def test_unpinned_range_gives_no_version_and_says_so(self):
        found = detected({"package.json": manifest(dependencies={"next": "latest"})})
        assert (found.stack, found.version) == ("nextjs", None)
        assert any("version unknown" in line for line in found.evidence)

    def test_next_beats_express_in_the_same_package(self):
        package = manifest(dependencies={"next": "^14.2.3", "express": "^4.19.2"})
        assert detected({"package.json": package}).stack == "nextjs"


class TestExpress:
    def test_express_dependency_is_express_at_085(self):
        found = detected(express_app())
        assert (found.stack, found.version, found.confidence) == ("express", "4.19.2", 0.85)
        assert found.claims == ("public", "views", "routes", "src")

    def test_express_is_returned_rather_than_generic_nodejs(self):
        """Generic Node.js would rank first at 0.90, so the plugin answers Express alone."""
        package = manifest(
            main="server.js", scripts={"start": "node server.js"}, dependencies={"express": "^4"}
        )
        found = detected({"package.json": package, "server.js": "require('express')"})
        assert found.stack == "express"

    @pytest.mark.parametrize(
        ("extra", "version"),
        [
            pytest.param(
                {"node_modules/express/package.json": manifest(version="4.19.2")},
                "4.19.2",
                id="installed",
            ),
            pytest.param(
                {
                    "package-lock.json": manifest(
                        lockfileVersion=3, packages={"node_modules/express": {"version": "4.18.3"}}
                    )
                },
                "4.18.3",
                id="lock",
            ),
            pytest.param({}, "4.19.2", id="range"),
        ],
    )
    def test_version_comes_from_installed_lock_or_range(self, extra, version):
        assert detected(express_app(**extra)).version == version

    def test_express_in_dev_dependencies_only_is_not_express(self):
        package = manifest(devDependencies={"express": "^4"}, scripts={"start": "node app.js"})
        assert detected({"package.json": package}).stack == "nodejs"


class TestNodejs:
    @pytest.mark.parametrize(
        ("package", "files"),
        [
            pytest.param({"dependencies": {"pg": "^8.11.5"}}, {}, id="dependencies"),
            pytest.param({"scripts": {"start": "node worker.js"}}, {}, id="start-script"),
            pytest.param({"scripts": {"serve": "node serve.js"}}, {}, id="serve-script"),
            pytest.param({"main": "lib/main.js"}, {}, id="main"),
            pytest.param({"bin": {"tool": "cli.js"}}, {}, id="bin"),
            pytest.param({}, {"server.js": "//"}, id="server-js"),
            pytest.param({}, {"app.js": "//"}, id="app-js"),
            pytest.param({}, {"index.js": "//"}, id="index-js"),
        ],
    )
    def test_a_real_app_is_nodejs_at_090(self, package, files):
        found = detected({"package.json": manifest(**package), **files})
        assert (found.stack, found.confidence) == ("nodejs", 0.9)

    def test_required_node_version_is_the_version_and_evidence_says_what_it_is(self):
        package = manifest(dependencies={"pg": "^8"}, engines={"node": ">=20"})
        found = detected({"package.json": package})
        assert found.version == "20"
        assert any("required Node version" in line for line in found.evidence)

    def test_no_engines_means_no_version(self):
        assert detected({"package.json": manifest(dependencies={"pg": "^8"})}).version is None

    @pytest.mark.parametrize(
        "workspaces",
        [
            pytest.param(["backend", "frontend"], id="list"),
            pytest.param({"packages": ["packages/*"]}, id="packages-object"),
        ],
    )
    def test_workspace_root_is_not_an_app(self, workspaces):
        package = manifest(
            private=True,
            workspaces=workspaces,
            scripts={"build": "npm run build --workspaces"},
            devDependencies={"eslint": "^8", "next": "^14"},
        )
        assert detect({"package.json": package, "index.js": "//"}) is None

    def test_workspace_root_with_dependencies_is_an_app(self):
        package = manifest(workspaces=["packages/*"], dependencies={"pg": "^8"})
        assert detected({"package.json": package}).stack == "nodejs"

    @pytest.mark.parametrize(
        "package",
        [
            pytest.param(
                {
                    "scripts": {"build": "wp-scripts build", "start": "wp-scripts start"},
                    "devDependencies": {"@wordpress/scripts": "^27.1.0"},
                },
                id="wordpress-scripts",
            ),
            pytest.param(
                {"scripts": {"build": "webpack"}, "devDependencies": {"webpack": "^5"}},
                id="webpack",
            ),
            pytest.param(
                {
                    "scripts": {"start": "npx sass --watch scss:css"},
                    "devDependencies": {"sass": "^1"},
                },
                id="sass-watch",
            ),
            pytest.param({"name": "empty"}, id="nothing"),
        ],
    )
    def test_build_tooling_only_is_not_an_app(self, package):
        assert detect({"package.json": manifest(**package)}) is None

    @pytest.mark.parametrize(
        ("content", "problem"),
        [
            pytest.param("", "package.json: invalid JSON (Expecting value at line 1)", id="empty"),
            pytest.param(
                "{name: 'x'}",
                "package.json: invalid JSON (Expecting property name enclosed in double quotes "
                "at line 1)",
                id="javascript-not-json",
            ),
            pytest.param(
                b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "package.json: not UTF-8", id="binary"
            ),
            pytest.param("null", "package.json: not a JSON object", id="null"),
            pytest.param('"a string"', "package.json: not a JSON object", id="string"),
            pytest.param("[" * 100_000, "package.json: JSON nested too deeply", id="deep"),
        ],
    )
    def test_unusable_package_json_is_nodejs_at_030_with_the_problem(self, content, problem):
        found = detected({"package.json": content})
        assert (found.stack, found.confidence) == ("nodejs", 0.3)
        assert any(line.startswith(problem) for line in found.evidence)

    def test_truncated_package_json_says_it_is_too_large(self):
        package = manifest(dependencies={f"dep-{i}": "^1.0.0" for i in range(100)})
        found = detected({"package.json": package}, max_bytes=64)
        assert found.confidence == 0.3
        line = next(line for line in found.evidence if line.startswith("package.json:"))
        assert f"too large to parse ({len(package)} bytes; read capped at 64 bytes)" in line

    def test_unreadable_package_json_is_nodejs_at_030(self):
        found = detected({"package.json": ProbedFile(path="", error="permission denied")})
        assert (found.stack, found.confidence) == ("nodejs", 0.3)
        assert "package.json: permission denied" in found.evidence

    @pytest.mark.parametrize(
        "package",
        [
            pytest.param({"dependencies": "express"}, id="dependencies-string"),
            pytest.param({"dependencies": ["express"]}, id="dependencies-list"),
            pytest.param({"scripts": ["start"], "main": "x.js"}, id="scripts-list"),
            pytest.param({"engines": "node >= 20", "main": "x.js"}, id="engines-string"),
            pytest.param({"engines": {"node": 20}, "main": "x.js"}, id="engines-number"),
            pytest.param({"workspaces": "packages/*", "main": "x.js"}, id="workspaces-string"),
            pytest.param({"dependencies": {"express": None}}, id="express-null-range"),
            pytest.param({"scripts": {"start": None}, "main": "x.js"}, id="start-null"),
        ],
    )
    def test_odd_shapes_inside_package_json_never_raise(self, package):
        found = detect({"package.json": manifest(**package)})
        assert found is None or found.stack in {"nodejs", "express"}


# --------------------------------------------------------------------------------------------
# Parsing helpers


class TestVersionFromRange:
    @pytest.mark.parametrize(
        ("spec", "version"),
        [
            pytest.param("^14.2.3", "14.2.3", id="caret"),
            pytest.param("~4.18.2", "4.18.2", id="tilde"),
            pytest.param("14.2.3", "14.2.3", id="exact"),
            pytest.param(">=8.1", "8.1", id="at-least"),
            pytest.param(">= 20", "20", id="at-least-spaced"),
            pytest.param(">=8.1 <9", "8.1", id="bounded"),
            pytest.param(">=8.1,<9", "8.1", id="composer-and"),
            pytest.param("<5", None, id="only-upper-bound"),
            pytest.param("^7.3|^8.0", "7.3", id="composer-or"),
            pytest.param("^3 || ^4", "3", id="npm-or"),
            pytest.param("4.x", "4", id="x-range"),
            pytest.param("1.2.3 - 2.3.4", "1.2.3", id="hyphen-range"),
            pytest.param("v10.0.0", "10.0.0", id="leading-v"),
            pytest.param("^10.0@dev", "10.0", id="stability-flag"),
            pytest.param("14.3.0-canary.5", "14.3.0-canary.5", id="prerelease"),
            pytest.param("npm:next@^14.1.0", "14.1.0", id="alias"),
            pytest.param("*", None, id="any"),
            pytest.param("latest", None, id="tag"),
            pytest.param("dev-main", None, id="branch"),
            pytest.param("git+https://github.com/x/y.git#v1.0.0", None, id="git"),
            pytest.param("file:../lib", None, id="file"),
            pytest.param("workspace:*", None, id="workspace"),
            pytest.param("", None, id="empty"),
            pytest.param(14, None, id="not-a-string"),
        ],
    )
    def test_lowest_version_allowed_by_a_range(self, spec, version):
        assert version_from_range(spec) == version

    def test_yarn_lock_does_not_confuse_similar_names(self):
        assert yarn_lock_version(YARN_CLASSIC, "next-auth") == "4.24.7"
        assert yarn_lock_version(YARN_CLASSIC, "@next/env") == "14.2.1"
        assert yarn_lock_version(YARN_CLASSIC, "react") is None

    def test_pnpm_lock_does_not_confuse_similar_names(self):
        assert pnpm_lock_version(PNPM_V6, "next-auth") == "4.24.7"
        assert pnpm_lock_version(PNPM_V9, "@next/env") == "14.2.1"
        assert pnpm_lock_version(PNPM_V5, "react") is None


# --------------------------------------------------------------------------------------------
# Generated probes

# What a real application's files may hold, among the garbage the generated probes get.
_REALISTIC = (
    WP_VERSION_PHP,
    "<?php define('MULTISITE', true);",
    "<?php const VERSION = '10.48.4';",
    YARN_CLASSIC,
    PNPM_V6,
)


_DECLARED = {s.id for s in signatures.healer_stacks()}


class TestGeneratedProbes:
    @given(probe=hs.site_probes(realistic=_REALISTIC))
    def test_detection_never_raises_stays_within_bounds_and_is_repeatable(self, manager, probe):
        found = signatures.healer_detect(probe)
        assert signatures.healer_detect(probe) == found
        if found is not None:
            assert found.stack in _DECLARED
            assert 0.0 <= found.confidence <= 1.0
            assert found.evidence
            assert all(claim and not claim.startswith("/") for claim in found.claims)
        failures = len(manager.failures)
        through_manager = [d for d in manager.detect(probe) if d.plugin == PLUGIN]
        assert len(manager.failures) == failures, "the manager reported a plugin error"
        assert [attrs.evolve(d, plugin=None) for d in through_manager] == (
            [found] if found is not None else []
        )


# --------------------------------------------------------------------------------------------
# The engine with the real plugin


_ENGINE_STACKS = (*sorted(_DECLARED), "deno")


class TestEngine:
    @given(data=st.data())
    def test_ranking_is_best_first_whatever_order_detections_arrive_in(self, manager, data):
        detections = data.draw(hs.detection_lists(_ENGINE_STACKS))
        shuffled = data.draw(st.permutations(detections))
        stacks = manager.stacks()
        ranked = rank(detections, stacks)
        assert rank(shuffled, stacks) == ranked
        assert decide("/srv/app", shuffled, stacks) == decide("/srv/app", detections, stacks)
        confidences = [d.confidence for d in ranked]
        assert confidences == sorted(confidences, reverse=True)

    @pytest.mark.parametrize(
        ("child", "parent"),
        [
            pytest.param("nextjs", "nodejs", id="nextjs-over-nodejs"),
            pytest.param("express", "nodejs", id="express-over-nodejs"),
            pytest.param("laravel", "php", id="laravel-over-php"),
        ],
    )
    def test_a_child_beats_its_parent_on_a_tie(self, manager, child, parent):
        detections = [
            Detection(stack=parent, confidence=0.9, plugin="a-plugin"),
            Detection(stack=child, confidence=0.9, plugin="z-plugin"),
        ]
        outcome = decide("/srv/app", detections, manager.stacks())
        assert outcome.best is not None
        assert outcome.best.stack == child
        assert [d.stack for d in outcome.runners_up] == [parent]

    def test_higher_confidence_beats_a_child(self, manager):
        detections = [
            Detection(stack="nextjs", confidence=0.5, plugin="a"),
            Detection(stack="nodejs", confidence=0.9, plugin="b"),
        ]
        outcome = decide("/srv/app", detections, manager.stacks())
        assert outcome.best is not None
        assert outcome.best.stack == "nodejs"
        assert outcome.evidence[-1] == "also looks like nextjs (0.50)"

    def test_real_plugin_answers_through_the_manager(self, manager):
        probe = make_probe(next_app(**{"next.config.mjs": "export default {}"}))
        outcome = decide(probe.root, manager.detect(probe), manager.stacks())
        assert outcome.best is not None
        assert (outcome.best.stack, outcome.best.version, outcome.best.plugin) == (
            "nextjs",
            "14.2.3",
            PLUGIN,
        )
        assert outcome.method is DetectionMethod.AUTO

    def test_nothing_recognised_gives_no_best(self, manager):
        probe = make_probe({"package.json": manifest(devDependencies={"webpack": "^5"})})
        outcome = decide(probe.root, manager.detect(probe), manager.stacks())
        assert outcome.best is None
        assert outcome.evidence == ()

    def test_manual_override_pins_stack_and_version(self, manager):
        probe = make_probe(express_app())
        override = Override(stack="nodejs", version="20.11.1", method=DetectionMethod.MANUAL)
        outcome = decide(probe.root, manager.detect(probe), manager.stacks(), override)
        assert outcome.best is not None
        assert (outcome.best.stack, outcome.best.version, outcome.best.confidence) == (
            "nodejs",
            "20.11.1",
            1.0,
        )
        assert outcome.method is DetectionMethod.MANUAL
        assert outcome.best.evidence[0] == "stack and version pinned by an operator (MANUAL)"
        assert [d.stack for d in outcome.runners_up] == ["express"]

    def test_hybrid_override_pins_the_stack_and_keeps_the_detected_version(self, manager):
        probe = make_probe(express_app())
        override = Override(stack="express", version="9.9.9", method=DetectionMethod.HYBRID)
        outcome = decide(probe.root, manager.detect(probe), manager.stacks(), override)
        assert outcome.best is not None
        assert (outcome.best.stack, outcome.best.version, outcome.best.confidence) == (
            "express",
            "4.19.2",
            1.0,
        )
        assert outcome.method is DetectionMethod.HYBRID
        assert outcome.best.claims == ("public", "views", "routes", "src")
        assert outcome.runners_up == ()

    def test_hybrid_override_of_an_undetected_stack_has_no_version(self, manager):
        probe = make_probe(express_app())
        override = Override(stack="php", method=DetectionMethod.HYBRID)
        outcome = decide(probe.root, manager.detect(probe), manager.stacks(), override)
        assert outcome.best is not None
        assert (outcome.best.stack, outcome.best.version) == ("php", None)
        assert [d.stack for d in outcome.runners_up] == ["express"]

    def test_an_auto_override_is_refused(self):
        with pytest.raises(ValueError, match="MANUAL or HYBRID"):
            Override(stack="php", method=DetectionMethod.AUTO)
