"""Real receivers on 127.0.0.1 for the alert channel tests (HTTP, SMTP), and notifications to send them."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pytest_httpserver import HTTPServer

from zenith_protocol.alerts import AlertConfig, Notification
from zenith_sdk.demo._redis import free_port

AT_MS = 1_780_000_000_000
"""The time of every notification built here (2026-05-28T20:26:40Z)."""


def notification(
    *,
    subjects: int = 1,
    kind: str = "firing",
    rule_type: str = "backlog",
    rule_name: str = "Queue backlog",
    severity: str = "critical",
    threshold: float | None = 1000,
    since_ago_s: int = 12 * 60,
    **fields: Any,
) -> Notification:
    """A notification as the outbox carries it, built from its wire form, with ``subjects`` queues ``queue:q00``..."""
    names = [f"queue:q{index:02d}" for index in range(subjects)]
    document: dict[str, Any] = {
        "id": f"high_backlog:{names[0]}:7",
        "ruleId": "high_backlog",
        "ruleName": rule_name,
        "type": rule_type,
        "kind": kind,
        "severity": severity,
        "at": AT_MS,
        "threshold": threshold,
        "subjects": [
            {"subject": name, "value": 1500 + index, "since": AT_MS - since_ago_s * 1000}
            for index, name in enumerate(names)
        ],
        **fields,
    }
    return Notification.model_validate(document)


def alert_config(document: dict[str, Any]) -> AlertConfig:
    """An alert config from its wire form (what ``gravito:zenith:alerts:config`` holds)."""
    return AlertConfig.model_validate(document)


@contextmanager
def http_server() -> Iterator[HTTPServer]:
    """A threaded HTTP server on a free port of 127.0.0.1 (a handler that blocks holds up only its own request)."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


@dataclass
class Mail:
    """One message the SMTP server accepted."""

    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class MailBox:
    """An aiosmtpd handler that keeps what it receives; ``replies`` answers the first DATA commands (then 250)."""

    replies: list[str] = field(default_factory=list)
    received: list[Mail] = field(default_factory=list)
    data_commands: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_commands += 1
        if self.replies:
            return self.replies.pop(0)
        parsed = email.message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
        if not isinstance(parsed, EmailMessage):
            raise TypeError("the default policy parses into EmailMessage")
        self.received.append(Mail(str(envelope.mail_from), [str(to) for to in envelope.rcpt_tos], parsed))
        return "250 OK"


@contextmanager
def smtp_server(box: MailBox, **options: Any) -> Iterator[Controller]:
    """An aiosmtpd server on a free port of 127.0.0.1 that hands every message to ``box``."""
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()
