"""Jobs chosen by id: read a state page by page, pick the entries here, move them with the pick script.

Redis only spends time on the entries picked (the pick script checks each is still there, byte
for byte, and moves it atomically), not on the ones around them, and on them as little as it
can: their bytes for a retry and their events' ids and names are computed here, so the script
decodes nothing. The next page is matched here while Redis moves the current page's picks. A
pick the list moved out of reach meanwhile (workers popping, another operator's bulk operation)
is looked for again in a later pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import hiredis
import redis
from redis.client import NEVER_DECODE
from redis.connection import AbstractConnection

from zenith_protocol import LANES_IN_POLL_ORDER, lane_for
from zenith_protocol._json import loads
from zenith_sdk._wire import storable
from zenith_sdk.control._entries import JobState, Source
from zenith_sdk.control._job_events import JobEvents, job_slot
from zenith_sdk.control._retry import retried
from zenith_sdk.scripts import PICK, Scripts

PAGE = 10_000
"""Entries read per LRANGE/ZRANGE."""

FIRST_PAGE = 1000
"""Entries of a walk's first read: nothing runs in Redis while it is matched, so it is kept short."""

PASSES = 3
"""Walks over a source at most: the first, then again for picks that could not be found."""

CALL_BYTES = 1 << 20
"""Most payload bytes (as read, and retried) one pick call carries: Redis reads each of them in the
script, so a call of large payloads moves fewer jobs and stays short."""

_LEADING_ID = re.compile(rb'\{"id":"([^"\\]*)"')
"""The id a payload starts with, when written without escapes (most are): such an entry is decoded
only when its id is wanted."""
_DECODER = json.JSONDecoder()


class Match(NamedTuple):
    """A picked entry, with what the pick script needs to move it."""

    position: int
    """Its position counted from the oldest end (1 = the oldest) when read; 0 when not known."""
    raw: bytes
    retried: bytes
    """Its bytes for a retry when computed here (:func:`~zenith_sdk.control._retry.retried`), else b""."""
    lane: int
    """The lane its priority names (see :func:`route`)."""
    group: str
    """Its FIFO group ("" for none)."""
    slot: bytes
    """Its id and name as its event carries them (:func:`job_slot`), else b"" (the script reads them)."""

    @classmethod
    def of(cls, position: int, raw: bytes, job: dict[str, Any] | None, *, retry: bool, events: bool) -> Match:
        """The match of ``raw``, decoded as ``job`` (None: it does not decode here); ``retry``: compute
        its retried bytes; ``events``: its event's id and name."""
        if job is None:
            return cls(position, raw, b"", 0, "", b"")
        bytes_retried = (retried(raw, job) or b"") if retry else b""
        return cls(position, raw, bytes_retried, *route(job), job_slot(job) if events else b"")


LANE_NUMBERS = {lane: number for number, lane in enumerate(LANES_IN_POLL_ORDER, start=1)}
"""The number of each lane in the scripts' KEYS order (critical, high, base, low: 1..4)."""


def route(job: dict[str, Any]) -> tuple[int, str]:
    """The lane a decoded job's priority names (its number; 0 when it names none) and its FIFO group."""
    group = job.get("groupId")
    lane = lane_for(job.get("priority"))
    return (LANE_NUMBERS[lane] if lane else 0), storable(group) if isinstance(group, str) else ""


def matches_of(raws: Sequence[bytes], *, retry: bool, events: bool) -> list[Match]:
    """Matches for entries known by their bytes only (their positions are found by reading again)."""
    return [Match.of(0, raw, decode_object(raw), retry=retry, events=events) for raw in raws]


def batched(picks: list[Match], most: int, most_bytes: int) -> list[list[Match]]:
    """``picks`` in order, cut into calls of at most ``most`` picks and ``most_bytes`` payload bytes
    (a single pick larger than that has a call of its own)."""
    batches: list[list[Match]] = []
    batch: list[Match] = []
    size = 0
    for pick in picks:
        weight = len(pick.raw) + len(pick.retried)
        if batch and (len(batch) == most or size + weight > most_bytes):
            batches.append(batch)
            batch, size = [], 0
        batch.append(pick)
        size += weight
    if batch:
        batches.append(batch)
    return batches


