"""The job commands of the ``zenith`` CLI against a real Redis: listing, bulk retry/delete, switches, push."""

from __future__ import annotations

import io
import json

import pytest
import redis
from event_stream import stream_events
from wire_data import node_job

from zenith_protocol import EventType, KeySpace, OperatorAction
from zenith_sdk.cli import main
from zenith_sdk.control import JobState, list_jobs

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z
ACTOR = ["--actor", "ann"]


class _Terminal(io.StringIO):
    """Standard input as typed at a terminal: ``input()`` reads its lines."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def opts(r: redis.Redis, keyspace: KeySpace) -> list[str]:
    """The Redis and prefix options that point the CLI at this test's key space."""
    kwargs = r.connection_pool.connection_kwargs
    url = f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"
    prefixes = ("--queue-prefix", keyspace.queue_prefix, "--console-prefix", keyspace.console_prefix)
    return ["--redis", url, *prefixes, "--zenith-prefix", keyspace.zenith_prefix]


def _failed(job_id: str, name: str, error: str, failed_at: int, **properties: object) -> str:
    return node_job(job_id, name, properties, created_at=failed_at - 1000, attempts=3, error=error, failedAt=failed_at)


def _seed(r: redis.Redis, space: KeySpace) -> None:
    r.lpush(space.queue("q"), *(node_job(f"w-{n}", "work", {"n": n}, created_at=NOW + n) for n in range(3)))
    r.zadd(space.delayed("q"), {node_job("d-0", "later", {}, created_at=NOW): NOW + 60_000})
    r.lpush(
        space.failed("q"),
        _failed("f-0", "mail", "SMTP timeout", NOW, email="a@x.io"),
        _failed("f-1", "mail", "SMTP timeout", NOW + 3_600_000, email="b@x.io"),
        _failed("f-2", "charge", "card [declined]", NOW + 7_200_000, email="a@x.io"),
        "{broken",
    )


def _ids(r: redis.Redis, space: KeySpace, state: JobState) -> list[str]:
    return sorted(e.job.id for e in list_jobs(r, "q", state, keyspace=space, limit=100) if e.job)


def _operator_events(r: redis.Redis, space: KeySpace) -> list[tuple[object, object, object]]:
    return [(e.action, e.count, e.actor) for e in stream_events(r, space) if e.type == EventType.OPERATOR]


