"""``--processes N`` for long-running commands: the command runs again as N supervised children."""

from __future__ import annotations

import argparse
import sys

from rich.markup import escape

from zenith_sdk.cli._common import console, stop_on_signals, whole_number
from zenith_sdk.cli._errors import print_error
from zenith_sdk.supervisor import ChildExit, Supervisor

__all__ = ["MAX_PROCESSES", "add_processes_option", "supervise"]

MAX_PROCESSES = 1024


def add_processes_option(parser: argparse.ArgumentParser, what: str, *flags: str) -> None:
    """``--processes N`` (default 1): ``what`` says what the N processes are, in the help."""
    parser.add_argument(
        "--processes",
        *flags,
        type=whole_number(1, MAX_PROCESSES),
        default=1,
        metavar="N",
        help=f"{what}; a supervisor restarts one that dies (default 1)",
    )


def supervise(args: argparse.Namespace, count: int, what: str, banner: str, *, label: str) -> int:
    """Run this command line again as ``count`` children until SIGTERM or Ctrl-C; restart those that die.

    ``what`` names a child in messages (``"archiver"``), ``label`` begins each of them
    (``"archive"``); each child sees its slot in :data:`~zenith_sdk.supervisor.SLOT_ENV` and runs
    as one process.
    """
    err = console(stderr=True)

    def report(done: ChildExit) -> None:
        if done.status != 0:
            then = "giving up" if done.restart_in_s is None else f"another starts in {done.restart_in_s:.1f} s"
            err.print(escape(f"{label}: {what} {done.slot} (pid {done.pid}) ended with {done.how}; {then}"))

    command = [sys.executable, "-m", "zenith_sdk.cli", *args.argv]
    err.print(escape(f"{label}: {banner}; stop with Ctrl-C or SIGTERM"))
    with stop_on_signals() as stop_requested:
        status = Supervisor(command, count, name=what, on_exit=report, stop=stop_requested).run()
    if status:
        print_error(f"the {what} processes kept failing (last status {status}); their messages above say why")
        return status
    err.print(escape(f"{label}: all {what}s stopped"))
    return 0
