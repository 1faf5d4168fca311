"""Bulk operations by id against a real Redis: pages, shifted and lost picks, filters, limits, NOSCRIPT.

The progress callback runs after a page is matched and before its picks are sent, so it stands
in for a worker or another operator acting at exactly that moment.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis
from cleanup import delete_prefix
from counting import CountingRedis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol.strategies import jobs
from wire_data import dead_letter_job, node_job

from zenith_protocol import JobPayload, KeySpace, decode_job, encode_job, lane_for
from zenith_sdk.control import BulkAction, JobFilter, JobState, _pick, bulk, get_job
from zenith_sdk.control._pick import decode_object
from zenith_sdk.control._retry import retried
from zenith_sdk.scripts import PICK, scripts_for

NOW = 1_767_225_600_000


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> int:
    """Pages of 7 entries, so a few dozen jobs span many pages."""
    monkeypatch.setattr(_pick, "PAGE", 7)
    return 7


def _fill_failed(r: redis.Redis, space: KeySpace, count: int) -> list[str]:
    """``count`` dead letters id-0 (oldest, at the tail) .. id-<count-1>."""
    r.lpush(space.failed("q"), *(dead_letter_job(f"id-{n}", failed_at=NOW + n) for n in range(count)))
    return [f"id-{n}" for n in range(count)]


def _fill_waiting(r: redis.Redis, space: KeySpace, count: int) -> list[str]:
    r.lpush(space.queue("q"), *(node_job(f"id-{n}", "work", {"n": n}, created_at=NOW) for n in range(count)))
    return [f"id-{n}" for n in range(count)]


def _oldest_first(r: redis.Redis, key: str) -> list[str]:
    return [decode_job(raw).id for raw in reversed(r.lrange(key, 0, -1))]


def _once(action: Callable[[], object]) -> Callable[[int], None]:
    """A progress callback that runs ``action`` once, when the first entries have been looked at.

    Sources that are still empty (a waiting queue's lanes come one by one) report 0 before that.
    """
    done: list[bool] = []

    def progress(looked_at: int) -> None:
        if looked_at and not done:
            done.append(True)
            action()

    return progress


def test_a_selection_across_many_pages_moves_exactly_those_in_order(
    r: redis.Redis, keyspace: KeySpace, small_pages: int
) -> None:
    ids = _fill_failed(r, keyspace, 100)
    chosen = ids[::3]
    looked: list[int] = []

    result = bulk(
        r,
        "q",
        JobState.FAILED,
        BulkAction.RETRY,
        keyspace=keyspace,
        ids=chosen,
        chunk=4,
        actor="t",
        progress=looked.append,
    )

    assert (result.matched, result.moved, result.looked_at) == (34, 34, 100)
    assert looked == sorted(looked) and looked[-1] == 100 and len(looked) >= 100 // small_pages
    # The dead letters name the lane "high", where they are retried; the oldest failure comes first.
    high = keyspace.lane("q", "high")
    assert _oldest_first(r, high) == chosen
    assert _oldest_first(r, keyspace.failed("q")) == [job_id for job_id in ids if job_id not in chosen]
    first = decode_job(r.lrange(high, -1, -1)[0])
    assert (first.id, first.attempts, first.error, first.failed_at_ms) == ("id-0", 0, None, None)
    leftovers = set(r.scan_iter(match=f"{keyspace.queue_prefix}*"))
    assert leftovers == {keyspace.failed("q").encode(), high.encode()}


@pytest.mark.parametrize(
    ("size", "popped", "chosen"),
    [(50, 5, slice(20, 30)), (100, 40, slice(60, 70))],
    ids=["found-near-their-place", "found-by-a-later-pass"],
)
def test_picks_shifted_by_a_worker_popping_the_tail_are_still_moved(
    r: redis.Redis, keyspace: KeySpace, size: int, popped: int, chosen: slice
) -> None:
    # The script looks 32 places around: 5 pops stay within reach, 40 take a second walk.
    ids = _fill_waiting(r, keyspace, size)
    pop = lambda: r.rpop(keyspace.queue("q"), popped)  # noqa: E731 - a worker takes the oldest meanwhile

    result = bulk(
        r,
        "q",
        JobState.WAITING,
        BulkAction.DELETE,
        keyspace=keyspace,
        ids=ids[chosen],
        actor="t",
        progress=_once(pop),
    )

    assert (result.matched, result.moved) == (10, 10)
    assert _oldest_first(r, keyspace.queue("q")) == ids[popped : chosen.start] + ids[chosen.stop :]


def test_picks_that_left_meanwhile_are_neither_moved_nor_counted(r: redis.Redis, keyspace: KeySpace) -> None:
    ids = _fill_failed(r, keyspace, 30)
    gone = [raw for raw in r.lrange(keyspace.failed("q"), 0, -1) if decode_job(raw).id in {"id-3", "id-4"}]
    removed = lambda: [r.lrem(keyspace.failed("q"), 1, raw) for raw in gone]  # type: ignore[arg-type]  # noqa: E731

    result = bulk(
        r, "q", JobState.FAILED, BulkAction.RETRY, keyspace=keyspace, ids=ids[:10], actor="t", progress=_once(removed)
    )

    assert (result.matched, result.moved) == (8, 8)
    retried = [job_id for job_id in ids[:10] if job_id not in {"id-3", "id-4"}]
    assert _oldest_first(r, keyspace.lane("q", "high")) == retried
    assert _oldest_first(r, keyspace.failed("q")) == ids[10:]


def test_a_script_cache_flush_in_the_middle_of_a_walk_is_survived(
    r: redis.Redis, keyspace: KeySpace, small_pages: int
) -> None:
    ids = _fill_failed(r, keyspace, 40)
    scripts_for(r).load()

    result = bulk(
        r,
        "q",
        JobState.FAILED,
        BulkAction.DELETE,
        keyspace=keyspace,
        ids=ids[::2],
        actor="t",
        progress=_once(r.script_flush),
    )

    assert result.moved == 20
    assert _oldest_first(r, keyspace.failed("q")) == ids[1::2]


def test_large_payloads_chosen_by_id_are_moved_in_calls_bounded_by_their_bytes(
    r: redis.Redis, keyspace: KeySpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _fill_failed(r, keyspace, 10)
    one = len(r.lindex(keyspace.failed("q"), 0) or b"")
    monkeypatch.setattr(_pick, "CALL_BYTES", 5 * one)  # read and retried bytes: two or three jobs a call
    calls: list[int] = []
    call = _pick._Round._call

    def counted(self: _pick._Round, picks: list[_pick.Match], shift: int) -> object:
        calls.append(len(picks))
        return call(self, picks, shift)

    monkeypatch.setattr(_pick._Round, "_call", counted)

    result = bulk(r, "q", JobState.FAILED, BulkAction.RETRY, keyspace=keyspace, ids=ids, actor="ops")

    assert result.moved == 10 and r.llen(keyspace.failed("q")) == 0
    assert _oldest_first(r, keyspace.lane("q", "high")) == ids  # the lane the dead letters name
    assert sum(calls) == 10 and len(calls) >= 4 and max(calls) <= 3


@pytest.mark.parametrize("meanwhile", ["script cache flushed", "first pick gone"])
def test_the_calls_of_one_page_sent_together_move_each_pick_once(
    r: redis.Redis, keyspace: KeySpace, monkeypatch: pytest.MonkeyPatch, meanwhile: str
) -> None:
    # A page's pick calls go out together, each shifted as if the calls before it moved all of
    # theirs. Flushed scripts: every call is answered NOSCRIPT and sent again, in order. A pick
    # gone: the first call moves one less, so the later calls' picks are one off and looked for near.
    ids = _fill_failed(r, keyspace, 24)
    one = len(r.lindex(keyspace.failed("q"), 0) or b"")
    monkeypatch.setattr(_pick, "CALL_BYTES", 5 * one)  # two or three picks a call
    scripts_for(r).load()
    first = next(raw for raw in r.lrange(keyspace.failed("q"), 0, -1) if decode_job(raw).id == "id-0")
    action = r.script_flush if meanwhile == "script cache flushed" else lambda: r.lrem(keyspace.failed("q"), 1, first)  # type: ignore[arg-type]
    chosen = ids[::2]

    once = _once(action)
    result = bulk(r, "q", JobState.FAILED, BulkAction.RETRY, keyspace=keyspace, ids=chosen, actor="t", progress=once)

    moved = chosen if meanwhile == "script cache flushed" else chosen[1:]
    assert result.moved == len(moved)
    assert _oldest_first(r, keyspace.lane("q", "high")) == moved
    assert _oldest_first(r, keyspace.failed("q")) == ids[1::2]


def test_ids_and_a_filter_must_both_match(r: redis.Redis, keyspace: KeySpace, small_pages: int) -> None:
    for n in range(20):
        r.lpush(keyspace.failed("q"), node_job(f"id-{n}", "even" if n % 2 == 0 else "odd", {}, created_at=NOW))
    chosen = [f"id-{n}" for n in range(12)]
    even = JobFilter(name="even")

    preview = bulk(
        r,
        "q",
        JobState.FAILED,
        BulkAction.DELETE,
        keyspace=keyspace,
        ids=chosen,
        job_filter=even,
        dry_run=True,
        actor="t",
    )
    done = bulk(r, "q", JobState.FAILED, BulkAction.DELETE, keyspace=keyspace, ids=chosen, job_filter=even, actor="t")

    assert (preview.matched, preview.moved) == (6, 0)
    assert [entry.job.id for entry in preview.sample if entry.job] == [f"id-{n}" for n in range(0, 12, 2)]
    assert (done.matched, done.moved) == (6, 6)
    assert _oldest_first(r, keyspace.failed("q")) == [f"id-{n}" for n in range(20) if n % 2 or n >= 12]


@pytest.mark.parametrize("job_filter", [None, JobFilter(name="x")], ids=["ids", "ids-and-filter"])
def test_a_limit_counts_the_matches_past_it_without_moving_them(
    r: redis.Redis, keyspace: KeySpace, job_filter: JobFilter | None
) -> None:
    raw = encode_job(JobPayload.create("x", job_id="same"))
    r.lpush(keyspace.failed("q"), raw, raw, raw)
    call = {"keyspace": keyspace, "ids": ["same"], "job_filter": job_filter, "limit": 1, "actor": "t"}

    first = bulk(r, "q", JobState.FAILED, BulkAction.DELETE, **call)  # type: ignore[arg-type]
    second = bulk(r, "q", JobState.FAILED, BulkAction.DELETE, **call)  # type: ignore[arg-type]

    assert [(first.matched, first.moved), (second.matched, second.moved)] == [(3, 1), (2, 1)]
    assert r.lrange(keyspace.failed("q"), 0, -1) == [raw.encode()]


def test_delayed_jobs_are_picked_by_id_and_one_that_left_is_not_counted(r: redis.Redis, keyspace: KeySpace) -> None:
    raws = {f"d-{n}": node_job(f"d-{n}", "later", {"n": n}, created_at=NOW, attempts=2) for n in range(10)}
    r.zadd(keyspace.delayed("q"), {raw: NOW + n for n, raw in enumerate(raws.values())})
    gone = lambda: r.zrem(keyspace.delayed("q"), raws["d-1"])  # noqa: E731 - a worker promoted it meanwhile

    result = bulk(
        r, "q", JobState.DELAYED, BulkAction.RETRY, keyspace=keyspace, ids=["d-0", "d-1", "d-2"], actor="t",
        progress=_once(gone),
    )  # fmt: skip

    assert (result.matched, result.moved) == (2, 2)
    assert _oldest_first(r, keyspace.queue("q")) == ["d-0", "d-2"]
    assert all(decode_job(raw).attempts == 0 for raw in r.lrange(keyspace.queue("q"), 0, -1))
    assert r.zcard(keyspace.delayed("q")) == 7


def test_get_job_reads_no_further_than_the_page_holding_it(
    counting: CountingRedis, keyspace: KeySpace, small_pages: int
) -> None:
    _fill_failed(counting, keyspace, 30)
    counting.zadd(keyspace.delayed("q"), {node_job("later", "x", {}, created_at=NOW): NOW + 5})
    counting.round_trips.clear()

    entry = get_job(counting, "q", "id-2", keyspace=keyspace)
    reads = [args for trip in counting.round_trips for args in trip if args[0] == "LRANGE"]
    delayed = get_job(counting, "q", "later", keyspace=keyspace)

    assert entry.job is not None and entry.job.id == "id-2" and entry.state is JobState.FAILED
    assert len(reads) == 1
    assert (delayed.state, delayed.due_ms) == (JobState.DELAYED, NOW + 5)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"id":"a"}', {"id": "a"}),
        (b'  {"id":"a"} \n', {"id": "a"}),
        (b'{"id":"a"} trailing', None),
        (b'["id","a"]', None),
        (b'{"id":', None),
        (b'{"id":"\xff"}', None),
        (b'{"id":"\\ud800"}', {"id": "\ud800"}),
    ],
)
def test_decode_object_reads_json_objects_only(raw: bytes, expected: dict[str, str] | None) -> None:
    assert decode_object(raw) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    job=jobs(),
    attempts=st.integers(0, 9),
    error=st.text(max_size=20),
    failed_at=st.integers(0, 2**41),
)
def test_a_job_retried_by_id_equals_the_original_with_attempts_reset_and_error_dropped(
    r: redis.Redis, keyspace: KeySpace, job: JobPayload, attempts: int, error: str, failed_at: int
) -> None:
    # Lone surrogates included: Redis' Lua JSON cannot read them, but a job chosen by id is still retried.
    failed = job.model_copy(update={"id": "j", "attempts": attempts, "error": error, "failed_at_ms": failed_at})
    raw = encode_job(failed)
    delete_prefix(r, keyspace.queue_prefix)
    r.lpush(keyspace.failed("q"), raw)

    result = bulk(r, "q", JobState.FAILED, BulkAction.RETRY, keyspace=keyspace, ids=["j"], actor="t")

    # To the lane its priority names; a job of a group that nothing holds is fetchable at once.
    (retried,) = r.lrange(keyspace.lane("q", lane_for(failed.priority)), 0, -1)
    assert result.moved == 1
    assert decode_job(retried) == failed.model_copy(update={"attempts": 0, "error": None, "failed_at_ms": None})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(job=jobs(), attempts=st.integers(0, 9), error=st.text(max_size=20))
def test_a_retry_computed_here_gives_the_bytes_the_script_gives(
    r: redis.Redis, keyspace: KeySpace, job: JobPayload, attempts: int, error: str
) -> None:
    raw = encode_job(job.model_copy(update={"attempts": attempts, "error": error, "failed_at_ms": NOW})).encode()
    decoded = json.loads(raw)
    here = retried(raw, decoded)
    r.delete(keyspace.failed("q"), keyspace.queue("q"))
    r.lpush(keyspace.failed("q"), raw)
    # No group action, no events, no groups; one pick at position 1, retried bytes and event left to
    # the script, base lane.
    args: list[str | bytes | int] = ["retry", "list", "zenith:tombstone:t", "", 0, "", "", "", 0, 0]
    args += [1, raw, "", 3, 0, ""]
    keys = [keyspace.failed("q"), *keyspace.lanes_in_poll_order("q"), keyspace.group_active("q")]

    assert scripts_for(r).call(PICK, keys, args) == [1, 0, 0]
    (by_script,) = r.lrange(keyspace.queue("q"), 0, -1)
    assert here == by_script
    assert json.loads(by_script) == {
        **{key: value for key, value in decoded.items() if key not in ("error", "failedAt")},
        "attempts": 0,
    }


_SEPARATORS = st.sampled_from([(",", ":"), (", ", ": "), (",", ": "), (", ", ":")])
_RESET_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "attempts": st.integers(0, 9),
        "error": st.text(st.sampled_from('ab, }{"\\:u\u00e9'), max_size=8) | st.none(),
        "failedAt": st.integers(0, 2**41),
    },
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    head=_RESET_VALUES,
    tail=_RESET_VALUES,
    nested=_RESET_VALUES,
    separators=_SEPARATORS,
    ascii_only=st.booleans(),
    escaped_key=st.booleans(),
    by_id=st.booleans(),
)
def test_a_retry_resets_the_job_however_its_payload_is_written(
    r: redis.Redis,
    keyspace: KeySpace,
    head: dict[str, object],
    tail: dict[str, object],
    nested: dict[str, object],
    separators: tuple[str, str],
    ascii_only: bool,
    escaped_key: bool,
    by_id: bool,
) -> None:
    # Reset members before and after the data, the same keys nested in a property, any spacing,
    # \u escapes in values or in a key: the retried job is the original with attempts 0 and no
    # error or failedAt, whichever script (bulk by filter, pick by id) rewrites it.
    data = json.dumps({"job": "w", "properties": nested})
    job: dict[str, object] = {"id": "j", **head, "meta": nested, "data": data, **tail}
    raw = json.dumps(job, separators=separators, ensure_ascii=ascii_only)
    if escaped_key and "error" in job:
        raw = raw.replace('"error"', '"\\u0065rror"', 1)
    decoded = json.loads(raw)
    delete_prefix(r, keyspace.queue_prefix)
    r.lpush(keyspace.failed("q"), raw)

    result = bulk(r, "q", JobState.FAILED, BulkAction.RETRY, keyspace=keyspace, ids=["j"] if by_id else None, actor="t")

    (retried,) = r.lrange(keyspace.queue("q"), 0, -1)
    expected = {key: value for key, value in decoded.items() if key not in ("error", "failedAt")}
    if "attempts" in decoded:
        expected["attempts"] = 0
    assert result.moved == 1
    assert json.loads(retried) == expected
    assert list(json.loads(retried)) == list(expected)  # members keep their order


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000, b"\xff\xfe{}", b"  " + b'{"a":' * 100_000],
)
def test_entries_nested_too_deep_or_not_utf8_are_not_objects(raw: bytes) -> None:
    assert decode_object(raw) is None


def test_a_bulk_retry_walks_past_an_entry_nested_too_deep(r: redis.Redis, keyspace: KeySpace) -> None:
    deep = b'{"id":' * 5_000 + b"1" + b"}" * 5_000
    good = node_job("good-1", "mail", {}, created_at=1).encode()
    r.rpush(keyspace.failed("q"), good, deep)

    result = bulk(r, "q", JobState.FAILED, BulkAction.RETRY, keyspace=keyspace, actor="ops")

    assert result.moved == 1
    assert r.lrange(keyspace.failed("q"), 0, -1) == [deep]
    assert [decode_job(raw).id for raw in r.lrange(keyspace.queue("q"), 0, -1)] == ["good-1"]


_IDS = ["a", "b", "c\\d", 'q"', "é", "1-x"]


@st.composite
def _entries(draw: st.DrawFn) -> bytes:
    """An entry written by any writer: its id leading or not, escaped or not, spaced; or not a job at all."""
    form = draw(st.sampled_from(["compact", "ascii", "spaced", "later", "number", "array", "broken"]))
    job_id = draw(st.sampled_from(_IDS))
    rest = {"name": draw(st.sampled_from(["a", "b", "x"])), "attempts": 1}
    if form == "compact":
        return json.dumps({"id": job_id, **rest}, ensure_ascii=False, separators=(",", ":")).encode()
    if form == "ascii":  # \u escapes in the id
        return json.dumps({"id": job_id, **rest}, separators=(",", ":")).encode()
    if form == "spaced":
        return json.dumps({"id": job_id, **rest}, ensure_ascii=False).encode()
    if form == "later":
        return json.dumps({**rest, "id": job_id}, ensure_ascii=False, separators=(",", ":")).encode()
    if form == "number":
        return b'{"id":7,"name":"a"}'
    if form == "array":
        return json.dumps([{"id": job_id}]).encode()
    return b'{"id":"' + job_id.encode() + b'","name":'


@settings(max_examples=200, deadline=None)
@given(page=st.lists(_entries(), max_size=12), wanted=st.sets(st.sampled_from(_IDS)))
def test_matching_by_id_picks_exactly_the_entries_whose_decoded_id_is_wanted(
    page: list[bytes], wanted: set[str]
) -> None:
    # Most entries are skipped by their leading id, undecoded: that must pick what decoding each would.
    matches = _pick.IdMatcher(wanted, retry=False)(page, 10)

    decoded = [decode_object(raw) for raw in page]
    expected = [index + 11 for index, job in enumerate(decoded) if job is not None and job.get("id") in wanted]
    assert [match.position for match in matches] == expected
    assert [match.raw for match in matches] == [page[position - 11] for position in expected]


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50))),
    most=st.integers(1, 6),
    most_bytes=st.integers(1, 120),
)
def test_pick_calls_are_bounded_by_picks_and_by_bytes(sizes: list[tuple[int, int]], most: int, most_bytes: int) -> None:
    picks = [_pick.Match(n, b"r" * raw, b"t" * retried, 3, "", b"") for n, (raw, retried) in enumerate(sizes)]

    batches = _pick.batched(picks, most, most_bytes)

    assert [pick for batch in batches for pick in batch] == picks
    for batch in batches:
        weight = sum(len(pick.raw) + len(pick.retried) for pick in batch)
        assert batch and len(batch) <= most
        assert weight <= most_bytes or len(batch) == 1
    # Each call is as full as the bounds allow: the next call's first pick did not fit.
    for batch, following in zip(batches, batches[1:]):
        weight = sum(len(pick.raw) + len(pick.retried) for pick in [*batch, following[0]])
        assert len(batch) == most or weight > most_bytes
