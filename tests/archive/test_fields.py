"""Job properties as indexed fields: flattened paths, normalised values, bounded counts and lengths."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from zenith_archive.fields import flatten_properties, normalize_value
from zenith_archive.schema import MAX_FIELD_KEY_CHARS, MAX_FIELD_VALUE_CHARS, MAX_FIELDS_PER_JOB

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=40,
)


def test_values_are_normalised_as_search_normalises_them() -> None:
    assert normalize_value("  Ann@Example.COM ") == "ann@example.com"
    assert [normalize_value(v) for v in (42, 1.5, 2.0, True, False, None)] == [
        "42",
        "1.5",
        "2",
        "true",
        "false",
        "null",
    ]
    assert normalize_value({"b": 1, "a": [2]}) == '{"a":[2],"b":1}'
    assert normalize_value("x" * 1000) == "x" * MAX_FIELD_VALUE_CHARS


def test_nested_objects_give_dotted_paths_and_lists_give_one_row_per_value() -> None:
    properties = {"user": {"email": "A@b.c", "tags": ["VIP", "beta", {"deep": 1}]}, "n": 3, "": "empty key"}
    assert flatten_properties(properties) == [
        ("user.email", "a@b.c"),
        ("user.tags", "vip"),
        ("user.tags", "beta"),
        ("user.tags.deep", "1"),
        ("n", "3"),
    ]
    assert flatten_properties([1, 2]) == [] and flatten_properties("text") == []
    assert flatten_properties({"k" * (MAX_FIELD_KEY_CHARS + 1): 1, "ok": 1}) == [("ok", "1")]


@given(JSON)
def test_any_properties_give_bounded_distinct_fields(properties: Any) -> None:
    fields = flatten_properties(properties)
    assert len(fields) <= MAX_FIELDS_PER_JOB
    assert len(set(fields)) == len(fields)
    for key, value in fields:
        assert 0 < len(key) <= MAX_FIELD_KEY_CHARS and len(value) <= MAX_FIELD_VALUE_CHARS