def _read_command(source: str, kind: str, offset: int, size: int) -> tuple[Any, ...]:
    if kind == "list":
        return ("LRANGE", source, -(offset + size), -(offset + 1))
    return ("ZRANGE", source, offset, offset + size - 1)


def _oldest_first(reply: list[bytes], kind: str) -> list[bytes]:
    # A list's window comes newest first (LRANGE reads towards the tail); a zset's soonest first.
    return reply[::-1] if kind == "list" else reply


def read_chunk(client: redis.Redis, source: str, kind: str, offset: int, size: int) -> list[bytes]:
    """Entries ``offset + 1 .. offset + size`` of ``source`` counted from its oldest end, oldest first, as bytes."""
    command = _read_command(source, kind, offset, size)
    return _oldest_first(client.execute_command(*command, **{NEVER_DECODE: True}), kind)  # type: ignore[no-untyped-call]


def first_match(client: redis.Redis, source: str, kind: str, matcher: Matcher) -> bytes | None:
    """The oldest entry of ``source`` that ``matcher`` picks, reading page by page until it is found."""
    offset = 0
    while True:
        page = read_chunk(client, source, kind, offset, PAGE)
        found = matcher(page, offset)
        if found:
            return found[0][1]
        if len(page) < PAGE:
            return None
        offset += len(page)


@dataclass(frozen=True)
class GroupKeys:
    """What a walk does to the FIFO groups of the jobs it moves, and the keys it needs for that.

    ``action`` is ``admit`` (a retried dead letter waits behind its group when the group is held),
    ``release`` (a deleted fetchable job lets the next job of its group go) or "" (nothing).
    """

    action: str
    active: str
    pending: Callable[[str], str]
    """The pending list of a group, by group id."""


def fallback_lane(source: Source) -> int:
    """Where a job whose priority names no lane goes when it leaves ``source``: a delayed set's own
    lane (a Node writer puts the lane in the key, not in the job), else the base list."""
    return LANE_NUMBERS[source.lane if source.state is JobState.DELAYED else None]


class Matcher(Protocol):
    """Picks the entries of one page."""

    def __call__(self, page: Sequence[bytes], offset: int) -> list[Match]: ...


def decode_object(raw: bytes) -> dict[str, Any] | None:
    """``raw`` decoded, if it is a JSON object; else None."""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return None
    try:
        job, end = _DECODER.raw_decode(text)  # faster than json.loads, which also strips whitespace
        if end != len(text) and text[end:].strip():
            return None
    except RecursionError:  # nested deeper than any reader must accept (PROTOCOL.md 2.1)
        return None
    except ValueError:  # leading whitespace, which loads allows
        try:
            job = loads(text)
        except ValueError:
            return None
    return job if isinstance(job, dict) else None


class IdMatcher:
    """Picks the entries that are jobs with one of the given ids.

    Most payloads start with their id, so that is read without decoding; an entry whose id is
    wanted is then decoded to make sure it is a JSON object with that id (an entry that does not
    decode never matches). Other entries are decoded to find their id. Each match carries its
    retried bytes with ``retry`` and its event's id and name with ``events`` (see :class:`Match`).
    """

    def __init__(self, ids: set[str], *, retry: bool, events: bool = False) -> None:
        self.ids = ids
        self.retry = retry
        self.events = events
        self._encoded = {job_id.encode() for job_id in ids}

    def __call__(self, page: Sequence[bytes], offset: int) -> list[Match]:
        encoded, ids, leading_id = self._encoded, self.ids, _LEADING_ID.match
        found: list[Match] = []
        for index, raw in enumerate(page):
            leading = leading_id(raw)
            if leading is not None and leading[1] not in encoded:
                continue
            job = decode_object(raw)
            if job is not None and job.get("id") in ids:
                found.append(Match.of(offset + index + 1, raw, job, retry=self.retry, events=self.events))
        return found


