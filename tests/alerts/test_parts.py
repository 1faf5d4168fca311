"""Snapshot parts read from Redis replies, including the replies that do not decode."""

from __future__ import annotations

from redis.exceptions import ResponseError

from zenith_sdk.alerts._parts import archive_lags, channel_failures, created_at, job_id


def test_a_job_that_does_not_decode_still_gives_its_created_at_and_is_known_by_its_bytes() -> None:
    legacy = b'{"id": "j1", "createdAt": 1700000000000, "attempts": "many"}'

    assert created_at(legacy) == 1_700_000_000_000
    assert created_at(b'{"createdAt": true}') is None
    assert created_at(b"[1, 2]") is None and created_at(b"not json") is None
    assert job_id(b"not json") == "not json"


def test_unreadable_channel_health_counts_as_no_failure() -> None:
    assert channel_failures({b"slack": b"{not json"}) == {"slack": 0}


def test_archive_lags_from_xinfo_groups() -> None:
    groups = [{"name": b"zenith-archive", "lag": 12, "pending": 3}, {"name": "old", "lag": None, "pending": 4}]

    assert archive_lags(groups) == {"zenith-archive": 12, "old": 4}
    assert archive_lags(ResponseError("ERR no such key")) == {}
    assert archive_lags(ResponseError("NOPERM")) is None and archive_lags(None) is None
