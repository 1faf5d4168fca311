"""What every ``zenith`` subcommand shares: environment settings, Redis and prefix options, input, output.

Output rule (STYLE 11): whatever comes from Redis or the command line is data, never rich markup
or emoji codes. Pass it as :class:`rich.text.Text` or through :func:`rich.markup.escape`; the
consoles made here never turn ``:lock:`` into an emoji.
"""

from __future__ import annotations

import argparse
import getpass
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import redis
from rich.console import Console

from zenith_protocol import ConfigError, KeySpace, PulseKeyForm, ZenithError
from zenith_sdk._env import ZenithEnv
from zenith_sdk.connection import DEFAULT_REDIS_URL, RedisSettings

__all__ = [
    "CliSettings",
    "add_actor_options",
    "add_data_option",
    "add_output_options",
    "add_redis_options",
    "console",
    "default_actor",
    "human_bytes",
    "keyspace_from",
    "print_json",
    "read_json_object",
    "redis_from",
    "redis_location",
    "stop_on_signals",
    "whole_number",
]

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
_OBJECT_EXAMPLE = """'{"email": "a@b.c"}'"""

_PREFIX_OPTIONS = (
    ("queue_prefix", "--queue-prefix", "prefix of queue keys"),
    ("console_prefix", "--console-prefix", "prefix of heartbeats, logs and metrics"),
    ("pulse_prefix", "--pulse-prefix", "prefix of pulse nodes"),
    ("legacy_pulse_prefix", "--legacy-pulse-prefix", "prefix of pulse nodes written by the Node agent"),
    ("command_prefix", "--command-prefix", "prefix of remote-command channels"),
    ("settings_prefix", "--settings-prefix", "prefix of alert and maintenance settings"),
    ("zenith_prefix", "--zenith-prefix", "prefix of the event stream and indexes"),
)


class CliSettings(ZenithEnv):
    """Defaults the CLI reads from the environment (``ZENITH_*``; ``REDIS_URL`` also works)."""

    pulse_key_form: PulseKeyForm = PulseKeyForm.BOTH
    """Which pulse key forms ``zenith pulse`` writes (``ZENITH_PULSE_KEY_FORM``: both, pulse or legacy)."""


def add_redis_options(parser: argparse.ArgumentParser) -> None:
    """``--redis URL`` and the key-prefix options."""
    group = parser.add_argument_group("Redis")
    group.add_argument(
        "--redis",
        metavar="URL",
        default=None,
        help=f"Redis URL (default: $REDIS_URL, else {DEFAULT_REDIS_URL})",
    )
    for dest, flag, text in _PREFIX_OPTIONS:
        group.add_argument(
            flag, dest=dest, metavar="PREFIX", default=None, help=f"{text} (default: $ZENITH_{dest.upper()})"
        )
    group.add_argument(
        "--cluster-safe",
        action="store_true",
        default=None,
        help="hash-tagged key layout for Redis Cluster (not readable by Node workers)",
    )


def redis_option_args(url: str | None, keyspace: KeySpace | None) -> list[str]:
    """The options of :func:`add_redis_options` that make a command use ``url`` and ``keyspace``."""
    args = ["--redis", url] if url else []
    if keyspace is not None:
        for dest, flag, _ in _PREFIX_OPTIONS:
            args += [flag, getattr(keyspace, dest)]
        if keyspace.cluster_safe:
            args.append("--cluster-safe")
    return args


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--json`` for scripts."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def keyspace_from(args: argparse.Namespace, settings: CliSettings) -> KeySpace:
    """The key space named by the options, falling back to the environment, then the defaults."""
    options = {dest: getattr(args, dest, None) or None for dest, _flag, _text in _PREFIX_OPTIONS}
    return settings.keyspace(**options, cluster_safe=getattr(args, "cluster_safe", None))


