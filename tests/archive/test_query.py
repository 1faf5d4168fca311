"""The query language on the archive: every construct, paging, counts, timelines and export, on all three dialects."""

from __future__ import annotations

import csv
import io
import json

import pytest
import redis
from sqlalchemy.engine import Engine

from archive.archived import HOUR_MS, NOW, add_event, add_job
from archive.helpers import archive, emit, stream_ids
from zenith_archive._compile import Dialect, sqlite_text_driver
from zenith_archive.query import COUNT_CAP, Count, count, export, jobs, search, timeline
from zenith_protocol import (
    ConfigError,
    EventType,
    JobPayload,
    KeySpace,
    NotFoundError,
    QuerySyntaxError,
    UnsupportedQueryError,
)
from zenith_protocol.query import parse
from zenith_sdk.events import job_event


def _seed(engine: Engine) -> None:
    with engine.begin() as connection:
        add_job(
            connection, "j-smtp", name="SendEmail", state="dead", updated_at=NOW - 3 * HOUR_MS,
            error="SMTP timeout: connection refused", properties={"email": "Ann@Example.com", "tries": 3},
        )  # fmt: skip
        add_job(
            connection, "j-card", queue="billing", name="ChargeCard", state="dead", updated_at=NOW - 30 * HOUR_MS,
            error="card declined by issuer", properties={"customer": {"tier": "gold"}, "amount": 12.5},
        )  # fmt: skip
        add_job(
            connection, "j-report", queue="reports", name="BuildReport", state="completed", updated_at=NOW - 60_000,
            properties={"email": "bob@example.com", "format": "pdf"},
        )  # fmt: skip
        add_job(
            connection, "j-anon", name=None, state="waiting", updated_at=None,
            properties={"note": "timeout -> retry later"},
        )  # fmt: skip


def _ids(engine: Engine, query: str) -> set[str]:
    return {job.job_id for job in search(engine, query, now_ms=NOW, limit=100).rows}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("queue:billing", {"j-card"}),
        ("state:dead", {"j-smtp", "j-card"}),
        ("state:failed", {"j-smtp", "j-card"}),
        ("name:BuildReport", {"j-report"}),
        ("name:buildreport", set()),
        ("error:declined", {"j-card"}),
        ("error:SMTP", {"j-smtp"}),
        ("id:j-anon", {"j-anon"}),
        ("email:ann@example.com", {"j-smtp"}),
        ("email:ANN@EXAMPLE.COM", {"j-smtp"}),
        ("tries:3", {"j-smtp"}),
        ("amount:12.5", {"j-card"}),
        ("customer.tier:gold", {"j-card"}),
        ("customer.tier:silver", set()),
        ("format:pdf email:bob@example.com", {"j-report"}),
        ("after:2h", {"j-report"}),
        ("before:2h", {"j-smtp", "j-card"}),
        ("after:1d before:2h", {"j-smtp"}),
        ("after:2025-12-31T20:00:00Z", {"j-smtp", "j-report"}),
        ("before:2025-12-31", {"j-card"}),
    ],
)
def test_each_qualifier_selects_what_it_names(engine: Engine, query: str, expected: set[str]) -> None:
    _seed(engine)

    assert _ids(engine, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("timeout", {"j-smtp", "j-anon"}),
        ("TIMEOUT", {"j-smtp", "j-anon"}),
        ("declined issuer", {"j-card"}),
        ('"connection refused"', {"j-smtp"}),
        ('"refused connection"', set()),
        ("ChargeCard", {"j-card"}),
        ("timeout -error:SMTP", {"j-anon"}),
        ("-timeout", {"j-card", "j-report"}),
        ("-name:SendEmail", {"j-card", "j-report", "j-anon"}),
        ("-state:dead -queue:reports", {"j-anon"}),
        ("-after:2h", {"j-smtp", "j-card", "j-anon"}),
        ("declined OR pdf", {"j-card", "j-report"}),
        ("queue:billing OR queue:reports", {"j-card", "j-report"}),
        ("state:dead queue:billing OR name:BuildReport", {"j-card"}),
        ('"->"', {"j-anon"}),
        ("-", None),
        ("nothing-like-this", set()),
        ("", {"j-smtp", "j-card", "j-report", "j-anon"}),
    ],
)
def test_free_text_negation_or_and_quotes(engine: Engine, query: str, expected: set[str] | None) -> None:
    _seed(engine)

    if expected is None:
        with pytest.raises(QuerySyntaxError):
            _ids(engine, query)
    else:
        assert _ids(engine, query) == expected


def test_failed_takes_the_jobs_waiting_for_a_retry_and_the_dead_lettered_ones(engine: Engine) -> None:
    _seed(engine)
    with engine.begin() as connection:
        add_job(connection, "j-retrying", state="failed", updated_at=NOW - 60_000, error="503 from the CRM")

    assert _ids(engine, "state:failed") == {"j-smtp", "j-card", "j-retrying"}
    assert _ids(engine, "state:dead") == {"j-smtp", "j-card"}
    assert _ids(engine, "-state:failed") == {"j-report", "j-anon"}


