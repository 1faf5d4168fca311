"""``run_doctor`` and ``zenith doctor`` against a real Redis."""

from __future__ import annotations

import json
import time

import pytest
import redis
from wire_data import seed_wire_facts

from zenith_protocol import JobEvent, JobPayload, KeyKind, KeySpace, SilenceMatchers, encode_event_fields, encode_job
from zenith_sdk.alerts import AlertService, add_mute, add_silence, record_delivery
from zenith_sdk.cli import main
from zenith_sdk.doctor import _RULES, DoctorReport, run_doctor


def _now_ms() -> int:
    return int(time.time() * 1000)


def _stats(report: DoctorReport, pattern: str) -> dict[str, int]:
    stats = report.patterns[pattern]
    return {"keys": stats.keys, "canonical": stats.canonical, "legacy": stats.legacy, "invalid": stats.invalid}


def test_everything_the_node_system_writes_is_accepted(r: redis.Redis, keyspace: KeySpace) -> None:
    seeded = seed_wire_facts(r, keyspace, _now_ms())

    report = run_doctor(r, keyspace=keyspace, now_ms=_now_ms())

    assert report.ok, [f for s in report.patterns.values() for f in s.findings]
    assert report.keys_scanned == seeded.keys
    assert report.unrecognised_count == 0
    q = keyspace.queue_prefix
    assert _stats(report, f"{q}<name>") == {"keys": 1, "canonical": 0, "legacy": 3, "invalid": 0}
    assert _stats(report, f"{q}<name>:<priority>") == {"keys": 3, "canonical": 0, "legacy": 3, "invalid": 0}
    assert _stats(report, f"{q}<name>:failed")["legacy"] == 1
    assert _stats(report, f"{q}<name>:delayed")["legacy"] == 1
    assert _stats(report, f"{q}schedule:<id>")["legacy"] == 1
    assert _stats(report, keyspace.schedules())["canonical"] == 1
    assert _stats(report, keyspace.worker("<workerId>"))["legacy"] == 1
    assert _stats(report, keyspace.legacy_worker("<workerId>"))["legacy"] == 1
    assert _stats(report, keyspace.logs_history())["legacy"] == 2
    assert _stats(report, keyspace.legacy_pulse("<service>", "<nodeId>"))["legacy"] == 1
    assert _stats(report, keyspace.metric("<name>", "<epochMinute>"))["keys"] == 4
    assert report.patterns[keyspace.alert_rules()].canonical == 1
    assert report.warnings == []


def test_canonical_entries_count_as_canonical(r: redis.Redis, keyspace: KeySpace) -> None:
    job = JobPayload.create("resize", {"w": 100})
    r.lpush(keyspace.queue("images"), encode_job(job))
    event = JobEvent(type="enqueued", queue="images", timestamp=_now_ms(), job_id=job.id, job_name="resize")
    r.xadd(keyspace.events(), encode_event_fields(event))  # type: ignore[arg-type]

    report = run_doctor(r, keyspace=keyspace)

    assert _stats(report, keyspace.queue("<name>")) == {"keys": 1, "canonical": 1, "legacy": 0, "invalid": 0}
    assert _stats(report, keyspace.events()) == {"keys": 1, "canonical": 1, "legacy": 0, "invalid": 0}


def _corrupt(r: redis.Redis, space: KeySpace) -> dict[str, str]:
    """Write one bad entry per structure; returns key -> expected error kind."""
    good = encode_job(JobPayload.create("ok"))
    r.rpush(space.queue("emails"), good, "{not json", good)
    r.zadd(space.delayed("emails"), {'{"id":"x","type":"json"}': 1})
    r.set(space.queue("oops"), "a string where a list belongs")
    r.set(space.worker("w-bad"), json.dumps({"id": "w-bad", "hostname": "h"}), ex=30)
    r.set(space.pulse("api", "n1"), b"\xff\xfe", ex=30)
    r.hset(space.schedule("broken"), mapping={"id": "broken", "queue": "emails", "job": good})
    r.zadd(space.schedules(), {"ghost": 1})
    r.set(space.throughput(1), "12abc")
    r.set(space.paused("emails"), "yes")
    r.xadd(space.events(), {"other": "field"})
    r.set(space.alert_rules(), json.dumps([{"id": "r", "name": "n", "type": "backlog"}]))
    r.lpush(space.logs_history(), json.dumps({"level": "info"}))
    return {
        space.queue("emails"): "invalid_json",
        space.delayed("emails"): "missing_field",
        space.queue("oops"): "wrong_type",
        space.worker("w-bad"): "missing_field",
        space.pulse("api", "n1"): "invalid_encoding",
        space.schedule("broken"): "missing_field",
        space.schedules(): "dangling_reference",
        space.throughput(1): "invalid_value",
        space.paused("emails"): "invalid_value",
        space.events(): "missing_field",
        space.alert_rules(): "missing_field",
        space.logs_history(): "missing_field",
    }


def test_each_corrupted_entry_is_reported_once_with_its_key_and_reason(r: redis.Redis, keyspace: KeySpace) -> None:
    expected = _corrupt(r, keyspace)

    report = run_doctor(r, keyspace=keyspace)

    findings = {f.key: f for stats in report.patterns.values() for f in stats.findings}
    assert {key: finding.kind for key, finding in findings.items()} == expected
    assert report.invalid == len(expected)
    assert not report.ok
    assert findings[keyspace.queue("emails")].where == "index 1"
    assert "cron" in findings[keyspace.schedule("broken")].reason
    assert report.patterns[keyspace.queue("<name>")].canonical == 2


