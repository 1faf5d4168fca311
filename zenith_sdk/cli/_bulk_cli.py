"""``zenith retry|delete``: many jobs at once, by id or by filter, with a dry run, a prompt and a progress bar.

Also the job rendering (table rows, JSON) and the confirmation prompt the other job commands share.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from typing import Any

import redis
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from zenith_protocol import KeySpace
from zenith_sdk.cli._common import (
    CliSettings,
    add_actor_options,
    console,
    keyspace_from,
    print_json,
    redis_from,
)
from zenith_sdk.control import BulkAction, BulkResult, JobEntry, JobFilter, JobState, bulk
from zenith_sdk.events import EventEmitter

__all__ = [
    "EXIT_DECLINED",
    "EXIT_OK",
    "EXIT_USAGE",
    "ask",
    "entry_json",
    "entry_table",
    "register",
    "require_queue",
]

EXIT_OK, EXIT_DECLINED, EXIT_USAGE = 0, 1, 2
SAMPLE_SIZE = 10
PREVIEW_CHARS = 60
_ACTION_DONE = {BulkAction.RETRY: "retried", BulkAction.DELETE: "deleted"}


def require_queue(client: redis.Redis, queue: str, space: KeySpace) -> None:
    """Raise NotFoundError when ``queue`` does not exist.

    A dry run over an empty id list checks the queue and then stops, without walking any job.
    """
    bulk(client, queue, JobState.FAILED, BulkAction.DELETE, keyspace=space, ids=[], dry_run=True, actor="")


def ask(question: str, *, yes_hint: str = "pass --yes") -> str | None:
    """The user's answer to ``question``, or None when standard input is not a terminal (scripts must opt in)."""
    if not sys.stdin.isatty():
        console(stderr=True).print(f"[red]error[/]: not asking on a non-interactive input; {yes_hint} to go ahead")
        return None
    try:
        return input(question).strip()
    except EOFError:
        return ""


def ms_text(ms: int | None) -> str:
    """An epoch-milliseconds time as UTC text, ``-`` when unknown."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _preview(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


def entry_json(entry: JobEntry) -> dict[str, Any]:
    """One queue entry as JSON: the job's wire fields plus its state, or why it does not decode."""
    head: dict[str, Any] = {"queue": entry.queue, "state": entry.state.value}
    if entry.due_ms is not None:
        head["dueAt"] = entry.due_ms
    if entry.job is None:
        return {**head, "valid": False, "problem": str(entry.problem), "raw": entry.raw.decode("utf-8", "replace")}
    job = entry.job
    fields = job.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {**head, "valid": True, "name": job.name, "properties": job.properties, "job": fields}


