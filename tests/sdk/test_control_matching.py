"""Filters match alike in Redis (the read-only match script) and here; search and dry runs work without scripts."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from acl_users import NO_SCRIPTS, READ_ONLY, restricted_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_data import dead_letter_job, node_job

from zenith_protocol import KeySpace
from zenith_protocol.query import AnyOf, Field, Query, Text, TimeBound
from zenith_sdk.control import BulkAction, BulkResult, JobFilter, JobState, bulk, search
from zenith_sdk.scripts import MATCH, scripts_for

NOW = 1_767_225_600_000

# Few distinct values, so that generated filters often hit what generated jobs hold.
_WORDS = ["a", "Send", "1", "1.5", "true", "null", "1e+20", "ü", 'q"t', "", "-0", "a.a"]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 5, 2**53 + 1, 10**20, 1_767_225_600_000]),
    st.sampled_from([0.5, 1.5, -0.0, 1e20, 1e-7, 0.1 + 0.2]),
    st.sampled_from(_WORDS),
    st.sampled_from(["1767225600000", " 12 ", "0x10", "1e3", "inf", "12abc"]),
)
_VALUES = st.one_of(
    _SCALARS, st.lists(_SCALARS, max_size=2), st.dictionaries(st.sampled_from(_WORDS), _SCALARS, max_size=2)
)


@st.composite
def _data_texts(draw: st.DrawFn) -> Any:
    """A job's ``data`` member: usually JSON text holding the name and properties, sometimes anything else."""
    inner = draw(st.dictionaries(st.sampled_from(["job", "class", "properties", "other"]), _VALUES, max_size=3))
    if draw(st.booleans()):
        inner["properties"] = draw(st.dictionaries(st.sampled_from(_WORDS), _VALUES, max_size=3))
    return draw(st.one_of(st.just(json.dumps(inner)), _VALUES, st.just("[1, 2]"), st.just("not json")))


@st.composite
def _entries(draw: st.DrawFn) -> bytes:
    """A queue entry: mostly job-like JSON objects (any member of any type), sometimes arrays, scalars or text."""
    job: dict[str, Any] = {"id": draw(st.sampled_from(_WORDS))}
    for member in ("data", "className", "error", "failedAt", "createdAt"):
        if draw(st.booleans()):
            job[member] = draw(_data_texts()) if member == "data" else draw(_VALUES)
    text = json.dumps(job, ensure_ascii=draw(st.booleans()))
    return draw(st.sampled_from([text, text, text, "[1, 2]", "5", "not json", '{"id": "broken"'])).encode()


_FILTERS = st.builds(
    JobFilter,
    name=st.none() | st.sampled_from(_WORDS),
    error=st.none() | st.sampled_from(_WORDS),
    text=st.none() | st.sampled_from(_WORDS),
    from_ms=st.none() | st.sampled_from([0, 5, NOW, NOW + 1]),
    to_ms=st.none() | st.sampled_from([1, 6, NOW + 1, 10**21]),
)
_PROPERTY_FILTERS = st.builds(
    JobFilter, field=st.sampled_from(_WORDS), value=st.sampled_from(_WORDS), name=st.none() | st.sampled_from(_WORDS)
)
_SOME = st.sampled_from([word for word in _WORDS if word])
_TERMS = st.one_of(
    st.builds(Text, _SOME, st.booleans()),
    st.builds(Field, st.sampled_from(["name", "error", "id"]), _SOME, st.booleans()),
    st.builds(Field, st.sampled_from(["a", "Send", "1", "ü", "1.5", "a.a", "a.1", "ü.a"]), _SOME, st.booleans()),
    st.builds(
        TimeBound,
        st.sampled_from(["after", "before"]),
        st.sampled_from([0, 5, NOW, NOW + 1]),
        st.just("t"),
        st.booleans(),
    ),
)
_QUERY_FILTERS = st.lists(
    _TERMS | st.lists(_TERMS, min_size=2, max_size=3).map(lambda terms: AnyOf(tuple(terms))), max_size=4
).map(lambda clauses: JobFilter.from_query(Query(tuple(clauses))))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(_entries(), min_size=1, max_size=8), job_filter=_FILTERS | _PROPERTY_FILTERS | _QUERY_FILTERS)
def test_a_filter_matches_here_exactly_what_it_matches_in_redis(
    r: redis.Redis, keyspace: KeySpace, entries: list[bytes], job_filter: JobFilter
) -> None:
    key = keyspace.failed("m")
    r.delete(key)
    r.lpush(key, *entries)  # the first is the oldest
    (reply,) = scripts_for(r).read_only([(MATCH, [key], ["list", 0, 100, job_filter.to_wire(), 100])]) or [None]

    assert reply[2:] == [raw for raw in entries if job_filter.matches(raw)]


