"""Single-job and whole-queue operations against a real Redis."""

from __future__ import annotations

import pytest
import redis
from event_stream import stream_events
from wire_data import dead_letter_job, node_job

from zenith_protocol import (
    ConfigError,
    EventType,
    JobPayload,
    KeySpace,
    NotFoundError,
    OperatorAction,
    decode_job,
    encode_job,
)
from zenith_sdk.control import (
    BulkAction,
    JobState,
    bulk,
    clear_failed,
    delete_job,
    get_job,
    list_jobs,
    pause,
    promote_job,
    purge,
    queue_snapshots,
    resume,
    retry_job,
    search,
)
from zenith_sdk.events import EventEmitter

NOW = 1_767_225_600_000


def _seed(r: redis.Redis, space: KeySpace) -> None:
    r.lpush(space.queue("q"), *(node_job(f"w-{n}", "work", {"n": n}, created_at=NOW + n) for n in range(5)))
    r.zadd(space.delayed("q"), {node_job(f"d-{n}", "later", {}, created_at=NOW): NOW + 1000 * n for n in range(3)})
    r.lpush(space.failed("q"), *(dead_letter_job(f"f-{n}", failed_at=NOW + n) for n in range(4)))
    r.lpush(space.failed("q"), "{broken")


@pytest.mark.parametrize("state", list(JobState))
@pytest.mark.parametrize("offset", [2**32 - 1, 2**32, 2**63, 2**64])
def test_a_page_past_any_redis_collection_is_empty_not_an_error(
    r: redis.Redis, keyspace: KeySpace, state: JobState, offset: int
) -> None:
    _seed(r, keyspace)
    assert list_jobs(r, "q", state, keyspace=keyspace, offset=offset, limit=1000) == []


def test_pages_in_both_orders_with_invalid_entries_kept(r: redis.Redis, keyspace: KeySpace) -> None:
    _seed(r, keyspace)

    newest = list_jobs(r, "q", JobState.WAITING, keyspace=keyspace, limit=2)
    oldest = list_jobs(r, "q", JobState.WAITING, keyspace=keyspace, limit=2, oldest_first=True)
    second_page = list_jobs(r, "q", JobState.WAITING, keyspace=keyspace, offset=2, limit=2, oldest_first=True)
    delayed = list_jobs(r, "q", JobState.DELAYED, keyspace=keyspace, oldest_first=True)
    failed = list_jobs(r, "q", JobState.FAILED, keyspace=keyspace)

    assert [e.job.id for e in newest if e.job] == ["w-4", "w-3"]
    assert [e.job.id for e in oldest if e.job] == ["w-0", "w-1"]
    assert [e.job.id for e in second_page if e.job] == ["w-2", "w-3"]
    assert [(e.job.id if e.job else None, e.due_ms) for e in delayed] == [
        ("d-0", NOW),
        ("d-1", NOW + 1000),
        ("d-2", NOW + 2000),
    ]
    assert failed[0].job is None and failed[0].raw == b"{broken" and failed[0].problem is not None
    assert len(failed) == 5
    with pytest.raises(ValueError, match="limit"):
        list_jobs(r, "q", JobState.FAILED, keyspace=keyspace, limit=0)


def test_get_finds_a_job_in_any_state(r: redis.Redis, keyspace: KeySpace) -> None:
    _seed(r, keyspace)

    assert get_job(r, "q", "d-1", keyspace=keyspace).state is JobState.DELAYED
    found = get_job(r, "q", "f-2", keyspace=keyspace)
    assert (found.state, found.job.id if found.job else None) == (JobState.FAILED, "f-2")
    assert get_job(r, "q", "w-3", keyspace=keyspace).state is JobState.WAITING
    with pytest.raises(NotFoundError, match="nope"):
        get_job(r, "q", "nope", keyspace=keyspace)
    with pytest.raises(NotFoundError, match="queue"):
        get_job(r, "missing", "w-1", keyspace=keyspace)


