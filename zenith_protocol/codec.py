"""Encode and decode every Zenith structure.

``encode_*`` writes the one canonical form (compact JSON in the Node producer's field
order, ``protocolVersion`` included). ``decode_*`` accepts every historical form,
keeps unknown fields and raises :class:`~zenith_protocol.errors.ProtocolError`, and
nothing else, for anything it cannot read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from zenith_protocol import _event_json, _json
from zenith_protocol._types import model_fields_of, wire_names
from zenith_protocol.alerts import (
    DEFAULT_ALERT_RULES,
    AlertConfig,
    AlertEvent,
    AlertRule,
    AlertState,
    ChannelHealth,
    MuteWindow,
    Notification,
    Silence,
    Transition,
)
from zenith_protocol.commands import CommandReply, RemoteCommand
from zenith_protocol.errors import ErrorKind, ProtocolError
from zenith_protocol.events import EVENT_FIELD, JobEvent
from zenith_protocol.jobs import JobPayload
from zenith_protocol.pulse import PulseNode
from zenith_protocol.schedules import Schedule
from zenith_protocol.settings import MaintenanceConfig, QueueSnapshot
from zenith_protocol.version import PROTOCOL_VERSION
from zenith_protocol.workers import LogEntry, LogLevel, WorkerHeartbeat, from_node_consumer_heartbeat

__all__ = [
    "CODECS",
    "Codec",
    "Raw",
    "decode_alert_channel_health",
    "decode_alert_config",
    "decode_alert_event",
    "decode_alert_mute_window",
    "decode_alert_notification",
    "decode_alert_rules",
    "decode_alert_silence",
    "decode_alert_state",
    "decode_alert_transition",
    "decode_command",
    "decode_command_reply",
    "decode_counter",
    "decode_event",
    "decode_event_document",
    "decode_event_fields",
    "decode_heartbeat",
    "decode_job",
    "decode_log",
    "decode_maintenance_config",
    "decode_paused_flag",
    "decode_pulse",
    "decode_queue_snapshot",
    "decode_schedule",
    "decode_worker_queues",
    "encode_alert_channel_health",
    "encode_alert_config",
    "encode_alert_event",
    "encode_alert_mute_window",
    "encode_alert_notification",
    "encode_alert_rules",
    "encode_alert_silence",
    "encode_alert_state",
    "encode_alert_transition",
    "encode_command",
    "encode_command_reply",
    "encode_counter",
    "encode_event",
    "encode_event_fields",
    "encode_heartbeat",
    "encode_job",
    "encode_log",
    "encode_log_line",
    "encode_maintenance_config",
    "encode_paused_flag",
    "encode_pulse",
    "encode_queue_snapshot",
    "encode_schedule",
    "encode_worker_queues",
]

Raw = str | bytes | bytearray | memoryview
"""What a decoder takes: a value as redis-py returns it, decoded or not."""

M = TypeVar("M", bound=BaseModel)


# -- shared machinery ------------------------------------------------------------------------------


def _text(structure: str, raw: object) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(structure, ErrorKind.INVALID_ENCODING, f"not UTF-8 text ({exc})", raw=raw) from exc
    raise ProtocolError(structure, ErrorKind.INVALID_ENCODING, f"expected text, got {type(raw).__name__}", raw=raw)


def _parse(structure: str, raw: object) -> Any:
    text = _text(structure, raw)
    try:
        # Nesting deeper than the protocol's limit is refused before parsing (2.1); RecursionError
        # can still come from a caller that is itself deep in its stack.
        document = _json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(structure, ErrorKind.INVALID_JSON, f"not valid JSON ({exc})", raw=raw) from exc
    # Cheap test first: a lone surrogate needs a \u escape or one in the text itself.
    if "\\u" in text or _json.has_lone_surrogate(text):
        _check_member_names(structure, document, raw)
    return document


def _check_member_names(structure: str, document: Any, raw: object) -> None:
    """Refuse a member name with a lone surrogate: it would decode but could not be encoded again."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key in value:
                if _json.has_lone_surrogate(key):
                    reason = f"member name {key!r} holds a lone surrogate, which pydantic cannot keep"
                    raise ProtocolError(structure, ErrorKind.INVALID_FIELD, reason, raw=raw)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none", "bytes"})


