"""Notification channels: Slack, Discord, signed JSON webhooks and email, built from the alert config.

Each channel sends one notification with a per-attempt timeout and retries with jittered exponential
backoff (5xx, 408, 429 and lost connections are retried, other 4xx are not; a 429's Retry-After is
honoured up to :attr:`RetryPolicy.max_wait_s`), and reports a :class:`Delivery`. Errors, logs and
reprs never contain webhook URL paths, webhook secrets or SMTP passwords (:func:`redact`).
"""

from __future__ import annotations

import ssl
import time
from email.utils import getaddresses
from typing import Protocol

import httpx
from pydantic import SecretStr

from zenith_protocol.alerts import (
    AlertConfig,
    EmailSecurity,
    MessageTemplates,
    Notification,
    NotificationKind,
    NotificationSubject,
    WebhookChannel,
    WebhookEndpoint,
)
from zenith_protocol.errors import ConfigError, NotFoundError
from zenith_sdk.alerts._delivery import Delivery, RetryPolicy, redact
from zenith_sdk.alerts._http import DiscordChannel, SignedWebhookChannel, SlackChannel, signing_key
from zenith_sdk.alerts._smtp import SmtpChannel

__all__ = [
    "WEBHOOK_PREFIX",
    "Channel",
    "Delivery",
    "DiscordChannel",
    "MisconfiguredChannel",
    "RetryPolicy",
    "SignedWebhookChannel",
    "SlackChannel",
    "SmtpChannel",
    "build_test_notification",
    "configured_channels",
    "redact",
    "send_test",
    "signing_key",
]

WEBHOOK_PREFIX = "webhook:"
"""Channel names of generic webhooks are this prefix plus the endpoint's name."""

_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
"""The SMTP port when the config names none."""


class Channel(Protocol):
    """Something a notification can be sent to; ``send`` never raises for a failed delivery."""

    name: str

    def send(self, n: Notification) -> Delivery:
        """Deliver ``n`` (with retries) and say how it went."""
        ...