def entry_table(entries: list[JobEntry], state: JobState, title: str) -> Table:
    """A table of entries: id, name, attempts, created, and error (failed) or due time (delayed)."""
    table = Table(title=title)
    last = "due" if state is JobState.DELAYED else "error"
    for column in ("id", "name", "attempts", "created", last):
        table.add_column(column)
    for entry in entries:
        job = entry.job
        if job is None:
            table.add_row("?", "[red]invalid[/]", "", "", escape(_preview(entry.raw)))
            continue
        detail = ms_text(entry.due_ms) if state is JobState.DELAYED else (job.error or "")
        attempts = f"{job.attempts or 0}" + (f"/{job.max_attempts}" if job.max_attempts else "")
        name = job.name or "?"
        table.add_row(escape(job.id), escape(name), attempts, ms_text(job.created_at_ms), escape(detail))
    return table


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``retry`` and ``delete`` to the command line."""
    retry = commands.add_parser("retry", help="move failed (or delayed) jobs back to waiting, by id or filter")
    retry.add_argument("--state", choices=("failed", "delayed"), default="failed", help="which jobs (default failed)")
    retry.set_defaults(handler=_run_retry)
    delete = commands.add_parser("delete", help="delete jobs, by id or filter")
    delete.add_argument(
        "--state", choices=("waiting", "delayed", "failed"), default="failed", help="which jobs (default failed)"
    )
    delete.set_defaults(handler=_run_delete)
    for parser in (retry, delete):
        parser.add_argument("queue", help="queue name")
        parser.add_argument("ids", nargs="*", metavar="ID", help="job ids, right after QUEUE (else --all or a filter)")
        parser.add_argument("--all", action="store_true", help="every job in the state")
        parser.add_argument("--name", default=None, help="only jobs with exactly this name")
        parser.add_argument("--error", default=None, metavar="TEXT", help="only jobs whose error contains TEXT")
        parser.add_argument(
            "--match", default=None, metavar="QUERY", help="'field:value' property match, else text in the payload"
        )
        parser.add_argument("--from", dest="from_time", default=None, metavar="ISO", help="failed/created at or after")
        parser.add_argument("--to", dest="to_time", default=None, metavar="ISO", help="failed/created before")
        parser.add_argument("--dry-run", action="store_true", help="count and show a sample; change nothing")
        parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
        add_actor_options(parser)


def _run_retry(args: argparse.Namespace, settings: CliSettings) -> int:
    return _run_bulk(args, settings, BulkAction.RETRY)


def _run_delete(args: argparse.Namespace, settings: CliSettings) -> int:
    return _run_bulk(args, settings, BulkAction.DELETE)


def _epoch_ms(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    try:
        # Python 3.10 reads no trailing "Z"; a time without an offset is taken as UTC.
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError as exc:
        raise ValueError(f"{flag} {text!r} is not an ISO-8601 time such as 2026-01-31T12:00:00Z") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def _job_filter(args: argparse.Namespace) -> JobFilter | None:
    """The filter the options describe, or None when no filter option is given."""
    fields: dict[str, Any] = {}
    if args.match is not None:
        fields.update(JobFilter.from_query(args.match).model_dump(exclude_none=True))
    fields.update(name=args.name, error=args.error)
    fields.update(from_ms=_epoch_ms(args.from_time, "--from"), to_ms=_epoch_ms(args.to_time, "--to"))
    fields = {key: value for key, value in fields.items() if value is not None}
    return JobFilter(**fields) if fields else None


def _run_bulk(args: argparse.Namespace, settings: CliSettings, action: BulkAction) -> int:
    err = console(stderr=True)
    try:
        job_filter = _job_filter(args)
    except ValueError as exc:
        err.print(f"[red]error[/]: {escape(str(exc))}")
        return EXIT_USAGE
    if not args.ids and not args.all and job_filter is None:
        err.print("[red]error[/]: name job ids, or pass --all or a filter (--name, --error, --match, --from, --to)")
        return EXIT_USAGE
    client, _ = redis_from(args, settings)
    try:
        return _bulk_steps(args, settings, client, action, job_filter)
    finally:
        client.close()


def _bulk_steps(
    args: argparse.Namespace,
    settings: CliSettings,
    client: redis.Redis,
    action: BulkAction,
    job_filter: JobFilter | None,
) -> int:
    """Dry run first; then stop (--dry-run), ask, or go ahead with a progress bar."""
    space = keyspace_from(args, settings)
    state = JobState(args.state)
    ids = args.ids or None
    options: dict[str, Any] = {"keyspace": space, "job_filter": job_filter, "ids": ids, "actor": args.actor}
    preview = bulk(client, args.queue, state, action, dry_run=True, sample=SAMPLE_SIZE, **options)
    if args.dry_run:
        return _report(args, preview)
    if not args.yes and preview.matched:
        console(stderr=True).print(_preview_table(preview))
        answer = ask(f"{action.value.capitalize()} {preview.matched} {state.value} jobs of {args.queue!r}? [y/N] ")
        if answer is None or answer.lower() not in ("y", "yes"):
            console(stderr=True).print("nothing changed")
            return EXIT_DECLINED
    with EventEmitter(client, keyspace=space) as events, _progress_bar() as bar:
        task = bar.add_task(f"{action.value} {state.value}", total=preview.looked_at or None)
        result = bulk(
            client,
            args.queue,
            state,
            action,
            events=events,
            sample=0,
            progress=lambda looked_at: bar.update(task, completed=looked_at),
            **options,
        )
    return _report(args, result)


def _progress_bar() -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    return Progress(*columns, console=console(stderr=True), transient=True)


def _preview_table(result: BulkResult) -> Table:
    title = f"{result.matched} matching {result.state.value} jobs in {result.queue!r} (showing {len(result.sample)})"
    return entry_table(result.sample, result.state, escape(title))


def _report(args: argparse.Namespace, result: BulkResult) -> int:
    if args.json:
        print_json(
            {
                "action": result.action.value,
                "queue": result.queue,
                "state": result.state.value,
                "dryRun": result.dry_run,
                "matched": result.matched,
                "moved": result.moved,
                "lookedAt": result.looked_at,
                "sample": [entry_json(entry) for entry in result.sample],
            }
        )
        return EXIT_OK
    out = console()
    where = f"{result.state.value} jobs of {escape(repr(result.queue))}"
    if result.dry_run:
        out.print(_preview_table(result))
        out.print(f"dry run: {result.matched} {where} would be {_ACTION_DONE[result.action]}; nothing changed")
    else:
        out.print(f"{_ACTION_DONE[result.action]} {result.moved} of {result.matched} matching {where}")
    return EXIT_OK
