"""``zenith archive run|status|cleanup|migrate`` (and, from ``_archive_query``, ``search|jobs|timeline|export``).

The SQL archive's commands need the ``archive`` extra.

``zenith_archive`` (SQLAlchemy, Alembic) is imported only when an archive command runs, so the
rest of the command line works without the extra; without it these commands say how to install it.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from zenith_protocol import ConfigError
from zenith_sdk.cli._common import (
    CliSettings,
    add_output_options,
    add_redis_options,
    console,
    human_bytes,
    keyspace_from,
    print_json,
    redis_from,
    stop_on_signals,
    whole_number,
)
from zenith_sdk.cli._errors import one_line
from zenith_sdk.cli._supervise import add_processes_option, supervise
from zenith_sdk.supervisor import supervised_slot

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from zenith_archive.retention import CleanupReport, RetentionPolicy
    from zenith_archive.status import ArchiveStatus

__all__ = ["add_db_option", "open_archive", "register"]

EXIT_OK = 0
_EXTRA_HINT = "pip install 'zenith-sdk[archive]'"
_ARCHIVE_DEPENDENCIES = frozenset({"sqlalchemy", "alembic"})
_STATES = ("completed", "dead", "deleted", "waiting")
_AGE_KINDS = ("completed", "dead", "deleted", "events", "operator", "logs")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``archive`` (with its actions) to the command line."""
    parser = commands.add_parser("archive", help="the SQL archive: job history, timelines, search, retention")
    actions = parser.add_subparsers(dest="archive_command", required=True, metavar="ACTION")

    migrate = actions.add_parser("migrate", help="create or upgrade the archive's tables (a Node archive too)")
    add_db_option(migrate)
    add_output_options(migrate)
    migrate.set_defaults(handler=_with_extra(_run_migrate))

    run = actions.add_parser(
        "run",
        help="archive the lifecycle event stream until SIGTERM or Ctrl-C",
        description="Read the events stream with a consumer group and write it to the archive; run several to "
        "share the load. A new archive is created first; an older one needs `zenith archive migrate`.",
    )
    add_db_option(run)
    add_redis_options(run)
    _add_group_option(run)
    run.add_argument("--consumer", metavar="NAME", help="this archiver's name in the group (default: host-pid)")
    run.add_argument(
        "--batch",
        type=whole_number(1, 100_000),
        default=5_000,
        metavar="N",
        help="entries per transaction (default 5000)",
    )
    run.add_argument(
        "--states",
        default="completed,dead,deleted",
        metavar="LIST",
        help=f"final states archived in full, comma-separated, from {', '.join(_STATES)} (default "
        "completed,dead,deleted; others keep a summary row; waiting also copies each enqueued job to flux_job_archive)",
    )
    run.add_argument(
        "--claim-idle",
        type=whole_number(0),
        default=30_000,
        metavar="MS",
        help="take over entries another archiver has held this long (default 30000)",
    )
    run.add_argument(
        "--logs",
        action="store_true",
        help="also archive the live log lines published from now on (pub/sub: lines sent while no archiver "
        "listens are not archived)",
    )
    run.add_argument(
        "--no-legacy", action="store_true", help="do not write the Node console's flux_job_archive and flux_system_logs"
    )
    add_processes_option(
        run, "archiver processes sharing the stream, decoding on several cores (NAME-0, NAME-1, ... with --consumer)"
    )
    run.set_defaults(handler=_with_extra(_run_archiver))

    status = actions.add_parser("status", help="lag, pending entries, archivers and rows of the archive")
    add_db_option(status)
    add_redis_options(status)
    _add_group_option(status)
    add_output_options(status)
    status.set_defaults(handler=_with_extra(_run_status))

    cleanup = actions.add_parser(
        "cleanup",
        help="delete archived rows older than their retention, in batches",
        description="Ages default to retentionDays of the maintenance settings in Redis (PROTOCOL 10.4), whose "
        "lastRun is then updated; --days sets the default age instead and leaves Redis alone.",
    )
    add_db_option(cleanup)
    add_redis_options(cleanup)
    cleanup.add_argument("--days", type=_days, metavar="D", help="default age in days (0 keeps everything)")
    for kind in _AGE_KINDS:
        cleanup.add_argument(f"--{kind}", type=_days, metavar="D", help=f"days {kind} rows are kept")
    cleanup.add_argument(
        "--queue-age",
        action="append",
        default=[],
        metavar="QUEUE:STATE=D",
        help="days jobs of one queue in one state are kept (repeat; 0 keeps them for ever)",
    )
    cleanup.add_argument("--batch", type=whole_number(1, 100_000), default=1_000, metavar="N", help="rows per delete")
    add_output_options(cleanup)
    cleanup.set_defaults(handler=_with_extra(_run_cleanup))

    from zenith_sdk.cli import _archive_query  # search, jobs, timeline, export; it builds on this module

    _archive_query.register(actions, guard=_with_extra)


