"""Alerting: the pure evaluator, rule and silence matching, and the channels notifications go to.

``evaluate`` turns rules, a :class:`Snapshot` and the stored states into new states,
transitions and grouped notifications (PROTOCOL section 10). ``configured_channels`` builds the
Slack, Discord, signed webhook and email channels of an alert config; each ``send`` returns a
:class:`Delivery`.
"""

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
from zenith_sdk.alerts.evaluate import (
    Evaluation,
    NodeReading,
    QueueReading,
    ScheduleReading,
    Snapshot,
    StateKey,
    evaluate,
)
from zenith_sdk.alerts.matching import (
    AlertLabels,
    active_mutes,
    glob_matches,
    matchers_match,
    mute_active,
    silence_active,
    silenced_by,
)
from zenith_sdk.alerts.messages import Message, render_message

__all__ = [
    "AlertLabels",
    "Channel",
    "Delivery",
    "DiscordChannel",
    "Evaluation",
    "Message",
    "MisconfiguredChannel",
    "NodeReading",
    "QueueReading",
    "RetryPolicy",
    "ScheduleReading",
    "SignedWebhookChannel",
    "SlackChannel",
    "SmtpChannel",
    "Snapshot",
    "StateKey",
    "active_mutes",
    "configured_channels",
    "evaluate",
    "glob_matches",
    "matchers_match",
    "mute_active",
    "redact",
    "render_message",
    "send_test",
    "silence_active",
    "silenced_by",
]
