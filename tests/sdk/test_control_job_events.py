"""Operator retries, deletes and promotions record one event per job, written with the move itself."""

from __future__ import annotations

import json

import pytest
import redis
from cleanup import delete_prefix
from event_stream import stream_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_data import dead_letter_job, node_job

from zenith_protocol import (
    EventType,
    JobPayload,
    KeySpace,
    OperatorAction,
    decode_event,
    decode_job,
    encode_event,
    encode_job,
)
from zenith_sdk.control import BulkAction, BulkResult, JobFilter, JobState, bulk, delete_job, promote_job, retry_job
from zenith_sdk.doctor import run_doctor
from zenith_sdk.events import EventEmitter

NOW = 1_767_225_600_000
INVOICE = "App\\Jobs\\SendInvoice"


def _grouped_dead_letter(job_id: str, group: str) -> str:
    job = json.loads(dead_letter_job(job_id, failed_at=NOW))
    return json.dumps({**job, "groupId": group}, separators=(",", ":"))


def _delete_every_failed_job(r: redis.Redis, space: KeySpace, *, by_id: bool = False) -> BulkResult:
    # By id, the events' ids and names are written here; else the script reads them.
    ids = [decode_job(raw).id for raw in r.lrange(space.failed("q"), 0, -1)] if by_id else None
    emitter = EventEmitter(r, keyspace=space)
    return bulk(r, "q", JobState.FAILED, BulkAction.DELETE, keyspace=space, ids=ids, actor="t", events=emitter)


def _per_job(r: redis.Redis, space: KeySpace) -> list[tuple[object, ...]]:
    return [(e.type, e.job_id, e.job_name, e.actor, e.queue) for e in stream_events(r, space) if e.job_id]


@pytest.mark.parametrize("cluster_safe", [False, True], ids=["wire", "cluster-safe"])
def test_a_retry_by_filter_records_each_job_it_moved_and_who_moved_it(
    r: redis.Redis, keyspace: KeySpace, cluster_safe: bool
) -> None:
    space = keyspace.model_copy(update={"cluster_safe": cluster_safe})
    r.sadd(space.group_active("q"), "g")  # the group is held: its dead letter is admitted behind it
    r.lpush(
        space.failed("q"),
        *[dead_letter_job(f"f-{n}", failed_at=NOW + n) for n in range(3)],
        _grouped_dead_letter("grouped", "g"),
        node_job("other", "Other", {}, created_at=NOW, error="SMTP", failedAt=NOW),
        *[dead_letter_job(f"f-{n}", failed_at=NOW + n) for n in range(3, 20)],
    )

    result = bulk(
        r,
        "q",
        JobState.FAILED,
        BulkAction.RETRY,
        keyspace=space,
        job_filter=JobFilter(name=INVOICE),
        chunk=6,
        actor="alice",
        events=EventEmitter(r, keyspace=space),
    )

    # Oldest first, chunk by chunk; the grouped job last (it is moved once every chunk was walked).
    ids = [f"f-{n}" for n in range(20)] + ["grouped"]
    assert result.moved == 21
    assert _per_job(r, space) == [(EventType.RETRIED, job_id, INVOICE, "alice", "q") for job_id in ids]
    summary = stream_events(r, space)[-1]
    assert (summary.type, summary.action, summary.count, summary.actor) == (
        EventType.OPERATOR,
        OperatorAction.RETRY,
        21,
        "alice",
    )
    assert r.lrange(space.group_pending("q", "g"), 0, -1) != []


