"""How fast any retry could be on this Redis: the work every design must do, timed with nothing else.

``control_ops.py`` compares our bulk retry and retry-all with the existing console's. This one
times, for the same dead letters (``--shape``), the least any design that keeps the guarantees
must do, and divides the existing console's time by it: the best speed-up this Redis allows.

- retry-all, in a script: each dead letter read into Lua and one new string made of it (the
  rewrite, with no time spent finding what to cut), pushed back; no events. Redis' Lua hashes
  every byte of every string a script reads or makes.
- retry-all, from the client: pages of the oldest dead letters read, and their rewrites (computed
  beforehand, not timed) pushed back in a MULTI that trims them off; no events.
- bulk retry by id: the whole failed list read by the client (to find the selected ids), and each
  selected job checked where it lies (LINDEX; a list index is reached by walking the list), in
  pipelines; nothing moved, no events.

    python benchmarks/retry_floor.py --shape wide      # about 2 minutes on a small machine
    python benchmarks/retry_floor.py --shape node --skip-old

It uses one Redis database of its own (``--db``, default 14) like ``control_ops.py``.
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import redis

from zenith_sdk.control._pick import decode_object
from zenith_sdk.control._retry import retried

sys.path.insert(0, str(Path(__file__).resolve().parent))
control_ops = importlib.import_module("control_ops")
bench_db = importlib.import_module("bench_db")
client_on_db: Callable[..., redis.Redis] = bench_db.client_on_db
SPACE = control_ops.SPACE

TOTAL = 100_000
SELECTED = 10_000
PAGE = 2_000
READ_PAGE = 10_000
CHECKS_PER_PIPELINE = 500

_COPY_ALL = """
local moved = 0
while true do
  local entries = redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1)
  if #entries == 0 then
    return moved
  end
  local made = {}
  for i = #entries, 1, -1 do
    made[#made + 1] = string.sub(entries[i], 2)
  end
  redis.call('LTRIM', KEYS[1], 0, -(#entries + 1))
  redis.call('LPUSH', KEYS[2], unpack(made))
  moved = moved + #entries
end
"""
"""Reads every entry of KEYS[1] into Lua, page by page from the oldest, makes one new string of each
(one byte shorter: as costly as making its rewrite) and pushes it onto KEYS[2]."""


def _seed(client: redis.Redis, queue: str, shape: str) -> tuple[list[str], list[str]]:
    client.flushdb()
    ids: list[str]
    raws: list[str]
    ids, raws = control_ops.seed_failed(client, queue, TOTAL, random.Random(3), shape)
    return ids, raws


def _timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def retry_all_in_a_script(client: redis.Redis, shape: str) -> float:
    _seed(client, "floor", shape)
    sha = client.script_load(_COPY_ALL)
    keys = [SPACE.failed("floor"), SPACE.queue("floor")]
    return _timed(lambda: client.evalsha(sha, 2, *keys, PAGE))


def retry_all_from_the_client(client: redis.Redis, shape: str) -> float:
    _, raws = _seed(client, "floor", shape)
    rewrites: dict[bytes, bytes] = {}
    for text in raws:
        raw = text.encode()
        rewrites[raw] = retried(raw, decode_object(raw)) or raw
    source, lane = SPACE.failed("floor"), SPACE.queue("floor")

    def run() -> None:
        while page := cast("list[bytes]", client.lrange(source, -PAGE, -1)):
            pipe = client.pipeline(transaction=True)
            pipe.ltrim(source, 0, -(len(page) + 1))
            pipe.lpush(lane, *[rewrites[raw] for raw in reversed(page)])
            pipe.execute()

    return _timed(run)


def bulk_by_id_reads_and_checks(client: redis.Redis, shape: str) -> float:
    ids, _ = _seed(client, "floor", shape)
    source = SPACE.failed("floor")
    step = TOTAL // SELECTED
    wanted = {ids[i].encode() for i in range(0, TOTAL, step)}

    def run() -> None:
        positions = []
        for offset in range(0, TOTAL, READ_PAGE):
            page = client.lrange(source, -(offset + READ_PAGE), -(offset + 1))[::-1]
            for index, raw in enumerate(page):
                if raw[7:28] in wanted:  # the leading id of these payloads: no matching cost counted
                    positions.append(offset + index + 1)
        for start in range(0, len(positions), CHECKS_PER_PIPELINE):
            pipe = client.pipeline(transaction=False)
            for position in positions[start : start + CHECKS_PER_PIPELINE]:
                pipe.lindex(source, -position)
            pipe.execute()

    return _timed(run)


def old_times(client: redis.Redis, shape: str) -> tuple[float, float]:
    """The existing console's bulk retry of SELECTED jobs and retry-all, as control_ops.py runs them."""
    ids, raws = _seed(client, "floor", shape)
    picks = [raws[i] for i in range(0, TOTAL, TOTAL // SELECTED)]
    bulk_s = _timed(lambda: control_ops.old_bulk_retry(client, "floor", picks))
    _seed(client, "floor", shape)

    def retry_all() -> None:
        while client.llen(SPACE.failed("floor")):
            control_ops.old_retry_all_call(client, "floor")

    return bulk_s, _timed(retry_all)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_db.add_database_options(parser, 14)
    parser.add_argument("--shape", choices=sorted(control_ops.SHAPES), default="wide")
    parser.add_argument("--skip-old", action="store_true", help="time only the floors, not the existing console")
    args = parser.parse_args(argv)
    client = client_on_db(args.redis, args.db, client_name="zenith-bench-retry-floor")
    if bench_db.refuses(client, args):
        return 2
    try:
        floors = {
            "retry-all in a script": retry_all_in_a_script(client, args.shape),
            "retry-all from the client": retry_all_from_the_client(client, args.shape),
            "bulk retry by id: read and check only": bulk_by_id_reads_and_checks(client, args.shape),
        }
        old = None if args.skip_old else old_times(client, args.shape)
    finally:
        client.flushdb()
    print(f"{TOTAL:,} dead letters, shape {args.shape}; bulk retry selects {SELECTED:,}")
    for case, seconds in floors.items():
        line = f"  {case:40s} {seconds:6.2f} s"
        if old is not None:
            existing = old[1] if case.startswith("retry-all") else old[0]
            line += f"   existing {existing:6.2f} s   best speed-up {existing / seconds:5.1f}x"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