def test_a_state_the_archive_does_not_have_is_named_in_the_error(engine: Engine) -> None:
    with pytest.raises(UnsupportedQueryError) as caught:
        search(engine, "state:grouped")

    assert caught.value.construct == "state:grouped"
    assert "dead" in str(caught.value)


def _add_many(engine: Engine, first: int, last: int, *, queue: str = "bulk") -> None:
    with engine.begin() as connection:
        for n in range(first, last):
            add_job(connection, f"b-{n:03}", queue=queue, state="completed", updated_at=NOW + n % 7, name="Bulk")


def test_search_pages_by_key_and_rows_archived_meanwhile_neither_repeat_nor_hide_others(engine: Engine) -> None:
    _add_many(engine, 0, 25)
    seen: list[str] = []
    page = search(engine, "name:Bulk", limit=10)
    while True:
        seen.extend(job.job_id for job in page.rows)
        _add_many(engine, len(seen) + 100, len(seen) + 103)  # newer rows, archived between two pages
        if page.next_key is None:
            break
        page = search(engine, "name:Bulk", limit=10, after_key=page.next_key)

    assert seen == [f"b-{n:03}" for n in reversed(range(25))]


@pytest.mark.parametrize(("query", "queue_jobs"), [("Bulk", 30), ("bulk queue:bulk", 25), ("-nothing BULK", 30)])
def test_free_text_pages_newest_first_and_counts_up_to_the_cap(engine: Engine, query: str, queue_jobs: int) -> None:
    _add_many(engine, 0, 5, queue="other")
    _add_many(engine, 0, 25)
    seen: list[tuple[str, str]] = []
    page = search(engine, query, limit=4)
    while True:
        seen.extend((job.queue, job.job_id) for job in page.rows)
        if page.next_key is None:
            break
        page = search(engine, query, limit=4, after_key=page.next_key)

    expected = [("bulk", f"b-{n:03}") for n in reversed(range(25))] + [("other", f"b-{n:03}") for n in range(4, -1, -1)]
    assert seen == expected[:queue_jobs]
    assert count(engine, query) == Count(queue_jobs, capped=False)
    assert count(engine, query, cap=queue_jobs - 1) == Count(queue_jobs - 1, capped=True)


@pytest.mark.parametrize(
    ("query", "driven"),
    [
        ("word", True),
        ("queue:a word -other", True),
        ('"two words"', True),
        ("-word", False),
        ("a OR b", False),
        ('"-"', False),
    ],
)
def test_on_sqlite_a_word_every_result_holds_drives_the_search(query: str, driven: bool) -> None:
    found = sqlite_text_driver(parse(query), Dialect("sqlite"))
    assert (found is not None) == driven
    if found is not None:
        assert "word" not in str(found[1])  # the driving term is left out of the rest
    assert sqlite_text_driver(parse(query), Dialect("postgresql")) is None


def test_jobs_lists_by_queue_state_and_time_most_recent_first_with_stable_pages(engine: Engine) -> None:
    _add_many(engine, 0, 30)
    _add_many(engine, 0, 5, queue="other")
    expected = sorted(range(30), key=lambda n: (NOW + n % 7, n), reverse=True)
    seen: list[str] = []
    key: str | None = None
    while True:
        page = jobs(engine, queue="bulk", state="completed", limit=7, after_key=key)
        seen.extend(job.job_id for job in page.rows)
        with engine.begin() as connection:  # an older and a newer job arrive between pages
            add_job(connection, f"late-{len(seen)}", queue="bulk", name="Bulk", updated_at=NOW + 100)
            add_job(connection, f"early-{len(seen)}", queue="bulk", name="Bulk", updated_at=NOW - 100)
        key = page.next_key
        if key is None:
            break

    window = jobs(engine, queue="bulk", since_ms=NOW + 2, until_ms=NOW + 4, limit=100).rows
    assert seen[:30] == [f"b-{n:03}" for n in expected]
    assert {job_id for job_id in seen[30:]} <= {f"early-{n}" for n in range(0, 40, 7)}
    assert {job.updated_at for job in window} == {NOW + 2, NOW + 3}
    assert jobs(engine, state="dead").rows == []


@pytest.mark.parametrize("key", ["x", "12", "1.x", "", "-1.5x"])
def test_a_key_from_elsewhere_is_refused(engine: Engine, key: str) -> None:
    with pytest.raises(ConfigError):
        jobs(engine, after_key=key)
    if not key.isdigit():
        with pytest.raises(ConfigError):
            search(engine, "x", after_key=key)


def test_counts_are_exact_up_to_the_cap_then_capped(engine: Engine) -> None:
    _add_many(engine, 0, 30)

    assert count(engine, "name:Bulk", cap=100) == Count(30, capped=False)
    assert count(engine, "name:Bulk", cap=30) == Count(30, capped=False)
    assert count(engine, "name:Bulk", cap=29) == Count(29, capped=True)
    assert count(engine, "name:Nothing") == Count(0, capped=False)
    assert str(Count(COUNT_CAP, capped=True)) == "10,000+"
    assert str(Count(1234, capped=False)) == "1,234"


