"""Control-plane operations, side by side on one Redis: the existing Node console's algorithms vs Zenith's.

The "old" side re-implements, command for command, how the existing console performs each
operation (WIRE_FACTS section 8); the "ours" side calls zenith_sdk.control. Cases:

1. bulk retry of 10,000 selected jobs out of 100,000 failed (old: one pipeline of LREM + LPUSH per job);
2. retry-all of 100,000 failed (old: RPOP, parse, reset, LPUSH, one round trip per command, 10,000 per call);
3. listing 10,000 queues (old: SCAN COUNT 100, at most 1,000 calls, then 5 counts per queue, 10 queues in flight);
4. searching 100 queues x 1,000 failed jobs, limit 20 (old: reads jobs 0..99 of each list only).

During our bulk cases the Redis slow log (threshold 1 ms) records our longest single script call.
Our bulk cases record lifecycle events as the CLI does (an event per job moved, and the operator's
summary); ``--no-events`` leaves them out. The old console wrote none.

    python benchmarks/control_ops.py            # about 2 minutes on a small machine
    python benchmarks/control_ops.py --scale 0.1
    python benchmarks/control_ops.py --shape object   # dead letters whose data is a JSON object
    python benchmarks/control_ops.py --repeat 3       # the bulk cases three times, median times shown

It uses one Redis database of its own (``--db``, default 14), refuses to run when that database
holds keys unless ``--flush`` is given, empties it between cases and when done, and temporarily
changes the server's slow-log settings (restored afterwards).
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import redis

from zenith_protocol import KeySpace
from zenith_sdk.control import BulkAction, JobState, bulk, queue_snapshots
from zenith_sdk.events import EventEmitter

# The payload builders the tests use, so the data is byte for byte what the Node system writes.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
_wire_data = importlib.import_module("wire_data")
dead_letter_job: Callable[..., str] = _wire_data.dead_letter_job
node_job: Callable[..., str] = _wire_data.node_job
sys.path.insert(0, str(Path(__file__).resolve().parent))
bench_db = importlib.import_module("bench_db")
client_on_db: Callable[..., redis.Redis] = bench_db.client_on_db

SPACE = KeySpace()
PREFIX = SPACE.queue_prefix
SEED_CHUNK = 10_000
OLD_SCAN_COUNT = 100
OLD_SCAN_CALLS = 1000
OLD_RETRY_ALL_CAP = 10_000
OLD_IN_FLIGHT = 10
OLD_SEARCH_WINDOW = 100
OLD_NOT_QUEUES = {"active", "schedules", "schedule", "lock"}
SEARCH_LIMIT = 20
NEEDLE = "acct-needle-7781"
BASE_MS = 1_700_000_000_000
ACTOR = "bench"
CLIENT_NAME = "zenith-bench-control-ops"
"""Every connection of this benchmark carries this name, so the slow log tells our calls from other clients'."""


@dataclass
class Row:
    case: str
    old_s: float | None
    ours_s: float | None
    notes: list[str] = field(default_factory=list)


@dataclass
class SlowestScript:
    """The longest script call the slow log saw during our runs (microseconds; 0: none over the threshold)."""

    micros: int = 0
    command: str = ""
    over_threshold: int = 0

    def merge(self, other: SlowestScript) -> None:
        self.over_threshold += other.over_threshold
        if other.micros > self.micros:
            self.micros, self.command = other.micros, other.command

    def describe(self) -> str:
        if not self.micros:
            return "ours: no script call over 1 ms"
        return f"ours: longest script call {self.micros / 1000:.1f} ms, {self.over_threshold} over 1 ms"


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def job_ids(count: int, rng: random.Random) -> list[str]:
    """Ids shaped like the Node producer's (``<ms>-<7 base36 chars>``), unique."""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return [f"{BASE_MS + i}-{''.join(rng.choices(alphabet, k=7))}" for i in range(count)]


def seed_list(client: redis.Redis, key: str, raws: Sequence[str]) -> None:
    """LPUSH ``raws`` in order (so the last one ends at the head), SEED_CHUNK values per command."""
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(raws), SEED_CHUNK):
        pipe.lpush(key, *raws[start : start + SEED_CHUNK])
    pipe.execute()


# -- the old console's algorithms (WIRE_FACTS section 8) ----------------------------------------------


def old_bulk_retry(client: redis.Redis, queue: str, raws: Sequence[str]) -> None:
    """One non-transactional pipeline of LREM failed 1 <raw> then LPUSH queue <raw> per selected job."""
    pipe = client.pipeline(transaction=False)
    for raw in raws:
        pipe.lrem(SPACE.failed(queue), 1, raw)
        pipe.lpush(SPACE.queue(queue), raw)
    pipe.execute()


