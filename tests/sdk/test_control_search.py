"""Live search against a real Redis: every job of every state of every queue, matched inside Redis."""

from __future__ import annotations

import json

import pytest
import redis
from counting import CountingRedis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_data import dead_letter_job, node_job

from zenith_protocol import ConfigError, KeySpace, NotFoundError, QuerySyntaxError, UnsupportedQueryError
from zenith_sdk.cli import main
from zenith_sdk.control import JobEntry, JobFilter, JobState, search
from zenith_sdk.scripts import MATCH, scripts_for

NOW = 1_767_225_600_000


def _job(job_id: str, name: str, **properties: object) -> str:
    raw: str = node_job(job_id, name, properties, created_at=NOW)
    return raw


def _seed(r: redis.Redis, space: KeySpace) -> None:
    """Two queues with jobs in every lane and state (lists are pushed at the head: the last push is newest)."""
    r.lpush(space.queue("mail"), _job("w-base", "SendEmail", email="ann@example.com"))
    r.lpush(space.lane("mail", "critical"), _job("w-crit", "PageOnCall", team="ops"))
    r.lpush(space.lane("mail", "high"), _job("w-high", "ResizeImage", path="/img/cat.png"))
    r.lpush(space.lane("mail", "low"), _job("w-low", "Cleanup", days=30))
    r.zadd(space.delayed("mail"), {_job("d-later", "SendReminder", user="u-77"): NOW + 60_000})
    r.lpush(space.failed("mail"), dead_letter_job("f-invoice", failed_at=NOW))
    r.lpush(space.queue("billing"), _job("b-charge", "ChargeCard", email="ann@example.com"))
    r.sadd(space.queue_index(), "mail", "billing")


def _found(entries: list[JobEntry]) -> list[tuple[str, str, str | None]]:
    return [(e.queue, e.state.value, e.job.id if e.job else None) for e in entries]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("w-high", [("mail", "waiting", "w-high")]),
        ("ResizeImage", [("mail", "waiting", "w-high")]),
        ("cat.png", [("mail", "waiting", "w-high")]),
        ("u-77", [("mail", "delayed", "d-later")]),
        ("SMTP timeout", [("mail", "failed", "f-invoice")]),
        ("SendInvoice", [("mail", "failed", "f-invoice")]),
        ("email:ann@example.com", [("billing", "waiting", "b-charge"), ("mail", "waiting", "w-base")]),
        ("team:ops", [("mail", "waiting", "w-crit")]),
        ("days:30", [("mail", "waiting", "w-low")]),
        ("nothing-like-this", []),
    ],
)
def test_finds_by_id_name_payload_and_property_in_every_state_of_every_queue(
    r: redis.Redis, keyspace: KeySpace, query: str, expected: list[tuple[str, str, str]]
) -> None:
    _seed(r, keyspace)

    assert _found(list(search(r, query, keyspace=keyspace))) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("name:SendEmail", [("mail", "waiting", "w-base")]),
        ("name:sendemail", []),
        ("error:SMTP", [("mail", "failed", "f-invoice")]),
        ("id:w-low", [("mail", "waiting", "w-low")]),
        ("queue:billing", [("billing", "waiting", "b-charge")]),
        ("queue:billing OR id:w-crit", [("billing", "waiting", "b-charge"), ("mail", "waiting", "w-crit")]),
        ("-queue:mail", [("billing", "waiting", "b-charge")]),
        ("state:delayed", [("mail", "delayed", "d-later")]),
        (
            "state:failed OR state:delayed",
            [("mail", "delayed", "d-later"), ("mail", "failed", "old"), ("mail", "failed", "f-invoice")],
        ),
        ("email:ann@example.com -queue:billing", [("mail", "waiting", "w-base")]),
        ('"SMTP timeout"', [("mail", "failed", "f-invoice")]),
        ('"timeout SMTP"', []),
        ("timeout SMTP", [("mail", "failed", "f-invoice")]),
        ("team:ops OR days:30", [("mail", "waiting", "w-crit"), ("mail", "waiting", "w-low")]),
        ("queue:mail -state:waiting -state:delayed", [("mail", "failed", "old"), ("mail", "failed", "f-invoice")]),
        (
            "queue:mail -name:Cleanup -error:SMTP state:waiting -team:ops",
            [("mail", "waiting", "w-high"), ("mail", "waiting", "w-base")],
        ),
        ("meta.owner:ann", [("mail", "failed", "old")]),
        ("meta.owner:bob", []),
        ("before:2025-12-31T23:00:00Z", [("mail", "failed", "old")]),
        ("after:2025-12-31T23:00:00Z queue:mail state:failed", [("mail", "failed", "f-invoice")]),
        ("-after:2025-12-31T23:00:00Z", [("mail", "failed", "old")]),
    ],
)
def test_every_construct_of_the_query_language_works_live(
    r: redis.Redis, keyspace: KeySpace, query: str, expected: list[tuple[str, str, str]]
) -> None:
    _seed(r, keyspace)
    r.rpush(keyspace.failed("mail"), node_job("old", "Old", {"meta": {"owner": "ann"}}, created_at=NOW - 2 * 3_600_000))

    assert _found(list(search(r, query, keyspace=keyspace))) == expected


