"""PHP's serialize() format: read and written like PHP, proven against PHP itself."""

from __future__ import annotations

import contextlib
import json
import math
import subprocess

import pytest
from healer_wordpress.phpserial import PhpObject, PhpSerialError, dumps, loads, maybe_loads
from hypothesis import given, settings
from hypothesis import strategies as st

KEYS = st.one_of(st.integers(-(2**31), 2**31), st.text(max_size=8))
# A NUL starts PHP's mangled names of protected and private properties (tested on their own).
NAMES = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=8)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**62), 2**62),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.dictionaries(KEYS, inner, max_size=4)
        | st.builds(
            PhpObject,
            class_name=st.just("stdClass"),
            properties=st.dictionaries(NAMES, inner, max_size=4),
        )
    ),
    max_leaves=15,
)


def php(code: str, data: str) -> str:
    done = subprocess.run(
        ["php", "-r", code], input=data, capture_output=True, text=True, check=True
    )
    return done.stdout


def plain(value):
    """A value as PHP's json_encode shows it (objects as their properties)."""
    if isinstance(value, PhpObject):
        return {str(k): plain(v) for k, v in value.properties.items()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


class TestRoundTrip:
    @given(value=VALUES)
    def test_loads_reads_back_what_dumps_wrote(self, value):
        assert loads(dumps(value)) == value

    @given(data=st.binary(max_size=200))
    def test_garbage_is_refused_with_php_serial_error_only(self, data):
        with contextlib.suppress(PhpSerialError):
            loads(data)

    def test_a_list_is_written_as_a_php_array(self):
        assert dumps(["a/a.php", "b.php"]) == b'a:2:{i:0;s:7:"a/a.php";i:1;s:5:"b.php";}'

    def test_string_lengths_count_bytes_not_characters(self):
        assert dumps("é€") == b's:5:"\xc3\xa9\xe2\x82\xac";'
        assert loads(b's:5:"\xc3\xa9\xe2\x82\xac";') == "é€"

    def test_bytes_that_are_not_utf8_survive_the_round_trip(self):
        raw = b's:3:"\xff\x00\xfe";'
        assert dumps(loads(raw)) == raw


class TestAgainstPhp:
    @settings(deadline=None, max_examples=10)
    @given(values=st.lists(VALUES, min_size=20, max_size=20))
    def test_php_unserializes_what_dumps_writes(self, values):
        """PHP reads our bytes to the same structure (compared through json_encode)."""
        payload = json.dumps([dumps(v).decode("utf-8") for v in values])
        said = php(
            "$o = []; foreach (json_decode(stream_get_contents(STDIN)) as $s) {"
            " $v = unserialize($s); if ($v === false && $s !== 'b:0;') { exit(3); }"
            " $o[] = $v; } echo json_encode($o, JSON_PRESERVE_ZERO_FRACTION);",
            payload,
        )
        expected = [plain(v) for v in values]
        assert _normal(json.loads(said)) == _normal(expected)

    @settings(deadline=None, max_examples=10)
    @given(values=st.lists(VALUES, min_size=20, max_size=20))
    def test_loads_reads_what_php_serializes(self, values):
        payload = json.dumps([plain(v) for v in values])
        said = php(
            "$o = []; foreach (json_decode(stream_get_contents(STDIN), true) as $v) {"
            " $o[] = bin2hex(serialize($v)); } echo json_encode($o);",
            payload,
        )
        read = [loads(bytes.fromhex(h)) for h in json.loads(said)]
        assert _normal([plain(v) for v in read]) == _normal(json.loads(payload))

    def test_php_objects_from_a_real_update_transient_are_read(self):
        raw = php(
            "echo serialize((object) ['updates' => [(object) ['response' => 'upgrade',"
            " 'version' => '6.4.3']], 'last_checked' => 1700000000, 'translations' => []]);",
            "",
        )
        value = loads(raw.encode())
        assert isinstance(value, PhpObject)
        assert value.class_name == "stdClass"
        assert value.get("updates")[0].get("version") == "6.4.3"

    def test_protected_and_private_properties_are_found_by_name(self):
        raw = php(
            "class A { public $a = 1; protected $b = 2; private $c = 3; } echo serialize(new A);",
            "",
        )
        value = loads(raw.encode())
        assert [value.get(n) for n in "abc"] == [1, 2, 3]


def _normal(value):
    """JSON values with PHP's and Python's differences smoothed: list-like objects and
    floats that are whole numbers."""
    if isinstance(value, dict):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return {str(i): _normal(v) for i, v in enumerate(value)}
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


class TestRefused:
    @pytest.mark.parametrize(
        ("data", "reason"),
        [
            pytest.param(b's:10:"short";', "runs past the end", id="length-too-long"),
            pytest.param(b's:2:"abc";', "expected", id="length-too-short"),
            pytest.param(b"a:1:{i:0;r:1;}", "unsupported type 'r'", id="reference"),
            pytest.param(b'C:3:"Foo":0:{}', "unsupported type 'C'", id="custom-serialized"),
            pytest.param(b"i:1;i:2;", "data after the value", id="trailing"),
            pytest.param(b"a:1:{d:1.5;i:1;}", "array key", id="float-key"),
            pytest.param(b"a:1:{i:0;" * 200, "nested deeper", id="too-deep"),
        ],
    )
    def test_malformed_or_unsupported_data_is_refused(self, data, reason):
        with pytest.raises(PhpSerialError, match=reason):
            loads(data)

    def test_maybe_loads_returns_text_that_is_not_serialized(self):
        assert maybe_loads(b"1") == "1"
        assert maybe_loads(b"a:1:{oops") == "a:1:{oops"
        assert maybe_loads(b'a:1:{i:0;s:1:"x";}') == {0: "x"}