def _seed(r: redis.Redis, space: KeySpace) -> None:
    r.lpush(
        space.failed("q"),
        *[dead_letter_job(f"f-{n}", failed_at=NOW + n) for n in range(30)],
        "not json at all",
        '["an", "array"]',
    )
    r.zadd(space.delayed("q"), {node_job(f"d-{n}", "Later", {"n": n}, created_at=NOW): NOW + n for n in range(12)})
    r.lpush(space.queue("q"), *[node_job(f"w-{n}", "Send", {"to": f"u{n % 3}"}, created_at=NOW) for n in range(9)])


def _summary(result: BulkResult) -> tuple[int, int, int, list[bytes]]:
    return result.matched, result.moved, result.looked_at, [entry.raw for entry in result.sample]


@pytest.mark.parametrize("rights", [NO_SCRIPTS, READ_ONLY], ids=["no-scripts", "read-only"])
def test_search_and_dry_runs_give_a_user_that_may_not_run_scripts_the_same_answers(
    r: redis.Redis, keyspace: KeySpace, rights: tuple[str, ...]
) -> None:
    _seed(r, keyspace)
    before = {key: r.dump(key) for key in (keyspace.failed("q"), keyspace.delayed("q"), keyspace.queue("q"))}
    queries = ["SendInvoice", "to:u1", "n:7", "array", "f-2"]
    dry_runs: list[dict[str, Any]] = [
        {"state": JobState.FAILED, "action": BulkAction.RETRY, "job_filter": JobFilter(error="SMTP")},
        {"state": JobState.FAILED, "action": BulkAction.DELETE, "job_filter": JobFilter(from_ms=NOW + 10)},
        {"state": JobState.DELAYED, "action": BulkAction.PROMOTE, "job_filter": JobFilter(field="n", value="3")},
        {"state": JobState.WAITING, "action": BulkAction.DELETE, "ids": ["w-1", "w-4", "nope"]},
        {
            "state": JobState.WAITING,
            "action": BulkAction.DELETE,
            "ids": ["w-1", "w-4"],
            "job_filter": JobFilter(text="u1"),
        },
        {"state": JobState.FAILED, "action": BulkAction.RETRY, "chunk": 7, "sample": 3},
    ]

    def answers(client: redis.Redis) -> tuple[list[Any], list[Any]]:
        found = [[(e.queue, e.state, e.raw) for e in search(client, q, keyspace=keyspace, chunk=5)] for q in queries]
        counted = [
            _summary(bulk(client, "q", keyspace=keyspace, dry_run=True, actor="t", **options)) for options in dry_runs
        ]
        return found, counted

    expected = answers(r)
    with restricted_client(r, rights) as reader:
        assert answers(reader) == expected
        assert scripts_for(reader).refused
    assert not scripts_for(r).refused
    assert [found for found in expected[0]] != [[]] * len(queries)
    # The last counts the array too: a JSON array is a Lua table, which an empty filter matches.
    assert [matched for matched, *_ in expected[1]] == [30, 20, 1, 2, 2, 31]
    assert {key: r.dump(key) for key in before} == before


def test_a_dry_run_calls_no_script_that_moves_jobs(r: redis.Redis, keyspace: KeySpace) -> None:
    _seed(r, keyspace)
    # Reads, and the read-only scripts, but no write and no EVALSHA.
    with restricted_client(r, ("+@read", "+@connection", "+evalsha_ro", "+script|load")) as reader:
        by_filter = bulk(reader, "q", JobState.FAILED, BulkAction.RETRY, keyspace=keyspace, dry_run=True, actor="t")
        by_ids = bulk(
            reader,
            "q",
            JobState.FAILED,
            BulkAction.DELETE,
            keyspace=keyspace,
            ids=["f-1", "f-2"],
            job_filter=JobFilter(text="f-2"),
            dry_run=True,
            actor="t",
        )
        assert not scripts_for(reader).refused

    # The array counts too: a JSON array is a Lua table, which an empty filter matches.
    assert (by_filter.matched, by_filter.moved, by_ids.matched, by_ids.moved) == (31, 0, 1, 0)
