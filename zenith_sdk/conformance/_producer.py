"""``check_producer``: judge what a producer under test wrote for the jobs of the manifest (spec 13.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import redis

from zenith_protocol import LANES_IN_POLL_ORDER, ConfigError, JobPayload, KeySpace
from zenith_sdk.conformance._manifest import ManifestJob, produced_group, produced_queue, producer_manifest
from zenith_sdk.conformance._report import CheckResult, ConformanceReport, Verdict, canonical_finding, fields_of
from zenith_sdk.conformance._run import as_bytes

__all__ = ["check_producer"]

SCORE_TOLERANCE_MS = 1000
_EVENTS_PAGE = 1000
_EVENTS_READ_AT_MOST = 20_000
_MEMBERS = {field.alias or name for name, field in JobPayload.model_fields.items()} - {"error", "failedAt"}
"""What a producer may write in a new job."""
_ASKED = {
    "priority": "priority",
    "groupId": "group_id",
    "maxAttempts": "max_attempts",
    "retryAfterSeconds": "retry_after_seconds",
    "retryMultiplier": "retry_multiplier",
    "delaySeconds": "delay_seconds",
}


@dataclass(frozen=True)
class _Entry:
    """One entry found in the produced queue: where it is and its bytes."""

    key: str
    kind: str  # "lane", "delayed" or "pending"
    lane: str | None
    index: int
    raw: bytes
    score: int | None = None

    @property
    def fields(self) -> dict[str, Any]:
        return fields_of(self.raw) or {}

    @property
    def case(self) -> str | None:
        data = self.fields.get("data")
        inner = fields_of(data) if isinstance(data, str) else None
        properties = (inner or {}).get("properties")
        case = properties.get("case") if isinstance(properties, dict) else None
        return case if isinstance(case, str) else None


def check_producer(
    client: redis.Redis, *, queue: str, keyspace: KeySpace | None = None, keep: bool = False
) -> ConformanceReport:
    """Judge what was pushed for :func:`producer_manifest` of ``queue``; then delete it unless ``keep``.

    Raises:
        ConfigError: no job of the manifest is in the queue (nothing was pushed yet).
    """
    space = keyspace or KeySpace()
    manifest = producer_manifest(queue)
    target, group = produced_queue(queue), produced_group(queue)
    entries, held, indexed = _read(client, space, target, group)
    found: dict[str, list[_Entry]] = {}
    for entry in entries:
        found.setdefault(entry.case or "", []).append(entry)
    if not any(job.case in found for job in manifest):
        raise ConfigError(
            f"no job of the manifest is in queue {target}: push the jobs `zenith conformance manifest --queue "
            f"{queue}` prints first"
        )
    try:
        one = {job.case: found[job.case][0] for job in manifest if job.case in found}
        checks = (
            _pushed(manifest, found, entries),
            _bytes(manifest, one),
            _fields(manifest, one),
            _lanes(manifest, one, entries),
            _delayed(manifest, one),
            _grouped(manifest, one, held),
            _index(target, indexed, space),
            _events(client, space, target, manifest, one),
        )
    finally:
        if not keep:
            _clean(client, space, target, group)
    return ConformanceReport("producer", queue, checks)


def _read(client: redis.Redis, space: KeySpace, target: str, group: str) -> tuple[list[_Entry], bool, bool]:
    pipe = client.pipeline(transaction=True)
    for lane in LANES_IN_POLL_ORDER:
        pipe.lrange(space.lane(target, lane), 0, -1)
    for lane in LANES_IN_POLL_ORDER:
        pipe.zrange(space.delayed(target, lane), 0, -1, withscores=True)
    pipe.lrange(space.group_pending(target, group), 0, -1)
    pipe.sismember(space.group_active(target), group)
    pipe.sismember(space.queue_index(), target)
    replies = iter(pipe.execute())
    entries: list[_Entry] = []
    for lane in LANES_IN_POLL_ORDER:
        key = space.lane(target, lane)
        entries += [_Entry(key, "lane", lane, i, as_bytes(raw)) for i, raw in enumerate(next(replies))]
    for lane in LANES_IN_POLL_ORDER:
        key = space.delayed(target, lane)
        members = cast("list[tuple[Any, float]]", next(replies))
        entries += [_Entry(key, "delayed", lane, i, as_bytes(m), int(s)) for i, (m, s) in enumerate(members)]
    key = space.group_pending(target, group)
    entries += [_Entry(key, "pending", None, i, as_bytes(raw)) for i, raw in enumerate(next(replies))]
    return entries, bool(next(replies)), bool(next(replies))


def _verdict(name: str, title: str, *sections: str) -> Verdict:
    return Verdict(name, title, sections)


def _pushed(manifest: tuple[ManifestJob, ...], found: dict[str, list[_Entry]], entries: list[_Entry]) -> CheckResult:
    verdict = _verdict("pushed", "Every job pushed once, with its own id", "4.1")
    cases = {job.case for job in manifest}
    for job in manifest:
        copies = found.get(job.case, [])
        if len(copies) != 1:
            verdict.fail(f"{job.case}: found {len(copies)} times, expected once")
    for entry in entries:
        if entry.case not in cases:
            verdict.fail(f"{entry.key} holds an entry that is no job of the manifest: {entry.raw[:80]!r}")
    ids = [entry.fields.get("id") for entry in entries]
    if any(not isinstance(job_id, str) or not job_id for job_id in ids) or len(set(map(str, ids))) != len(ids):
        verdict.fail(f"job ids must be non-empty strings, one per job; found {ids}")
    return verdict.result(f"all {len(manifest)} jobs found once, each with its own id")


def _bytes(manifest: tuple[ManifestJob, ...], one: dict[str, _Entry]) -> CheckResult:
    verdict = _verdict("bytes", "Canonical bytes", "2", "4.1", "4.2")
    for job in manifest:
        entry = one.get(job.case)
        if entry is None:
            continue
        finding = canonical_finding("job", entry.raw, created=True)
        if finding is not None:
            verdict.fail(f"{job.case}: {finding}")
        fields = entry.fields
        if not isinstance(fields.get("createdAt"), int) or fields.get("attempts") != 0:
            verdict.fail(f"{job.case}: a new job writes createdAt and attempts 0")
        data, expected = fields.get("data"), job.expected_data()
        if data != expected:
            verdict.fail(f"{job.case}: data is {data!r}, canonical {expected!r}")
    return verdict.result("every job is canonical, data included")


def _fields(manifest: tuple[ManifestJob, ...], one: dict[str, _Entry]) -> CheckResult:
    verdict = _verdict("fields", "Members as asked", "4.1")
    for job in manifest:
        entry = one.get(job.case)
        if entry is None:
            continue
        fields = entry.fields
        if fields.get("type") != job.type.value:
            verdict.fail(f"{job.case}: type {fields.get('type')!r}, expected {job.type.value!r}")
        class_name = job.name if job.type.value == "class" else None
        if fields.get("className") != class_name:
            verdict.fail(f"{job.case}: className {fields.get('className')!r}, expected {class_name!r}")
        for member, attribute in _ASKED.items():
            asked = getattr(job, attribute)
            if member == "delaySeconds" and asked is None and fields.get(member) == 0:
                verdict.warn(f"{job.case}: delaySeconds 0 written for a job without delay (SHOULD omit it)")
            elif fields.get(member) != asked:
                verdict.fail(f"{job.case}: {member} {fields.get(member)!r}, expected {asked!r}")
        extra = sorted(set(fields) - _MEMBERS)
        if extra:
            verdict.fail(f"{job.case}: writes members nobody asked for: {', '.join(extra)}")
    return verdict.result("every member as asked, and no other")


def _lanes(manifest: tuple[ManifestJob, ...], one: dict[str, _Entry], entries: list[_Entry]) -> CheckResult:
    verdict = _verdict("lanes", "Lanes and push order", "4.4")
    for lane in LANES_IN_POLL_ORDER:
        expected = [job.case for job in manifest if job.lane == lane and not job.delay_seconds and not job.group_id]
        for case in expected:
            entry = one.get(case)
            if entry is not None and (entry.kind, entry.lane) != ("lane", lane):
                verdict.fail(f"{case}: pushed to {entry.key}, expected the {lane or 'base'} lane")
        waiting = [e.case for e in sorted(entries, key=lambda e: -e.index) if e.kind == "lane" and e.lane == lane]
        order = [case for case in waiting if case in expected]
        if order != [case for case in expected if case in order]:
            verdict.fail(f"{lane or 'base'} lane, oldest first: {', '.join(map(str, order))}; pushed in manifest order")
    return verdict.result("every job without delay or group is in its lane, oldest at the right end")


def _delayed(manifest: tuple[ManifestJob, ...], one: dict[str, _Entry]) -> CheckResult:
    verdict = _verdict("delayed", "Delayed sets and due times", "4.5")
    for job in manifest:
        entry = one.get(job.case)
        if entry is None or not job.delay_seconds:
            continue
        if (entry.kind, entry.lane) != ("delayed", job.lane):
            lane = job.lane or "base"
            verdict.fail(f"{job.case}: pushed to {entry.key}, expected the delayed set of the {lane} lane")
            continue
        created = entry.fields.get("createdAt")
        due = created + job.delay_seconds * 1000 if isinstance(created, int) else None
        if due is None or entry.score is None or abs(entry.score - due) > SCORE_TOLERANCE_MS:
            verdict.fail(
                f"{job.case}: score {entry.score}, expected createdAt + {job.delay_seconds * 1000} ms = {due} "
                f"(±{SCORE_TOLERANCE_MS} ms)"
            )
    return verdict.result("delayed jobs are in their lane's delayed set, due createdAt + delaySeconds")


def _grouped(manifest: tuple[ManifestJob, ...], one: dict[str, _Entry], held: bool) -> CheckResult:
    verdict = _verdict("groups", "Group admission at push", "4.10")
    grouped = [job for job in manifest if job.group_id]
    first, rest = grouped[0], grouped[1:]
    entry = one.get(first.case)
    if entry is not None and (entry.kind, entry.lane) != ("lane", first.lane):
        verdict.fail(f"{first.case}: pushed to {entry.key}, expected its lane (the group was free)")
    if not held:
        verdict.fail(f"the group {first.group_id} is not held after its first job was pushed")
    pending = [one[job.case] for job in rest if job.case in one]
    if any(entry.kind != "pending" for entry in pending):
        verdict.fail("the group's later jobs are not all in its pending list (the group was held)")
    elif [entry.index for entry in pending] != sorted(entry.index for entry in pending):
        verdict.fail("the group's pending list is not in push order (RPUSH)")
    return verdict.result("the first job is in its lane with the group held, the others wait in push order")


def _index(target: str, indexed: bool, space: KeySpace) -> CheckResult:
    verdict = _verdict("index", "Queue index", "4.12")
    if not indexed:
        verdict.warn(f"{target} is not in {space.queue_index()} (producers SHOULD add it)")
    return verdict.result(f"{target} is in {space.queue_index()}")


def _events(
    client: redis.Redis, space: KeySpace, target: str, manifest: tuple[ManifestJob, ...], one: dict[str, _Entry]
) -> CheckResult:
    verdict = _verdict("events", "Enqueued events", "8.1", "8.4")
    wanted = {str(entry.fields.get("id")): case for case, entry in one.items()}
    seen: dict[str, dict[str, Any]] = {}
    for entry_id, raw in _recent_events(client, space, wanted):
        fields = fields_of(raw) or {}
        if fields.get("queue") != target or fields.get("type") != "enqueued" or fields.get("jobId") not in wanted:
            continue
        finding = canonical_finding("event", raw, created=True)
        if finding is not None:
            verdict.fail(f"event {entry_id}: {finding}")
        seen[str(fields["jobId"])] = fields
    delays = {job.case: job.delay_seconds for job in manifest}
    for job_id, case in wanted.items():
        event = seen.get(job_id)
        if event is None:
            verdict.warn(f"{case}: no enqueued event")
        elif delays[case] and event.get("delayMs") is None:
            verdict.warn(f"{case}: its enqueued event has no delayMs")
    return verdict.result("each job has a canonical enqueued event")


def _recent_events(client: redis.Redis, space: KeySpace, wanted: dict[str, str]) -> list[tuple[str, bytes]]:
    """Event texts of the newest stream entries, read back until every wanted job's event was met."""
    out: list[tuple[str, bytes]] = []
    end, remaining = "+", set(wanted)
    while remaining and len(out) < _EVENTS_READ_AT_MOST:
        page = cast("list[tuple[Any, dict[Any, Any]]]", client.xrevrange(space.events(), end, "-", _EVENTS_PAGE))
        for entry_id, fields in page:
            raw = fields.get(b"event", fields.get("event"))
            if raw is not None:
                out.append((as_bytes(entry_id).decode(), as_bytes(raw)))
                remaining.discard(str((fields_of(as_bytes(raw)) or {}).get("jobId")))
        if len(page) < _EVENTS_PAGE:
            break
        end = f"({as_bytes(page[-1][0]).decode()}"
    return out


def _clean(client: redis.Redis, space: KeySpace, target: str, group: str) -> None:
    keys = [space.lane(target, lane) for lane in LANES_IN_POLL_ORDER]
    keys += [space.delayed(target, lane) for lane in LANES_IN_POLL_ORDER]
    pipe = client.pipeline(transaction=True)
    pipe.delete(*keys, space.group_pending(target, group))
    pipe.srem(space.group_active(target), group)
    pipe.srem(space.queue_index(), target)
    pipe.execute()
