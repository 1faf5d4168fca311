"""The reference web console: pages and a JSON API over the SDK, mountable under any path.

Needs the ``console`` extra: ``pip install "zenith-sdk[console]"``.
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError('the console needs the console extra: pip install "zenith-sdk[console]"') from exc

from zenith_sdk.console._app import create_app
from zenith_sdk.console._settings import ConsoleSettings

__all__ = ["ConsoleSettings", "create_app"]
