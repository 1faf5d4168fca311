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
from zenith_protocol.errors import UnsupportedQueryError
from zenith_protocol.query import AnyOf, Field, Query, Term, Text, parse
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

    ``query`` is written in the grammar of :mod:`zenith_sdk.query`: free text matches a substring
    of the raw payload (case-sensitive), which covers the job id, the job name and the payload
    text; ``field:value`` a job property equal to ``value``; ``name:``, ``error:``, ``id:``,
    ``after:``/``before:`` (failedAt, else createdAt), ``-`` and ``OR`` as :meth:`JobFilter.from_query`
    says; ``queue:`` and ``state:`` choose the keys read. Waiting and delayed cover every priority
    lane, in poll order; grouped covers the jobs waiting behind their FIFO group, active those
    running on a worker. An entry that does not decode never raises: it is yielded with ``job``
    None (and ``problem`` set) only if its raw text contains the searched text (the words and
    values the query asks for). Entries that are not JSON at all never match. Arguments and
    queues are checked at the call; Redis is then read lazily, chunk by chunk.

    Args:
        queues: the queues to search, in order (default: every discovered queue, by name).
        states: the states to search, in order.
        chunk: entries looked at per call (each call is atomic and bounded).

    Raises:
        NotFoundError: a queue listed in ``queues`` does not exist.
        QuerySyntaxError: the query does not parse.
        UnsupportedQueryError: ``state:`` names a state Redis does not hold (completed jobs are in the archive).
        ValueError: an empty query, or a limit or chunk below 1.
    """
    if limit < 1 or chunk < 1:
        raise ValueError(f"limit and chunk must be at least 1, got {limit} and {chunk}")
    parsed = parse(query)
    if not parsed.clauses:
        raise ValueError("the search query is empty")
    _check_states(parsed)
    space = keyspace or KeySpace()
    if queues is None:
        names = list(discover_queues(client, keyspace=space))
    else:
        names = list(dict.fromkeys(queues))
        for name in names:
            require_queue(client, name, keyspace=space)
    walk = _Search(client=client, space=space, query=parsed, chunk=chunk, left=limit)
    return walk.entries(names, tuple(JobState(state) for state in states))


def _check_states(query: Query) -> None:
    live = [state.value for state in JobState]
    for term in query.terms():
        if isinstance(term, Field) and term.key == "state" and term.value not in live:
            raise UnsupportedQueryError(
                str(term),
                f"live search sees the states {', '.join(live)}; finished jobs are in the archive "
                "(zenith archive search)",
            )


def _mentioned(term: Term, raw: bytes) -> bool:
    """Whether ``raw`` holds the text or value ``term`` asks for (a negated term or a time asks for none)."""
    if term.negated or not isinstance(term, (Text, Field)):
        return True
    return term.value.encode() in raw


def _mentions(query: Query, raw: bytes) -> bool:
    """Whether ``raw`` holds what every clause of ``query`` asks for, as text."""
    for clause in query.clauses:
        terms = clause.terms if isinstance(clause, AnyOf) else (clause,)
        if not any(_mentioned(term, raw) for term in terms):
            return False
    return True


@dataclass
class _Search:
    """One search's settings and how many results it still wants."""

    client: redis.Redis
    space: KeySpace
    query: Query
    chunk: int
    left: int
    job_filter: JobFilter = JobFilter()
    rest: Query = Query()

    def entries(self, queues: list[str], states: tuple[JobState, ...]) -> Iterator[JobEntry]:
        """Every match, source key by source key, until ``left`` reaches 0."""
        for queue in queues:
            for state in states:
                rest = self.query.bind({"queue": queue, "state": state.value})
                if rest is None:
                    continue  # queue: or state: rule this key out: it is not read at all
                self.rest, self.job_filter = rest, JobFilter.from_query(rest)
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
                if entry.job is None and not _mentions(self.rest, entry.raw):
                    continue
                self.left -= 1
                yield entry
                if self.left <= 0:
                    return looked_at
            seen += len(fresh)
            if not fresh or seen >= matched:
                return looked_at
