"""``zenith queues``: every queue with its counts, found in one complete SCAN pass."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from zenith_protocol import QueueSnapshot
from zenith_sdk.cli._common import (
    CliSettings,
    add_output_options,
    add_redis_options,
    console,
    keyspace_from,
    print_json,
    redis_from,
)
from zenith_sdk.control import queue_snapshots

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``queues`` to the command line."""
    parser = commands.add_parser(
        "queues", help="list every queue with its waiting, grouped, delayed, failed and active jobs"
    )
    add_redis_options(parser)
    add_output_options(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace, settings: CliSettings) -> int:
    client, where = redis_from(args, settings)
    try:
        snapshots = queue_snapshots(client, keyspace=keyspace_from(args, settings))
    finally:
        client.close()
    if args.json:
        print_json([snapshot.model_dump(mode="json", by_alias=True) for snapshot in snapshots])
        return 0
    table = Table(title=escape(f"Queues at {where}"))
    for column in ("queue", "waiting", "grouped", "delayed", "failed", "active", "paused", "lanes"):
        table.add_column(column, justify="left" if column in ("queue", "paused", "lanes") else "right")
    for s in snapshots:
        lanes = ", ".join(f"{lane} {count}" for lane, count in s.lanes.items())
        counts = (s.waiting, s.grouped, s.delayed, s.failed, s.active)
        table.add_row(Text(s.name), *(str(n) for n in counts), _paused(s), Text(lanes))
    console().print(table)
    return 0


def _paused(snapshot: QueueSnapshot) -> str:
    """``yes`` for a paused queue; else the lanes paused on their own flag (which Node consumers honour)."""
    if snapshot.paused:
        return "yes"
    return ", ".join(snapshot.paused_lanes) + (" only" if snapshot.paused_lanes else "")
