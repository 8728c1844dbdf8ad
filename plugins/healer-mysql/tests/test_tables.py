"""Tables, pure: CHECK/REPAIR/OPTIMIZE TABLE output, the table listing, which engines REPAIR
applies to, fragmentation and the order of a bounded integrity run."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healer_mysql.parsing import unescape_batch
from healer_mysql.tables import (
    REPAIRABLE_ENGINES,
    TableInfo,
    admin_outcome,
    fragmented,
    integrity_order,
    parse_tables,
    table_verdicts,
)


def hexed(text):
    return text.encode("utf-8", "surrogateescape").hex().upper()


class TestCheckTableOutput:
    def test_reads_corrupt_and_sound_tables_from_one_statement(self):
        rows = [
            ["s.t", "check", "error", "Can't read key from filepos: 8192"],
            ["s.t", "check", "Error", "Index for table './s/t.MYI' is corrupt; try to repair it"],
            ["s.t", "check", "error", "Corrupt"],
            ["s.ok", "check", "status", "OK"],
            ["s.m", "check", "note", "The storage engine for the table doesn't support check"],
            ["s.gone", "check", "Error", "Table 's.gone' doesn't exist"],
            ["s.gone", "check", "status", "Operation failed"],
            ["s.a.b", "check", "status", "Table is already up to date"],
        ]
        verdicts = {v.table: v.verdict for v in table_verdicts("s", admin_outcome(rows))}
        assert verdicts == {
            "t": "corrupt", "ok": "ok", "m": "unsupported", "gone": "missing", "a.b": "ok",
        }  # fmt: skip

    def test_innodb_optimize_is_a_success(self):
        rows = [
            ["s.i", "optimize", "note", "Table does not support optimize, doing recreate + "
             "analyze instead"],
            ["s.i", "optimize", "status", "OK"],
        ]  # fmt: skip
        (outcome,) = admin_outcome(rows)
        assert outcome.ok
        assert not outcome.unsupported

    @given(st.lists(st.lists(st.text(), min_size=4, max_size=4)))
    def test_never_raises_and_keeps_every_table(self, rows):
        outcomes = admin_outcome(rows)
        assert {o.table for o in outcomes} == {unescape_batch(row[0]) for row in rows}


def table(**fields):
    """A table of schema ``s``, MyISAM with 100 bytes of data unless ``fields`` say otherwise."""
    defaults = {"schema": "s", "name": "t", "engine": "MyISAM", "data_length": 100, "data_free": 0}
    return TableInfo(**{**defaults, **fields})


class TestTables:
    def test_reads_a_table_the_server_could_not_open(self):
        row = [
            hexed("s"),
            hexed("t"),
            "NULL",
            "0",
            "0",
            hexed("Table './s/t' is marked as crashed and last (automatic?) repair failed"),
            "NULL",
        ]
        (info,) = parse_tables([row])
        assert (info.engine, info.crash_marked, info.repairable) == (None, True, True)

    @pytest.mark.parametrize("engine", sorted(REPAIRABLE_ENGINES))
    def test_repair_applies_to_myisam_aria_archive_and_csv(self, engine):
        assert table(engine=engine).repairable

    @given(st.text(), st.sampled_from(["InnoDB", "MEMORY", "MRG_MyISAM", "ROCKSDB", "BLACKHOLE"]))
    def test_never_to_innodb_or_an_engine_it_cannot_repair(self, comment, engine):
        assert not table(engine=engine, comment=comment).repairable

    def test_an_unopenable_table_without_a_crash_mark_is_not_repairable(self):
        assert not table(engine=None, comment="Incorrect information in file").repairable

    def test_fragmented_needs_both_bytes_and_ratio(self):
        tables = [
            table(name="big", data_length=100, data_free=80),
            table(name="small-free", data_length=100, data_free=10),
            table(name="under-min", data_length=1, data_free=40),
        ]
        assert [t.name for t in fragmented(tables, min_bytes=50, ratio=0.5)] == ["big"]

    def test_innodb_tables_sharing_a_tablespaces_free_space_are_left_out(self):
        tables = [
            table(engine="InnoDB", name="a", data_free=7 << 20),
            table(engine="InnoDB", name="b", data_free=7 << 20),
            table(engine="InnoDB", name="own", data_free=5 << 20),
        ]
        assert [t.name for t in fragmented(tables, min_bytes=1, ratio=0.1)] == ["own"]

    @given(
        st.lists(
            st.builds(table, engine=st.sampled_from(["InnoDB", "MyISAM", "Aria", None]),
                      data_length=st.integers(0, 2**40), data_free=st.integers(0, 2**40)),
        ),
        st.integers(0, 2**30), st.floats(0, 10),
    )  # fmt: skip
    def test_every_fragmented_table_meets_both_thresholds(self, tables, min_bytes, ratio):
        for found in fragmented(tables, min_bytes=min_bytes, ratio=ratio):
            assert found.data_free >= min_bytes
            assert found.data_free >= ratio * found.data_length

    def test_reads_when_a_table_was_last_checked(self):
        row = [hexed("s"), hexed("t"), "MyISAM", "10", "0", "", "1764139139.000000"]
        assert parse_tables([row])[0].checked_at == 1764139139

    @given(
        st.lists(
            st.builds(table, engine=st.sampled_from(["InnoDB", "MyISAM", "Aria", "MEMORY"]),
                      name=st.text(max_size=3), checked_at=st.none() | st.integers(0, 10**10)),
        ),
        st.integers(0, 10**6),
    )  # fmt: skip
    def test_integrity_order_is_a_permutation_with_crash_prone_tables_first(self, tables, rotation):
        ordered = integrity_order(tables, rotation)
        assert sorted(map(repr, ordered)) == sorted(map(repr, tables))
        prone = [t.repairable for t in ordered]
        assert prone == sorted(prone, reverse=True)
        stamps = [(t.checked_at is not None, t.checked_at or 0) for t in ordered if t.repairable]
        assert stamps == sorted(stamps)

    def test_successive_hours_move_along_the_innodb_tables(self):
        tables = [table(engine="InnoDB", name=n) for n in "abc"]
        assert [t.name for t in integrity_order(tables, 0)[:2]] == ["a", "b"]
        assert [t.name for t in integrity_order(tables, 1)[:2]] == ["b", "c"]
