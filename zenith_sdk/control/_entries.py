"""Where jobs sit: the states of a queue, the Redis keys that hold each, and one entry read from them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from zenith_protocol import LANES_IN_POLL_ORDER, JobPayload, KeySpace, ProtocolError, decode_job

__all__ = ["JobEntry", "JobState", "Source", "static_sources"]


class JobState(str, Enum):
    """Where a job sits in a queue."""

    WAITING = "waiting"
    """In a lane (critical, high, base, low): fetchable."""
    DELAYED = "delayed"
    """In a lane's delayed set, due later (a delayed push or a retry)."""
    FAILED = "failed"
    """In the dead-letter list."""
    GROUPED = "grouped"
    """Waiting behind an earlier job of its FIFO group, in the group's pending list."""
    ACTIVE = "active"
    """Fetched by a worker and not finished: in that worker's processing list."""


@dataclass(frozen=True)
class Source:
    """One Redis key that holds jobs of a queue in one state.

    ``lane`` names the lane of a waiting list or delayed set (``None``: the base lane), ``group``
    the FIFO group of a pending list, ``worker`` the worker of a processing list.
    """

    key: str
    kind: str
    """``list`` or ``zset``."""
    state: JobState
    lane: str | None = None
    group: str | None = None
    worker: str | None = None

    @property
    def oldest_at_head(self) -> bool:
        """A pending list is appended to (RPUSH); every other list is pushed at its head (LPUSH)."""
        return self.state is JobState.GROUPED


def static_sources(space: KeySpace, queue: str, state: JobState) -> list[Source]:
    """The keys of ``state`` that follow from the queue name alone (waiting, delayed, failed), in poll order."""
    if state is JobState.WAITING:
        return [Source(space.lane(queue, lane), "list", state, lane) for lane in LANES_IN_POLL_ORDER]
    if state is JobState.DELAYED:
        return [Source(space.delayed(queue, lane), "zset", state, lane) for lane in LANES_IN_POLL_ORDER]
    if state is JobState.FAILED:
        return [Source(space.failed(queue), "list", state)]
    raise ValueError(f"the keys of {state.value} jobs are found in Redis, not from the queue name")


@dataclass(frozen=True)
class JobEntry:
    """One entry of a queue: its exact bytes and, if they decode, the job; else why not.

    ``lane`` is the lane of a waiting or delayed job (``None``: the base lane), ``worker`` the
    worker running an active one, ``due_ms`` when a delayed one is due.
    """

    queue: str
    state: JobState
    raw: bytes
    job: JobPayload | None
    problem: ProtocolError | None = None
    due_ms: int | None = None
    lane: str | None = None
    worker: str | None = None

    @classmethod
    def read(
        cls, queue: str, state: JobState, raw: bytes | str, due_ms: int | None = None, *, source: Source | None = None
    ) -> JobEntry:
        """Decode ``raw``; an entry that does not decode is kept with its error, never raised.

        ``raw`` may come as text from a client that decodes replies; it is kept as UTF-8 bytes.
        """
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        lane = source.lane if source is not None else None
        worker = source.worker if source is not None else None
        try:
            return cls(queue, state, raw, decode_job(raw), due_ms=due_ms, lane=lane, worker=worker)
        except ProtocolError as exc:
            return cls(queue, state, raw, None, exc, due_ms, lane, worker)
