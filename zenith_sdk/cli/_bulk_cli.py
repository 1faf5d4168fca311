"""``zenith retry|delete``: many jobs at once, by id or by filter, with a dry run, a prompt and a progress bar.

Ids without ``--state`` are looked for wherever they are (as ``zenith job`` finds a job), and the
command exits 1 naming the ids it found nowhere. Also the job rendering (table rows, JSON) and
the confirmation prompt the other job commands share.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import redis
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from zenith_protocol import ConfigError, KeySpace, NotFoundError
from zenith_protocol.query import iso_ms
from zenith_sdk.cli._common import (
    CliSettings,
    add_actor_options,
    console,
    keyspace_from,
    print_json,
    redis_from,
)
from zenith_sdk.cli._errors import EXIT_FAILED, EXIT_OK, print_error
from zenith_sdk.control import BulkAction, BulkResult, JobEntry, JobFilter, JobState, bulk, get_job
from zenith_sdk.events import EventEmitter

__all__ = [
    "ACTION_STATES",
    "EXIT_DECLINED",
    "EXIT_OK",
    "ask",
    "entry_json",
    "entry_table",
    "register",
]

EXIT_DECLINED = EXIT_NOT_FOUND = EXIT_FAILED
SAMPLE_SIZE = 10
PREVIEW_CHARS = 60
_ACTION_DONE = {BulkAction.RETRY: "retried", BulkAction.DELETE: "deleted"}
ACTION_STATES = {
    BulkAction.RETRY: (JobState.FAILED, JobState.DELAYED),
    BulkAction.DELETE: (JobState.FAILED, JobState.DELAYED, JobState.WAITING, JobState.GROUPED),
}
"""The states each action takes (``bulk`` refuses the others; a test keeps the two in step), in the
order ``get_job`` looks, as ``retry_job`` and ``delete_job`` do. Also the ``--state`` choices."""
_DEFAULT_STATE = JobState.FAILED


def ask(question: str, *, yes_hint: str = "pass --yes") -> str | None:
    """The user's answer to ``question``, or None when standard input is not a terminal (scripts must opt in)."""
    if not sys.stdin.isatty():
        print_error(f"not asking on a non-interactive input; {yes_hint} to go ahead")
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
    if entry.state in (JobState.WAITING, JobState.DELAYED):
        head["lane"] = entry.lane  # null: the base lane
    if entry.worker is not None:
        head["worker"] = entry.worker
    if entry.due_ms is not None:
        head["dueAt"] = entry.due_ms
    if entry.job is None:
        return {**head, "valid": False, "problem": str(entry.problem), "raw": entry.raw.decode("utf-8", "replace")}
    job = entry.job
    fields = job.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {**head, "valid": True, "name": job.name, "properties": job.properties, "job": fields}


_WHERE_COLUMN = {
    JobState.WAITING: "lane",
    JobState.DELAYED: "lane",
    JobState.GROUPED: "group",
    JobState.ACTIVE: "worker",
}
"""The column that says where in its state an entry is."""


def _where(entry: JobEntry) -> str:
    if entry.state is JobState.ACTIVE:
        return entry.worker or ""
    if entry.state is JobState.GROUPED:
        return entry.job.group_id or "" if entry.job else ""
    if entry.state in (JobState.WAITING, JobState.DELAYED):
        return entry.lane or "base"
    return ""


