"""Live search: stream the jobs that match a query, across every job of every state of every queue.

The old console read only the first 100 jobs of each list (WIRE_FACTS section 8), so a job deeper
in a long list was never found. This search walks each list and delayed set to its end, one
bounded call of the read-only match script per chunk, so the matching runs inside Redis and only
matches cross the network (a Redis user that may not run scripts gets the same matches from plain
reads of each chunk). It stops as soon as ``limit`` matches have been yielded: no Redis call is
made after the last one.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass

import redis

from zenith_protocol import KeySpace
from zenith_sdk.control._entries import JobEntry, JobState, Source
from zenith_sdk.control._matching import JobFilter, match_chunk
from zenith_sdk.control._sources import state_sources
from zenith_sdk.control.queues import discover_queues, require_queue

__all__ = ["DEFAULT_SEARCH_STATES", "search"]

DEFAULT_SEARCH_STATES = (JobState.WAITING, JobState.GROUPED, JobState.DELAYED, JobState.FAILED, JobState.ACTIVE)


def search(
    client: redis.Redis,
    query: str,
    *,
    keyspace: KeySpace | None = None,
    queues: Iterable[str] | None = None,
    states: Iterable[JobState] = DEFAULT_SEARCH_STATES,
    limit: int = 20,
    chunk: int = 500,
) -> Iterator[JobEntry]:
    """Stream up to ``limit`` jobs matching ``query``, oldest first, queue by queue, state by state.

    ``field:value`` matches a job property equal to ``value``; any other text matches a substring
    of the raw payload, which covers the job id, the job name and the payload text. Waiting and
    delayed cover every priority lane, in poll order; grouped covers the jobs waiting behind their
    FIFO group, active those running on a worker. An entry that does not decode never raises: it is yielded
    with ``job`` None (and ``problem`` set) only if its raw text contains the searched text (the
    query, or the value of a ``field:value`` query). Entries that are not JSON at all never match.
    Arguments and queues are checked at the call; Redis is then read lazily, chunk by chunk.

    Args:
        queues: the queues to search, in order (default: every discovered queue, by name).
        states: the states to search, in order.
        chunk: entries looked at per call (each call is atomic and bounded).

    Raises:
        NotFoundError: a queue listed in ``queues`` does not exist.
        ValueError: an empty query, or a limit or chunk below 1.
    """
    if not query:
        raise ValueError("the search query is empty")
    if limit < 1 or chunk < 1:
        raise ValueError(f"limit and chunk must be at least 1, got {limit} and {chunk}")
    space = keyspace or KeySpace()
    job_filter = JobFilter.from_query(query)
    if queues is None:
        names = list(discover_queues(client, keyspace=space))
    else:
        names = list(dict.fromkeys(queues))
        for name in names:
            require_queue(client, name, keyspace=space)
    walk = _Search(
        client=client,
        space=space,
        job_filter=job_filter,
        needle=(job_filter.text or job_filter.value or query).encode(),
        chunk=chunk,
        left=limit,
    )
    return walk.entries(names, tuple(JobState(state) for state in states))


@dataclass
class _Search:
    """One search's settings and how many results it still wants."""

    client: redis.Redis
    space: KeySpace
    job_filter: JobFilter
    needle: bytes
    chunk: int
    left: int

    def entries(self, queues: list[str], states: tuple[JobState, ...]) -> Iterator[JobEntry]:
        """Every match, source key by source key, until ``left`` reaches 0."""
        for queue in queues:
            for state in states:
                for source in state_sources(self.client, self.space, queue, state):
                    yield from self._walk(queue, source)
                    if self.left <= 0:
                        return

    def _walk(self, queue: str, source: Source) -> Iterator[JobEntry]:
        """Walk ``source`` from its oldest entry to its end, one chunk per call."""
        offset = 0
        while self.left > 0:
            looked_at = yield from self._chunk(queue, source, offset)
            if looked_at < self.chunk:
                return
            offset += looked_at

    def _chunk(self, queue: str, source: Source, offset: int) -> Generator[JobEntry, None, int]:
        """The matches of one chunk; returns how many entries the chunk looked at.

        A call returns at most ``sample`` matches, so it asks for just the results still
        wanted. Should some of them be dropped (undecodable without the searched text), the same
        chunk is asked again for more, skipping the matches already seen.
        """
        seen = 0
        while True:
            found = match_chunk(self.client, source, offset, self.chunk, self.job_filter, seen + self.left)
            looked_at, matched = found.looked_at, found.matched
            fresh = found.sample[seen:]
            for raw in fresh:
                entry = JobEntry.read(queue, source.state, raw, source=source)
                if entry.job is None and self.needle not in entry.raw:
                    continue
                self.left -= 1
                yield entry
                if self.left <= 0:
                    return looked_at
            seen += len(fresh)
            if not fresh or seen >= matched:
                return looked_at
