"""``zenith_protocol._types``: the one ISO-8601 grammar readers accept and the form writers write (PROTOCOL 2.4)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zenith_protocol import ErrorKind, ProtocolError, decode_heartbeat, decode_log, decode_maintenance_config
from zenith_protocol._types import epoch_ms, format_iso, parse_iso

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
LOG = '{"level":"info","message":"m","timestamp":%s}'


def _read(timestamp: str) -> datetime:
    return decode_log(LOG % json.dumps(timestamp)).timestamp


@st.composite
def _iso_texts(draw: st.DrawFn) -> tuple[str, datetime]:
    """A date-time written in any form of the grammar, and the UTC moment (truncated to ms) it names."""
    moment = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    digits = draw(st.integers(0, 12))
    fraction = draw(st.text("0123456789", min_size=digits, max_size=digits))
    offset_minutes = draw(st.one_of(st.none(), st.integers(-(23 * 60 + 59), 23 * 60 + 59)))
    if offset_minutes is None:
        suffix, offset = draw(st.sampled_from(["Z", ""])), timedelta(0)
    else:
        sign = "-" if offset_minutes < 0 else "+"
        hours, minutes = divmod(abs(offset_minutes), 60)
        suffix, offset = f"{sign}{hours:02d}:{minutes:02d}", timedelta(minutes=offset_minutes)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + (f".{fraction}" if digits else "") + suffix
    milliseconds = int(fraction[:3].ljust(3, "0"))
    expected = moment.replace(microsecond=milliseconds * 1000, tzinfo=timezone.utc) - offset
    return text, expected


@settings(max_examples=300, deadline=None)
@given(case=_iso_texts())
def test_every_form_of_the_grammar_reads_as_utc_truncated_to_milliseconds(case: tuple[str, datetime]) -> None:
    text, expected = case

    assert _read(text) == expected
    assert parse_iso(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:00:05.123Z", "2026-01-01T00:00:05.123Z"),
        ("2026-01-01T00:00:05Z", "2026-01-01T00:00:05.000Z"),
        ("2026-01-01T00:00:05.1Z", "2026-01-01T00:00:05.100Z"),
        ("2026-01-01T00:00:05.123999999Z", "2026-01-01T00:00:05.123Z"),
        ("2026-01-01T00:00:05", "2026-01-01T00:00:05.000Z"),
        ("2026-01-01T05:30:05.5+05:30", "2026-01-01T00:00:05.500Z"),
        ("2025-12-31T23:00:05-01:00", "2026-01-01T00:00:05.000Z"),
        ("2026-01-01T00:00:05-00:00", "2026-01-01T00:00:05.000Z"),
        ("2028-02-29T23:59:59.999Z", "2028-02-29T23:59:59.999Z"),
    ],
)
def test_readers_write_back_the_one_form_writers_use(text: str, expected: str) -> None:
    assert format_iso(_read(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01",  # a date alone
        "2026-01-01T00:00Z",  # no seconds
        "2026-01-01 00:00:05Z",  # a space for T
        "2026-01-01t00:00:05z",  # lower-case t and z
        "20260101T000005Z",  # the basic (compact) format
        "2026-01-01T00:00:05,123Z",  # a comma before the fraction
        "2026-01-01T00:00:05.Z",  # a point without digits
        "2026-01-01T00:00:05+0100",  # an offset without colon
        "2026-01-01T00:00:05+01",  # an offset without minutes
        "2026-01-01T00:00:05+24:00",  # an offset out of range
        "2026-01-01T00:00:05+01:60",
        "2026-01-01T24:00:00Z",  # hour 24
        "2026-01-01T00:00:60Z",  # a leap second
        "2026-02-29T00:00:00Z",  # a day that does not exist
        "2026-13-01T00:00:00Z",
        "0000-01-01T00:00:00Z",  # year 0
        "+002026-01-01T00:00:05Z",  # an expanded year
        "2026-W01-1T00:00:05Z",  # a week date
        "1767225600000",  # digits in a string
        " 2026-01-01T00:00:05Z",  # surrounding space
        "2026-01-01T00:00:05Z ",
        "２０26-01-01T00:00:05Z",  # digits that are not ASCII
        "0001-01-01T00:00:00+00:01",  # before year 1 in UTC
        "9999-12-31T23:59:59-00:01",  # after year 9999 in UTC
    ],
)
def test_anything_outside_the_grammar_is_an_invalid_field(text: str) -> None:
    value = json.dumps(text)
    cases = [
        (decode_log, LOG % value),
        (decode_heartbeat, f'{{"id":"w","hostname":"h","pid":1,"timestamp":{value}}}'),
        (decode_heartbeat, f'{{"id":"w","hostname":"h","pid":1,"last_ping":{value}}}'),
    ]
    if not text.isdigit():  # lastRun also takes epoch ms as a decimal string (10.4)
        cases.append((decode_maintenance_config, f'{{"lastRun":{value}}}'))
    for decode, raw in cases:
        with pytest.raises(ProtocolError) as caught:
            decode(raw)
        assert (caught.value.kind, caught.value.field) in [
            (ErrorKind.INVALID_FIELD, "timestamp"),
            (ErrorKind.INVALID_FIELD, "lastRun"),
        ], raw


@pytest.mark.parametrize(
    ("number", "ms"),
    [("1767225600123", 1767225600123), ("1.767225600123e12", 1767225600123), ("1767225600123.9", 1767225600123)],
)
def test_a_number_in_an_iso_field_is_epoch_milliseconds_truncated(number: str, ms: int) -> None:
    assert _read_number(number) == EPOCH + timedelta(milliseconds=ms)


def _read_number(number: str) -> datetime:
    return decode_log(LOG % number).timestamp


@pytest.mark.parametrize("number", ["-1", "1e300", str(10**30)])
def test_a_number_outside_the_years_1970_to_9999_is_an_invalid_field(number: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        _read_number(number)
    assert caught.value.kind is ErrorKind.INVALID_FIELD


@settings(max_examples=200, deadline=None)
@given(ms=st.integers(0, 253402300799999))
def test_writers_write_what_readers_read_back_exactly(ms: int) -> None:
    moment = EPOCH + timedelta(milliseconds=ms)
    written = format_iso(moment)

    assert len(written) == 24 and written.endswith("Z")
    assert epoch_ms(parse_iso(written)) == ms
