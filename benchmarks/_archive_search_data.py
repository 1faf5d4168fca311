"""The archive search benchmark's data: a million jobs as the archiver leaves them, written in bulk.

Each job is built from its index alone (a random generator seeded by the index), so any job can
be rebuilt later to check that search finds it. Its row goes through the archiver's own code:
the payload is decoded and redacted by ``Decoder``, its name, ``data`` text and fields come from
there, and ``search_text`` is what ``merge`` would store. Rows are inserted into ``zenith_jobs``
(whose triggers or generated column keep the full-text index in step, as for the archiver) and
``zenith_job_fields``; lifecycle events are not written, since nothing that search reads holds them.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from zenith_archive import migrate
from zenith_archive._batch import upsert_meta
from zenith_archive._ingest import Decoder, search_text
from zenith_archive.fts import drop_fts
from zenith_archive.migrations import VERSION_TABLE
from zenith_archive.schema import State, archive_meta, job_fields, jobs, metadata

__all__ = ["COMMON_WORDS", "DAY_MS", "QUEUES", "Filled", "Job", "analyze", "fill", "job", "rare_word", "read_mark"]

MARK_KEY = "benchmark:archive_search"
"""``zenith_archive_meta`` key of an archive this benchmark filled (its size, seed and end time)."""
DAY_MS = 86_400_000
SPAN_MS = 90 * DAY_MS
BATCH = 10_000
QUEUES = (
    "emails", "billing", "invoices", "reports", "exports", "imports", "webhooks", "notifications", "thumbnails",
    "search-index", "payments", "refunds", "sms", "push", "analytics", "crm-sync", "cleanup", "audit", "onboarding",
    "digests",
)  # fmt: skip
_QUEUE_WEIGHTS = tuple(1 / (rank + 1) for rank in range(len(QUEUES)))
_VERBS = ("Send", "Build", "Sync", "Import", "Export", "Charge", "Refund", "Resize", "Notify", "Archive")
_NOUNS = ("Invoice", "Report", "User", "Order", "Image")
NAMES = tuple(verb + noun for verb in _VERBS for noun in _NOUNS)
_STATES = (State.COMPLETED, State.DEAD, State.DELETED, State.FAILED)
_STATE_WEIGHTS = (86, 8, 5, 1)
PLANS = ("free", "pro", "premium", "enterprise")
COUNTRIES = ("us", "de", "fr", "gb", "es", "it", "nl", "se", "pl", "br", "mx", "ca", "au", "jp", "in", "za", "ng")
COMMON_WORDS = ("premium", "enterprise", "timeout", "refused", "declined")
"""Free-text words many jobs hold: plan names (about a quarter of the jobs) and error words (1-3%)."""
_ERRORS = (
    "SMTP timeout after {n}s talking to mx{n}.{w}.example.net",
    "connection refused by {w}.internal:{n}",
    "ValueError: invalid order reference {w}-{n}",
    "HTTP 502 Bad Gateway from api.{w}.example.com",
    "deadlock detected while updating {w} rows",
    "KeyError: '{w}'",
    "card declined: {w} (code {n})",
    "TimeoutError: read timeout on {w} after {n} ms",
    "PermissionError: bucket {w} denies write",
    "upstream {w} returned malformed JSON at byte {n}",
    "rate limited by {w}: retry after {n}s",
    "IntegrityError: duplicate key {w}_{n}",
)
_SYLLABLES = tuple(c + v for c in "bdfgklmnprstvz" for v in "aeiou")
USERS = 200_000
RARE_WORDS = 5_000


def rare_word(index: int) -> str:
    """Word ``index`` of the vocabulary the errors draw from (each in about 1 job in 10,000 of a million)."""
    rng = random.Random(index * 7919 + 17)
    return "".join(rng.choice(_SYLLABLES) for _ in range(4)) + "x"


_VOCABULARY = tuple(rare_word(index) for index in range(RARE_WORDS))


@dataclass(frozen=True)
class Job:
    """One generated job: what the archiver would have stored, and what checks look for."""

    queue: str
    job_id: str
    name: str
    state: str
    updated_at: int
    email: str
    error: str | None
    error_words: tuple[str, ...]
    payload: str


@dataclass(frozen=True)
class Filled:
    """An archive this benchmark filled: how many jobs, from which seed, the newest update time."""

    jobs: int
    seed: int
    end_ms: int


def _error(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    words = (rng.choice(_VOCABULARY), rng.choice(_VOCABULARY))
    template = rng.choice(_ERRORS)
    return f"{template.format(w=words[0], n=rng.randrange(1, 10_000))}; context {words[1]}", words


def job(index: int, filled: Filled) -> Job:
    """Job ``index`` of the archive ``filled`` describes (the same every time)."""
    rng = random.Random(filled.seed * 1_000_003 + index)
    queue = rng.choices(QUEUES, _QUEUE_WEIGHTS)[0]
    state = rng.choices(_STATES, _STATE_WEIGHTS)[0]
    name = rng.choice(NAMES)
    updated_at = filled.end_ms - SPAN_MS + (SPAN_MS * index) // max(1, filled.jobs) + rng.randrange(60_000)
    user = rng.randrange(USERS)
    properties = {
        "email": f"user{user}@example.com",
        "userId": user,
        "orderId": f"ORD-{rng.randrange(10**8):08d}",
        "plan": rng.choice(PLANS),
        "country": rng.choice(COUNTRIES),
    }
    error: str | None = None
    words: tuple[str, ...] = ()
    if state in (State.DEAD, State.FAILED) or rng.random() < 0.1:  # a completed job may keep an attempt's error
        error, words = _error(rng)
    job_id = f"j{index:08d}"
    payload = {
        "id": job_id,
        "type": "json",
        "data": json.dumps({"job": name, "properties": properties}, separators=(",", ":")),
        "createdAt": updated_at - 5_000,
        "delaySeconds": 0,
        "attempts": 0,
        "maxAttempts": 3,
    }
    text_payload = json.dumps(payload, separators=(",", ":"))
    return Job(queue, job_id, name, state, updated_at, f"user{user}@example.com", error, words, text_payload)


def _rows(index: int, filled: Filled, decoder: Decoder) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    made = job(index, filled)
    stored = decoder._job(made.payload)
    if stored is None:  # pragma: no cover - the generated payloads are JSON objects
        raise RuntimeError(f"the archiver would not store job {made.job_id}")
    pk = index + 1
    final = made.state in (State.COMPLETED, State.DEAD, State.DELETED)
    row = {
        "id": pk,
        "queue": made.queue,
        "job_id": made.job_id,
        "name": stored.name,
        "state": made.state,
        "attempts": 3 if made.error else 1,
        "enqueued_at": made.updated_at - 5_000,
        "started_at": made.updated_at - 1_200,
        "finished_at": made.updated_at if final else None,
        "updated_at": made.updated_at,
        "duration_ms": 1_200.0,
        "worker_id": f"worker-{index % 16}",
        "error": made.error,
        "payload": stored.payload,
        "search_text": search_text(stored.name, made.error, stored.data_text),
        "last_stream_id": f"{made.updated_at}-0",
    }
    return row, [{"job_pk": pk, "key": key, "value_norm": value} for key, value in stored.fields]


def _batches(filled: Filled) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    decoder = Decoder()
    for start in range(0, filled.jobs, BATCH):
        job_rows: list[dict[str, Any]] = []
        field_rows: list[dict[str, Any]] = []
        for index in range(start, min(start + BATCH, filled.jobs)):
            row, fields = _rows(index, filled, decoder)
            job_rows.append(row)
            field_rows.extend(fields)
        yield job_rows, field_rows


def read_mark(engine: Engine) -> Filled | None:
    """What this benchmark filled the archive with, or None (not filled by it, or not migrated)."""
    with engine.connect() as connection:
        try:
            value = connection.execute(select(archive_meta.c.value).where(archive_meta.c.key == MARK_KEY)).scalar()
        except Exception:  # no archive tables yet
            return None
    if value is None:
        return None
    mark = json.loads(value)
    return Filled(int(mark["jobs"]), int(mark["seed"]), int(mark["endMs"]))


def _empty(engine: Engine) -> None:
    """Drop the archive's tables (only ever one this benchmark filled), so that migrate starts afresh."""
    with engine.begin() as connection:
        drop_fts(connection)
        metadata.drop_all(connection)
        connection.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))