class Exactly:
    """Picks the given entries again (matched before, then not found), each as often as listed."""

    def __init__(self, matches: list[Match]) -> None:
        self.wanted: dict[bytes, list[Match]] = {}  # raw -> each copy
        for match in matches:
            self.wanted.setdefault(match.raw, []).append(match)

    def unseen(self) -> int:
        """How many of the entries were not seen (they are gone)."""
        return sum(len(copies) for copies in self.wanted.values())

    def __call__(self, page: Sequence[bytes], offset: int) -> list[Match]:
        found: list[Match] = []
        for index, raw in enumerate(page):
            left = self.wanted.get(raw)
            if left:
                found.append(left.pop()._replace(position=offset + index + 1))
        return found


@dataclass
class PickWalk:
    """One bulk operation by ids over the sources of one state.

    A dry run only reads: its matcher picks what would move (a filter applied here), and no
    script is called.
    """

    client: redis.Redis
    scripts: Scripts
    lanes: Sequence[str]
    """The queue's lanes, critical, high, base, low: where retried and promoted jobs go."""
    groups: GroupKeys
    mode: str
    """What the pick script does: ``retry``, ``promote`` or ``delete``."""
    dry_run: bool
    tombstone: str
    filter_wire: str
    """The filter the picks must also match, as the scripts read it ("" for none)."""
    chunk: int
    limit: int | None
    """Most jobs to move (None: no limit)."""
    on_page: Callable[[int, list[bytes]], None]
    """Called with entries looked at and matches found, for the first pass over each source."""
    events: JobEvents
    moved: int = 0
    lost: int = 0
    """Matches that could not be found again, not even in a later pass: they had left the state."""
    missing: list[Match] = field(default_factory=list)
    """Picks of the current pass that the pick script did not find."""

    def run(self, source: Source, matcher: Matcher, *, counted: bool = True) -> None:
        """Walk ``source`` from its oldest entry; then walk again for what could not be found.

        ``counted``: report the first walk's entries and matches through ``on_page`` (not for
        entries already counted, such as the grouped matches a filter walk left to this one).
        """
        self._walk(source, matcher, first=counted)
        for _ in range(PASSES - 1):
            if not self.missing:
                break
            again = Exactly(self.missing)
            self.missing = []
            self._walk(source, again, first=False)
            self.lost += again.unseen()
        self.lost += len(self.missing)
        self.missing = []

    def limit_reached(self) -> bool:
        return self.limit is not None and self.moved >= self.limit

    def _walk(self, source: Source, matcher: Matcher, *, first: bool) -> None:
        connection = self.client.connection_pool.get_connection()
        try:
            _Round(self, connection, source, matcher, first).run()
        except BaseException:
            # A reply may still be unread on this connection: never hand it back to the pool.
            connection.disconnect()  # type: ignore[no-untyped-call]
            raise
        finally:
            self.client.connection_pool.release(connection)