def _field_path(loc: tuple[int | str, ...]) -> str:
    # pydantic adds union-member and validator tags ("str", "str-enum[LogLevel]") to locations.
    parts = [str(part) for part in loc if isinstance(part, int) or (part not in _TYPE_TAGS and "[" not in part)]
    return ".".join(parts)


def _from_validation(structure: str, exc: ValidationError, raw: object) -> ProtocolError:
    first = exc.errors(include_url=False)[0]
    path = _field_path(first["loc"])
    if first["type"] == "missing":
        return ProtocolError(structure, ErrorKind.MISSING_FIELD, f"field {path!r} is required", raw=raw, field=path)
    where = f"field {path!r}" if path else "value"
    return ProtocolError(structure, ErrorKind.INVALID_FIELD, f"{where}: {first['msg']}", raw=raw, field=path or None)


def _with_version(structure: str, obj: dict[str, Any], raw: object) -> dict[str, Any]:
    if "protocolVersion" not in obj:
        return {**obj, "protocolVersion": None}
    version = obj["protocolVersion"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        reason = f"protocolVersion must be a positive integer, got {version!r}"
        raise ProtocolError(structure, ErrorKind.INVALID_FIELD, reason, raw=raw, field="protocolVersion")
    if version > PROTOCOL_VERSION:
        reason = f"protocolVersion {version} is newer than this reader ({PROTOCOL_VERSION}); upgrade zenith-sdk"
        raise ProtocolError(structure, ErrorKind.UNSUPPORTED_VERSION, reason, raw=raw, field="protocolVersion")
    return obj


def _validate(
    structure: str,
    model: type[M],
    obj: Any,
    raw: object,
    *,
    versioned: bool = True,
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> M:
    if not isinstance(obj, dict):
        reason = f"expected a JSON object, got {type(obj).__name__}"
        raise ProtocolError(structure, ErrorKind.NOT_AN_OBJECT, reason, raw=raw)
    if prepare is not None:
        obj = prepare(obj)
    if versioned:
        obj = _with_version(structure, obj, raw)
    try:
        # Wire input is read by wire names only: a Python attribute name there is an unknown field.
        return model.model_validate(obj, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise _from_validation(structure, exc, raw) from exc
    except Exception as exc:
        # The contract is that only ProtocolError leaves a decoder: an odd input that trips
        # something inside pydantic (a field name clashing with a model attribute, say) is
        # still just an invalid value to the caller.
        reason = f"could not be read ({type(exc).__name__}: {exc})"
        raise ProtocolError(structure, ErrorKind.INVALID_FIELD, reason, raw=raw) from exc


def _decode_json(structure: str, model: type[M], raw: Raw, **options: Any) -> M:
    return _validate(structure, model, _parse(structure, raw), raw, **options)


def _null_extras(model: BaseModel) -> bool:
    """True if ``model``, or a model inside it, keeps an unknown field whose value is null."""
    extra = model.__pydantic_extra__
    if extra and None in extra.values():
        return True
    for name in model_fields_of(type(model)):
        value = getattr(model, name)
        for item in value if isinstance(value, list) else (value,):
            if isinstance(item, BaseModel) and _null_extras(item):
                return True
    return False


def _prune(model: BaseModel, data: dict[str, Any]) -> dict[str, Any]:
    """Drop the known fields that are ``None`` (absent) from ``data``, the dump of ``model``; keep unknown nulls."""
    names = wire_names(type(model))
    out = {}
    for key, value in data.items():
        name = names.get(key)
        if name is None:
            out[key] = value
            continue
        if value is None:
            continue
        held = getattr(model, name)
        if isinstance(held, BaseModel) and isinstance(value, dict):
            value = _prune(held, value)
        elif isinstance(held, list) and isinstance(value, list):
            value = [
                _prune(m, v) if isinstance(m, BaseModel) and isinstance(v, dict) else v for m, v in zip(held, value)
            ]
        out[key] = value
    return out


def _dump(model: BaseModel) -> dict[str, Any]:
    return _prune(model, model.model_dump(mode="json", by_alias=True))


def _encode(model: BaseModel) -> str:
    if not _null_extras(model):
        try:
            # pydantic-core writes the canonical form directly: compact, raw UTF-8, "/" unescaped;
            # only some of its number forms differ from JavaScript's (1.0, -0.0, 1e-6, 1e+16).
            text = model.model_dump_json(by_alias=True, exclude_none=True)
        except (PydanticSerializationError, ValueError):
            pass  # a lone surrogate, which pydantic-core cannot write: the path below escapes it
        else:
            _json.check_depth(text)
            return _json.js_number_forms(text)
    # Unknown fields holding null keep it, which exclude_none would not; and text with a lone
    # surrogate is escaped as \uXXXX, as JavaScript does.
    return _json.dumps(_dump(model))


# -- jobs ------------------------------------------------------------------------------------------


def decode_job(raw: Raw) -> JobPayload:
    """Decode a job payload from a queue list, delayed set, dead-letter list or schedule."""
    return _decode_json("job", JobPayload, raw)


def encode_job(job: JobPayload) -> str:
    """Canonical job JSON (push field order, compact, raw UTF-8)."""
    return _encode(job)


# -- workers and logs ------------------------------------------------------------------------------


def decode_heartbeat(raw: Raw) -> WorkerHeartbeat:
    """Decode a worker heartbeat in the console shape or the legacy Node-consumer shape."""
    return _decode_json("heartbeat", WorkerHeartbeat, raw, prepare=from_node_consumer_heartbeat)


def encode_heartbeat(heartbeat: WorkerHeartbeat) -> str:
    """Canonical heartbeat JSON (the console shape)."""
    return _encode(heartbeat)


def decode_log(raw: Raw) -> LogEntry:
    """Decode a live log line from the logs channel or history list."""
    return _decode_json("log", LogEntry, raw)


def encode_log(entry: LogEntry) -> str:
    """Canonical log line JSON."""
    return _encode(entry)


def encode_log_line(
    level: LogLevel | str,
    message: str,
    *,
    timestamp_ms: int,
    worker_id: str | None = None,
    queue: str | None = None,
    job_id: str | None = None,
) -> str:
    """Canonical JSON of the log line these fields make: what :func:`encode_log` writes for that
    :class:`~zenith_protocol.LogEntry`, without building one (writers of events write a line per event)."""
    if isinstance(level, LogLevel):
        text = _event_json.log_json(level._value_, message, worker_id, queue, job_id, timestamp_ms)
        if text is not None:
            return text
    fields = {"worker_id": worker_id, "queue": queue, "job_id": job_id}
    return encode_log(LogEntry(level=level, message=message, timestamp=timestamp_ms, **fields))


# -- pulse -----------------------------------------------------------------------------------------


def decode_pulse(raw: Raw) -> PulseNode:
    """Decode a pulse node (``pulse:`` or legacy ``gravito:quasar:node:`` key)."""
    return _decode_json("pulse", PulseNode, raw)


def encode_pulse(node: PulseNode) -> str:
    """Canonical pulse node JSON."""
    return _encode(node)


# -- lifecycle events ------------------------------------------------------------------------------


def decode_event(raw: Raw) -> JobEvent:
    """Decode a lifecycle event's JSON."""
    return _decode_json("event", JobEvent, raw)


def encode_event(event: JobEvent) -> str:
    """Canonical lifecycle event JSON."""
    # The short path when it applies: the same bytes for a fraction of the cost (control operations write one per job).
    return _event_json.event_json(event) or _encode(event)


def decode_event_fields(fields: Mapping[Any, Any]) -> JobEvent:
    """Decode a stream entry's field map (``{"event": <json>}``) as returned by XRANGE/XREADGROUP."""
    return decode_event_document(fields)[0]


def decode_event_document(fields: Mapping[Any, Any]) -> tuple[JobEvent, dict[str, Any]]:
    """:func:`decode_event_fields`, and the event's JSON object as parsed (unknown members kept, in order).

    For a reader that stores the event as it came without parsing its text a second time; the
    object is the reader's to keep but must not be changed (the event may share its values).
    """
    if not isinstance(fields, Mapping):
        reason = f"expected a stream entry's field map, got {type(fields).__name__}"
        raise ProtocolError("event", ErrorKind.NOT_AN_OBJECT, reason, raw=fields)
    for key, value in fields.items():
        if key in (EVENT_FIELD, EVENT_FIELD.encode()):
            try:
                document = _parse("event", value)
                return _validate("event", JobEvent, document, value), document
            except ProtocolError as exc:
                raise ProtocolError("event", exc.kind, exc.reason, raw=fields, field=exc.field) from exc
    reason = f"stream entry has no {EVENT_FIELD!r} field"
    raise ProtocolError("event", ErrorKind.MISSING_FIELD, reason, raw=dict(fields), field=EVENT_FIELD)


def encode_event_fields(event: JobEvent) -> dict[str, str]:
    """The field map to XADD for one event."""
    return {EVENT_FIELD: encode_event(event)}


# -- schedules (hashes) ----------------------------------------------------------------------------


def _hash_text(raw: Mapping[Any, Any]) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        reason = f"expected a hash (field map), got {type(raw).__name__}"
        raise ProtocolError("schedule", ErrorKind.NOT_AN_OBJECT, reason, raw=raw)
    try:
        return {_text("schedule", key): _text("schedule", value) for key, value in raw.items()}
    except ProtocolError as exc:
        raise ProtocolError("schedule", exc.kind, exc.reason, raw=raw) from exc


def decode_schedule(raw: Mapping[Any, Any]) -> Schedule:
    """Decode a schedule hash (HGETALL result; every value a string)."""
    fields: dict[str, Any] = _hash_text(raw)
    if not fields:
        raise ProtocolError("schedule", ErrorKind.NOT_AN_OBJECT, "the hash is empty or missing", raw=raw)
    version = fields.get("protocolVersion", "")
    if version.isascii() and version.isdigit():
        # Anything else ("²", "-1") stays text, which the version check rejects; so do more
        # digits than int() converts.
        with contextlib.suppress(ValueError):
            fields["protocolVersion"] = int(version)
    if "job" in fields:
        try:
            fields["job"] = decode_job(fields["job"])
        except ProtocolError as exc:
            raise ProtocolError("schedule", exc.kind, f"field 'job': {exc.reason}", raw=raw, field="job") from exc
    return _validate("schedule", Schedule, fields, raw)


def _hash_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return _json.dumps(value)


def encode_schedule(schedule: Schedule) -> dict[str, str]:
    """The field map to HSET for one schedule (all values strings, ``job`` as canonical job JSON)."""
    fields = {key: _hash_value(value) for key, value in _dump(schedule).items()}
    fields["job"] = encode_job(schedule.job)
    return fields


# -- alerts ----------------------------------------------------------------------------------------


def decode_alert_rules(raw: Raw | None) -> tuple[AlertRule, ...]:
    """Decode the rules array; an absent key (``None``) means :data:`DEFAULT_ALERT_RULES`."""
    if raw is None:
        return DEFAULT_ALERT_RULES
    parsed = _parse("alert_rules", raw)
    if not isinstance(parsed, list):
        reason = f"expected a JSON array of rules, got {type(parsed).__name__}"
        raise ProtocolError("alert_rules", ErrorKind.NOT_AN_OBJECT, reason, raw=raw)
    rules = []
    for index, item in enumerate(parsed):
        try:
            rules.append(_validate("alert_rules", AlertRule, item, raw, versioned=False))
        except ProtocolError as exc:
            field = f"{index}.{exc.field}" if exc.field else str(index)
            raise ProtocolError("alert_rules", exc.kind, f"rule {index}: {exc.reason}", raw=raw, field=field) from exc
    return tuple(rules)


def encode_alert_rules(rules: Iterable[AlertRule]) -> str:
    """Canonical JSON array of rules."""
    return _json.dumps([_dump(rule) for rule in rules])


def decode_alert_event(raw: Raw) -> AlertEvent:
    """Decode a fired alert."""
    return _decode_json("alert_event", AlertEvent, raw)


def encode_alert_event(event: AlertEvent) -> str:
    """Canonical alert event JSON."""
    return _encode(event)


def decode_alert_config(raw: Raw) -> AlertConfig:
    """Decode notification channel settings."""
    return _decode_json("alert_config", AlertConfig, raw)


def encode_alert_config(config: AlertConfig) -> str:
    """Canonical alert config JSON (secrets written in clear: this is what Redis stores)."""
    return _encode(config)


def decode_alert_state(raw: Raw) -> AlertState:
    """Decode one alert state (a value of the states hash)."""
    return _decode_json("alert_state", AlertState, raw)


def encode_alert_state(state: AlertState) -> str:
    """Canonical alert state JSON."""
    return _encode(state)


def decode_alert_transition(raw: Raw) -> Transition:
    """Decode one alert transition (history list entry)."""
    return _decode_json("alert_transition", Transition, raw)


def encode_alert_transition(transition: Transition) -> str:
    """Canonical alert transition JSON."""
    return _encode(transition)


def decode_alert_notification(raw: Raw) -> Notification:
    """Decode one notification (outbox entry)."""
    return _decode_json("alert_notification", Notification, raw)


def encode_alert_notification(notification: Notification) -> str:
    """Canonical notification JSON (what the webhook channel posts)."""
    return _encode(notification)


def decode_alert_silence(raw: Raw) -> Silence:
    """Decode one silence (silences hash value)."""
    return _decode_json("alert_silence", Silence, raw)


def encode_alert_silence(silence: Silence) -> str:
    """Canonical silence JSON."""
    return _encode(silence)


def decode_alert_mute_window(raw: Raw) -> MuteWindow:
    """Decode one recurring mute window (mute windows hash value)."""
    return _decode_json("alert_mute_window", MuteWindow, raw)


def encode_alert_mute_window(window: MuteWindow) -> str:
    """Canonical mute window JSON."""
    return _encode(window)


def decode_alert_channel_health(raw: Raw) -> ChannelHealth:
    """Decode one channel's delivery record (channel health hash value)."""
    return _decode_json("alert_channel_health", ChannelHealth, raw)


def encode_alert_channel_health(health: ChannelHealth) -> str:
    """Canonical channel health JSON."""
    return _encode(health)


# -- commands, settings, snapshots -----------------------------------------------------------------


def decode_command(raw: Raw) -> RemoteCommand:
    """Decode a remote command from a command channel."""
    return _decode_json("command", RemoteCommand, raw)


def encode_command(command: RemoteCommand) -> str:
    """Canonical remote command JSON."""
    return _encode(command)


def decode_command_reply(raw: Raw) -> CommandReply:
    """Decode a node's reply to a remote command."""
    return _decode_json("command_reply", CommandReply, raw)


def encode_command_reply(reply: CommandReply) -> str:
    """Canonical command reply JSON."""
    return _encode(reply)


def decode_maintenance_config(raw: Raw) -> MaintenanceConfig:
    """Decode maintenance settings."""
    return _decode_json("maintenance_config", MaintenanceConfig, raw)


def encode_maintenance_config(config: MaintenanceConfig) -> str:
    """Canonical maintenance config JSON."""
    return _encode(config)


def decode_queue_snapshot(raw: Raw) -> QueueSnapshot:
    """Decode a queue snapshot."""
    return _decode_json("queue_snapshot", QueueSnapshot, raw)


def encode_queue_snapshot(snapshot: QueueSnapshot) -> str:
    """Canonical queue snapshot JSON."""
    return _encode(snapshot)


# -- scalars ---------------------------------------------------------------------------------------


def decode_counter(raw: Raw | int) -> int:
    """Decode an integer counter (throughput, sparkline sample, rate-limit window)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    text = _text("counter", raw).strip(" \t\r\n")
    digits = text[1:] if text.startswith("-") else text
    if not digits.isascii() or not digits.isdigit() or len(digits) > 19 or not -(2**63) <= int(text) < 2**63:
        reason = f"expected a decimal integer that fits 64 bits, got {text[:40]!r}"
        raise ProtocolError("counter", ErrorKind.INVALID_VALUE, reason, raw=raw)
    return int(text)


def encode_counter(value: int) -> str:
    """A counter as Redis stores it."""
    return str(int(value))


_PAUSED_VALUES = {"1": True, "0": False, "": False}


def decode_paused_flag(raw: Raw | None) -> bool:
    """Decode a ``:paused`` key: ``"1"`` is paused, absent or ``"0"`` is not."""
    if raw is None:
        return False
    text = _text("paused_flag", raw)
    if text not in _PAUSED_VALUES:
        reason = f'a paused flag is "1" (paused) or absent, got {text[:40]!r}'
        raise ProtocolError("paused_flag", ErrorKind.INVALID_VALUE, reason, raw=raw)
    return _PAUSED_VALUES[text]


def encode_paused_flag(paused: bool) -> str | None:
    """``"1"`` to SET when paused; ``None`` means DEL the key."""
    return "1" if paused else None


def decode_worker_queues(raw: Raw) -> list[str]:
    """Decode a worker's entry in the worker-queues hash: the JSON array of queue names it polls (4.12)."""
    document = _parse("worker_queues", raw)
    if not isinstance(document, list) or not all(isinstance(queue, str) for queue in document):
        reason = "expected a JSON array of queue names"
        raise ProtocolError("worker_queues", ErrorKind.INVALID_VALUE, reason, raw=raw)
    return document


def encode_worker_queues(queues: Iterable[str]) -> str:
    """A worker's queue list as the worker-queues hash stores it."""
    return _json.dumps(list(queues))


# -- registry --------------------------------------------------------------------------------------

InputKind = Literal["json", "hash", "stream", "scalar"]


@dataclass(frozen=True)
class Codec:
    """One structure's decoder and canonical encoder, for tools that handle every structure."""

    structure: str
    input_kind: InputKind
    decode: Callable[[Any], Any]
    encode: Callable[[Any], Any]


CODECS: Mapping[str, Codec] = {
    codec.structure: codec
    for codec in (
        Codec("job", "json", decode_job, encode_job),
        Codec("heartbeat", "json", decode_heartbeat, encode_heartbeat),
        Codec("log", "json", decode_log, encode_log),
        Codec("pulse", "json", decode_pulse, encode_pulse),
        Codec("event", "json", decode_event, encode_event),
        Codec("event_fields", "stream", decode_event_fields, encode_event_fields),
        Codec("schedule", "hash", decode_schedule, encode_schedule),
        Codec("alert_rules", "json", decode_alert_rules, encode_alert_rules),
        Codec("alert_event", "json", decode_alert_event, encode_alert_event),
        Codec("alert_config", "json", decode_alert_config, encode_alert_config),
        Codec("alert_state", "json", decode_alert_state, encode_alert_state),
        Codec("alert_transition", "json", decode_alert_transition, encode_alert_transition),
        Codec("alert_notification", "json", decode_alert_notification, encode_alert_notification),
        Codec("alert_silence", "json", decode_alert_silence, encode_alert_silence),
        Codec("alert_mute_window", "json", decode_alert_mute_window, encode_alert_mute_window),
        Codec("alert_channel_health", "json", decode_alert_channel_health, encode_alert_channel_health),
        Codec("command", "json", decode_command, encode_command),
        Codec("command_reply", "json", decode_command_reply, encode_command_reply),
        Codec("maintenance_config", "json", decode_maintenance_config, encode_maintenance_config),
        Codec("queue_snapshot", "json", decode_queue_snapshot, encode_queue_snapshot),
        Codec("counter", "scalar", decode_counter, encode_counter),
        Codec("paused_flag", "scalar", decode_paused_flag, encode_paused_flag),
    )
}
"""Every structure by name: what golden vectors and ``zenith doctor`` dispatch on."""
