"""``list_workers``, ``list_nodes``, ``zenith workers`` and ``zenith nodes`` against a real Redis.

Node-side data is written exactly as the Node consumer and the Node agent write it (wire_data).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any

import pytest
import redis
from cleanup import delete_prefix
from cli_run import one_line, prefix_options, zenith, zenith_all
from counting import CountingRedis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_data import iso, node_agent_pulse, node_consumer_heartbeat
from worker_fixtures import StartWorker
from worker_helpers import dead_worker, node_raws, server_ms, wait_for

from zenith_protocol import KeySpace, PulseKeyForm, WorkerStatus, decode_heartbeat
from zenith_protocol.workers import HEARTBEAT_TTL_S
from zenith_sdk.cli._fleet import _duration
from zenith_sdk.control import NodeEntry, StaleReason, WorkerEntry, list_nodes, list_workers
from zenith_sdk.fleet import READ_BATCH
from zenith_sdk.producer import Producer
from zenith_sdk.pulse import Pulse
from zenith_sdk.worker import App, JobContext, recover_dead_workers

LEGACY, PULSE = PulseKeyForm.LEGACY, PulseKeyForm.PULSE


def _console_heartbeat(worker_id: str, ms: int, **fields: Any) -> str:
    """A heartbeat in the console shape without ``protocolVersion``: what Node workers wrote for the console."""
    heartbeat = {
        "id": worker_id,
        "hostname": "web-1",
        "pid": 4242,
        "uptime": 120,
        "memory": {"rss": "100MB", "heapTotal": "60MB", "heapUsed": "N/A"},
        "queues": ["emails"],
        "concurrency": 4,
        "timestamp": iso(ms),
        "loadAvg": [0.5, 0.4, 0.3],
        **fields,
    }
    return json.dumps(heartbeat, separators=(",", ":"))


def _by_id(entries: list[WorkerEntry]) -> dict[str, WorkerEntry]:
    return {entry.id: entry for entry in entries}


def _same_columns(table: str) -> bool:
    """True when every row of a printed table has as many cells as its header, and every header cell a name."""
    header = next(line for line in table.splitlines() if "┃" in line)
    rows = [line for line in table.splitlines() if "│" in line]
    named = all(cell.strip() for cell in header.split("┃")[1:-1])
    return named and bool(rows) and all(row.count("│") == header.count("┃") for row in rows)


def _nodes(entries: list[NodeEntry]) -> dict[tuple[str, str], NodeEntry]:
    return {(entry.service, entry.node_id): entry for entry in entries}


# -- nodes: both key forms merged ---------------------------------------------------------------------


def test_a_python_node_under_both_forms_counts_once(r: redis.Redis, keyspace: KeySpace) -> None:
    pulse = Pulse("billing", r, keyspace=keyspace, node_id="web-1")
    node = pulse.beat()
    try:
        (entry,) = list_nodes(r, keyspace=keyspace)
    finally:
        pulse.stop()

    assert (entry.service, entry.node_id, entry.node) == ("billing", "web-1", node)
    assert entry.forms == (PULSE, LEGACY)
    assert set(entry.keys) == {keyspace.pulse("billing", "web-1"), keyspace.legacy_pulse("billing", "web-1")}
    assert not entry.stale and entry.problem is None
    assert list_nodes(r, keyspace=keyspace) == []


def test_a_node_only_under_the_node_agent_form_is_listed(r: redis.Redis, keyspace: KeySpace) -> None:
    now = server_ms(r)
    r.set(keyspace.legacy_pulse("api", "web-1-4242"), node_agent_pulse("api", "web-1-4242", now), ex=30)

    (entry,) = list_nodes(r, keyspace=keyspace, now_ms=now + 1500)

    assert entry.node is not None and entry.node.is_legacy
    assert (entry.service, entry.node_id, entry.forms) == ("api", "web-1-4242", (LEGACY,))
    assert (entry.node.language.value, entry.node.cpu.system, entry.node.runtime.framework) == ("node", 12, "express")
    assert entry.key == keyspace.legacy_pulse("api", "web-1-4242") and entry.age_ms == 1500


@pytest.mark.parametrize("newer", [PULSE, LEGACY])
def test_the_newest_report_describes_a_node_written_under_both_forms(
    r: redis.Redis, keyspace: KeySpace, newer: PulseKeyForm
) -> None:
    now = server_ms(r)
    keys = {PULSE: keyspace.pulse("api", "n-1"), LEGACY: keyspace.legacy_pulse("api", "n-1")}
    for form, key in keys.items():
        r.set(key, node_agent_pulse("api", "n-1", now if form is newer else now - 20_000))

    (entry,) = list_nodes(r, keyspace=keyspace, now_ms=now)

    assert entry.node is not None and entry.node.timestamp == now
    assert entry.key == keys[newer] and entry.forms == (PULSE, LEGACY)


def test_a_report_that_decodes_wins_over_one_that_does_not(r: redis.Redis, keyspace: KeySpace) -> None:
    now = server_ms(r)
    r.set(keyspace.pulse("api", "n-1"), "{not json")
    r.set(keyspace.legacy_pulse("api", "n-1"), node_agent_pulse("api", "n-1", now))

    (entry,) = list_nodes(r, keyspace=keyspace, now_ms=now)

    assert entry.node is not None and entry.problem is None and entry.forms == (PULSE, LEGACY)


def test_undecodable_reports_are_listed_with_the_reason(r: redis.Redis, keyspace: KeySpace) -> None:
    r.set(keyspace.pulse("api", "bad-json"), b"\xff{")
    r.set(keyspace.pulse("api", "no-cpu"), json.dumps({"id": "no-cpu", "service": "api", "pid": 1, "hostname": "h"}))
    r.hset(keyspace.legacy_pulse("api", "a-hash"), "cpu", "12")

    entries = _nodes(list_nodes(r, keyspace=keyspace))

    assert sorted(entries) == [("api", "a-hash"), ("api", "bad-json"), ("api", "no-cpu")]
    assert all(entry.node is None and entry.problem is not None and not entry.stale for entry in entries.values())
    problems = {node_id: entry.problem for (_, node_id), entry in entries.items() if entry.problem is not None}
    assert "not UTF-8" in problems["bad-json"].reason
    assert "'cpu' is required" in problems["no-cpu"].reason
    assert "not a string" in problems["a-hash"].reason and "WRONGTYPE" in problems["a-hash"].reason
    assert entries[("api", "bad-json")].to_dict()["raw"] == "\ufffd{"


def test_stale_nodes_are_marked_or_left_out(r: redis.Redis, keyspace: KeySpace) -> None:
    now = server_ms(r)
    r.set(keyspace.pulse("api", "fresh"), node_agent_pulse("api", "fresh", now - 60_000))
    r.set(keyspace.legacy_pulse("api", "old"), node_agent_pulse("api", "old", now - 60_001))

    entries = _nodes(list_nodes(r, keyspace=keyspace, now_ms=now))

    assert (entries[("api", "fresh")].stale, entries[("api", "old")].stale) == (False, True)
    assert entries[("api", "old")].age_ms == 60_001
    assert [entry.node_id for entry in list_nodes(r, keyspace=keyspace, now_ms=now, include_stale=False)] == ["fresh"]


def test_nodes_come_sorted_by_service_then_id_and_keys_of_other_kinds_are_ignored(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    now = server_ms(r)
    for service, node_id in [("web", "b"), ("api", "z"), ("web", "a:with:colons"), ("api", "a")]:
        r.set(keyspace.pulse(service, node_id), node_agent_pulse(service, node_id, now))
    r.set(f"{keyspace.pulse_prefix}no-node-id", "x")  # not a pulse key: no node id

    entries = list_nodes(r, keyspace=keyspace, now_ms=now)

    assert [(e.service, e.node_id) for e in entries] == [
        ("api", "a"),
        ("api", "z"),
        ("web", "a:with:colons"),
        ("web", "b"),
    ]


def test_nodes_are_read_in_batches_of_pipelined_gets(counting: CountingRedis, keyspace: KeySpace) -> None:
    now = server_ms(counting)
    total = READ_BATCH + 3
    pipe = counting.pipeline(transaction=False)
    for n in range(total):
        pipe.set(keyspace.legacy_pulse("bulk", f"n-{n}"), node_agent_pulse("bulk", f"n-{n}", now))
    pipe.execute()
    counting.round_trips.clear()

    entries = list_nodes(counting, keyspace=keyspace, now_ms=now)

    assert len(entries) == total
    assert all(args[0] != "KEYS" for trip in counting.round_trips for args in trip)
    reads = [len(trip) for trip in counting.round_trips if all(args[0] == "GET" for args in trip)]
    assert reads == [READ_BATCH, 3]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    writes=st.lists(
        st.tuples(st.sampled_from(["s1", "s2"]), st.sampled_from(["n1", "n2", "n3"]), st.sampled_from([PULSE, LEGACY])),
        max_size=12,
    ),
    ages=st.lists(st.integers(min_value=0, max_value=120_000), min_size=12, max_size=12),
)
def test_merging_keeps_one_node_per_service_and_id_with_the_newest_report(
    r: redis.Redis, keyspace: KeySpace, writes: list[tuple[str, str, PulseKeyForm]], ages: list[int]
) -> None:
    delete_prefix(r, keyspace.pulse_prefix)
    delete_prefix(r, keyspace.legacy_pulse_prefix)
    now = 1_767_225_600_000
    stamps: dict[str, int] = {}
    for (service, node_id, form), age in zip(writes, ages):
        key = keyspace.pulse_keys(service, node_id, form)[0]
        stamps[key] = now - age  # a later write to the same key replaces the earlier one
        r.set(key, node_agent_pulse(service, node_id, now - age))

    entries = list_nodes(r, keyspace=keyspace, now_ms=now)

    expected: dict[tuple[str, str], int] = {}
    for service, node_id, form in writes:
        key = keyspace.pulse_keys(service, node_id, form)[0]
        expected[(service, node_id)] = max(expected.get((service, node_id), 0), stamps[key])
    assert {(e.service, e.node_id): e.node.timestamp if e.node else None for e in entries} == expected
    assert all(e.stale == (now - expected[(e.service, e.node_id)] > 60_000) for e in entries)


# -- workers ------------------------------------------------------------------------------------------


def test_python_and_node_workers_are_listed_with_what_they_do(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer, gate: threading.Event
) -> None:
    def slow_job(job: JobContext) -> None:
        gate.wait(5)

    now = server_ms(r)
    r.set(keyspace.legacy_worker("worker-a1b2c3"), node_consumer_heartbeat("worker-a1b2c3", ["emails"], now), ex=10)
    r.set(keyspace.worker("worker-console-1"), _console_heartbeat("worker-console-1", now), ex=30)
    worker = start_worker(App({"slow-job": slow_job}), queues=("q", "other"), concurrency=2, heartbeat_interval_s=0.05)
    job_id = producer.push("slow-job", queue="q")

    def busy() -> bool:
        raw = r.get(keyspace.worker(worker.id))
        return raw is not None and decode_heartbeat(raw).current_job_id == job_id

    wait_for(busy, what="the busy heartbeat")
    entries = _by_id(list_workers(r, keyspace=keyspace))

    assert sorted(entries) == sorted(["worker-a1b2c3", "worker-console-1", worker.id])
    python, node, console = entries[worker.id], entries["worker-a1b2c3"], entries["worker-console-1"]
    assert (python.language, python.status, python.queues, python.concurrency) == ("python", "busy", ("q", "other"), 2)
    assert python.heartbeat is not None
    assert (python.heartbeat.current_job_id, python.heartbeat.job_name) == (job_id, "slow-job")
    assert (python.heartbeat.hostname, python.heartbeat.pid) == (socket.gethostname(), os.getpid())
    assert python.indexed_ms is not None and python.stale is None and python.age_ms is not None
    assert (node.language, node.status, node.queues, node.concurrency) == ("node", "online", ("emails",), None)
    assert node.heartbeat is not None and node.heartbeat.memory.rss == "80MB"
    assert node.key == keyspace.legacy_worker("worker-a1b2c3") and node.indexed_ms is None and node.stale is None
    assert (console.language, console.status, console.concurrency) == ("node", None, 4)
    assert console.heartbeat is not None and console.heartbeat.uptime_s == 120
    gate.set()
    wait_for(lambda: _by_id(list_workers(r, keyspace=keyspace))[worker.id].status == WorkerStatus.IDLE.value)


def test_stale_workers_are_those_recovery_treats_as_dead_and_those_not_refreshing(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    now = server_ms(r)
    ttl_ms = HEARTBEAT_TTL_S * 1000
    dead_worker(r, keyspace, "dead", {"emails": node_raws("d", 2)}, age_ms=ttl_ms + 5_000)
    dead_worker(r, keyspace, "just-gone", {"emails": node_raws("g", 1)}, age_ms=1_000)
    r.set(keyspace.worker("unindexed"), _console_heartbeat("unindexed", now - 2_000), ex=30)
    r.set(keyspace.worker("old-index"), _console_heartbeat("old-index", now), ex=30)
    r.zadd(keyspace.worker_index(), {"old-index": now - ttl_ms - 1})
    r.set(keyspace.worker("old-beat"), _console_heartbeat("old-beat", now - ttl_ms - 1))
    r.set(keyspace.worker("fine"), _console_heartbeat("fine", now), ex=30)
    r.zadd(keyspace.worker_index(), {"fine": now})

    entries = _by_id(list_workers(r, keyspace=keyspace, now_ms=now))

    assert {worker_id: entry.stale for worker_id, entry in entries.items()} == {
        "dead": StaleReason.HEARTBEAT_EXPIRED,
        "just-gone": StaleReason.HEARTBEAT_EXPIRED,
        "old-index": StaleReason.INDEX_NOT_REFRESHED,
        "old-beat": StaleReason.HEARTBEAT_TOO_OLD,
        "unindexed": None,
        "fine": None,
    }
    assert (entries["dead"].key, entries["dead"].heartbeat, entries["dead"].queues) == (None, None, ("emails",))
    registered = r.zscore(keyspace.worker_index(), "dead")
    assert registered is not None and entries["dead"].indexed_ms == registered
    assert entries["dead"].age_ms == now - registered and entries["unindexed"].age_ms == 2_000
    assert sorted(e.id for e in list_workers(r, keyspace=keyspace, now_ms=now, include_stale=False)) == [
        "fine",
        "unindexed",
    ]
    # Every worker recovery puts back is one the listing marked as gone.
    recovered = recover_dead_workers(r, keyspace, now_ms=now, sweep=False)
    assert set(recovered) == {"dead"} and entries["dead"].stale


def test_undecodable_heartbeats_are_listed_never_raised(r: redis.Redis, keyspace: KeySpace) -> None:
    now = server_ms(r)
    r.set(keyspace.worker("garbage"), "{not json")
    r.set(keyspace.legacy_worker("no-host"), json.dumps({"id": "no-host", "pid": 1, "timestamp": iso(now)}))
    r.lpush(keyspace.worker("a-list"), "x")
    r.zadd(keyspace.worker_index(), {"garbage": now})
    r.hset(keyspace.worker_queues(), "gone", "not json")
    r.zadd(keyspace.worker_index(), {"gone": now - 60_000})

    entries = _by_id(list_workers(r, keyspace=keyspace, now_ms=now))

    assert sorted(entries) == ["a-list", "garbage", "gone", "no-host"]
    for worker_id in ("a-list", "garbage", "no-host"):
        entry = entries[worker_id]
        assert entry.heartbeat is None and entry.problem is not None and entry.language is None, worker_id
    assert entries["garbage"].stale is None and entries["garbage"].age_ms == 0  # its index entry is fresh
    assert "'hostname' is required" in (entries["no-host"].problem.reason if entries["no-host"].problem else "")
    assert entries["gone"].queues == () and entries["gone"].stale is not None
    assert entries["garbage"].to_dict()["raw"] == "{not json"


def test_a_worker_under_both_heartbeat_keys_is_listed_once_with_the_newer_beat(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    now = server_ms(r)
    r.set(keyspace.legacy_worker("w-1"), node_consumer_heartbeat("w-1", ["emails"], now - 4_000))
    r.set(keyspace.worker("w-1"), _console_heartbeat("w-1", now - 1_000))

    (entry,) = list_workers(r, keyspace=keyspace, now_ms=now)

    assert entry.key == keyspace.worker("w-1") and entry.age_ms == 1_000
    assert set(entry.keys) == {keyspace.worker("w-1"), keyspace.legacy_worker("w-1")}


# -- the command line ---------------------------------------------------------------------------------


MARKUP = "[bold red]x[/bold red]:lock:"


def _seed_fleet(r: redis.Redis, keyspace: KeySpace) -> int:
    now = server_ms(r)
    r.set(keyspace.legacy_worker("worker-a1b2c3"), node_consumer_heartbeat("worker-a1b2c3", ["emails"], now), ex=30)
    r.set(keyspace.worker(f"w{MARKUP}"), _console_heartbeat(f"w{MARKUP}", now), ex=30)
    r.set(keyspace.worker("garbage"), "{not json", ex=30)
    dead_worker(r, keyspace, "dead-1", {"emails": node_raws("d", 1)}, age_ms=600_000)
    r.set(keyspace.legacy_pulse("api", "web-1-4242"), node_agent_pulse("api", "web-1-4242", now), ex=30)
    r.set(keyspace.pulse("api", "web-1-4242"), node_agent_pulse("api", "web-1-4242", now - 5_000), ex=30)
    r.set(keyspace.pulse("batch", "old-1"), node_agent_pulse("batch", "old-1", now - 120_000), ex=30)
    r.set(keyspace.pulse("batch", f"n{MARKUP}"), "{not json", ex=30)
    return now


def test_cli_workers_json(redis_url: str, r: redis.Redis, keyspace: KeySpace) -> None:
    _seed_fleet(r, keyspace)

    base = ["workers", "--redis", redis_url, *prefix_options(keyspace), "--json"]
    result, hidden = zenith_all([base, [*base, "--hide-stale"]])

    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert sorted(rows) == sorted(["dead-1", "garbage", "worker-a1b2c3", f"w{MARKUP}"])
    dead = rows["dead-1"]
    assert (dead["stale"], dead["staleReason"], dead["queues"], dead["heartbeat"]) == (
        True,
        "heartbeat_expired",
        ["emails"],
        None,
    )
    node = rows["worker-a1b2c3"]
    assert (node["language"], node["status"], node["stale"], node["concurrency"]) == ("node", "online", False, None)
    assert node["heartbeat"]["last_ping"] and node["memory"]["rss"] == "80MB"
    assert rows["garbage"]["error"] and rows["garbage"]["raw"] == "{not json"
    assert hidden.returncode == 0, hidden.stderr
    assert sorted(row["id"] for row in json.loads(hidden.stdout)) == sorted(["garbage", "worker-a1b2c3", f"w{MARKUP}"])


def test_cli_workers_table_marks_stale_and_undecodable_and_prints_data_literally(
    redis_url: str, r: redis.Redis, keyspace: KeySpace
) -> None:
    _seed_fleet(r, keyspace)

    result = zenith("workers", "--redis", redis_url, *prefix_options(keyspace))

    assert result.returncode == 0 and result.stderr == "", result.stderr
    lines = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 2}
    assert "STALE: heartbeat expired" in lines["dead-1"]
    assert "undecodable" in lines["garbage"]
    assert "online" in lines["worker-a1b2c3"] and "web-2:77" in lines["worker-a1b2c3"]
    assert f"w{MARKUP}" in result.stdout
    assert "4 workers, 1 stale" in result.stdout and _same_columns(result.stdout)


def test_cli_nodes_groups_by_service_merges_forms_and_marks_stale(
    redis_url: str, r: redis.Redis, keyspace: KeySpace
) -> None:
    _seed_fleet(r, keyspace)

    base = ["nodes", "--redis", redis_url, *prefix_options(keyspace)]
    table, data, live = zenith_all([base, [*base, "--json"], [*base, "--json", "--hide-stale"]])

    for result in (table, data, live):
        assert result.returncode == 0 and result.stderr == "", result.stderr
    rows = {(row["service"], row["nodeId"]): row for row in json.loads(data.stdout)}
    assert sorted(rows) == sorted([("api", "web-1-4242"), ("batch", "old-1"), ("batch", f"n{MARKUP}")])
    merged = rows[("api", "web-1-4242")]
    assert merged["forms"] == ["pulse", "legacy"] and merged["key"] == keyspace.legacy_pulse("api", "web-1-4242")
    assert merged["node"]["cpu"] == {"system": 12, "process": 3.5, "cores": 8}
    assert rows[("batch", "old-1")]["stale"] is True and rows[("batch", f"n{MARKUP}")]["error"]
    assert sorted(row["nodeId"] for row in json.loads(live.stdout)) == sorted(["web-1-4242", f"n{MARKUP}"])
    assert "3 nodes in 2 services, 1 stale" in table.stdout
    assert "pulse+legacy" in table.stdout and "STALE" in table.stdout and f"n{MARKUP}" in table.stdout
    assert table.stdout.count("api") == 1  # the service is named once, on its group's first row
    assert _same_columns(table.stdout)


def test_cli_nodes_lists_each_process_of_a_supervised_worker_under_it(
    redis_url: str, r: redis.Redis, keyspace: KeySpace
) -> None:
    report = json.loads(node_agent_pulse("workers", "box-7-100", server_ms(r)))
    report["processes"] = [
        {"pid": 100, "role": "supervisor", "rss": 30 * 2**20, "cpu": 0.5},
        {"pid": 101, "role": "child", "slot": 0, "rss": 80 * 2**20, "cpu": 49.5},
        {"pid": 102, "role": "child", "slot": 1, "rss": 2**30},
    ]
    r.set(keyspace.pulse("workers", "box-7-100"), json.dumps(report), ex=30)

    result = zenith("nodes", "--redis", redis_url, *prefix_options(keyspace))

    assert result.returncode == 0 and result.stderr == "", result.stderr
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.stdout.splitlines() if "pid " in line]
    cells = [(row[1], row[2], row[4], row[6]) for row in rows]  # node, lang, cpu proc, rss
    assert cells == [
        ("pid 100", "supervisor", "0.5%", "30.0 MiB"),
        ("pid 101", "child 0", "49.5%", "80.0 MiB"),
        ("pid 102", "child 1", "", "1.0 GiB"),
    ], result.stdout
    assert "1 node in 1 service" in result.stdout and _same_columns(result.stdout)


def test_cli_workers_rejects_a_bad_ttl(redis_url: str) -> None:
    one_line(zenith("workers", "--redis", redis_url, "--ttl", "0"), 2, "--ttl must be a positive")


def test_a_client_that_decodes_replies_reads_the_same(redis_url: str, r: redis.Redis, keyspace: KeySpace) -> None:
    now = server_ms(r)
    r.set(keyspace.legacy_pulse("api", "n-1"), node_agent_pulse("api", "n-1", now))
    r.set(keyspace.pulse("api", "n-2"), "{not json")
    r.set(keyspace.worker("w-1"), _console_heartbeat("w-1", now))
    r.zadd(keyspace.worker_index(), {"w-2": now})
    r.hset(keyspace.worker_queues(), "w-2", json.dumps(["emails"]))
    text = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        for lister in (list_nodes, list_workers):
            as_text = [entry.to_dict() for entry in lister(text, keyspace=keyspace, now_ms=now)]
            assert len(as_text) == 2 and as_text == [
                entry.to_dict() for entry in lister(r, keyspace=keyspace, now_ms=now)
            ]
    finally:
        text.close()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.4, "0 s"), (59, "59 s"), (60, "1 min"), (3_599, "59 min"), (11_100, "3 h 05 min"), (200_000, "2 d 7 h")],
)
def test_durations_read_at_a_glance(seconds: float, text: str) -> None:
    assert _duration(seconds) == text