def add_db_option(parser: argparse.ArgumentParser) -> None:
    """``--db URL``: the archive (default: ``$ZENITH_ARCHIVE_URL``, else the zero-config SQLite file)."""
    parser.add_argument(
        "--db",
        metavar="URL",
        default=None,
        help="archive database, e.g. postgresql+psycopg://user@host/db "
        "(default: $ZENITH_ARCHIVE_URL, else ~/.local/share/zenith/archive.db)",
    )


def _add_group_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--group", default="archive", metavar="NAME", help="consumer group (default archive)")


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from exc
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


Handler = Callable[[argparse.Namespace, CliSettings], int]


def _with_extra(handler: Handler) -> Handler:
    """``handler``, run only once the archive extra is known to be installed."""

    def run(args: argparse.Namespace, settings: CliSettings) -> int:
        _require_extra()
        return handler(args, settings)

    return run


def _require_extra() -> None:
    try:
        import zenith_archive  # noqa: F401
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in _ARCHIVE_DEPENDENCIES:
            raise
        raise ConfigError(f"`zenith archive` needs the archive extra ({missing} is missing): {_EXTRA_HINT}") from exc


@contextmanager
def open_archive(args: argparse.Namespace, settings: CliSettings) -> Iterator[Engine]:
    """The archive ``--db`` names; a database error inside becomes a one-line ConfigError naming it."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

    from zenith_archive import connect
    from zenith_archive.db import describe_url

    engine = connect(args.db or settings.archive_url)
    where = describe_url(engine.url)
    try:
        yield engine
    except SQLAlchemyError as exc:
        reason = one_line(str(exc.orig if isinstance(exc, DBAPIError) else exc)) or type(exc).__name__
        if isinstance(exc, (OperationalError, InterfaceError)):
            raise ConfigError(
                f"cannot use the archive at {where} ({reason}); check that the database runs and --db URL "
                "(or $ZENITH_ARCHIVE_URL)"
            ) from exc
        raise ConfigError(
            f"the archive at {where} refused a statement ({reason}); "
            "`zenith archive migrate` brings its tables up to date, -vv shows the statement"
        ) from exc
    finally:
        engine.dispose()


def _run_migrate(args: argparse.Namespace, settings: CliSettings) -> int:
    from zenith_archive import migrate
    from zenith_archive.db import describe_url

    with open_archive(args, settings) as engine:
        done = migrate(engine)
    where = describe_url(engine.url)
    if args.json:
        print_json({"url": where, "before": done.before, "after": done.after, "changed": done.changed})
    elif done.changed:
        console().print(escape(f"archive at {where}: migrated from {done.before or 'nothing'} to {done.after}"))
    else:
        console().print(escape(f"archive at {where}: already at {done.after}, nothing to do"))
    return EXIT_OK


def _states(text: str) -> set[str]:
    states = {part.strip() for part in text.split(",") if part.strip()}
    unknown = states - set(_STATES)
    if unknown:
        raise ConfigError(f"--states: unknown {', '.join(sorted(unknown))}; choose from {', '.join(_STATES)}")
    return states


def _run_archiver(args: argparse.Namespace, settings: CliSettings) -> int:
    with open_archive(args, settings) as engine:
        from zenith_archive import migrate
        from zenith_archive.archiver import Archiver
        from zenith_archive.db import describe_url
        from zenith_archive.logs import LogArchiver
        from zenith_archive.migrations import current_revision

        states = _states(args.states)
        client, where = redis_from(args, settings)
        try:
            client.ping()  # an unreachable Redis is reported now; later outages are waited out
            with engine.connect() as connection:
                fresh = current_revision(connection) is None
            if fresh and migrate(engine).changed:
                console(stderr=True).print(
                    escape(f"archive: created the archive's tables at {describe_url(engine.url)}")
                )
            slot = supervised_slot()
            if args.processes > 1 and slot is None:
                where_to = f"{args.processes} archiver processes into {describe_url(engine.url)}"
                return supervise(args, args.processes, "archiver", where_to, label="archive")
            consumer = args.consumer if args.consumer is None or slot is None else f"{args.consumer}-{slot}"
            archiver = Archiver(
                client,
                engine,
                keyspace=keyspace_from(args, settings),
                group=args.group,
                consumer=consumer,
                batch=args.batch,
                states=states,
                claim_idle_ms=args.claim_idle,
                legacy_tables=not args.no_legacy,
            )
            workers: list[Any] = [archiver]
            banner = (
                f"archive: {archiver.stream} at {where} into {describe_url(engine.url)}, as {archiver.consumer} "
                f"of group {archiver.group}"
            )
            if args.logs and not slot:  # one log archiver: each would write every line it hears
                log_archiver = LogArchiver(
                    client, engine, keyspace=keyspace_from(args, settings), legacy_tables=not args.no_legacy
                )
                workers.append(log_archiver)
                banner += f", and the log lines of {log_archiver.channel}"
            _until_stopped(workers, banner + "; stop with Ctrl-C or SIGTERM")
        finally:
            client.close()
    return EXIT_OK


def _until_stopped(workers: list[Any], banner: str) -> None:
    """Run each worker's ``run()`` in a thread until a signal (or one of them fails), then ``stop()`` them all."""
    err = console(stderr=True)
    failure: list[BaseException] = []

    def work(worker: Any) -> None:
        try:
            worker.run()
        except BaseException as exc:  # handed to the main thread, which reports it
            failure.append(exc)

    err.print(escape(banner))
    with stop_on_signals() as stop_requested:
        threads = [threading.Thread(target=work, args=(worker,), daemon=True) for worker in workers]
        for thread in threads:
            thread.start()
        # A timed wait, so the main thread returns to the interpreter to run signal handlers.
        while not stop_requested.wait(0.5) and all(thread.is_alive() for thread in threads):
            pass
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join()
    if failure:
        raise failure[0]
    err.print("archive: stopped")


