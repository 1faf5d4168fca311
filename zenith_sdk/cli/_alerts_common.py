"""What the ``zenith alerts`` commands share: durations, options, output."""

from __future__ import annotations

import argparse
import math
import re
from datetime import datetime, timezone
from typing import Any

import redis
from rich.markup import escape

from zenith_protocol import KeySpace
from zenith_sdk.cli._common import (
    CliSettings,
    add_output_options,
    add_redis_options,
    console,
    keyspace_from,
    print_json,
    redis_from,
)

__all__ = ["EXIT_FAILED", "EXIT_OK", "client_and_space", "common_options", "duration_s", "say", "text", "when", "wire"]

EXIT_OK, EXIT_FAILED = 0, 1
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhdw])")


def duration_s(text: str) -> float:
    """An argparse type: ``90s``, ``30m``, ``2h``, ``1d``, ``1h30m`` or a number of seconds."""
    cleaned = text.strip().lower().replace(" ", "")
    try:
        value = float(cleaned)
    except ValueError:
        parts = _DURATION.findall(cleaned)
        if not parts or "".join(number + unit for number, unit in parts) != cleaned:
            raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 30m, 2h or 1d") from None
        value = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"a duration is a finite time of 0 or more, got {text!r}")
    return value


def common_options(parser: argparse.ArgumentParser) -> None:
    """``--redis``, the prefix options and ``--json``."""
    add_redis_options(parser)
    add_output_options(parser)


def client_and_space(args: argparse.Namespace, settings: CliSettings) -> tuple[redis.Redis, KeySpace]:
    """A client (the command closes it) and the key space the options name."""
    client, _where = redis_from(args, settings)
    return client, keyspace_from(args, settings)


def say(args: argparse.Namespace, data: Any, message: str) -> int:
    """Print ``data`` as JSON with ``--json``, else ``message`` (data, never markup); exit status 0."""
    if args.json:
        print_json(data)
    else:
        console().print(escape(message))
    return EXIT_OK


def wire(model: Any) -> Any:
    """A wire model as plain JSON data (camelCase names, absent fields left out)."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def when(ms: int | None) -> str:
    """Epoch milliseconds as a UTC time for tables; ``-`` for none."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def text(value: Any) -> str:
    """An enum member's value, or the text an open field kept."""
    return str(getattr(value, "value", value))