def test_a_timeline_holds_every_event_in_stream_order_with_its_actor(engine: Engine) -> None:
    with engine.begin() as connection:
        pk = add_job(connection, "t-1", state="completed")
        other = add_job(connection, "t-2")
        # Archived out of order (several archivers share the stream): the stream id decides.
        add_event(connection, pk, f"{NOW + 50}-0", "completed", job_id="t-1", attempt=2)
        add_event(connection, pk, f"{NOW}-0", "enqueued", job_id="t-1")
        add_event(connection, pk, f"{NOW + 10}-1", "failed", job_id="t-1", attempt=1)
        add_event(connection, pk, f"{NOW + 10}-0", "started", job_id="t-1", attempt=1)
        add_event(connection, pk, f"{NOW + 20}-0", "retried", job_id="t-1", actor="alice")
        add_event(connection, pk, f"{NOW + 9}-0", "started", job_id="t-1", attempt=1)
        add_event(connection, other, f"{NOW + 5}-0", "enqueued", job_id="t-2")
        add_event(connection, None, f"{NOW + 30}-0", "started", job_id="t-1", attempt=2)

    found = timeline(engine, "t-1")

    assert found.job.job_id == "t-1" and found.job.state == "completed"
    assert [(event.type, event.actor) for event in found.events] == [
        ("enqueued", None),
        ("started", None),
        ("started", None),
        ("failed", None),
        ("retried", "alice"),
        ("started", None),
        ("completed", None),
    ]
    assert [event.stream_id for event in found.events][1:4] == [f"{NOW + 9}-0", f"{NOW + 10}-0", f"{NOW + 10}-1"]
    assert found.events[4].to_json()["data"]["actor"] == "alice"


def test_a_timeline_names_an_unknown_or_ambiguous_job(engine: Engine) -> None:
    with engine.begin() as connection:
        add_job(connection, "same", queue="a")
        add_job(connection, "same", queue="b")

    with pytest.raises(NotFoundError):
        timeline(engine, "nope")
    with pytest.raises(ConfigError) as caught:
        timeline(engine, "same")
    assert "'a', 'b'" in str(caught.value)
    assert timeline(engine, "same", queue="b").job.queue == "b"


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_writes_every_match_oldest_first(engine: Engine, fmt: str) -> None:
    _seed(engine)
    _add_many(engine, 0, 2_500)
    out = io.StringIO()
    totals: list[int] = []

    written = export(engine, "name:Bulk OR email:ann@example.com", fmt, out, progress=totals.append)  # type: ignore[arg-type]

    if fmt == "jsonl":
        rows = [json.loads(line) for line in out.getvalue().splitlines()]
        assert rows[0]["payload"]["data"]["properties"]["email"] == "Ann@Example.com"
        assert rows[0]["error"] == "SMTP timeout: connection refused"
    else:
        rows = list(csv.DictReader(io.StringIO(out.getvalue())))
        assert json.loads(rows[0]["payload"])["id"] == "j-smtp"
        assert rows[1]["error"] == ""
    assert written == len(rows) == 2_501
    assert [row["job_id"] for row in rows] == ["j-smtp", *(f"b-{n:03}" for n in range(2_500))]
    assert totals == [1_000, 2_000, 2_501]


def test_export_refuses_an_unknown_format(engine: Engine) -> None:
    with pytest.raises(ValueError, match="jsonl or csv"):
        export(engine, "", "xml", io.StringIO())  # type: ignore[arg-type]


def test_what_the_archiver_wrote_is_found_and_its_timeline_told(
    r: redis.Redis, keyspace: KeySpace, engine: Engine
) -> None:
    payload = JobPayload.create("SendWelcomeEmail", {"email": "Ann@Example.com", "user": {"id": 42}}, job_id="e2e")
    emit(
        r,
        keyspace,
        job_event(EventType.ENQUEUED, "emails", payload, include_payload=True, timestamp_ms=NOW),
        job_event(EventType.STARTED, "emails", payload, worker_id="w1", attempt=1, timestamp_ms=NOW + 10),
        job_event(EventType.FAILED, "emails", payload, attempt=1, error="SMTP timeout", timestamp_ms=NOW + 20),
        job_event(EventType.DEAD_LETTERED, "emails", payload, include_payload=True, attempt=1, timestamp_ms=NOW + 30),
        job_event(EventType.RETRIED, "emails", "e2e", actor="alice", timestamp_ms=NOW + 40),
    )
    archive(r, engine, keyspace)

    for query in (
        "email:ann@example.com",
        "user.id:42",
        "SendWelcomeEmail",
        "smtp",
        "queue:emails name:SendWelcomeEmail",
    ):
        assert [job.job_id for job in search(engine, query).rows] == ["e2e"], query
    events = timeline(engine, "e2e", queue="emails").events
    assert [(event.type, event.actor) for event in events] == [
        ("enqueued", None),
        ("started", None),
        ("failed", None),
        ("dead_lettered", None),
        ("retried", "alice"),
    ]
    assert [event.stream_id for event in events] == stream_ids(r, keyspace)
