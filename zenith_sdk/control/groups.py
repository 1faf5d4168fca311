"""FIFO groups: where each group's jobs are, which groups are stuck, and letting a stuck group go on.

A group is held (in the group set) from the push of its first job until its last job is done,
and while it is held exactly one of its jobs is fetchable or running: in a lane, in a delayed
set as a retry, or in a worker's processing list. The others wait in its pending list. A group
is **stuck** when nothing of it can run although it is held or has jobs pending; nothing would
ever release it. Older versions of this package left such groups behind: their worker parked a
job whose group the Node producer had admitted, taking the held group for a running job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import cast

import redis

from zenith_protocol import EventType, KeySpace, ProtocolError, decode_job
from zenith_sdk._wire import text_of
from zenith_sdk.control._entries import JobState
from zenith_sdk.control._groupwalk import admitted_sources, walk_groups
from zenith_sdk.control.queues import _scan
from zenith_sdk.events import EventEmitter, job_event
from zenith_sdk.scripts import REPAIR_GROUP, scripts_for

__all__ = ["GroupRepair", "GroupStatus", "group_survey", "repair_groups", "stuck_groups"]


@dataclass(frozen=True)
class GroupStatus:
    """One FIFO group as a survey found it.

    ``scope`` is the queue whose keys hold the group in the cluster-safe layout (``None`` in the
    wire layout, where group keys are global). ``runnable`` lists where its fetchable or running
    jobs are (queue and state); ``dead`` the queues whose dead-letter lists hold jobs of it.
    """

    id: str
    scope: str | None
    held: bool
    pending: int
    head: bytes | None
    """The first pending job's bytes, as seen."""
    runnable: tuple[tuple[str, JobState], ...] = ()
    dead: tuple[str, ...] = ()

    @property
    def stuck(self) -> bool:
        """Nothing of the group can run, yet it is held or has jobs pending."""
        return not self.runnable and (self.held or self.pending > 0)

    @property
    def queue(self) -> str | None:
        """The queue the group's jobs belong to, when the survey can tell."""
        if self.scope is not None:
            return self.scope
        queues = sorted({queue for queue, _ in self.runnable}) or sorted(set(self.dead))
        return queues[0] if len(queues) == 1 else None


def group_survey(client: redis.Redis, keyspace: KeySpace | None = None) -> list[GroupStatus]:
    """Every FIFO group that is held or has jobs pending, with where its jobs are; by id. Only reads.

    Finding where the jobs are reads every lane, delayed set and processing list (group ids
    only cross the network) until each group has been seen, then, for the groups not seen, the
    dead-letter lists.
    """
    space = keyspace or KeySpace()
    found = _scan(client, space, attribute=False)
    queues = found.by_queue()
    pending = dict(found.pending)
    # In the wire layout the group keys are global: any queue name builds them ("_" here).
    scopes: list[str | None] = list(queues) if space.cluster_safe else [None]
    pipe = client.pipeline(transaction=False)
    for scope in scopes:
        pipe.smembers(space.group_active(scope or "_"))
    held = {(scope, text_of(member)) for scope, members in zip(scopes, pipe.execute()) for member in members}
    refs = sorted(held | set(pending), key=lambda ref: (ref[0] or "", ref[1]))
    if not refs:
        return []
    pipe = client.pipeline(transaction=False)
    for scope, group in refs:
        key = pending.get((scope, group)) or space.group_pending(scope or "_", group)
        pipe.llen(key)
        pipe.lindex(key, 0)
    replies = pipe.execute()
    statuses = {
        ref: GroupStatus(ref[1], ref[0], ref in held, int(replies[2 * n]), cast("bytes | None", replies[2 * n + 1]))
        for n, ref in enumerate(refs)
    }
    seen = walk_groups(client, space, admitted_sources(space, queues), statuses)
    unseen = [ref for ref in refs if ref not in seen]
    dead = {}
    if unseen:
        failed = [item for item in admitted_sources(space, queues, failed=True) if item.source.state is JobState.FAILED]
        dead = walk_groups(client, space, failed, unseen)
    return [
        replace(
            status,
            runnable=tuple(seen.get(ref, ())),
            dead=tuple(sorted({queue for queue, _ in dead.get(ref, ())})),
        )
        for ref, status in statuses.items()
    ]


def stuck_groups(client: redis.Redis, keyspace: KeySpace | None = None) -> list[GroupStatus]:
    """The groups stuck in two surveys in a row, unchanged between them (held, pending, first job).

    A job moves between lists while a survey reads them (a fetch, a retry, a completion that
    releases the next one), so one survey may miss a group's runnable job; a group moving on
    changes between the two.
    """
    first = {(status.scope, status.id): status for status in group_survey(client, keyspace=keyspace) if status.stuck}
    if not first:
        return []
    again = [status for status in group_survey(client, keyspace=keyspace) if status.stuck]
    return [
        status
        for status in again
        if (before := first.get((status.scope, status.id))) is not None
        and (before.held, before.pending, before.head) == (status.held, status.pending, status.head)
    ]


@dataclass(frozen=True)
class GroupRepair:
    """What :func:`repair_groups` did to one stuck group.

    ``outcome`` is ``released`` (its next pending job is fetchable in ``queue``), ``freed`` (it
    was held with nothing pending: no longer held), ``moved`` (it changed since it was seen
    stuck, so it is not stuck: nothing done) or ``no-queue`` (nothing tells which queue its
    pending jobs belong to: name it in ``queues``).
    """

    group: GroupStatus
    outcome: str
    queue: str | None = None
    job_id: str | None = None


def repair_groups(
    client: redis.Redis,
    keyspace: KeySpace | None = None,
    *,
    queues: Mapping[str, str] | None = None,
    actor: str,
    events: EventEmitter | None = None,
) -> list[GroupRepair]:
    """Let every stuck group go on: its next pending job becomes fetchable, or a held empty group is freed.

    A pending job goes to the queue the survey tells (that of the group's dead letters);
    ``queues`` maps a group id to its queue where it cannot tell (a job sent to the wrong queue
    would meet workers without its handler, so nothing is guessed). Each
    repair is one script that first checks the group is as it was seen, so a group that moved on
    meanwhile is left alone. Writes a ``recovered`` event for each released job.
    """
    space = keyspace or KeySpace()
    scripts = scripts_for(client)
    named = dict(queues or {})
    repairs = []
    for status in stuck_groups(client, keyspace=space):
        queue = status.queue or named.get(status.id)
        if status.pending and queue is None:
            repairs.append(GroupRepair(status, "no-queue"))
            continue
        scope = status.scope or queue or "_"
        keys = [space.group_active(scope), space.group_pending(scope, status.id)]
        if status.pending and queue is not None:
            keys += space.lanes_in_poll_order(queue)
        args = [status.id, "1" if status.held else "0", status.pending, status.head or b""]
        outcome = int(scripts.call(REPAIR_GROUP, keys, args))
        repairs.append(_repaired(status, outcome, queue))
    if events is not None:
        records = [
            job_event(EventType.RECOVERED, repair.queue, repair.job_id, actor=actor, count=1)
            for repair in repairs
            if repair.outcome == "released" and repair.queue is not None
        ]
        if records:
            events.emit(*records)
    return repairs


def _repaired(status: GroupStatus, outcome: int, queue: str | None) -> GroupRepair:
    if outcome < 0:
        return GroupRepair(status, "moved")
    if outcome == 0:
        return GroupRepair(status, "freed")
    try:
        job_id = decode_job(status.head or b"").id
    except ProtocolError:
        job_id = None
    return GroupRepair(status, "released", queue, job_id)
