"""The pure readers of what the server says: versions, status pairs, process lists, option
files and settings. Examples first, then hypothesis for the rules."""

from __future__ import annotations

import contextlib

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from healer_mysql.parsing import (
    SYSTEM_USERS,
    ProcessRow,
    client_error_code,
    parse_option_file,
    parse_pairs,
    parse_processlist,
    parse_systemctl_show,
    parse_version,
    server_option,
    sql_text,
    unescape_batch,
    unhex,
    upgrade_info_version,
)
from healer_mysql.settings import Settings, SettingsError


def hexed(text):
    return text.encode("utf-8", "surrogateescape").hex().upper() if text is not None else "NULL"


class TestVersions:
    @pytest.mark.parametrize(
        ("text", "short", "flavour", "raw"),
        [
            pytest.param("10.11.19-MariaDB", "10.11.19", "MariaDB", "10.11.19-MariaDB", id="info"),
            pytest.param(
                "10.11.19-MariaDB-0+deb12u1", "10.11.19", "MariaDB", "10.11.19-MariaDB-0+deb12u1",
                id="debian",
            ),
            pytest.param(
                "5.5.5-10.6.16-MariaDB-log", "10.6.16", "MariaDB", "10.6.16-MariaDB-log",
                id="replication-prefix",
            ),
            pytest.param("8.0.36-0ubuntu0.22.04.1", "8.0.36", "MySQL", "8.0.36-0ubuntu0.22.04.1",
                         id="ubuntu-mysql"),
            pytest.param("5.7.44-log", "5.7.44", "MySQL", "5.7.44-log", id="mysql-log"),
            pytest.param("8.0.35-27", "8.0.35", "MySQL", "8.0.35-27", id="bare-build"),
            pytest.param("8.0.35-27-Percona", "8.0.35", "Percona Server", "8.0.35-27-Percona",
                         id="percona"),
            pytest.param("  11.4.2-MariaDB\n", "11.4.2", "MariaDB", "11.4.2-MariaDB", id="spaces"),
        ],
    )  # fmt: skip
    def test_reads_the_version_strings_servers_give(self, text, short, flavour, raw):
        version = parse_version(text)
        assert version is not None
        assert (version.short, version.flavour, version.raw) == (short, flavour, raw)

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("", id="empty"),
            pytest.param("MariaDB", id="no-number"),
            pytest.param("10.11", id="two-parts"),
        ],
    )
    def test_says_none_when_there_is_no_version(self, text):
        assert parse_version(text) is None

    def test_reads_mysql_upgrade_info_even_nul_padded(self):
        assert upgrade_info_version(b"10.11.19-MariaDB\0\0\0").raw == "10.11.19-MariaDB"
        assert upgrade_info_version(b"\xff\xfe garbage") is None

    @given(st.tuples(*[st.integers(0, 9999)] * 3), st.sampled_from(["", "-MariaDB", "-log"]))
    def test_round_trips_any_version_number(self, number, suffix):
        text = ".".join(map(str, number)) + suffix
        version = parse_version(text)
        assert version is not None
        assert version.number == number
        assert version.raw == text

    @given(st.text())
    def test_never_raises_on_any_text(self, text):
        parse_version(text)

    @given(st.binary())
    def test_never_raises_on_any_upgrade_info_bytes(self, data):
        upgrade_info_version(data)


