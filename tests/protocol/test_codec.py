"""``zenith_protocol.codec``: round trips, the canonical form, and decoders that raise only ProtocolError."""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_data import CANONICAL_JOB_ORDER

from protocol.strategies import MINIMAL, STRATEGIES, text
from zenith_protocol import (
    CODECS,
    DEFAULT_ALERT_RULES,
    AlertConfig,
    AlertType,
    ErrorKind,
    JobPayload,
    JobType,
    Language,
    LogLevel,
    ProtocolError,
    Schedule,
    WorkerHeartbeat,
    WorkerStatus,
    decode_alert_config,
    decode_alert_rules,
    decode_event_document,
    decode_event_fields,
    decode_heartbeat,
    decode_job,
    decode_log,
    decode_maintenance_config,
    decode_pulse,
    decode_schedule,
    decode_worker_queues,
    encode_alert_config,
    encode_alert_rules,
    encode_heartbeat,
    encode_job,
    encode_log,
    encode_pulse,
    encode_worker_queues,
    retry_delay_s,
)
from zenith_protocol.workers import from_node_consumer_heartbeat

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MUTATE = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

STRUCTURES = sorted(CODECS)
JSON_STRUCTURES = [name for name in STRUCTURES if CODECS[name].input_kind == "json"]
MAPPING_STRUCTURES = [name for name in STRUCTURES if CODECS[name].input_kind in ("hash", "stream")]
STRUCTURED = JSON_STRUCTURES + MAPPING_STRUCTURES

ANY_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text()),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text(), children, max_size=4),
    max_leaves=12,
)
"""Any JSON value, ``null``, NaN and infinities included (``json.dumps`` writes the last as bare words)."""


# -- helpers ---------------------------------------------------------------------------------------


def _as_bytes(encoded: Any) -> Any:
    """An encoding as redis-py returns it without ``decode_responses``."""
    if isinstance(encoded, str):
        return encoded.encode("utf-8")
    if isinstance(encoded, dict):
        return {key.encode("utf-8"): value.encode("utf-8") for key, value in encoded.items()}
    return encoded


def _strings(encoded: Any) -> list[str]:
    if isinstance(encoded, str):
        return [encoded]
    if isinstance(encoded, dict):
        return [*encoded, *encoded.values()]
    return []


def _json_texts(structure: str, encoded: Any) -> list[str]:
    kind = CODECS[structure].input_kind
    if kind == "json":
        return [encoded]
    if kind == "stream":
        return list(encoded.values())
    if kind == "hash":
        return [encoded["job"]]
    return []


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _js_string(text: str) -> str:
    out = []
    for char in text:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif ord(char) < 0x20 or 0xD800 <= ord(char) <= 0xDFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _js_float(value: float) -> str:
    """ECMAScript Number::toString: shortest round-trip digits, plain for 1e-6 <= |x| < 1e21."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    shortest = Decimal(repr(abs(value))).normalize()
    _, digit_tuple, exponent = shortest.as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    k, n = len(digits), len(digits) + exponent
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"


def _stringify(value: Any) -> str:
    """A reference JSON.stringify (well-formed, no spaces) for values ``json.loads`` returns."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _js_float(value)
    if isinstance(value, str):
        return _js_string(value)
    if isinstance(value, list):
        return "[" + ",".join(_stringify(item) for item in value) + "]"
    return "{" + ",".join(f"{_js_string(key)}:{_stringify(item)}" for key, item in value.items()) + "}"


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _decode_or_none(structure: str, raw: Any) -> Any:
    """Decode, or check the ProtocolError the decoder raised and return None. Anything else fails."""
    try:
        return CODECS[structure].decode(raw)
    except ProtocolError as exc:
        assert exc.raw == raw
        assert isinstance(exc.kind, ErrorKind)
        assert exc.structure
        assert str(exc)
        return None


def _reencodes(structure: str, decoded: Any) -> None:
    """Whatever decodes also encodes, as JSON.stringify would write it, and that encoding is canonical."""
    codec = CODECS[structure]
    canonical = codec.encode(decoded)
    for document in _json_texts(structure, canonical):
        assert document == _stringify(json.loads(document))
    assert codec.encode(codec.decode(canonical)) == canonical


# -- properties over every structure ---------------------------------------------------------------


def test_every_structure_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(CODECS)


@pytest.mark.parametrize("structure", STRUCTURES)
@PROPERTY
@given(data=st.data())
def test_encoding_round_trips_in_canonical_form(structure: str, data: st.DataObject) -> None:
    codec = CODECS[structure]
    value = data.draw(STRATEGIES[structure])

    encoded = codec.encode(value)

    # decode(encode(x)) == x, from text and from the bytes redis-py returns.
    assert codec.decode(encoded) == value
    assert codec.decode(_as_bytes(encoded)) == value
    # The canonical form is a fixed point.
    assert codec.encode(codec.decode(encoded)) == encoded
    # Valid UTF-8; JSON exactly as JSON.stringify writes it (compact, JavaScript numbers); no null.
    for text_value in _strings(encoded):
        text_value.encode("utf-8")  # strict: a lone surrogate would raise here
    for document in _json_texts(structure, encoded):
        parsed = json.loads(document)
        assert document == _stringify(parsed)
        assert all(node is not None for node in _walk(parsed))
    if structure == "counter":
        assert re.fullmatch(r"-?[0-9]+", encoded)
    if structure == "paused_flag":
        assert encoded in ("1", None)


