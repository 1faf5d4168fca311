"""``check_canonical``: stored bytes against their re-encoding, and the writer tables against the spec."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.strategies import STRATEGIES, heartbeats, job_events, json_values, key_text, log_entries, pulse_nodes
from zenith_protocol import (
    CODECS,
    PROTOCOL_VERSION,
    EventType,
    JobEvent,
    JobPayload,
    Schedule,
    WorkerHeartbeat,
    decode_event_fields,
    decode_job,
    decode_schedule,
    encode_event_fields,
    encode_heartbeat,
    encode_job,
    encode_schedule,
)
from zenith_protocol.canonical import (
    ALWAYS_WRITTEN,
    EVENT_REQUIRED_FIELDS,
    KEY_TTL_S,
    Deviation,
    check_canonical,
    first_difference,
)
from zenith_protocol.keys import KeyKind, KeySpace

SPEC = Path(__file__).resolve().parents[2] / "spec" / "PROTOCOL.md"
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

GOOD = encode_job(
    JobPayload.create(
        "resize", {"w": 200, "path": "/a/b"}, job_id="café/1", created_at_ms=1767225600000, delay_seconds=2
    )
).encode()
"""A canonical job: ``{"id":"café/1",...,"delaySeconds":2,"attempts":0,"protocolVersion":2}``."""


def _check_job(raw: bytes) -> Deviation | None:
    return check_canonical("job", raw, decode_job(raw))


def _at(document: bytes, needle: bytes, plus: int = 0) -> int:
    return document.index(needle) + plus


# Each case: the stored bytes, the problem reported, and the first differing byte, found by hand.
CASES: dict[str, tuple[bytes, str, int]] = {
    "field order": (
        GOOD.replace(b'"id":"caf\xc3\xa9/1","type":"json"', b'"type":"json","id":"caf\xc3\xa9/1"'),
        "field order",
        2,
    ),
    "space": (GOOD.replace(b'","type"', b'", "type"'), "whitespace", _at(GOOD, b',"type"', 1)),
    "1.0": (
        GOOD.replace(b'"delaySeconds":2,', b'"delaySeconds":2.0,'),
        "number form",
        _at(GOOD, b'"delaySeconds":2', 16),
    ),
    "1e0": (GOOD.replace(b'"attempts":0', b'"attempts":0e0'), "number form", _at(GOOD, b'"attempts":0', 12)),
    "escaped slash": (GOOD.replace(b"caf\xc3\xa9/1", b"caf\xc3\xa9\\/1"), "escaped /", _at(GOOD, b"/1")),
    "escaped e-acute": (GOOD.replace(b"caf\xc3\xa9", b"caf\\u00e9"), "\\u escape", _at(GOOD, b"\xc3\xa9")),
    "explicit null": (
        GOOD.replace(b',"protocolVersion"', b',"groupId":null,"protocolVersion"'),
        "explicit null",
        _at(GOOD, b',"protocolVersion"', 2),
    ),
    "data with a space": (GOOD.replace(b'\\"w\\":200', b'\\"w\\": 200'), "data member", _at(GOOD, b'\\"w\\":', 6)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_non_canonical_write_is_named_with_its_first_differing_byte(case: str) -> None:
    theirs, problem, offset = CASES[case]
    assert theirs != GOOD

    deviation = _check_job(theirs)

    assert deviation is not None
    assert (deviation.kind, deviation.problem, deviation.offset) == ("not_canonical", problem, offset)
    assert (deviation.ours, deviation.theirs) == (GOOD, theirs)
    assert GOOD[:offset] == theirs[:offset] and GOOD[offset:] != theirs[offset:]


def test_an_escape_other_than_json_stringifys_is_named() -> None:
    ours = encode_job(JobPayload.create("x", job_id="a\x1fb", created_at_ms=1)).encode()
    assert b"a\\u001fb" in ours
    theirs = ours.replace(b"\\u001f", b"\\u001F")

    deviation = _check_job(theirs)

    assert deviation is not None
    assert (deviation.problem, deviation.offset) == ("string escape", ours.index(b"\\u001f") + 5)
    assert "\\u001F where JSON.stringify writes \\u001f" in deviation.reason


def test_the_canonical_job_passes_and_so_does_any_legacy_job() -> None:
    assert _check_job(GOOD) is None
    legacy = json.loads(GOOD)
    del legacy["protocolVersion"]
    messy = json.dumps({"type": "json", **legacy, "attempts": 0.0, "groupId": None}, indent=1).encode()
    assert _check_job(messy) is None


@pytest.mark.parametrize("member", ["createdAt", "attempts"])
def test_a_versioned_job_without_a_must_field_is_reported_by_name(member: str) -> None:
    document = json.loads(GOOD)
    del document[member]
    theirs = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()

    deviation = _check_job(theirs)

    assert deviation is not None
    assert (deviation.kind, deviation.problem, deviation.offset) == ("missing_field", f"missing {member}", None)
    assert "spec 4.1" in deviation.reason


def test_unknown_members_keep_their_order_even_with_integer_like_names() -> None:
    theirs = GOOD[:-1] + b',"zeta":1,"10":{"b":[1.5,"x"],"a":null},"2":"y"}'
    assert _check_job(theirs) is None
    swapped = GOOD[:-1] + b',"zeta":1.0,"10":{"b":[1.5,"x"],"a":null},"2":"y"}'
    deviation = _check_job(swapped)
    assert deviation is not None and deviation.problem == "number form"


def _heartbeat(**fields: Any) -> WorkerHeartbeat:
    return WorkerHeartbeat.model_validate(
        {"id": "w-1", "hostname": "h", "pid": 7, "timestamp": "2026-01-01T00:00:05.123Z", **fields}
    )


def test_a_heartbeat_without_an_always_written_field_is_reported_where_ours_has_it() -> None:
    ours = encode_heartbeat(_heartbeat()).encode()
    document = json.loads(ours)
    del document["uptime"]
    theirs = json.dumps(document, separators=(",", ":")).encode()

    deviation = check_canonical("heartbeat", theirs, CODECS["heartbeat"].decode(theirs))

    assert deviation is not None
    assert (deviation.kind, deviation.problem) == ("missing_field", "missing uptime")
    assert deviation.offset == ours.index(b'"uptime"') + 1  # both have the quote
    assert deviation.ours == ours


def test_a_heartbeat_value_in_another_form_is_not_canonical() -> None:
    ours = encode_heartbeat(_heartbeat(memory={"rss": "96MB"})).encode()
    theirs = ours.replace(b'"rss":"96MB"', b'"rss":96').replace(b".123Z", b"Z")

    deviation = check_canonical("heartbeat", theirs, CODECS["heartbeat"].decode(theirs))

    assert deviation is not None
    assert (deviation.problem, deviation.offset) == ("value form", ours.index(b'"96MB"'))
    assert "memory.rss" in deviation.reason


def _event(**fields: Any) -> JobEvent:
    return JobEvent.model_validate({"queue": "q", "timestamp": 1, **fields})


def test_an_event_without_a_field_its_type_must_carry_is_reported() -> None:
    event = _event(type="failed", jobId="j", attempt=1)
    fields = encode_event_fields(event)

    deviation = check_canonical("event_fields", fields, decode_event_fields(fields))

    assert deviation is not None
    assert (deviation.kind, deviation.problem, deviation.field) == ("missing_field", "missing error", "event")
    assert "every failed event carries" in deviation.reason and "spec 8.4" in deviation.reason


def test_an_event_of_an_unknown_type_needs_only_the_fields_of_every_event() -> None:
    fields = encode_event_fields(_event(type="archived"))
    assert check_canonical("event_fields", fields, decode_event_fields(fields)) is None


@pytest.mark.parametrize("version", [True, False])
def test_a_stream_entry_with_another_field_is_reported_whatever_its_version(version: bool) -> None:
    event = _event(type="operator", actor="a", action="pause", count=1)
    if not version:
        event = event.model_copy(update={"protocol_version": None})
    fields = {b"event": encode_event_fields(event)["event"].encode(), b"source": b"go-sdk"}

    deviation = check_canonical("event_fields", fields, decode_event_fields(fields))

    assert deviation is not None
    assert (deviation.kind, deviation.field) == ("forbidden_field", "source")


def _schedule_fields() -> dict[str, str]:
    job = JobPayload.create("report", {}, job_id="sched-n", created_at_ms=5)
    return encode_schedule(Schedule(id="n", cron="0 3 * * *", queue="q", job=job, next_run_ms=9))


def test_a_schedule_hash_is_compared_field_by_field() -> None:
    fields = _schedule_fields()
    assert check_canonical("schedule", fields, decode_schedule(fields)) is None

    odd = {**fields, "enabled": "True", "job": fields["job"].replace('"attempts":0', '"attempts":0.0')}
    deviation = check_canonical("schedule", odd, decode_schedule(odd))
    assert deviation is not None
    assert (deviation.field, deviation.problem) == ("job", "number form")

    del odd["job"], fields["enabled"]
    deviation = check_canonical("schedule", fields, decode_schedule(fields))
    assert deviation is not None and deviation.problem == "missing enabled"


def test_first_difference() -> None:
    assert first_difference(b"abc", b"abc") is None
    assert first_difference(b"abc", b"abd") == 2
    assert first_difference(b"ab", b"abc") == 2


# -- the tables are the spec's ---------------------------------------------------------------------


def _section(number: str) -> str:
    text = SPEC.read_text(encoding="utf-8")
    start = re.search(rf"^#{{2,3}} {re.escape(number)}[ .].*$", text, re.MULTILINE)
    assert start is not None, number
    end = re.search(r"^##", text[start.end() :], re.MULTILINE)
    return text[start.end() : start.end() + end.start() if end else None]


def _table(number: str) -> list[dict[str, str]]:
    """The first table of a section, one dict per row keyed by the header cells."""
    lines = _section(number).splitlines()
    first = next(index for index, line in enumerate(lines) if line.startswith("|"))
    rows = list(itertools.takewhile(lambda line: line.startswith("|"), lines[first:]))
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    return [dict(zip(header, (cell.strip() for cell in row.strip("|").split("|")))) for row in rows[2:]]


def _names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


_ALWAYS = re.compile(r"^(required|always written|written always|canonical)")


def _always_written(number: str) -> set[str]:
    """Top-level members the field table of a section marks required, always written or canonical.

    A nested row (``cpu.system``) that is required makes its parent required, unless the parent
    has a row of its own (``queues`` is optional even though ``queues[].name`` is required).
    """
    rows = [(_names(row["Field"])[0], row["Presence"]) for row in _table(number)]
    own_rows = {name for name, _ in rows}
    found = set()
    for name, presence in rows:
        head = re.split(r"[.\[]", name)[0]
        if _ALWAYS.match(presence) and (head == name or head not in own_rows):
            found.add(head)
    return found


@pytest.mark.parametrize(
    ("structure", "section"),
    [("job", "4.1"), ("heartbeat", "6.1"), ("log", "6.3"), ("pulse", "7"), ("event", "8.3"), ("schedule", "5.2")],
)
def test_always_written_members_are_those_of_the_spec_field_tables(structure: str, section: str) -> None:
    assert set(ALWAYS_WRITTEN[structure]) == _always_written(section)


def test_each_event_type_must_carry_what_the_spec_table_says() -> None:
    spec = {row["`type`"].strip("`"): set(_names(row["MUST carry"])) for row in _table("8.4")}
    assert spec == {event_type.value: set(fields) for event_type, fields in EVENT_REQUIRED_FIELDS.items()}
    assert set(EVENT_REQUIRED_FIELDS) == set(EventType)


_SAMPLE_SEGMENTS = {"<name>": "q", "<lane>": "high", "<metric>": "waiting"}


def _sample_key(template: str) -> str:
    """A concrete key for a key-table template: ``queue:<name>:ratelimit:<window>`` -> ``queue:q:ratelimit:1``."""
    return re.sub(r"<[A-Za-z]+>", lambda m: _SAMPLE_SEGMENTS.get(m.group(), "1"), template)


def test_every_key_with_a_ttl_in_the_key_table_is_checked_for_that_ttl() -> None:
    space = KeySpace()
    spec: dict[KeyKind, int | None] = {}
    for row in _table("3.3"):
        if row["TTL"].startswith(("none", "—")):
            continue
        parsed = space.parse(_sample_key(_names(row["Key"])[0]))
        assert parsed is not None, row["Key"]
        seconds = re.match(r"^([0-9]+) s\b", row["TTL"])
        spec[parsed.kind] = int(seconds.group(1)) if seconds else None
    assert spec == dict(KEY_TTL_S)


# -- what we encode is canonical -------------------------------------------------------------------

VERSIONED = sorted(name for name, codec in CODECS.items() if codec.input_kind in ("json", "hash", "stream"))


def _members(structure: str, encoded: Any) -> dict[str, Any]:
    if structure == "schedule":
        return dict(encoded)
    document = json.loads(encoded["event"] if structure == "event_fields" else encoded)
    return document if isinstance(document, dict) else {}


@pytest.mark.parametrize("structure", VERSIONED)
@PROPERTY
@given(data=st.data())
def test_whatever_we_encode_re_encodes_to_the_same_bytes(structure: str, data: st.DataObject) -> None:
    codec = CODECS[structure]
    encoded = codec.encode(data.draw(STRATEGIES[structure]))

    deviation = check_canonical(structure, encoded, codec.decode(encoded))

    # The only findings possible on our own bytes: a member the instance lacks but a writer must
    # write (the strategies leave optional-in-the-model members out), or job data built by hand.
    if deviation is not None:
        assert deviation.kind == "missing_field" or deviation.problem == "data member", deviation
        if deviation.kind == "missing_field":
            missing = deviation.problem.removeprefix("missing ").split(", ")
            members = _members(structure, encoded)
            if deviation.field == "job":
                members = json.loads(members["job"])
            assert all(name not in members for name in missing)


def _complete(event: JobEvent) -> JobEvent:
    """``event`` with every member its type must carry, and a protocol version."""
    fill = {"jobId": "j", "workerId": "w", "attempt": 1, "error": "e", "actor": "a", "action": "pause", "count": 1}
    fill |= {"ruleId": "r", "subject": "queue:q", "toState": "firing", "seq": 1}
    wire = event.model_dump(by_alias=True, exclude_none=True)
    needed = EVENT_REQUIRED_FIELDS.get(event.type, ()) if isinstance(event.type, EventType) else ()
    return JobEvent.model_validate(
        {**wire, **{name: fill[name] for name in needed if name not in wire}, "protocolVersion": PROTOCOL_VERSION}
    )


@st.composite
def _complete_values(draw: st.DrawFn) -> tuple[str, Any]:
    structure = draw(st.sampled_from(["job", "heartbeat", "log", "pulse", "event"]))
    if structure == "job":
        properties = draw(st.dictionaries(key_text(), json_values(max_leaves=6), max_size=4))
        value: Any = JobPayload.create(
            draw(key_text(min_size=1)), properties, delay_seconds=draw(st.none() | st.floats(0, 1e6))
        )
    elif structure == "event":
        value = _complete(draw(job_events()))
    else:
        value = draw({"heartbeat": heartbeats(), "log": log_entries(), "pulse": pulse_nodes()}[structure])
        value = value.model_copy(update={"protocol_version": PROTOCOL_VERSION})
    return structure, value


@PROPERTY
@given(case=_complete_values())
def test_a_value_we_build_with_every_member_is_reported_canonical(case: tuple[str, Any]) -> None:
    structure, value = case
    codec = CODECS[structure]
    encoded = codec.encode(value)
    assert check_canonical(structure, encoded, codec.decode(encoded)) is None
