"""``zenith conformance worker|producer|manifest|queues``: prove that another SDK behaves like this one (13.5)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from zenith_protocol import validate_queue_name
from zenith_sdk.cli._common import (
    CliSettings,
    add_output_options,
    add_redis_options,
    console,
    keyspace_from,
    print_json,
    redis_from,
)
from zenith_sdk.conformance import (
    WORKER_CHECKS,
    CheckStatus,
    ConformanceReport,
    check_producer,
    check_worker,
    producer_manifest,
    worker_queues,
)

__all__ = ["register"]

EXIT_OK, EXIT_FAILED = 0, 1  # unusable options, an unreachable Redis and keys in use are main()'s: exit 2
_STYLES = {CheckStatus.PASS: "green", CheckStatus.WARN: "yellow", CheckStatus.FAIL: "red"}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``conformance`` and its subcommands to the command line."""
    parser = commands.add_parser(
        "conformance",
        help="check that a worker or producer of another SDK behaves as the spec says",
        description="Behavioural conformance (spec 13.5). Exit status 0 when no check fails, 1 when one does, "
        "2 when Redis cannot be reached, the options are unusable or the run's keys already hold data.",
    )
    actions = parser.add_subparsers(dest="conformance_command", required=True, metavar="ACTION")

    worker = actions.add_parser(
        "worker",
        help="push the conformance jobs and watch the worker under test",
        description="Start this first; when it says it is waiting, start the worker under test with the conformance "
        "jobs on the queues it names, one job at a time. Takes about 15 s.",
    )
    _queue_option(worker)
    worker.add_argument("--wait", type=float, default=60.0, metavar="S", help="wait for a worker (default 60)")
    worker.add_argument(
        "--timeout", type=float, default=60.0, metavar="S", help="time the checks may take once it did (default 60)"
    )
    worker.add_argument(
        "--check", action="append", choices=WORKER_CHECKS, metavar="NAME", help="run only this check (repeatable)"
    )
    add_redis_options(worker)
    add_output_options(worker)
    worker.set_defaults(handler=_run_worker)

    producer = actions.add_parser(
        "producer",
        help="check what the producer under test wrote for the manifest's jobs",
        description="Push every job `zenith conformance manifest` prints with the producer under test, then run this. "
        "It deletes those jobs afterwards unless --keep.",
    )
    _queue_option(producer)
    producer.add_argument("--keep", action="store_true", help="leave the pushed jobs in Redis")
    add_redis_options(producer)
    add_output_options(producer)
    producer.set_defaults(handler=_run_producer)

    manifest = actions.add_parser("manifest", help="print the jobs a producer under test pushes, in order")
    _queue_option(manifest)
    add_output_options(manifest)
    manifest.set_defaults(handler=_run_manifest)

    queues = actions.add_parser("queues", help="print the queues the worker under test listens on, comma-separated")
    _queue_option(queues)
    queues.set_defaults(handler=_run_queues)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _queue_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--queue", default="conformance", help="the name the run's queues derive from (default conformance)"
    )


def _run_queues(args: argparse.Namespace, settings: CliSettings) -> int:
    sys.stdout.write(",".join(worker_queues(args.queue)) + "\n")
    return EXIT_OK


def _run_manifest(args: argparse.Namespace, settings: CliSettings) -> int:
    jobs = producer_manifest(args.queue)
    if args.json:
        print_json({"queue": args.queue, "jobs": [job.to_dict() for job in jobs]})
        return EXIT_OK
    table = Table(title=f"Push these jobs, in this order, as new jobs (queue {args.queue}.produced)")
    for column in ("case", "name", "members", "properties"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        members = {k: v for k, v in job.to_dict().items() if k not in ("case", "queue", "name", "properties")}
        table.add_row(Text(job.case), Text(job.name), Text(_json(members)), Text(_json(job.properties)))
    out = console()
    out.print(table)
    out.print("`zenith conformance manifest --json` prints them for a program.")
    return EXIT_OK


@contextmanager
def _status(enabled: bool) -> Iterator[Callable[[str], None]]:
    """A transient status line on standard error (only on a terminal); yields a function that updates it."""
    err = console(stderr=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=not (enabled and err.is_terminal)) as progress:
        task = progress.add_task("connecting", total=None)
        yield lambda text: progress.update(task, description=escape(text))


def _run_worker(args: argparse.Namespace, settings: CliSettings) -> int:
    queue = validate_queue_name(args.queue)
    client, where = redis_from(args, settings)
    err = console(stderr=True)
    try:
        client.ping()  # an unreachable Redis fails here, before anything is written
        with _status(True) as show:

            def waiting(queues: tuple[str, ...]) -> None:
                names = ",".join(queues)
                err.print(
                    escape(
                        f"waiting for a worker on {where}: start the worker under test now with the conformance jobs "
                        f"on the queues {names}, one job at a time (for this SDK: zenith worker "
                        f"zenith_sdk.conformance:app --queues {names})"
                    )
                )
                show("waiting for a worker to take the first job")

            report = check_worker(
                client,
                queue=queue,
                keyspace=keyspace_from(args, settings),
                wait_s=args.wait,
                timeout_s=args.timeout,
                checks=args.check,
                on_waiting=waiting,
                on_progress=lambda done, total: show(f"checking: {done} of {total} checks concluded"),
            )
    finally:
        client.close()
    return _print_report(report, args.json)


def _run_producer(args: argparse.Namespace, settings: CliSettings) -> int:
    queue = validate_queue_name(args.queue)
    client, _where = redis_from(args, settings)
    try:
        report = check_producer(client, queue=queue, keyspace=keyspace_from(args, settings), keep=args.keep)
    finally:
        client.close()
    return _print_report(report, args.json)


def _print_report(report: ConformanceReport, as_json: bool) -> int:
    status = EXIT_OK if report.ok else EXIT_FAILED
    if as_json:
        print_json(report.to_dict())
        return status
    table = Table(title=escape(f"{report.role} conformance, queue {report.queue}"))
    for column in ("check", "§", "result", "detail"):
        table.add_column(column, overflow="fold")
    for check in report.checks:
        result = Text(check.status.value, style=_STYLES[check.status])
        table.add_row(Text(check.name), Text(", ".join(check.sections)), result, Text(check.detail))
    out = console()
    out.print(table)
    for check in report.checks:
        for problem in check.problems[1:]:
            out.print(Text.assemble((check.name, _STYLES[check.status]), ": ", problem))
    failed = report.failed()
    if failed:
        out.print(f"[red]{len(failed)} failed: {escape(', '.join(failed))}[/]")
    else:
        out.print("[green]OK[/]: no check failed")
    return status
