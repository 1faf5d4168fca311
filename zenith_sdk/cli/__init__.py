"""The ``zenith`` command line.

Commands raise; :func:`main` alone turns an error into one line on standard error and an exit
status (see ``_errors`` for the statuses). A traceback appears only with ``-vv``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from zenith_sdk import __version__
from zenith_sdk.cli._common import CliSettings, redis_location
from zenith_sdk.cli._errors import EXIT_INTERRUPTED, EXIT_USAGE, print_error, report_failure

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line that ends with where to find help."""

    def error(self, message: str) -> NoReturn:
        print_error(f"{message}; see `{self.prog} --help`", label=f"{self.prog}: error")
        self.exit(EXIT_USAGE)


COMMANDS: dict[str, tuple[str, ...]] = {
    "_alerts": ("alerts",),
    "_archive": ("archive",),
    "_commands": ("command",),
    "_conformance": ("conformance",),
    "_console": ("console",),
    "_demo": ("demo",),
    "_doctor": ("doctor",),
    "_fleet": ("workers", "nodes"),
    "_jobs": ("jobs", "job", "retry", "delete", "pause", "resume", "purge", "clear-failed", "push"),
    "_pulse": ("pulse",),
    "_queues": ("queues",),
    "_schedules": ("schedules", "scheduler"),
    "_search": ("search",),
    "_spec": ("spec",),
    "_worker": ("worker", "recover"),
}
"""The module of ``zenith_sdk.cli`` that registers each command, in the order ``--help`` lists them."""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser: with ``argv`` naming a command, only that command's module is imported.

    A worker process the supervisor starts again after a crash is up sooner for not importing
    the modules of every other command.
    """
    parser = _Parser(
        prog="zenith",
        description="Zenith: see and steer Redis-backed job queues written by Node, PHP, Go and Python workers.",
    )
    parser.add_argument("--version", action="version", version=f"zenith {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug and tracebacks)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    first = next((arg for arg in argv or () if not arg.startswith("-")), None)
    named = [module for module, names in COMMANDS.items() if first in names]
    for module in named or COMMANDS:
        importlib.import_module(f"zenith_sdk.cli.{module}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    given = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(given).parse_args(given)
    args.argv = given  # what a supervising command gives its children
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings: CliSettings | None = None
    try:
        settings = CliSettings()
        status: int = args.handler(args, settings)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # the one place where any error becomes a line for a person (STYLE 11)
        return report_failure(exc, where=redis_location(args, settings), verbose=args.verbose)
    return status
