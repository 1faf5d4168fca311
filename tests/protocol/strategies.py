"""Hypothesis strategies that build valid instances of every wire model, odd but legal ones included.

Every generated instance can be encoded; decoding that encoding must give it back. To make that
true the strategies stay inside the domain the wire can carry:

- text may hold non-ASCII, control characters and *lone* surrogates; a high surrogate directly
  followed by a low one is split apart, because JSON cannot tell that pair from the astral
  character it spells (``test_codec`` checks that case on its own). Object keys and fields with
  a length constraint (ids) hold no surrogates: pydantic refuses them there, so no model can
  carry one;
- unknown extra fields hold arbitrary JSON without ``null`` (an explicit null reads as absent)
  and without untyped floats of magnitude 2^53 to 1e21, which JavaScript's number form turns
  into integer digits that read back as a Python int (PROTOCOL.md 2.2: writers should not
  produce them);
- the schedule hash holds only text in its own fields and extras (a HASH stores strings), and no
  surrogates there, since a hash value is written to Redis as raw UTF-8.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel

from zenith_protocol import (
    PROTOCOL_VERSION,
    AlertChannels,
    AlertConfig,
    AlertEvent,
    AlertRule,
    AlertState,
    AlertStatus,
    AlertType,
    ChannelHealth,
    CommandPayload,
    CommandReply,
    CommandType,
    DiskUsage,
    EmailChannel,
    EmailSecurity,
    EventType,
    JobEvent,
    JobPayload,
    JobType,
    Language,
    LogEntry,
    LogLevel,
    MaintenanceConfig,
    MessageTemplates,
    MuteWindow,
    Notification,
    NotificationKind,
    NotificationSubject,
    OperatorAction,
    PulseCpu,
    PulseMemory,
    PulseNode,
    PulseProcess,
    PulseProcessMemory,
    PulseProcessRole,
    PulseQueue,
    PulseRuntime,
    PulseSystemMemory,
    QueueSize,
    QueueSnapshot,
    QueueThroughput,
    RemoteCommand,
    Schedule,
    Severity,
    Silence,
    SilenceMatchers,
    Transition,
    WebhookChannel,
    WebhookEndpoint,
    WorkerHeartbeat,
    WorkerMemory,
    WorkerStatus,
)

__all__ = [
    "alert_channel_healths",
    "alert_mute_windows",
    "alert_silences",
    "alert_notifications",
    "alert_transitions",
    "alert_states",
    "EXTRA_KEY_TRAPS",
    "STRATEGIES",
    "alert_configs",
    "alert_events",
    "alert_rule_lists",
    "alert_rules",
    "command_replies",
    "heartbeats",
    "job_events",
    "jobs",
    "json_values",
    "key_text",
    "log_entries",
    "maintenance_configs",
    "pulse_nodes",
    "queue_snapshots",
    "remote_commands",
    "schedules",
    "text",
]

_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")

MAX_MS = 4_102_444_800_000
"""2100-01-01 in epoch ms: the upper end of generated timestamps."""

EXTRA_KEY_TRAPS = (
    "__proto__",
    "constructor",
    "__class__",
    "__dict__",
    "__init__",
    "__pydantic_extra__",
    "model_config",
    "model_fields",
    "model_dump",
    "copy",
    "json",
    "name",
    "properties",
    "is_legacy",
    "_parsed_data",
)
"""Unknown field names that clash with Python, pydantic or JavaScript attribute names."""


def _split_pairs(value: str) -> str:
    return _SURROGATE_PAIR.sub(lambda match: f"{match.group()[0]}-{match.group()[1]}", value)


_CHARS = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.characters(max_codepoint=0x1F),
    st.characters(min_codepoint=0x80, exclude_categories=["Cs"]),
    st.integers(min_value=0xD800, max_value=0xDFFF).map(chr),
)
_CLEAN_CHARS = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.characters(min_codepoint=0x80, exclude_categories=["Cs"]),
)


@cache
def text(*, min_size: int = 0, max_size: int = 10) -> st.SearchStrategy[str]:
    """Text with ASCII, controls, non-ASCII (astral included) and lone surrogates."""
    return st.text(_CHARS, min_size=min_size, max_size=max_size).map(_split_pairs)


@cache
def key_text(*, min_size: int = 0, max_size: int = 10) -> st.SearchStrategy[str]:
    """Text for object keys: like :func:`text` but without surrogates, which pydantic refuses in keys."""
    return st.text(st.one_of(_CLEAN_CHARS, st.characters(max_codepoint=0x1F)), min_size=min_size, max_size=max_size)


@cache
def clean_text(*, min_size: int = 0, max_size: int = 10) -> st.SearchStrategy[str]:
    """Text that encodes as UTF-8 as it is: printable ASCII and non-ASCII, no surrogates."""
    return st.text(_CLEAN_CHARS, min_size=min_size, max_size=max_size)


_NON_EMPTY = key_text(min_size=1)
"""For fields with a length constraint: pydantic refuses a lone surrogate there (but not in other text)."""
_EPOCH_MS = st.integers(min_value=0, max_value=MAX_MS)
_COUNT = st.integers(min_value=0, max_value=2**53 - 1)
_FLOAT = st.floats(allow_nan=False, allow_infinity=False)
_ANY_FLOAT = _FLOAT.filter(lambda value: not 2**53 <= abs(value) < 1e21)
"""A float for an untyped place (unknown fields, ``meta``). JavaScript writes 2^53 <= |x| < 1e21 as integer
digits: 4.718161170229741e16 is written ``47181611702297410``, which reads back as a Python int 2 above it."""
_NON_NEGATIVE = st.floats(min_value=0, allow_nan=False, allow_infinity=False)
_POSITIVE = st.floats(min_value=0, exclude_min=True, allow_nan=False, allow_infinity=False)
_PERCENT = st.floats(min_value=0, max_value=100, allow_nan=False, allow_infinity=False)

_OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_DATETIMES = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=_OFFSETS),
)


@cache
def json_values(*, leaves: st.SearchStrategy[Any] | None = None, max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values (no ``null`` unless ``leaves`` brings it): scalars, lists and objects."""
    scalars = (
        leaves if leaves is not None else st.one_of(st.booleans(), st.integers(-(2**63), 2**63), _ANY_FLOAT, text())
    )
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(key_text(), children, max_size=3),
        max_leaves=max_leaves,
    )


