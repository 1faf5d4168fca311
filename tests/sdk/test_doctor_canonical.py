"""``zenith doctor`` holds every versioned entry to its canonical bytes and every expiring key to its TTL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import redis
from cli_run import prefix_options, zenith
from counting import CountingRedis
from wire_data import node_job, seed_wire_facts

from zenith_protocol import (
    JobEvent,
    JobPayload,
    KeySpace,
    WorkerHeartbeat,
    encode_event,
    encode_heartbeat,
    encode_job,
)
from zenith_sdk.doctor import DoctorReport, Issue, run_doctor

NOW = 1767225600000


def _job(job_id: str = "j-1", **options: object) -> bytes:
    job = JobPayload.create("resize", {"path": "/a/b"}, job_id=job_id, created_at_ms=NOW, **options)  # type: ignore[arg-type]
    return encode_job(job).encode()


def _only_issue(report: DoctorReport, pattern: str) -> Issue:
    """The one issue of the run: it is at ``pattern`` and nothing else is an error or a warning."""
    found = [(stats.pattern, issue) for stats in report.patterns.values() for issue in stats.issues.values()]
    assert [where for where, _ in found] == [pattern], found
    assert report.invalid == 0 and report.warnings == []
    return found[0][1]


Writer = Callable[[redis.Redis, KeySpace, bytes], None]


def _lpush(key: Callable[[KeySpace], str]) -> Writer:
    return lambda r, space, raw: (r.lpush(key(space), raw), None)[1]


def _zadd(r: redis.Redis, space: KeySpace, raw: bytes) -> None:
    r.zadd(space.delayed("q", "high"), {raw: NOW})


GOOD = _job("café/1", delay_seconds=2)

# name: (stored bytes, where it is written, its pattern, problem, first differing byte)
CASES: dict[str, tuple[bytes, Writer, Callable[[KeySpace], str], str, int | None]] = {
    "field order": (
        GOOD.replace(b'"id":"caf\xc3\xa9/1","type":"json"', b'"type":"json","id":"caf\xc3\xa9/1"'),
        _lpush(lambda s: s.queue("q")),
        lambda s: s.queue("<name>"),
        "field order",
        2,
    ),
    "space": (
        GOOD.replace(b'"attempts":0', b'"attempts": 0'),
        _lpush(lambda s: s.failed("q")),
        lambda s: s.failed("<name>"),
        "whitespace",
        GOOD.index(b'"attempts":') + 11,
    ),
    "1.0": (
        GOOD.replace(b'"delaySeconds":2,', b'"delaySeconds":2.0,'),
        _zadd,
        lambda s: f"{s.lane('<name>', '<priority>')}:delayed",
        "number form",
        GOOD.index(b'"delaySeconds":2') + 16,
    ),
    "escaped slash": (
        GOOD.replace(b"\xc3\xa9/1", b"\xc3\xa9\\/1"),
        _lpush(lambda s: s.lane("q", "low")),
        lambda s: s.lane("<name>", "<priority>"),
        "escaped /",
        GOOD.index(b"/1"),
    ),
    "escaped non-ASCII": (
        GOOD.replace(b"caf\xc3\xa9", b"caf\\u00e9"),
        _lpush(lambda s: s.group_pending("q", "g")),
        lambda s: s.group_pending("<name>", "<groupId>"),
        "\\u escape",
        GOOD.index(b"\xc3\xa9"),
    ),
    "explicit null": (
        GOOD.replace(b',"protocolVersion"', b',"groupId":null,"protocolVersion"'),
        _lpush(lambda s: s.queue("q")),
        lambda s: s.queue("<name>"),
        "explicit null",
        GOOD.index(b',"protocolVersion"') + 2,
    ),
    "missing MUST field": (
        GOOD.replace(b'"attempts":0,', b""),
        _lpush(lambda s: s.failed("q")),
        lambda s: s.failed("<name>"),
        "missing attempts",
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_non_canonical_job_is_an_error_at_its_pattern(r: redis.Redis, keyspace: KeySpace, case: str) -> None:
    raw, write, pattern, problem, offset = CASES[case]
    assert raw != GOOD
    r.lpush(keyspace.queue("q"), GOOD)  # a canonical neighbour stays canonical
    write(r, keyspace, raw)

    report = run_doctor(r, keyspace=keyspace)

    assert not report.ok and report.not_canonical == 1
    issue = _only_issue(report, pattern(keyspace))
    assert (issue.severity, issue.problem, issue.offset, issue.count) == ("error", problem, offset, 1)
    assert issue.kind == ("missing_field" if offset is None else "not_canonical")
    assert issue.key.startswith(keyspace.queue_prefix)
    assert report.patterns[keyspace.queue("<name>")].canonical == 1
    if offset is not None:  # both forms, trimmed around the offset, agree up to it
        assert issue.ours.replace("…", "") in GOOD.decode() and issue.theirs.replace("…", "") in raw.decode()
        assert issue.ours != issue.theirs


def test_entries_with_one_problem_are_one_issue_with_a_count(r: redis.Redis, keyspace: KeySpace) -> None:
    bad = [_job(f"j-{n}").replace(b'"attempts":0', b'"attempts":0.0') for n in range(3)]
    r.rpush(keyspace.failed("a"), GOOD, *bad[:2])
    r.rpush(keyspace.failed("b"), bad[2])

    report = run_doctor(r, keyspace=keyspace)

    issue = _only_issue(report, keyspace.failed("<name>"))
    assert (issue.problem, issue.count) == ("number form", 3)
    first_bad = {keyspace.failed("a"): "index 1", keyspace.failed("b"): "index 0"}  # SCAN order is Redis's
    assert issue.where == first_bad[issue.key]
    assert report.patterns[keyspace.failed("<name>")].not_canonical == 3


def test_legacy_entries_are_legacy_however_they_are_written(r: redis.Redis, keyspace: KeySpace) -> None:
    legacy = node_job("1700000000000-k3j9x2a", "send", {"p": "/x"}, created_at=NOW).encode()
    odd = json.dumps({"type": "json", **json.loads(legacy), "attempts": 0.0, "groupId": None}, indent=1)
    r.rpush(keyspace.queue("q"), legacy, odd.replace("/x", "\\/x"))

    report = run_doctor(r, keyspace=keyspace)

    assert report.ok
    stats = report.patterns[keyspace.queue("<name>")]
    assert (stats.legacy, stats.canonical, stats.not_canonical, stats.issues) == (2, 0, 0, {})


def _heartbeat(**fields: object) -> bytes:
    beat = WorkerHeartbeat.model_validate(
        {"id": "w-1", "hostname": "h", "pid": 7, "timestamp": "2026-01-01T00:00:05.123Z", **fields}
    )
    return encode_heartbeat(beat).encode()


def test_a_heartbeat_missing_an_always_written_field_is_an_error(r: redis.Redis, keyspace: KeySpace) -> None:
    ours = _heartbeat()
    theirs = ours.replace(b'"queues":[],', b"")
    r.set(keyspace.worker("w-1"), theirs, ex=15)

    report = run_doctor(r, keyspace=keyspace)

    issue = _only_issue(report, keyspace.worker("<workerId>"))
    assert (issue.kind, issue.problem, issue.offset) == ("missing_field", "missing queues", ours.index(b'"queues"') + 1)
    assert not report.ok


def _event(**fields: object) -> bytes:
    return encode_event(JobEvent.model_validate({"queue": "q", "timestamp": NOW, **fields})).encode()


def test_an_event_missing_what_its_type_must_carry_is_an_error(r: redis.Redis, keyspace: KeySpace) -> None:
    r.xadd(keyspace.events(), {"event": _event(type="completed", jobId="j", workerId="w", attempt=1)})
    r.xadd(keyspace.events(), {"event": _event(type="dead_lettered", jobId="j", attempt=3)})

    report = run_doctor(r, keyspace=keyspace)

    issue = _only_issue(report, keyspace.events())
    assert (issue.kind, issue.problem, issue.where.split(", ")[1]) == ("missing_field", "missing error", "field event")
    assert report.patterns[keyspace.events()].canonical == 1


def test_a_stream_entry_with_a_field_writers_must_not_add_is_an_error(r: redis.Redis, keyspace: KeySpace) -> None:
    event = _event(type="operator", actor="a", action="pause", count=1)
    r.xadd(keyspace.events(), {"event": event, "source": "go"})

    report = run_doctor(r, keyspace=keyspace)

    issue = _only_issue(report, keyspace.events())
    assert (issue.kind, issue.severity) == ("forbidden_field", "error")
    assert "'source'" in issue.reason


def test_keys_without_the_ttl_the_spec_gives_them(r: redis.Redis, keyspace: KeySpace) -> None:
    r.set(keyspace.worker("w-1"), _heartbeat())  # a canonical heartbeat, no TTL: an error
    r.set(keyspace.worker("w-2"), _heartbeat(id="w-2"), ex=3600)  # a TTL too long: a warning
    r.incr(keyspace.throughput(NOW // 60_000))  # a counter never cleaned up: an error
    r.set(keyspace.schedule_lock("s", 1), "1")
    r.set(keyspace.sweep_lock(), "w-1", ex=15)  # fine

    report = run_doctor(r, keyspace=keyspace)

    issues = {(stats.pattern, issue.kind): issue for stats, issue in report.issues("error") + report.issues("warning")}
    assert set(issues) == {
        (keyspace.worker("<workerId>"), "missing_ttl"),
        (keyspace.worker("<workerId>"), "long_ttl"),
        (keyspace.throughput("<epochMinute>"), "missing_ttl"),
        (keyspace.schedule_lock("<id>", "<epochSeconds>"), "missing_ttl"),
    }
    assert issues[(keyspace.worker("<workerId>"), "missing_ttl")].key == keyspace.worker("w-1")
    assert issues[(keyspace.worker("<workerId>"), "long_ttl")].severity == "warning"
    assert not report.ok and report.not_canonical == 0 and report.errors == 3


def test_legacy_keys_without_ttl_and_stale_nodes_are_warnings(r: redis.Redis, keyspace: KeySpace) -> None:
    now = int(time.time() * 1000)
    seed_wire_facts(r, keyspace, now - 120_000)
    r.persist(keyspace.legacy_pulse("api", "web-1-4242"))
    r.persist(keyspace.legacy_worker("worker-a1b2c3"))

    report = run_doctor(r, keyspace=keyspace, now_ms=now)

    assert report.ok
    found = {(stats.pattern, issue.kind) for stats, issue in report.issues("warning")}
    assert found == {
        (keyspace.legacy_pulse("<service>", "<nodeId>"), "missing_ttl"),
        (keyspace.legacy_pulse("<service>", "<nodeId>"), "stale"),
        (keyspace.legacy_worker("<workerId>"), "missing_ttl"),
    }


def test_orphaned_processing_lists_are_warnings_at_their_pattern(r: redis.Redis, keyspace: KeySpace) -> None:
    r.lpush(keyspace.processing("a", "gone-1"), GOOD)
    r.lpush(keyspace.processing("b", "gone-1"), GOOD)

    report = run_doctor(r, keyspace=keyspace)

    assert report.ok and report.orphaned == {"gone-1": ["a", "b"]}
    issue = _only_issue(report, keyspace.processing("<name>", "<workerId>"))
    assert (issue.severity, issue.kind, issue.count) == ("warning", "orphaned", 2)
    assert issue.key == keyspace.processing("a", "gone-1")
    assert report.patterns[keyspace.processing("<name>", "<workerId>")].canonical == 2


def test_staged_events_of_a_gone_worker_are_a_warning_and_a_live_workers_are_not(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    event = JobEvent(type="completed", queue="q", timestamp=1, job_id="j-1", worker_id="gone-1")
    r.rpush(keyspace.staged_events("gone-1"), encode_event(event) + "\n")
    r.rpush(keyspace.staged_events("alive-1"), encode_event(event.model_copy(update={"worker_id": "alive-1"})) + "\n")
    r.zadd(keyspace.worker_index(), {"alive-1": int(time.time() * 1000)})  # seen just now

    report = run_doctor(r, keyspace=keyspace)

    issue = _only_issue(report, keyspace.staged_events("<workerId>"))
    assert (issue.severity, issue.kind, issue.count) == ("warning", "orphaned", 1)
    assert issue.key == keyspace.staged_events("gone-1") and "zenith recover" in issue.reason


def test_many_keys_are_read_in_few_round_trips_and_every_entry_counts(
    counting: CountingRedis, keyspace: KeySpace
) -> None:
    pipe = counting.pipeline(transaction=False)
    for n in range(200):
        pipe.lpush(keyspace.queue(f"q{n}"), _job(f"small-{n}"))
    pipe.rpush(keyspace.failed("big"), *(_job(f"big-{n}") for n in range(1300)))
    pipe.execute()
    counting.round_trips.clear()

    report = run_doctor(counting, keyspace=keyspace)
    whole = len(counting.round_trips)
    sampled = run_doctor(counting, keyspace=keyspace, sample=600)

    assert report.patterns[keyspace.queue("<name>")].canonical == 200
    assert report.patterns[keyspace.failed("<name>")].canonical == 1300
    assert sampled.patterns[keyspace.failed("<name>")].entries == 600
    # Not one round trip per key: a few per SCAN batch (type and TTL, sizes, entries), plus the
    # orphan sweep and group survey.
    assert whole < 40, [trip[0][0] for trip in counting.round_trips[:whole]]


def test_cli_shows_each_problem_once_with_both_forms_escaped(
    redis_url: str, r: redis.Redis, keyspace: KeySpace
) -> None:
    # Raw in canonical JSON, and not to be taken as markup or sent to a terminal as they are:
    # markup, a C1 control (CSI) and a line separator.
    note = "[bold]x[/bold]\u009b31m\u2028"
    good = GOOD[:-1] + b',"note":' + json.dumps(note, ensure_ascii=False).encode() + b',"n":1}'
    r.rpush(keyspace.queue("q"), good.replace(b'"n":1}', b'"n":1.0}'))
    r.set(keyspace.worker("w-1"), _heartbeat())

    text = zenith("doctor", "--redis", redis_url, *prefix_options(keyspace))
    data = zenith("doctor", "--json", "--redis", redis_url, *prefix_options(keyspace))

    assert (text.returncode, data.returncode) == (1, 1)
    assert "Traceback" not in text.stderr + data.stderr
    lines = text.stdout.splitlines()
    offset = good.index(b'"n":1}') + 5
    assert (
        f"error {keyspace.queue('<name>')}: 1 entry not canonical: number written 1.0, canonical 1 (spec 2.2)" in lines
    )
    assert f"  first difference at byte {offset}:" in lines
    ours = next(line for line in lines if line.startswith("    ours:"))
    theirs = next(line for line in lines if line.startswith("    theirs:"))
    assert ours.endswith('x[/bold]<U+009B>31m<U+2028>","n":1}'), ours
    assert '"n":1.0}' in theirs and "\u009b" not in text.stdout and "\u2028" not in text.stdout
    assert (
        f"error {keyspace.worker('<workerId>')}: 1 key without TTL: spec 3.3 gives this key a TTL of 15 s"
        in text.stdout
    )

    report = json.loads(data.stdout)
    assert report["ok"] is False and report["notCanonical"] == 1 and report["errors"] == 2
    (queue,) = [p for p in report["patterns"] if p["pattern"] == keyspace.queue("<name>")]
    (issue,) = queue["issues"]
    assert (issue["kind"], issue["problem"], issue["offset"], issue["key"]) == (
        "not_canonical",
        "number form",
        offset,
        keyspace.queue("q"),
    )
    assert issue["ours"].endswith(f'{note[6:]}","n":1}}') and issue["theirs"].endswith('"n":1.0}')


def test_cli_exits_0_on_legacy_data_with_only_warnings(redis_url: str, r: redis.Redis, keyspace: KeySpace) -> None:
    seed_wire_facts(r, keyspace, int(time.time() * 1000))
    r.lpush(keyspace.processing("emails", "gone-1"), GOOD)

    result = zenith("doctor", "--redis", redis_url, *prefix_options(keyspace))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "warning" in result.stdout and "worker gone" in result.stdout
