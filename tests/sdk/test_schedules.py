"""``Scheduler`` and ``zenith schedules``/``zenith scheduler`` on a real Redis, with Node-written schedules too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import cast

import pytest
import redis
from event_stream import stream_events
from patience import HANG_S
from wire_data import node_job
from worker_helpers import wait_for

from zenith_protocol import (
    EventType,
    InvalidScheduleError,
    KeySpace,
    NotFoundError,
    OperatorAction,
    Schedule,
    decode_job,
)
from zenith_sdk.cli import main
from zenith_sdk.schedules import InvalidScheduleEntry, Scheduler, next_run_ms, previous_run_ms

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000


def utc_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=timezone.utc).timestamp() * 1000)


@pytest.fixture
def scheduler(r: redis.Redis, keyspace: KeySpace) -> Iterator[Scheduler]:
    with Scheduler(r, keyspace=keyspace) as made:
        yield made


def node_schedule(r: redis.Redis, space: KeySpace, schedule_id: str, *, next_run: int, **fields: str) -> str:
    """Write a schedule exactly as the Node system does: all strings, no protocolVersion, same job id."""
    job = node_job(f"1700000000000-{schedule_id[:7]:0<7}", "nightly-report", {"kind": "daily"}, created_at=NOW)
    mapping = {
        "id": schedule_id,
        "cron": "0 3 * * *",
        "queue": "reports",
        "job": job,
        "nextRun": str(next_run),
        "lastRun": str(next_run - 86_400_000),
        "enabled": "true",
        "connection": "default",
        **fields,
    }
    r.hset(space.schedule(schedule_id), mapping=mapping)  # type: ignore[arg-type]
    r.zadd(space.schedules(), {schedule_id: next_run})
    return job


def make_due(r: redis.Redis, space: KeySpace, schedule_id: str, run_ms: int) -> None:
    r.hset(space.schedule(schedule_id), "nextRun", str(run_ms))
    r.zadd(space.schedules(), {schedule_id: run_ms})


def operator_events(r: redis.Redis, space: KeySpace) -> list[tuple[str, str, str, int | None]]:
    return [
        (str(e.action.value if isinstance(e.action, OperatorAction) else e.action), e.actor or "", e.queue, e.count)
        for e in stream_events(r, space)
        if e.type == EventType.OPERATOR
    ]


# -- next runs ------------------------------------------------------------------------------------


def test_next_run_is_strictly_after_now_in_utc_by_default() -> None:
    assert next_run_ms("0 3 * * *", NOW) == utc_ms(2026, 1, 1, 3)
    assert next_run_ms("0 3 * * *", utc_ms(2026, 1, 1, 3)) == utc_ms(2026, 1, 2, 3)
    assert next_run_ms("*/15 * * * *", NOW + 1) == NOW + 15 * MINUTE
    assert next_run_ms("30 * * * * *", NOW) == NOW + 30_000  # a leading seconds field


def test_next_run_reads_the_cron_in_the_timezone() -> None:
    # 03:00 in Berlin is 02:00 UTC in winter (CET) and 01:00 UTC in summer (CEST).
    assert next_run_ms("0 3 * * *", NOW, "Europe/Berlin") == utc_ms(2026, 1, 1, 2)
    assert next_run_ms("0 3 * * *", utc_ms(2026, 7, 1), "Europe/Berlin") == utc_ms(2026, 7, 1, 1)
    assert next_run_ms("0 9 * * 1", NOW, "America/New_York") == utc_ms(2026, 1, 5, 14)


def test_dst_skips_missing_local_times_and_fires_repeated_ones_once() -> None:
    # 2026-03-29 02:30 does not exist in Berlin: that day is skipped.
    assert next_run_ms("30 2 * * *", utc_ms(2026, 3, 28, 12), "Europe/Berlin") == utc_ms(2026, 3, 30, 0, 30)
    # 2026-10-25 02:30 happens twice in Berlin: only the first (00:30 UTC) counts.
    first = next_run_ms("30 2 * * *", utc_ms(2026, 10, 24, 12), "Europe/Berlin")
    assert first == utc_ms(2026, 10, 25, 0, 30)
    assert next_run_ms("30 2 * * *", first, "Europe/Berlin") == utc_ms(2026, 10, 26, 1, 30)


def test_previous_run_is_at_or_before_now() -> None:
    assert previous_run_ms("0 3 * * *", utc_ms(2026, 1, 1, 3)) == utc_ms(2026, 1, 1, 3)
    assert previous_run_ms("0 3 * * *", utc_ms(2026, 1, 1, 3) - 1) == utc_ms(2025, 12, 31, 3)
    assert previous_run_ms("30 * * * * *", NOW + 45_000) == NOW + 30_000  # a leading seconds field


def test_previous_run_reads_local_time_as_next_run_does() -> None:
    # 02:30 Berlin is skipped on 2026-03-29; on 2026-10-25 it counts at its first occurrence (00:30 UTC).
    assert previous_run_ms("30 2 * * *", utc_ms(2026, 3, 29, 12), "Europe/Berlin") == utc_ms(2026, 3, 28, 1, 30)
    assert previous_run_ms("30 2 * * *", utc_ms(2026, 10, 25, 12), "Europe/Berlin") == utc_ms(2026, 10, 25, 0, 30)
    for cron in ("0 3 * * *", "*/7 * * * *", "30 2 * * *"):
        for now in (NOW, utc_ms(2026, 3, 29, 1, 45), utc_ms(2026, 10, 25, 1, 15)):
            last = previous_run_ms(cron, now, "Europe/Berlin")
            assert last <= now < next_run_ms(cron, last, "Europe/Berlin")


@pytest.mark.parametrize(
    ("cron", "zone", "field", "words"),
    [
        ("61 * * * *", None, "cron", "out of range"),
        ("* * *", None, "cron", "expected 5 fields"),
        ("every day", None, "cron", "expected 5 fields"),
        ("0 3 * * *", "Mars/Base", "timezone", "no such IANA time zone"),
        ("0 3 * * *", "../etc/passwd", "timezone", "no such IANA time zone"),
    ],
)
def test_invalid_cron_and_timezone_name_the_problem(
    scheduler: Scheduler, r: redis.Redis, keyspace: KeySpace, cron: str, zone: str | None, field: str, words: str
) -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        scheduler.register("bad", cron, "reports", "BuildReport", timezone=zone, actor="alice")
    error = caught.value
    assert isinstance(error, ValueError)
    assert (error.schedule_id, error.field) == ("bad", field)
    text = str(error)
    assert repr(zone if field == "timezone" else cron) in text and words in text and field in text
    assert r.exists(keyspace.schedule("bad")) == 0 and r.zcard(keyspace.schedules()) == 0


@pytest.mark.parametrize("cron", ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 0 30 2 *"])
def test_a_cron_that_never_fires_is_refused(
    scheduler: Scheduler, r: redis.Redis, keyspace: KeySpace, cron: str
) -> None:
    with pytest.raises(InvalidScheduleError, match="never fires") as caught:
        next_run_ms(cron, NOW, schedule_id="feb-30")
    assert (caught.value.schedule_id, caught.value.field, caught.value.value) == ("feb-30", "cron", cron)
    with pytest.raises(InvalidScheduleError, match="never fires"):
        scheduler.register("feb-30", cron, "reports", "BuildReport", actor="alice")
    assert r.exists(keyspace.schedule("feb-30")) == 0 and r.zcard(keyspace.schedules()) == 0


def test_a_rare_but_real_date_still_fires() -> None:
    leap_day = next_run_ms("0 12 29 2 *", NOW)  # 29 February: once in four years
    assert datetime.fromtimestamp(leap_day / 1000, tz=timezone.utc) == datetime(2028, 2, 29, 12, tzinfo=timezone.utc)


# -- operator actions -----------------------------------------------------------------------------


def test_register_writes_the_wire_layout_and_get_list_read_it(
    scheduler: Scheduler, r: redis.Redis, keyspace: KeySpace
) -> None:
    made = scheduler.register(
        "nightly", "0 3 * * *", "reports", "BuildReport", {"kind": "daily"}, timezone="Europe/Berlin", actor="alice"
    )
    stored = cast("dict[bytes, bytes]", r.hgetall(keyspace.schedule("nightly")))
    raw = {k.decode(): v.decode() for k, v in stored.items()}
    assert raw["enabled"] == "true" and raw["timezone"] == "Europe/Berlin" and raw["protocolVersion"] == "2"
    assert raw["nextRun"] == str(made.next_run_ms) and "lastRun" not in raw
    assert r.zscore(keyspace.schedules(), "nightly") == made.next_run_ms
    job = decode_job(raw["job"])
    assert (job.name, job.properties, job.id) == ("BuildReport", {"kind": "daily"}, "sched-nightly")

    assert scheduler.get("nightly") == made
    assert scheduler.list() == [made]
    assert operator_events(r, keyspace) == [("schedule_register", "alice", "reports", 1)]
    with pytest.raises(NotFoundError, match="schedule 'nope' not found"):
        scheduler.get("nope")


def test_pause_keeps_the_schedule_and_resume_recomputes_the_next_run(
    scheduler: Scheduler, r: redis.Redis, keyspace: KeySpace
) -> None:
    scheduler.register("every-minute", "* * * * *", "reports", "Ping", actor="alice")
    make_due(r, keyspace, "every-minute", NOW)
    scheduler.pause("every-minute", actor="bob")

    assert r.zscore(keyspace.schedules(), "every-minute") is None
    assert r.hget(keyspace.schedule("every-minute"), "enabled") == b"false"
    [listed] = scheduler.list()
    assert isinstance(listed, Schedule) and listed.enabled is False
    assert scheduler.tick(NOW + 10 * MINUTE) == [] and r.llen(keyspace.queue("reports")) == 0

    before_ms = int(time.time() * 1000)
    next_run = scheduler.resume("every-minute", actor="carol")
    assert before_ms < next_run <= before_ms + MINUTE
    assert r.zscore(keyspace.schedules(), "every-minute") == next_run
    assert scheduler.get("every-minute").enabled is True
    assert operator_events(r, keyspace)[1:] == [
        ("schedule_pause", "bob", "reports", 1),
        ("schedule_resume", "carol", "reports", 1),
    ]
    with pytest.raises(NotFoundError):
        scheduler.pause("nope", actor="bob")


def test_remove_deletes_hash_and_index_entry(scheduler: Scheduler, r: redis.Redis, keyspace: KeySpace) -> None:
    scheduler.register("gone", "0 3 * * *", "reports", "BuildReport", actor="alice")
    scheduler.pause("gone", actor="alice")
    scheduler.remove("gone", actor="dave")
    assert r.exists(keyspace.schedule("gone")) == 0 and r.zcard(keyspace.schedules()) == 0
    assert scheduler.list() == []
    assert operator_events(r, keyspace)[-1] == ("schedule_remove", "dave", "reports", 1)
    with pytest.raises(NotFoundError):
        scheduler.remove("gone", actor="dave")


def test_run_now_pushes_onto_the_priority_lane_without_touching_the_runs(
    scheduler: Scheduler, r: redis.Redis, keyspace: KeySpace
) -> None:
    made = scheduler.register("urgent", "0 3 * * *", "reports", "BuildReport", priority="high", actor="alice")
    job_id = scheduler.run_now("urgent", actor="erin")
    [raw] = r.lrange(keyspace.lane("reports", "high"), 0, -1)
    job = decode_job(raw)
    assert job.id == job_id != made.job.id and job.name == "BuildReport" and job.priority == "high"
    assert scheduler.get("urgent").next_run_ms == made.next_run_ms and scheduler.get("urgent").last_run_ms is None
    assert r.sismember(keyspace.queue_index(), "reports")
    events = stream_events(r, keyspace)
    assert [e.type for e in events][-2:] == [EventType.ENQUEUED, EventType.OPERATOR]
    assert events[-2].job_id == job_id and events[-1].actor == "erin" and events[-1].action == "schedule_run"


# -- schedules written by the Node system ---------------------------------------------------------


def test_node_written_schedules_are_listed_paused_and_fired(
    scheduler: Scheduler, r: redis.Redis, keyspace: KeySpace
) -> None:
    legacy_job = node_schedule(r, keyspace, "nightly", next_run=NOW - 5 * MINUTE)
    node_schedule(r, keyspace, "weekly", next_run=NOW - 5 * MINUTE, cron="0 9 * * 1")
    [nightly, weekly] = scheduler.list()
    assert isinstance(nightly, Schedule) and nightly.connection == "default" and nightly.timezone is None
    assert nightly.last_run_ms == NOW - 5 * MINUTE - 86_400_000

    scheduler.pause("weekly", actor="alice")
    assert scheduler.tick(NOW) == ["nightly"]

    [raw] = r.lrange(keyspace.queue("reports"), 0, -1)
    pushed = decode_job(raw)
    assert pushed.name == "nightly-report" and pushed.properties == {"kind": "daily"}
    assert pushed.id != decode_job(legacy_job).id and pushed.created_at_ms == NOW
    fired = scheduler.get("nightly")
    assert fired.last_run_ms == NOW and fired.next_run_ms == utc_ms(2026, 1, 1, 3)
    assert fired.connection == "default"
    assert r.zscore(keyspace.schedules(), "nightly") == utc_ms(2026, 1, 1, 3)
    # The lock second is that of the run fired (its old nextRun), not of "now".
    assert r.exists(keyspace.schedule_lock("nightly", (NOW - 5 * MINUTE) // 1000)) == 1
    assert r.hget(keyspace.schedule("weekly"), "enabled") == b"false"


def test_a_disabled_schedule_left_in_the_index_never_fires(
    scheduler: Scheduler, r: redis.Redis, keyspace: KeySpace
) -> None:
    node_schedule(r, keyspace, "off", next_run=NOW - MINUTE, enabled=" FALSE ")
    assert scheduler.tick(NOW) == []
    assert r.llen(keyspace.queue("reports")) == 0
    assert r.zscore(keyspace.schedules(), "off") is None  # dropped from the index (PROTOCOL 5.5 step 2)
    assert r.hget(keyspace.schedule("off"), "lastRun") == str(NOW - MINUTE - 86_400_000).encode()


# -- firing ---------------------------------------------------------------------------------------


def test_a_schedule_missed_for_many_slots_fires_once(scheduler: Scheduler, r: redis.Redis, keyspace: KeySpace) -> None:
    scheduler.register("minutely", "* * * * *", "reports", "Ping", actor="alice")
    make_due(r, keyspace, "minutely", NOW - 30 * MINUTE)

    assert scheduler.tick(NOW + 7) == ["minutely"]
    assert scheduler.tick(NOW + 7) == [] and scheduler.tick(NOW + 30_000) == []
    assert r.llen(keyspace.queue("reports")) == 1
    fired = scheduler.get("minutely")
    assert fired.last_run_ms == NOW + 7 and fired.next_run_ms == NOW + MINUTE
    assert scheduler.tick(NOW + MINUTE) == ["minutely"] and r.llen(keyspace.queue("reports")) == 2


def test_four_tickers_fire_each_of_fifty_due_runs_exactly_once(
    redis_url: str, r: redis.Redis, keyspace: KeySpace
) -> None:
    with Scheduler(r, keyspace=keyspace, events=False) as setup:
        for n in range(50):
            setup.register(f"s{n:02d}", "*/5 * * * *", "reports", "Ping", {"n": n}, actor="alice")
    for n in range(50):
        make_due(r, keyspace, f"s{n:02d}", NOW - n * 1000)
    start = threading.Barrier(4)
    fired: list[list[str]] = []

    def ticker() -> None:
        client = redis.Redis.from_url(redis_url)
        try:
            with Scheduler(client, keyspace=keyspace) as own:
                start.wait()
                mine = own.tick(NOW) + own.tick(NOW)
                fired.append(mine)
        finally:
            client.close()

    threads = [threading.Thread(target=ticker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(8)
    assert len(fired) == 4
    counts = Counter(schedule_id for mine in fired for schedule_id in mine)
    assert sorted(counts) == [f"s{n:02d}" for n in range(50)] and set(counts.values()) == {1}
    jobs = [decode_job(raw) for raw in r.lrange(keyspace.queue("reports"), 0, -1)]
    assert sorted(job.properties["n"] for job in jobs) == list(range(50))
    assert len({job.id for job in jobs}) == 50
    schedules = Scheduler(r, keyspace=keyspace, events=False).list()
    assert {s.last_run_ms for s in schedules if isinstance(s, Schedule)} == {NOW} and len(schedules) == 50
    enqueued = [e for e in stream_events(r, keyspace) if e.type == EventType.ENQUEUED]
    assert len(enqueued) == 50


def test_a_malformed_hash_is_listed_as_invalid_and_does_not_stop_tick(
    scheduler: Scheduler, r: redis.Redis, keyspace: KeySpace
) -> None:
    node_schedule(r, keyspace, "good", next_run=NOW - MINUTE)
    node_schedule(r, keyspace, "bad-job", next_run=NOW - MINUTE, job="{not json")
    node_schedule(r, keyspace, "bad-cron", next_run=NOW - MINUTE, cron="0 25 * * *")
    r.hset(keyspace.schedule("bad-zone"), mapping={"id": "bad-zone", "enabled": "false", "timezone": "Nowhere/X"})

    entries = {entry.id: entry for entry in scheduler.list()}
    assert sorted(entries) == ["bad-cron", "bad-job", "bad-zone", "good"]
    assert isinstance(entries["good"], Schedule)
    for name in ("bad-cron", "bad-job", "bad-zone"):
        assert isinstance(entries[name], InvalidScheduleEntry)
    bad_job = entries["bad-job"]
    assert isinstance(bad_job, InvalidScheduleEntry)
    assert bad_job.raw["job"] == "{not json" and "job" in bad_job.error and bad_job.next_run_ms == NOW - MINUTE
    bad_cron = entries["bad-cron"]
    assert isinstance(bad_cron, InvalidScheduleEntry) and "'0 25 * * *'" in bad_cron.error
    assert isinstance(entries["bad-zone"], InvalidScheduleEntry) and entries["bad-zone"].enabled is False

    assert scheduler.tick(NOW) == ["good"]
    # Broken schedules are left exactly as they were: still due, never deleted or disabled.
    assert r.zscore(keyspace.schedules(), "bad-job") == NOW - MINUTE
    assert r.hget(keyspace.schedule("bad-cron"), "nextRun") == str(NOW - MINUTE).encode()
    assert scheduler.tick(NOW) == []


def test_tick_recovers_from_a_flushed_script_cache(scheduler: Scheduler, r: redis.Redis, keyspace: KeySpace) -> None:
    scheduler.register("a", "* * * * *", "reports", "Ping", actor="alice")
    make_due(r, keyspace, "a", NOW)
    r.script_flush()
    assert scheduler.tick(NOW) == ["a"]
    r.script_flush()
    make_due(r, keyspace, "a", NOW + MINUTE)
    assert scheduler.tick(NOW + MINUTE) == ["a"]
    assert r.llen(keyspace.queue("reports")) == 2


def test_cluster_safe_layout_fires_through_the_split_path(r: redis.Redis, keyspace: KeySpace) -> None:
    space = keyspace.model_copy(update={"cluster_safe": True})
    with Scheduler(r, keyspace=space) as scheduler:
        scheduler.register("c", "* * * * *", "reports", "Ping", actor="alice")
        make_due(r, space, "c", NOW)
        assert space.schedule("c").startswith(f"{space.queue_prefix}{{schedules}}:")
        assert scheduler.tick(NOW) == ["c"] and scheduler.tick(NOW) == []
        assert r.llen(space.queue("reports")) == 1
        assert scheduler.get("c").last_run_ms == NOW


# -- command line ---------------------------------------------------------------------------------


def cli(redis_url: str, space: KeySpace, *argv: str) -> int:
    prefixes = ["--redis", redis_url, "--queue-prefix", space.queue_prefix, "--zenith-prefix", space.zenith_prefix]
    prefixes += ["--console-prefix", space.console_prefix]
    return main([*argv, *prefixes])


def test_cli_manages_schedules(
    redis_url: str,
    r: redis.Redis,
    keyspace: KeySpace,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add = ["schedules", "add", "nightly", "0 3 * * *", "reports", "BuildReport", "--timezone", "Europe/Berlin"]
    assert cli(redis_url, keyspace, *add, "--properties", '{"kind":"daily"}', "--actor", "alice") == 0
    assert cli(redis_url, keyspace, "schedules", "pause", "nightly", "--actor", "bob") == 0
    capsys.readouterr()
    assert cli(redis_url, keyspace, "schedules", "list", "--json") == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["id"] == "nightly" and listed["enabled"] is False and listed["timezone"] == "Europe/Berlin"
    assert listed["job"]["data"] == '{"job":"BuildReport","properties":{"kind":"daily"}}'
    assert cli(redis_url, keyspace, "schedules", "list") == 0
    assert "nightly" in capsys.readouterr().out

    assert cli(redis_url, keyspace, "schedules", "resume", "nightly", "--actor", "carol") == 0
    assert "resumed; next run" in capsys.readouterr().out
    assert cli(redis_url, keyspace, "schedules", "run", "nightly", "--json", "--actor", "dave") == 0
    job_id = json.loads(capsys.readouterr().out)["jobId"]
    assert decode_job(r.lrange(keyspace.queue("reports"), 0, -1)[0]).id == job_id

    monkeypatch.setattr("builtins.input", lambda _question: "n")
    assert cli(redis_url, keyspace, "schedules", "remove", "nightly") == 1
    assert r.exists(keyspace.schedule("nightly")) == 1
    assert cli(redis_url, keyspace, "schedules", "remove", "nightly", "--yes", "--actor", "erin") == 0
    assert r.exists(keyspace.schedule("nightly")) == 0
    actions = [(action, actor) for action, actor, _queue, _count in operator_events(r, keyspace)]
    assert actions == [
        ("schedule_register", "alice"),
        ("schedule_pause", "bob"),
        ("schedule_resume", "carol"),
        ("schedule_run", "dave"),
        ("schedule_remove", "erin"),
    ]


def test_cli_rejects_bad_input(redis_url: str, keyspace: KeySpace, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(redis_url, keyspace, "schedules", "add", "x", "* * * * *", "q", "J", "--properties", "[1]") == 2
    assert "JSON object" in capsys.readouterr().err
    assert cli(redis_url, keyspace, "schedules", "add", "x", "* * *", "q", "J") == 2
    assert "invalid cron" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli(redis_url, keyspace, "scheduler", "--interval", "0")
    assert exit_info.value.code == 2 and "--interval: must be positive" in capsys.readouterr().err


def test_scheduler_command_fires_and_stops_on_sigterm(redis_url: str, r: redis.Redis, keyspace: KeySpace) -> None:
    with Scheduler(r, keyspace=keyspace) as scheduler:
        scheduler.register("tick", "* * * * *", "reports", "Ping", actor="alice")
    make_due(r, keyspace, "tick", NOW)
    code = (
        "import argparse, sys\n"
        "from zenith_sdk.cli._common import CliSettings\n"
        "from zenith_sdk.cli._schedules import register\n"
        "parser = argparse.ArgumentParser()\n"
        "register(parser.add_subparsers(dest='command'))\n"
        "args = parser.parse_args(sys.argv[1:])\n"
        "sys.exit(args.handler(args, CliSettings()))\n"
    )
    argv = ["scheduler", "--interval", "0.1", "--redis", redis_url, "--queue-prefix", keyspace.queue_prefix]
    argv += ["--zenith-prefix", keyspace.zenith_prefix, "--console-prefix", keyspace.console_prefix]
    process = subprocess.Popen(
        [sys.executable, "-c", code, *argv], stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"}
    )
    try:
        deadline = time.monotonic() + HANG_S
        while r.llen(keyspace.queue("reports")) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert r.llen(keyspace.queue("reports")) == 1
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=HANG_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "scheduler: stopped" in err


def test_a_broken_schedule_can_be_paused_but_not_resumed(
    scheduler: Scheduler, r: redis.Redis, keyspace: KeySpace
) -> None:
    node_schedule(r, keyspace, "bad-cron", next_run=NOW - MINUTE, cron="0 25 * * *")
    scheduler.pause("bad-cron", actor="alice")
    assert r.zscore(keyspace.schedules(), "bad-cron") is None
    with pytest.raises(InvalidScheduleError, match="'0 25 \\* \\* \\*'"):
        scheduler.resume("bad-cron", actor="alice")
    assert r.hget(keyspace.schedule("bad-cron"), "enabled") == b"false"


# -- the ticker loop an application embeds -------------------------------------------------------------


def _running(scheduler: Scheduler, **options: object) -> threading.Thread:
    thread = threading.Thread(target=scheduler.run, kwargs=options, daemon=True)
    thread.start()
    return thread


def test_run_fires_due_schedules_until_stop_is_called(scheduler: Scheduler, r: redis.Redis, keyspace: KeySpace) -> None:
    scheduler.register("tick", "* * * * *", "reports", "Ping", actor="alice")
    make_due(r, keyspace, "tick", NOW)
    thread = _running(scheduler, interval_s=0.05)
    try:
        wait_for(lambda: r.llen(keyspace.queue("reports")) == 1, what="the first run")
        make_due(r, keyspace, "tick", NOW + MINUTE)
        wait_for(lambda: r.llen(keyspace.queue("reports")) == 2, what="the next run, fired by the next tick")
    finally:
        scheduler.stop()
        thread.join(HANG_S)
    assert not thread.is_alive()


def test_run_ends_when_the_callers_event_is_set_and_survives_failing_ticks(
    scheduler: Scheduler, r: redis.Redis, keyspace: KeySpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler.register("tick", "* * * * *", "reports", "Ping", actor="alice")
    make_due(r, keyspace, "tick", NOW)
    real_tick, calls = scheduler.tick, Counter[str]()

    def flaky_tick(now_ms: int | None = None) -> list[str]:
        calls["tick"] += 1
        if calls["tick"] == 1:
            raise redis.ConnectionError("Redis went away")
        if calls["tick"] == 2:
            raise RuntimeError("a bug in a tick")
        return real_tick(now_ms)

    monkeypatch.setattr(scheduler, "tick", flaky_tick)
    stop = threading.Event()
    thread = _running(scheduler, interval_s=0.05, stop=stop)
    try:
        wait_for(lambda: r.llen(keyspace.queue("reports")) == 1, what="a run after two failed ticks")
    finally:
        stop.set()
        thread.join(HANG_S)
    assert not thread.is_alive() and calls["tick"] >= 3


def test_stop_before_run_makes_that_run_return_and_the_next_one_work(
    scheduler: Scheduler, r: redis.Redis, keyspace: KeySpace
) -> None:
    scheduler.stop()
    scheduler.run(interval_s=0.05)  # returns at once: it was stopped before it began

    scheduler.register("tick", "* * * * *", "reports", "Ping", actor="alice")
    make_due(r, keyspace, "tick", NOW)
    thread = _running(scheduler, interval_s=0.05)
    try:
        wait_for(lambda: r.llen(keyspace.queue("reports")) == 1, what="a run of the restarted loop")
    finally:
        scheduler.stop()
        thread.join(HANG_S)
    assert not thread.is_alive()