@pytest.mark.parametrize(
    ("query", "error", "words"),
    [
        ('name:"open', QuerySyntaxError, "unbalanced quote"),
        ("a OR", QuerySyntaxError, "OR needs a term"),
        ("state:completed", UnsupportedQueryError, "archive"),
        ("-state:dead", UnsupportedQueryError, "live search sees the states"),
        ("   ", ValueError, "empty"),
    ],
)
def test_a_query_live_search_cannot_run_raises_at_the_call(
    r: redis.Redis, keyspace: KeySpace, query: str, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        search(r, query, keyspace=keyspace)


def test_a_bulk_filter_refuses_queue_and_state_naming_them() -> None:
    with pytest.raises(UnsupportedQueryError) as caught:
        JobFilter.from_query("invoice -state:failed")

    assert caught.value.construct == "-state:failed"


def test_waiting_covers_every_lane_in_poll_order_then_delayed_then_failed(r: redis.Redis, keyspace: KeySpace) -> None:
    _seed(r, keyspace)

    found = _found(list(search(r, '"attempts"', keyspace=keyspace, queues=["mail"])))

    ids = ["w-crit", "w-high", "w-base", "w-low", "d-later", "f-invoice"]
    states = ["waiting"] * 4 + ["delayed", "failed"]
    assert found == [("mail", state, job_id) for state, job_id in zip(states, ids, strict=True)]


def test_states_and_queues_narrow_the_search(r: redis.Redis, keyspace: KeySpace) -> None:
    _seed(r, keyspace)

    failed_only = search(r, '"attempts"', keyspace=keyspace, states=[JobState.FAILED])
    billing_only = search(r, "email:ann@example.com", keyspace=keyspace, queues=["billing"])

    assert _found(list(failed_only)) == [("mail", "failed", "f-invoice")]
    assert _found(list(billing_only)) == [("billing", "waiting", "b-charge")]


def test_finds_a_match_halfway_down_a_list_of_ten_thousand(r: redis.Redis, keyspace: KeySpace) -> None:
    jobs = [_job(f"bulk-{n}", "Noise", n=n) for n in range(10_000)]
    jobs[5000] = _job("deep-one", "Needle", marker="halfway-down")
    pipe = r.pipeline(transaction=False)
    for start in range(0, len(jobs), 1000):
        pipe.lpush(keyspace.queue("big"), *jobs[start : start + 1000])
    pipe.execute()
    # The old console read jobs 0..99 of each list only; this job is far beyond them.
    assert not any(b"halfway-down" in raw for raw in r.lrange(keyspace.queue("big"), 0, 99))

    by_text = list(search(r, "halfway-down", keyspace=keyspace))
    by_field = list(search(r, "marker:halfway-down", keyspace=keyspace, queues=["big"]))

    assert _found(by_text) == _found(by_field) == [("big", "waiting", "deep-one")]


def _fill(r: redis.Redis, space: KeySpace, count: int, *, every: int) -> None:
    """``count`` failed jobs in queue ``q``, oldest first; every ``every``-th one carries ``hit``."""
    raws = [_job(f"j-{n}", "Task", tag="hit" if n % every == 0 else "miss") for n in range(count)]
    r.lpush(space.failed("q"), *raws)


def _script_calls(client: CountingRedis) -> int:
    return sum(1 for trip in client.round_trips for args in trip if str(args[0]).upper() == "EVALSHA_RO")


@pytest.mark.parametrize(("every", "limit", "calls"), [(1, 5, 1), (10, 3, 3), (10, 1, 1)])
def test_stops_at_the_limit_without_another_redis_call(
    counting: CountingRedis, keyspace: KeySpace, every: int, limit: int, calls: int
) -> None:
    _fill(counting, keyspace, 200, every=every)
    scripts_for(counting).load(MATCH)
    counting.round_trips.clear()

    found = search(
        counting, "tag:hit", keyspace=keyspace, queues=["q"], states=[JobState.FAILED], limit=limit, chunk=10
    )
    taken = [next(found) for _ in range(limit)]
    trips_at_limit = len(counting.round_trips)

    assert [e.job.id for e in taken if e.job] == [f"j-{n * every}" for n in range(limit)]
    assert _script_calls(counting) == calls
    assert list(found) == []
    assert len(counting.round_trips) == trips_at_limit


def test_a_full_read_walks_every_chunk_to_the_end(counting: CountingRedis, keyspace: KeySpace) -> None:
    _fill(counting, keyspace, 95, every=10)
    scripts_for(counting).load(MATCH)
    counting.round_trips.clear()

    found = list(search(counting, "tag:hit", keyspace=keyspace, states=[JobState.FAILED], limit=100, chunk=10))

    assert [e.job.id for e in found if e.job] == [f"j-{n}" for n in range(0, 95, 10)]
    assert _script_calls(counting) == 10


def test_an_unknown_queue_raises_not_found_when_search_is_called(r: redis.Redis, keyspace: KeySpace) -> None:
    _seed(r, keyspace)

    with pytest.raises(NotFoundError) as caught:
        search(r, "anything", keyspace=keyspace, queues=["mail", "nope"])
    with pytest.raises(ConfigError):
        search(r, "anything", keyspace=keyspace, queues=["bad:name"])

    assert caught.value.name == "nope"


def test_no_queues_at_all_yields_nothing(r: redis.Redis, keyspace: KeySpace) -> None:
    assert list(search(r, "anything", keyspace=keyspace)) == []


@pytest.mark.parametrize(("query", "limit", "chunk"), [("", 20, 500), ("x", 0, 500), ("x", 20, 0)])
def test_bad_arguments_raise_value_error(
    r: redis.Redis, keyspace: KeySpace, query: str, limit: int, chunk: int
) -> None:
    with pytest.raises(ValueError):
        search(r, query, keyspace=keyspace, limit=limit, chunk=chunk)


def test_malformed_entries_never_raise_and_surface_only_when_their_text_matches(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    no_type = json.dumps({"id": "bad-1", "data": json.dumps({"job": "X", "properties": {"color": "teal"}}), "n": "pin"})
    bad_data = json.dumps({"id": "bad-2", "type": "json", "data": "not json pin"})
    garbage = [b"not json pin", b"[1,2,'pin']", b'"pin"', b"\xff\xfe pin", b"{", b""]
    r.lpush(keyspace.failed("q"), *garbage, no_type, bad_data, _job("good", "Task", color="teal", note="pin"))

    by_text = list(search(r, "pin", keyspace=keyspace))
    by_field = list(search(r, "color:teal", keyspace=keyspace))

    assert [(e.job.id if e.job else json.loads(e.raw)["id"]) for e in by_text] == ["bad-1", "bad-2", "good"]
    assert [e.problem is not None for e in by_text] == [True, True, False]
    assert [(e.job.id if e.job else json.loads(e.raw)["id"]) for e in by_field] == ["bad-1", "good"]


def test_a_dropped_undecodable_match_does_not_hide_the_next_match_of_its_chunk(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    # The property matches in Redis, but the entry does not decode and its raw text lacks the
    # value (it is escaped twice), so it is dropped; the script is asked again for the next match.
    quoted = 'say "hi"'
    undecodable = json.dumps({"id": "bad", "data": json.dumps({"job": "X", "properties": {"q": quoted}})})
    assert quoted not in undecodable
    r.lpush(keyspace.failed("q"), undecodable, _job("good-1", "Task", q=quoted), _job("good-2", "Task", q=quoted))

    found = list(search(r, 'q:"say \\"hi\\""', keyspace=keyspace, limit=1))

    assert _found(found) == [("q", "failed", "good-1")]


def _cli(keyspace: KeySpace, redis_url: str, *args: str) -> list[str]:
    prefixes = ["--queue-prefix", keyspace.queue_prefix, "--zenith-prefix", keyspace.zenith_prefix]
    return ["search", *args, "--redis", redis_url, *prefixes]


def test_cli_json_lists_the_matches(
    r: redis.Redis, keyspace: KeySpace, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(r, keyspace)

    assert main(_cli(keyspace, redis_url, "email:ann@example.com", "--json")) == 0
    rows = json.loads(capsys.readouterr().out)

    assert [(row["queue"], row["state"], row["id"], row["name"]) for row in rows] == [
        ("billing", "waiting", "b-charge", "ChargeCard"),
        ("mail", "waiting", "w-base", "SendEmail"),
    ]
    assert rows[0]["attempts"] == 0 and rows[0]["error"] is None


def test_cli_json_honours_queue_state_and_limit(
    r: redis.Redis, keyspace: KeySpace, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(r, keyspace)
    query = '"attempts"'

    assert main(_cli(keyspace, redis_url, query, "--queue", "mail", "--state", "failed", "--json")) == 0
    failed = json.loads(capsys.readouterr().out)
    narrowed = ("--state", "waiting", "--state", "delayed", "--limit", "2", "--json")
    assert main(_cli(keyspace, redis_url, query, *narrowed)) == 0
    first_two = json.loads(capsys.readouterr().out)

    assert [(row["id"], row["error"]) for row in failed] == [("f-invoice", "SMTP timeout: connection refused")]
    assert [(row["queue"], row["id"]) for row in first_two] == [("billing", "b-charge"), ("mail", "w-crit")]


def test_cli_table_shows_queue_state_id_name_attempts_and_error(
    r: redis.Redis, keyspace: KeySpace, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(r, keyspace)
    r.lpush(keyspace.failed("mail"), json.dumps({"id": "broken", "note": "[bold]SMTP timeout[/bold]"}))

    assert main(_cli(keyspace, redis_url, "SMTP timeout")) == 0
    out = capsys.readouterr().out

    for text in ("queue", "state", "attempts", "error", "mail", "failed", "f-invoice", "SendInvoice", "(undecodable)"):
        assert text in out
    assert "SMTP timeout: connection refused" in out


def test_cli_rejects_an_unknown_queue_and_a_bad_limit(
    r: redis.Redis, keyspace: KeySpace, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(r, keyspace)

    assert main(_cli(keyspace, redis_url, "x", "--queue", "nope")) == 2
    assert "nope" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(_cli(keyspace, redis_url, "x", "--limit", "0"))
    assert exited.value.code == 2


def test_cli_reports_a_query_syntax_error_in_one_line(
    r: redis.Redis, keyspace: KeySpace, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(r, keyspace)

    assert main(_cli(keyspace, redis_url, 'name:"open')) == 2
    err = capsys.readouterr().err

    assert "query syntax error at character 6: unbalanced quote" in err
    assert len(err.strip().splitlines()) == 1


_MARKS = ['"', "\\", "-", ":", " ", "OR", "a", "name:", "state:", "queue:", "id:", "after:", "2h", "%", "ü", "\x00"]


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=30) | st.lists(st.sampled_from(_MARKS) | st.text(max_size=3), max_size=10).map("".join))
def test_any_query_text_gets_matches_or_a_query_error(r: redis.Redis, keyspace: KeySpace, query: str) -> None:
    _seed(r, keyspace)
    try:
        found = list(search(r, query, keyspace=keyspace, limit=50))
    except (QuerySyntaxError, UnsupportedQueryError):
        return
    except ValueError as exc:
        assert "empty" in str(exc)
        return
    assert all(entry.queue in ("mail", "billing") for entry in found)
