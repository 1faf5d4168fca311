"""Every page on a real Redis holding what Node and Python writers wrote, and what each says when there is nothing."""

from __future__ import annotations

import json
import time

import pytest
import redis
from starlette.testclient import TestClient
from wire_data import node_agent_pulse, seed_wire_facts

from zenith_protocol import KeySpace
from zenith_sdk.console._state import ConsoleState
from zenith_sdk.console.pages._jobs import PAGE_SIZE
from zenith_sdk.control import JobState, list_jobs
from zenith_sdk.producer import Producer

FAILED_ID = "1700000000006-vvvvvvv"


@pytest.fixture
def seeded(r: redis.Redis, keyspace: KeySpace) -> str:
    """The Node system's structures of every kind, and one job the Python producer pushed; its id."""
    seed_wire_facts(r, keyspace, int(time.time() * 1000))
    return Producer(r, keyspace=keyspace).push("welcome", {"to": "bob@example.com", "n": 2}, queue="emails")


def test_the_overview_shows_totals_queues_and_the_live_fragment(console: TestClient, seeded: str) -> None:
    page = console.get("/")
    live = console.get("/fragments/overview")

    assert page.status_code == live.status_code == 200
    assert 'hx-get="/fragments/overview"' in page.text and 'hx-trigger="every 5s"' in page.text
    assert 'data-history-url="/api/history"' in page.text and 'data-spark="failed"' in page.text
    assert 'href="/queues/emails"' in live.text and "<html" not in live.text
    assert '<span class="value">1</span><span class="label">failed</span>' in live.text


def test_a_queue_page_lists_jobs_to_select_and_the_counts_of_every_state(console: TestClient, seeded: str) -> None:
    waiting = console.get("/queues/emails")
    failed = console.get("/queues/emails", params={"state": "failed"})

    assert waiting.status_code == failed.status_code == 200
    assert f'value="{seeded}"' in waiting.text and f'href="/queues/emails/jobs/{seeded}"' in waiting.text
    assert 'data-post="/api/queues/emails/resume"' in waiting.text  # the seed pauses the queue
    assert f'value="{FAILED_ID}"' in failed.text and 'data-bulk-url="/api/queues/emails/bulk"' in failed.text
    assert 'data-state="failed"' in failed.text and 'data-bulk-all="retry"' in failed.text
    assert 'href="/queues/emails?state=failed"' in waiting.text


def test_a_queue_search_keeps_its_query_in_the_url_and_lists_only_matches(console: TestClient, seeded: str) -> None:
    found = console.get("/queues/emails", params={"state": "waiting", "q": "bob@example.com"})
    none = console.get("/queues/emails", params={"state": "waiting", "q": "nobody-at-all"})
    broken = console.get("/queues/emails", params={"q": 'name:"unclosed'})

    assert f'value="{seeded}"' in found.text and "1700000000004-xxxxxxx" not in found.text
    assert 'data-query="bob@example.com"' in found.text
    assert "matches “nobody-at-all”" in none.text
    assert broken.status_code == 200 and 'class="error-text"' in broken.text


def test_the_job_inspector_shows_payload_error_attempts_and_says_when_there_is_no_archive(
    console: TestClient, seeded: str
) -> None:
    dead = console.get(f"/queues/emails/jobs/{FAILED_ID}")
    pushed = console.get(f"/queues/emails/jobs/{seeded}")

    assert dead.status_code == pushed.status_code == 200
    assert "SMTP timeout: connection refused" in dead.text and "3 of 3" in dead.text
    assert "&#34;invoice&#34;: &#34;INV-7/2026&#34;" in dead.text  # formatted JSON, escaped
    assert f'data-post="/api/queues/emails/jobs/{FAILED_ID}/retry"' in dead.text
    assert '"n": 2' in pushed.text.replace("&#34;", '"')
    if not hasattr(ConsoleState, "archive"):
        assert "no archive configured" in dead.text and "ZENITH_ARCHIVE_URL" in dead.text


def test_search_finds_jobs_of_every_queue_and_has_its_own_url(console: TestClient, seeded: str) -> None:
    page = console.get("/search", params={"q": "alert"})

    assert 'value="alert"' in page.text
    assert 'href="/queues/emails/jobs/1700000000002-zzzzzzz"' in page.text
    assert 'href="/queues/emails/jobs/1700000000003-yyyyyyy"' in page.text