def old_retry_all_call(client: redis.Redis, queue: str) -> int:
    """One "retry all failed" call: up to 10,000 x (RPOP, parse, reset, LPUSH), a round trip per command."""
    moved = 0
    for _ in range(OLD_RETRY_ALL_CAP):
        raw = cast("bytes | None", client.rpop(SPACE.failed(queue)))
        if raw is None:
            break
        job = json.loads(raw)
        job["attempts"] = 0
        job.pop("error", None)
        job.pop("failedAt", None)
        client.lpush(SPACE.queue(queue), json.dumps(job, separators=(",", ":"), ensure_ascii=False))
        moved += 1
    return moved


def old_discover(client: redis.Redis) -> tuple[list[str], int]:
    """SCAN MATCH queue:* COUNT 100, giving up after 1,000 calls; the segment after the prefix is the name."""
    names: set[str] = set()
    cursor = 0
    calls = 0
    while True:
        cursor, keys = client.scan(cursor=cursor, match=f"{PREFIX}*", count=OLD_SCAN_COUNT)
        calls += 1
        for key in keys:
            name = _text(key)[len(PREFIX) :].split(":", 1)[0]
            if name and name not in OLD_NOT_QUEUES:
                names.add(name)
        if cursor == 0 or calls >= OLD_SCAN_CALLS:
            break
    return sorted(names), calls


OLD_COUNT_STEPS: list[Callable[[Any, str], Any]] = [
    lambda p, q: p.llen(SPACE.queue(q)),
    lambda p, q: p.zcard(SPACE.delayed(q)),
    lambda p, q: p.llen(SPACE.failed(q)),
    lambda p, q: p.scard(SPACE.active_set(q)),
    lambda p, q: p.get(SPACE.paused(q)),
]


def old_list_queues(client: redis.Redis) -> tuple[list[dict[str, Any]], int]:
    """Discovery, then per queue LLEN, ZCARD, LLEN, SCARD, GET one after another, ten queues in flight.

    Ten in flight is modelled as the Node client on one connection does it: each of the five
    sequential steps of ten queues goes out together (a pipeline of ten), so five round trips
    per ten queues. This is the most favourable reading for the old console.
    """
    names, calls = old_discover(client)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(names), OLD_IN_FLIGHT):
        batch = names[start : start + OLD_IN_FLIGHT]
        columns: list[list[Any]] = []
        for step in OLD_COUNT_STEPS:
            pipe = client.pipeline(transaction=False)
            for queue in batch:
                step(pipe, queue)
            columns.append(pipe.execute())
        for i, queue in enumerate(batch):
            waiting, delayed, failed, active, paused = (column[i] for column in columns)
            counts = {"waiting": waiting, "delayed": delayed, "failed": failed, "active": active}
            rows.append({"name": queue, **counts, "paused": paused == b"1"})
    return rows, calls


def old_search(client: redis.Redis, query: str, limit: int) -> list[str]:
    """Per queue and state, read jobs 0..99; match the query in the id, the name or the JSON; stop at the limit."""
    names, _ = old_discover(client)
    found: list[str] = []
    for queue in names:
        for state in ("waiting", "delayed", "failed"):
            if state == "waiting":
                raws = cast("list[bytes]", client.lrange(SPACE.queue(queue), 0, OLD_SEARCH_WINDOW - 1))
            elif state == "delayed":
                raws = cast("list[bytes]", client.zrange(SPACE.delayed(queue), 0, OLD_SEARCH_WINDOW - 1))
            else:
                raws = cast("list[bytes]", client.lrange(SPACE.failed(queue), 0, OLD_SEARCH_WINDOW - 1))
            for raw in raws:
                text = _text(raw)
                job = json.loads(text)
                data = json.loads(job.get("data") or "{}")
                name = str(data.get("job") or data.get("class") or job.get("className") or "")
                if query in str(job.get("id", "")) or query in name or query in text:
                    found.append(str(job.get("id")))
                    if len(found) >= limit:
                        return found
    return found


# -- the slow log around our runs ----------------------------------------------------------------------