@dataclass
class _Round:
    """The round trips of one walk over one source, on a connection of their own.

    Each round trip reads the next page (on its own: Redis writes no reply while a script runs),
    sends the first pick call for the current page, and matches the new page while Redis runs it;
    the page's other calls follow one by one. Positions stay exact: the new page was read before
    the calls ran, and every entry they remove sits nearer the oldest end than it, so its picks'
    positions (and the offset of the page after it) shift down by exactly the number moved; a
    call's picks shift down by the number its page's earlier calls moved.
    """

    walk: PickWalk
    connection: AbstractConnection
    where: Source
    matcher: Matcher
    first: bool

    @property
    def source(self) -> str:
        return self.where.key

    @property
    def kind(self) -> str:
        return self.where.kind

    def run(self) -> None:
        offset, asked = 0, min(FIRST_PAGE, PAGE)
        page = self._round_trip(0, asked, [])
        while page is not None:
            picks, size, moved_before = page
            if self.walk.dry_run:
                picks = []
            next_offset = offset - moved_before + size
            more = size == asked and not self.walk.limit_reached()
            if not more and not picks:
                return
            asked = PAGE
            page = self._round_trip(next_offset if more else None, asked, picks, moved_before)
            offset = next_offset

    def _round_trip(
        self, read_at: int | None, size: int, picks: list[Match], shift: int = 0
    ) -> tuple[list[Match], int, int] | None:
        """Read ``size`` entries at ``read_at`` (if any), then move ``picks``, matching that page meanwhile.

        ``shift``: how far the picks' positions moved down since their page was read. Returns the
        page's matches and size, and how many entries the pick calls moved.
        """
        if read_at is not None:
            self._command(*_read_command(self.source, self.kind, read_at, size))
        batches = batched(picks, self.walk.chunk, CALL_BYTES)
        # Built while Redis runs the read, sent together as soon as the read is answered: each
        # call's picks shifted as if the calls before it moved all of theirs (a pick shifted
        # otherwise is found near where it was looked for). With a limit, only the first: how
        # many the next may move depends on what it moved.
        together = batches if self.walk.limit is None else batches[:1]
        sent: list[tuple[Any, ...]] = []
        carried = 0
        for batch in together:
            call = self._call(batch, shift + carried)
            if call is None:
                break  # the limit is reached
            sent.append(call)
            carried += len(batch)
        packed = [hiredis.pack_command(call) for call in sent]
        entries = None
        if read_at is not None:
            entries = _oldest_first(self._read(), self.kind)
        if packed:
            self.connection.send_packed_command(packed)  # type: ignore[no-untyped-call]
        matches = None if entries is None else self._matched(entries, read_at or 0)
        replies = self.walk.scripts.replies(self.connection, PICK, sent)
        moved = sum(self._settle(batch, reply) for batch, reply in zip(together, replies))
        for batch in batches[len(sent) :] if len(sent) == len(together) else ():
            call = self._call(batch, shift + moved)
            if call is None:
                break  # the limit is reached: the picks left are counted, not moved
            self.connection.send_packed_command([hiredis.pack_command(call)])  # type: ignore[no-untyped-call]
            moved += self._settle(batch, self.walk.scripts.reply(self.connection, PICK, call))
        return None if entries is None or matches is None else (matches, len(entries), moved)

    def _call(self, picks: list[Match], shift: int) -> tuple[Any, ...] | None:
        """The pick call for ``picks`` (moved down by ``shift``); None when the limit allows no more moves."""
        walk = self.walk
        budget = 0 if walk.limit is None else walk.limit - walk.moved
        if walk.limit is not None and budget <= 0:
            return None
        action = walk.groups.action
        groups = sorted({pick.group for pick in picks if pick.group}) if action else []
        numbers = {group: number for number, group in enumerate(groups, start=1)}
        args: list[Any] = [walk.mode, self.kind, walk.tombstone, walk.filter_wire, budget, action]
        args += [*walk.events.args(), len(groups), *groups]
        fallback = fallback_lane(self.where)
        for pick in picks:
            where = [pick.raw, pick.retried, pick.lane or fallback, numbers.get(pick.group, 0), pick.slot]
            args += [pick.position - shift, *where] if self.kind == "list" else where
        keys = [self.source, *walk.lanes, walk.groups.active, *(walk.groups.pending(group) for group in groups)]
        return PICK.command([*keys, *walk.events.keys()], args)

    def _read(self) -> Any:
        # Raw bytes, whether or not the client decodes replies: entries are compared byte for byte.
        return self.connection.read_response(disable_decoding=True)

    def _command(self, *args: Any) -> None:
        self.connection.send_command(*args)  # type: ignore[no-untyped-call]

    def _matched(self, page: list[bytes], offset: int) -> list[Match]:
        matches = self.matcher(page, offset)
        if self.first:
            # With a filter, the pick calls tell which matches it keeps (see _settle).
            self.walk.on_page(len(page), [] if self.walk.filter_wire else [match.raw for match in matches])
        return matches

    def _settle(self, picks: list[Match], reply: Any) -> int:
        """Record what one pick call moved, could not find and turned down; returns the moved count."""
        walk = self.walk
        moved, missing, refused = int(reply[0]), int(reply[1]), int(reply[2])
        walk.moved += moved
        walk.missing += [picks[int(number) - 1] for number in reply[3 : 3 + missing]]
        if self.first and walk.filter_wire:
            turned_down = {int(number) - 1 for number in reply[3 + missing : 3 + missing + refused]}
            walk.on_page(0, [pick.raw for index, pick in enumerate(picks) if index not in turned_down])
        walk.events.append(reply[3 + missing + refused :])
        return moved