def test_single_and_bulk_deletes_and_promotions_record_their_jobs(r: redis.Redis, keyspace: KeySpace) -> None:
    emitter = EventEmitter(r, keyspace=keyspace)
    r.lpush(keyspace.queue("q"), *[node_job(f"w-{n}", "Send", {"n": n}, created_at=NOW) for n in range(5)])
    r.zadd(keyspace.delayed("q"), {node_job(f"d-{n}", "Later", {}, created_at=NOW): NOW + n for n in range(3)})
    r.lpush(keyspace.failed("q"), dead_letter_job("f-0", failed_at=NOW))

    bulk(
        r, "q", JobState.WAITING, BulkAction.DELETE, keyspace=keyspace, ids=["w-1", "w-3"], actor="bob", events=emitter
    )
    bulk(r, "q", JobState.DELAYED, BulkAction.PROMOTE, keyspace=keyspace, actor="carol", events=emitter)
    delete_job(r, "q", "w-4", keyspace=keyspace, actor="dan", events=emitter)
    retry_job(r, "q", "f-0", keyspace=keyspace, actor="erin", events=emitter)
    r.zadd(keyspace.delayed("q"), {node_job("d-9", "Later", {}, created_at=NOW): NOW})
    promote_job(r, "q", "d-9", keyspace=keyspace, actor="fay", events=emitter)

    assert _per_job(r, keyspace) == [
        (EventType.DELETED, "w-1", "Send", "bob", "q"),
        (EventType.DELETED, "w-3", "Send", "bob", "q"),
        *[(EventType.PROMOTED, f"d-{n}", "Later", "carol", "q") for n in range(3)],
        (EventType.DELETED, "w-4", "Send", "dan", "q"),
        (EventType.RETRIED, "f-0", INVOICE, "erin", "q"),
        (EventType.PROMOTED, "d-9", "Later", "fay", "q"),
    ]
    operator = [(e.action, e.count, e.actor) for e in stream_events(r, keyspace) if e.type == EventType.OPERATOR]
    assert operator == [
        (OperatorAction.DELETE, 2, "bob"),
        (OperatorAction.PROMOTE, 3, "carol"),
        (OperatorAction.DELETE, 1, "dan"),
        (OperatorAction.RETRY, 1, "erin"),
        (OperatorAction.PROMOTE, 1, "fay"),
    ]


def test_without_an_emitter_nothing_is_recorded(r: redis.Redis, keyspace: KeySpace) -> None:
    r.lpush(keyspace.failed("q"), *[dead_letter_job(f"f-{n}", failed_at=NOW) for n in range(4)])

    bulk(r, "q", JobState.FAILED, BulkAction.RETRY, keyspace=keyspace, actor="t")
    bulk(r, "q", JobState.WAITING, BulkAction.DELETE, keyspace=keyspace, ids=["f-1"], actor="t")

    assert r.llen(keyspace.queue("q")) + r.llen(keyspace.lane("q", "high")) == 3
    assert r.exists(keyspace.events()) == 0