def test_retry_delete_and_promote_one_job(r: redis.Redis, keyspace: KeySpace) -> None:
    _seed(r, keyspace)
    events = EventEmitter(r, keyspace=keyspace)

    assert retry_job(r, "q", "f-1", keyspace=keyspace, actor="ann", events=events) is JobState.FAILED
    assert promote_job(r, "q", "d-2", keyspace=keyspace, actor="ann", events=events) is JobState.DELAYED
    assert delete_job(r, "q", "w-0", keyspace=keyspace, actor="ann", events=events) is JobState.WAITING

    waiting = [decode_job(raw) for raw in r.lrange(keyspace.queue("q"), 0, -1)]
    assert [job.id for job in waiting] == ["d-2", "w-4", "w-3", "w-2", "w-1"]
    # The dead letter names the lane "high": it is retried there, as the Node retryFailed does.
    (retried,) = [decode_job(raw) for raw in r.lrange(keyspace.lane("q", "high"), 0, -1)]
    assert (retried.id, retried.attempts, retried.error) == ("f-1", 0, None)
    assert r.zcard(keyspace.delayed("q")) == 2
    # Each operation: the job's own event, then the operator's summary.
    assert [(e.type, e.job_id, e.action, e.count, e.actor) for e in stream_events(r, keyspace)] == [
        (EventType.RETRIED, "f-1", None, None, "ann"),
        (EventType.OPERATOR, None, OperatorAction.RETRY, 1, "ann"),
        (EventType.PROMOTED, "d-2", None, None, "ann"),
        (EventType.OPERATOR, None, OperatorAction.PROMOTE, 1, "ann"),
        (EventType.DELETED, "w-0", None, None, "ann"),
        (EventType.OPERATOR, None, OperatorAction.DELETE, 1, "ann"),
    ]
    with pytest.raises(NotFoundError, match="failed or delayed"):
        retry_job(r, "q", "w-1", keyspace=keyspace, actor="ann")


def test_deleting_one_of_two_identical_payloads_removes_exactly_one(r: redis.Redis, keyspace: KeySpace) -> None:
    raw = encode_job(JobPayload.create("x", job_id="twin"))
    other = encode_job(JobPayload.create("x", job_id="other"))
    r.lpush(keyspace.failed("q"), raw, other, raw)

    assert delete_job(r, "q", "twin", keyspace=keyspace, actor="t") is JobState.FAILED
    assert r.lrange(keyspace.failed("q"), 0, -1) == [raw.encode(), other.encode()]
    assert delete_job(r, "q", "twin", keyspace=keyspace, actor="t") is JobState.FAILED
    assert r.lrange(keyspace.failed("q"), 0, -1) == [other.encode()]


def test_pause_resume_clear_and_purge(r: redis.Redis, keyspace: KeySpace) -> None:
    _seed(r, keyspace)
    r.lpush(keyspace.lane("q", "high"), node_job("h-1", "work", {}, created_at=NOW))
    r.lpush(keyspace.processing("q", "w1"), node_job("p-1", "work", {}, created_at=NOW))
    r.lpush(keyspace.queue("other"), node_job("o-1", "work", {}, created_at=NOW))

    pause(r, "q", keyspace=keyspace, actor="t")
    assert [s.paused for s in queue_snapshots(r, keyspace) if s.name == "q"] == [True]
    resume(r, "q", keyspace=keyspace, actor="t")
    assert r.exists(keyspace.paused("q")) == 0
    assert clear_failed(r, "q", keyspace=keyspace, actor="t") == 5

    with pytest.raises(ConfigError, match="confirm='q'"):
        purge(r, "q", confirm="Q", keyspace=keyspace, actor="t")
    assert purge(r, "q", confirm="q", keyspace=keyspace, actor="t") == 4
    assert [s.name for s in queue_snapshots(r, keyspace)] == ["other"]


def test_a_client_that_decodes_replies_gets_the_same_results(redis_url: str, keyspace: KeySpace) -> None:
    text = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        text.lpush(keyspace.failed("q"), *(dead_letter_job(f"f-{n}", failed_at=NOW + n) for n in range(6)))
        text.lpush(
            keyspace.failed("q"), "{broken zoë", node_job("z-1", "greet", {"to": "zoë@example.com"}, created_at=NOW)
        )

        found = get_job(text, "q", "f-1", keyspace=keyspace)
        page = list_jobs(text, "q", JobState.FAILED, keyspace=keyspace, limit=1)
        hits = list(search(text, "zoë", keyspace=keyspace))
        retried = retry_job(text, "q", "f-2", keyspace=keyspace, actor="t")
        by_ids = bulk(text, "q", JobState.FAILED, BulkAction.DELETE, keyspace=keyspace, ids=["f-3", "f-4"], actor="t")
    finally:
        text.close()

    assert found.job is not None and found.job.id == "f-1" and isinstance(found.raw, bytes)
    assert page[0].job is not None and page[0].job.id == "z-1" and isinstance(page[0].raw, bytes)
    assert [hit.job.id for hit in hits if hit.job] == ["z-1"] and "zoë".encode() in hits[0].raw
    assert retried is JobState.FAILED and by_ids.moved == 2
