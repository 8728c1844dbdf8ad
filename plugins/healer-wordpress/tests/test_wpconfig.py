"""Reading wp-config.php without running it, and the one edit the healer makes to it.

Literal strings are checked against PHP itself: generated strings are written as PHP literals,
PHP prints what it reads, and the parser must read the same.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from healer_wordpress import php, site, wpconfig
from hypothesis import given, settings
from hypothesis import strategies as st

SAMPLE = Path("/usr/share/wordpress/wp-config-sample.php")


def config(*lines: str) -> str:
    return "<?php\n" + "\n".join(lines) + "\nrequire_once ABSPATH . 'wp-settings.php';\n"


STANDARD = config(
    "define( 'DB_NAME', 'shop' );",
    "define( 'DB_USER', \"shop_user\" );",
    "define( 'DB_PASSWORD', 'p\\'a\\\\ss' );",
    "define( 'DB_HOST', 'localhost:/run/mysqld/mysqld.sock' );",
    "$table_prefix = 'wp_';",
    "define( 'WP_DEBUG', false );",
)


def values(source: php.Source) -> dict[str, object]:
    return {d.name: d.value for d in source.defines}


class TestLiterals:
    @pytest.mark.parametrize(
        ("literal", "value"),
        [
            pytest.param("'it\\'s'", "it's", id="single-escaped-quote"),
            pytest.param("'back\\\\slash'", "back\\slash", id="single-escaped-backslash"),
            pytest.param("'keep\\n'", "keep\\n", id="single-no-other-escapes"),
            pytest.param('"tab\\there"', "tab\there", id="double-tab"),
            pytest.param('"\\x41\\101\\u{e9}"', "AAé", id="double-hex-octal-unicode"),
            pytest.param('"\\$not_a_var"', "$not_a_var", id="double-escaped-dollar"),
            pytest.param('"\\q"', "\\q", id="double-unknown-escape-kept"),
            pytest.param("'a' . 'b' . 1 . true . null", "ab11", id="concatenation"),
            pytest.param("-3", -3, id="negative"),
            pytest.param("0x1F", 31, id="hex-int"),
            pytest.param("0755", 0o755, id="octal-int"),
            pytest.param("1_000", 1000, id="underscored-int"),
            pytest.param("1.5", 1.5, id="float"),
            pytest.param("TRUE", True, id="true-any-case"),
            pytest.param("\\false", False, id="namespaced-false"),
            pytest.param("NULL", None, id="null"),
        ],
    )
    def test_literal_values_are_read_as_php_reads_them(self, literal, value):
        assert values(php.parse(f"<?php define('X', {literal});")) == {"X": value}

    @pytest.mark.parametrize(
        ("expression", "reason"),
        [
            pytest.param("getenv('DB')", "calls getenv()", id="function"),
            pytest.param("$db_name", "uses the variable $db_name", id="variable"),
            pytest.param("__DIR__ . '/x'", "uses __DIR__", id="magic-constant"),
            pytest.param("DB_PREFIX . 'x'", "uses the constant DB_PREFIX", id="constant"),
            pytest.param('"host-$suffix"', "interpolates variables into a string", id="interp"),
            pytest.param("'a' . 1.5", "concatenates a float", id="float-concat"),
            pytest.param("`hostname`", "runs a shell command", id="backticks"),
            pytest.param("$_ENV['X'] ?? 'y'", "uses the variable $_ENV", id="coalesce"),
        ],
    )
    def test_computed_values_are_dynamic_with_the_reason(self, expression, reason):
        found = php.parse(f"<?php define('X', {expression});").defines[0].value
        assert found == php.Dynamic(reason)

    @settings(deadline=None, max_examples=15)  # each example is 80 literals through PHP
    @given(text=st.lists(st.text(min_size=0, max_size=12), min_size=40, max_size=40))
    def test_literals_read_like_php_reads_them(self, text):
        """Each string is written once single-quoted and once double-quoted (with escapes);
        PHP and the parser must agree on both."""
        literals = []
        for value in text:
            single = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            double = '"' + "".join(_double(c) for c in value) + '"'
            literals += [single, double]
        source = "<?php\n" + "\n".join(
            f"define('C{i}', {literal});" for i, literal in enumerate(literals)
        )
        said = subprocess.run(
            ["php", "-r", _PRINT_CONSTANTS, "--", str(len(literals))],
            input="?>" + source, capture_output=True, text=True, check=True,
        )  # fmt: skip
        expected = json.loads(said.stdout)
        got = [d.value for d in php.parse(source).defines]
        assert got == expected


_PRINT_CONSTANTS = (
    "eval(stream_get_contents(STDIN)); $o = [];"
    " for ($i = 0; $i < (int) $argv[1]; $i++) { $o[] = constant('C' . $i); }"
    " echo json_encode($o, JSON_INVALID_UTF8_IGNORE);"
)


def _double(char: str) -> str:
    special = {"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\t": "\\t"}
    if char in special:
        return special[char]
    if ord(char) < 0x20 or 0xD800 <= ord(char) <= 0xDFFF:
        return f"\\u{{{ord(char):x}}}" if ord(char) >= 0x20 else f"\\x{ord(char):02x}"
    return char


class TestStatements:
    def test_comments_hide_defines_in_every_style(self):
        source = php.parse(
            "<?php\n// define('A', 1);\n# define('B', 2);\n/* define('C', 3); */\n"
            "define('D', 4); // trailing\n"
        )
        assert values(source) == {"D": 4}

    def test_a_define_inside_a_string_is_not_a_define(self):
        assert values(php.parse("<?php $x = \"define('A', 1);\"; define('B', 2);")) == {"B": 2}

    def test_conditional_defines_are_marked(self):
        source = php.parse(
            "<?php if (!defined('A')) define('A', 1);\n"
            "if ($x) { define('B', 2); } else { define('B', 3); }\ndefine('C', 4);"
        )
        assert [(d.name, d.conditional) for d in source.defines] == [
            ("A", True),
            ("B", True),
            ("B", True),
            ("C", False),
        ]

    def test_includes_other_than_wp_settings_are_listed(self):
        source = php.parse(config("require_once __DIR__ . '/local.php';", "include 'x.php';"))
        assert source.includes == ("require_once at line 2", "include at line 3")
        assert source.bootstraps

    def test_an_unterminated_string_is_a_problem_not_an_exception(self):
        source = php.parse("<?php define('A', 1);\ndefine('B', 'oops);\n")
        assert source.problems == ("unterminated string at line 2",)
        assert values(source) == {"A": 1}

    def test_methods_named_define_are_not_defines(self):
        assert php.parse("<?php $o->define('A', 1); Foo::define('B', 2);").defines == ()

    @settings(deadline=None)
    @given(text=st.text(max_size=300))
    def test_any_text_parses_without_raising_and_tokens_cover_it(self, text):
        tokens = list(php.tokenize(text))
        assert "".join(t.text for t in tokens) == text
        php.parse(text)
        wpconfig.static_settings(php.parse(text))


class TestSettings:
    def test_the_debian_sample_is_static(self):
        settings_ = wpconfig.static_settings(php.parse(SAMPLE.read_text()))
        assert isinstance(settings_, wpconfig.Settings)
        assert settings_.get("DB_NAME") == "database_name_here"
        assert settings_.db_password == "password_here"  # noqa: S105 - the sample's placeholder
        assert settings_.table_prefix == "wp_"
        assert settings_.flag("WP_DEBUG") is False

    def test_secrets_never_enter_the_constants_and_the_password_has_no_repr(self):
        settings_ = wpconfig.static_settings(php.parse(STANDARD + "define('AUTH_KEY', 'k');"))
        assert isinstance(settings_, wpconfig.Settings)
        assert "DB_PASSWORD" not in settings_.constants
        assert "AUTH_KEY" not in settings_.constants
        assert settings_.db_password == "p'a\\ss"  # noqa: S105 - a test value
        assert "p'a" not in repr(settings_)

    @pytest.mark.parametrize(
        ("extra", "reason"),
        [
            pytest.param(
                "define('WP_DEBUG', getenv('DEBUG'));", "WP_DEBUG calls getenv()", id="getenv"
            ),
            pytest.param(
                "require __DIR__ . '/secrets.php';", "includes another file", id="include"
            ),
            pytest.param(
                "if ($x) { define('WP_DEBUG', true); }", "defined conditionally", id="condition"
            ),
            pytest.param("define($name, 1);", "computes the name of a constant", id="computed"),
            pytest.param("$table_prefix = 'x_';", "$table_prefix is set 2 times", id="prefix-2"),
        ],
    )
    def test_dynamic_configs_say_why_php_must_be_asked(self, extra, reason):
        found = wpconfig.static_settings(
            php.parse(STANDARD.replace("define( 'WP_DEBUG', false );", extra))
        )
        assert isinstance(found, tuple)
        assert any(reason in why for why in found), found

    def test_settings_from_php_decode_hex_strings_and_drop_secrets(self):
        document = site._php_document(
            b"noise\n@@healer-wp-config@@"
            + json.dumps(
                {
                    "constants": {
                        "DB_NAME": {"s": b"shop".hex()},
                        "DB_PASSWORD": {"s": b"\xffpw".hex()},
                        "SECURE_AUTH_SALT": {"s": b"x".hex()},
                        "WP_DEBUG": True,
                    },
                    "table_prefix": "wp_",
                }
            ).encode()
        )
        found = wpconfig.settings_from_php(document, notes=("because",))
        assert found.get("DB_NAME") == "shop"
        assert found.db_password == b"\xffpw".decode("utf-8", "surrogateescape")
        assert "SECURE_AUTH_SALT" not in found.constants
        assert (found.source, found.notes, found.flag("WP_DEBUG")) == ("php", ("because",), True)


class TestDbHost:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param("localhost", ("localhost", None, None), id="plain"),
            pytest.param("db.internal:3307", ("db.internal", 3307, None), id="port"),
            pytest.param(
                "localhost:/run/mysqld/m.sock",
                ("localhost", None, "/run/mysqld/m.sock"),
                id="socket",
            ),
            pytest.param(
                "127.0.0.1:3306:/tmp/s.sock", ("127.0.0.1", 3306, "/tmp/s.sock"), id="both"
            ),
            pytest.param("[::1]:3306", ("::1", 3306, None), id="ipv6"),
            pytest.param(":/tmp/s.sock", ("localhost", None, "/tmp/s.sock"), id="socket-only"),
            pytest.param("", ("localhost", None, None), id="empty"),
        ],
    )
    def test_db_host_is_split_as_wordpress_splits_it(self, value, expected):
        found = wpconfig.parse_db_host(value)
        assert (found.host, found.port, found.socket) == expected


class TestSetFalse:
    def test_only_the_value_changes(self):
        text = STANDARD.replace("'WP_DEBUG', false", "'WP_DEBUG', true") + (
            'define("WP_DEBUG_DISPLAY",  TRUE /* shown */ );\n'
        )
        edit = wpconfig.set_false(text, ["WP_DEBUG", "WP_DEBUG_DISPLAY"])
        assert edit.changed == ("WP_DEBUG (line 7)", "WP_DEBUG_DISPLAY (line 9)")
        expected = text.replace("'WP_DEBUG', true", "'WP_DEBUG', false").replace(
            "TRUE /* shown */", "false /* shown */"
        )
        assert edit.text == expected

    def test_computed_values_are_refused_never_rewritten(self):
        text = config("define('WP_DEBUG', getenv('WP_DEBUG') === 'on');")
        edit = wpconfig.set_false(text, ["WP_DEBUG"])
        assert edit.text == text
        assert edit.refused == (
            "WP_DEBUG (line 2) calls getenv(): change it where its value comes from",
        )

    def test_false_values_and_commented_defines_are_left_alone(self):
        text = config("// define('WP_DEBUG', true);", "define('WP_DEBUG', 0);")
        assert wpconfig.set_false(text, ["WP_DEBUG"]) == wpconfig.Edit(text=text)

    @settings(deadline=None)
    @given(
        before=st.text(alphabet=st.characters(exclude_characters="'\"\\/#?<>`$"), max_size=40),
        after=st.text(alphabet=st.characters(exclude_characters="'\"\\/#?<>`$"), max_size=40),
        value=st.sampled_from(["true", "1", "'yes'", "TRUE", '"on"']),
    )
    def test_every_byte_outside_the_value_is_kept(self, before, after, value):
        text = f"<?php\n/*{before}*/ define( 'WP_DEBUG', {value} ); /*{after}*/\n"
        edit = wpconfig.set_false(text, ["WP_DEBUG"])
        assert edit.text == text.replace(f"{value} )", "false )", 1)
        assert values(php.parse(edit.text)) == {"WP_DEBUG": False}
