"""``zenith archive search|jobs|timeline|export``: read the archive with the query language of ``zenith search``.

Registered by ``_archive`` into its group, on whose ``--db`` option and engine helper it builds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table
from rich.text import Text

from zenith_protocol import ConfigError
from zenith_protocol.query import time_ms
from zenith_sdk.cli._archive import add_db_option, open_archive
from zenith_sdk.cli._bulk_cli import ms_text
from zenith_sdk.cli._common import CliSettings, add_output_options, console, print_json, whole_number

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from zenith_archive.query import ArchivedJob, Page

__all__ = ["register"]

Handler = Callable[[argparse.Namespace, CliSettings], int]

DEFAULT_LIMIT = 50
ERROR_CHARS = 60
_QUERY_HELP = (
    "words in the name, error or payload; field:value for a property (a.b: nested); queue:, state:, name:, error:, "
    'id:, after:/before: (ISO or 2h, 7d); "quoted phrase", -negation, OR'
)


def register(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser], *, guard: Callable[[Handler], Handler]
) -> None:
    """Add ``search``, ``jobs``, ``timeline`` and ``export`` to ``zenith archive``; ``guard`` wraps each handler."""
    search = subcommands.add_parser("search", help="find archived jobs with a query")
    search.add_argument("query", metavar="QUERY", help=_QUERY_HELP)
    _add_paging(search)
    search.set_defaults(handler=guard(_run_search))

    jobs = subcommands.add_parser("jobs", help="list archived jobs by queue, state and time, newest first")
    jobs.add_argument("--queue", default=None, help="only this queue")
    jobs.add_argument("--state", default=None, help="only this state (waiting, delayed, active, completed, ...)")
    jobs.add_argument("--since", default=None, metavar="TIME", help="updated at or after TIME (ISO, or 2h, 7d ago)")
    jobs.add_argument("--until", default=None, metavar="TIME", help="updated before TIME (ISO, or 2h, 7d ago)")
    _add_paging(jobs)
    jobs.set_defaults(handler=guard(_run_jobs))

    timeline = subcommands.add_parser("timeline", help="every event of one job, in order, with who did what")
    timeline.add_argument("job_id", metavar="JOB_ID")
    timeline.add_argument("--queue", default=None, help="the job's queue (needed when several queues hold the id)")
    add_db_option(timeline)
    add_output_options(timeline)
    timeline.set_defaults(handler=guard(_run_timeline))

    export = subcommands.add_parser("export", help="write the archived jobs a query matches as JSON lines or CSV")
    export.add_argument("--query", default="", metavar="QUERY", help=f"{_QUERY_HELP} (default: every job)")
    export.add_argument("--format", dest="fmt", choices=("jsonl", "csv"), default="jsonl", help="default jsonl")
    export.add_argument("--output", "-o", default="-", metavar="FILE", help="write here (default: standard output)")
    add_db_option(export)
    export.set_defaults(handler=guard(_run_export))


def _add_paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=whole_number(1, 1000), default=DEFAULT_LIMIT, metavar="N", help="jobs per page")
    parser.add_argument("--after", default=None, metavar="KEY", help="the next page: the key the last page printed")
    add_db_option(parser)
    add_output_options(parser)


@contextmanager
def _migrated_archive(args: argparse.Namespace, settings: CliSettings) -> Iterator[Engine]:
    """The migrated archive ``--db`` names (a database error inside becomes one line, as ``open_archive`` says)."""
    with open_archive(args, settings) as engine:
        from zenith_archive.archiver import require_migrated

        require_migrated(engine)
        yield engine


def _cell(value: object) -> Text:
    # Text, not str: names, errors and ids are data, never rich markup.
    return Text("" if value is None else str(value))


def _short(error: str | None) -> str | None:
    if error is None:
        return None
    line = error.strip().splitlines()[0] if error.strip() else ""
    return line if len(line) <= ERROR_CHARS else line[:ERROR_CHARS] + "…"


def _jobs_table(title: str, rows: Sequence[ArchivedJob]) -> Table:
    table = Table(title=escape(title))
    for column in ("queue", "id", "name", "state", "attempts", "updated", "error"):
        table.add_column(column, justify="right" if column == "attempts" else "left")
    for job in rows:
        cells = (job.queue, job.job_id, job.name, job.state, job.attempts, ms_text(job.updated_at), _short(job.error))
        table.add_row(*(_cell(cell) for cell in cells))
    return table


def _print_page(args: argparse.Namespace, title: str, page: Page, extra: dict[str, Any]) -> int:
    if args.json:
        print_json({**extra, "jobs": [job.to_json() for job in page.rows], "next": page.next_key})
        return 0
    out = console()
    out.print(_jobs_table(title, page.rows))
    if page.next_key is not None:
        out.print(Text(f"next page: --after {page.next_key}"))
    return 0


def _run_search(args: argparse.Namespace, settings: CliSettings) -> int:
    with _migrated_archive(args, settings) as engine:
        from zenith_archive.query import count, search

        page = search(engine, args.query, limit=args.limit, after_key=args.after)
        total = count(engine, args.query)
    title = f"Archived jobs matching {args.query!r}: {total}"
    return _print_page(args, title, page, {"total": total.n, "capped": total.capped})


def _time(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    try:
        return time_ms(text)
    except ValueError as exc:
        raise ConfigError(
            f"{flag} {text!r} is not a time: write an ISO-8601 time (2026-01-31T12:00:00Z) or 2h, 7d"
        ) from exc


def _run_jobs(args: argparse.Namespace, settings: CliSettings) -> int:
    since, until = _time(args.since, "--since"), _time(args.until, "--until")
    with _migrated_archive(args, settings) as engine:
        from zenith_archive.query import jobs
        from zenith_archive.schema import ALL_STATES

        if args.state is not None and args.state not in ALL_STATES:
            raise ConfigError(f"--state {args.state!r} is not a state; use one of {', '.join(ALL_STATES)}")
        page = jobs(
            engine, queue=args.queue, state=args.state, since_ms=since, until_ms=until, limit=args.limit,
            after_key=args.after,
        )  # fmt: skip
    where = " ".join(f"{name}={value}" for name, value in (("queue", args.queue), ("state", args.state)) if value)
    return _print_page(args, f"Archived jobs {where}".rstrip(), page, {})


def _run_timeline(args: argparse.Namespace, settings: CliSettings) -> int:
    with _migrated_archive(args, settings) as engine:
        from zenith_archive.query import timeline

        found = timeline(engine, args.job_id, queue=args.queue)
    job = found.job
    if args.json:
        print_json({"job": job.to_json(), "events": [event.to_json() for event in found.events]})
        return 0
    title = f"Job {job.job_id} of {job.queue}: {job.state} after {job.attempts} attempts"
    table = Table(title=escape(title))
    for column in ("time", "event", "attempt", "worker", "actor", "error"):
        table.add_column(column)
    for event in found.events:
        cells = (ms_text(event.at), event.type, event.attempt, event.worker_id, event.actor, _short(event.error))
        table.add_row(*(_cell(cell) for cell in cells))
    console().print(table)
    return 0


@contextmanager
def _output(path: str, fmt: str) -> Iterator[TextIO]:
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        with Path(path).open("w", encoding="utf-8", newline="" if fmt == "csv" else None) as out:
            yield out
    except OSError as exc:
        raise ConfigError(f"--output {path!r}: {exc.strerror or exc}; name a file you may write") from exc


def _run_export(args: argparse.Namespace, settings: CliSettings) -> int:
    err = console(stderr=True)
    # Only on a terminal: elsewhere a transient spinner leaves an empty line before any error line.
    columns = (SpinnerColumn(), TextColumn("exporting: {task.completed} jobs"))
    with _migrated_archive(args, settings) as engine, _output(args.output, args.fmt) as out:
        from zenith_archive.query import export

        with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task("export", total=None)
            written = export(engine, args.query, args.fmt, out, progress=lambda done: bar.update(task, completed=done))
    where = "standard output" if args.output == "-" else args.output
    err.print(Text(f"exported {written} jobs to {where}"))
    return 0
