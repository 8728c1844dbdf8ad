"""PHP fatal errors in log lines, and the plugin each one came from."""

from __future__ import annotations

import datetime as dt

from healer_wordpress import logs
from hypothesis import given
from hypothesis import strategies as st

SITE = "/srv/www/shop"
LINES = [
    "[26-Nov-2026 10:00:00 UTC] PHP Warning:  Undefined variable $x in "
    f"{SITE}/wp-content/plugins/seo/seo.php on line 4",
    "[26-Nov-2026 11:00:00 UTC] PHP Fatal error:  Uncaught RuntimeException: boom in "
    f"{SITE}/wp-content/plugins/cart/includes/cart.php:12",
    "Stack trace:",
    f"#0 {SITE}/wp-settings.php(453): include_once()",
    "[26-Nov-2026 11:05:00 Europe/Berlin] PHP Parse error:  syntax error, unexpected "
    f'token "}}" in {SITE}/wp-content/plugins/hello.php on line 3',
    "[Thu Nov 26 11:06:00.123 2026] [php:error] [pid 12] [client 10.0.0.1:5] PHP Fatal error:  "
    f"Allowed memory size exhausted in {SITE}/wp-includes/class-wpdb.php on line 2056",
    "[26-Nov-2026 11:07:00 UTC] PHP Fatal error:  Uncaught Error: x in "
    f"{SITE}/wp-content/mu-plugins/loader.php:3",
]


class TestFatals:
    def test_fatal_and_parse_errors_are_found_with_their_plugin_and_time(self):
        found = logs.fatals(LINES)
        assert [(f.kind, f.plugin, f.must_use, f.line) for f in found] == [
            ("Fatal error", "cart", False, 2),
            ("Parse error", "hello.php", False, 5),
            ("Fatal error", None, False, 6),
            ("Fatal error", "loader.php", True, 7),
        ]
        assert found[0].at == dt.datetime(2026, 11, 26, 11, 0, tzinfo=dt.UTC)
        assert found[1].at == dt.datetime(2026, 11, 26, 10, 5, tzinfo=dt.UTC)  # Berlin is +1
        assert found[2].at is None

    def test_a_custom_plugin_directory_is_recognised(self):
        line = "PHP Fatal error:  Uncaught Exception in /data/plugins/shop/shop.php:3"
        assert logs.fatals([line], plugin_dirs=("/data/plugins",))[0].plugin == "shop"

    def test_crashes_are_grouped_by_plugin_and_old_ones_left_out(self):
        found = logs.fatals(LINES * 2)
        since = dt.datetime(2026, 11, 26, 10, 30, tzinfo=dt.UTC)
        crashes = logs.plugin_crashes(found, since=since)
        assert [(c.plugin, c.count) for c in crashes] == [("cart", 2), ("loader.php", 2)]
        assert crashes[0].example.startswith("Uncaught RuntimeException: boom")

    @given(lines=st.lists(st.text(max_size=200), max_size=20))
    def test_any_lines_are_read_without_raising(self, lines):
        logs.plugin_crashes(logs.fatals(lines))
