"""Checks of what a worker writes: dead letters, heartbeats, events, canonical bytes, acknowledgements (13.5)."""

from __future__ import annotations

from collections.abc import Iterator

from redis.client import Pipeline

from zenith_protocol import PROTOCOL_VERSION
from zenith_protocol.jobs import FAILED_LIST_CAP
from zenith_sdk.conformance._app import SLEEP, UNHANDLED
from zenith_sdk.conformance._check import Check, check_dead_letter
from zenith_sdk.conformance._plan import UNDECODABLE_TEXT
from zenith_sdk.conformance._report import CheckResult, canonical_finding, fields_of
from zenith_sdk.conformance._run import Snapshot, as_bytes

__all__ = ["AckCheck", "CanonicalCheck", "DeadLetterCheck", "HeartbeatCheck", "UndecodableCheck", "UnhandledCheck"]

_FILLER_CHUNK = 250
_HEARTBEAT_JOB_AFTER_MS = 5000
"""When the retry check does not reach its second retry, the heartbeat job is pushed this long after the start."""


class DeadLetterCheck(Check):
    name, title, sections = "dead-letter", "Dead letters and the list cap", ("4.7",)
    passed = f"dead-lettered at index 0 of a list kept to {FAILED_LIST_CAP} entries, members kept"

    def setup(self, pipe: Pipeline, now_ms: int) -> None:
        key = self.plan.keyspace.failed(self.plan.dead)
        fillers = [self.plan.failing(f"filler-{n:04d}", now_ms) for n in range(FAILED_LIST_CAP)]
        self.second_oldest = fillers[1]
        for start in range(0, len(fillers), _FILLER_CHUNK):
            pipe.lpush(key, *fillers[start : start + _FILLER_CHUNK])  # the first filler ends up oldest

    def start(self, now_ms: int) -> None:
        self.pushed = self.plan.failing("dead", now_ms)
        self.run.client.lpush(self.plan.keyspace.queue(self.plan.dead), self.pushed)

    def observe(self, snap: Snapshot) -> None:
        self.done = snap.dead_head is not None and self.run.job_id(snap.dead_head) == self.plan.job_id("dead")

    def conclude(self, snap: Snapshot) -> None:
        key = self.plan.keyspace.failed(self.plan.dead)
        pipe = self.run.client.pipeline(transaction=True)
        pipe.llen(key)
        pipe.lindex(key, 0)
        pipe.lindex(key, -1)
        length, head, tail = pipe.execute()
        if head is None or self.run.job_id(as_bytes(head)) != self.plan.job_id("dead"):
            self.verdict.fail(f"the job was not dead-lettered at index 0 of {key}")
        else:
            self.run.wrote("job", as_bytes(head), key, created=False)
            message = self.plan.message("dead")
            check_dead_letter(self.verdict, "dead", as_bytes(head), self.pushed, attempts=1, error=message)
        if length != FAILED_LIST_CAP:
            self.verdict.fail(f"{key} holds {length} entries after the push, expected {FAILED_LIST_CAP} (LTRIM 0 999)")
        if tail is None or as_bytes(tail) != self.second_oldest:
            self.verdict.fail(f"the oldest entry of {key} was not the one trimmed away")


class UnhandledCheck(Check):
    name, title, sections = "unhandled", "Jobs without a handler", ("4.7",)
    passed = "dead-lettered at once, with an error naming the job"

    def start(self, now_ms: int) -> None:
        self.pushed = self.plan.unhandled(now_ms)
        self.run.client.lpush(self.plan.keyspace.queue(self.plan.jobs), self.pushed)
        self.retried = False

    def observe(self, snap: Snapshot) -> None:
        job_id = self.plan.job_id("unhandled")
        if not self.retried and self.run.find_delayed(snap, job_id):
            self.retried = True
            self.verdict.fail("the job waited in a delayed set: a job without a handler is not retried")
        self.done = self.run.find(snap.failed[self.plan.jobs], job_id) is not None

    def conclude(self, snap: Snapshot) -> None:
        found = self.run.find(snap.failed[self.plan.jobs], self.plan.job_id("unhandled"))
        if found is None:
            self.verdict.fail(f"the {UNHANDLED} job was not dead-lettered")
            return
        self.run.wrote("job", found[1], self.plan.keyspace.failed(self.plan.jobs), created=False)
        check_dead_letter(self.verdict, "unhandled", found[1], self.pushed, attempts=1, error=UNHANDLED)