def test_sample_limits_entries_read_per_key(r: redis.Redis, keyspace: KeySpace) -> None:
    r.rpush(keyspace.failed("big"), *(encode_job(JobPayload.create("x")) for _ in range(30)))

    report = run_doctor(r, keyspace=keyspace, sample=10)

    assert report.patterns[keyspace.failed("<name>")].entries == 10
    with pytest.raises(ValueError, match="sample"):
        run_doctor(r, keyspace=keyspace, sample=0)


def test_cluster_safe_layout_is_recognised(r: redis.Redis, keyspace: KeySpace) -> None:
    space = keyspace.model_copy(update={"cluster_safe": True})
    seed_wire_facts(r, space, _now_ms())

    report = run_doctor(r, keyspace=space, now_ms=_now_ms())

    assert report.ok
    assert report.unrecognised_count == 0
    assert report.patterns[space.queue("<name>")].legacy == 3


@pytest.mark.parametrize("cluster_safe", [False, True], ids=["wire", "cluster-safe"])
def test_what_the_alert_runtime_writes_is_canonical(r: redis.Redis, keyspace: KeySpace, cluster_safe: bool) -> None:
    space = keyspace.model_copy(update={"cluster_safe": cluster_safe})
    r.set(space.alert_rules(), '[{"id":"b","name":"B","type":"backlog","threshold":1}]')
    r.lpush(space.queue("q1"), encode_job(JobPayload.create("x")))
    r.lpush(space.queue("q2"), encode_job(JobPayload.create("x")))
    AlertService(r, keyspace=space, send=False).evaluate_once()
    add_silence(r, matchers=SilenceMatchers(queue="q1"), duration_s=60, comment="c", author="a", keyspace=space)
    add_mute(r, cron="0 1 * * *", duration_minutes=5, matchers=SilenceMatchers(rule="b"), keyspace=space)
    record_delivery(r, "slack", ok=False, now_ms=_now_ms(), error="HTTP 500", keyspace=space)
    r.set(space.alerts_delivered("b:queue:q1:1", "slack"), "1", ex=600)

    report = run_doctor(r, keyspace=space)

    assert report.ok and report.unrecognised_count == 0, [f for s in report.patterns.values() for f in s.findings]
    for pattern in (space.alerts_states(), space.alerts_outbox(), space.alerts_history()):
        stats = report.patterns[pattern]
        assert stats.entries == stats.canonical > 0, pattern
    assert report.patterns[space.alerts_silences()].canonical == 1
    assert report.patterns[space.alerts_channels()].canonical == 1
    assert report.patterns[space.alerts_delivered("<notificationId>", "<channel>")].keys == 1


def test_alerting_keys_of_the_wrong_type_or_without_ttl_are_errors(r: redis.Redis, keyspace: KeySpace) -> None:
    r.set(keyspace.alerts_states(), "a string where a hash belongs")
    r.set(keyspace.alerts_delivered("r1:all:1", "email"), "1")
    r.hset(keyspace.alerts_silences(), "s1", '{"id":"s1"}')
    r.xadd(keyspace.alerts_outbox(), {"notification": "{oops"})

    report = run_doctor(r, keyspace=keyspace)

    findings = {f.key: f.kind for stats in report.patterns.values() for f in stats.findings}
    assert findings == {
        keyspace.alerts_states(): "wrong_type",
        keyspace.alerts_silences(): "missing_field",
        keyspace.alerts_outbox(): "invalid_json",
    }
    issues = [(stats.pattern, issue.kind) for stats, issue in report.issues("error")]
    assert issues == [(keyspace.alerts_delivered("<notificationId>", "<channel>"), "missing_ttl")]
    assert not report.ok


def _db_url(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"


def test_cli_with_default_prefixes_exits_0_then_1(isolated_db: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    seed_wire_facts(isolated_db, KeySpace(), _now_ms())

    assert main(["doctor", "--redis", _db_url(isolated_db), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert {p["pattern"] for p in report["patterns"]} >= {
        "queue:<name>",
        "queue:schedule:<id>",
        "flux_console:worker:<workerId>",
    }

    isolated_db.lpush("queue:emails", "garbage")
    assert main(["doctor", "--redis", _db_url(isolated_db)]) == 1
    out = capsys.readouterr().out
    assert "queue:emails" in out and "invalid_json" in out


def test_cli_reports_unreachable_redis_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--redis", "redis://127.0.0.1:1/0"]) == 2
    assert "cannot reach Redis" in capsys.readouterr().err


def test_cli_rejects_a_bad_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--redis", "http://example.invalid"]) == 2
    assert "redis://" in capsys.readouterr().err


def test_every_kind_of_key_has_a_rule() -> None:
    assert set(_RULES) == set(KeyKind) - {KeyKind.UNKNOWN}


def test_a_workers_staged_events_are_counted(r: redis.Redis, keyspace: KeySpace) -> None:
    r.rpush(keyspace.staged_events("w-1"), b'{"type":"started"}\n', b'{"type":"completed"}\n')

    report = run_doctor(r, keyspace=keyspace, now_ms=_now_ms())

    stats = report.patterns[keyspace.staged_events("<workerId>")]
    assert (stats.keys, stats.entries, stats.invalid) == (1, 2, 0)
