"""The archive a console reads: the one its settings name, else the zero-config file once it exists."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zenith_protocol import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from zenith_sdk.console._settings import ConsoleSettings

__all__ = ["open_archive"]


def open_archive(settings: ConsoleSettings) -> Engine | None:
    """The archive the settings name, migrated; None when there is none yet (a read creates nothing).

    Imports SQLAlchemy only when called, so the console runs without the ``archive`` extra.
    """
    from zenith_archive import connect
    from zenith_archive.archiver import require_migrated
    from zenith_archive.db import DEFAULT_SQLITE_PATH

    if settings.archive_url is None and not DEFAULT_SQLITE_PATH.expanduser().is_file():
        return None
    engine = connect(settings.archive_url)  # None: the zero-config file, which exists
    try:
        require_migrated(engine)
    except ConfigError:
        engine.dispose()
        return None
    except Exception:
        engine.dispose()
        raise
    return engine
