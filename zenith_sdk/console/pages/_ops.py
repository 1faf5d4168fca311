"""Schedules, alerts, archive search and the live log tail."""

from __future__ import annotations

import time
from collections import defaultdict

from starlette.requests import Request
from starlette.responses import HTMLResponse

from zenith_protocol import AlertConfig, AlertState, ProtocolError
from zenith_sdk.alerts import channel_health, list_silences, load_config, load_rules, read_history, read_states
from zenith_sdk.alerts.channels import WEBHOOK_PREFIX
from zenith_sdk.console.pages._render import console_of, render
from zenith_sdk.schedules import Scheduler

__all__ = ["alerts_page", "archive_page", "channel_names", "logs_page", "schedules_page"]

HISTORY_LIMIT = 50
"""Alert transitions shown."""


def schedules_page(request: Request) -> HTMLResponse:
    """Every schedule with its next and last run, and the buttons that change it."""
    console = console_of(request)
    scheduler = getattr(console, "scheduler", None) or Scheduler(
        console.client, keyspace=console.keyspace, events=console.events
    )
    return render(request, "schedules.html", schedules=scheduler.list(), now_ms=int(time.time() * 1000))


def channel_names(config: AlertConfig) -> list[str]:
    """The names the alert channels of ``config`` go by (what the test endpoint takes), in config order."""
    channels = config.channels
    names = [name for name, value in (("slack", channels.slack), ("discord", channels.discord)) if value is not None]
    names += ["email"] if channels.email is not None else []
    return names + [f"{WEBHOOK_PREFIX}{endpoint.name}" for endpoint in channels.webhooks]


def alerts_page(request: Request) -> HTMLResponse:
    """Rules with their states, silences, channels (secrets redacted) with a test button, and history."""
    console = console_of(request)
    client, space = console.client, console.keyspace
    problems: list[str] = []
    try:
        rules = load_rules(client, keyspace=space)
    except ProtocolError as exc:
        rules, problems = [], [f"alert rules unreadable: {exc}"]
    try:
        config = load_config(client, keyspace=space)
    except ProtocolError as exc:
        config, problems = AlertConfig(), [*problems, f"channel settings unreadable: {exc}"]
    states: dict[str, list[tuple[str, AlertState]]] = defaultdict(list)
    for (rule_id, subject), state in sorted(read_states(client, keyspace=space).states.items()):
        states[rule_id].append((subject, state))
    return render(
        request,
        "alerts.html",
        rules=rules,
        types={rule.id: rule.type for rule in rules},
        states=states,
        silences=list_silences(client, keyspace=space),
        config=config,
        channels=channel_names(config),
        health=channel_health(client, keyspace=space),
        history=read_history(client, keyspace=space, limit=HISTORY_LIMIT),
        problems=problems,
    )


def archive_page(request: Request) -> HTMLResponse:
    """Search the SQL archive (the query is in the URL; the results come from the archive API)."""
    return render(request, "archive.html", query=request.query_params.get("q", "").strip())


def logs_page(request: Request) -> HTMLResponse:
    """The live log tail of every worker."""
    return render(request, "logs.html")
