"""The per-job events of an operator's retry, delete or promotion, written by the script that moves each job.

The scripts build each event around the job's id and name (``_event.lua``) from a head and a tail
encoded here, so the events are canonical without a Python object per job. For jobs picked here
by id the id and name come from here too (:func:`job_slot`), so the script decodes nothing. In the wire layout
the events stream is one of the script's KEYS and each event lands with its move; in the
cluster-safe layout the stream lives in another hash slot, so the script returns the events
and they are appended right after it (PROTOCOL 8.1 allows both).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from zenith_protocol import EventType, JobEvent, encode_event
from zenith_protocol._json import dumps, has_lone_surrogate, loads
from zenith_sdk.events import EventEmitter
from zenith_sdk.scripts import ScriptArg

__all__ = ["JobEvents", "job_slot"]

_JOB_ID_SLOT = ',"jobId":""'
"""Where the scripts put each job's id (and name, which follows it in the canonical order)."""

_NAME_KEYS = ("job", "class")


def job_name(job: dict[str, Any]) -> str | None:
    """The name of a decoded job as PROTOCOL 4.2 reads it (``data.job``, else ``data.class``, each a
    non-empty string, else ``className``), as ``_event.lua`` reads it too."""
    data = job.get("data")
    if isinstance(data, str):
        try:
            data = loads(data)
        except (ValueError, RecursionError):
            data = None
    if isinstance(data, dict):
        for key in _NAME_KEYS:
            name = data.get(key)
            if isinstance(name, str) and name:
                return name
    class_name = job.get("className")
    return class_name if isinstance(class_name, str) else None


def job_slot(job: dict[str, Any]) -> bytes:
    """What the scripts put between an event's head and tail for the decoded ``job``: its id and name,
    as canonical JSON; b"" when its id is not a string (the script then writes no event)."""
    job_id = job.get("id")
    if not isinstance(job_id, str):
        return b""
    name = job_name(job)
    if name is None:
        return f',"jobId":{_string_json(job_id)}'.encode()
    return f',"jobId":{_string_json(job_id)},"jobName":{_string_json(name)}'.encode()


def _string_json(text: str) -> str:
    """``text`` as canonical JSON (PROTOCOL 2.1); json's string encoder writes it so unless it has a lone surrogate."""
    if has_lone_surrogate(text):
        return dumps(text)
    return encode_basestring(text)


EVENT_OF_MODE = {"retry": EventType.RETRIED, "delete": EventType.DELETED, "promote": EventType.PROMOTED}
"""The per-job event of each move a bulk operation makes."""


@dataclass(frozen=True)
class JobEvents:
    """What the moving scripts need to write one event per job: their extra KEYS and ARGV.

    ``emitter`` None: no events (the scripts get an empty head). ``in_script``: the stream is given
    to the script (the wire layout); else the script returns the events for :meth:`append`.
    """

    emitter: EventEmitter | None
    event_type: EventType
    queue: str
    actor: str
    in_script: bool

    @property
    def on(self) -> bool:
        """Whether the operation records its jobs' events."""
        return self.emitter is not None

    def keys(self) -> list[str]:
        """The script's extra KEYS: the events stream, when the script appends to it."""
        if self.emitter is None or not self.in_script:
            return []
        return [self.emitter.keyspace.events()]

    def args(self) -> list[ScriptArg]:
        """The script's extra ARGV: the head and tail of each event (now), and the stream cap."""
        if self.emitter is None:
            return ["", "", 0]
        probe = JobEvent(
            type=self.event_type, queue=self.queue, timestamp=int(time.time() * 1000), job_id="", actor=self.actor
        )
        head, slot, tail = encode_event(probe).partition(_JOB_ID_SLOT)
        if not slot:  # pragma: no cover - the canonical encoding puts jobId right after timestamp
            raise RuntimeError(f"cannot find {_JOB_ID_SLOT!r} in an encoded event")
        return [head, tail, self.emitter.stream_maxlen]

    def append(self, events: Sequence[bytes | str]) -> None:
        """Append the events a script returned (the cluster-safe layout), right after its call."""
        if events and self.emitter is not None:
            self.emitter.emit_encoded(events)
