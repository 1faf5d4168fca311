"""The ``zenith`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from zenith_protocol import ZenithError
from zenith_sdk import __version__
from zenith_sdk.cli import _commands, _doctor, _jobs, _pulse, _queues, _schedules, _search, _spec, _worker
from zenith_sdk.cli._common import CliSettings, console

__all__ = ["build_parser", "main"]

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="zenith",
        description="Zenith: see and steer Redis-backed job queues written by Node, PHP, Go and Python workers.",
    )
    parser.add_argument("--version", action="version", version=f"zenith {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (_commands, _doctor, _jobs, _pulse, _queues, _schedules, _search, _spec, _worker):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = CliSettings()
        status: int = args.handler(args, settings)
    except (ZenithError, ValidationError) as exc:
        console(stderr=True).print(f"[red]error[/]: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
