"""Archive search over a million archived jobs: the indexed queries beside a ``LIKE`` scan of the same data.

Each kind of query runs K times (a different value each time) through the public API, as
``zenith archive search`` and ``zenith archive jobs`` call it, and the same question is then
answered by a scan:

- full text, a rare word (about 90 jobs) and a common one (1% to 25% of the jobs):
  ``search(engine, word)`` and ``count(engine, word)`` beside
  ``name ILIKE '%word%' OR error ILIKE '%word%' OR payload ILIKE '%word%'`` (same order, limit and cap);
- a property, ``email:user42@example.com`` (about 5 jobs): ``search``/``count`` beside ``payload ILIKE '%value%'``;
- a listing, one queue and state over 7 days, first page of 50: ``jobs(engine, queue=, state=, since_ms=,
  until_ms=)`` beside the same filter written so no index serves it
  (``lower(queue) = :queue AND lower(state) = :state AND updated_at + 0`` in the window, ordered by
  ``updated_at + 0``).

Counts stop at the archive's cap (``10,000+``) on both sides. ``ILIKE`` is ``lower(x) LIKE lower(y)``
on SQLite and MySQL/MariaDB.

    python benchmarks/archive_search.py                               # SQLite file under /tmp, 1,000,000 jobs
    python benchmarks/archive_search.py --reuse --queries 50          # keep the jobs of an earlier run
    python benchmarks/archive_search.py --db postgresql+psycopg://postgres@127.0.0.1:5432/bench_search
    python benchmarks/archive_search.py --db mysql+pymysql://root@127.0.0.1:3306/bench_search --jobs 100000

Filling writes the archive's own tables in bulk (see ``_archive_search_data``); it refuses a database
holding jobs it did not write, and replaces the jobs of an earlier run unless ``--reuse`` keeps them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.engine import Engine

from zenith_archive import COUNT_CAP, connect, count, jobs, migrate, search
from zenith_archive.schema import State
from zenith_archive.schema import jobs as table

# The benchmarks are scripts, not a package mypy follows by name: their helpers load by path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
_data: Any = importlib.import_module("_archive_search_data")

DEFAULT_DB = "sqlite:////tmp/zenith_bench_archive_search.db"
PAGE = 50
_COLUMNS = (table.c.id, table.c.queue, table.c.job_id, table.c.name, table.c.state, table.c.updated_at, table.c.error)


@dataclass(frozen=True)
class Row:
    """One line of the results: a query kind, its indexed and LIKE timings (ms) and what it matched."""

    kind: str
    example: str
    matched: str
    indexed_p50_ms: float
    indexed_p95_ms: float
    like_p50_ms: float
    like_p95_ms: float

    @property
    def ratio(self) -> float:
        """How many times slower the scan is (p50 over p50)."""
        return self.like_p50_ms / self.indexed_p50_ms if self.indexed_p50_ms else float("inf")


def _percentiles(samples: Sequence[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return samples[0], samples[0]
    return statistics.median(samples), statistics.quantiles(samples, n=20, method="inclusive")[18]


Found = tuple[int, bool]
"""What a query found: how many rows (or the count), and whether the count reached the cap."""


def _time(run: Callable[[Any], Found], values: Sequence[Any]) -> tuple[list[float], list[Found]]:
    """Milliseconds of ``run(value)`` for each value, and what each found."""
    elapsed: list[float] = []
    results: list[Found] = []
    for value in values:
        started = time.perf_counter()
        results.append(run(value))
        elapsed.append((time.perf_counter() - started) * 1000)
    return elapsed, results


def _found(results: Sequence[Found]) -> str:
    """``min-max`` of what the queries found (``+``: the count reached the cap)."""
    low, high = min(results), max(results)
    texts = [f"{n:,}{'+' if capped else ''}" for n, capped in (low, high)]
    return texts[0] if low == high else f"{texts[0]}-{texts[1]}"


def _row(kind: str, values: Sequence[Any], indexed: Callable[[Any], Found], scan: Callable[[Any], Found]) -> Row:
    indexed(values[0])  # one untimed query: the connection pool and statement caches warm up
    fast, found = _time(indexed, values)
    slow, _ = _time(scan, values)
    return Row(kind, str(values[0]), _found(found), *_percentiles(fast), *_percentiles(slow))


def _like_page(engine: Engine, where: ColumnElement[bool]) -> Found:
    statement = select(*_COLUMNS).where(where).order_by(table.c.id.desc()).limit(PAGE + 1)
    with engine.connect() as connection:
        return min(PAGE, len(connection.execute(statement).all())), False


def _like_count(engine: Engine, where: ColumnElement[bool]) -> Found:
    matching = select(table.c.id).where(where).limit(COUNT_CAP + 1).subquery()
    with engine.connect() as connection:
        n = int(connection.execute(select(func.count()).select_from(matching)).scalar_one())
    return min(n, COUNT_CAP), n > COUNT_CAP


def _search_page(engine: Engine, query: str) -> Found:
    return len(search(engine, query, limit=PAGE).rows), False


def _count(engine: Engine, query: str) -> Found:
    found = count(engine, query)
    return found.n, found.capped


def _text_like(word: str) -> ColumnElement[bool]:
    return or_(*(column.icontains(word, autoescape=True) for column in (table.c.name, table.c.error, table.c.payload)))


def _query_rows(engine: Engine, kind: str, queries: Sequence[str], likes: Sequence[ColumnElement[bool]]) -> list[Row]:
    """The page and the count of ``queries`` beside the scans ``likes`` (one per query)."""
    scans = dict(zip(queries, likes, strict=True))
    return [
        _row(
            f"{kind}: page of {PAGE}",
            queries,
            lambda q: _search_page(engine, q),
            lambda q: _like_page(engine, scans[q]),
        ),
        _row(f"{kind}: count", queries, lambda q: _count(engine, q), lambda q: _like_count(engine, scans[q])),
    ]


def _listing_row(engine: Engine, filled: Any, rng: random.Random, k: int) -> Row:
    windows = []
    for _ in range(k):
        since = filled.end_ms - rng.randrange(7, 90) * _data.DAY_MS
        windows.append(
            (rng.choice(_data.QUEUES), rng.choice((State.COMPLETED, State.DEAD)), since, since + 7 * _data.DAY_MS)
        )

    def indexed(window: tuple[str, str, int, int]) -> Found:
        queue, state, since, until = window
        return len(jobs(engine, queue=queue, state=state, since_ms=since, until_ms=until, limit=PAGE).rows), False

    def scan(window: tuple[str, str, int, int]) -> Found:
        queue, state, since, until = window
        moment = table.c.updated_at + 0
        statement = (
            select(*_COLUMNS)
            .where(func.lower(table.c.queue) == queue, func.lower(table.c.state) == state)
            .where(moment >= since, moment < until)
            .order_by(moment.desc(), table.c.id.desc())
            .limit(PAGE + 1)
        )
        with engine.connect() as connection:
            return min(PAGE, len(connection.execute(statement).all())), False

    return _row(f"listing queue+state+7 days: page of {PAGE}", windows, indexed, scan)


def measure(engine: Engine, filled: Any, k: int, *, seed: int) -> list[Row]:
    """Every kind of query, K times each, indexed and by scan."""
    rng = random.Random(seed)
    rare = [_data.rare_word(rng.randrange(_data.RARE_WORDS)) for _ in range(k)]
    common = [_data.COMMON_WORDS[index % len(_data.COMMON_WORDS)] for index in range(k)]
    emails = [f"user{rng.randrange(_data.USERS)}@example.com" for _ in range(k)]
    rows = _query_rows(engine, "full text, rare word", rare, [_text_like(word) for word in rare])
    rows += _query_rows(engine, "full text, common word", common, [_text_like(word) for word in common])
    field_queries = [f"email:{email}" for email in emails]
    rows += _query_rows(engine, "email:value", field_queries, [table.c.payload.icontains(e) for e in emails])
    rows.append(_listing_row(engine, filled, rng, k))
    return rows


def check(engine: Engine, filled: Any) -> None:
    """Search finds a few known jobs by each way the benchmark asks (raises RuntimeError when it does not)."""
    for index in sorted({0, filled.jobs // 3, filled.jobs // 2, filled.jobs - 1}):
        made = _data.job(index, filled)
        queries = [f"email:{made.email} id:{made.job_id}", f"{made.name} id:{made.job_id}"]
        queries += [f"{word} id:{made.job_id}" for word in made.error_words]
        for query in queries:
            if [row.job_id for row in search(engine, query).rows] != [made.job_id]:
                raise RuntimeError(f"search {query!r} does not find job {made.job_id}: the archive is not as filled")
        moment = made.updated_at
        listed = jobs(engine, queue=made.queue, state=made.state, since_ms=moment, until_ms=moment + 1)
        if made.job_id not in [row.job_id for row in listed.rows]:
            raise RuntimeError(f"jobs() does not list job {made.job_id}: the archive is not as filled")


def _print(rows: Sequence[Row], url: str, filled: Any, k: int) -> None:
    print(f"{url}: {filled.jobs:,} jobs, {k} queries per kind (ms)")
    header = f"{'query':<42} {'matched':<22} {'p50':>8} {'p95':>8} {'LIKE p50':>9} {'LIKE p95':>9} {'LIKE/idx':>9}"
    print(header)
    print(f"{'':<42} {'(rows or count)':<22}")
    for row in rows:
        print(
            f"{row.kind:<42} {row.matched:<22} {row.indexed_p50_ms:>8.2f} {row.indexed_p95_ms:>8.2f} "
            f"{row.like_p50_ms:>9.1f} {row.like_p95_ms:>9.1f} {row.ratio:>8.0f}x"
        )


def _archive(engine: Engine, n: int, *, reuse: bool, seed: int) -> Any:
    filled = _data.read_mark(engine)
    if reuse and filled is not None and filled.jobs == n:
        _data.say(f"reusing the {n:,} jobs already archived")
        if migrate(engine).changed:  # a newer revision may change what the planner knows
            _data.analyze(engine)
        return filled
    _data.say(f"filling the archive with {n:,} jobs")
    return _data.fill(engine, n, seed=seed, progress=_data.say)


def main(argv: list[str] | None = None) -> int:
    """Fill (or reuse) the archive, check it, time every kind of query and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=DEFAULT_DB, help=f"the archive's URL (default {DEFAULT_DB})")
    parser.add_argument("--jobs", type=int, default=1_000_000, help="archived jobs (default 1,000,000)")
    parser.add_argument("--queries", type=int, default=20, help="queries of each kind, each side (default 20)")
    parser.add_argument("--reuse", action="store_true", help="keep the jobs an earlier run of the same size wrote")
    parser.add_argument("--seed", type=int, default=1, help="the data's and the queries' random seed")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.queries < 1:
        parser.error("--jobs and --queries must be at least 1")
    engine = connect(args.db)
    try:
        filled = _archive(engine, args.jobs, reuse=args.reuse, seed=args.seed)
        check(engine, filled)
        rows = measure(engine, filled, args.queries, seed=args.seed)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    url = engine.url.render_as_string(hide_password=True)
    if args.json:
        figures = [{**asdict(row), "ratio": round(row.ratio, 1)} for row in rows]
        print(json.dumps({"db": url, "jobs": filled.jobs, "queries": args.queries, "rows": figures}, indent=2))
    else:
        _print(rows, url, filled, args.queries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