def test_jobs_table_and_json(
    r: redis.Redis, keyspace: KeySpace, opts: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(r, keyspace)

    assert main(["jobs", "q", "--state", "failed", *opts]) == 0
    out = capsys.readouterr().out
    assert "f-2" in out and "card [declined]" in out and "3/3" in out and "2026-01-01 01:59:59 UTC" in out
    assert "invalid" in out and "{broken" in out

    assert main(["jobs", "q", "--state", "delayed", *opts]) == 0
    assert "d-0" in (out := capsys.readouterr().out) and "due" in out and "2026-01-01 00:01:00 UTC" in out

    assert main(["jobs", "q", "--limit", "2", "--oldest-first", "--json", *opts]) == 0
    page = json.loads(capsys.readouterr().out)
    assert [(e["job"]["id"], e["name"], e["properties"], e["state"]) for e in page] == [
        ("w-0", "work", {"n": 0}, "waiting"),
        ("w-1", "work", {"n": 1}, "waiting"),
    ]
    assert main(["jobs", "q", "--state", "failed", "--offset", "3", "--json", *opts]) == 0
    (third,) = json.loads(capsys.readouterr().out)
    assert third["job"]["id"] == "f-0" and third["job"]["error"] == "SMTP timeout"


def test_job_shows_its_state_and_every_field(
    r: redis.Redis, keyspace: KeySpace, opts: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(r, keyspace)

    assert main(["job", "q", "f-2", *opts]) == 0
    out = capsys.readouterr().out
    for text in ("failed", "charge", "card [declined]", "failedAt", "maxAttempts", "a@x.io"):
        assert text in out

    assert main(["job", "q", "d-0", "--json", *opts]) == 0
    job = json.loads(capsys.readouterr().out)
    assert (job["state"], job["dueAt"], job["job"]["id"], job["valid"]) == ("delayed", NOW + 60_000, "d-0", True)

    assert main(["job", "q", "nope", *opts]) == 2
    assert "job 'nope' not found" in capsys.readouterr().err


def test_unknown_queue_exits_2_with_the_message(
    keyspace: KeySpace, opts: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ["jobs", "ghost"],
        ["retry", "ghost", "--all", "--yes", *ACTOR],
        ["pause", "ghost"],
        ["purge", "ghost"],
    ):
        assert main([*argv, *opts]) == 2
        assert "queue 'ghost' not found" in capsys.readouterr().err


def test_retry_by_ids_with_yes(
    r: redis.Redis, keyspace: KeySpace, opts: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(r, keyspace)

    assert main(["retry", "q", "f-0", "f-2", "--yes", *opts, *ACTOR]) == 0
    assert "retried 2 of 2" in capsys.readouterr().out
    assert _ids(r, keyspace, JobState.FAILED) == ["f-1"]
    assert _ids(r, keyspace, JobState.WAITING) == ["f-0", "f-2", "w-0", "w-1", "w-2"]
    assert main(["delete", "q", "w-1", "--state", "waiting", "--yes", *opts, "--actor", "bob"]) == 0
    assert _operator_events(r, keyspace) == [(OperatorAction.RETRY, 2, "ann"), (OperatorAction.DELETE, 1, "bob")]
    # Each job's history says who retried or deleted it.
    assert [(e.type, e.job_id, e.actor) for e in stream_events(r, keyspace) if e.type != EventType.OPERATOR] == [
        (EventType.RETRIED, "f-0", "ann"),
        (EventType.RETRIED, "f-2", "ann"),
        (EventType.DELETED, "w-1", "bob"),
    ]


def test_retry_by_filter_with_yes_json(
    r: redis.Redis, keyspace: KeySpace, opts: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(r, keyspace)
    window = ["--from", "2026-01-01T00:30:00Z", "--to", "2026-01-01T03:00:00"]

    assert main(["retry", "q", "--match", "email:a@x.io", *window, "--yes", "--json", *opts, *ACTOR]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["action"], report["dryRun"], report["matched"], report["moved"]) == ("retry", False, 1, 1)
    assert _ids(r, keyspace, JobState.FAILED) == ["f-0", "f-1"]

    assert main(["retry", "q", "--name", "mail", "--error", "SMTP", "--yes", *opts, *ACTOR]) == 0
    assert "retried 2 of 2" in capsys.readouterr().out
    assert _ids(r, keyspace, JobState.FAILED) == []
    assert _operator_events(r, keyspace) == [(OperatorAction.RETRY, 1, "ann"), (OperatorAction.RETRY, 2, "ann")]


def test_delete_by_a_query_with_or_and_negation(
    r: redis.Redis, keyspace: KeySpace, opts: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(r, keyspace)
    query = "email:a@x.io OR error:SMTP -name:charge -id:f-1"

    assert main(["delete", "q", "--query", query, "--yes", "--json", *opts, *ACTOR]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["matched"], report["moved"]) == (1, 1)
    assert _ids(r, keyspace, JobState.FAILED) == ["f-1", "f-2"]
    assert main(["delete", "q", "--query", "state:failed", "--yes", *opts, *ACTOR]) == 2
    assert "cannot evaluate 'state:failed' here" in capsys.readouterr().err


def test_dry_run_counts_and_changes_nothing(
    r: redis.Redis, keyspace: KeySpace, opts: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(r, keyspace)
    before = r.lrange(keyspace.failed("q"), 0, -1)

    assert main(["delete", "q", "--error", "SMTP", "--dry-run", *opts, *ACTOR]) == 0
    out = capsys.readouterr().out
    assert "dry run: 2 failed jobs" in out and "f-0" in out and "f-1" in out
    assert main(["retry", "q", "--all", "--dry-run", "--json", *opts, *ACTOR]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["dryRun"], report["matched"], report["moved"], report["lookedAt"]) == (True, 3, 0, 4)
    assert sorted(e["job"]["id"] for e in report["sample"]) == ["f-0", "f-1", "f-2"]
    assert r.lrange(keyspace.failed("q"), 0, -1) == before
    assert _operator_events(r, keyspace) == []


def test_neither_ids_nor_filter_is_a_usage_error(
    r: redis.Redis, keyspace: KeySpace, opts: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(r, keyspace)
    assert main(["delete", "q", "--yes", *opts, *ACTOR]) == 2
    assert "--all" in capsys.readouterr().err
    assert main(["retry", "q", "--from", "yesterday", "--yes", *opts, *ACTOR]) == 2
    assert "ISO-8601" in capsys.readouterr().err
    assert len(r.lrange(keyspace.failed("q"), 0, -1)) == 4


def test_confirmation_yes_declined_and_non_interactive(
    r: redis.Redis,
    keyspace: KeySpace,
    opts: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed(r, keyspace)

    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # piped: never taken as an answer
    assert main(["delete", "q", "--all", *opts, *ACTOR]) == 1
    assert "pass --yes" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    assert main(["delete", "q", "--all", *opts, *ACTOR]) == 1
    assert "Delete 3 failed jobs" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", _Terminal(""))  # Ctrl-D
    assert main(["delete", "q", "--all", *opts, *ACTOR]) == 1
    assert len(r.lrange(keyspace.failed("q"), 0, -1)) == 4

    monkeypatch.setattr("sys.stdin", _Terminal("yes\n"))
    assert main(["delete", "q", "w-1", "--state", "waiting", *opts, *ACTOR]) == 0
    assert "deleted 1 of 1" in capsys.readouterr().out
    assert _ids(r, keyspace, JobState.WAITING) == ["w-0", "w-2"]
    assert _operator_events(r, keyspace) == [(OperatorAction.DELETE, 1, "ann")]


def test_pause_resume_and_clear_failed(
    r: redis.Redis,
    keyspace: KeySpace,
    opts: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed(r, keyspace)

    assert main(["pause", "q", *opts, *ACTOR]) == 0
    assert "paused" in capsys.readouterr().out and r.exists(keyspace.paused("q"))
    assert main(["resume", "q", "--json", *opts, *ACTOR]) == 0
    assert json.loads(capsys.readouterr().out) == {"queue": "q", "paused": False}
    assert not r.exists(keyspace.paused("q"))

    monkeypatch.setattr("builtins.input", lambda question: "n")
    monkeypatch.setattr("sys.stdin", _Terminal())
    assert main(["clear-failed", "q", *opts, *ACTOR]) == 1
    assert r.llen(keyspace.failed("q")) == 4
    assert main(["clear-failed", "q", "--yes", "--json", *opts, *ACTOR]) == 0
    assert json.loads(capsys.readouterr().out) == {"queue": "q", "cleared": 4}
    assert _operator_events(r, keyspace) == [
        (OperatorAction.PAUSE, 0, "ann"),
        (OperatorAction.RESUME, 0, "ann"),
        (OperatorAction.CLEAR_FAILED, 4, "ann"),
    ]


def test_purge_asks_for_the_queue_name(
    r: redis.Redis,
    keyspace: KeySpace,
    opts: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed(r, keyspace)
    questions: list[str] = []
    answers = iter(["yes", "q"])

    def answer(question: str) -> str:
        questions.append(question)
        return next(answers)

    monkeypatch.setattr("builtins.input", answer)
    monkeypatch.setattr("sys.stdin", _Terminal())
    assert main(["purge", "q", *opts, *ACTOR]) == 1
    assert "not purged" in capsys.readouterr().err and r.llen(keyspace.failed("q")) == 4
    assert main(["purge", "q", *opts, *ACTOR]) == 0
    assert "purged" in capsys.readouterr().out
    assert "Type the queue name" in questions[0]
    assert not r.exists(keyspace.queue("q"), keyspace.delayed("q"), keyspace.failed("q"))
    assert _operator_events(r, keyspace)[-1][0::2] == (OperatorAction.PURGE, "ann")


def test_push_then_jobs_shows_it(
    r: redis.Redis, keyspace: KeySpace, opts: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data", '{"email": "a@x.io"}', "--group", "g1", "--max-attempts", "5"]
    assert main(["push", "mail", "welcome", *data, "--json", *opts, *ACTOR]) == 0
    job_id = json.loads(capsys.readouterr().out)["id"]
    assert main(["push", "mail", "later", "--delay", "60", *opts, *ACTOR]) == 0
    later_id = capsys.readouterr().out.strip()

    assert main(["jobs", "mail", *opts]) == 0
    out = capsys.readouterr().out
    assert job_id in out and "welcome" in out and "0/5" in out
    assert main(["job", "mail", job_id, "--json", *opts]) == 0
    job = json.loads(capsys.readouterr().out)
    assert (job["properties"], job["job"]["groupId"], job["job"]["maxAttempts"]) == ({"email": "a@x.io"}, "g1", 5)
    assert main(["jobs", "mail", "--state", "delayed", "--json", *opts]) == 0
    assert [e["job"]["id"] for e in json.loads(capsys.readouterr().out)] == [later_id]
    assert [e.job_id for e in stream_events(r, keyspace) if e.type == EventType.ENQUEUED] == [job_id, later_id]


@pytest.mark.parametrize(("data", "message"), [("{nope", "not JSON"), ("[1]", "JSON object")])
def test_push_with_bad_data_exits_2(
    r: redis.Redis, keyspace: KeySpace, opts: list[str], capsys: pytest.CaptureFixture[str], data: str, message: str
) -> None:
    assert main(["push", "mail", "welcome", "--data", data, *opts, *ACTOR]) == 2
    assert message in capsys.readouterr().err
    assert not r.exists(keyspace.queue("mail"))