class TestBatchOutput:
    @given(st.text())
    def test_unhex_inverts_the_servers_hex(self, text):
        assert unhex(hexed(text)) == text

    def test_unhex_says_none_for_null_and_non_hex(self):
        assert unhex("NULL") is None
        assert unhex("ABC") is None
        assert unhex("zz") is None

    @given(st.text(alphabet=st.characters(blacklist_characters="\\")))
    def test_unescape_leaves_plain_values_alone(self, text):
        assert unescape_batch(text) == text

    def test_unescape_undoes_the_clients_escapes(self):
        assert unescape_batch(r"a\tb\nc\\d\0") == "a\tb\nc\\d\0"

    @given(st.text())
    def test_sql_text_holds_only_hex_digits_between_its_quotes(self, text):
        literal = sql_text(text)
        inner = literal.removeprefix("CONVERT(X'").removesuffix("' USING utf8mb4)")
        assert all(char in "0123456789abcdef" for char in inner)
        assert bytes.fromhex(inner).decode("utf-8", "surrogateescape") == text

    def test_status_rows_become_a_mapping_with_lowercase_names(self):
        rows = [["Threads_connected", "8"], ["Uptime", "3780"], ["odd"], ["a", "b", "c"], []]
        assert parse_pairs(rows) == {"threads_connected": "8", "uptime": "3780", "odd": ""}

    @given(st.lists(st.lists(st.text(), max_size=4)))
    def test_pairs_never_raise_and_keep_every_two_field_row(self, rows):
        pairs = parse_pairs(rows)
        for row in rows:
            if len(row) == 2 and row[0]:
                assert row[0].lower() in pairs

    @pytest.mark.parametrize(
        ("reason", "code"),
        [
            pytest.param(
                "ERROR 2002 (HY000): Can't connect to local server through socket "
                "'/run/mysqld/mysqld.sock' (2)", 2002, id="socket",
            ),
            pytest.param("ERROR 1045 (28000): Access denied for user", 1045, id="denied"),
            pytest.param("mysqldump: Got error: 1044: Access denied", 1044, id="mysqldump"),
            pytest.param("mktemp failed", None, id="none"),
        ],
    )  # fmt: skip
    def test_finds_the_error_number_in_a_client_complaint(self, reason, code):
        assert client_error_code(reason) == code


ROW = {
    "id": 7, "user": "app", "host": "localhost", "db": "shop", "command": "Query", "time": 90,
    "state": "User sleep", "info": "SELECT SLEEP(300)",
}  # fmt: skip


def processlist_row(**changes):
    """A row as the plugin selects it (names hex-encoded), from ROW with ``changes``."""
    f = {**ROW, **changes}
    return [
        str(f["id"]), hexed(f["user"]), hexed(f["host"]), hexed(f["db"]), f["command"],
        str(f["time"]), hexed(f["state"]), hexed(f["info"]),
    ]  # fmt: skip


class TestProcessList:
    def test_reads_a_row_selected_with_the_plugins_columns(self):
        (row,) = parse_processlist([processlist_row(db=None, info=None)])
        assert row == ProcessRow(
            id=7, user="app", host="localhost", db=None, command="Query", time=90,
            state="User sleep", info=None,
        )  # fmt: skip

    def test_skips_malformed_rows(self):
        good = processlist_row()
        assert parse_processlist([good[:7], ["x", *good[1:]], [*good[:5], "soon", *good[6:]]]) == []

    @pytest.mark.parametrize(
        ("changes", "runaway"),
        [
            pytest.param({}, True, id="client-query"),
            pytest.param({"command": "Execute"}, True, id="prepared-statement"),
            pytest.param({"time": 60}, False, id="at-the-threshold"),
            pytest.param({"command": "Sleep"}, False, id="idle-connection"),
            pytest.param({"command": "Killed"}, False, id="being-killed"),
            pytest.param({"command": "Binlog Dump"}, False, id="replica-feed"),
            pytest.param({"command": "Slave_SQL", "user": "system user"}, False, id="replica"),
            pytest.param({"user": "system user"}, False, id="mysql8-applier-shows-query"),
            pytest.param({"user": "event_scheduler", "command": "Daemon"}, False, id="events"),
            pytest.param({"info": "REPAIR TABLE `t`"}, False, id="repair-in-progress"),
            pytest.param({"info": "check table t quick"}, False, id="check-in-progress"),
            pytest.param({"info": "SELECT /*!40001 SQL_NO_CACHE */ * FROM `t`"}, False,
                         id="mysqldump"),
            pytest.param({"db": "other"}, False, id="other-application"),
            pytest.param({"db": None}, False, id="no-default-schema"),
        ],
    )  # fmt: skip
    def test_a_runaway_is_a_clients_statement_over_the_threshold(self, changes, runaway):
        (row,) = parse_processlist([processlist_row(**changes)])
        assert row.is_runaway(60, frozenset({"shop"})) is runaway

    def test_without_schemas_a_statement_anywhere_counts(self):
        (row,) = parse_processlist([processlist_row(db=None)])
        assert row.is_runaway(60, None)

    @given(
        st.fixed_dictionaries({
            "id": st.integers(1, 2**40), "user": st.text(), "host": st.text(),
            "db": st.none() | st.text(),
            "command": st.sampled_from(["Query", "Execute", "Sleep", "Killed", "Daemon"]),
            "time": st.integers(-5, 10**6), "state": st.text(), "info": st.none() | st.text(),
        })
    )  # fmt: skip
    def test_round_trips_any_row(self, fields):
        (row,) = parse_processlist([processlist_row(**fields)])
        assert attrs.asdict(row) == {**fields, "time": max(0, fields["time"])}

    @given(st.lists(st.lists(st.text(), max_size=9)))
    def test_never_raises_on_any_rows(self, rows):
        parse_processlist(rows)

    @given(st.sampled_from(sorted(SYSTEM_USERS)), st.integers(0, 10**6))
    def test_never_counts_a_server_thread(self, user, time):
        (row,) = parse_processlist([processlist_row(user=user, time=time)])
        assert not row.is_runaway(1, None)


