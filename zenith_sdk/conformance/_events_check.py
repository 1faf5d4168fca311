"""The events check of a worker run: the stream entries and live log lines of its jobs (8, 6.3)."""

from __future__ import annotations

from zenith_protocol import EventType, JobEvent, ProtocolError, decode_event, decode_log
from zenith_protocol.canonical import EVENT_REQUIRED_FIELDS, STREAM_ENTRY_FIELDS
from zenith_protocol.events import implied_start
from zenith_sdk.conformance._app import SUCCEED
from zenith_sdk.conformance._check import Check
from zenith_sdk.conformance._plan import UNDECODABLE_TEXT
from zenith_sdk.conformance._report import fields_of
from zenith_sdk.conformance._run import Snapshot

__all__ = ["EventsCheck"]

Step = tuple[str, int | None]


def _retry_steps() -> list[Step]:
    steps: list[Step] = []
    for attempt in (1, 2, 3):
        steps += [("started", attempt), ("failed", attempt), ("retried" if attempt < 3 else "dead_lettered", None)]
    return steps


class EventsCheck(Check):
    name, title, sections = "events", "Lifecycle events and log lines", ("8.1", "8.4", "6.3")
    passed = "each job's events are in the stream, in order, with what they must carry"

    def start(self, now_ms: int) -> None:
        self.id = self.plan.job_id("succeed")
        self.run.client.lpush(self.plan.keyspace.queue(self.plan.jobs), self.plan.succeeding("succeed", now_ms))

    def observe(self, snap: Snapshot) -> None:
        waiting = self.run.find(snap.lanes[None], self.id) is not None
        running = any(self.run.find(entries, self.id) for entries in snap.processing.values())
        self.done = not waiting and not running

    def expected(self) -> dict[str, list[Step]]:
        """The events each job of the run must have, in order (``None``: any attempt)."""
        plan, active = self.plan, self.run.active
        steps: dict[str, list[Step]] = {self.id: [("started", 1), ("completed", 1)]}
        if "dead-letter" in active:
            steps[plan.job_id("dead")] = [("started", 1), ("failed", 1), ("dead_lettered", None)]
        if "retry" in active:
            steps[plan.job_id("retry")] = _retry_steps()
        if "unhandled" in active:
            steps[plan.job_id("unhandled")] = [("dead_lettered", None)]
        if "undecodable" in active:
            steps[plan.wrapper_id(UNDECODABLE_TEXT.encode())] = [("dead_lettered", None)]
        return steps

    def conclude(self, snap: Snapshot) -> None:
        by_job = self._events()
        for job_id, steps in self.expected().items():
            self._in_order(job_id, by_job.get(job_id, []), steps)
        self._log_lines()

    def _events(self) -> dict[str, list[JobEvent]]:
        """Each job's events in stream order, an implied start (8.4) before the event that stands for it."""
        self.entries: dict[str, int] = {}
        queues = set(self.plan.queues)
        names = [queue.encode() for queue in queues]
        by_job: dict[str, list[JobEvent]] = {}
        for entry_id, fields in self.run.events:
            raw = fields.get(b"event")
            if raw is None:
                if any(name in value for value in fields.values() for name in names):
                    self.verdict.fail(f"stream entry {entry_id} has no `event` field")
                continue
            try:
                event = decode_event(raw)
            except ProtocolError as exc:
                if any(name in raw for name in names):
                    self.verdict.fail(f"stream entry {entry_id} does not decode: {exc.kind.value}: {exc.reason}")
                continue
            if event.queue not in queues:
                continue
            if set(fields) != {name.encode() for name in STREAM_ENTRY_FIELDS}:
                self.verdict.fail(f"stream entry {entry_id} has fields other than `event`: {sorted(fields)}")
            self._carries(entry_id, event, fields_of(raw) or {})
            if event.job_id:
                start = implied_start(event)  # an attempt written as one event (8.4)
                by_job.setdefault(event.job_id, []).extend([start, event] if start else [event])
                self.entries[event.job_id] = self.entries.get(event.job_id, 0) + 1
        return by_job

    def _carries(self, entry_id: str, event: JobEvent, members: dict[str, object]) -> None:
        if not isinstance(event.type, EventType):
            return
        missing = [name for name in EVENT_REQUIRED_FIELDS[event.type] if members.get(name) in (None, "")]
        if missing:
            self.verdict.fail(f"{event.type.value} event {entry_id} lacks {', '.join(missing)} (8.4)")

    def _in_order(self, job_id: str, events: list[JobEvent], steps: list[Step]) -> None:
        position = 0
        for event in events:
            kind, attempt = steps[position]
            if str(getattr(event.type, "value", event.type)) == kind and attempt in (None, event.attempt):
                position += 1
                if position == len(steps):
                    return
        kind, attempt = steps[position]
        after = f" after {steps[position - 1][0]}" if position else ""
        which = f" for attempt {attempt}" if attempt is not None else ""
        self.verdict.fail(f"{self.label(job_id)}: no {kind} event{which}{after}")

    def _log_lines(self) -> None:
        levels = []
        for line in self.run.log_lines:
            try:
                entry = decode_log(line)
            except ProtocolError:
                continue  # the canonical check reports it
            if entry.job_id == self.id:
                levels.append(str(getattr(entry.level, "value", entry.level)))
        written = self.entries.get(self.id, 0)
        if len(levels) < written or "success" not in levels:
            self.verdict.warn(
                f"the {SUCCEED} job has {written} events and {len(levels)} live log lines "
                f"({', '.join(levels) or 'none'}); one per event is recommended, level success for completed (6.3)"
            )
