"""The SQL archive: ingest rate, ingest while retention deletes old rows, and (archive_search.py) search.

Subcommands:

- ``ingest``: fills the events stream with ``--events`` lifecycle events (default 200,000) as the
  Python producer and worker write them (enqueued, started, completed, failed, retried,
  dead-lettered; five queues; payloads with a few properties), then times archivers draining it
  into a fresh SQLite file and into PostgreSQL: one archiver, then ``--processes`` archiver
  processes sharing the stream as ``zenith archive run --processes N`` runs them (default 1,2).
  The aim is 20,000 events/s on SQLite.
- ``cleanup``: an archive holding ``--rows`` old rows (default 1,000,000: jobs, their events and
  fields, bulk-inserted), then the ingest rate alone, then the ingest rate while ``cleanup()``
  deletes those rows in a thread (as a running archiver's automatic cleanup does). The aim is
  80% of the solo rate or more.
- ``search``: ``benchmarks/archive_search.py`` (its own options follow ``search``).
- ``all``: each of them with their defaults (search on SQLite, then on PostgreSQL's ``bench_search``).

    python benchmarks/archive.py ingest --redis redis://127.0.0.1:6379
    python benchmarks/archive.py cleanup --rows 200000

It uses one Redis database of its own (``--db``, default 12), refuses to run when that database
holds keys unless ``--flush`` is given, and empties it when done. The SQLite archive is a file
under /tmp, deleted afterwards; the PostgreSQL one a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from sqlalchemy.engine import Engine

from zenith_archive import connect
from zenith_archive.archiver import DEFAULT_BATCH, Archiver
from zenith_archive.retention import CleanupReport, RetentionPolicy, cleanup
from zenith_protocol import KeySpace

sys.path.insert(0, str(Path(__file__).resolve().parent))
_data = importlib.import_module("_archive_data")
client_on_db: Callable[..., redis.Redis] = importlib.import_module("bench_db").client_on_db

SPACE = KeySpace()
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_ingest"
SEARCH_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_search"
SQLITE_PATH = Path("/tmp/zenith-bench-archive.db")
INGEST_AIM = 20_000
CLEANUP_AIM = 0.8
OLD_AGE_DAYS = 60.0
RETENTION_DAYS = 30.0
REFILL = 50_000
"""Events added to the stream at a time while cleanup runs (the refill itself is not timed)."""


@dataclass
class Drained:
    """Events an archiver wrote and the seconds it took."""

    events: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


@dataclass
class Context:
    client: redis.Redis
    args: argparse.Namespace
    next_job: int = 0
    notes: list[str] = field(default_factory=list)

    def fill(self, count: int) -> None:
        """Append ``count`` fresh events (new jobs) to the stream."""
        now_ms = int(time.time() * 1000)
        self.next_job = _data.fill_stream(self.client, SPACE, count, first_job=self.next_job, now_ms=now_ms)


def archives(args: argparse.Namespace) -> Iterator[tuple[str, AbstractContextManager[Any]]]:
    """(name, context manager yielding a fresh engine or a reason to skip) for each database measured."""
    if args.sqlite:
        yield "sqlite", _data.sqlite_archive(Path(args.sqlite))
    if args.pg:
        yield "postgresql", _data.pg_archive(args.pg)


def drain(archiver: Archiver, *, until: Callable[[], bool] | None = None) -> Drained:
    """Run ``archiver`` until the stream is empty (or ``until()`` holds after a batch); timed."""
    done = Drained()
    started = time.perf_counter()
    while until is None or not until():
        result = archiver.run_once()
        if result.events + result.duplicates == 0:
            break
        done.events += result.events
    done.seconds = time.perf_counter() - started
    return done


def _archiver(ctx: Context, engine: Engine, group: str) -> Archiver:
    return Archiver(ctx.client, engine, keyspace=SPACE, group=group, consumer="bench", batch=ctx.args.batch)


# -- ingest -------------------------------------------------------------------------------------------------


def _drain_in_child(
    args: argparse.Namespace, url: str, group: str, consumer: str, ready: Any, results: Any
) -> None:  # pragma: no cover - runs in a child process
    """One archiver process: connects, waits for the others, drains the stream, reports what it wrote."""
    client = client_on_db(args.redis, args.db)
    engine = connect(url)
    archiver = Archiver(client, engine, keyspace=SPACE, group=group, consumer=consumer, batch=args.batch)
    ready.wait()
    results.put(drain(archiver).events)
    engine.dispose()


def drain_processes(ctx: Context, engine: Engine, group: str, processes: int) -> Drained:
    """``processes`` archiver processes of one group draining the stream together, timed from their common start."""
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Barrier(processes + 1)
    results = spawn.Queue()
    url = engine.url.render_as_string(hide_password=False)
    children = [
        spawn.Process(target=_drain_in_child, args=(ctx.args, url, group, f"bench-{index}", ready, results))
        for index in range(processes)
    ]
    for child in children:
        child.start()
    ready.wait()  # every child is connected: only archiving is timed
    started = time.perf_counter()
    events = sum(results.get() for _ in children)
    seconds = time.perf_counter() - started
    for child in children:
        child.join()
    return Drained(events, seconds)


def run_ingest(ctx: Context) -> list[tuple[str, int, Drained | str]]:
    count = int(ctx.args.events)
    started = time.perf_counter()
    ctx.fill(count)
    print(f"stream filled with {count:,} events in {time.perf_counter() - started:.1f} s", flush=True)
    results: list[tuple[str, int, Drained | str]] = []
    for name, processes, opener in (
        (name, processes, opener) for processes in ctx.args.processes for name, opener in archives(ctx.args)
    ):
        with opener as engine:
            if isinstance(engine, str):
                results.append((name, processes, engine))
                continue
            group = f"bench-{name}-{processes}"  # a new group reads the whole stream again
            if processes == 1:
                done = drain(_archiver(ctx, engine, group))
            else:
                done = drain_processes(ctx, engine, group, processes)
            stored = _data.count_rows(engine)["zenith_job_events"]
            if stored != count or done.events != count:
                ctx.notes.append(
                    f"WARNING {name}, {processes} processes: {done.events:,} written, {stored:,} stored, {count:,} sent"
                )
            results.append((name, processes, done))
            print(f"{name}, {processes} process(es): {done.events:,} events in {done.seconds:.2f} s", flush=True)
    return results


def report_ingest(results: list[tuple[str, int, Drained | str]], batch: int) -> None:
    print(f"\ningest (batch {batch})")
    print(f"{'database':<12}{'processes':>10}{'events':>10}{'seconds':>10}{'events/s':>11}{'vs 20,000/s':>13}")
    for name, processes, done in results:
        if isinstance(done, str):
            print(f"{name:<12}{processes:>10}  skipped: {done}")
            continue
        print(
            f"{name:<12}{processes:>10}{done.events:>10,}{done.seconds:>10.2f}{done.rate:>11,.0f}"
            f"{done.rate / INGEST_AIM:>12.2f}x"
        )


# -- cleanup ------------------------------------------------------------------------------------------------


@dataclass
class CleanupRun:
    old_rows: int
    solo: Drained
    during: Drained
    cleanup_s: float
    deleted: int


def _during_cleanup(ctx: Context, engine: Engine, archiver: Archiver, now_ms: int) -> tuple[Drained, float]:
    """Ingest while ``cleanup()`` runs in a thread; counts only ingest time and only while cleanup runs."""
    reports: list[CleanupReport] = []
    failures: list[BaseException] = []

    def delete_old() -> None:
        try:
            reports.append(cleanup(engine, RetentionPolicy(default_days=RETENTION_DAYS), now_ms=now_ms))
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    thread = threading.Thread(target=delete_old, daemon=True)
    ctx.fill(REFILL)
    during = Drained()
    started = time.perf_counter()
    thread.start()
    while thread.is_alive():
        part = drain(archiver, until=lambda: not thread.is_alive())
        during.events += part.events
        during.seconds += part.seconds
        if thread.is_alive():
            ctx.fill(REFILL)  # not timed: ingest only counts while it runs
    cleanup_s = time.perf_counter() - started
    if failures:
        raise failures[0]
    drain(archiver)  # what is left, untimed
    return during, cleanup_s


def run_cleanup_one(ctx: Context, engine: Engine) -> CleanupRun:
    ctx.client.flushdb()  # the stream of the previous database's run is not this one's
    now_ms = int(time.time() * 1000)
    started = time.perf_counter()
    old = _data.fill_old_rows(engine, int(ctx.args.rows), now_ms=now_ms, age_days=OLD_AGE_DAYS)
    print(f"  {old:,} old rows inserted in {time.perf_counter() - started:.1f} s", flush=True)
    archiver = _archiver(ctx, engine, f"cleanup-{ctx.next_job}")
    ctx.fill(int(ctx.args.events))
    solo = drain(archiver)
    print(f"  solo: {solo.events:,} events in {solo.seconds:.2f} s", flush=True)
    during, cleanup_s = _during_cleanup(ctx, engine, archiver, now_ms)
    return CleanupRun(old, solo, during, cleanup_s, old - _data.count_old_rows(engine))


def run_cleanup(ctx: Context) -> list[tuple[str, CleanupRun | str]]:
    results: list[tuple[str, CleanupRun | str]] = []
    for name, opener in archives(ctx.args):
        print(f"{name}:", flush=True)
        with opener as engine:
            results.append((name, engine if isinstance(engine, str) else run_cleanup_one(ctx, engine)))
    return results


def report_cleanup(results: list[tuple[str, CleanupRun | str]]) -> None:
    print("\ningest while cleanup deletes old rows")
    head = f"{'database':<12}{'old rows':>10}{'solo ev/s':>11}{'during ev/s':>13}{'ratio':>8}{'cleanup s':>11}"
    print(f"{head}{'deleted':>10}")
    for name, run in results:
        if isinstance(run, str):
            print(f"{name:<12}skipped: {run}")
            continue
        ratio = run.during.rate / run.solo.rate if run.solo.rate else 0.0
        verdict = "ok" if ratio >= CLEANUP_AIM else "BELOW 80%"
        print(
            f"{name:<12}{run.old_rows:>10,}{run.solo.rate:>11,.0f}{run.during.rate:>13,.0f}"
            f"{ratio:>7.0%} {run.cleanup_s:>10.1f}{run.deleted:>10,}  {verdict}"
        )


# -- entry --------------------------------------------------------------------------------------------------


def run_search(argv: list[str]) -> int:
    """``archive_search.main(argv)``, or a note when that benchmark is not in this checkout."""
    try:
        module = importlib.import_module("archive_search")
    except ModuleNotFoundError as exc:
        if exc.name != "archive_search":
            raise
        print("search: benchmarks/archive_search.py is not in this checkout; nothing to run", file=sys.stderr)
        return 2
    result: int = module.main(argv)
    return result


def _counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("give process counts such as 1,2")
    return counts


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("ingest", "cleanup", "search", "all"))
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--db", type=int, default=12, help="a database of its own (default 12)")
    parser.add_argument("--flush", action="store_true", help="empty the database first even if it holds keys")
    parser.add_argument("--pg", default=PG_URL, help="PostgreSQL URL ('' to skip); a schema of its own is used")
    parser.add_argument("--sqlite", default=str(SQLITE_PATH), help="SQLite file (replaced, then deleted; '' to skip)")
    parser.add_argument("--events", type=int, help="events to ingest (ingest: 200,000; cleanup: 100,000 solo)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="old rows for cleanup (default 1,000,000)")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="archiver batch size")
    parser.add_argument(
        "--processes", type=_counts, default=[1, 2], help="ingest: archiver process counts to time (default 1,2)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["search"]:
        return run_search(argv[1:])
    args = _parser().parse_args(argv)
    if args.events is not None and args.events < 1 or args.rows < 4:
        print("--events must be positive and --rows at least 4", file=sys.stderr)
        return 2
    client = client_on_db(args.redis, args.db)
    if client.dbsize() and not args.flush:
        print(f"database {args.db} holds keys; pass --flush to empty it or --db to pick another", file=sys.stderr)
        return 2
    client.flushdb()
    ctx = Context(client, args)
    events = args.events
    try:
        if args.command in ("ingest", "all"):
            ctx.args.events = events or 200_000
            report_ingest(run_ingest(ctx), args.batch)
            client.flushdb()
        if args.command in ("cleanup", "all"):
            ctx.args.events = events or 100_000
            report_cleanup(run_cleanup(ctx))
    finally:
        client.flushdb()
        client.close()
    for note in ctx.notes:
        print(note)
    if args.command == "all":
        # Search over a million jobs on SQLite, then on PostgreSQL (a database of its own, filled once).
        failed = run_search([])
        return failed or (run_search(["--db", SEARCH_PG_URL]) if args.pg else 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