# -- decoders never raise anything but ProtocolError -----------------------------------------------


@pytest.mark.parametrize("structure", STRUCTURES)
@FUZZ
@given(raw=st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_protocol_error(structure: str, raw: bytes) -> None:
    _decode_or_none(structure, raw)


@pytest.mark.parametrize("structure", STRUCTURES)
@FUZZ
@given(value=ANY_JSON, ascii_only=st.booleans())
def test_arbitrary_json_decodes_or_raises_protocol_error(structure: str, value: Any, ascii_only: bool) -> None:
    document = json.dumps(value, ensure_ascii=ascii_only)

    for raw in (document, document.encode("utf-8", "surrogatepass")):
        decoded = _decode_or_none(structure, raw)
        if decoded is not None and CODECS[structure].input_kind != "scalar":
            _reencodes(structure, decoded)


_SCHEDULE_KEYS = sorted({field.alias or name for name, field in Schedule.model_fields.items()} | {"event"})
_HASH_TEXT = st.one_of(text(), st.binary(max_size=16), STRATEGIES["job"].map(encode_job), ANY_JSON.map(json.dumps))


@pytest.mark.parametrize("structure", MAPPING_STRUCTURES)
@FUZZ
@given(
    fields=st.dictionaries(
        st.one_of(st.sampled_from(_SCHEDULE_KEYS), text(), st.binary(max_size=8)),
        st.one_of(
            _HASH_TEXT,
            _HASH_TEXT.map(lambda value: value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value),
        ),
        max_size=8,
    )
)
def test_arbitrary_field_maps_decode_or_raise_protocol_error(structure: str, fields: dict[Any, Any]) -> None:
    decoded = _decode_or_none(structure, fields)
    if decoded is not None:
        _reencodes(structure, decoded)


@st.composite
def _mutated(draw: st.DrawFn, value: Any) -> Any:
    """``value`` after one to three random edits: a node replaced, a key dropped or added."""
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        value = _mutate_once(draw, value)
    return value


def _mutate_once(draw: st.DrawFn, value: Any) -> Any:
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        copy = dict(value)
        action = draw(st.sampled_from(["descend", "replace", "drop"]))
        if action == "descend":
            copy[key] = _mutate_once(draw, value[key])
        elif action == "replace":
            copy[key] = draw(ANY_JSON)
        else:
            del copy[key]
        return copy
    if isinstance(value, list) and value and draw(st.booleans()):
        index = draw(st.integers(min_value=0, max_value=len(value) - 1))
        return [*value[:index], _mutate_once(draw, value[index]), *value[index + 1 :]]
    if isinstance(value, dict) and draw(st.booleans()):
        return {**value, draw(text()): draw(ANY_JSON)}
    return draw(ANY_JSON)


def _mutate_document(data: st.DataObject, document: str) -> str:
    mutated = data.draw(_mutated(json.loads(document)))
    return json.dumps(mutated, ensure_ascii=data.draw(st.booleans()))


@pytest.mark.parametrize("structure", STRUCTURED)
@MUTATE
@given(data=st.data())
def test_mutated_encodings_decode_or_raise_protocol_error(structure: str, data: st.DataObject) -> None:
    encoded = CODECS[structure].encode(data.draw(STRATEGIES[structure]))
    raw: Any
    if CODECS[structure].input_kind == "json":
        raw = _mutate_document(data, encoded)
    else:
        raw = dict(encoded)
        key = "job" if structure == "schedule" else "event"
        raw[key] = _mutate_document(data, raw[key])
        raw = data.draw(_mutated(raw))
        if isinstance(raw, dict):  # anything else must be refused as not a field map
            raw = {key: value if isinstance(value, str) else json.dumps(value) for key, value in raw.items()}

    decoded = _decode_or_none(structure, raw)
    if decoded is not None:
        _reencodes(structure, decoded)


# -- hostile input ---------------------------------------------------------------------------------

_DEEP = 100_000


@pytest.mark.parametrize("structure", JSON_STRUCTURES + ["counter", "paused_flag"])
@pytest.mark.parametrize("document", ["[" * _DEEP, '{"a":' * _DEEP, "[" * _DEEP + "]" * _DEEP])
def test_deeply_nested_json_is_a_protocol_error(structure: str, document: str) -> None:
    for raw in (document, document.encode("utf-8")):
        with pytest.raises(ProtocolError) as caught:
            CODECS[structure].decode(raw)
        assert caught.value.raw == raw


@pytest.mark.parametrize("document", ["[" * _DEEP, '{"a":' * _DEEP])
def test_deeply_nested_json_inside_a_field_map_is_a_protocol_error(document: str) -> None:
    fields = {"id": "s", "cron": "* * * * *", "queue": "q", "job": document}
    with pytest.raises(ProtocolError) as caught:
        decode_schedule(fields)
    assert (caught.value.raw, caught.value.field) == (fields, "job")
    with pytest.raises(ProtocolError):
        decode_event_fields({"event": document})


_OUT_OF_RANGE = ["9" * 5000, "-" + "9" * 5000, "1e400", "-1e400", "1E+400", "NaN", "Infinity", "-Infinity"]


@pytest.mark.parametrize("structure", JSON_STRUCTURES)
@pytest.mark.parametrize("number", _OUT_OF_RANGE)
def test_out_of_range_numbers_are_protocol_errors(structure: str, number: str) -> None:
    minimal = MINIMAL[structure]
    inside = minimal[:-2] + f',"x":{number}}}]' if minimal.startswith("[") else minimal[:-1] + f',"x":{number}}}'
    for raw in (number, inside, f"[{number}]", inside.encode("utf-8")):
        with pytest.raises(ProtocolError) as caught:
            CODECS[structure].decode(raw)
        assert caught.value.kind is ErrorKind.INVALID_JSON
        assert caught.value.raw == raw


@pytest.mark.parametrize("raw", ["9" * 5000, "9" * 20, "1e3", "1.0", "", " ", "-", "+1", "0x10", "١٢"])
def test_malformed_counters_are_protocol_errors(raw: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        CODECS["counter"].decode(raw)
    assert caught.value.kind is ErrorKind.INVALID_VALUE


@pytest.mark.parametrize("structure", sorted(MINIMAL))
def test_minimal_legacy_values_decode(structure: str) -> None:
    decoded = CODECS[structure].decode(MINIMAL[structure])

    items = decoded if isinstance(decoded, tuple) else (decoded,)
    assert items
    assert all(item.is_legacy for item in items if "protocol_version" in type(item).model_fields)


@pytest.mark.parametrize(
    ("raw", "kind", "field"),
    [
        (b"\xff\xfe", ErrorKind.INVALID_ENCODING, None),
        ("not json", ErrorKind.INVALID_JSON, None),
        ("[]", ErrorKind.NOT_AN_OBJECT, None),
        ("{}", ErrorKind.MISSING_FIELD, "id"),
        ('{"id":"1","type":"json","data":"{}","protocolVersion":3}', ErrorKind.UNSUPPORTED_VERSION, "protocolVersion"),
        ('{"id":"1","type":"json","data":"{}","protocolVersion":0}', ErrorKind.INVALID_FIELD, "protocolVersion"),
        ('{"id":"1","type":"json","data":"{}","protocolVersion":"2"}', ErrorKind.INVALID_FIELD, "protocolVersion"),
        ('{"id":"1","type":"json","data":"{}","protocolVersion":true}', ErrorKind.INVALID_FIELD, "protocolVersion"),
        ('{"id":"1","type":"json","data":"nope"}', ErrorKind.INVALID_FIELD, "data"),
        ('{"id":"1","type":"json","data":"[1]"}', ErrorKind.INVALID_FIELD, "data"),
        ('{"id":"1","type":"xml","data":"{}"}', ErrorKind.INVALID_FIELD, "type"),
    ],
)
def test_job_errors_name_their_kind_and_field(raw: str | bytes, kind: ErrorKind, field: str | None) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_job(raw)
    assert (caught.value.kind, caught.value.field, caught.value.raw) == (kind, field, raw)
    assert caught.value.structure == "job"


@pytest.mark.parametrize("version", ["²", "٣", "9" * 5000, "-1", "", "2.0", " 2"])
def test_odd_schedule_versions_are_protocol_errors(version: str) -> None:
    fields = {"id": "s", "cron": "* * * * *", "queue": "q", "job": MINIMAL["job"], "protocolVersion": version}
    with pytest.raises(ProtocolError) as caught:
        decode_schedule(fields)
    assert caught.value.field == "protocolVersion"
    assert caught.value.raw == fields


def test_stream_entry_errors_carry_the_whole_entry() -> None:
    entry = {b"event": b"{", b"other": b"kept"}
    with pytest.raises(ProtocolError) as caught:
        decode_event_fields(entry)
    assert caught.value.raw == entry
    assert caught.value.kind is ErrorKind.INVALID_JSON

    with pytest.raises(ProtocolError) as caught:
        decode_event_fields({b"other": b"x"})
    assert caught.value.kind is ErrorKind.MISSING_FIELD


def test_an_event_document_is_the_event_and_its_json_as_parsed() -> None:
    text = '{"type": "started", "queue": "q", "timestamp": 5, "future": {"x": [1.5, "\\u00e9"]}, "jobId": "j"}'
    event, document = decode_event_document({b"event": text.encode()})
    assert event == decode_event_fields({"event": text})
    assert list(document) == ["type", "queue", "timestamp", "future", "jobId"]
    assert document == json.loads(text)
    with pytest.raises(ProtocolError) as caught:
        decode_event_document({b"event": b"{", b"other": b"kept"})
    assert caught.value.raw == {b"event": b"{", b"other": b"kept"}


@pytest.mark.parametrize("raw", [b"event", "event", 5, None, ["event"]])
def test_stream_decoder_rejects_what_is_not_a_field_map(raw: Any) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_event_fields(raw)
    assert caught.value.kind is ErrorKind.NOT_AN_OBJECT
    assert caught.value.raw == raw


# -- text edge cases -------------------------------------------------------------------------------


def test_a_surrogate_pair_is_written_as_the_character_it_spells() -> None:
    job = JobPayload.create("x", job_id="1", created_at_ms=0).model_copy(update={"error": "a\ud83d\ude00b"})

    encoded = encode_job(job)

    assert '"error":"a\U0001f600b"' in encoded
    assert decode_job(encoded).error == "a\U0001f600b"
    assert encode_job(decode_job(encoded)) == encoded


@pytest.mark.parametrize(
    ("value", "written"), [("\ud800", "\\ud800"), ("\udfff", "\\udfff"), ("\udc00\ud800", "\\udc00\\ud800")]
)
def test_lone_surrogates_are_escaped_in_lowercase_as_well_formed_stringify_does(value: str, written: str) -> None:
    job = JobPayload.create("x", job_id="1", created_at_ms=0).model_copy(update={"error": value})

    encoded = encode_job(job)

    assert f'"error":"{written}"' in encoded
    encoded.encode("utf-8")
    assert decode_job(encoded).error == value


def test_non_ascii_and_slashes_are_written_raw() -> None:
    job = JobPayload.create("ünï/cødé", {"path": "a/b", "emoji": "\U0001f680"}, job_id="1", created_at_ms=0)

    encoded = encode_job(job)

    assert "\\u" not in encoded
    assert "\\/" not in encoded
    assert "ünï/cødé" in encoded
    assert "\U0001f680" in encoded


# -- jobs ------------------------------------------------------------------------------------------


def test_create_builds_a_json_job_in_canonical_form() -> None:
    before = int(time.time() * 1000)
    job = JobPayload.create("send-email", {"to": "a@example.com"})
    after = int(time.time() * 1000)

    assert job.type is JobType.JSON
    assert json.loads(job.data) == {"job": "send-email", "properties": {"to": "a@example.com"}}
    assert job.data == '{"job":"send-email","properties":{"to":"a@example.com"}}'
    assert (job.name, job.properties, job.class_name) == ("send-email", {"to": "a@example.com"}, None)
    assert job.attempts == 0
    assert job.created_at_ms is not None and before <= job.created_at_ms <= after
    assert str(uuid.UUID(job.id)) == job.id
    assert not job.is_legacy
    assert list(json.loads(encode_job(job))) == ["id", "type", "data", "createdAt", "attempts", "protocolVersion"]


def test_create_with_class_type_sets_class_name() -> None:
    job = JobPayload.create("App\\Jobs\\Send", job_type=JobType.CLASS, job_id="j1", created_at_ms=5)

    assert job.class_name == "App\\Jobs\\Send"
    assert json.loads(job.data) == {"class": "App\\Jobs\\Send", "properties": {}}
    assert (job.id, job.created_at_ms, job.name, job.properties) == ("j1", 5, "App\\Jobs\\Send", {})
    assert encode_job(job).startswith('{"id":"j1","type":"class","data":"{\\"class\\":\\"App\\\\\\\\Jobs')


def test_create_writes_every_option_in_push_order() -> None:
    job = JobPayload.create(
        "n",
        {"a": 1},
        job_id="j",
        job_type=JobType.CLASS,
        created_at_ms=1,
        delay_seconds=2,
        max_attempts=5,
        group_id="g",
        priority="high",
        retry_after_seconds=3,
        retry_multiplier=1.5,
    )
    failed = job.model_copy(update={"error": "boom", "failed_at_ms": 9})

    assert list(json.loads(encode_job(failed))) == list(CANONICAL_JOB_ORDER)


def test_create_needs_a_name() -> None:
    with pytest.raises(ValueError, match="name"):
        JobPayload.create("")


@pytest.mark.parametrize(
    ("data", "class_name", "name", "properties"),
    [
        ('{"job":"a","properties":{"x":1}}', None, "a", {"x": 1}),
        ('{"class":"C","properties":[]}', None, "C", {}),
        ('{"job":"","class":"C"}', "D", "C", {}),
        ('{"job":5}', "D", "D", {}),
        ("{}", None, None, {}),
    ],
)
def test_name_and_properties_read_data(
    data: str, class_name: str | None, name: str | None, properties: dict[str, Any]
) -> None:
    job = JobPayload(id="1", type=JobType.JSON, data=data, class_name=class_name)

    assert (job.name, job.properties) == (name, properties)


def test_data_given_as_an_object_is_stored_as_compact_json() -> None:
    job = JobPayload.model_validate({"id": "1", "type": "json", "data": {"job": "ü", "properties": {}}})

    assert job.data == '{"job":"ü","properties":{}}'


@pytest.mark.parametrize(
    ("attempt", "delay"), [(0, 1), (1, 1), (2, 2), (3, 4), (4, 8), (12, 2048), (13, 3600), (50, 3600)]
)
def test_retry_delay_default_backoff(attempt: int, delay: int) -> None:
    # WIRE_FACTS: the Node consumer waits 2 s, then 4 s (attempts 2 and 3 of maxAttempts 3).
    assert retry_delay_s(JobPayload.create("x"), attempt) == delay


@pytest.mark.parametrize(
    ("after", "multiplier", "attempt", "delay"),
    [
        (5, 3, 1, 5),
        (5, 3, 3, 45),
        (1.5, 3, 2, 5),
        (0.1, 1, 7, 1),
        (0.1, 3, 2, 1),
        (0, 2, 10, 0),
        (10, 0, 3, 0),
        (10, 0.5, 3, 3),
        (3599.5, 1, 1, 3600),
        (7200, 1, 1, 3600),
        (1, 2, 10**6, 3600),
        (1e308, 10, 2, 3600),
        (1e308, 2, 3, 3600),
    ],
)
def test_retry_delay_custom_policy(after: float, multiplier: float, attempt: int, delay: int) -> None:
    job = JobPayload.create("x", retry_after_seconds=after, retry_multiplier=multiplier)

    assert retry_delay_s(job, attempt) == delay


@settings(max_examples=300, deadline=None)
@given(
    after=st.floats(min_value=0, allow_nan=False, allow_infinity=False),
    multiplier=st.floats(min_value=0, allow_nan=False, allow_infinity=False),
    attempt=st.integers(min_value=-5, max_value=10**4),
)
def test_retry_delay_is_a_capped_ceiling(after: float, multiplier: float, attempt: int) -> None:
    job = JobPayload.create("x", retry_after_seconds=after, retry_multiplier=multiplier)

    delay = retry_delay_s(job, attempt)

    assert isinstance(delay, int)
    assert 0 <= delay <= 3600
    try:
        exact = after * multiplier ** max(attempt - 1, 0)
    except OverflowError:
        exact = math.inf
    if exact <= 3600:
        assert delay == math.ceil(exact)
    else:
        assert delay == 3600


@pytest.mark.parametrize(
    "raw",
    [
        # The producer's single push: compact, push field order, raw UTF-8, "/" unescaped.
        '{"id":"1700000000000-k3j9x2a","type":"json","data":"{\\"job\\":\\"send-email\\",\\"properties\\":'
        '{\\"to\\":\\"zoë@example.com\\",\\"url\\":\\"https://example.com/a/b\\"}}",'
        '"createdAt":1700000000000,"delaySeconds":0,"attempts":0,"maxAttempts":3}',
        '{"id":"5f0c7e1e-7c1a-4f7e-9b55-2f8c1d7e4a10","type":"class","data":"{\\"class\\":\\"App\\\\\\\\Jobs\\\\\\\\Ship\\",'
        '\\"properties\\":{\\"emoji\\":\\"🚀\\",\\"kanji\\":\\"漢字\\"}}","className":"App\\\\Jobs\\\\Ship",'
        '"createdAt":1700000000001,"attempts":0,"maxAttempts":5,"groupId":"tenant/42"}',
        '{"id":"1700000000002-aaaaaaa","type":"json","data":"{\\"job\\":\\"x\\",\\"properties\\":{}}",'
        '"createdAt":1700000000002,"delaySeconds":1.5,"attempts":2,"maxAttempts":3,"error":"Ошибка: \\"quoted\\"\\n",'
        '"failedAt":1700000000003}',
        # Numbers as JavaScript writes them.
        '{"id":"n","type":"json","data":"{}","createdAt":1700000000004,"delaySeconds":0.1,"attempts":0,"maxAttempts":3}',
    ],
)
def test_node_producer_job_reencodes_byte_identically(raw: str) -> None:
    job = decode_job(raw)

    assert job.is_legacy
    assert encode_job(job) == raw
    assert encode_job(decode_job(raw.encode("utf-8"))) == raw


def test_dead_letter_entry_keeps_every_field_in_push_order() -> None:
    raw = (
        '{"id":"d1","type":"class","className":"C","data":"{\\"class\\":\\"C\\"}","createdAt":1,"attempts":3,'
        '"maxAttempts":3,"priority":"high","retryAfterSeconds":1,"retryMultiplier":2,"error":"e","failedAt":2}'
    )

    encoded = encode_job(decode_job(raw))

    assert json.loads(encoded) == json.loads(raw)
    assert list(json.loads(encoded)) == [key for key in CANONICAL_JOB_ORDER if key in json.loads(raw)]


# -- workers, logs, pulse --------------------------------------------------------------------------

NODE_CONSUMER_HEARTBEAT = {
    "id": "worker-a1b2c3",
    "status": "online",
    "hostname": "box-1",
    "pid": 4242,
    "uptime": 12,
    "last_ping": "2026-11-29T13:00:00.123Z",
    "queues": ["emails", "reports"],
    "metrics": {"cpu": 0.42, "cores": 8, "ram": {"rss": 120, "heapUsed": 80, "total": 16000}},
}


def test_node_consumer_heartbeat_maps_to_the_console_shape() -> None:
    heartbeat = decode_heartbeat(json.dumps(NODE_CONSUMER_HEARTBEAT, separators=(",", ":")))

    assert heartbeat.is_legacy
    assert heartbeat.timestamp == datetime(2026, 11, 29, 13, 0, 0, 123000, tzinfo=timezone.utc)
    assert heartbeat.status is WorkerStatus.ONLINE
    assert (heartbeat.id, heartbeat.hostname, heartbeat.pid, heartbeat.uptime_s) == ("worker-a1b2c3", "box-1", 4242, 12)
    assert heartbeat.queues == ["emails", "reports"]
    assert heartbeat.load_avg == [0.42]
    assert heartbeat.cores == 8
    assert (heartbeat.memory.rss, heartbeat.memory.heap_used, heartbeat.memory.heap_total) == ("120MB", "80MB", "N/A")
    assert heartbeat.model_extra == {
        "last_ping": NODE_CONSUMER_HEARTBEAT["last_ping"],
        "metrics": NODE_CONSUMER_HEARTBEAT["metrics"],
    }
    assert decode_heartbeat(encode_heartbeat(heartbeat)) == heartbeat


def test_node_consumer_mapping_keeps_the_original_fields() -> None:
    original = json.loads(json.dumps(NODE_CONSUMER_HEARTBEAT))

    mapped = from_node_consumer_heartbeat(original)

    assert original == NODE_CONSUMER_HEARTBEAT  # the input is not modified
    assert {key: mapped[key] for key in original} == original
    assert mapped["timestamp"] == "2026-11-29T13:00:00.123Z"


def test_console_shape_heartbeat_is_left_alone() -> None:
    console = {"id": "w", "hostname": "h", "pid": 1, "timestamp": "2026-11-29T13:00:00.000Z", "metrics": {"cpu": 9}}

    assert from_node_consumer_heartbeat(console) is console


def test_heartbeat_timestamps_are_written_as_javascript_iso_strings() -> None:
    raw = '{"id":"w","hostname":"h","pid":1,"timestamp":"2026-11-29T14:00:00.123456+01:00"}'

    encoded = json.loads(encode_heartbeat(decode_heartbeat(raw)))

    assert encoded["timestamp"] == "2026-11-29T13:00:00.123Z"


@pytest.mark.parametrize(
    ("moment", "written"),
    [
        (datetime(999, 1, 2, 3, 4, 5, 678000), "0999-01-02T03:04:05.678Z"),
        (datetime(1, 1, 2), "0001-01-02T00:00:00.000Z"),
        (datetime(9999, 12, 30, 23, 59, 59, 999999), "9999-12-30T23:59:59.999Z"),
    ],
)
def test_iso_timestamps_have_four_digit_years(moment: datetime, written: str) -> None:
    raw = json.dumps({"level": "info", "message": "m", "timestamp": moment.isoformat()})

    encoded = encode_log(decode_log(raw))

    assert json.loads(encoded)["timestamp"] == written
    assert decode_log(encoded).timestamp == moment.replace(
        microsecond=moment.microsecond // 1000 * 1000, tzinfo=timezone.utc
    )


@settings(max_examples=300, deadline=None)
@given(ms=st.integers(min_value=0, max_value=253402300799999))
def test_epoch_millisecond_timestamps_are_read_exactly(ms: int) -> None:
    entry = decode_log(f'{{"level":"info","message":"m","timestamp":{ms}}}')

    assert entry.timestamp == datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)


def test_warning_level_reads_as_warn() -> None:
    entry = decode_log('{"level":"warning","message":"m","workerId":"w","timestamp":"2026-11-29T13:00:00.000Z"}')

    assert entry.level is LogLevel.WARN
    assert json.loads(encode_log(entry))["level"] == "warn"


def test_unknown_log_levels_are_kept() -> None:
    entry = decode_log('{"level":"trace","message":"m","timestamp":"2026-11-29T13:00:00.000Z"}')

    assert entry.level == "trace"
    assert json.loads(encode_log(entry))["level"] == "trace"


@pytest.mark.parametrize("language", ['"rust"', '""', '"NODE"', '"python3"', "null"])
def test_unknown_pulse_language_reads_as_other(language: str) -> None:
    node = decode_pulse(MINIMAL["pulse"][:-1] + f',"language":{language}}}')

    assert node.language is Language.OTHER
    assert json.loads(encode_pulse(node))["language"] == "other"


@pytest.mark.parametrize("language", list(Language))
def test_known_pulse_languages_are_kept(language: Language) -> None:
    node = decode_pulse(MINIMAL["pulse"][:-1] + f',"language":"{language.value}"}}')

    assert node.language is language


# -- nulls and numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("structure", "with_nulls", "without"),
    [
        (
            "job",
            '{"id":"1","type":"json","data":"{}","className":null,"groupId":null,"priority":null,"error":null}',
            '{"id":"1","type":"json","data":"{}"}',
        ),
        (
            "heartbeat",
            '{"id":"w","hostname":"h","pid":1,"timestamp":"2026-11-29T13:00:00.000Z","uptime":null,"concurrency":null,'
            '"queues":null,"memory":{"rss":null},"loadAvg":null,"status":null}',
            '{"id":"w","hostname":"h","pid":1,"timestamp":"2026-11-29T13:00:00.000Z","memory":{}}',
        ),
        (
            "pulse",
            MINIMAL["pulse"][:-1] + ',"version":null,"platform":null,"language":null,"queues":null,"meta":null}',
            MINIMAL["pulse"],
        ),
        (
            "alert_rules",
            '[{"id":"r","name":"n","type":"backlog","threshold":1,"queue":null,"cooldownMinutes":null}]',
            MINIMAL["alert_rules"],
        ),
        ("maintenance_config", '{"autoCleanup":null,"retentionDays":null,"lastRun":null}', "{}"),
        (
            "alert_config",
            '{"channels":{"slack":null,"email":{"smtpPass":null,"enabled":null}}}',
            '{"channels":{"email":{}}}',
        ),
    ],
)
def test_explicit_nulls_read_as_absent(structure: str, with_nulls: str, without: str) -> None:
    codec = CODECS[structure]

    assert codec.decode(with_nulls) == codec.decode(without)
    assert codec.encode(codec.decode(with_nulls)) == codec.encode(codec.decode(without))


