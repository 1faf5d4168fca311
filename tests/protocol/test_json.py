"""``zenith_protocol._json`` and the encoding rules it carries (PROTOCOL 2.1-2.3): nesting depth, integers
beyond 2^53, member order of unknown fields, and ``null`` in required fields."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.strategies import MINIMAL, key_text
from zenith_protocol import (
    CODECS,
    ErrorKind,
    JobPayload,
    ProtocolError,
    decode_job,
    decode_pulse,
    encode_job,
    encode_pulse,
)
from zenith_protocol._json import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    NestingError,
    check_depth,
    has_lone_surrogate,
    loads,
    nesting_depth,
)
from zenith_protocol.schema import _JSON_MODELS

PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JOB = MINIMAL["job"]
"""A legacy job; members appended to it are unknown fields."""

HOSTS: dict[str, str] = {
    structure: CODECS[structure].encode(CODECS[structure].decode(raw))
    for structure, raw in MINIMAL.items()
    if raw.startswith("{")
}
"""One legacy value of every JSON object structure in its canonical form (defaults written), so that
appending an unknown member gives a text whose canonical encoding is the text itself."""


def _with_member(structure: str, name: str, value_text: str) -> str:
    return HOSTS[structure][:-1] + f",{json.dumps(name, ensure_ascii=False)}:{value_text}}}"


def _nested(depth: int, kind: str) -> str:
    """A value ``depth`` levels deep (0: a scalar)."""
    if kind == "list":
        return "[" * depth + "1" + "]" * depth
    return '{"k":' * depth + "1" + "}" * depth


def _depth(value: Any) -> int:
    """Reference nesting depth of a parsed value, computed recursively."""
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    return 0


def _kind(structure: str, raw: Any) -> ErrorKind | None:
    try:
        CODECS[structure].decode(raw)
    except ProtocolError as exc:
        assert exc.raw == raw
        return exc.kind
    return None


# -- nesting depth (2.1) ---------------------------------------------------------------------------


@pytest.mark.parametrize("structure", sorted(HOSTS))
@pytest.mark.parametrize("kind", ["list", "object"])
def test_every_reader_accepts_the_deepest_nesting_allowed_and_refuses_one_level_more(structure: str, kind: str) -> None:
    deepest = _with_member(structure, "x", _nested(MAX_DEPTH - 1, kind))  # the document itself is level 1
    too_deep = _with_member(structure, "x", _nested(MAX_DEPTH, kind))

    codec = CODECS[structure]
    assert codec.encode(codec.decode(deepest)) == deepest
    assert _kind(structure, too_deep) is ErrorKind.INVALID_JSON


@pytest.mark.parametrize("kind", ["list", "object"])
def test_rule_arrays_count_the_array_as_the_first_level(kind: str) -> None:
    rule = '{"id":"r","name":"n","type":"backlog","threshold":1,"cooldownMinutes":30,"x":%s}'
    deepest = "[" + rule % _nested(MAX_DEPTH - 2, kind) + "]"

    assert CODECS["alert_rules"].encode(CODECS["alert_rules"].decode(deepest)) == deepest
    assert _kind("alert_rules", "[" + rule % _nested(MAX_DEPTH - 1, kind) + "]") is ErrorKind.INVALID_JSON


def test_the_limit_applies_to_the_json_text_inside_data() -> None:
    def job(depth: int) -> str:
        data = json.dumps({"job": "a", "properties": json.loads(_nested(depth, "object"))}, separators=(",", ":"))
        return json.dumps({"id": "j", "type": "json", "data": data}, separators=(",", ":"))

    assert decode_job(job(MAX_DEPTH - 1)).name == "a"  # data's own object is level 1
    with pytest.raises(ProtocolError) as caught:
        decode_job(job(MAX_DEPTH))
    assert (caught.value.kind, caught.value.field) == (ErrorKind.INVALID_FIELD, "data")


_SIBLINGS: st.SearchStrategy[Any] = st.sampled_from(
    [0, -1.5, "", "[{", '"]}', "\\[", [], {}, [1, [2]], {"a": {"b": []}}, True, None]
)
"""Values beside the chain: scalars, text full of brackets and quotes, shallow containers."""
_NAMES: st.SearchStrategy[str] = st.sampled_from(["k", "", "[", "}", '"', "\\", "ü/", "10"])


@st.composite
def _deep_values(draw: st.DrawFn) -> Any:
    """A chain of lists and objects of random length, with siblings at every level, so its depth lands
    anywhere around the limit."""
    value = draw(_SIBLINGS)
    for in_list, sibling, name, first in draw(
        st.lists(st.tuples(st.booleans(), _SIBLINGS, _NAMES, st.booleans()), max_size=MAX_DEPTH + 3)
    ):
        if in_list:
            value = [value, sibling] if first else [sibling, value]
        else:
            value = {name: value, name + "+": sibling} if first else {name + "+": sibling, name: value}
    return value


@PROPERTY
@given(structure=st.sampled_from(sorted(HOSTS)), value=_deep_values())
def test_a_document_decodes_exactly_when_it_nests_no_deeper_than_the_limit(structure: str, value: Any) -> None:
    raw = _with_member(structure, "x", json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    depth = max(_depth(json.loads(HOSTS[structure])), 1 + _depth(value))

    assert nesting_depth(raw) == depth
    if depth <= MAX_DEPTH:
        codec = CODECS[structure]
        assert codec.encode(codec.decode(raw)) == raw
    else:
        assert _kind(structure, raw) is ErrorKind.INVALID_JSON


@PROPERTY
@given(value=_deep_values())
def test_nesting_depth_ignores_brackets_inside_strings(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)

    assert nesting_depth(text) == _depth(value)
    assert nesting_depth(json.dumps(text)) == 0  # the same text as one JSON string: no nesting at all


def test_brackets_inside_strings_do_not_count() -> None:
    raw = _with_member("job", "note", json.dumps("[{" * 5000 + '\\"' + "]}" * 10))

    assert encode_job(decode_job(raw)) == raw


def test_loads_refuses_too_deep_text_before_parsing_it() -> None:
    with pytest.raises(NestingError, match=f"at most {MAX_DEPTH}"):
        loads("[" * 1_000_000)  # a recursive parser would need a million frames
    with pytest.raises(NestingError):
        check_depth("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    check_depth("[" * MAX_DEPTH + "]" * MAX_DEPTH)


def test_hostile_nesting_cannot_crash_a_process_that_raised_its_recursion_limit() -> None:
    # With a recursion limit this high, a recursive parser would overflow the C stack and kill the
    # process; the depth check must refuse the input before any parser descends into it.
    script = (
        "import sys; sys.setrecursionlimit(10**7)\n"
        "from zenith_protocol import ProtocolError, decode_job\n"
        "for document in ('[' * 2_000_000, '{\"a\":' * 2_000_000):\n"
        "    try:\n"
        "        decode_job(document)\n"
        "    except ProtocolError as exc:\n"
        "        print(exc.kind.value)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)

    assert (done.returncode, done.stdout.split(), done.stderr) == (0, ["invalid_json", "invalid_json"], "")


def test_writers_refuse_values_nested_deeper_than_readers_accept() -> None:
    # data's object is level 1, properties level 2, so "k" may hold MAX_DEPTH - 2 levels.
    with pytest.raises(ValueError, match="at most 64"):
        JobPayload.create("a", {"k": json.loads(_nested(MAX_DEPTH - 1, "object"))})
    JobPayload.create("a", {"k": json.loads(_nested(MAX_DEPTH - 2, "object"))})
    node = decode_pulse(HOSTS["pulse"])
    too_deep = node.model_copy(update={"meta": {"m": json.loads(_nested(MAX_DEPTH - 1, "list"))}})
    with pytest.raises(NestingError):
        encode_pulse(too_deep)


# -- integers at and beyond 2^53 (2.2) -------------------------------------------------------------


@PROPERTY
@given(
    structure=st.sampled_from(sorted(HOSTS)),
    number=st.one_of(st.integers(min_value=-(10**40), max_value=10**40), st.integers(2**53 - 3, 2**64 + 3)),
)
def test_integers_in_unknown_members_keep_every_digit(structure: str, number: int) -> None:
    raw = _with_member(structure, "big", f'[{number},{{"n":{number}}}]')
    codec = CODECS[structure]

    assert codec.encode(codec.decode(raw)) == raw


@pytest.mark.parametrize(
    ("field", "text", "kind"),
    [
        ("createdAt", str(MAX_SAFE_INTEGER), None),
        ("createdAt", str(MAX_SAFE_INTEGER + 1), ErrorKind.INVALID_FIELD),
        ("createdAt", "9.007199254740992e15", ErrorKind.INVALID_FIELD),
        ("createdAt", "1e300", ErrorKind.INVALID_FIELD),
        ("attempts", str(2**64), ErrorKind.INVALID_FIELD),
        ("maxAttempts", str(MAX_SAFE_INTEGER), None),
        ("failedAt", str(10**30), ErrorKind.INVALID_FIELD),
        ("priority", str(-MAX_SAFE_INTEGER), None),
        ("priority", str(-MAX_SAFE_INTEGER - 1), ErrorKind.INVALID_FIELD),
    ],
)
def test_integer_fields_hold_only_what_a_double_holds_exactly(field: str, text: str, kind: ErrorKind | None) -> None:
    fields = json.loads(JOB)
    fields[field] = json.loads(text)
    raw = json.dumps(fields, separators=(",", ":"))

    assert _kind("job", raw) is kind


def test_number_fields_read_any_number_as_a_double() -> None:
    raw = JOB[:-1] + ',"retryAfterSeconds":9007199254740993,"retryMultiplier":1e21}'

    written = json.loads(encode_job(decode_job(raw)).replace("1e+21", '"1e+21"'))

    assert (written["retryAfterSeconds"], written["retryMultiplier"]) == (9007199254740992, "1e+21")


@pytest.mark.parametrize(
    ("structure", "field"),
    [
        ("pulse", "pid"),
        ("pulse", "timestamp"),
        ("heartbeat", "pid"),
        ("event", "timestamp"),
        ("queue_snapshot", "waiting"),
    ],
)
def test_integer_fields_of_every_structure_stop_at_2_53(structure: str, field: str) -> None:
    fields = json.loads(HOSTS[structure])
    fields[field] = MAX_SAFE_INTEGER + 1

    assert _kind(structure, json.dumps(fields)) is ErrorKind.INVALID_FIELD


# -- member order: names that look like array indexes (2.3) ----------------------------------------

_INDEX_LIKE = st.one_of(
    st.integers(0, 10**6).map(str), st.sampled_from(["0", "1", "10", "2", "4294967295", "-1", "01"])
)


@PROPERTY
@given(
    structure=st.sampled_from(sorted(HOSTS)),
    names=st.lists(st.one_of(_INDEX_LIKE, key_text(min_size=1)), min_size=2, max_size=6, unique=True),
)
def test_unknown_members_keep_their_order_whatever_their_names(structure: str, names: list[str]) -> None:
    names = [name for name in names if name not in json.loads(HOSTS[structure]) and name != "protocolVersion"]
    inner = "{" + ",".join(f"{json.dumps(name, ensure_ascii=False)}:{i}" for i, name in enumerate(names)) + "}"
    raw = HOSTS[structure][:-1] + "".join(f",{json.dumps(name, ensure_ascii=False)}:{inner}" for name in names) + "}"
    codec = CODECS[structure]

    assert codec.encode(codec.decode(raw)) == raw


def test_free_form_objects_keep_their_member_order() -> None:
    raw = HOSTS["pulse"].replace(',"timestamp":', ',"meta":{"b":1,"10":2,"2":3,"a":{"1":1,"0":0}},"timestamp":')
    node = decode_pulse(raw)

    assert encode_pulse(node) == raw
    assert list(node.meta or {}) == ["b", "10", "2", "a"]


def test_an_object_with_index_names_stays_an_object() -> None:
    raw = JOB[:-1] + ',"0":"a","1":"b","list":{"0":"a","1":"b"}}'

    assert encode_job(decode_job(raw)) == raw


# -- null in a required field (2.3) ----------------------------------------------------------------


def _required_fields() -> list[Any]:
    return [
        pytest.param(structure, info.alias or name, id=f"{structure}-{info.alias or name}")
        for structure, model in _JSON_MODELS.items()
        for name, info in model.model_fields.items()
        if info.is_required()
    ]


@pytest.mark.parametrize(("structure", "field"), _required_fields())
def test_null_in_a_required_field_reads_as_absent(structure: str, field: str) -> None:
    fields = json.loads(HOSTS[structure])
    fields[field] = None

    with pytest.raises(ProtocolError) as caught:
        CODECS[structure].decode(json.dumps(fields))

    assert (caught.value.kind, caught.value.field) == (ErrorKind.MISSING_FIELD, field)


@given(st.text(alphabet=st.sampled_from(["a", "é", "😀", "\ud800", "\udbff", "\udc00", "\udfff", "\x00"])))
def test_a_surrogate_is_found_wherever_one_is(value: str) -> None:
    assert has_lone_surrogate(value) == any(0xD800 <= ord(char) <= 0xDFFF for char in value)