@contextmanager
def slow_log(client: redis.Redis, into: SlowestScript) -> Iterator[None]:
    """Log every command over 1 ms while the block runs; keep our longest script call; restore the settings.

    The slow log is server-wide, so entries of other clients (told apart by CLIENT_NAME) are ignored.
    """
    previous = cast("dict[str, str]", client.config_get("slowlog-*"))
    try:
        client.config_set("slowlog-log-slower-than", 1000)
        client.config_set("slowlog-max-len", 100_000)
        client.slowlog_reset()
        yield
        for entry in client.slowlog_get(100_000):
            if _text(entry.get("client_name") or b"") != CLIENT_NAME:
                continue
            command = _text(entry["command"]).split(" ", 1)[0].upper()
            if command in ("EVALSHA", "EVAL", "EVAL_RO", "EVALSHA_RO", "FCALL"):
                into.over_threshold += 1
                if int(entry["duration"]) > into.micros:
                    into.micros = int(entry["duration"])
                    into.command = command
    finally:
        client.config_set("slowlog-log-slower-than", previous["slowlog-log-slower-than"])
        client.config_set("slowlog-max-len", previous["slowlog-max-len"])
        client.slowlog_reset()


# -- the cases -----------------------------------------------------------------------------------------


def _object_data_job(job_id: str, *, failed_at: int) -> str:
    """A dead letter as other SDKs may write it: ``data`` a JSON object, not a string."""
    payload = json.loads(dead_letter_job(job_id, failed_at=failed_at))
    payload["data"] = json.loads(payload["data"])
    return json.dumps(payload, separators=(",", ":"))


def _wide_job(job_id: str, *, failed_at: int) -> str:
    """A dead letter with members no SDK defines, a 2 KB property and non-ASCII text, in ``data`` as a string."""
    payload = json.loads(dead_letter_job(job_id, failed_at=failed_at))
    data = json.loads(payload["data"])
    data["properties"].update({"note": "Grüße aus Köln, 東京 ✓ " * 80, "lines": [{"sku": f"A-{n}"} for n in range(8)]})
    extra = {"tenant": {"id": 7, "plan": "pro"}, "trace": "ü" * 40}
    payload.update({"data": json.dumps(data, ensure_ascii=False), **extra})
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


SHAPES: dict[str, Callable[..., str]] = {"node": dead_letter_job, "object": _object_data_job, "wide": _wide_job}
"""``--shape``: the dead letters the bulk cases retry."""


def seed_failed(
    client: redis.Redis, queue: str, count: int, rng: random.Random, shape: str = "node"
) -> tuple[list[str], list[str]]:
    ids = job_ids(count, rng)
    raws = [SHAPES[shape](job_id, failed_at=BASE_MS + i) for i, job_id in enumerate(ids)]
    seed_list(client, SPACE.failed(queue), raws)
    return ids, raws


def seed_queues(client: redis.Redis, queues: int) -> None:
    """``queues`` queues, each with one waiting job and one dead letter."""
    pipe = client.pipeline(transaction=False)
    for i in range(queues):
        name = f"q{i:05d}"
        pipe.lpush(SPACE.queue(name), node_job(f"{BASE_MS + i}-w{i:06d}", "send", {"n": i}, created_at=BASE_MS))
        pipe.lpush(SPACE.failed(name), dead_letter_job(f"{BASE_MS + i}-f{i:06d}", failed_at=BASE_MS))
        if len(pipe) >= SEED_CHUNK:
            pipe.execute()
    pipe.execute()


def seed_search(client: redis.Redis, queues: int, per_list: int, per_queue_matches: int) -> tuple[int, int]:
    """Failed lists whose jobs name a customer, ``per_queue_matches`` per queue naming ``NEEDLE``.

    Returns the matches in all and how many of them sit where the old search looks (jobs 0..99).
    """
    rng = random.Random(4)
    total_matches = 0
    reachable = 0
    for q in range(queues):
        hits = set(rng.sample(range(per_list), per_queue_matches))
        raws = []
        for i in range(per_list):
            job_id = f"{BASE_MS + q * per_list + i}-s{q:03d}{i:04d}"
            customer = NEEDLE if i in hits else f"acct-{rng.randrange(10**6):06d}"
            props = {"customer": customer, "invoice": f"INV-{i}"}
            raws.append(
                node_job(job_id, "send-invoice", props, created_at=BASE_MS, attempts=3, error="boom", failedAt=BASE_MS)
            )
        # LPUSH in order: entry i ends at index per_list - 1 - i; the old search sees indexes 0..99.
        reachable += sum(1 for i in hits if per_list - 1 - i < OLD_SEARCH_WINDOW)
        total_matches += len(hits)
        seed_list(client, SPACE.failed(f"s{q:03d}"), raws)
    return total_matches, reachable


