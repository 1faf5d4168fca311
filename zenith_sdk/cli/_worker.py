"""``zenith worker module:app``: run the Python worker; ``zenith recover``: requeue dead workers' jobs
and let stuck FIFO groups go on."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext

import redis
from rich.markup import escape

from zenith_protocol import ConfigError, validate_queue_name
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
from zenith_sdk.cli._supervise import add_processes_option, supervise
from zenith_sdk.events import EventEmitter
from zenith_sdk.pulse import Pulse
from zenith_sdk.supervisor import ChildExit, Supervisor, supervised_ready, supervised_slot
from zenith_sdk.worker import App, Worker, WorkerOptions, recover_dead_workers
from zenith_sdk.worker._options import new_worker_id
from zenith_sdk.worker._recovery import put_back_reaped

__all__ = ["load_app", "register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``worker`` and ``recover`` to the command line."""
    parser = commands.add_parser(
        "worker",
        help="run a Python worker for the handlers in module:app",
        description="Fetch jobs reliably (a processing list per worker), run the handlers registered on the App, "
        "retry with backoff, dead-letter what cannot run. SIGTERM/SIGINT stop it gracefully; a second one forces.",
    )
    parser.add_argument("app", metavar="MODULE:APP", help="where the App (or a dict of job name -> handler) lives")
    parser.add_argument("--queues", "-q", default="default", help="comma-separated queues, in priority order")
    parser.add_argument("--concurrency", "-c", type=int, default=1, help="jobs run at once (threads)")
    parser.add_argument("--prefetch", type=int, default=None, help="jobs fetched ahead (default: 4 per slot)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S", help="default per-job time limit")
    parser.add_argument("--max-attempts", type=int, default=3, help="attempts for jobs that set none")
    parser.add_argument("--shutdown-timeout", type=float, default=30.0, metavar="S", help="grace period on stop")
    parser.add_argument("--no-events", action="store_true", help="do not write lifecycle events")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        metavar="S",
        help="longest wait between fetches while idle (jobs pushed onto a base list, or announced by a Zenith "
        "producer, start at once; others within S)",
    )
    parser.add_argument(
        "--no-wake", action="store_true", help="poll only: no blocking wait on the base lists, no wake channels"
    )
    parser.add_argument("--worker-id", default=None, help="this worker's id (default: hostname-pid-random)")
    add_processes_option(parser, "worker processes of --concurrency slots each, for jobs that need several cores", "-p")
    parser.add_argument(
        "--max-jobs-per-child",
        type=whole_number(1),
        default=None,
        metavar="N",
        help="replace a worker process after it has run N jobs (it finishes them first)",
    )
    parser.add_argument(
        "--max-memory-per-child",
        type=float,
        default=None,
        metavar="MIB",
        help="replace a worker process once its resident memory exceeds MIB (after the job it is running)",
    )
    parser.add_argument(
        "--pulse",
        default=None,
        metavar="SERVICE",
        help="also report CPU, memory and disk as a pulse node of SERVICE (with --processes, one node for "
        "the supervisor and its workers, each process's memory listed)",
    )
    add_redis_options(parser)
    parser.set_defaults(handler=_run_worker)

    recover = commands.add_parser(
        "recover",
        help="put back the in-flight jobs of workers that are gone, and let stuck FIFO groups go on",
        description="Put back the jobs in the processing lists of workers whose heartbeat has expired (or that "
        "never registered), then let every stuck FIFO group go on: its next pending job becomes fetchable, or a "
        "held group with nothing left is freed. Exit status 1 when a stuck group's queue cannot be told.",
    )
    recover.add_argument(
        "--group-queue",
        action="append",
        default=[],
        metavar="GROUP=QUEUE",
        help="the queue of a stuck group whose queue nothing tells (repeatable)",
    )
    add_redis_options(recover)
    add_output_options(recover)
    recover.set_defaults(handler=_run_recover)