class TestOptionFiles:
    DEBIAN = (
        "[client-server]\nsocket = /run/mysqld/mysqld.sock\n[mysqld]\nuser = mysql\n"
        "datadir = /var/lib/mysql\nport=3306\nskip-name-resolve\n"
        "# comment\n!includedir /etc/mysql/conf.d/\n"
    )

    def test_reads_sections_options_flags_and_includes(self):
        sections = parse_option_file(self.DEBIAN)
        assert sections["mysqld"]["datadir"] == "/var/lib/mysql"
        assert sections["mysqld"]["skip_name_resolve"] == ""
        assert sections["!include"] == {"/etc/mysql/conf.d/": "!includedir"}
        assert server_option(sections, "socket") == "/run/mysqld/mysqld.sock"
        assert server_option(sections, "port") == "3306"

    def test_strips_quotes_and_trailing_comments(self):
        sections = parse_option_file('[mysqld]\ndatadir = "/data/my sql"\nport = 3307 # alt\n')
        assert sections["mysqld"] == {"datadir": "/data/my sql", "port": "3307"}

    @given(st.text())
    def test_never_raises_on_any_text(self, text):
        parse_option_file(text)

    def test_reads_systemctl_show_for_several_units(self):
        text = (
            "Id=mariadb.service\nLoadState=loaded\nActiveState=failed\n\n"
            "Id=mysqld.service\nLoadState=not-found\nActiveState=inactive\n"
        )
        assert parse_systemctl_show(text) == [
            {"Id": "mariadb.service", "LoadState": "loaded", "ActiveState": "failed"},
            {"Id": "mysqld.service", "LoadState": "not-found", "ActiveState": "inactive"},
        ]


class TestSettings:
    def test_defaults_cover_every_non_system_schema(self):
        assert Settings.from_metadata({}) == Settings()
        assert Settings().schema_set is None

    def test_reads_schemas_from_a_list_or_a_comma_separated_string(self):
        assert Settings.from_metadata({"mysql_schemas": "shop, blog,shop"}).schemas == (
            "shop", "blog",
        )  # fmt: skip
        assert Settings.from_metadata({"mysql_schemas": ["shop"]}).schema_set == {"shop"}

    @pytest.mark.parametrize(
        ("metadata", "message"),
        [
            pytest.param({"mysql_schemas": ["mysql"]}, "server's own", id="system-schema"),
            pytest.param({"mysql_schemas": 3}, "list of names", id="not-a-list"),
            pytest.param({"mysql_schemas": ""}, "names no schema", id="empty"),
            pytest.param({"mysql_long_query_seconds": "soon"}, "mysql_long_query_seconds",
                         id="not-a-number"),
            pytest.param({"mysql_long_query_seconds": 0}, "at least 1", id="too-small"),
            pytest.param({"mysql_check_tables_max": True}, "mysql_check_tables_max", id="bool"),
        ],
    )  # fmt: skip
    def test_refuses_unusable_values_naming_the_key(self, metadata, message):
        with pytest.raises(SettingsError, match=message):
            Settings.from_metadata(metadata)

    @given(st.dictionaries(st.sampled_from([
        "mysql_schemas", "mysql_long_query_seconds", "mysql_check_tables_max",
        "mysql_fragmentation_ratio"]), st.none() | st.integers() | st.floats() | st.text()
        | st.lists(st.text())))  # fmt: skip
    def test_either_reads_or_refuses_never_anything_else(self, metadata):
        with contextlib.suppress(SettingsError):
            Settings.from_metadata(metadata)
