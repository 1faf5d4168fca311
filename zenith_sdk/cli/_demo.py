"""``zenith demo``: a worker with realistic jobs, schedules, pulse, alerts, the archive and the console, in one command.

It uses the Redis at $REDIS_URL when one answers (under keys of its own), else starts a
``redis-server`` from PATH, else an in-process fakeredis; Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import socket
import tempfile
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from zenith_protocol import ConfigError
from zenith_sdk.cli._common import CliSettings, console, stop_on_signals
from zenith_sdk.cli._console import (
    DEFAULT_PORT,
    ConsoleServer,
    add_listen_options,
    open_socket,
    serve_until_stopped,
)
from zenith_sdk.demo import DEMO_PREFIX, DEMO_QUEUES, Demo, DemoRedis, archive_available, choose_redis, demo_keyspace

__all__ = ["register"]

_QUIET = ("zenith_sdk.worker", "zenith_sdk.alerts")
"""Loggers whose warnings are the demo's everyday life (failing jobs, alerts firing): shown with -v only."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the command line."""
    parser = commands.add_parser(
        "demo",
        help="run a demo worker, producer, schedules, pulse, alerts, archive and the console",
        description="Uses the Redis at --redis or $REDIS_URL when it answers (keys under zenith-demo:, nothing "
        "else touched); otherwise starts redis-server from PATH on a free port, or else an in-process fakeredis. "
        "Ctrl-C or SIGTERM stops everything it started.",
    )
    add_listen_options(parser, port_help=f"console port (default {DEFAULT_PORT}, or a free one if it is taken)")
    parser.add_argument("--redis", metavar="URL", default=None, help="use this Redis; it must answer")
    parser.set_defaults(handler=_run)


def _listen(host: str, port: int | None) -> tuple[socket.socket, str]:
    if port is not None:
        return open_socket(host, port), ""
    try:
        return open_socket(host, DEFAULT_PORT), ""
    except ConfigError:
        return open_socket(host, 0), f" (port {DEFAULT_PORT} is taken)"


def _explain(out: Console, redis_in_use: DemoRedis, demo: Demo, url: str, note: str) -> None:
    out.print(escape(f"Zenith demo on {redis_in_use.description}"))
    out.print(escape(f"  queues: {', '.join(DEMO_QUEUES)}: jobs that succeed, fail, retry, dead-letter and take time"))
    out.print("  schedules every minute and every two minutes, a pulse node, an alert rule that fires")
    if demo.archive_url is not None:
        out.print(escape(f"  archive: {demo.archive_url} (removed when the demo stops)"))
    else:
        out.print('  archive: off (pip install "zenith-sdk[archive]" to see finished jobs and timelines)')
    if redis_in_use.shared:
        out.print(escape(f"  keys: {DEMO_PREFIX}* only; they stay after the demo for the next run"))
    out.print(escape(f"Console{note}: {url}"))
    out.print("Stop with Ctrl-C.")
    out.file.flush()  # a person or a program waiting for the URL sees it now, even through a pipe


def _run(args: argparse.Namespace, settings: CliSettings) -> int:
    from zenith_sdk.cli._console import console_settings
    from zenith_sdk.console import create_app

    if args.verbose == 0:
        for name in _QUIET:
            logging.getLogger(name).setLevel(logging.ERROR)
    with ExitStack() as stack:
        sock, note = _listen(args.host, args.port)
        directory = Path(tempfile.mkdtemp(prefix="zenith-demo-"))
        stack.callback(shutil.rmtree, directory, ignore_errors=True)
        backend = choose_redis(args.redis or settings.redis_url, directory=directory, explicit=args.redis is not None)
        stack.callback(backend.close)
        demo = Demo(
            backend.url, keyspace=demo_keyspace(backend.shared), directory=directory, archive=archive_available()
        )
        stack.callback(demo.stop)
        demo.start()
        prefixes = demo.keyspace.model_dump(exclude={"cluster_safe"})
        app_settings = console_settings(
            args, redis_url=backend.url, title="demo", archive_url=demo.archive_url, **prefixes
        )
        server = ConsoleServer(create_app(app_settings), sock, access_log=False)
        stack.callback(server.stop)
        with stop_on_signals() as stop:
            if server.start(stop):
                _explain(console(), backend, demo, server.url, note)
                serve_until_stopped(server, stop)
    console(stderr=True).print("demo stopped: console, worker, scheduler, pulse, alerts, archive and Redis of its own")
    return 0