class UndecodableCheck(Check):
    name, title, sections = "undecodable", "Entries that are not jobs", ("4.7", "12.2")
    passed = "dead-lettered as the wrapper job that keeps the exact text"

    def start(self, now_ms: int) -> None:
        self.raw = UNDECODABLE_TEXT.encode()
        self.wrapper = self.plan.wrapper_id(self.raw)
        self.run.client.lpush(self.plan.keyspace.queue(self.plan.jobs), self.raw)

    def observe(self, snap: Snapshot) -> None:
        self.done = self.run.find(snap.failed[self.plan.jobs], self.wrapper) is not None

    def conclude(self, snap: Snapshot) -> None:
        if self.raw in snap.lanes[None]:
            self.verdict.fail("the entry is still waiting: the worker never fetched it, or put it back")
        found = self.run.find(snap.failed[self.plan.jobs], self.wrapper)
        if found is None:
            self.verdict.fail(f"no dead letter with id {self.wrapper} ('invalid-' and 16 hex digits of its SHA-1)")
            return
        self.run.wrote("job", found[1], self.plan.keyspace.failed(self.plan.jobs), created=True)
        fields = fields_of(found[1]) or {}
        data = fields_of(fields["data"]) if isinstance(fields.get("data"), str) else None
        expected = {"job": "zenith.invalid-payload", "properties": {"raw": UNDECODABLE_TEXT}}
        if fields.get("type") != "json" or data != expected:
            self.verdict.fail(f"the wrapper's type and data are {fields.get('type')!r} {fields.get('data')!r}")
        error = fields.get("error")
        if not isinstance(error, str) or not error.startswith("invalid payload: invalid_json"):
            self.verdict.fail(f"the wrapper's error is {error!r}, expected 'invalid payload: invalid_json: ...'")
        if fields.get("maxAttempts") != 1:
            self.verdict.fail(f"the wrapper's maxAttempts is {fields.get('maxAttempts')!r}, expected 1")
        for member in ("createdAt", "attempts", "failedAt"):
            if not isinstance(fields.get(member), int):
                self.verdict.fail(f"the wrapper has no integer {member} (a new job writes it)")
        if fields.get("protocolVersion") != PROTOCOL_VERSION:
            self.verdict.fail(f"the wrapper is a new job, so it carries protocolVersion {PROTOCOL_VERSION}")


class LegacyCheck(Check):
    name, title, sections = "legacy", "A legacy job stays legacy", ("1.3", "4.3")
    passed = "the dead letter of a job read without protocolVersion has none"

    def start(self, now_ms: int) -> None:
        self.run.client.lpush(self.plan.keyspace.queue(self.plan.jobs), self.plan.legacy(now_ms))

    def observe(self, snap: Snapshot) -> None:
        self.done = self.run.find(snap.failed[self.plan.jobs], self.plan.job_id("legacy")) is not None

    def conclude(self, snap: Snapshot) -> None:
        found = self.run.find(snap.failed[self.plan.jobs], self.plan.job_id("legacy"))
        if found is None:
            self.verdict.fail("the legacy job was not dead-lettered")
            return
        self.run.wrote("job", found[1], self.plan.keyspace.failed(self.plan.jobs), created=False)
        if "protocolVersion" in (fields_of(found[1]) or {}):
            self.verdict.fail("its dead letter carries protocolVersion: a rewritten job keeps the version it had")


