"""What every ``zenith`` subcommand shares: environment settings, Redis and prefix options, output."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

import redis
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console

from zenith_protocol import KeySpace
from zenith_sdk.connection import DEFAULT_REDIS_URL, RedisSettings

__all__ = [
    "CliSettings",
    "add_actor_options",
    "add_output_options",
    "add_redis_options",
    "console",
    "default_actor",
    "keyspace_from",
    "print_json",
    "redis_from",
]

_PREFIX_OPTIONS = (
    ("queue_prefix", "--queue-prefix", "prefix of queue keys"),
    ("console_prefix", "--console-prefix", "prefix of heartbeats, logs and metrics"),
    ("pulse_prefix", "--pulse-prefix", "prefix of pulse nodes"),
    ("legacy_pulse_prefix", "--legacy-pulse-prefix", "prefix of pulse nodes written by the Node agent"),
    ("command_prefix", "--command-prefix", "prefix of remote-command channels"),
    ("settings_prefix", "--settings-prefix", "prefix of alert and maintenance settings"),
    ("zenith_prefix", "--zenith-prefix", "prefix of the event stream and indexes"),
)


class CliSettings(BaseSettings):
    """Defaults the CLI reads from the environment (``ZENITH_*``; ``REDIS_URL`` also works)."""

    model_config = SettingsConfigDict(env_prefix="ZENITH_", extra="forbid")

    redis_url: str = Field(default=DEFAULT_REDIS_URL, validation_alias=AliasChoices("ZENITH_REDIS_URL", "REDIS_URL"))
    queue_prefix: str | None = None
    console_prefix: str | None = None
    pulse_prefix: str | None = None
    legacy_pulse_prefix: str | None = None
    command_prefix: str | None = None
    settings_prefix: str | None = None
    zenith_prefix: str | None = None
    cluster_safe: bool = False


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


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--json`` for scripts."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def keyspace_from(args: argparse.Namespace, settings: CliSettings) -> KeySpace:
    """The key space named by the options, falling back to the environment, then the defaults."""
    values: dict[str, Any] = {}
    for dest, _flag, _text in _PREFIX_OPTIONS:
        value = getattr(args, dest, None) or getattr(settings, dest)
        if value is not None:
            values[dest] = value
    cluster_safe = getattr(args, "cluster_safe", None)
    values["cluster_safe"] = settings.cluster_safe if cluster_safe is None else cluster_safe
    return KeySpace(**values)


def redis_from(args: argparse.Namespace, settings: CliSettings) -> tuple[redis.Redis, str]:
    """A client for ``--redis`` (or the environment) and the URL with any password hidden."""
    url = getattr(args, "redis", None) or settings.redis_url
    client = RedisSettings.from_url(url).client()
    kwargs = client.connection_pool.connection_kwargs
    where = kwargs.get("path") or f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
    return client, f"{where} db {kwargs.get('db', 0)}"


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON to standard output."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def console(*, stderr: bool = False) -> Console:
    """A rich console (colour only on a terminal)."""
    stream = sys.stderr if stderr else sys.stdout
    # Piped into a file or another program, tables keep their full key patterns instead of 80 columns.
    width = None if stream.isatty() else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


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