def _reserved(model: type[BaseModel]) -> frozenset[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(name)
        if field.alias is not None:
            names.add(field.alias)
    return frozenset(names)


@cache
def _extras_of(
    model: type[BaseModel], keys: st.SearchStrategy[str], values: st.SearchStrategy[Any], max_size: int
) -> st.SearchStrategy[dict[str, Any]]:
    reserved = _reserved(model)
    key_strategy = st.one_of(keys, st.sampled_from(EXTRA_KEY_TRAPS)).filter(lambda key: key not in reserved)
    return st.dictionaries(key_strategy, values, max_size=max_size)


def _extras(
    draw: st.DrawFn,
    model: type[BaseModel],
    *,
    keys: st.SearchStrategy[str],
    values: st.SearchStrategy[Any],
    max_size: int = 3,
) -> dict[str, Any]:
    return draw(_extras_of(model, keys, values, max_size))


def _build(draw: st.DrawFn, model: type[Any], fields: dict[str, Any], *, version: bool = False) -> Any:
    """Validate ``fields`` (by wire name; ``None`` means absent) plus random unknown fields.

    With ``version`` (a top-level value), ``protocolVersion`` is left out (the default), a
    supported version, or ``None`` (a legacy value).
    """
    data = {key: value for key, value in fields.items() if value is not None}
    if version:
        # A top-level value: a few unknown fields with any JSON, and a protocol version.
        data.update(_extras(draw, model, keys=key_text(), values=json_values(max_leaves=4)))
        data.update(_version(draw))
    else:
        # A nested object: at most one unknown field, to keep generation fast.
        data.update(_extras(draw, model, keys=key_text(), values=json_values(max_leaves=1), max_size=1))
    return model.model_validate(data)


@cache
def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def _version(draw: st.DrawFn) -> dict[str, Any]:
    """``protocolVersion``: absent (default), any supported version, or explicitly legacy (``None``)."""
    choice = draw(st.sampled_from(["default", "explicit", "legacy"]))
    if choice == "default":
        return {}
    if choice == "legacy":
        return {"protocolVersion": None}
    return {"protocolVersion": draw(st.integers(min_value=1, max_value=PROTOCOL_VERSION))}


@cache
def _open_enum(members: Any) -> st.SearchStrategy[Any]:
    """A known member, or a string that names no member (a value a newer writer might send)."""
    known = {member.value for member in members}
    return st.one_of(st.sampled_from(list(members)), text().filter(lambda value: value not in known))


def _to_wire(instance: BaseModel) -> dict[str, Any]:
    return instance.model_dump(by_alias=True, exclude_none=True)


# -- jobs ------------------------------------------------------------------------------------------


def _job_data(draw: st.DrawFn, job_type: JobType) -> str:
    name_key = "class" if job_type is JobType.CLASS else "job"
    document: dict[str, Any] = {name_key: draw(text(min_size=1))}
    if draw(st.booleans()):
        document["properties"] = draw(st.dictionaries(key_text(), json_values(max_leaves=6), max_size=4))
    separators = draw(st.sampled_from([(",", ":"), (", ", ": ")]))
    return json.dumps(document, ensure_ascii=draw(st.booleans()), separators=separators)


@st.composite
def jobs(draw: st.DrawFn) -> JobPayload:
    """Job payloads of both types, every optional field sometimes present."""
    job_type = draw(st.sampled_from(JobType))
    fields = {
        "id": draw(_NON_EMPTY),
        "type": job_type,
        "data": _job_data(draw, job_type),
        "className": draw(_optional(text())),
        "createdAt": draw(_optional(_EPOCH_MS)),
        "delaySeconds": draw(_optional(_NON_NEGATIVE)),
        "attempts": draw(_optional(st.integers(0, 1000))),
        "maxAttempts": draw(_optional(st.integers(0, 1000))),
        "groupId": draw(_optional(text())),
        "error": draw(_optional(text(max_size=30))),
        "failedAt": draw(_optional(_EPOCH_MS)),
        "priority": draw(_optional(st.one_of(text(), st.integers(-(2**31), 2**31)))),
        "retryAfterSeconds": draw(_optional(_NON_NEGATIVE)),
        "retryMultiplier": draw(_optional(_NON_NEGATIVE)),
    }
    job: JobPayload = _build(draw, JobPayload, fields, version=True)
    return job


# -- workers and logs ------------------------------------------------------------------------------


@st.composite
def heartbeats(draw: st.DrawFn) -> WorkerHeartbeat:
    """Worker heartbeats in the console shape, with X-Ray fields and open status values."""
    memory: WorkerMemory = _build(
        draw,
        WorkerMemory,
        {
            "rss": draw(_optional(st.one_of(text(), st.just("N/A"), st.integers(0, 10**6).map(lambda n: f"{n}MB")))),
            "heapTotal": draw(_optional(text())),
            "heapUsed": draw(_optional(text())),
        },
    )
    fields = {
        "id": draw(_NON_EMPTY),
        "hostname": draw(text()),
        "pid": draw(st.integers(0, 2**22)),
        "uptime": draw(_optional(_NON_NEGATIVE)),
        "memory": _to_wire(memory),
        "queues": draw(_optional(st.lists(text(), max_size=3))),
        "concurrency": draw(_optional(st.integers(0, 1000))),
        "timestamp": draw(_DATETIMES),
        "loadAvg": draw(_optional(st.lists(_FLOAT, max_size=3))),
        "status": draw(_optional(_open_enum(WorkerStatus))),
        "currentJobId": draw(_optional(text())),
        "jobName": draw(_optional(text())),
        "language": draw(_optional(text())),
        "cores": draw(_optional(st.integers(0, 1024))),
    }
    heartbeat: WorkerHeartbeat = _build(draw, WorkerHeartbeat, fields, version=True)
    return heartbeat


@st.composite
def log_entries(draw: st.DrawFn) -> LogEntry:
    """Live log lines, levels known and unknown."""
    fields = {
        "level": draw(_open_enum(LogLevel)),
        "message": draw(text(max_size=30)),
        "workerId": draw(_optional(text())),
        "queue": draw(_optional(text())),
        "jobId": draw(_optional(text())),
        "timestamp": draw(_DATETIMES),
    }
    entry: LogEntry = _build(draw, LogEntry, fields, version=True)
    return entry


# -- pulse -----------------------------------------------------------------------------------------


@st.composite
def _pulse_queues(draw: st.DrawFn) -> dict[str, Any]:
    size = _build(draw, QueueSize, {key: draw(_optional(_COUNT)) for key in ("waiting", "active", "failed", "delayed")})
    throughput = draw(
        _optional(st.builds(lambda a, b: {"in": a, "out": b}, _NON_NEGATIVE, _NON_NEGATIVE)),
    )
    fields = {
        "name": draw(text()),
        "driver": draw(_optional(text())),
        "size": _to_wire(size),
        "throughput": None if throughput is None else _to_wire(_build(draw, QueueThroughput, throughput)),
    }
    return _to_wire(_build(draw, PulseQueue, fields))


@st.composite
def _disks(draw: st.DrawFn) -> dict[str, Any]:
    fields = {
        "path": draw(text()),
        "total": draw(_COUNT),
        "used": draw(_COUNT),
        "free": draw(_COUNT),
        "percent": draw(_PERCENT),
    }
    return _to_wire(_build(draw, DiskUsage, fields))


@st.composite
def _pulse_processes(draw: st.DrawFn) -> dict[str, Any]:
    fields = {
        "pid": draw(st.integers(0, 2**22)),
        "role": draw(_optional(_open_enum(PulseProcessRole))),
        "slot": draw(_optional(st.integers(0, 1024))),
        "rss": draw(_COUNT),
        "cpu": draw(_optional(_NON_NEGATIVE)),
    }
    return _to_wire(_build(draw, PulseProcess, fields))


@st.composite
def pulse_nodes(draw: st.DrawFn) -> PulseNode:
    """Pulse nodes with disks, load averages, queues, processes and meta; any language or role (unknown: other)."""
    cpu = _build(draw, PulseCpu, {"system": draw(_PERCENT), "process": draw(_NON_NEGATIVE), "cores": draw(_COUNT)})
    system = _build(draw, PulseSystemMemory, {key: draw(_COUNT) for key in ("total", "free", "used")})
    process = _build(
        draw,
        PulseProcessMemory,
        {"rss": draw(_COUNT), "heapTotal": draw(_optional(_COUNT)), "heapUsed": draw(_optional(_COUNT))},
    )
    memory = _build(draw, PulseMemory, {"system": _to_wire(system), "process": _to_wire(process)})
    runtime = _build(draw, PulseRuntime, {"uptime": draw(_NON_NEGATIVE), "framework": draw(_optional(text()))})
    fields = {
        "id": draw(_NON_EMPTY),
        "service": draw(_NON_EMPTY),
        "language": draw(_optional(st.one_of(st.sampled_from(Language), text()))),
        "version": draw(_optional(text())),
        "pid": draw(st.integers(0, 2**22)),
        "hostname": draw(text()),
        "platform": draw(_optional(text())),
        "cpu": _to_wire(cpu),
        "memory": _to_wire(memory),
        "runtime": _to_wire(runtime),
        "queues": draw(_optional(st.lists(_pulse_queues(), max_size=2))),
        "meta": draw(_optional(st.dictionaries(key_text(), json_values(max_leaves=4), max_size=3))),
        "timestamp": draw(_EPOCH_MS),
        "disk": draw(_optional(st.lists(_disks(), max_size=2))),
        "loadAvg": draw(_optional(st.lists(_FLOAT, max_size=3))),
        "processes": draw(_optional(st.lists(_pulse_processes(), max_size=3))),
    }
    node: PulseNode = _build(draw, PulseNode, fields, version=True)
    return node


# -- lifecycle events ------------------------------------------------------------------------------


@st.composite
def job_events(draw: st.DrawFn) -> JobEvent:
    """Lifecycle and operator events, types and actions known and unknown."""
    fields = {
        "type": draw(_open_enum(EventType)),
        "queue": draw(text()),
        "timestamp": draw(_EPOCH_MS),
        "jobId": draw(_optional(text())),
        "jobName": draw(_optional(text())),
        "workerId": draw(_optional(text())),
        "attempt": draw(_optional(st.integers(0, 1000))),
        "durationMs": draw(_optional(_NON_NEGATIVE)),
        "delayMs": draw(_optional(_COUNT)),
        "error": draw(_optional(text(max_size=30))),
        "actor": draw(_optional(text())),
        "action": draw(_optional(_open_enum(OperatorAction))),
        "count": draw(_optional(_COUNT)),
        "enqueuedAt": draw(_optional(_EPOCH_MS)),
        "payload": draw(_optional(text(max_size=30))),
    }
    event: JobEvent = _build(draw, JobEvent, fields, version=True)
    return event


# -- schedules -------------------------------------------------------------------------------------


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    """Schedules: the embedded job is any job; the hash's own values are surrogate-free text."""
    fields: dict[str, Any] = {
        "id": draw(clean_text(min_size=1)),
        "cron": draw(clean_text(min_size=1)),
        "queue": draw(clean_text(min_size=1)),
        "job": draw(jobs()),
        "nextRun": draw(_optional(_EPOCH_MS)),
        "lastRun": draw(_optional(_EPOCH_MS)),
        "enabled": draw(_optional(st.booleans())),
        "connection": draw(_optional(clean_text())),
        "timezone": draw(_optional(clean_text())),
    }
    data = {key: value for key, value in fields.items() if value is not None}
    data.update(_extras(draw, Schedule, keys=clean_text(), values=clean_text()))
    data.update(_version(draw))
    schedule = Schedule.model_validate(data)
    return schedule


# -- alerts ----------------------------------------------------------------------------------------


@st.composite
def alert_rules(draw: st.DrawFn) -> AlertRule:
    """One alert rule; unknown rule types included."""
    fields = {
        "id": draw(_NON_EMPTY),
        "name": draw(text()),
        "type": draw(_open_enum(AlertType)),
        "threshold": draw(_FLOAT),
        "queue": draw(_optional(text())),
        "cooldownMinutes": draw(_optional(_NON_NEGATIVE)),
    }
    if draw(st.booleans()):
        fields |= {
            "severity": draw(_optional(_open_enum(Severity))),
            "service": draw(_optional(text())),
            "forSeconds": draw(_optional(_NON_NEGATIVE)),
            "keepFiringForSeconds": draw(_optional(_NON_NEGATIVE)),
            "repeatMinutes": draw(_optional(_POSITIVE)),
            "windowMinutes": draw(_optional(st.integers(1, 10_080))),
            "channels": draw(_optional(st.lists(text(), max_size=3))),
            "runbookUrl": draw(_optional(text())),
            "description": draw(_optional(text())),
            "enabled": draw(_optional(st.booleans())),
        }
    rule: AlertRule = _build(draw, AlertRule, fields)
    extras = _extras(draw, AlertRule, keys=key_text(), values=json_values(max_leaves=4))
    if extras:
        rule = AlertRule.model_validate({**rule.model_dump(by_alias=True, exclude_none=True), **extras})
    return rule


def alert_rule_lists() -> st.SearchStrategy[tuple[AlertRule, ...]]:
    """What the rules key holds: a possibly empty sequence of rules."""
    return st.lists(alert_rules(), max_size=3).map(tuple)


@st.composite
def alert_events(draw: st.DrawFn) -> AlertEvent:
    """Fired alerts, severities known and unknown."""
    fields = {
        "ruleId": draw(text()),
        "timestamp": draw(_EPOCH_MS),
        "message": draw(text(max_size=30)),
        "severity": draw(_open_enum(Severity)),
    }
    event: AlertEvent = _build(draw, AlertEvent, fields, version=True)
    return event


def _templates(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.booleans()):
        return None
    return _to_wire(_build(draw, MessageTemplates, {"title": draw(_optional(text())), "body": draw(_optional(text()))}))


def _delivery(draw: st.DrawFn) -> dict[str, Any]:
    """The per-channel options added in v2, each sometimes present."""
    return {
        "timeoutSeconds": draw(_optional(_POSITIVE)),
        "retries": draw(_optional(st.integers(0, 100))),
        "templates": _templates(draw),
    }


def _webhook(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.booleans()):
        return None
    fields = {"enabled": draw(_optional(st.booleans())), "webhookUrl": draw(_optional(text())), **_delivery(draw)}
    return _to_wire(_build(draw, WebhookChannel, fields))


def _endpoint(draw: st.DrawFn) -> dict[str, Any]:
    fields = {
        "name": draw(_NON_EMPTY),
        "enabled": draw(_optional(st.booleans())),
        "url": draw(text()),
        "secret": draw(_optional(text())),
        **_delivery(draw),
    }
    endpoint: WebhookEndpoint = _build(draw, WebhookEndpoint, fields)
    return endpoint.model_dump(by_alias=True, exclude_none=True, mode="json")


def _email(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.booleans()):
        return None
    fields = {
        "enabled": draw(_optional(st.booleans())),
        "smtpHost": draw(_optional(text())),
        "smtpPort": draw(_optional(st.integers(0, 65535))),
        "smtpUser": draw(_optional(text())),
        "smtpPass": draw(_optional(text())),
        "from": draw(_optional(text())),
        "to": draw(_optional(text())),
        "security": draw(_optional(_open_enum(EmailSecurity))),
        **_delivery(draw),
    }
    channel: EmailChannel = _build(draw, EmailChannel, fields)
    return channel.model_dump(by_alias=True, exclude_none=True, mode="json")


@st.composite
def alert_configs(draw: st.DrawFn) -> AlertConfig:
    """Notification settings; the SMTP password is a SecretStr."""
    fields = {
        "slack": _webhook(draw),
        "discord": _webhook(draw),
        "email": _email(draw),
        "webhooks": [_endpoint(draw) for _ in range(draw(st.integers(0, 2)))] or None,
    }
    channels = _build(draw, AlertChannels, fields)
    wire_channels = channels.model_dump(by_alias=True, exclude_none=True, mode="json")
    config: AlertConfig = _build(
        draw, AlertConfig, {"channels": wire_channels, "templates": _templates(draw)}, version=True
    )
    return config


_STATUSES = st.sampled_from(AlertStatus)
_VALUE = _optional(_FLOAT.filter(lambda value: abs(value) < 2**53))


@st.composite
def alert_states(draw: st.DrawFn) -> AlertState:
    """States of one (rule, subject), every optional field sometimes present."""
    fields = {
        "state": draw(_STATUSES),
        "seq": draw(_optional(_COUNT)),
        "since": draw(_EPOCH_MS),
        "activeSince": draw(_optional(_EPOCH_MS)),
        "recoveringSince": draw(_optional(_EPOCH_MS)),
        "value": draw(_VALUE),
        "threshold": draw(_VALUE),
        "notified": draw(_optional(st.booleans())),
        "lastNotifiedMs": draw(_optional(_EPOCH_MS)),
        "silencedBy": draw(_optional(text())),
    }
    state: AlertState = _build(draw, AlertState, fields, version=True)
    return state


@st.composite
def alert_transitions(draw: st.DrawFn) -> Transition:
    """Transitions, with and without a notification kind."""
    fields = {
        "ruleId": draw(text()),
        "subject": draw(text()),
        "fromState": draw(_STATUSES),
        "toState": draw(_STATUSES),
        "seq": draw(_COUNT),
        "at": draw(_EPOCH_MS),
        "value": draw(_VALUE),
        "threshold": draw(_VALUE),
        "kind": draw(_optional(st.sampled_from(NotificationKind))),
        "silencedBy": draw(_optional(text())),
    }
    transition: Transition = _build(draw, Transition, fields, version=True)
    return transition


@st.composite
def alert_notifications(draw: st.DrawFn) -> Notification:
    """Grouped notifications of known and unknown rule types."""
    subjects = [
        _to_wire(
            _build(
                draw,
                NotificationSubject,
                {
                    "subject": draw(text()),
                    "value": draw(_VALUE),
                    "since": draw(_optional(_EPOCH_MS)),
                    "durationS": draw(_optional(_NON_NEGATIVE)),
                    "seq": draw(_optional(_COUNT)),
                },
            )
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    fields = {
        "id": draw(_NON_EMPTY),
        "ruleId": draw(text()),
        "ruleName": draw(text()),
        "type": draw(_open_enum(AlertType)),
        "kind": draw(st.sampled_from(NotificationKind)),
        "severity": draw(_optional(_open_enum(Severity))),
        "at": draw(_EPOCH_MS),
        "threshold": draw(_VALUE),
        "runbookUrl": draw(_optional(text())),
        "description": draw(_optional(text())),
        "channels": draw(_optional(st.lists(text(), max_size=3))),
        "subjects": subjects or None,
    }
    notification: Notification = _build(draw, Notification, fields, version=True)
    return notification


def _matchers(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.booleans()):
        return None
    names = ("rule", "queue", "service", "severity")
    return _to_wire(_build(draw, SilenceMatchers, {name: draw(_optional(text())) for name in names}))


@st.composite
def alert_silences(draw: st.DrawFn) -> Silence:
    """Silences with any matchers."""
    fields = {
        "id": draw(_NON_EMPTY),
        "matchers": _matchers(draw),
        "author": draw(_optional(text())),
        "comment": draw(_optional(text())),
        "startsAt": draw(_EPOCH_MS),
        "endsAt": draw(_EPOCH_MS),
        "createdAt": draw(_optional(_EPOCH_MS)),
    }
    silence: Silence = _build(draw, Silence, fields, version=True)
    return silence


@st.composite
def alert_mute_windows(draw: st.DrawFn) -> MuteWindow:
    """Mute windows; the cron text is not checked by the model."""
    fields = {
        "id": draw(_NON_EMPTY),
        "cron": draw(_NON_EMPTY),
        "durationMinutes": draw(_POSITIVE),
        "timezone": draw(_optional(text())),
        "matchers": _matchers(draw),
        "comment": draw(_optional(text())),
    }
    window: MuteWindow = _build(draw, MuteWindow, fields, version=True)
    return window


@st.composite
def alert_channel_healths(draw: st.DrawFn) -> ChannelHealth:
    """Channel delivery records."""
    fields = {
        "lastSuccessMs": draw(_optional(_EPOCH_MS)),
        "lastError": draw(_optional(text())),
        "consecutiveFailures": draw(_optional(_COUNT)),
        "lastAttemptMs": draw(_optional(_EPOCH_MS)),
    }
    health: ChannelHealth = _build(draw, ChannelHealth, fields, version=True)
    return health


# -- commands, settings, snapshots -----------------------------------------------------------------


@st.composite
def remote_commands(draw: st.DrawFn) -> RemoteCommand:
    """Remote commands, types known and unknown, broadcast or addressed."""
    payload = _build(
        draw,
        CommandPayload,
        {
            "queue": draw(text()),
            "jobId": draw(_optional(text())),
            "jobKey": draw(_optional(text())),
            "driver": draw(_optional(text())),
            "action": draw(_optional(text())),
        },
    )
    fields = {
        "id": draw(_NON_EMPTY),
        "type": draw(_open_enum(CommandType)),
        "targetNodeId": draw(st.one_of(st.just("*"), text())),
        "payload": _to_wire(payload),
        "timestamp": draw(_EPOCH_MS),
        "issuer": draw(_optional(text())),
        "replyTo": draw(_optional(text())),
    }
    command: RemoteCommand = _build(draw, RemoteCommand, fields, version=True)
    return command


@st.composite
def command_replies(draw: st.DrawFn) -> CommandReply:
    """Replies to remote commands."""
    fields = {
        "commandId": draw(text()),
        "nodeId": draw(text()),
        "ok": draw(st.booleans()),
        "message": draw(_optional(text(max_size=30))),
        "timestamp": draw(_EPOCH_MS),
    }
    reply: CommandReply = _build(draw, CommandReply, fields, version=True)
    return reply


@st.composite
def maintenance_configs(draw: st.DrawFn) -> MaintenanceConfig:
    """Archive retention settings."""
    fields = {
        "autoCleanup": draw(_optional(st.booleans())),
        "retentionDays": draw(_optional(st.integers(0, 36500))),
        "lastRun": draw(_optional(_EPOCH_MS)),
    }
    config: MaintenanceConfig = _build(draw, MaintenanceConfig, fields, version=True)
    return config


@st.composite
def queue_snapshots(draw: st.DrawFn) -> QueueSnapshot:
    """Queue snapshots with per-lane counts."""
    fields = {
        "name": draw(_NON_EMPTY),
        "waiting": draw(_optional(_COUNT)),
        "delayed": draw(_optional(_COUNT)),
        "failed": draw(_optional(_COUNT)),
        "active": draw(_optional(_COUNT)),
        "paused": draw(_optional(st.booleans())),
        "lanes": draw(_optional(st.dictionaries(key_text(), _COUNT, max_size=3))),
        "timestamp": draw(_optional(_EPOCH_MS)),
    }
    snapshot: QueueSnapshot = _build(draw, QueueSnapshot, fields, version=True)
    return snapshot


MINIMAL = {
    "job": '{"id":"1","type":"json","data":"{\\"job\\":\\"a\\"}"}',
    "heartbeat": '{"id":"w","hostname":"h","pid":1,"timestamp":"2026-11-29T13:00:00.000Z"}',
    "log": '{"level":"info","message":"m","timestamp":"2026-11-29T13:00:00.000Z"}',
    "pulse": (
        '{"id":"h-1","service":"s","pid":1,"hostname":"h","cpu":{"system":1,"process":1,"cores":1},'
        '"memory":{"system":{"total":1,"free":1,"used":1},"process":{"rss":1}},"runtime":{"uptime":1},"timestamp":1}'
    ),
    "event": '{"type":"enqueued","queue":"q","timestamp":1}',
    "alert_rules": '[{"id":"r","name":"n","type":"backlog","threshold":1}]',
    "alert_event": '{"ruleId":"r","timestamp":1,"message":"m","severity":"warning"}',
    "alert_config": "{}",
    "alert_state": '{"state":"firing","since":1}',
    "alert_transition": '{"ruleId":"r","subject":"all","fromState":"pending","toState":"firing","seq":1,"at":1}',
    "alert_notification": '{"id":"r:all:1","ruleId":"r","ruleName":"n","type":"backlog","kind":"firing","at":1}',
    "alert_silence": '{"id":"s","startsAt":1,"endsAt":2}',
    "alert_mute_window": '{"id":"m","cron":"0 2 * * *","durationMinutes":60}',
    "alert_channel_health": "{}",
    "command": '{"id":"c","type":"RETRY_JOB","targetNodeId":"*","payload":{"queue":"q"},"timestamp":1}',
    "command_reply": '{"commandId":"c","nodeId":"n","ok":true,"timestamp":1}',
    "maintenance_config": "{}",
    "queue_snapshot": '{"name":"q"}',
}
"""The smallest legacy value of every JSON structure."""


# -- registry --------------------------------------------------------------------------------------

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "job": jobs(),
    "heartbeat": heartbeats(),
    "log": log_entries(),
    "pulse": pulse_nodes(),
    "event": job_events(),
    "event_fields": job_events(),
    "schedule": schedules(),
    "alert_rules": alert_rule_lists(),
    "alert_event": alert_events(),
    "alert_config": alert_configs(),
    "alert_state": alert_states(),
    "alert_transition": alert_transitions(),
    "alert_notification": alert_notifications(),
    "alert_silence": alert_silences(),
    "alert_mute_window": alert_mute_windows(),
    "alert_channel_health": alert_channel_healths(),
    "command": remote_commands(),
    "command_reply": command_replies(),
    "maintenance_config": maintenance_configs(),
    "queue_snapshot": queue_snapshots(),
    "counter": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "paused_flag": st.booleans(),
}
"""A strategy of decoded values for every structure of ``zenith_protocol.codec.CODECS``."""
