"""The retry rewrite: here (``_retry.py``) and in the scripts (``_retry.lua``, both its paths), byte for byte alike.

Each is checked against a reference written here with ``json``'s own decoder: the top-level
members are found by decoding each value in turn, ``attempts`` set to 0 and ``error`` and
``failedAt`` cut out (with the comma before them, or for leading members everything up to the next
name), every other byte kept; and the result, decoded, is the original decoded with those changes.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_data import dead_letter_job, node_job

from zenith_sdk.control._retry import retried

_DECODER = json.JSONDecoder()
_SPACE = " \t\n\r"
_RESET = {"attempts": "0", "error": "", "failedAt": ""}


def _lua(name: str) -> str:
    return resources.files("zenith_sdk.scripts").joinpath(f"{name}.lua").read_text(encoding="utf-8")


# Calls the rewrite's paths one by one: ARGV[2] "search" (nil when it declines), "scan", or "reset" (both).
_CALLER = (
    _lua("_json")
    + _lua("_retry")
    + """
local ok, job = pcall(cjson.decode, ARGV[1])
job = ok and type(job) == 'table' and job or nil
if ARGV[2] == 'search' then
  return job and retried_by_search(ARGV[1], job) or false
elseif ARGV[2] == 'scan' then
  return retried_by_scan(ARGV[1])
end
return reset_for_retry(ARGV[1], job)
"""
)


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in _SPACE:
        index += 1
    return index


def _reference(text: str) -> str:
    """The rewrite, found with json's decoder (which reads every value whole)."""
    index = _skip(text, text.index("{") + 1)
    members: list[tuple[str, int, int, int, int, int | None]] = []  # name, start, value, end, comma, next
    while text[index] != "}":
        name, name_end = _DECODER.raw_decode(text, index)
        value = _skip(text, _skip(text, name_end) + 1)
        _, end = _DECODER.raw_decode(text, value)
        after = _skip(text, end)
        following = _skip(text, after + 1) if text[after] == "," else None
        members.append((name, index, value, end, after, following))
        if following is None:
            break
        index = following
    cuts: list[tuple[int, int, str]] = []
    kept_before, comma = False, 0
    for name, start, value, end, after, following in members:
        reset = _RESET.get(name)
        if reset == "0":
            cuts.append((value, end, "0"))
        elif reset is not None and kept_before:
            cuts.append((comma, end, ""))
        elif reset is not None:
            cuts.append((start, end if following is None else following, ""))
        kept_before = kept_before or reset != ""
        comma = after
    out, at = [], 0
    for start, end, with_ in sorted(cuts):
        out += [text[at:start], with_]
        at = end
    return "".join([*out, text[at:]])


def _decoded_retry(text: str) -> dict[str, Any]:
    job = json.loads(text)
    expected = {key: value for key, value in job.items() if key not in ("error", "failedAt")}
    if "attempts" in job:
        expected["attempts"] = 0
    return expected


# -- payloads as any writer may write them -------------------------------------------------------

_NAMES = ["attempts", "error", "failedAt", "id", "data", "meta", "Attempts", "attempt", "errors", "x"]
_PIECES = ['"', "\\", "{", "}", "[", "]", ",", ":", " ", "\n", "a", "é", "東", "\u2028", "✓", "/"]
_PIECES += ['"error":', ',"attempts":1', '{"failedAt":2}', "\\u0065", "or", "attempts", '"failedAt"', "\\"]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=6).map("".join)
_SCALARS = st.sampled_from(["0", "3", "-1.5e3", "1E2", "true", "false", "null", "12345678901234567890"])


@st.composite
def _blank(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(["", "", "", " ", "\n", " \t ", "\r\n"]))


@st.composite
def _string(draw: st.DrawFn, *, name: bool = False) -> str:
    text = draw(st.sampled_from(_NAMES)) if name else draw(_TEXT)
    written = json.dumps(text, ensure_ascii=draw(st.booleans()))
    if name and text and draw(st.integers(0, 9)) == 0:
        written = f'"\\u{ord(text[0]):04x}{written[2:]}'  # a name written with an escape
    return written


