"""``zenith schedules list|add|remove|pause|resume|run`` and ``zenith scheduler`` (the ticker loop)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from zenith_protocol import Schedule, encode_schedule
from zenith_sdk.cli._common import (
    CliSettings,
    add_actor_options,
    add_data_option,
    add_output_options,
    add_redis_options,
    console,
    keyspace_from,
    print_json,
    read_json_object,
    redis_from,
    stop_on_signals,
)
from zenith_sdk.cli._errors import print_error
from zenith_sdk.schedules import InvalidScheduleEntry, Scheduler

__all__ = ["register"]

EXIT_OK, EXIT_DECLINED = 0, 1


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``schedules`` (with its subcommands) and ``scheduler`` to the command line."""
    parser = commands.add_parser("schedules", help="list and manage cron schedules")
    actions = parser.add_subparsers(dest="schedules_command", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="every schedule with its next and last run (paused ones too)")
    add_redis_options(listing)
    add_output_options(listing)
    listing.set_defaults(handler=_run_list)

    add = actions.add_parser("add", help="create or replace a schedule")
    add.add_argument("id", help="schedule id")
    add.add_argument("cron", help="cron expression, five fields, e.g. '0 3 * * *'")
    add.add_argument("queue", help="queue the job is pushed onto")
    add.add_argument("job", help="job name")
    add_data_option(add)
    add.add_argument("--properties", dest="data", help=argparse.SUPPRESS)  # the former name, kept for scripts
    add.add_argument("--timezone", default=None, metavar="ZONE", help="IANA zone the cron is read in (default UTC)")
    add.add_argument("--priority", choices=("critical", "high", "low"), default=None, help="lane to push onto")
    add.add_argument("--paused", action="store_true", help="register it paused")
    add_actor_options(add)
    add.set_defaults(handler=_run_add)

    for name, text, handler in (
        ("remove", "delete a schedule", _run_remove),
        ("pause", "stop a schedule firing (it is kept)", _run_pause),
        ("resume", "let a paused schedule fire again (next run computed from now)", _run_resume),
        ("run", "push the schedule's job now, leaving its next run alone", _run_now),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("id", help="schedule id")
        if name == "remove":
            action.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
        add_actor_options(action)
        action.set_defaults(handler=handler)

    ticker = commands.add_parser(
        "scheduler",
        help="fire due schedules (run one or more anywhere: each run fires once)",
        description="Fire due cron schedules every --interval seconds until SIGTERM or Ctrl-C.",
    )
    ticker.add_argument("--interval", type=_seconds, default=1.0, metavar="S", help="seconds between ticks (default 1)")
    ticker.add_argument("--no-events", action="store_true", help="do not write lifecycle events")
    add_redis_options(ticker)
    ticker.set_defaults(handler=_run_scheduler)


def _seconds(text: str) -> float:
    """An argparse type: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from exc
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _scheduler(args: argparse.Namespace, settings: CliSettings, *, events: bool = True) -> Scheduler:
    client, _ = redis_from(args, settings)
    return Scheduler(client, keyspace=keyspace_from(args, settings), events=events)


def _ms_text(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _as_json(entry: Schedule | InvalidScheduleEntry) -> dict[str, Any]:
    if isinstance(entry, InvalidScheduleEntry):
        return {"id": entry.id, "valid": False, "error": entry.error, "raw": entry.raw}
    fields: dict[str, Any] = {**encode_schedule(entry), "valid": True, "enabled": entry.enabled}
    fields["job"] = json.loads(fields["job"])
    fields["nextRun"], fields["lastRun"] = entry.next_run_ms, entry.last_run_ms
    return fields


def _run_list(args: argparse.Namespace, settings: CliSettings) -> int:
    with _scheduler(args, settings, events=False) as scheduler:
        entries = scheduler.list(rescan=True)
    if args.json:
        print_json([_as_json(entry) for entry in entries])
        return EXIT_OK
    table = Table(title=f"{len(entries)} schedules")
    for column in ("id", "cron", "zone", "queue", "job", "state", "next run", "last run"):
        table.add_column(column)
    for entry in entries:
        if isinstance(entry, InvalidScheduleEntry):
            cells = (entry.id, entry.raw.get("cron", "?"), "", entry.raw.get("queue", "?"), "")
            table.add_row(*(Text(cell) for cell in cells), "[red]invalid[/]")
            continue
        state = "enabled" if entry.enabled else "[yellow]paused[/]"
        cells = (entry.id, entry.cron, entry.timezone or "UTC", entry.queue, entry.job.name or "?")
        times = (_ms_text(entry.next_run_ms) if entry.enabled else "-", _ms_text(entry.last_run_ms))
        table.add_row(*(Text(cell) for cell in cells), state, *times)
    console().print(table)
    for entry in entries:
        if isinstance(entry, InvalidScheduleEntry):
            print_error(entry.error, label=f"schedule {entry.id!r} is invalid")
    return EXIT_OK


def _run_add(args: argparse.Namespace, settings: CliSettings) -> int:
    properties = read_json_object(args.data)  # before connecting: bad input changes nothing
    with _scheduler(args, settings) as scheduler:
        schedule = scheduler.register(
            args.id,
            args.cron,
            args.queue,
            args.job,
            properties,
            actor=args.actor,
            timezone=args.timezone,
            enabled=not args.paused,
            priority=args.priority,
        )
    return _done(args, {"id": schedule.id, "nextRun": schedule.next_run_ms}, f"registered; next run {_next(schedule)}")


def _next(schedule: Schedule) -> str:
    return _ms_text(schedule.next_run_ms) if schedule.enabled else "none (paused)"


def _run_remove(args: argparse.Namespace, settings: CliSettings) -> int:
    if not args.yes and not _confirm(f"Remove schedule {args.id!r}? [y/N] "):
        console(stderr=True).print("not removed")
        return EXIT_DECLINED
    with _scheduler(args, settings) as scheduler:
        scheduler.remove(args.id, actor=args.actor)
    return _done(args, {"id": args.id, "removed": True}, "removed")


def _confirm(question: str) -> bool:
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _run_pause(args: argparse.Namespace, settings: CliSettings) -> int:
    with _scheduler(args, settings) as scheduler:
        scheduler.pause(args.id, actor=args.actor)
    return _done(args, {"id": args.id, "enabled": False}, "paused")


def _run_resume(args: argparse.Namespace, settings: CliSettings) -> int:
    with _scheduler(args, settings) as scheduler:
        next_run = scheduler.resume(args.id, actor=args.actor)
    return _done(args, {"id": args.id, "enabled": True, "nextRun": next_run}, f"resumed; next run {_ms_text(next_run)}")


def _run_now(args: argparse.Namespace, settings: CliSettings) -> int:
    with _scheduler(args, settings) as scheduler:
        job_id = scheduler.run_now(args.id, actor=args.actor)
    return _done(args, {"id": args.id, "jobId": job_id}, f"pushed job {job_id}")


def _done(args: argparse.Namespace, data: dict[str, Any], text: str) -> int:
    if args.json:
        print_json(data)
    else:
        console().print(escape(f"schedule {args.id}: {text}"))
    return EXIT_OK


def _run_scheduler(args: argparse.Namespace, settings: CliSettings) -> int:
    client, where = redis_from(args, settings)
    scheduler = Scheduler(client, keyspace=keyspace_from(args, settings), events=not args.no_events)
    err = console(stderr=True)
    every = f"every {args.interval:g} s"
    err.print(escape(f"scheduler: firing due schedules in {where} {every}; stop with Ctrl-C or SIGTERM"))
    with stop_on_signals() as stop_requested:
        try:
            # Redis outages are logged and retried inside; a signal sets the event, which ends the loop.
            scheduler.run(interval_s=args.interval, stop=stop_requested)
        finally:
            client.close()
    err.print("scheduler: stopped")
    return EXIT_OK
