"""The ingest JSON codec answers as the standard library did: the same values, the same
exceptions, and text that the standard library reads back as the same value (NaN and
infinities as null: see ``bastion.errors.jsoncodec``)."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.errors import jsoncodec

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same(left: Any, right: Any) -> bool:
    """Equal, with types, NaN equal to NaN and the sign of zero (``==`` says 1 == 1.0 == True)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        if math.isnan(left):
            return math.isnan(right)
        return left == right and math.copysign(1, left) == math.copysign(1, right)
    if isinstance(left, dict):
        return list(left) == list(right) and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same, left, right))
    return bool(left == right)


def nulled(value: Any) -> Any:
    """``value`` with None for NaN and infinities, as ``dumps_text`` writes them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: nulled(item) for key, item in value.items()}
    if isinstance(value, list):
        return [nulled(item) for item in value]
    return value


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


LOADS_CASES: dict[str, bytes | str] = {
    "object": b'{"a":1,"b":[true,false,null],"c":{"d":"e"},"a":2}',
    "nan and infinities": b'{"x":NaN,"y":Infinity,"z":-Infinity}',
    "number beyond a double": b"[1e400,-1e400]",
    "2**70": str(2**70).encode(),
    "int64 and uint64 edges": b"[9223372036854775807,-9223372036854775808,18446744073709551615]",
    "just past them": b"[9223372036854775808,-9223372036854775809,18446744073709551616]",
    "a long digit run in a string": b'{"id":"12345678901234567890123"}',
    "floats": b"[0.1,1.5e-7,-0.0,1e308,5e-324,2.2250738585072014e-308,1E5,0.30000000000000004]",
    "escaped lone surrogate": b'"a\\ud800b\\udc00"',
    "encoded lone surrogate": b'"a\xed\xa0\x80b"',
    "non-ASCII, raw and escaped": '{"é":"€ ü \\u00e9 \\u20ac"}'.encode(),
    "outside the BMP, raw and escaped": '["😀", "\\ud83d\\ude00", "\U0010ffff"]'.encode(),
    "NUL and line separators": b'"a\\u0000b\\u2028\\u2029\\u001f"',
    "deeply nested": b"[" * 300 + b"]" * 300,
    "byte order mark": b'\xef\xbb\xbf{"bom":1}',
    "UTF-16": '{"utf16":"é"}'.encode("utf-16"),
    "UTF-32 without a byte order mark": '{"utf32":1}'.encode("utf-32-le"),
    "str": '{"s":"é😀"}',
    "str with a lone surrogate": '{"s":"\ud800"}',
    "whitespace around": b' \t\r\n{"a" : [ 1 , 2 ] }\n ',
}


@pytest.mark.parametrize("name", list(LOADS_CASES))
def test_loads_gives_the_standard_librarys_value(name: str) -> None:
    data = LOADS_CASES[name]
    assert same(jsoncodec.loads(data), json.loads(data))


LOADS_ERRORS: dict[str, bytes | str] = {
    "empty": b"",
    "garbage": b"{{",
    "trailing comma": b"[1,2,]",
    "single quotes": b"{'a':1}",
    "raw control character": b'"a\tb"',
    "lower-case nan": b"nan",
    "invalid UTF-8": b'{"a":"\xff"}',
    "truncated UTF-8": b'"\xe2\x82"',
    "str with a byte order mark": '\ufeff{"a":1}',
    "two values": b"1 2",
}


@pytest.mark.parametrize("name", list(LOADS_ERRORS))
def test_loads_raises_what_the_standard_library_raises(name: str) -> None:
    data = LOADS_ERRORS[name]
    with pytest.raises(Exception) as expected:  # its type and text are compared below
        json.loads(data)
    with pytest.raises(Exception) as raised:
        jsoncodec.loads(data)
    assert type(raised.value) is type(expected.value)
    assert str(raised.value) == str(expected.value)
    assert isinstance(raised.value, json.JSONDecodeError | UnicodeDecodeError)
    # not raised on top of orjson's error: the same context as the standard library's own
    assert type(raised.value.__context__) is type(expected.value.__context__)


class Flavor(enum.StrEnum):
    MINT = "mint"


class Count(enum.IntEnum):
    ONE = 1


class Tagged(dict[str, Any]):
    pass


DUMPS_CASES: dict[str, Any] = {
    "event-like": {"a": 1, "b": [True, False, None], "c": {"d": "e", "f": 1.5}},
    "2**70": 2**70,
    "minus 2**63 minus one": {"n": -(2**63) - 1},
    "lone surrogate": {"message": "a\ud800b"},
    "non-string keys": {1: "a", 2.5: "b", False: "c", None: "d"},
    "nesting past orjson's limit": nested(300),
    "tuple": {"t": (1, "two")},
    "str and int enums": {"flavor": Flavor.MINT, "count": Count.ONE},
    "dict subclass": Tagged(a=1),
    "NaN as letters": {"s": "NaN Infinity", "big": 2**70},
}


@pytest.mark.parametrize("name", list(DUMPS_CASES))
def test_dumps_text_falls_back_to_the_standard_library_where_orjson_differs(name: str) -> None:
    value = DUMPS_CASES[name]
    text = jsoncodec.dumps_text(value)
    standard = json.dumps(value, separators=(",", ":"))
    assert same(json.loads(text), json.loads(standard))
    if name != "event-like":
        assert text == standard  # what orjson refuses or spells otherwise is the standard text


def test_non_finite_floats_are_written_as_null_whichever_writes_the_rest() -> None:
    nan, inf = float("nan"), float("inf")
    assert jsoncodec.dumps_text({"x": nan, "y": [inf, -inf]}) == '{"x":null,"y":[null,null]}'
    assert jsoncodec.dumps_text(nan) == "null"
    # with what only the standard library writes: the same nulls, the rest as it writes it
    value = {"x": nan, "big": 2**70, "s": "a\ud800", 1: (inf, "NaN")}
    assert jsoncodec.dumps_text(value) == (
        '{"x":null,"big":1180591620717411303424,"s":"a\\ud800","1":[null,"NaN"]}'
    )


def test_dumps_text_writes_non_ascii_as_utf8_and_escapes_control_characters() -> None:
    value = {"é": "€ 😀 \U0010ffff", "nul": "a\x00b", "tab": "\t", "seps": "\u2028\u2029"}
    text = jsoncodec.dumps_text(value)
    assert text == '{"é":"€ 😀 \U0010ffff","nul":"a\\u0000b","tab":"\\t","seps":"\u2028\u2029"}'
    assert json.loads(text) == value
    assert json.loads(text.encode()) == value  # as the journal stores it, UTF-8 bytes


def test_dumps_text_refuses_what_the_standard_library_refuses() -> None:
    @dataclasses.dataclass
    class Point:
        x: int

    for value in (datetime.now(tz=UTC), Point(1), {"s": {1, 2}}, object()):
        with pytest.raises(TypeError):
            json.dumps(value)
        with pytest.raises(TypeError):
            jsoncodec.dumps_text(value)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**62, max_value=2**80)
    | st.floats()
    | st.text()
    | st.lists(st.characters() | st.sampled_from(["\ud800", "\udc00", "\ud83d"]), max_size=4).map(
        "".join
    )
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@FUZZ
@given(json_values, st.booleans())
def test_any_value_round_trips_as_through_the_standard_library(value: Any, ascii: bool) -> None:
    standard = json.dumps(value, ensure_ascii=ascii, separators=(",", ":"))
    assert same(jsoncodec.loads(standard), json.loads(standard))
    assert same(jsoncodec.loads(standard.encode("utf-8", "surrogatepass")), json.loads(standard))
    written = json.dumps(value, separators=(",", ":"))  # what ingest wrote before
    assert same(json.loads(jsoncodec.dumps_text(value)), nulled(json.loads(written)))


@FUZZ
@given(
    st.binary(max_size=200)
    | st.text(alphabet='{}[]",:0123456789.eE+- \\untrfalsNIy\x00\t\n', max_size=60).map(str.encode)
)
def test_any_bytes_get_the_standard_librarys_answer(data: bytes) -> None:
    try:
        expected: Any = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        with pytest.raises(type(exc)):
            jsoncodec.loads(data)
        return
    assert same(jsoncodec.loads(data), expected)