def _ms_text(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _run_status(args: argparse.Namespace, settings: CliSettings) -> int:
    from zenith_archive.status import status

    with open_archive(args, settings) as engine:
        client, where = redis_from(args, settings)
        try:
            found = status(client, engine, keyspace=keyspace_from(args, settings), group=args.group)
        finally:
            client.close()
    if args.json:
        print_json(found.to_json())
    else:
        _print_status(found, where)
    return EXIT_OK


def _print_status(found: ArchiveStatus, where: str) -> None:
    out = console()
    table = Table(title=escape(f"Archive of {found.stream} at {where}"), show_header=False)
    table.add_column("what")
    table.add_column("value")
    lag = "unknown" if found.lag is None else str(found.lag)
    gap = {None: "unknown", False: "no", True: "[red]yes: entries were trimmed before they were archived[/]"}
    revision = found.revision or "[red]not migrated: run `zenith archive migrate`[/]"
    if found.revision and found.revision != found.head_revision:
        revision = f"[yellow]{found.revision} (this version ships {found.head_revision})[/]"
    rows: list[tuple[str, str | Text]] = [
        ("stream", f"{found.stream_length} entries ({found.first_id or '-'} .. {found.last_id or '-'})"),
        ("group", Text(found.group if found.group_exists else f"{found.group} (not created yet)")),
        ("lag (unread entries)", lag),
        ("pending (read, not acknowledged)", str(found.pending)),
        ("gap", gap[found.gap]),
        ("last archived", f"{found.last_archived_id or '-'} at {_ms_text(found.last_archived_at_ms)}"),
        ("schema revision", revision),
    ]
    for name, value in rows:
        table.add_row(Text(name), value if isinstance(value, Text) else value)
    for consumer in found.consumers:
        table.add_row(
            Text(f"archiver {consumer.name}"), f"{consumer.pending} pending, idle {consumer.idle_ms / 1000:.1f} s"
        )
    for name, count in found.rows.items():
        table.add_row(Text(f"rows in {name}"), ("~" if name in found.rows_estimated else "") + f"{count:,}")
    out.print(table)


def _policy(args: argparse.Namespace, settings: CliSettings) -> tuple[RetentionPolicy, bool]:
    """The retention policy the options give, and whether it came from the maintenance settings in Redis."""
    from zenith_archive.retention import RetentionPolicy, maintenance_config

    days = {kind: getattr(args, kind) for kind in _AGE_KINDS if getattr(args, kind) is not None}
    queues: dict[str, dict[str, float]] = {}
    for text in args.queue_age:
        target, equals, age = text.rpartition("=")
        queue, colon, state = target.rpartition(":")
        if not (equals and colon and queue and state):
            raise ConfigError(f"--queue-age {text!r}: write QUEUE:STATE=DAYS, e.g. emails:completed=3")
        try:
            queues.setdefault(queue, {})[state] = _days(age)
        except argparse.ArgumentTypeError as exc:
            raise ConfigError(f"--queue-age {text!r}: {exc}") from exc
    if args.days is not None:
        return RetentionPolicy(default_days=args.days, days=days, queues=queues), False
    client, _ = redis_from(args, settings)
    try:
        config = maintenance_config(client, keyspace_from(args, settings))
    finally:
        client.close()
    return RetentionPolicy.from_maintenance(config, days=days, queues=queues), True


def _run_cleanup(args: argparse.Namespace, settings: CliSettings) -> int:
    from zenith_archive.retention import cleanup, record_cleanup_run

    policy, from_redis = _policy(args, settings)
    with open_archive(args, settings) as engine:
        err = console(stderr=True)
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True, disable=args.json) as progress:
            task = progress.add_task("deleting old rows", total=None)

            def show(kind: str, deleted: int) -> None:
                progress.update(task, description=escape(f"deleting old rows: {kind} {deleted:,}"))

            report = cleanup(engine, policy, batch=args.batch, progress=show)
    if from_redis:
        client, _ = redis_from(args, settings)
        try:
            record_cleanup_run(client, keyspace_from(args, settings))
        finally:
            client.close()
    _print_cleanup(report, policy, as_json=args.json)
    return EXIT_OK


def _print_cleanup(report: CleanupReport, policy: RetentionPolicy, *, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "deleted": report.deleted,
                "total": report.total,
                "sizeBefore": report.size_before,
                "sizeAfter": report.size_after,
                "defaultDays": policy.default_days,
            }
        )
        return
    table = Table(title=f"Deleted {report.total:,} rows (default age {policy.default_days:g} days)")
    table.add_column("rows")
    table.add_column("deleted", justify="right")
    for kind, count in report.deleted.items():
        table.add_row(Text(kind), f"{count:,}")
    console().print(table)
    if report.size_before is not None and report.size_after is not None:
        console().print(f"archive size: {human_bytes(report.size_before)} -> {human_bytes(report.size_after)}")
