"""``--processes N`` for long-running commands: the command runs again as N supervised children."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

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


def supervise(
    args: argparse.Namespace,
    count: int,
    what: str,
    banner: str,
    *,
    label: str,
    child_argv: Sequence[str] = (),
    on_exit: Callable[[ChildExit], None] | None = None,
    alongside: Callable[[Supervisor], AbstractContextManager[object]] | None = None,
) -> int:
    """Run this command line again as ``count`` children until SIGTERM or Ctrl-C; restart those that die.

    ``what`` names a child in messages (``"archiver"``), ``label`` begins each of them
    (``"archive"``); each child sees its slot in :data:`~zenith_sdk.supervisor.SLOT_ENV` and runs
    as one process.

    Args:
        child_argv: arguments added to the children's command line.
        on_exit: called with each child that ended, after its message is printed.
        alongside: builds what runs in the supervisor while it supervises (a pulse node of them all).
    """
    err = console(stderr=True)

    def report(done: ChildExit) -> None:
        if done.status != 0:
            then = "giving up" if done.restart_in_s is None else f"another starts in {done.restart_in_s:.1f} s"
            err.print(escape(f"{label}: {what} {done.slot} (pid {done.pid}) ended with {done.how}; {then}"))
        if on_exit is not None:
            on_exit(done)

    command = [sys.executable, "-m", "zenith_sdk.cli", *args.argv, *child_argv]
    err.print(escape(f"{label}: {banner}; stop with Ctrl-C or SIGTERM"))
    with stop_on_signals() as stop_requested:
        supervisor = Supervisor(command, count, name=what, on_exit=report, stop=stop_requested)
        with alongside(supervisor) if alongside is not None else nullcontext():
            status = supervisor.run()
    if status:
        print_error(f"the {what} processes kept failing (last status {status}); their messages above say why")
        return status
    err.print(escape(f"{label}: all {what}s stopped"))
    return 0