def load_app(spec: str) -> App:
    """Import ``module:attribute`` and return the App it names (a mapping is wrapped in one)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"expected MODULE:APP such as 'myproject.jobs:app', got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules in the current folder import
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r}: {exc}") from exc
    target = getattr(module, attribute, None)
    if isinstance(target, App):
        return target
    if isinstance(target, Mapping):
        return App(target)
    found = "nothing" if target is None else type(target).__name__
    raise ConfigError(f"{spec!r} must name a zenith_sdk.worker.App or a dict of handlers, found {found}")


def _run_worker(args: argparse.Namespace, settings: CliSettings) -> int:
    app = load_app(args.app)  # in the supervisor too: an app that cannot import is told once
    queues = tuple(q.strip() for q in args.queues.split(",") if q.strip())
    slot = supervised_slot()
    fields = {
        "queues": queues,
        "concurrency": args.concurrency,
        "prefetch": args.prefetch,
        "default_timeout_s": args.timeout,
        "default_max_attempts": args.max_attempts,
        "shutdown_timeout_s": args.shutdown_timeout,
        "events": not args.no_events,
        "poll_interval_s": args.poll_interval,
        "wake": not args.no_wake,
        "max_jobs": args.max_jobs_per_child,
        "max_memory_mb": args.max_memory_per_child,
    }
    if args.worker_id:
        # A replacement child takes a new id (PROTOCOL 4.6: one id per process lifetime).
        fields["worker_id"] = args.worker_id if slot is None else f"{args.worker_id}-{slot}-{os.getpid()}"
    options = WorkerOptions(**fields)  # checked before any child starts
    recycled = args.max_jobs_per_child is not None or args.max_memory_per_child is not None
    if slot is None and (args.processes > 1 or recycled):
        return _supervise_workers(args, settings, app, queues)
    client, where = redis_from(args, settings)
    out = console(stderr=True)
    handlers = f"{len(app)} handlers {app.names()}"
    out.print(escape(f"worker {options.worker_id}: {handlers}, queues {list(queues)}, Redis {where}"))
    space = keyspace_from(args, settings)
    worker = Worker(app, client, keyspace=space, options=options)
    supervised_ready()  # past imports and options: being killed from now on is no failure to start
    # A supervised worker reports no pulse of its own: its supervisor's node counts it.
    with _pulse(args, settings, client) if slot is None else nullcontext():
        worker.run()
    out.print(escape(f"worker {options.worker_id} stopped: {worker.processed} jobs, {worker.failed} failed"))
    return 0


def _pulse(
    args: argparse.Namespace, settings: CliSettings, client: redis.Redis, supervisor: Supervisor | None = None
) -> AbstractContextManager[object]:
    """The pulse node ``--pulse`` asks for (nothing without it); a supervisor's counts its children in."""
    if args.pulse is None:
        return nullcontext()
    return Pulse(
        args.pulse,
        client,
        keyspace=keyspace_from(args, settings),
        framework="zenith worker",
        key_form=settings.pulse_key_form,
        children=None if supervisor is None else lambda: supervisor.children,
    )


def _supervise_workers(args: argparse.Namespace, settings: CliSettings, app: App, queues: tuple[str, ...]) -> int:
    """Run ``--processes`` workers under a supervisor that puts back at once what a dead one held."""
    # Children are "<base>-<slot>-<pid>" (a new id per process, PROTOCOL 4.6): the supervisor
    # picks the base when none was given, so it can name the worker of any child that ends.
    base = args.worker_id or new_worker_id()
    client, _ = redis_from(args, settings)
    space = keyspace_from(args, settings)
    events = None if args.no_events else EventEmitter(client, keyspace=space)
    err = console(stderr=True)

    def put_back(done: ChildExit) -> None:
        worker_id = f"{base}-{done.slot}-{done.pid}"
        try:
            moved = put_back_reaped(client, worker_id, queues, keyspace=space, events=events)
        except redis.RedisError as exc:
            err.print(escape(f"worker: could not put back what {worker_id} held ({exc}); others will, in time"))
            return
        if sum(moved.values()):
            err.print(escape(f"worker: put back the {sum(moved.values())} jobs {worker_id} held"))

    banner = f"{args.processes} worker processes of {args.concurrency} slots for {len(app)} handlers {app.names()}"
    try:
        return supervise(
            args, args.processes, "worker", banner, label="worker",
            child_argv=[] if args.worker_id else ["--worker-id", base], on_exit=put_back,
            alongside=lambda supervisor: _pulse(args, settings, client, supervisor),
        )  # fmt: skip
    finally:
        client.close()


def _group_queues(pairs: list[str]) -> dict[str, str]:
    queues: dict[str, str] = {}
    for pair in pairs:
        group, sep, queue = pair.partition("=")
        if not sep or not group or not queue:
            raise ConfigError(f"--group-queue takes GROUP=QUEUE, such as tenant-7=emails; got {pair!r}")
        queues[group] = validate_queue_name(queue)
    return queues


_REPAIRED = {
    "released": "its next job {job} is fetchable again in queue {queue}",
    "freed": "it held nothing any more and is free again",
    "moved": "it moved on while this ran: left alone",
    "no-queue": "its queue is unknown: pass --group-queue {group}=QUEUE",
}


def _run_recover(args: argparse.Namespace, settings: CliSettings) -> int:
    queues = _group_queues(args.group_queue)
    client, _ = redis_from(args, settings)
    space = keyspace_from(args, settings)
    try:
        events = EventEmitter(client, keyspace=space)
        recovered = recover_dead_workers(client, keyspace=space, actor="zenith-cli", events=events)
        from zenith_sdk.control import repair_groups  # here: a worker process starts without the control plane

        repairs = repair_groups(client, keyspace=space, queues=queues, actor="zenith-cli", events=events)
    finally:
        client.close()
    status = 1 if any(repair.outcome == "no-queue" for repair in repairs) else 0
    if args.json:
        groups = [
            {"group": r.group.id, "outcome": r.outcome, "queue": r.queue, "jobId": r.job_id, "pending": r.group.pending}
            for r in repairs
        ]
        print_json({"workers": recovered, "groups": groups})
        return status
    out = console()
    if not recovered:
        out.print("no dead workers")
    for worker_id, moved in recovered.items():
        out.print(escape(f"{worker_id}: put back {sum(moved.values())} jobs {moved}"))
    if not repairs:
        out.print("no stuck groups")
    for repair in repairs:
        what = _REPAIRED[repair.outcome].format(job=repair.job_id, queue=repair.queue, group=repair.group.id)
        out.print(escape(f"group {repair.group.id} ({repair.group.pending} pending): {what}"))
    return status
