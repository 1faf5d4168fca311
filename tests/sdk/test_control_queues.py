"""Queue discovery and counts against a real Redis."""

from __future__ import annotations

import json
import time

import pytest
import redis
from acl_users import READ_ONLY, restricted_client
from counting import CountingRedis
from wire_data import seed_wire_facts

from zenith_protocol import JobPayload, KeySpace, encode_job
from zenith_protocol.errors import NotFoundError
from zenith_sdk.cli import main
from zenith_sdk.control import discover_queues, queue_snapshots, queues
from zenith_sdk.producer import Producer

FILLER_KEYS = 200_000


def test_wire_facts_data_lists_one_queue_with_every_count(r: redis.Redis, keyspace: KeySpace) -> None:
    seed_wire_facts(r, keyspace, int(time.time() * 1000))
    r.lpush(keyspace.processing("emails", "w-1"), encode_job(JobPayload.create("x")))

    (emails,) = queue_snapshots(r, keyspace)

    assert emails.name == "emails"
    assert (emails.waiting, emails.delayed, emails.failed) == (6, 1, 1)
    assert emails.lanes == {"critical": 1, "high": 1, "low": 1}
    assert emails.active == 2  # the legacy active set's member and one in-flight job
    assert emails.paused is True


def test_structural_keys_are_never_queues(r: redis.Redis, keyspace: KeySpace) -> None:
    q = keyspace.queue_prefix
    for name in ("active", "schedules", "worker:w-1", "logs:history", "pending:g-1", "schedule:s", "lock:schedule:s:1"):
        r.set(f"{q}{name}", "x")
    r.set(f"{q}we{{ird", "x")
    r.lpush(keyspace.queue("real"), "j")

    assert list(discover_queues(r, keyspace)) == ["real"]


def test_queues_known_only_from_the_index_are_listed_empty(r: redis.Redis, keyspace: KeySpace) -> None:
    producer = Producer(r, keyspace=keyspace)
    producer.push("a", queue="drained")
    r.delete(keyspace.queue("drained"))

    (drained,) = queue_snapshots(r, keyspace)

    assert (drained.name, drained.waiting, drained.delayed, drained.failed, drained.active) == ("drained", 0, 0, 0, 0)


def test_an_unreadable_paused_flag_shows_the_queue_running(r: redis.Redis, keyspace: KeySpace) -> None:
    r.lpush(keyspace.queue("q"), "j")
    r.set(keyspace.paused("q"), "maybe")

    assert [s.paused for s in queue_snapshots(r, keyspace)] == [False]


def test_listing_stays_complete_with_200000_keys(isolated_db: redis.Redis) -> None:
    space = KeySpace()
    pipe = isolated_db.pipeline(transaction=False)
    for n in range(FILLER_KEYS):
        pipe.set(f"app:cache:{n}", "x")
        if n % 10_000 == 0:
            pipe.execute()
    for n in range(30):
        pipe.lpush(space.queue(f"q{n:02d}"), "j")
    pipe.execute()
    assert isolated_db.dbsize() >= FILLER_KEYS + 30

    names = [s.name for s in queue_snapshots(isolated_db, space)]

    assert names == [f"q{n:02d}" for n in range(30)]


def test_cli_queues_json_and_table(r: redis.Redis, keyspace: KeySpace, capsys: pytest.CaptureFixture[str]) -> None:
    r.lpush(keyspace.failed("billing"), encode_job(JobPayload.create("charge")))
    kwargs = r.connection_pool.connection_kwargs
    url = f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"
    options = ["--redis", url, "--queue-prefix", keyspace.queue_prefix, "--zenith-prefix", keyspace.zenith_prefix]

    assert main(["queues", "--json", *options]) == 0
    (billing,) = json.loads(capsys.readouterr().out)
    assert (billing["name"], billing["failed"], billing["paused"]) == ("billing", 1, False)

    assert main(["queues", *options]) == 0
    assert "billing" in capsys.readouterr().out