def _redis_settings(args: argparse.Namespace, settings: CliSettings) -> RedisSettings:
    return RedisSettings.from_url(getattr(args, "redis", None) or settings.redis_url)


def redis_from(args: argparse.Namespace, settings: CliSettings) -> tuple[redis.Redis, str]:
    """A client for ``--redis`` (or the environment) and where it points (``host:port db N``, no password)."""
    redis_settings = _redis_settings(args, settings)
    return redis_settings.client(), redis_settings.location()


def redis_location(args: argparse.Namespace, settings: CliSettings | None) -> str | None:
    """Where ``--redis`` (or the environment) points, for an error message; None when that is unknown."""
    if settings is None:
        return None
    try:
        return _redis_settings(args, settings).location()
    except ZenithError:
        return None


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: a whole number from ``low`` to ``high`` (no upper bound when None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
        if value < low or (high is not None and value > high):
            allowed = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value}")
        return value

    return parse


def add_data_option(parser: argparse.ArgumentParser) -> None:
    """``--data``: the job's properties, read by :func:`read_json_object`."""
    parser.add_argument(
        "--data",
        default="{}",
        metavar="JSON|@FILE|-",
        help="job properties: a JSON object, @FILE to read it from a file, - to read standard input (default {})",
    )


def read_json_object(value: str, *, option: str = "--data") -> dict[str, Any]:
    """The JSON object ``value`` gives: inline JSON, ``@PATH`` (read that file) or ``-`` (read standard input).

    Raises:
        ConfigError: the file cannot be read, or the text is not JSON, or not a JSON object.
    """
    if value == "-":
        text, source = sys.stdin.read(), f"{option} - (standard input)"
    elif value.startswith("@"):
        path, source = Path(value[1:]), f"{option} {value}"
        try:
            text = path.read_text(encoding="utf-8-sig")  # a byte order mark, as some editors write, is fine
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(f"{source}: cannot read {str(path)!r}: {reason}; pass JSON, @FILE or -") from exc
    else:
        text, source = value, option
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{source} is not JSON ({exc}); pass an object such as {_OBJECT_EXAMPLE}") from exc
    if not isinstance(data, dict):
        kind = "null" if data is None else _JSON_TYPES.get(type(data), type(data).__name__)
        raise ConfigError(f"{source} must be a JSON object such as {_OBJECT_EXAMPLE}, got {kind}")
    return data


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON to standard output."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()  # a closed pipe fails here, where main() reports it, not at interpreter exit


def console(*, stderr: bool = False) -> Console:
    """A rich console (colour only on a terminal) that never turns ``:name:`` codes into emoji.

    Markup stays on for our own colours: escape data (``rich.markup.escape``) or pass it as ``Text``.
    """
    stream = sys.stderr if stderr else sys.stdout
    # Piped into a file or another program, tables keep their full key patterns instead of 80 columns.
    width = None if stream.isatty() else 200
    return Console(stderr=stderr, highlight=False, emoji=False, soft_wrap=True, width=width)


def human_bytes(count: int) -> str:
    """A byte count for people: ``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    value, index = float(count), 0
    while value >= 1024 and index < len(units) - 1:
        value, index = value / 1024, index + 1
    return f"{count} B" if index == 0 else f"{value:.1f} {units[index]}"


def default_actor() -> str:
    """Who runs the command, for the audit trail: the OS user name."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "zenith-cli"


def add_actor_options(parser: argparse.ArgumentParser) -> None:
    """``--actor`` (for the audit trail), the Redis options and ``--json``: what a mutating command takes."""
    parser.add_argument("--actor", default=default_actor(), help="who does this, for the audit trail (default: you)")
    add_redis_options(parser)
    add_output_options(parser)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """Turn SIGTERM and SIGINT into an event for the duration, then restore the previous handlers."""
    requested = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        requested.set()

    previous = {signum: signal.signal(signum, handle) for signum in _STOP_SIGNALS}
    try:
        yield requested
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
