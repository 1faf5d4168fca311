"""Alerting: the pure evaluator, rule and silence matching.

``evaluate`` turns rules, a :class:`Snapshot` and the stored states into new states,
transitions and grouped notifications (PROTOCOL section 10).
"""

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

__all__ = [
    "AlertLabels",
    "Evaluation",
    "NodeReading",
    "QueueReading",
    "ScheduleReading",
    "Snapshot",
    "StateKey",
    "active_mutes",
    "evaluate",
    "glob_matches",
    "matchers_match",
    "mute_active",
    "silence_active",
    "silenced_by",
]
