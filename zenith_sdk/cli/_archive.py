"""``zenith archive``: the SQL archive's commands (they need the ``archive`` extra, imported when run).

Every command takes ``--db URL`` (default ``$ZENITH_ARCHIVE_URL``, else the zero-config SQLite
file). The reading commands live in ``_archive_query``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from zenith_protocol import ConfigError
from zenith_sdk.cli._common import CliSettings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["add_db_option", "archive_engine", "register"]

_EXTRA_HINT = "the archive commands need the archive extra: pip install 'zenith-sdk[archive]'"


def add_db_option(parser: argparse.ArgumentParser) -> None:
    """``--db URL``."""
    parser.add_argument(
        "--db",
        metavar="URL",
        default=None,
        help="archive database URL, e.g. postgresql+psycopg://user@host/db "
        "(default: $ZENITH_ARCHIVE_URL, else ~/.local/share/zenith/archive.db)",
    )


@contextmanager
def archive_engine(args: argparse.Namespace, settings: CliSettings) -> Iterator[Engine]:
    """An engine on the migrated archive ``--db`` names, disposed of afterwards.

    Raises:
        ConfigError: the archive extra is not installed, the URL is unusable or the archive is not migrated.
    """
    try:
        from zenith_archive import connect
        from zenith_archive.archiver import require_migrated
    except ImportError as exc:
        raise ConfigError(f"{_EXTRA_HINT} ({exc})") from exc
    engine = connect(args.db or settings.archive_url)
    try:
        require_migrated(engine)
        yield engine
    finally:
        engine.dispose()


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``archive`` and its subcommands to the command line."""
    from zenith_sdk.cli import _archive_query  # it builds on this module's helpers

    parser = commands.add_parser("archive", help="the SQL archive: job history, search, timelines, export")
    subcommands = parser.add_subparsers(dest="archive_command", required=True, metavar="COMMAND")
    _archive_query.register(subcommands)