def _holds_jobs(engine: Engine) -> bool:
    with engine.connect() as connection:
        first = connection.execute(select(jobs.c.id).limit(1)).first()
    return first is not None


def fill(engine: Engine, n: int, *, seed: int, progress: Callable[[str], None]) -> Filled:
    """Empty the archive (it must be empty or one this benchmark filled), migrate it, then write ``n`` jobs.

    Raises:
        RuntimeError: the archive holds jobs this benchmark did not write.
    """
    if read_mark(engine) is not None:
        _empty(engine)
    migrate(engine)
    if _holds_jobs(engine):
        raise RuntimeError("the archive holds jobs this benchmark did not write; pass the URL of an empty database")
    filled = Filled(n, seed, (int(time.time() * 1000) // DAY_MS) * DAY_MS)
    started = time.perf_counter()
    for done, (job_rows, field_rows) in enumerate(_batches(filled), start=1):
        with engine.begin() as connection:
            connection.execute(jobs.insert(), job_rows)
            connection.execute(job_fields.insert(), field_rows)
        if done % 10 == 0:
            progress(f"  {min(done * BATCH, n):,} jobs written ({time.perf_counter() - started:.0f} s)")
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # explicit ids leave the sequence behind
            connection.execute(text("SELECT setval(pg_get_serial_sequence('zenith_jobs', 'id'), :n)"), {"n": n})
        mark = {"jobs": n, "seed": seed, "endMs": filled.end_ms}
        upsert_meta(connection, MARK_KEY, json.dumps(mark))
    analyze(engine)
    progress(f"  filled in {time.perf_counter() - started:.0f} s")
    return filled


def analyze(engine: Engine) -> None:
    """Planner statistics as the servers gather them on their own after so many writes (autovacuum, InnoDB).

    SQLite gathers none by itself and the archive never runs ANALYZE there, so it is left without.
    """
    with engine.begin() as connection:
        dialect = connection.dialect.name
        if dialect == "sqlite":
            return
        if dialect == "postgresql":
            connection.execute(text("ANALYZE zenith_jobs"))
            connection.execute(text("ANALYZE zenith_job_fields"))
        else:
            connection.execute(text("ANALYZE TABLE zenith_jobs, zenith_job_fields"))


def say(message: str) -> None:
    """Progress on standard error (standard output holds the figures)."""
    print(message, file=sys.stderr, flush=True)