class HeartbeatCheck(Check):
    name, title, sections = "heartbeat", "Heartbeat while busy", ("6.1",)
    passed = "a heartbeat written while the job ran named it in currentJobId and jobName"

    def start(self, now_ms: int) -> None:
        self.id = self.plan.job_id("busy")
        self.pushed = False
        self.running = False
        self.busy: dict[str, object] | None = None
        self.seen = 0

    def observe(self, snap: Snapshot) -> None:
        run = self.run
        if not self.pushed and (
            "retried twice" in run.milestones
            or "retry" not in run.active
            or snap.ms - run.started_ms >= _HEARTBEAT_JOB_AFTER_MS
        ):
            run.client.lpush(self.plan.keyspace.queue(self.plan.jobs), self.plan.heartbeat_job(snap.ms))
            self.pushed = True
        for worker, raw in snap.heartbeats.items():
            if raw is None or raw in run.written:
                continue
            run.wrote("heartbeat", raw, self.plan.keyspace.worker(worker), created=True)
            fields = fields_of(raw) or {}
            self.seen += int(self.running)
            if fields.get("currentJobId") == self.id:
                self.busy = fields
        running = any(run.find(entries, self.id) for entries in snap.processing.values())
        finished = self.running and not running and run.find(snap.lanes[None], self.id) is None
        self.running = self.running or running
        self.done = self.busy is not None or finished

    def conclude(self, snap: Snapshot) -> None:
        if self.busy is None:
            if not self.pushed or not self.running:
                self.verdict.fail(f"the {SLEEP} job was not seen running, so its heartbeat could not be checked")
            else:
                self.verdict.fail(
                    f"no heartbeat named the running job in currentJobId ({self.seen} heartbeats written while it ran)"
                )
            return
        if self.busy.get("jobName") != SLEEP:
            self.verdict.fail(f"the busy heartbeat has jobName {self.busy.get('jobName')!r}, expected {SLEEP!r}")
        if "status" in self.busy and self.busy["status"] != "busy":
            self.verdict.fail(f"the busy heartbeat has status {self.busy['status']!r}, expected 'busy'")


class CanonicalCheck(Check):
    name, title, sections = "canonical", "Canonical bytes", ("2", "1.3")
    passed = "every job, heartbeat, event and log line the worker wrote is canonical"
    watches = False
    checked = 0

    def conclude(self, snap: Snapshot) -> None:
        for structure, raw, where, created in self._written():
            self.checked += 1
            finding = canonical_finding(structure, raw, created=created)
            if finding is not None:
                self.verdict.fail(f"{where}: {finding}")

    def _written(self) -> Iterator[tuple[str, bytes, str, bool]]:
        for raw, written in self.run.written.items():
            yield written.structure, raw, written.where, written.created
        queues = set(self.plan.queues)
        for entry_id, fields in self.run.events:
            event = fields.get(b"event")
            if event is not None and (fields_of(event) or {}).get("queue") in queues:
                yield "event", event, f"event {entry_id}", True
        for line in self.run.log_lines:
            yield "log", line, "log line", True

    def result(self) -> CheckResult:
        return self.verdict.result(f"{self.passed} ({self.checked} values)")


class AckCheck(Check):
    name, title, sections = "ack", "Acknowledgement empties the processing lists", ("4.6",)
    passed = "the processing lists of the run's queues are empty at the end"
    watches = False

    def conclude(self, snap: Snapshot) -> None:
        for pattern in self.plan.processing_patterns():
            for key in self.run.scan(pattern):
                left = [as_bytes(raw) for raw in self.run.client.lrange(key, 0, -1)]
                if left:
                    ids = ", ".join(self.label(self.run.job_id(raw) or "?") for raw in left)
                    self.verdict.fail(f"{key} still holds {len(left)} finished job(s): {ids}")
