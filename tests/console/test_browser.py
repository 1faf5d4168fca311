"""The console in headless Chromium (Debian's ``chromium``, driven by Playwright), served by uvicorn.

Screenshots of every page are kept under ``$ZENITH_TEST_ARTIFACTS`` (default: the test's tmp_path).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import uvicorn
from console_app import archive_of
from fastapi import FastAPI
from patience import HANG_S
from playwright.sync_api import Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from wire_data import dead_letter_job, seed_wire_facts

from zenith_protocol import KeySpace
from zenith_sdk.alerts import list_silences
from zenith_sdk.control import list_nodes
from zenith_sdk.demo._redis import free_port
from zenith_sdk.events import EventEmitter
from zenith_sdk.pulse import Pulse
from zenith_sdk.schedules import Scheduler

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():  # pragma: no cover - depends on the machine
    pytest.skip("the browser tests need Debian's chromium: apt-get install -y chromium", allow_module_level=True)

SHOT_TIMEOUT_MS = 30_000
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture
def serve(make_app: Callable[..., FastAPI]) -> Iterator[Callable[..., str]]:
    """Serves a console with uvicorn on a free port in a thread; gives its base URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(**extra: object) -> str:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(make_app(**extra), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, name=f"console-{port}", daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + HANG_S
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(HANG_S)


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Where the screenshots go."""
    folder = Path(os.environ.get("ZENITH_TEST_ARTIFACTS") or tmp_path) / "console-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(artifacts: Path) -> Iterator[Page]:
    """A fresh browser page; it fails the test on any script error."""
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        tab.set_default_timeout(HANG_S * 1000)
        expect.set_options(timeout=HANG_S * 1000)
        errors: list[str] = []
        tab.on("pageerror", lambda error: errors.append(str(error)))
        try:
            yield tab
        finally:
            browser.close()
        assert not errors, errors


def _shot(page: Page, artifacts: Path, name: str) -> None:
    """Keep a picture of the page for people to look at; it asserts nothing.

    A starved headless Chromium can stall in the capture itself after every check has passed,
    so a capture that times out leaves a note in place of the picture instead of failing.
    """
    target = artifacts / f"{name}.png"
    try:
        page.screenshot(path=str(target), full_page=True, animations="disabled", timeout=SHOT_TIMEOUT_MS)
    except PlaywrightTimeoutError as error:
        target.with_suffix(".txt").write_text(f"no screenshot, the capture timed out: {error}\n")


def _fail(r: redis.Redis, keyspace: KeySpace, count: int, *, first: int = 0, start_ms: int = 1_700_000_000_000) -> None:
    for index in range(first, first + count):
        r.lpush(keyspace.failed("emails"), dead_letter_job(f"job-{index}", failed_at=start_ms + index))


def test_every_page_opens_and_the_overview_draws_its_charts(
    serve: Callable[..., str], page: Page, artifacts: Path, r: redis.Redis, keyspace: KeySpace
) -> None:
    seed_wire_facts(r, keyspace, int(time.time() * 1000))
    base = serve()

    page.goto(f"{base}/")
    expect(page.locator('[data-total="failed"] .value')).to_have_text("1")
    expect(page.locator("section.charts")).to_have_attribute("data-drawn", "true")
    expect(page.locator('[data-chart="throughput"] canvas')).to_have_count(1)
    _shot(page, artifacts, "overview")
    for name, path in [
        ("queue", "/queues/emails?state=failed"), ("job", "/queues/emails/jobs/1700000000006-vvvvvvv"),
        ("search", "/search?q=alert"), ("workers", "/workers"), ("pulse", "/pulse"), ("schedules", "/schedules"),
        ("alerts", "/alerts"), ("archive", "/archive?q=state:failed"), ("logs", "/logs"),
    ]:  # fmt: skip
        reply = page.goto(f"{base}{path}")
        assert reply is not None and reply.status == 200, (path, reply and reply.status)
        _shot(page, artifacts, name)


def test_three_selected_failed_jobs_are_retried_through_the_dialog(
    serve: Callable[..., str], page: Page, artifacts: Path, r: redis.Redis, keyspace: KeySpace
) -> None:
    _fail(r, keyspace, 5)
    base = serve()
    page.goto(f"{base}/queues/emails?state=failed")
    failed_count = page.locator('[data-state="failed"] .count')
    expect(failed_count).to_have_text("5")

    for job_id in ("job-0", "job-2", "job-4"):
        page.locator(f'input.pick[value="{job_id}"]').check()
    expect(page.locator("[data-selected]")).to_have_text("3")
    page.get_by_role("button", name="Retry selected").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text("Retry 3 selected failed job(s) of emails?")
    _shot(page, artifacts, "bulk-retry-dialog")
    page.locator("#confirm-ok").click()

    expect(failed_count).to_have_text("2")
    expect(page.locator('[data-state="waiting"] .count')).to_have_text("3")  # back in their lane, waiting
    assert sorted(r.lrange(keyspace.failed("emails"), 0, -1)) == sorted(
        dead_letter_job(f"job-{index}", failed_at=1_700_000_000_000 + index).encode() for index in (1, 3)
    )
    assert r.llen(keyspace.lane("emails", "high")) == 3
    _shot(page, artifacts, "bulk-retry-done")


def test_a_purge_asks_for_the_queue_name(
    serve: Callable[..., str], page: Page, artifacts: Path, r: redis.Redis, keyspace: KeySpace
) -> None:
    _fail(r, keyspace, 3)
    base = serve()
    page.goto(f"{base}/queues/emails?state=failed")
    page.get_by_text("Purge…").click()

    page.get_by_label("Type emails to confirm").fill("email")
    page.get_by_role("button", name="Purge emails").click()
    expect(page.locator("[data-form-error]")).to_contain_text("emails")  # refused: the name does not match
    assert r.llen(keyspace.failed("emails")) == 3
    _shot(page, artifacts, "purge-refused")

    page.get_by_label("Type emails to confirm").fill("emails")
    page.get_by_role("button", name="Purge emails").click()
    expect(page).to_have_url(f"{base}/")  # the queue is gone: back to the overview
    assert r.llen(keyspace.failed("emails")) == 0


def test_select_all_matching_a_query_then_keyboard_shortcuts(
    serve: Callable[..., str], page: Page, artifacts: Path, r: redis.Redis, keyspace: KeySpace
) -> None:
    _fail(r, keyspace, 4)
    r.lpush(keyspace.failed("emails"), dead_letter_job("other-1", failed_at=1_800_000_000_000))
    base = serve()
    page.goto(f"{base}/queues/emails?state=failed&q=job-")

    page.keyboard.press("Control+a")
    expect(page.locator("[data-selected]")).to_have_text("4")
    page.keyboard.press("Escape")
    expect(page.locator("[data-selected]")).to_have_text("0")
    page.get_by_role("button", name="Retry all matching…").click()
    expect(page.locator("#confirm-text")).to_contain_text("Retry all 4 failed job(s) of emails matching “job-”?")
    _shot(page, artifacts, "select-all-matching-dialog")
    page.locator("#confirm-ok").click()

    expect(page.locator('[data-state="failed"] .count')).to_have_text("1")
    assert r.lrange(keyspace.failed("emails"), 0, -1) == [
        dead_letter_job("other-1", failed_at=1_800_000_000_000).encode()
    ]


def test_a_running_pulse_agent_has_a_card(
    serve: Callable[..., str], page: Page, artifacts: Path, r: redis.Redis, keyspace: KeySpace
) -> None:
    base = serve()
    with Pulse("billing", r, keyspace=keyspace, node_id="billing-box-1", interval_s=1, framework="pytest"):
        deadline = time.monotonic() + HANG_S
        while not list_nodes(r, keyspace=keyspace):  # the agent's first report, written in its own thread
            assert time.monotonic() < deadline, "the pulse agent wrote no report"
            time.sleep(0.05)
        page.goto(f"{base}/pulse")
        card = page.locator('article.card[data-node="billing-box-1"]')
        expect(card).to_be_visible()
        expect(card.locator("meter")).to_have_count(3)
        expect(page.locator("section.service h2")).to_have_text("billing")
        _shot(page, artifacts, "pulse-card")


def test_a_schedule_runs_now_from_its_button(
    serve: Callable[..., str], page: Page, artifacts: Path, r: redis.Redis, keyspace: KeySpace
) -> None:
    base = serve()
    Scheduler(r, keyspace=keyspace).register("nightly", "0 3 * * *", "reports", "nightly-report", actor="test")
    page.goto(f"{base}/schedules")

    page.locator('tr[data-schedule="nightly"]').get_by_role("button", name="Run now").click()

    expect(page.locator('tr[data-schedule="nightly"]')).to_be_visible()
    deadline = time.monotonic() + HANG_S
    while r.llen(keyspace.queue("reports")) == 0:
        assert time.monotonic() < deadline, "run now pushed no job"
        time.sleep(0.05)
    _shot(page, artifacts, "schedule-run-now")


def test_an_alert_is_silenced_from_the_form(
    serve: Callable[..., str], page: Page, artifacts: Path, r: redis.Redis, keyspace: KeySpace
) -> None:
    base = serve()
    page.goto(f"{base}/alerts")

    page.get_by_label("rule").fill("failures")
    page.get_by_label("why").fill("deploying")
    page.get_by_role("button", name="Silence").click()

    expect(page.locator("tr[data-silence]")).to_have_count(1)
    [silence] = list_silences(r, keyspace=keyspace)
    assert (silence.matchers.rule, silence.comment, silence.ends_at_ms - silence.starts_at_ms) == (
        "failures", "deploying", 3_600_000,
    )  # fmt: skip
    _shot(page, artifacts, "alert-silenced")


def test_the_archive_page_lists_recent_jobs_or_says_how_to_start_an_archive(
    serve: Callable[..., str],
    page: Page,
    artifacts: Path,
    r: redis.Redis,
    keyspace: KeySpace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no zero-config archive file from this machine's user
    page.goto(f"{serve()}/archive")
    expect(page.locator("[data-archive-missing]")).to_be_visible()
    expect(page.locator("[data-archive-missing]")).to_contain_text("zenith archive run")
    _shot(page, artifacts, "archive-none")

    def two_jobs(events: EventEmitter) -> None:
        events.enqueued("emails", "sent-1", job_name="send-welcome")
        events.completed("emails", "sent-1", worker_id="w1", duration_ms=12)
        events.enqueued("emails", "dead-1", job_name="send-invoice")
        events.dead_lettered("emails", "dead-1", error="SMTP timeout", attempt=3)

    url = archive_of(tmp_path, r, keyspace, two_jobs)
    base = serve(archive_url=url)

    page.goto(f"{base}/archive")
    expect(page.locator("[data-archive-status]")).to_have_text(
        "2 archived job(s), the most recently archived first; 2 shown"
    )
    expect(page.locator("[data-archive-more]")).to_be_hidden()
    expect(page.locator("[data-archive-search] tbody tr")).to_have_count(2)
    expect(page.locator("[data-archive-missing]")).to_be_hidden()
    page.goto(f"{base}/archive?q=state:failed")
    expect(page.locator("[data-archive-search] tbody tr")).to_have_count(1)
    expect(page.locator("[data-archive-search] tbody")).to_contain_text("SMTP timeout")
    _shot(page, artifacts, "archive-failed")

    for n in range(50):
        EventEmitter(r, keyspace=keyspace).enqueued("reports", f"report-{n}", job_name="build-report")
    archive_of(tmp_path, r, keyspace)  # the same file, migrated already
    page.goto(f"{base}/archive")
    expect(page.locator("[data-archive-search] tbody tr")).to_have_count(50)
    page.locator("[data-archive-more]").click()
    expect(page.locator("[data-archive-search] tbody tr")).to_have_count(52)
    expect(page.locator("[data-archive-more]")).to_be_hidden()
    expect(page.locator("[data-archive-status]")).to_contain_text("52 shown")
