"""``zenith search``: find jobs by a query (payload text, ``field:value``, ``name:``, ...) in every queue."""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from zenith_sdk.cli._common import (
    CliSettings,
    add_output_options,
    add_redis_options,
    console,
    keyspace_from,
    print_json,
    redis_from,
    whole_number,
)
from zenith_sdk.control import JobEntry, JobState, search
from zenith_sdk.control.search import DEFAULT_SEARCH_STATES

__all__ = ["register"]

DEFAULT_LIMIT = 20


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``search`` to the command line."""
    parser = commands.add_parser(
        "search",
        help="find jobs by id, name, payload text or field:value across every job of every queue",
    )
    parser.add_argument(
        "query",
        metavar="QUERY",
        help="words in the id, name or payload; field:value for a property; queue:, state:, name:, error:, id:, "
        'after:/before: (ISO or 2h, 7d); "quoted phrase", -negation, OR',
    )
    parser.add_argument(
        "--queue", dest="queues", action="append", metavar="Q", help="search this queue (repeatable; default: all)"
    )
    parser.add_argument(
        "--state",
        dest="states",
        action="append",
        choices=[state.value for state in DEFAULT_SEARCH_STATES],
        help="search this state (repeatable; default: waiting, delayed and failed)",
    )
    parser.add_argument(
        "--limit", type=whole_number(1), default=DEFAULT_LIMIT, metavar="N", help="stop after N matches"
    )
    add_redis_options(parser)
    add_output_options(parser)
    parser.set_defaults(handler=_run)


def _row(entry: JobEntry) -> dict[str, Any]:
    """One match as plain data: the job's summary, or the raw text and why it does not decode."""
    job = entry.job
    row: dict[str, Any] = {"queue": entry.queue, "state": entry.state.value}
    if job is None:
        row.update(id=None, name=None, attempts=None, error=None)
        row.update(raw=entry.raw.decode("utf-8", "replace"), problem=str(entry.problem))
    else:
        row.update(id=job.id, name=job.name, attempts=job.attempts, error=job.error)
    return row


def _run(args: argparse.Namespace, settings: CliSettings) -> int:
    client, where = redis_from(args, settings)
    states = [JobState(state) for state in args.states] if args.states else DEFAULT_SEARCH_STATES
    try:
        found = search(
            client,
            args.query,
            keyspace=keyspace_from(args, settings),
            queues=args.queues,
            states=states,
            limit=args.limit,
        )
        rows = [_row(entry) for entry in found]
    finally:
        client.close()
    if args.json:
        print_json(rows)
        return 0
    table = Table(title=escape(f"Jobs matching {args.query!r} at {where}"))
    for column in ("queue", "state", "id", "name", "attempts", "error"):
        table.add_column(column, justify="right" if column == "attempts" else "left")
    for row in rows:
        cells = [row[column] for column in ("queue", "state", "id", "name", "attempts", "error")]
        if row["id"] is None:
            cells[2:4] = ["(undecodable)", row["problem"]]
        # Text, not str: job errors and names are data, never rich markup.
        table.add_row(*(Text("" if cell is None else str(cell)) for cell in cells))
    console().print(table)
    return 0