@pytest.mark.parametrize("cluster_safe", [False, True])
def test_counts_are_the_same_in_both_layouts_and_after_a_script_flush(
    r: redis.Redis, keyspace: KeySpace, cluster_safe: bool
) -> None:
    space = keyspace.model_copy(update={"cluster_safe": cluster_safe})
    seed_wire_facts(r, space, int(time.time() * 1000))
    r.script_flush()

    (emails,) = queue_snapshots(r, space)

    assert (emails.waiting, emails.delayed, emails.failed, emails.active, emails.paused) == (6, 1, 1, 1, True)


def test_a_key_of_an_unexpected_type_is_not_counted(
    r: redis.Redis, keyspace: KeySpace, caplog: pytest.LogCaptureFixture
) -> None:
    r.lpush(keyspace.queue("q"), "j", "k")
    r.set(keyspace.failed("q"), "not a list")
    r.rpush(keyspace.paused("q"), "1")

    with caplog.at_level("WARNING", logger="zenith_sdk.control.queues"):
        (q,) = queue_snapshots(r, keyspace)

    assert (q.waiting, q.failed, q.paused) == (2, 0, False)
    assert "unexpected type" in caplog.text and "not a string" in caplog.text


@pytest.mark.parametrize("cluster_safe", [False, True])
def test_counts_spanning_many_script_calls_add_up(
    r: redis.Redis, keyspace: KeySpace, cluster_safe: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queues, "COUNT_BATCH", 3)
    space = keyspace.model_copy(update={"cluster_safe": cluster_safe})
    for n in range(5):
        name = f"q{n}"
        r.lpush(space.queue(name), *["j"] * (n + 1))
        r.lpush(space.lane(name, "high"), "h")
        if n:
            r.lpush(space.failed(name), *["f"] * n)
            r.zadd(space.delayed(name), {f"d{i}": i for i in range(2 * n)})

    snapshots = queue_snapshots(r, space)

    assert [(s.name, s.waiting, s.failed, s.delayed, s.lanes) for s in snapshots] == [
        (f"q{n}", n + 2, n, 2 * n, {"high": 1}) for n in range(5)
    ]


def test_a_user_that_may_not_run_scripts_still_gets_every_count(r: redis.Redis, keyspace: KeySpace) -> None:
    seed_wire_facts(r, keyspace, int(time.time() * 1000))
    r.set(keyspace.failed("other"), "not a list")
    with restricted_client(r, READ_ONLY) as reader:
        emails, other = queue_snapshots(reader, keyspace)

    assert (emails.waiting, emails.delayed, emails.failed, emails.active, emails.paused) == (6, 1, 1, 1, True)
    assert (other.name, other.failed) == ("other", 0)


def test_every_count_is_read_in_one_round_trip(counting: CountingRedis, keyspace: KeySpace) -> None:
    for n in range(30):
        counting.lpush(keyspace.queue(f"q{n}"), "j")
        counting.lpush(keyspace.failed(f"q{n}"), "f")
    queue_snapshots(counting, keyspace)  # the count script is loaded from here on
    counting.round_trips.clear()

    snapshots = queue_snapshots(counting, keyspace)

    counts = [trip for trip in counting.round_trips if trip[0][0] not in ("SCAN", "SMEMBERS")]
    assert [len(s.name) > 0 and s.waiting == s.failed == 1 for s in snapshots] == [True] * 30
    assert len(counts) == 1 and {str(args[0]).upper() for args in counts[0]} == {"EVALSHA_RO"}


def test_a_queue_whose_jobs_are_all_running_exists(r: redis.Redis, keyspace: KeySpace) -> None:
    # What a Node producer leaves once a worker fetched its jobs: no index entry, no waiting list.
    r.lpush(keyspace.processing("running-only", "w1"), encode_job(JobPayload.create("step", {})))

    queues.require_queue(r, "running-only", keyspace=keyspace)
    with pytest.raises(NotFoundError, match="'running-nowhere' not found"):
        queues.require_queue(r, "running-nowhere", keyspace=keyspace)
