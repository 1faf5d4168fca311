"""The ``zenith`` command line.

Commands raise; :func:`main` alone turns an error into one line on standard error and an exit
status (see ``_errors`` for the statuses). A traceback appears only with ``-vv``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from zenith_sdk import __version__
from zenith_sdk.cli import (
    _alerts,
    _archive,
    _commands,
    _conformance,
    _console,
    _demo,
    _doctor,
    _fleet,
    _jobs,
    _pulse,
    _queues,
    _schedules,
    _search,
    _spec,
    _worker,
)
from zenith_sdk.cli._common import CliSettings, redis_location
from zenith_sdk.cli._errors import EXIT_INTERRUPTED, EXIT_USAGE, print_error, report_failure

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line that ends with where to find help."""

    def error(self, message: str) -> NoReturn:
        print_error(f"{message}; see `{self.prog} --help`", label=f"{self.prog}: error")
        self.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(
        prog="zenith",
        description="Zenith: see and steer Redis-backed job queues written by Node, PHP, Go and Python workers.",
    )
    parser.add_argument("--version", action="version", version=f"zenith {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug and tracebacks)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        _alerts,
        _archive,
        _commands,
        _conformance,
        _console,
        _demo,
        _doctor,
        _fleet,
        _jobs,
        _pulse,
        _queues,
        _schedules,
        _search,
        _spec,
        _worker,
    ):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a supervising command gives its children
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