class MisconfiguredChannel:
    """An enabled channel whose settings cannot work: every send fails at once with what to fix."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem

    def __repr__(self) -> str:
        return f"MisconfiguredChannel(name={self.name!r}, problem={self.problem!r})"

    def send(self, n: Notification) -> Delivery:
        """Report the configuration problem as a failed delivery, without trying to send."""
        return Delivery(self.name, False, 0, error=self.problem)


def _reveal(value: str | SecretStr | None) -> str | None:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _templates(config: AlertConfig, own: MessageTemplates | None) -> tuple[str | None, str | None]:
    """The channel's templates, each part falling back to the config's top-level one."""
    top = config.templates
    title = (own.title if own else None) or (top.title if top else None)
    body = (own.body if own else None) or (top.body if top else None)
    return title, body


def _all_channels(
    config: AlertConfig, *, client: httpx.Client | None, ssl_context: ssl.SSLContext | None, backoff_s: float
) -> dict[str, tuple[bool, Channel]]:
    """Every channel the config describes, enabled or not, by name."""
    found: dict[str, tuple[bool, Channel]] = {}
    for name, hook, cls in (
        ("slack", config.channels.slack, SlackChannel),
        ("discord", config.channels.discord, DiscordChannel),
    ):
        if hook is not None:
            found[name] = (hook.enabled, _chat_channel(config, name, hook, cls, client, backoff_s))
    if config.channels.email is not None:
        found["email"] = (config.channels.email.enabled, _email_channel(config, ssl_context, backoff_s))
    for endpoint in config.channels.webhooks:
        name = f"{WEBHOOK_PREFIX}{endpoint.name}"
        found[name] = (endpoint.enabled, _webhook_channel(name, endpoint, client, backoff_s))
    return found


def _chat_channel(
    config: AlertConfig,
    name: str,
    hook: WebhookChannel,
    cls: type[SlackChannel | DiscordChannel],
    client: httpx.Client | None,
    backoff_s: float,
) -> Channel:
    if not hook.webhook_url:
        return MisconfiguredChannel(name, f"{name}: webhookUrl is not set; set it in the alert config")
    title, body = _templates(config, hook.templates)
    policy = RetryPolicy(timeout_s=hook.timeout_s, retries=hook.retries, backoff_s=backoff_s)
    return cls(name, hook.webhook_url, policy=policy, title_template=title, body_template=body, client=client)


def _webhook_channel(name: str, endpoint: WebhookEndpoint, client: httpx.Client | None, backoff_s: float) -> Channel:
    if not endpoint.url:
        return MisconfiguredChannel(name, f"{name}: url is not set; set it in the alert config")
    policy = RetryPolicy(timeout_s=endpoint.timeout_s, retries=endpoint.retries, backoff_s=backoff_s)
    try:
        return SignedWebhookChannel(name, endpoint.url, secret=_reveal(endpoint.secret), policy=policy, client=client)
    except ConfigError as exc:
        return MisconfiguredChannel(name, f"{name}: {exc}")


def _email_channel(config: AlertConfig, ssl_context: ssl.SSLContext | None, backoff_s: float) -> Channel:
    email = config.channels.email
    if email is None:
        raise ValueError("the config has no email channel")
    recipients = [address for _, address in getaddresses([email.to or ""]) if address]
    sender = email.from_address or email.smtp_user
    missing = [key for key, value in (("smtpHost", email.smtp_host), ("to", recipients), ("from", sender)) if not value]
    if missing or email.smtp_host is None or sender is None:
        return MisconfiguredChannel("email", f"email: {', '.join(missing)} not set; set it in the alert config")
    security = email.effective_security
    security = security.value if isinstance(security, EmailSecurity) else security
    title, body = _templates(config, email.templates)
    try:
        return SmtpChannel(
            "email",
            host=email.smtp_host,
            port=email.smtp_port or _PORTS.get(security, _PORTS["starttls"]),
            sender=sender,
            recipients=recipients,
            user=email.smtp_user,
            password=_reveal(email.smtp_pass),
            security=security,
            policy=RetryPolicy(timeout_s=email.timeout_s, retries=email.retries, backoff_s=backoff_s),
            title_template=title,
            body_template=body,
            ssl_context=ssl_context,
        )
    except ValueError as exc:
        return MisconfiguredChannel("email", f"email: {exc}")


def configured_channels(
    config: AlertConfig,
    *,
    client: httpx.Client | None = None,
    ssl_context: ssl.SSLContext | None = None,
    backoff_s: float = RetryPolicy.backoff_s,
) -> dict[str, Channel]:
    """The enabled channels of ``config`` by name (``slack``, ``discord``, ``email``, ``webhook:<name>``).

    An enabled channel whose settings cannot work is a :class:`MisconfiguredChannel`, so the problem
    shows up as a failed delivery in the channel's health rather than as an exception.

    Args:
        client: an httpx client the HTTP channels share (the caller closes it); without one, each
            attempt opens and closes its own.
        ssl_context: for SMTP over TLS; default: the system's trusted certificates.
        backoff_s: the pause before the first retry (doubling, with jitter).
    """
    channels = _all_channels(config, client=client, ssl_context=ssl_context, backoff_s=backoff_s)
    return {name: channel for name, (enabled, channel) in channels.items() if enabled}


def build_test_notification(channel: str, *, now_ms: int) -> Notification:
    """The notification :func:`send_test` sends: a firing ``test`` rule with one subject, marked as a test."""
    return Notification(
        id=f"test:{channel}:{now_ms}",
        rule_id="test",
        rule_name="Test notification",
        type="test",
        kind=NotificationKind.FIRING,
        severity="warning",
        at_ms=now_ms,
        threshold=0,
        description="A test sent by `zenith alerts test`: nothing is wrong.",
        channels=[channel],
        subjects=[NotificationSubject(subject=f"channel:{channel}", value=0, since_ms=now_ms)],
    )


def send_test(
    config: AlertConfig,
    channel: str,
    *,
    now_ms: int | None = None,
    client: httpx.Client | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Delivery:
    """Send a test notification to the channel named ``channel``, enabled or not (to try it before enabling it).

    Raises:
        NotFoundError: the config has no channel of that name (the message lists the ones it has).
    """
    channels = _all_channels(config, client=client, ssl_context=ssl_context, backoff_s=RetryPolicy.backoff_s)
    if channel not in channels:
        known = ", ".join(sorted(channels)) or "none"
        raise NotFoundError("alert channel", channel, hint=f"configured channels: {known}")
    when = int(time.time() * 1000) if now_ms is None else now_ms
    return channels[channel][1].send(build_test_notification(channel, now_ms=when))