def entry_table(entries: list[JobEntry], state: JobState | None, title: str) -> Table:
    """A table of entries: id, name, where (lane, group or worker), attempts, created, and error or due time.

    ``state`` None: the entries come from several states, and a column says which. ``title`` is
    rich markup (escape data in it); every cell is shown as it is.
    """
    table = Table(title=title)
    last = "due" if state is JobState.DELAYED else "error" if state is not None else "error / due"
    where = "where" if state is None else _WHERE_COLUMN.get(state)
    columns = ["id", "name", *([where] if where else []), "attempts", "created", last]
    for column in ["state", *columns] if state is None else columns:
        table.add_column(column)
    for entry in entries:
        head = [Text(entry.state.value)] if state is None else []
        place = [Text(_where(entry))] if where else []
        job = entry.job
        if job is None:
            table.add_row(*head, "?", "[red]invalid[/]", *place, "", "", Text(_preview(entry.raw)))
            continue
        detail = ms_text(entry.due_ms) if entry.state is JobState.DELAYED else (job.error or "")
        attempts = f"{job.attempts or 0}" + (f"/{job.max_attempts}" if job.max_attempts else "")
        table.add_row(
            *head,
            Text(job.id),
            Text(job.name or "?"),
            *place,
            *(Text(cell) for cell in (attempts, ms_text(job.created_at_ms), detail)),
        )
    return table


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``retry`` and ``delete`` to the command line."""
    retry = commands.add_parser("retry", help="move failed (or delayed) jobs back to waiting, by id or filter")
    retry.set_defaults(handler=_run_retry)
    delete = commands.add_parser("delete", help="delete jobs, by id or filter")
    delete.set_defaults(handler=_run_delete)
    for parser, action in ((retry, BulkAction.RETRY), (delete, BulkAction.DELETE)):
        states = [state.value for state in ACTION_STATES[action]]
        parser.add_argument(
            "--state",
            choices=states,
            default=None,
            help=f"which jobs (default {_DEFAULT_STATE.value}; ids without --state: wherever they are, "
            f"{', '.join(states)})",
        )
        parser.add_argument("queue", help="queue name")
        parser.add_argument("ids", nargs="*", metavar="ID", help="job ids, right after QUEUE (else --all or a filter)")
        parser.add_argument("--all", action="store_true", help="every job in the state")
        parser.add_argument("--name", default=None, help="only jobs with exactly this name")
        parser.add_argument("--error", default=None, metavar="TEXT", help="only jobs whose error contains TEXT")
        parser.add_argument(
            "--query",
            "--match",
            dest="match",
            default=None,
            metavar="QUERY",
            help="only jobs matching QUERY: words in the payload, field:value, name:, error:, id:, after:, before:, "
            "-negation, OR",
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
    moment = iso_ms(text)
    if moment is None:
        raise ValueError(f"{flag} {text!r} is not an ISO-8601 time such as 2026-01-31T12:00:00Z")
    return moment


def _job_filter(args: argparse.Namespace) -> JobFilter | None:
    """The filter the options describe, or None when no filter option is given."""
    fields: dict[str, Any] = {}
    if args.match is not None:
        fields.update(JobFilter.from_query(args.match).model_dump(exclude_none=True))  # text and where
    fields.update(name=args.name, error=args.error)
    fields.update(from_ms=_epoch_ms(args.from_time, "--from"), to_ms=_epoch_ms(args.to_time, "--to"))
    fields = {key: value for key, value in fields.items() if value is not None}
    return JobFilter(**fields) if fields else None


@dataclass
class _Plan:
    """What to work on: per state, the ids to pick (None: every job the filter matches); ids found nowhere."""

    targets: list[tuple[JobState, list[str] | None]]
    not_found: list[str] = field(default_factory=list)


@dataclass
class _Outcome:
    """The bulk results of every state of a plan, added up."""

    action: BulkAction
    queue: str
    states: list[JobState]
    dry_run: bool
    matched: int = 0
    moved: int = 0
    looked_at: int = 0
    sample: list[JobEntry] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, action: BulkAction, queue: str, plan: _Plan, results: list[BulkResult], *, dry_run: bool) -> _Outcome:
        outcome = cls(action, queue, [state for state, _ids in plan.targets], dry_run, not_found=plan.not_found)
        for result in results:
            outcome.matched += result.matched
            outcome.moved += result.moved
            outcome.looked_at += result.looked_at
            outcome.sample.extend(result.sample)
        del outcome.sample[SAMPLE_SIZE:]
        return outcome

    @property
    def label(self) -> str:
        """The states worked on, as words."""
        return _words(self.states or ACTION_STATES[self.action])


def _words(states: Sequence[JobState]) -> str:
    """States as words: ``failed``, ``failed or delayed``, ``failed, delayed or waiting``."""
    names = [state.value for state in states]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _run_bulk(args: argparse.Namespace, settings: CliSettings, action: BulkAction) -> int:
    job_filter = _job_filter(args)
    if not args.ids and not args.all and job_filter is None:
        raise ConfigError("name job ids, or pass --all or a filter (--name, --error, --query, --from, --to)")
    client, _ = redis_from(args, settings)
    try:
        return _bulk_steps(args, settings, client, action, job_filter)
    finally:
        client.close()


def _plan(args: argparse.Namespace, client: redis.Redis, space: KeySpace, action: BulkAction) -> _Plan:
    """The states to work on; ids without --state are looked up one by one, as `zenith job` does."""
    ids = list(dict.fromkeys(args.ids))
    if args.state is not None or not ids:
        return _Plan([(JobState(args.state or _DEFAULT_STATE), ids or None)])
    found: dict[JobState, list[str]] = {}
    not_found: list[str] = []
    for job_id in ids:
        try:
            entry = get_job(client, args.queue, job_id, keyspace=space)
        except NotFoundError as exc:
            if exc.what != "job":
                raise  # the queue itself does not exist
            not_found.append(job_id)
            continue
        if entry.state in ACTION_STATES[action]:
            found.setdefault(entry.state, []).append(job_id)
        else:  # a state the action does not take: a waiting job is not retried, a running one never moved
            not_found.append(job_id)
    # Grouped jobs first: deleting a group's fetchable job releases the next, which would then have
    # left the state it was found in before its own turn came.
    order = sorted(ACTION_STATES[action], key=lambda state: state is not JobState.GROUPED)
    return _Plan([(state, found[state]) for state in order if state in found], not_found)


def _bulk_steps(
    args: argparse.Namespace,
    settings: CliSettings,
    client: redis.Redis,
    action: BulkAction,
    job_filter: JobFilter | None,
) -> int:
    """Dry run first; then stop (--dry-run), ask, or go ahead with a progress bar."""
    space = keyspace_from(args, settings)
    plan = _plan(args, client, space, action)
    options: dict[str, Any] = {"keyspace": space, "job_filter": job_filter, "actor": args.actor}
    previews = [
        bulk(client, args.queue, state, action, ids=ids, dry_run=True, sample=SAMPLE_SIZE, **options)
        for state, ids in plan.targets
    ]
    preview = _Outcome.of(action, args.queue, plan, previews, dry_run=True)
    if args.dry_run:
        return _report(args, preview)
    if not args.yes and preview.matched:
        console(stderr=True).print(_preview_table(preview))
        answer = ask(f"{action.value.capitalize()} {preview.matched} {preview.label} jobs of {args.queue!r}? [y/N] ")
        if answer is None or answer.lower() not in ("y", "yes"):
            console(stderr=True).print("nothing changed")
            return EXIT_DECLINED
    results: list[BulkResult] = []
    with EventEmitter(client, keyspace=space) as events, _progress_bar() as bar:
        task = bar.add_task(f"{action.value} {preview.label}", total=preview.looked_at or None)
        for state, ids in plan.targets:
            before = sum(result.looked_at for result in results)

            def advance(looked_at: int, before: int = before) -> None:
                bar.update(task, completed=before + looked_at)

            results.append(
                bulk(client, args.queue, state, action, ids=ids, events=events, sample=0, progress=advance, **options)
            )
    return _report(args, _Outcome.of(action, args.queue, plan, results, dry_run=False))


def _progress_bar() -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    err = console(stderr=True)
    # Only on a terminal: elsewhere a transient bar leaves an empty line before any error line.
    return Progress(*columns, console=err, transient=True, disable=not err.is_terminal)


def _preview_table(outcome: _Outcome) -> Table:
    title = f"{outcome.matched} matching {outcome.label} jobs in {outcome.queue!r} (showing {len(outcome.sample)})"
    state = outcome.states[0] if len(outcome.states) == 1 else None
    return entry_table(outcome.sample, state, escape(title))


def _report(args: argparse.Namespace, outcome: _Outcome) -> int:
    """Print what was (or would be) done; exit 1 when an id was found nowhere, in both forms."""
    if args.json:
        print_json(
            {
                "action": outcome.action.value,
                "queue": outcome.queue,
                "state": outcome.states[0].value if len(outcome.states) == 1 else None,
                "states": [state.value for state in outcome.states],
                "dryRun": outcome.dry_run,
                "matched": outcome.matched,
                "moved": outcome.moved,
                "lookedAt": outcome.looked_at,
                "sample": [entry_json(entry) for entry in outcome.sample],
                "notFound": outcome.not_found,
            }
        )
    else:
        out = console()
        where = f"{outcome.label} jobs of {escape(repr(outcome.queue))}"
        if outcome.dry_run:
            out.print(_preview_table(outcome))
            done = _ACTION_DONE[outcome.action]
            out.print(f"dry run: {outcome.matched} {where} would be {done}; nothing changed")
        else:
            out.print(f"{_ACTION_DONE[outcome.action]} {outcome.moved} of {outcome.matched} matching {where}")
    if not outcome.not_found:
        return EXIT_OK
    states = _words(ACTION_STATES[outcome.action])
    missing = ", ".join(repr(job_id) for job_id in outcome.not_found)
    which = "this id" if len(outcome.not_found) == 1 else "these ids"
    hint = f"`zenith job {outcome.queue} ID` shows where a job is"
    print_error(f"{missing}: no {states} job of {outcome.queue!r} has {which}; {hint}")
    return EXIT_NOT_FOUND