@st.composite
def _value(draw: st.DrawFn, depth: int) -> str:
    kind = draw(
        st.sampled_from(["scalar", "string", "string", "object", "array"] if depth < 3 else ["scalar", "string"])
    )
    if kind == "scalar":
        return draw(_SCALARS)
    if kind == "string":
        return draw(_string())
    if kind == "object":
        return draw(_object(depth + 1))
    items = draw(st.lists(_value(depth + 1), max_size=3))
    return "[" + draw(_blank()) + ",".join(f"{draw(_blank())}{item}{draw(_blank())}" for item in items) + "]"


@st.composite
def _object(draw: st.DrawFn, depth: int = 0) -> str:
    members = [
        f"{draw(_blank())}{draw(_string(name=True))}{draw(_blank())}:{draw(_blank())}{draw(_value(depth))}{draw(_blank())}"
        for _ in range(draw(st.integers(0, 7 if depth == 0 else 3)))
    ]
    return "{" + ",".join(members) + (draw(_blank()) if not members else "") + "}"


_PAYLOADS = st.builds(lambda blank, body, tail: blank + body + tail, _blank(), _object(), _blank())


@settings(max_examples=400, deadline=None)
@given(text=_PAYLOADS)
def test_a_retry_computed_here_is_the_reference_rewrite(text: str) -> None:
    expected = _reference(text)
    raw = text.encode()

    assert retried(raw, json.loads(text)) == retried(raw) == expected.encode()
    decoded = json.loads(expected)
    assert decoded == _decoded_retry(text) and list(decoded) == list(_decoded_retry(text))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_PAYLOADS)
def test_each_path_of_the_scripts_rewrite_gives_the_reference_bytes(r: redis.Redis, text: str) -> None:
    expected = _reference(text).encode()
    raw = text.encode()

    searched = r.eval(_CALLER, 0, raw, "search")
    assert searched is None or searched == expected  # the search declines what it cannot read exactly
    assert r.eval(_CALLER, 0, raw, "scan") == expected
    assert r.eval(_CALLER, 0, raw, "reset") == expected


@st.composite
def _dead_letters(draw: st.DrawFn) -> str:
    """Dead letters in the layouts writers use, mostly compact, with twists: escapes and quotes in
    the error, reset names nested in data or in other members, members in another order, other
    values, spaces, duplicates."""
    rare = st.integers(0, 5).map(lambda n: n == 0)
    messages = st.sampled_from(["SMTP timeout", 'a "quoted" error', "back\\slash", "line\nbreak", "ü ✓", 'x,"error":1'])
    members = [("id", json.dumps(draw(st.sampled_from(["1700000000000-abcdefg", "é-1", 'q"1'])), ensure_ascii=False))]
    members.append(("type", '"class"'))
    data = {"class": "App\\Jobs\\X", "properties": {draw(st.sampled_from(_NAMES)): draw(messages)}}
    data_text = json.dumps(data, ensure_ascii=draw(rare))
    members.append(("data", json.dumps(data_text, ensure_ascii=False) if draw(st.booleans()) else data_text))
    if draw(rare):
        members.append(("meta", json.dumps({draw(st.sampled_from(["attempts", "error", "failedAt"])): 1})))
    members.append(("attempts", "3" if not draw(rare) else draw(st.sampled_from(["0", "1.0", '"3"', "null"]))))
    members.append(("maxAttempts", "3"))
    tail = [("error", json.dumps(draw(messages), ensure_ascii=draw(rare))), ("failedAt", "1700000000000")]
    members += draw(st.permutations(tail)) if draw(rare) else tail
    members += draw(st.sampled_from([[], [("priority", '"high"'), ("tenant", '{"error":"x","failedAt":1}')]]))
    if draw(rare):
        members.append(draw(st.sampled_from(tail)))  # a duplicate
    if draw(rare):
        members.insert(0, members.pop(draw(st.integers(0, len(members) - 1))))
    separator = "," if not draw(rare) else draw(st.sampled_from([", ", " ,\n"]))
    colon = ":" if not draw(rare) else ": "
    return "{" + separator.join(f"{json.dumps(name)}{colon}{value}" for name, value in members) + "}"


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_dead_letters())
def test_dead_letters_as_writers_write_them_are_rewritten_alike_everywhere(r: redis.Redis, text: str) -> None:
    expected = _reference(text).encode()
    raw = text.encode()

    assert retried(raw, json.loads(text)) == retried(raw) == expected
    assert r.eval(_CALLER, 0, raw, "reset") == r.eval(_CALLER, 0, raw, "scan") == expected
    assert r.eval(_CALLER, 0, raw, "search") in (None, expected)