def keys_unchanged(client: redis.Redis, expected: int, row: Row) -> None:
    """Note it when the database does not hold what this case wrote: something else is using it."""
    found = int(client.dbsize())
    if found != expected:
        row.notes.append(f"WARNING: db holds {found:,} keys, expected {expected:,}: another client is using it")


def check_moved(client: redis.Redis, queue: str, selected: set[str], total: int) -> str:
    # Every lane: ours retries a dead letter to the lane its priority names, the old console to the base list.
    waiting = [
        raw for lane in SPACE.lanes_in_poll_order(queue) for raw in cast("list[bytes]", client.lrange(lane, 0, -1))
    ]
    failed = int(client.llen(SPACE.failed(queue)))
    moved_ids = [json.loads(raw)["id"] for raw in waiting]
    exact = len(moved_ids) == len(selected) and set(moved_ids) == selected and failed == total - len(selected)
    return f"{len(moved_ids):,} moved{' (exact)' if exact else f', {failed:,} left: NOT exact'}"


def case_bulk_retry(
    client: redis.Redis, total: int, selected_n: int, slowest: SlowestScript, events: EventEmitter | None, shape: str
) -> Row:
    row = Row(f"bulk retry {selected_n:,} of {total:,}", None, None)
    case_slowest = SlowestScript()
    rng = random.Random(1)
    times: list[float] = []
    checks: list[str] = []
    for side in ("old", "ours"):
        client.flushdb()
        ids, raws = seed_failed(client, "bulk", total, rng, shape)
        step = max(1, total // selected_n)
        picks = list(range(0, total, step))[:selected_n]
        selected_ids = [ids[i] for i in picks]
        started = time.perf_counter()
        if side == "old":
            old_bulk_retry(client, "bulk", [raws[i] for i in picks])
        else:
            with slow_log(client, case_slowest):
                bulk(client, "bulk", JobState.FAILED, BulkAction.RETRY, ids=selected_ids, actor=ACTOR, events=events)
        times.append(time.perf_counter() - started)
        checks.append(f"{side} {check_moved(client, 'bulk', set(selected_ids), total)}")
    row.old_s, row.ours_s = times
    row.notes = [*checks, case_slowest.describe()]
    slowest.merge(case_slowest)
    return row


def case_retry_all(
    client: redis.Redis, total: int, slowest: SlowestScript, events: EventEmitter | None, shape: str
) -> Row:
    row = Row(f"retry-all {total:,} failed", None, None)
    rng = random.Random(2)
    client.flushdb()
    seed_failed(client, "all", total, rng, shape)
    started = time.perf_counter()
    calls = 0
    while client.llen(SPACE.failed("all")):
        old_retry_all_call(client, "all")
        calls += 1
    row.old_s = time.perf_counter() - started
    old_moved = int(client.llen(SPACE.queue("all")))
    client.flushdb()
    seed_failed(client, "all", total, rng, shape)
    started = time.perf_counter()
    case_slowest = SlowestScript()
    with slow_log(client, case_slowest):
        result = bulk(client, "all", JobState.FAILED, BulkAction.RETRY, actor=ACTOR, events=events)
    row.ours_s = time.perf_counter() - started
    row.notes = [
        f"old {old_moved:,} moved in {calls} calls (caps at {OLD_RETRY_ALL_CAP:,}/call)",
        f"ours {result.moved:,} moved in one call",
        case_slowest.describe(),
    ]
    slowest.merge(case_slowest)
    return row


def case_list_queues(client: redis.Redis, queues: int) -> Row:
    row = Row(f"list {queues:,} queues", None, None)
    client.flushdb()
    seed_queues(client, queues)
    started = time.perf_counter()
    old_rows, calls = old_list_queues(client)
    row.old_s = time.perf_counter() - started
    started = time.perf_counter()
    ours = queue_snapshots(client)
    row.ours_s = time.perf_counter() - started
    row.notes = [f"old found {len(old_rows):,} ({calls} SCAN calls)", f"ours found {len(ours):,}"]
    keys_unchanged(client, 2 * queues, row)
    return row


def case_search(client: redis.Redis, queues: int, per_list: int, per_queue_matches: int) -> Row:
    row = Row(f"search {queues}x{per_list:,} failed, limit {SEARCH_LIMIT}", None, None)
    client.flushdb()
    total_matches, reachable = seed_search(client, queues, per_list, per_queue_matches)
    started = time.perf_counter()
    old_found = old_search(client, NEEDLE, SEARCH_LIMIT)
    row.old_s = time.perf_counter() - started
    old_all = len(old_search(client, NEEDLE, 10**9))
    row.notes = [
        f"{total_matches} matches in all; old returned {len(old_found)}, "
        f"can ever reach {old_all} ({100 * old_all / total_matches:.0f}%: jobs 0..99 only)"
    ]
    try:
        module = importlib.import_module("zenith_sdk.control.search")
    except ImportError:
        row.notes.append("ours skipped: zenith_sdk.control.search is not there yet")
        return row
    search: Callable[..., Any] = module.search
    started = time.perf_counter()
    ours_found = list(search(client, NEEDLE, limit=SEARCH_LIMIT))
    row.ours_s = time.perf_counter() - started
    ours_all = len(list(search(client, NEEDLE, limit=total_matches + 1)))
    row.notes.append(f"ours returned {len(ours_found)}, can reach {ours_all} ({100 * ours_all / total_matches:.0f}%)")
    if old_all != reachable:
        row.notes.append(f"WARNING: {reachable} matches sit in jobs 0..99, the old search reached {old_all}")
    keys_unchanged(client, queues, row)
    return row


def median_row(runs: list[Row]) -> Row:
    """One row for repeated runs of a case: the median times (old and ours apart), each run's in the notes."""
    if len(runs) == 1:
        return runs[0]
    olds = [run.old_s for run in runs if run.old_s is not None]
    ours = [run.ours_s for run in runs if run.ours_s is not None]
    each = ", ".join(
        f"{run.old_s:.2f}/{run.ours_s:.2f} s = {run.old_s / run.ours_s:.1f}x"
        for run in runs
        if run.old_s is not None and run.ours_s
    )
    row = Row(runs[0].case, statistics.median(olds), statistics.median(ours), list(runs[0].notes))
    row.notes.append(f"{len(runs)} runs, old/ours: {each}; medians shown")
    return row


def report(rows: list[Row], slowest: SlowestScript) -> None:
    def secs(value: float | None) -> str:
        return f"{value:.2f}" if value is not None else "-"

    print(f"{'case':<36} {'old s':>8} {'ours s':>8} {'old/ours':>9}  notes")
    for r in rows:
        ratio = f"{r.old_s / r.ours_s:.1f}x" if r.old_s is not None and r.ours_s else "-"
        notes = r.notes or [""]
        print(f"{r.case:<36} {secs(r.old_s):>8} {secs(r.ours_s):>8} {ratio:>9}  {notes[0]}")
        for note in notes[1:]:
            print(f"{'':<36} {'':>8} {'':>8} {'':>9}  {note}")
    if slowest.micros:
        verdict = "under" if slowest.micros < 100_000 else "OVER"
        print(
            f"longest single script call of ours (bulk cases): {slowest.micros / 1000:.1f} ms ({slowest.command}), "
            f"{verdict} the 100 ms aim; {slowest.over_threshold} script calls took over 1 ms"
        )
    else:
        print("longest single script call of ours (bulk cases): under 1 ms (none in the slow log)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_db.add_database_options(parser, 14)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size by this (default 1.0)")
    parser.add_argument("--no-events", action="store_true", help="our bulk cases write no lifecycle events")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the two bulk cases this many times and show their median times (each run's in the notes)",
    )
    parser.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default="node",
        help="the failed jobs the bulk cases retry: node (as Node writes them, the default), object (data a "
        "JSON object), wide (unknown members, a 2 KB property, non-ASCII text)",
    )
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    client = client_on_db(args.redis, args.db, client_name=CLIENT_NAME)
    if bench_db.refuses(client, args):
        return 2

    scale = float(args.scale)

    def scaled(n: int) -> int:
        return max(1, round(n * scale))

    slowest = SlowestScript()
    rows: list[Row] = []
    # As the CLI does: every operation records its events (the old console wrote none).
    events = None if args.no_events else EventEmitter(client)
    try:
        bulk_runs = [case_bulk_retry(client, scaled(100_000), scaled(10_000), slowest, events, args.shape)]
        all_runs = [case_retry_all(client, scaled(100_000), slowest, events, args.shape)]
        for _ in range(args.repeat - 1):
            bulk_runs.append(case_bulk_retry(client, scaled(100_000), scaled(10_000), slowest, events, args.shape))
            all_runs.append(case_retry_all(client, scaled(100_000), slowest, events, args.shape))
        rows += [median_row(bulk_runs), median_row(all_runs)]
        rows.append(case_list_queues(client, scaled(10_000)))
        rows.append(case_search(client, scaled(100), max(OLD_SEARCH_WINDOW, scaled(1000)), 3))
    finally:
        client.flushdb()
    report(rows, slowest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