def test_unknown_members_keep_their_nulls() -> None:
    raw = '{"id":"1","type":"json","data":"{}","x":null,"y":{"z":null},"w":[null]}'

    job = decode_job(raw)

    assert job.model_extra == {"x": None, "y": {"z": None}, "w": [None]}
    assert encode_job(job) == raw


@pytest.mark.parametrize("version", ["null", "2.0", '"2"', "true", "0", "-1"])
def test_protocol_version_must_be_a_positive_integer_literal(version: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_job(MINIMAL["job"][:-1] + f',"protocolVersion":{version}}}')
    assert (caught.value.kind, caught.value.field) == (ErrorKind.INVALID_FIELD, "protocolVersion")


def test_integral_floats_are_written_as_integers() -> None:
    job = JobPayload.create(
        "x", job_id="1", created_at_ms=0, delay_seconds=2.0, retry_after_seconds=1.0, retry_multiplier=2.5
    )
    extra = JobPayload.model_validate({**job.model_dump(by_alias=True), "f": [1.0, -0.0, 0.5, 1e300, {"g": 3.0}]})

    encoded = encode_job(extra)

    assert '"delaySeconds":2,' in encoded
    assert '"retryAfterSeconds":1,' in encoded
    assert '"retryMultiplier":2.5,' in encoded
    assert encoded.endswith('"f":[1,0,0.5,1e+300,{"g":3}]}')


JS_FORMS = [
    (2.0, "2"),
    (-0.0, "0"),
    (0.5, "0.5"),
    (123.456, "123.456"),
    (0.00001, "0.00001"),
    (1e-6, "0.000001"),
    (2.5e-6, "0.0000025"),
    (1e-7, "1e-7"),
    (1.5e-9, "1.5e-9"),
    (5e-324, "5e-324"),
    (1e16, "10000000000000000"),
    (2.0**60, "1152921504606847000"),
    (1e20, "100000000000000000000"),
    (1e21, "1e+21"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
]
"""Floats and how ECMAScript's Number.prototype.toString writes them (PROTOCOL.md 2.2)."""


@pytest.mark.parametrize(("value", "written"), JS_FORMS, ids=[written for _, written in JS_FORMS])
@pytest.mark.parametrize("slow_path", [False, True], ids=["fast", "surrogate"])
def test_numbers_are_written_in_javascript_forms(value: float, written: str, slow_path: bool) -> None:
    # A lone surrogate anywhere sends the encoder down its other path; both must agree.
    error = "\ud800" if slow_path else "e"
    fields = {"id": "1", "type": "json", "data": "{}", "delaySeconds": value, "error": error}
    job = JobPayload.model_validate({**fields, "x": value, "y": [value, {"z": value}]})

    encoded = encode_job(job)

    assert f'"delaySeconds":{written},' in encoded
    assert encoded.endswith(f'"x":{written},"y":[{written},{{"z":{written}}}]}}')
    assert encode_job(decode_job(encoded)) == encoded


def test_numbers_inside_strings_are_left_alone() -> None:
    job = JobPayload.create("x", {"n": "1.0 1e-07 -0.0"}, job_id="1.0", created_at_ms=0)

    encoded = encode_job(job.model_copy(update={"error": ":1.0,[2e-07"}))

    assert '"id":"1.0"' in encoded
    assert '"error":":1.0,[2e-07"' in encoded
    assert '\\"n\\":\\"1.0 1e-07 -0.0\\"' in encoded


@pytest.mark.parametrize(
    "raw",
    [
        '{"id":"1","type":"json","data":"{}","\\ud800":1}',
        '{"id":"1","type":"json","data":"{}","x":{"\\ud800":1}}',
        '{"id":"1","type":"json","data":"{}","x":[[{"a\\udfffb":1}]]}',
    ],
)
def test_member_names_with_a_lone_surrogate_are_refused(raw: str) -> None:
    # pydantic cannot keep such a name, so it could never be written back.
    with pytest.raises(ProtocolError) as caught:
        decode_job(raw)
    assert caught.value.kind is ErrorKind.INVALID_FIELD
    assert caught.value.raw == raw


def test_member_names_with_a_surrogate_pair_are_kept() -> None:
    job = decode_job('{"id":"1","type":"json","data":"{}","x":{"\\ud83d\\ude00":1}}')

    assert job.model_extra == {"x": {"\U0001f600": 1}}
    assert encode_job(job) == '{"id":"1","type":"json","data":"{}","x":{"\U0001f600":1}}'


def test_non_finite_floats_are_refused_when_a_model_is_built() -> None:
    for value in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError):
            JobPayload.create("x", retry_after_seconds=value)
        with pytest.raises(ValueError):
            WorkerHeartbeat.model_validate(
                {"id": "w", "hostname": "h", "pid": 1, "timestamp": "2026-11-29T13:00:00.000Z", "loadAvg": [value]}
            )


@pytest.mark.parametrize(
    ("iso", "ms"),
    [
        ("2039-01-30T23:54:17.357Z", 2180044457357),
        ("2023-11-14T22:13:20.123Z", 1700000000123),
        ("2023-11-14T23:13:20.123+01:00", 1700000000123),
        ("1970-01-01T00:00:00.001Z", 1),
        ("2100-01-01T00:00:00.999Z", 4102444800999),
    ],
)
def test_maintenance_last_run_reads_iso_times_to_the_millisecond(iso: str, ms: int) -> None:
    assert decode_maintenance_config(json.dumps({"lastRun": iso})).last_run_ms == ms


# -- alerts ----------------------------------------------------------------------------------------


def test_absent_alert_rules_mean_the_defaults() -> None:
    assert decode_alert_rules(None) == DEFAULT_ALERT_RULES
    summary = {(rule.type, rule.threshold, rule.cooldown_minutes) for rule in DEFAULT_ALERT_RULES}
    assert summary == {(AlertType.FAILURE, 50, 30), (AlertType.BACKLOG, 1000, 60), (AlertType.WORKER_LOST, 1, 15)}
    assert decode_alert_rules(encode_alert_rules(DEFAULT_ALERT_RULES)) == DEFAULT_ALERT_RULES


def test_an_empty_rules_array_means_no_rules() -> None:
    assert decode_alert_rules("[]") == ()
    assert decode_alert_rules(b"[]") == ()


def test_rule_errors_name_the_rule() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_alert_rules('[{"id":"a","name":"n","type":"backlog","threshold":1},{"id":"b"}]')
    assert caught.value.field is not None and caught.value.field.startswith("1.")


def test_smtp_password_is_never_in_a_repr_but_is_written() -> None:
    raw = '{"channels":{"email":{"enabled":true,"smtpHost":"smtp.example.com","smtpPass":"hunter2-s3cret"}}}'

    config = decode_alert_config(raw)

    assert config.channels.email is not None and config.channels.email.smtp_pass is not None
    assert config.channels.email.smtp_pass.get_secret_value() == "hunter2-s3cret"
    for shown in (repr(config), str(config), repr(config.channels), repr(config.channels.email)):
        assert "hunter2-s3cret" not in shown
    assert '"smtpPass":"hunter2-s3cret"' in encode_alert_config(config)
    assert decode_alert_config(encode_alert_config(config)) == config


def test_alert_config_built_in_python_hides_the_password() -> None:
    config = AlertConfig.model_validate({"channels": {"email": {"smtpPass": "p4ss-w0rd", "to": ["a@x", "b@x"]}}})

    assert "p4ss-w0rd" not in repr(config)
    assert json.loads(encode_alert_config(config))["channels"]["email"] == {
        "enabled": False,
        "smtpPass": "p4ss-w0rd",
        "to": "a@x, b@x",
    }


@pytest.mark.parametrize(("written", "read"), [(20, "20"), (20.0, "20"), (20.5, "20.5"), (1e21, "1e+21")])
def test_a_numeric_pulse_version_reads_as_javascript_prints_it(written: float, read: str) -> None:
    node = json.loads(MINIMAL["pulse"])
    node["version"] = written
    assert decode_pulse(json.dumps(node)).version == read


@given(st.lists(text(), max_size=5))
def test_a_worker_queue_list_round_trips(queues: list[str]) -> None:
    encoded = encode_worker_queues(queues)
    assert decode_worker_queues(encoded) == queues


@pytest.mark.parametrize("raw", ['{"q":1}', '["a",1]', "null", "[", b"\xff[]", "[" * 100_000, '"emails"', ""])
def test_an_unreadable_worker_queue_list_is_a_protocol_error(raw: str | bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_worker_queues(raw)
    assert (caught.value.structure, caught.value.raw) == ("worker_queues", raw)


def test_a_worker_queue_list_is_written_as_the_worker_writes_it() -> None:
    assert encode_worker_queues(("emails", "zoë/β", "a\u2028b")) == '["emails","zoë/β","a\u2028b"]'
