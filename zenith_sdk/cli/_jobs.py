"""``zenith jobs|job|retry|delete|pause|resume|purge|clear-failed|push``: see and steer jobs from the shell."""

from __future__ import annotations

import argparse
import json
from typing import Any

import redis
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from zenith_protocol import PRIORITY_LANES, KeySpace
from zenith_sdk.cli import _bulk_cli
from zenith_sdk.cli._bulk_cli import (
    EXIT_DECLINED,
    EXIT_OK,
    ask,
    entry_json,
    entry_table,
    ms_text,
)
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
    whole_number,
)
from zenith_sdk.control import JobState, clear_failed, get_job, list_jobs, pause, purge, require_queue, resume
from zenith_sdk.control.jobs import MAX_PAGE
from zenith_sdk.events import EventEmitter
from zenith_sdk.producer import Producer

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the job commands (``jobs``, ``job``, ``retry``, ``delete``, queue switches, ``push``)."""
    listing = commands.add_parser(
        "jobs", help="a page of a queue's waiting (every lane), grouped, delayed, failed or active jobs"
    )
    listing.add_argument("queue", help="queue name")
    listing.add_argument("--state", choices=[s.value for s in JobState], default="waiting", help="default waiting")
    listing.add_argument("--offset", type=whole_number(0), default=0, metavar="N", help="skip N jobs (default 0)")
    listing.add_argument(
        "--limit",
        type=whole_number(1, MAX_PAGE),
        default=50,
        metavar="N",
        help=f"show N jobs, 1..{MAX_PAGE} (default 50)",
    )
    listing.add_argument(
        "--oldest-first",
        action="store_true",
        help="oldest (or soonest due) first; waiting: in the order workers take them",
    )
    add_redis_options(listing)
    add_output_options(listing)
    listing.set_defaults(handler=_run_jobs)

    one = commands.add_parser("job", help="one job with its state and every field")
    one.add_argument("queue", help="queue name")
    one.add_argument("id", help="job id")
    add_redis_options(one)
    add_output_options(one)
    one.set_defaults(handler=_run_job)

    _bulk_cli.register(commands)
    _register_switches(commands)
    _register_push(commands)


def _register_switches(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, text, handler in (
        ("pause", "stop workers fetching from a queue", _run_pause),
        ("resume", "let workers fetch from a paused queue again", _run_resume),
        (
            "purge",
            "delete every key of a queue: all its jobs (those waiting behind its FIFO groups too), flags and "
            "processing lists",
            _run_purge,
        ),
        ("clear-failed", "delete every failed (dead-lettered) job of a queue", _run_clear_failed),
    ):
        parser = commands.add_parser(name, help=text)
        parser.add_argument("queue", help="queue name")
        if name in ("purge", "clear-failed"):
            parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
        add_actor_options(parser)
        parser.set_defaults(handler=handler)


def _register_push(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    push = commands.add_parser("push", help="enqueue one job; prints its id")
    push.add_argument("queue", help="queue name")
    push.add_argument("name", help="job name")
    add_data_option(push)
    push.add_argument("--delay", type=float, default=None, metavar="S", help="run after S seconds")
    push.add_argument(
        "--priority", choices=PRIORITY_LANES, default=None, help="push onto this lane (default: the base list)"
    )
    push.add_argument(
        "--group", default=None, metavar="G", help="FIFO group: its jobs run one at a time, in push order"
    )
    push.add_argument("--max-attempts", type=int, default=None, metavar="N", help="attempts before dead-lettering")
    add_actor_options(push)
    push.set_defaults(handler=_run_push)


def _connect(args: argparse.Namespace, settings: CliSettings) -> tuple[redis.Redis, KeySpace]:
    client, _ = redis_from(args, settings)
    return client, keyspace_from(args, settings)


def _run_jobs(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = _connect(args, settings)
    state = JobState(args.state)
    try:
        entries = list_jobs(
            client,
            args.queue,
            state,
            keyspace=space,
            offset=args.offset,
            limit=args.limit,
            oldest_first=args.oldest_first,
        )
        if not entries:
            require_queue(client, args.queue, keyspace=space)  # an empty page of an unknown queue is a typo
    finally:
        client.close()
    if args.json:
        print_json([entry_json(entry) for entry in entries])
        return EXIT_OK
    order = "oldest first" if args.oldest_first else "newest first"
    title = f"{state.value} jobs of {args.queue!r} from {args.offset}, {order}"
    console().print(entry_table(entries, state, escape(title)))
    return EXIT_OK


def _run_job(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = _connect(args, settings)
    try:
        entry = get_job(client, args.queue, args.id, keyspace=space)  # a delayed job comes with its due time
    finally:
        client.close()
    data = entry_json(entry)
    if args.json:
        print_json(data)
        return EXIT_OK
    table = Table(title=escape(f"job {args.id} of {args.queue!r}"), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows: dict[str, Any] = {"state": entry.state.value}
    if entry.due_ms is not None:
        rows["due"] = ms_text(entry.due_ms)
    rows.update({key: value for key, value in data.items() if key not in ("queue", "state", "dueAt", "job")})
    rows.update(data.get("job", {}))
    for key in ("createdAt", "failedAt"):
        if isinstance(rows.get(key), int):
            rows[key] = f"{rows[key]} ({ms_text(rows[key])})"
    for key, value in rows.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        table.add_row(escape(key), escape(text))
    console().print(table)
    return EXIT_OK


def _done(args: argparse.Namespace, data: dict[str, Any], text: str) -> int:
    if args.json:
        print_json({"queue": args.queue, **data})
    else:
        console().print(escape(f"queue {args.queue!r}: {text}"))
    return EXIT_OK


def _run_pause(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = _connect(args, settings)
    try:
        require_queue(client, args.queue, keyspace=space)
        with EventEmitter(client, keyspace=space) as events:
            pause(client, args.queue, actor=args.actor, keyspace=space, events=events)
    finally:
        client.close()
    return _done(args, {"paused": True}, "paused; workers fetch nothing from it until `zenith resume`")


def _run_resume(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = _connect(args, settings)
    try:
        # A drained queue may have nothing left but its paused flag; resuming it is still valid.
        if not client.exists(space.paused(args.queue)):
            require_queue(client, args.queue, keyspace=space)
        with EventEmitter(client, keyspace=space) as events:
            resume(client, args.queue, actor=args.actor, keyspace=space, events=events)
    finally:
        client.close()
    return _done(args, {"paused": False}, "resumed")


def _run_purge(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = _connect(args, settings)
    try:
        require_queue(client, args.queue, keyspace=space)
        if not args.yes:
            question = f"Purge deletes every job of {args.queue!r}. Type the queue name to confirm: "
            if ask(question) != args.queue:
                console(stderr=True).print("not purged")
                return EXIT_DECLINED
        with EventEmitter(client, keyspace=space) as events:
            deleted = purge(client, args.queue, confirm=args.queue, actor=args.actor, keyspace=space, events=events)
    finally:
        client.close()
    return _done(args, {"deletedKeys": deleted}, f"purged ({deleted} keys deleted)")


def _run_clear_failed(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = _connect(args, settings)
    try:
        require_queue(client, args.queue, keyspace=space)
        if not args.yes:
            count = int(client.llen(space.failed(args.queue)))
            answer = ask(f"Delete the {count} failed jobs of {args.queue!r}? [y/N] ")
            if answer is None or answer.lower() not in ("y", "yes"):
                console(stderr=True).print("nothing changed")
                return EXIT_DECLINED
        with EventEmitter(client, keyspace=space) as events:
            cleared = clear_failed(client, args.queue, actor=args.actor, keyspace=space, events=events)
    finally:
        client.close()
    return _done(args, {"cleared": cleared}, f"{cleared} failed jobs deleted")


def _push_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {
        "delay_s": args.delay,
        "priority": args.priority,
        "group_id": args.group,
        "max_attempts": args.max_attempts,
    }
    return {key: value for key, value in options.items() if value is not None}


def _run_push(args: argparse.Namespace, settings: CliSettings) -> int:
    properties = read_json_object(args.data)  # before connecting: bad input changes nothing
    client, space = _connect(args, settings)
    try:
        with Producer(client, keyspace=space) as producer:
            job_id = producer.push(args.name, properties, queue=args.queue, **_push_options(args))
    finally:
        client.close()
    if args.json:
        print_json({"queue": args.queue, "id": job_id})
    else:
        console().print(Text(job_id))
    return EXIT_OK
