"""Checks of how a worker takes jobs: lane order, delayed promotion, pauses, FIFO groups, retries (13.5)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.client import Pipeline

from zenith_protocol import LANES_IN_POLL_ORDER
from zenith_sdk.conformance._check import Check, changed_members, check_dead_letter
from zenith_sdk.conformance._plan import DELAY_MS, TOLERANCE_MS
from zenith_sdk.conformance._report import fields_of
from zenith_sdk.conformance._run import Snapshot, as_bytes

__all__ = ["DelayedCheck", "GroupsCheck", "LanesCheck", "PausedCheck", "RetryCheck"]

_PUSH_ORDER = ("low", None, "high", "critical")
_DUE_PAST = 1


def _lane_name(lane: str | None) -> str:
    return lane or "base"


class LanesCheck(Check):
    name, title, sections = "lanes", "Lane poll order", ("4.4",)
    passed = "jobs ran critical, high, base, low, each lane oldest first"

    def start(self, now_ms: int) -> None:
        space, queue = self.plan.keyspace, self.plan.lanes
        pipe = self.run.client.pipeline(transaction=True)
        pipe.set(space.paused(queue), "1")
        for lane in _PUSH_ORDER:
            for n in (1, 2):
                pipe.lpush(space.lane(queue, lane), self.plan.failing(f"lane-{_lane_name(lane)}-{n}", now_ms))
        pipe.execute()
        self.expected = [
            self.plan.job_id(f"lane-{_lane_name(lane)}-{n}") for lane in LANES_IN_POLL_ORDER for n in (1, 2)
        ]
        # A blocking fetch that began before the pause may take one job now (4.6): leave it out.
        pipe = self.run.client.pipeline(transaction=True)
        for lane in LANES_IN_POLL_ORDER:
            pipe.lrange(space.lane(queue, lane), 0, -1)
        pipe.delete(space.paused(queue))
        *lanes, _ = pipe.execute()
        waiting = {self.run.job_id(as_bytes(raw)) for entries in lanes for raw in entries}
        self.early = [job_id for job_id in self.expected if job_id not in waiting]
        self.ran: list[str] = []

    def observe(self, snap: Snapshot) -> None:
        ids = (self.run.job_id(raw) for raw in reversed(snap.failed[self.plan.lanes]))
        self.ran = [job_id for job_id in ids if job_id in self.expected]
        self.done = len(set(self.ran)) == len(self.expected)

    def conclude(self, snap: Snapshot) -> None:
        for raw in snap.failed[self.plan.lanes]:
            self.run.wrote("job", raw, f"{self.plan.keyspace.failed(self.plan.lanes)}", created=False)
        missing = [self.label(job_id) for job_id in self.expected if job_id not in self.ran]
        if missing:
            self.verdict.fail(f"never dead-lettered (did they run?): {', '.join(missing)}")
        order = [self.label(job_id) for job_id in self.ran if job_id not in self.early]
        expected = [self.label(job_id) for job_id in self.expected if job_id in self.ran and job_id not in self.early]
        if order != expected:
            self.verdict.fail(f"ran in the order {', '.join(order)}; poll order gives {', '.join(expected)}")


class DelayedCheck(Check):
    name, title, sections = "delayed", "Delayed promotion", ("4.5",)
    passed = "delayed jobs stayed in their set until due and ran from the lane of their set"

    def setup(self, pipe: Pipeline, now_ms: int) -> None:
        # With the low lane paused, a job promoted by its priority (low) instead of its set never runs.
        pipe.set(self.plan.keyspace.paused(self.plan.jobs, "low"), "1")

    def start(self, now_ms: int) -> None:
        space, queue = self.plan.keyspace, self.plan.jobs
        due = self.run.server_ms() + DELAY_MS
        self.members = {
            self.plan.job_id("delayed-base"): (None, due),
            self.plan.job_id("delayed-critical"): ("critical", due),
        }
        pipe = self.run.client.pipeline(transaction=True)
        for job_id, (lane, _due) in self.members.items():
            case = self.label(job_id)
            priority = "low" if lane else None  # promotion goes by the set, not by the priority
            raw = self.plan.failing(case, now_ms, delay_seconds=DELAY_MS / 1000, priority=priority)
            pipe.zadd(space.delayed(queue, lane), {raw: due})
        pipe.execute()
        self.gone: dict[str, int] = {}

    def observe(self, snap: Snapshot) -> None:
        for job_id, (lane, due) in self.members.items():
            present = any(self.run.job_id(raw) == job_id for raw, _ in snap.delayed[lane])
            if not present and job_id not in self.gone:
                self.gone[job_id] = snap.ms
                if snap.ms < due - TOLERANCE_MS:
                    key = self.plan.keyspace.delayed(self.plan.jobs, lane)
                    self.verdict.fail(f"{self.label(job_id)} left {key} {due - snap.ms} ms before it was due")
        failed = snap.failed[self.plan.jobs]
        self.done = all(self.run.find(failed, job_id) for job_id in self.members)

    def conclude(self, snap: Snapshot) -> None:
        space = self.plan.keyspace
        for job_id, (lane, _due) in self.members.items():
            found = self.run.find(snap.failed[self.plan.jobs], job_id)
            if found is None:
                hint = ""
                if lane and self.run.find(snap.lanes["low"], job_id):
                    hint = f": it went to {space.lane(self.plan.jobs, 'low')} (its priority), not to {lane}"
                self.verdict.fail(f"{self.label(job_id)} never ran{hint}")
                continue
            attempts = (fields_of(found[1]) or {}).get("attempts")
            if attempts != 1:
                self.verdict.fail(f"{self.label(job_id)} dead-lettered with attempts {attempts!r}, expected 1")


class PausedCheck(Check):
    name, title, sections = "paused", "Paused queues and lanes release nothing", ("4.8", "4.5")
    passed = "nothing left a paused queue or lane, delayed sets included"
    watches = False

    def setup(self, pipe: Pipeline, now_ms: int) -> None:
        space, plan = self.plan.keyspace, self.plan
        self.placed: list[tuple[str, bool, bytes]] = []
        pipe.set(space.paused(plan.paused), "1")
        pipe.set(space.paused(plan.jobs, "low"), "1")
        for case, key, delayed in (
            ("paused-base", space.lane(plan.paused, None), False),
            ("paused-critical", space.lane(plan.paused, "critical"), False),
            ("paused-delayed", space.delayed(plan.paused, None), True),
            ("paused-high-delayed", space.delayed(plan.paused, "high"), True),
            ("paused-lane", space.lane(plan.jobs, "low"), False),
            ("paused-lane-delayed", space.delayed(plan.jobs, "low"), True),
        ):
            raw = plan.failing(case, now_ms)
            self.placed.append((key, delayed, raw))
            if delayed:
                pipe.zadd(key, {raw: _DUE_PAST})
            else:
                pipe.lpush(key, raw)

    def conclude(self, snap: Snapshot) -> None:
        pipe = self.run.client.pipeline(transaction=True)
        for key, delayed, raw in self.placed:
            if delayed:
                pipe.zscore(key, raw)
            else:
                pipe.lpos(key, raw)  # type: ignore[arg-type]
        for (key, _delayed, raw), where in zip(self.placed, pipe.execute()):
            if where is None:
                self.verdict.fail(f"{self.label(self.run.job_id(raw) or '?')} left {key} while it was paused")


class GroupsCheck(Check):
    name, title, sections = "groups", "Group FIFO (admitted at push)", ("4.10",)
    passed = "the group's jobs ran one at a time in push order; a retry kept the group, the last job freed it"

    def start(self, now_ms: int) -> None:
        plan, space = self.plan, self.plan.keyspace
        group = plan.group
        self.ids = [plan.job_id(f"group-{n}") for n in (1, 2, 3)]
        pipe = self.run.client.pipeline(transaction=True)
        pipe.sadd(space.group_active(plan.jobs), group)
        pipe.lpush(space.lane(plan.jobs, None), plan.succeeding("group-1", now_ms, group_id=group))
        pending = space.group_pending(plan.jobs, group)
        pipe.rpush(pending, plan.failing("group-2", now_ms, group_id=group, max_attempts=2))
        pipe.rpush(pending, plan.failing("group-3", now_ms, group_id=group))
        pipe.execute()
        self.freed_during_retry = False

    def observe(self, snap: Snapshot) -> None:
        retry = self.run.find_delayed(snap, self.ids[1])
        if retry is not None:
            self.run.wrote("job", retry[1], self.plan.keyspace.delayed(self.plan.jobs, retry[0]), created=False)
            if not snap.group_held and not self.freed_during_retry:
                self.freed_during_retry = True
                self.verdict.fail("the group was freed while group-2 waited for its retry (a retry keeps the group)")
        last = self.run.find(snap.failed[self.plan.jobs], self.ids[2])
        self.done = last is not None and not snap.group_held and snap.group_pending == 0

    def conclude(self, snap: Snapshot) -> None:
        failed = snap.failed[self.plan.jobs]
        if self.run.find(failed, self.ids[0]):
            self.verdict.fail("group-1 (conformance.succeed) was dead-lettered")
        second, third = self.run.find(failed, self.ids[1]), self.run.find(failed, self.ids[2])
        for job_id, found, attempts in ((self.ids[1], second, 2), (self.ids[2], third, 1)):
            if found is None:
                self.verdict.fail(f"{self.label(job_id)} never ran to its dead letter")
            elif (fields_of(found[1]) or {}).get("attempts") != attempts:
                self.verdict.fail(f"{self.label(job_id)} dead-lettered with attempts other than {attempts}")
        if second and third and third[0] > second[0]:
            self.verdict.fail("group-3 was dead-lettered before group-2: it ran before group-2 was done")
        if snap.group_held or snap.group_pending:
            self.verdict.fail(
                f"after its last job the group is {'still held' if snap.group_held else 'free'} with "
                f"{snap.group_pending} pending (it is freed when its last job is done)"
            )


@dataclass
class _Retry:
    lane: str | None
    raw: bytes
    score: int
    after_ms: int
    before_ms: int


class RetryCheck(Check):
    name, title, sections = "retry", "Retries: backoff, lane and payload", ("4.3",)
    passed = "retried after 2 s then 4 s from its lane's delayed set, then dead-lettered, members kept"

    def start(self, now_ms: int) -> None:
        self.id = self.plan.job_id("retry")
        raw = self.plan.failing("retry", now_ms, max_attempts=3, priority="high")
        self.pushed = raw[:-1] + b',"conformanceNote":"kept as written"}'
        self.run.client.lpush(self.plan.keyspace.lane(self.plan.jobs, "high"), self.pushed)
        self.retries: dict[object, _Retry] = {}
        self.waiting: _Retry | None = None
        self.dead: bytes | None = None

    def observe(self, snap: Snapshot) -> None:
        found = self.run.find_delayed(snap, self.id)
        if self.waiting is not None and (found is None or found[1] != self.waiting.raw):
            if snap.ms < self.waiting.score - TOLERANCE_MS:
                early = self.waiting.score - snap.ms
                self.verdict.fail(f"the retry left its delayed set {early} ms before its score")
            self.waiting = None
        if found is not None:
            lane, raw, score = found
            # Not there at the previous read (or another version was): written since.
            self.waiting = _Retry(lane, raw, score, snap.previous_ms, snap.ms)
            attempts = (fields_of(raw) or {}).get("attempts")
            if attempts not in self.retries:
                self.retries[attempts] = self.waiting
                self.run.wrote("job", raw, self.plan.keyspace.delayed(self.plan.jobs, lane), created=False)
                if len(self.retries) >= 2:
                    self.run.milestones.add("retried twice")
        dead = self.run.find(snap.failed[self.plan.jobs], self.id)
        if dead is not None:
            self.dead, self.done = dead[1], True
            self.run.milestones.add("retried twice")

    def conclude(self, snap: Snapshot) -> None:
        space, message = self.plan.keyspace, self.plan.message("retry")
        for attempts, delay_s in ((1, 2), (2, 4)):
            retry = self.retries.pop(attempts, None)
            if retry is None:
                self.verdict.fail(f"after attempt {attempts} the job never waited in a delayed set")
                continue
            what = f"retry after attempt {attempts}"
            if retry.lane != "high":
                expected = space.delayed(self.plan.jobs, "high")
                where = space.delayed(self.plan.jobs, retry.lane)
                self.verdict.fail(f"{what} waited in {where}, not in {expected} (the lane it was fetched from)")
            self._payload(what, retry.raw, attempts, delay_s)
            low, high = retry.after_ms + delay_s * 1000, retry.before_ms + delay_s * 1000
            if not low - TOLERANCE_MS <= retry.score <= high + TOLERANCE_MS:
                self.verdict.fail(
                    f"{what} is due {retry.score - retry.before_ms} to {retry.score - retry.after_ms} ms after it was "
                    f"written, expected {delay_s * 1000} ms (±{TOLERANCE_MS})"
                )
        for other in self.retries:
            self.verdict.fail(f"a retry with attempts {other!r} waited in a delayed set (maxAttempts is 3)")
        if self.dead is None:
            self.verdict.fail("the job was not dead-lettered after attempt 3")
            return
        self.run.wrote("job", self.dead, space.failed(self.plan.jobs), created=False)
        check_dead_letter(
            self.verdict, "after attempt 3", self.dead, self.pushed, attempts=3, error=message, also={"delaySeconds"}
        )
        if (fields_of(self.dead) or {}).get("delaySeconds") != 4:
            self.verdict.fail("the dead letter does not keep delaySeconds 4 from the last retry")

    def _payload(self, what: str, raw: bytes, attempts: int, delay_s: int) -> None:
        got, pushed = fields_of(raw) or {}, fields_of(self.pushed) or {}
        if got.get("delaySeconds") != delay_s:
            self.verdict.fail(f"{what} has delaySeconds {got.get('delaySeconds')!r}, expected {delay_s}")
        error = got.get("error")
        if not isinstance(error, str) or self.plan.message("retry") not in error:
            self.verdict.fail(f"{what} has error {error!r}, expected the failure message")
        for change in changed_members(pushed, got, {"attempts", "delaySeconds", "error"}):
            self.verdict.fail(f"{what}: {change} (every other member is kept as read)")
