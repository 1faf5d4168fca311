"""Alerting: rules evaluated over a snapshot, changes applied once by a compare-and-set, notifications delivered.

``evaluate`` turns rules, a :class:`Snapshot` and the stored states into new states, transitions
and grouped notifications (PROTOCOL section 10); ``configured_channels`` builds the Slack,
Discord, signed webhook and email channels of an alert config. :class:`AlertService` is the loop
(``zenith alerts run``): it gathers snapshots, applies each evaluation with the compare-and-set
script and runs the senders; the store functions edit rules, channel settings, silences and mute
windows, and read states, history and channel health.
"""

from zenith_sdk.alerts._settings import (
    add_rule,
    edit_config,
    edit_rules,
    load_config,
    load_rules,
    redact_config,
    remove_rule,
    save_config,
    update_rule,
)
from zenith_sdk.alerts._silences import (
    add_mute,
    add_silence,
    end_silence,
    list_mutes,
    list_silences,
    prune_silences,
    remove_mute,
)
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
from zenith_sdk.alerts.sender import Sender, SentEntry
from zenith_sdk.alerts.service import AlertService, EvaluationReport
from zenith_sdk.alerts.snapshot import SnapshotGatherer, SnapshotNeeds
from zenith_sdk.alerts.store import (
    Applied,
    StoredStates,
    apply_evaluation,
    channel_health,
    read_history,
    read_states,
    record_delivery,
)

__all__ = [
    "AlertLabels",
    "AlertService",
    "Applied",
    "Channel",
    "Delivery",
    "DiscordChannel",
    "Evaluation",
    "EvaluationReport",
    "Message",
    "MisconfiguredChannel",
    "NodeReading",
    "QueueReading",
    "RetryPolicy",
    "ScheduleReading",
    "Sender",
    "SentEntry",
    "SignedWebhookChannel",
    "SlackChannel",
    "SmtpChannel",
    "Snapshot",
    "SnapshotGatherer",
    "SnapshotNeeds",
    "StateKey",
    "StoredStates",
    "active_mutes",
    "add_mute",
    "add_rule",
    "add_silence",
    "apply_evaluation",
    "channel_health",
    "configured_channels",
    "edit_config",
    "edit_rules",
    "end_silence",
    "evaluate",
    "glob_matches",
    "list_mutes",
    "list_silences",
    "load_config",
    "load_rules",
    "matchers_match",
    "mute_active",
    "prune_silences",
    "read_history",
    "read_states",
    "record_delivery",
    "redact",
    "redact_config",
    "remove_mute",
    "remove_rule",
    "render_message",
    "save_config",
    "send_test",
    "silence_active",
    "silenced_by",
    "update_rule",
]