def test_a_job_whose_id_no_reader_could_decode_is_moved_and_counted_without_an_event(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    r.lpush(keyspace.failed("q"), b'{"id":"bad\xff","data":"{\\"job\\":\\"x\\"}","error":"e"}', '{"id":7,"error":"e"}')

    result = _delete_every_failed_job(r, keyspace)

    (summary,) = stream_events(r, keyspace)
    assert (result.moved, summary.type, summary.count) == (2, EventType.OPERATOR, 2)


@pytest.mark.parametrize(
    ("data", "class_name"),
    [
        ('{"job":"Send","properties":{}}', None),
        ('{"class":"A","job":"B"}', None),
        ('{"job":"a","job":"b"}', None),
        ('{"job":"","class":"C"}', None),
        ('{"job":"a\\"q\\\\b"}', None),
        ('{"job": "spaced"}', None),
        ('{"class":"A","properties":{"job":"x"}}', None),
        ('{"class":"A"}', "K"),
        ('{"properties":{}}', "K"),
        ('{"job":"tab\\there"}', None),
        ('{"class": "App\\\\Jobs\\\\Send", "properties": {}}', "App\\Jobs\\Send"),
        ('{ "job" : "x" , "properties":{}}', None),
        ('{"job":"a","j\\u006fb":"b"}', None),
        ('{"class":"A","cl\\u0061ss":"B"}', None),
        ('{"job":"\\u00e9t\\u00e9"}', None),
        ('{"job":"a\\/b"}', None),
        ('{"job":"ends\\\\"}', None),
        ('{"job":"été  "}', None),
        ('{"class": "A", "class": "B"}', None),
        ('{"job":"x","kind":"job"}', None),
    ],
)
@pytest.mark.parametrize("by_id", [False, True], ids=["by-filter", "by-id"])
@pytest.mark.parametrize("as_object", [False, True], ids=["data-text", "data-object"])
def test_each_event_names_the_job_as_the_protocol_reads_its_name(
    r: redis.Redis, keyspace: KeySpace, data: str, class_name: str | None, by_id: bool, as_object: bool
) -> None:
    # data given as the object itself (PROTOCOL 4.1) names the job alike.
    job = {"id": "j", "type": "json", "data": json.loads(data) if as_object else data, "className": class_name}
    raw = json.dumps({key: value for key, value in {**job, "error": "e"}.items() if value is not None})
    r.lpush(keyspace.failed("q"), raw)

    _delete_every_failed_job(r, keyspace, by_id=by_id)

    (event, _summary) = stream_events(r, keyspace)
    assert event.job_name == decode_job(raw).name


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    job_id=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12),
    name=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12),
    by_id=st.booleans(),
    cluster_safe=st.booleans(),
)
def test_the_events_the_scripts_write_are_canonical_whatever_the_id_and_name(
    r: redis.Redis, keyspace: KeySpace, job_id: str, name: str, by_id: bool, cluster_safe: bool
) -> None:
    space = keyspace.model_copy(update={"cluster_safe": cluster_safe})
    delete_prefix(r, keyspace.queue_prefix)
    delete_prefix(r, keyspace.zenith_prefix)
    job = JobPayload.create(name, {"k": "v"}, job_id=job_id, created_at_ms=NOW)
    r.lpush(space.failed("q"), encode_job(job.model_copy(update={"attempts": 3, "error": "boom"})))

    bulk(
        r,
        "q",
        JobState.FAILED,
        BulkAction.RETRY,
        keyspace=space,
        ids=[job_id] if by_id else None,
        actor='ops\u2028"team"',
        events=EventEmitter(r, keyspace=space),
    )

    per_job, _summary = [fields[b"event"] for _id, fields in r.xrange(space.events())]  # type: ignore[index, union-attr]
    event = decode_event(per_job)
    assert encode_event(event).encode() == per_job
    assert (event.type, event.job_id, event.job_name, event.actor) == (
        EventType.RETRIED,
        job_id,
        name,
        'ops\u2028"team"',
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.sampled_from(["job", "class"]),
    name=st.text(st.characters(exclude_categories=["Cs"]), max_size=10),
    later=st.dictionaries(st.sampled_from(["job", "class", "properties", "x"]), st.text(max_size=3), max_size=2),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (",", " : ")]),
    ascii_only=st.booleans(),
    by_id=st.booleans(),
)
def test_the_event_names_the_job_however_its_data_is_written(
    r: redis.Redis,
    keyspace: KeySpace,
    key: str,
    name: str,
    later: dict[str, str],
    separators: tuple[str, str],
    ascii_only: bool,
    by_id: bool,
) -> None:
    # The name member first, as producers write it, in any spacing and escaping, perhaps
    # followed by members that take precedence over it.
    delete_prefix(r, keyspace.queue_prefix)
    delete_prefix(r, keyspace.zenith_prefix)
    data = json.dumps({key: name, **later}, separators=separators, ensure_ascii=ascii_only)
    raw = json.dumps({"id": "j", "type": "json", "data": data, "className": "K", "error": "e"}, separators=(",", ":"))
    r.lpush(keyspace.failed("q"), raw)

    _delete_every_failed_job(r, keyspace, by_id=by_id)

    (event, _summary) = stream_events(r, keyspace)
    assert event.job_name == decode_job(raw).name


def test_the_doctor_finds_every_operator_event_canonical(r: redis.Redis, keyspace: KeySpace) -> None:
    emitter = EventEmitter(r, keyspace=keyspace)
    odd = JobPayload.create('Send "it"\\now\t\u2028 /é', {"to": "x"}, job_id='id "1"\\ /\u0001é', created_at_ms=NOW)
    r.lpush(keyspace.failed("q"), encode_job(odd.model_copy(update={"attempts": 1, "error": "e"})))
    r.lpush(keyspace.failed("q"), *[dead_letter_job(f"f-{n}", failed_at=NOW) for n in range(3)])
    r.zadd(keyspace.delayed("q"), {node_job("d-0", "Later", {}, created_at=NOW): NOW})

    bulk(r, "q", JobState.FAILED, BulkAction.RETRY, keyspace=keyspace, ids=[odd.id, "f-0"], actor="a", events=emitter)
    bulk(r, "q", JobState.FAILED, BulkAction.DELETE, keyspace=keyspace, actor="b", events=emitter)
    promote_job(r, "q", "d-0", keyspace=keyspace, actor="c", events=emitter)
    report = run_doctor(r, keyspace=keyspace)

    events = report.patterns[keyspace.events()]
    assert (events.entries, events.canonical, events.not_canonical, events.issues) == (8, 8, 0, {})