def test_a_search_past_a_page_says_how_to_narrow_it(console: TestClient, r: redis.Redis, keyspace: KeySpace) -> None:
    producer = Producer(r, keyspace=keyspace)
    for n in range(PAGE_SIZE + 1):
        producer.push("invoice", {"n": n}, queue="billing")
    producer.push("invoice", {"n": "one"}, queue="other")

    capped = console.get("/search", params={"q": "name:invoice"}).text
    one = console.get("/search", params={"q": "n:one"}).text

    assert "data-search-capped" in capped and capped.count('class="moment"') == PAGE_SIZE
    assert "data-search-capped" not in one and "<p>1 job</p>" in one


def test_workers_and_pulse_show_node_and_python_writers(console: TestClient, seeded: str) -> None:
    workers = console.get("/workers").text
    pulse = console.get("/pulse").text

    assert 'data-worker="worker-console-1"' in workers and 'data-worker="worker-a1b2c3"' in workers
    assert "node" in workers and 'href="/queues/emails"' in workers
    assert "<h2>api</h2>" in pulse and 'data-node="web-1-4242"' in pulse
    assert '<meter min="0" max="100" low="70" high="90" optimum="10" value="12.0">' in pulse  # CPU of the report
    assert 'value="50.0"' in pulse  # RAM: 8 GB free of 16


def test_a_pulse_node_of_several_processes_lists_each_with_its_memory(
    console: TestClient, r: redis.Redis, keyspace: KeySpace
) -> None:
    node = json.loads(node_agent_pulse("workers", "web-2-4242", int(time.time() * 1000)))
    node["memory"]["process"]["rss"] = 3 * 2**20 + 2 * 100 * 2**20
    node["processes"] = [
        {"pid": 4242, "role": "supervisor", "rss": 3 * 2**20, "cpu": 0.5},
        {"pid": 4250, "role": "child", "slot": 0, "rss": 100 * 2**20, "cpu": 12.5},
        {"pid": 4251, "role": "child", "slot": 1, "rss": 100 * 2**20},
    ]
    r.set(keyspace.pulse("workers", "web-2-4242"), json.dumps(node))

    pulse = console.get("/pulse").text
    card = " ".join(pulse[pulse.index('data-node="web-2-4242"') :].split())

    assert "7.5 GiB of 14.9 GiB RAM · 3 processes 203.0 MiB" in card  # the totals cover every process
    assert '<li data-pid="4242">supervisor · pid 4242 · 3.0 MiB · CPU 0.5 %</li>' in card
    assert '<li data-pid="4250">child 0 · pid 4250 · 100.0 MiB · CPU 12.5 %</li>' in card
    assert '<li data-pid="4251">child 1 · pid 4251 · 100.0 MiB</li>' in card


def test_schedules_alerts_archive_and_logs_pages(console: TestClient, seeded: str) -> None:
    schedules = console.get("/schedules").text
    alerts = console.get("/alerts").text
    archive = console.get("/archive", params={"q": "state:failed"}).text
    logs = console.get("/logs")

    assert 'data-schedule="nightly"' in schedules and "<code>0 3 * * *</code>" in schedules
    assert 'data-rule="r1"' in alerts and 'data-rule="r2"' in alerts
    assert 'value="state:failed"' in archive
    assert logs.status_code == 200


def test_empty_pages_say_what_to_do_next(console: TestClient) -> None:
    assert "zenith push emails" in console.get("/").text
    assert "zenith worker myapp.jobs:app" in console.get("/workers").text
    assert "Pulse(redis_client" in console.get("/pulse").text
    assert "No schedule yet" in console.get("/schedules").text
    assert "No notification channel" in console.get("/alerts").text
    assert "zenith archive run" in console.get("/archive").text
    assert "<code>field:value</code>" in console.get("/search").text


def test_a_missing_queue_or_job_is_a_404_page(console: TestClient, r: redis.Redis, keyspace: KeySpace) -> None:
    r.sadd(keyspace.queue_index(), "emails")
    assert not list_jobs(r, "emails", JobState.WAITING, keyspace=keyspace)

    queue = console.get("/queues/nope")
    job = console.get("/queues/emails/jobs/nope")

    assert queue.status_code == job.status_code == 404
    assert "nope" in queue.text and 'href="/"' in job.text


def test_data_from_redis_is_escaped(console: TestClient, r: redis.Redis, keyspace: KeySpace) -> None:
    Producer(r, keyspace=keyspace).push("<script>alert(1)</script>", {"x": "<b>"}, queue="emails")

    page = console.get("/queues/emails").text

    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
