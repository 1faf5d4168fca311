"""Control operations of this checkout against an earlier revision of it, interleaved on one Redis.

A side-by-side benchmark against the old console says how much faster we are, but its ratio moves
with the machine from hour to hour; whether a change made an operation slower is answered by
running the operation as it was at another revision and as it is now, on the same data, in turns:

    python benchmarks/revisions.py --base 4b8412d^          # the revision to compare with
    python benchmarks/revisions.py --base main --scale 0.1 --rounds 5

The base revision is checked out in a temporary git worktree (removed afterwards). This script
seeds the data with the current code; each timing runs in a child process whose ``zenith_sdk``
is the revision's (or this checkout's), calling only what both have: ``queue_snapshots``,
``bulk`` (no events: a revision may predate them) and ``search``. Cases: listing 10,000 queues,
retry-all of 100,000 failed, bulk retry of 10,000 selected out of 100,000, search of 100 queues x
1,000 jobs (limit 20). It prints the median of each side and now/base (above 1: slower now).
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
bench_db = importlib.import_module("bench_db")
CASES = ("list", "retry-all", "bulk-retry", "search")
_LABELS = {
    "list": "list {n:,} queues",
    "retry-all": "retry-all {n:,} failed",
    "bulk-retry": "bulk retry {k:,} of {n:,}",
    "search": "search {n}x1,000 failed, limit 20",
}


def _time_child(args: argparse.Namespace) -> None:
    """In the child: import the revision's zenith_sdk, time ``args.case`` ``args.repeat`` times, print JSON."""
    sys.path.insert(0, args.child)
    import redis

    control = importlib.import_module("zenith_sdk.control")
    kwargs = {**redis.ConnectionPool.from_url(args.redis).connection_kwargs, "db": args.db}
    client = redis.Redis(connection_pool=redis.ConnectionPool(**kwargs))
    selected = json.loads(Path(args.ids).read_text()) if args.ids else None
    run: Callable[[], object]
    if args.case == "list":
        run = lambda: control.queue_snapshots(client)  # noqa: E731
    elif args.case == "search":
        search = importlib.import_module("zenith_sdk.control.search").search
        run = lambda: list(search(client, args.needle, limit=20))  # noqa: E731
    else:
        run = lambda: control.bulk(  # noqa: E731
            client, args.queue, control.JobState.FAILED, control.BulkAction.RETRY, ids=selected, actor="bench"
        )
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    print(json.dumps({"times": times, "module": control.__file__}))


class Runner:
    """Seeds with this checkout's code and times each side in a child process."""

    def __init__(self, args: argparse.Namespace, sides: dict[str, Path]) -> None:
        sys.path.insert(0, str(HERE))
        self.ops: Any = importlib.import_module("control_ops")
        self.client = self.ops.client_on_db(args.redis, args.db)
        self.args = args
        self.sides = sides
        self.times: dict[tuple[str, str], list[float]] = {}
        self.scale = float(args.scale)

    def n(self, count: int) -> int:
        return max(1, round(count * self.scale))

    def child(self, side: str, case: str, repeat: int, *, queue: str = "", ids: str = "") -> None:
        command = [sys.executable, __file__, "--child", str(self.sides[side]), "--case", case]
        command += ["--redis", self.args.redis, "--db", str(self.args.db), "--repeat", str(repeat)]
        command += ["--queue", queue, "--ids", ids, "--needle", self.ops.NEEDLE]
        done = subprocess.run(command, check=False, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"the {side} child failed on {case}:\n{done.stderr}")
        reply = json.loads(done.stdout.strip().splitlines()[-1])
        if not reply["module"].startswith(str(self.sides[side])):
            raise RuntimeError(f"the {side} child imported {reply['module']}, not its revision's code")
        self.times.setdefault((case, side), []).extend(reply["times"])

    def read_only(self, case: str, seed: Callable[[], object]) -> None:
        self.client.flushdb()
        seed()
        for _ in range(self.args.rounds):
            for side in self.sides:
                self.child(side, case, 3)

    def moving(self, case: str, total: int, selected: int | None) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
            ids_file = file.name
        for round_ in range(self.args.rounds):
            for side in self.sides:
                self.client.flushdb()
                ids, _raws = self.ops.seed_failed(self.client, "bench", total, random.Random(round_))
                step = max(1, total // selected) if selected else 1
                picked = ids[::step][:selected] if selected else None
                Path(ids_file).write_text(json.dumps(picked))
                self.child(side, case, 1, queue="bench", ids=ids_file)
                moved = sum(int(self.client.llen(lane)) for lane in self.ops.SPACE.lanes_in_poll_order("bench"))
                if moved != (selected or total):
                    raise RuntimeError(f"{case} on {side} moved {moved:,} jobs, not {selected or total:,}")
        Path(ids_file).unlink()

    def run(self) -> None:
        n = self.n
        self.read_only("list", lambda: self.ops.seed_queues(self.client, n(10_000)))
        self.moving("retry-all", n(100_000), None)
        self.moving("bulk-retry", n(100_000), n(10_000))
        self.read_only("search", lambda: self.ops.seed_search(self.client, n(100), max(100, n(1000)), 3))
        self.client.flushdb()

    def report(self) -> None:
        print(f"{'case':<34} {'base s':>8} {'now s':>8} {'now/base':>9}  (medians of {self.args.rounds} rounds)")
        for case in CASES:
            base = statistics.median(self.times[(case, "base")])
            now = statistics.median(self.times[(case, "now")])
            label = _LABELS[case].format(n=self.n(10_000 if case == "list" else 100_000), k=self.n(10_000))
            if case == "search":
                label = _LABELS[case].format(n=self.n(100))
            print(f"{label:<34} {base:>8.3f} {now:>8.3f} {now / base:>8.2f}x")


@contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """``revision`` checked out in a temporary directory (a detached git worktree), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="zenith-base-") as parent:
        path = Path(parent) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(path), revision], check=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", help="the git revision to compare this checkout with")
    bench_db.add_database_options(parser, 14)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size by this (default 1.0)")
    parser.add_argument("--rounds", type=int, default=3, help="turns per case, each side once per turn")
    for hidden in ("--child", "--case", "--ids", "--queue", "--needle"):
        parser.add_argument(hidden, default="", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _time_child(args)
        return 0
    if not args.base or args.scale <= 0 or args.rounds < 1:
        parser.error("give --base REV, a positive --scale and at least one round")
    with worktree(args.base) as base:
        runner = Runner(args, {"base": base, "now": ROOT})
        if bench_db.refuses(runner.client, args):
            return 2
        try:
            runner.run()
        finally:
            runner.client.flushdb()
    runner.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
