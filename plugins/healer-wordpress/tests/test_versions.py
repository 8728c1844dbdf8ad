"""Versions: version.php read as PHP source, PHP's version_compare, plugin and theme headers."""

from __future__ import annotations

import functools
import itertools
import json
import subprocess
from pathlib import Path

import pytest
from healer_wordpress import versions
from hypothesis import given, settings
from hypothesis import strategies as st

DEBIAN_VERSION_PHP = Path("/usr/share/wordpress/wp-includes/version.php")

PARTS = st.one_of(
    st.integers(0, 30).map(str),
    st.sampled_from(["dev", "alpha", "a", "beta", "b", "RC", "rc", "pl", "p", "x", "src"]),
)
VERSIONS = st.lists(PARTS, min_size=1, max_size=5).flatmap(
    lambda parts: st.lists(st.sampled_from([".", "-", "_", "+", ""]), min_size=len(parts) - 1,
                           max_size=len(parts) - 1).map(
        lambda seps: parts[0] + "".join(s + p for s, p in zip(seps, parts[1:], strict=True))
    )
)  # fmt: skip


class TestCoreVersion:
    def test_debian_version_php_gives_version_and_schema(self):
        found = versions.core_version(DEBIAN_VERSION_PHP.read_text())
        php = subprocess.run(
            ["php", "-r", "include $argv[1]; echo json_encode([$wp_version, $wp_db_version]);",
             "--", str(DEBIAN_VERSION_PHP)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert [found.version, found.db_version] == json.loads(php.stdout)
        assert found.required_php

    @pytest.mark.parametrize(
        ("text", "version"),
        [
            pytest.param("<?php $wp_version = '6.5-RC1';", "6.5-RC1", id="rc"),
            pytest.param('<?php $wp_version = "6.4.2"; // x', "6.4.2", id="double-quoted"),
            pytest.param(
                "<?php // $wp_version = '9.9';\n$wp_version = '6.0';", "6.0", id="comment"
            ),
            pytest.param("<?php $wp_version = get_version();", None, id="computed"),
            pytest.param("<?php $wp_version = '';", None, id="empty"),
            pytest.param("not php at all", None, id="garbage"),
        ],
    )
    def test_version_is_a_plain_literal_or_none(self, text, version):
        assert versions.core_version(text).version == version


class TestCompare:
    @pytest.mark.parametrize(
        ("left", "right", "expected"),
        [
            pytest.param("6.5-RC1", "6.5", -1, id="rc-before-release"),
            pytest.param("6.5", "6.5.0", -1, id="longer-is-newer"),
            pytest.param("6.5-beta2", "6.5-RC1", -1, id="beta-before-rc"),
            pytest.param("6.10", "6.9", 1, id="numeric-not-lexical"),
            pytest.param("6.1.9", "6.1.9", 0, id="equal"),
        ],
    )
    def test_known_orderings(self, left, right, expected):
        assert versions.compare(left, right) == expected

    @settings(deadline=None, max_examples=15)
    @given(pairs=st.lists(st.tuples(VERSIONS, VERSIONS), min_size=50, max_size=50))
    def test_compare_agrees_with_php_version_compare(self, pairs):
        said = subprocess.run(
            ["php", "-r", "$o = []; foreach (json_decode(stream_get_contents(STDIN)) as [$a, $b])"
             " { $o[] = version_compare($a, $b); } echo json_encode($o);"],
            input=json.dumps(pairs), capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert [versions.compare(a, b) for a, b in pairs] == json.loads(said.stdout)

    @given(a=VERSIONS, b=VERSIONS)
    def test_compare_is_antisymmetric(self, a, b):
        assert versions.compare(a, b) == -versions.compare(b, a)

    @given(found=st.lists(VERSIONS, max_size=8))
    def test_sorting_with_compare_puts_the_newest_last(self, found):
        ordered = sorted(found, key=functools.cmp_to_key(versions.compare))
        for earlier, later in itertools.pairwise(ordered):
            assert versions.compare(earlier, later) <= 0


class TestHeaders:
    def test_akismet_header_is_read_as_wordpress_reads_it(self):
        text = Path("/usr/share/wordpress/wp-content/plugins/akismet/akismet.php").read_text()
        assert versions.file_header(text, "Version")
        assert versions.file_header(text, "Plugin Name") == "Akismet Anti-Spam"

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            pytest.param("/*\nTheme Name: X\nVersion: 1.2 */", "1.2", id="comment-close"),
            pytest.param("<?php\n * version:   3.0.1\r\n", "3.0.1", id="lowercase-crlf"),
            pytest.param("# Version: 2 ?>", "2", id="hash-and-close-tag"),
            pytest.param("Version:", None, id="empty"),
            pytest.param("x" * 9000 + "\nVersion: 9", None, id="past-8-kib"),
        ],
    )
    def test_header_values(self, text, value):
        assert versions.file_header(text, "Version") == value
