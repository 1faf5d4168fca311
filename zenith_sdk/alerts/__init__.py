"""Alerting: rules evaluated over a snapshot, notifications delivered to Slack, Discord, signed webhooks and email."""

from zenith_sdk.alerts.channels import (
    Channel,
    Delivery,
    DiscordChannel,
    MisconfiguredChannel,
    RetryPolicy,
    SignedWebhookChannel,
    SlackChannel,
    SmtpChannel,
    configured_channels,
    redact,
    send_test,
)
from zenith_sdk.alerts.messages import Message, render_message

__all__ = [
    "Channel",
    "Delivery",
    "DiscordChannel",
    "Message",
    "MisconfiguredChannel",
    "RetryPolicy",
    "SignedWebhookChannel",
    "SlackChannel",
    "SmtpChannel",
    "configured_channels",
    "redact",
    "render_message",
    "send_test",
]
