"""JSON Schemas of the canonical wire forms, generated from the models (``spec/schemas/``)."""

from __future__ import annotations

import inspect
import re
from typing import Any

from pydantic import BaseModel, TypeAdapter

from zenith_protocol.alerts import (
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
from zenith_protocol.events import JobEvent
from zenith_protocol.jobs import JobPayload
from zenith_protocol.pulse import PulseNode
from zenith_protocol.schedules import Schedule
from zenith_protocol.settings import MaintenanceConfig, QueueSnapshot
from zenith_protocol.version import PROTOCOL_VERSION
from zenith_protocol.workers import LogEntry, WorkerHeartbeat

__all__ = ["SCHEMA_BASE_URI", "json_schemas"]

SCHEMA_BASE_URI = "https://zenith.dev/schemas/v2/"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_JSON_MODELS: dict[str, type[BaseModel]] = {
    "job": JobPayload,
    "heartbeat": WorkerHeartbeat,
    "log": LogEntry,
    "pulse": PulseNode,
    "event": JobEvent,
    "alert_event": AlertEvent,
    "alert_config": AlertConfig,
    "alert_state": AlertState,
    "alert_transition": Transition,
    "alert_notification": Notification,
    "alert_silence": Silence,
    "alert_mute_window": MuteWindow,
    "alert_channel_health": ChannelHealth,
    "command": RemoteCommand,
    "command_reply": CommandReply,
    "maintenance_config": MaintenanceConfig,
    "queue_snapshot": QueueSnapshot,
}


_ROLE = re.compile(r":(?:attr|meth|class|data|func):`~?([^`]+)`")


def _plain(text: str) -> str:
    return _ROLE.sub(lambda match: f"`{match.group(1).rsplit('.', 1)[-1]}`", inspect.cleandoc(text)).replace("``", "`")


def _clean(node: Any) -> Any:
    """Docstrings into plain descriptions: dedented, reST literals as Markdown code."""
    if isinstance(node, dict):
        return {
            key: _plain(value) if key == "description" and isinstance(value, str) else _clean(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_clean(item) for item in node]
    return node


def _finish(structure: str, schema: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"$schema": _DIALECT, "$id": f"{SCHEMA_BASE_URI}{structure}.schema.json"}
    out.update(schema)
    if description:
        out["description"] = description
    out = _clean(out)
    out["x-protocol-version"] = PROTOCOL_VERSION
    return out


def _schedule_hash_schema() -> dict[str, Any]:
    model_schema = Schedule.model_json_schema(by_alias=True, mode="validation")
    patterns = {
        "nextRun": "^[0-9]+$",
        "lastRun": "^[0-9]+$",
        "protocolVersion": "^[1-9][0-9]*$",
        "enabled": "^(true|false)$",
    }
    properties: dict[str, Any] = {}
    for name, prop in model_schema["properties"].items():
        entry: dict[str, Any] = {"type": "string"}
        if "description" in prop:
            entry["description"] = prop["description"]
        if name in patterns:
            entry["pattern"] = patterns[name]
        if name == "job":
            entry["contentMediaType"] = "application/json"
            entry["contentSchema"] = {"$ref": "job.schema.json"}
        properties[name] = entry
    return {
        "title": "Schedule",
        "type": "object",
        "properties": properties,
        "required": model_schema.get("required", []),
        "additionalProperties": {"type": "string"},
    }


def json_schemas() -> dict[str, dict[str, Any]]:
    """Every structure's JSON Schema (draft 2020-12), keyed by structure name."""
    schemas = {
        name: _finish(name, model.model_json_schema(by_alias=True, mode="validation"), model.__doc__)
        for name, model in _JSON_MODELS.items()
    }
    rules = TypeAdapter(list[AlertRule]).json_schema(by_alias=True, mode="validation")
    schemas["alert_rules"] = _finish(
        "alert_rules", rules, "JSON array of alert rules; an absent key means the defaults."
    )
    schemas["schedule"] = _finish("schedule", _schedule_hash_schema(), "HASH of one schedule; every value a string.")
    counter = {"title": "Counter", "type": "string", "pattern": "^-?[0-9]+$"}
    schemas["counter"] = _finish("counter", counter, "Decimal integer STRING (throughput, metrics, rate limits).")
    paused = {"title": "PausedFlag", "type": "string", "enum": ["1"]}
    schemas["paused_flag"] = _finish("paused_flag", paused, 'STRING "1" while a queue is paused; absent otherwise.')
    return dict(sorted(schemas.items()))
