"""jsonfast agrees with the standard library's json on what it parses and writes."""

from __future__ import annotations

import json
import math
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pallet.errors import InvalidArgument
from pallet.oci import jsonfast

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)


def same(a: object, b: object) -> bool:
    """Equality that treats NaN as equal to NaN (json round-trips it)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=300)
@given(documents, st.sampled_from([None, 0, 1, 2, 4]))
def test_dumps_writes_the_same_text_as_json_dumps(doc: object, indent: int | None) -> None:
    assert jsonfast.dumps(doc, indent=indent) == json.dumps(doc, indent=indent)


@settings(max_examples=300)
@given(documents, st.sampled_from([None, 2]))
def test_loads_reads_back_what_json_wrote(doc: object, indent: int | None) -> None:
    text = json.dumps(doc, indent=indent, ensure_ascii=False)
    assert same(jsonfast.loads(text), json.loads(text))
    assert same(jsonfast.loads(text.encode()), json.loads(text.encode()))


@settings(max_examples=500)
@given(st.text(alphabet='{}[]",:0123456789.eE+-tfrunlasNIiy \n\t\\u\x01', max_size=20))
def test_loads_accepts_and_rejects_exactly_what_json_loads_does(text: str) -> None:
    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(InvalidArgument, match=r"^invalid JSON: "):
            jsonfast.loads(text)
    else:
        assert same(jsonfast.loads(text), expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid JSON: expecting value at line 1 column 1 (char 0)"),
        ("[1,", "invalid JSON: expecting value at line 1 column 4 (char 3)"),
        ('{"a" 1}', "invalid JSON: expecting ':' delimiter at line 1 column 6 (char 5)"),
        ("[1]\n x", "invalid JSON: extra data at line 2 column 2 (char 5)"),
        ('{\n  "a": [1,\n  2,]}', "invalid JSON: expecting value at line 3 column 5 (char 17)"),
        ('"\x01"', "invalid JSON: invalid control character at line 1 column 2 (char 1)"),
    ],
)
def test_syntax_errors_name_line_column_and_offset(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        jsonfast.loads(text)
    assert str(caught.value) == message


def test_bytes_in_utf8_utf16_and_utf32_with_or_without_bom_decode_like_json() -> None:
    doc = {"é": ["ü", 1]}
    text = json.dumps(doc, ensure_ascii=False)
    for encoding in (
        "utf-8",
        "utf-8-sig",
        "utf-16",
        "utf-16-le",
        "utf-16-be",
        "utf-32",
        "utf-32-le",
        "utf-32-be",
    ):
        assert jsonfast.loads(text.encode(encoding)) == doc, encoding


def test_invalid_utf8_names_the_byte() -> None:
    with pytest.raises(InvalidArgument, match=r"^invalid JSON: not valid utf-8 text at byte 2$"):
        jsonfast.loads(b'["\xff"]')


def test_deep_nesting_and_huge_integers_are_invalid_arguments_not_crashes() -> None:
    with pytest.raises(InvalidArgument, match="nested too deeply"):
        jsonfast.loads("[" * 200_000)
    with pytest.raises(InvalidArgument, match="integer string conversion"):
        jsonfast.loads("1" * 5000)


def test_read_only_mappings_and_tuples_encode_as_objects_and_arrays() -> None:
    doc = {"m": types.MappingProxyType({"k": (1, 2)}), "e": types.MappingProxyType({})}
    assert jsonfast.dumps(doc) == '{"m": {"k": [1, 2]}, "e": {}}'
    assert jsonfast.dumps(doc, indent=1) == '{\n "m": {\n  "k": [\n   1,\n   2\n  ]\n },\n "e": {}\n}'


def test_unserialisable_values_and_cycles_are_refused() -> None:
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        jsonfast.dumps({"a": {1}})
    with pytest.raises(TypeError, match="keys must be str"):
        jsonfast.dumps({(1,): 1}, indent=2)
    loop: list[object] = []
    loop.append(loop)
    for indent in (None, 2):
        with pytest.raises(ValueError, match="Circular reference"):
            jsonfast.dumps(loop, indent=indent)


def test_non_string_keys_are_written_like_json_dumps() -> None:
    doc = {1: "a", 2.5: "b", False: "c", None: "d"}
    for indent in (None, 2):
        assert jsonfast.dumps(doc, indent=indent) == json.dumps(doc, indent=indent)