@pytest.mark.parametrize(
    "raw",
    [
        dead_letter_job("1700000000000-abcdefg", failed_at=1_700_000_000_000).encode(),
        node_job("n-1", "mail", {"to": "a@b.c"}, created_at=1, attempts=2, error="boom", failedAt=5).encode(),
        node_job("n-2", "mail", {"note": "ü" * 3000}, created_at=1, attempts=2, error='x "y"', failedAt=5).encode(),
    ],
)
def test_the_payloads_writers_write_compactly_are_read_by_the_search(r: redis.Redis, raw: bytes) -> None:
    # The cheap path takes them (the scan is only for what it cannot read exactly).
    assert r.eval(_CALLER, 0, raw, "search") == r.eval(_CALLER, 0, raw, "scan") == retried(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"id":"a","attempts":1}', b'{"id":"a","attempts":0}'),
        (b'{"id":"a","attempts":3,"error":"x\\"y","failedAt":5,"z":1}', b'{"id":"a","attempts":0,"z":1}'),
        (b'{"id":"a","error":"ends with \\\\","attempts":2}', b'{"id":"a","attempts":0}'),
        (b'{"id":"a","note":"x,\\"attempts\\":1"}', b'{"id":"a","note":"x,\\"attempts\\":1"}'),
        (b'{"id":"a","meta":{"attempts":1},"attempts":2}', b'{"id":"a","meta":{"attempts":1},"attempts":0}'),
        (b'{"id":"a","attempts":1,"attempts":2}', b'{"id":"a","attempts":0,"attempts":0}'),
        (b'{"id":"a","\\u0061ttempts":1}', b'{"id":"a","\\u0061ttempts":0}'),
        (b'{"attempts":1,"id":"a"}', b'{"attempts":0,"id":"a"}'),
        (b'{"id":"a", "attempts" : 1}', b'{"id":"a", "attempts" : 0}'),
        (b'{"id":"a","attempts":3,"error": "x, y","failedAt":5}', b'{"id":"a","attempts":0}'),
        (b'{"error":"x","failedAt":5,"id":"a"}', b'{"id":"a"}'),
        (b'{ "error" : "x" ,\n "id" : "a" }', b'{ "id" : "a" }'),
        (b'{"failedAt":1}', b"{}"),
        (b'{"id":"a","attempts":0}', b'{"id":"a","attempts":0}'),
        (b'{"id":"a","attempts":[1,{"b":"]"}],"error":{"c":"}"}}', b'{"id":"a","attempts":0}'),
        (b'{"id":"\xc3\xa9\\"}","attempts":2}', b'{"id":"\xc3\xa9\\"}","attempts":0}'),
    ],
)
def test_a_retry_cuts_only_those_top_level_members_and_keeps_every_other_byte(raw: bytes, expected: bytes) -> None:
    assert retried(raw) == retried(raw, json.loads(raw)) == expected


@pytest.mark.parametrize("raw", [b"[1,2]", b'"x"', b"{", b'{"id":"a"} x', b"\xff", b""])
def test_what_is_not_a_json_object_gets_no_retry_computed_here(raw: bytes) -> None:
    assert retried(raw) is None
