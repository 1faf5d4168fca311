"""``zenith alerts silence|silences|unsilence|mute``: silences and recurring mute windows."""

from __future__ import annotations

import argparse
import time

from rich.table import Table
from rich.text import Text

from zenith_protocol import SilenceMatchers
from zenith_sdk.alerts import add_mute, add_silence, end_silence, list_mutes, list_silences, remove_mute
from zenith_sdk.cli._alerts_common import (
    EXIT_OK,
    client_and_space,
    common_options,
    duration_s,
    say,
    when,
    wire,
)
from zenith_sdk.cli._common import CliSettings, console, default_actor, print_json

__all__ = ["register_quiet"]

_MATCH_KEYS = ("rule", "queue", "service", "severity")


def register_quiet(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``silence``, ``silences``, ``unsilence`` and ``mute`` to ``zenith alerts``."""
    silence = actions.add_parser("silence", help="silence alerts of a rule, or those matching --match, for a while")
    silence.add_argument("rule", nargs="?", default=None, help="rule id (glob)")
    _match_option(silence, "what it silences besides RULE: rule, queue, service or severity")
    silence.add_argument("--for", dest="duration", type=duration_s, required=True, metavar="DURATION", help="e.g. 2h")
    silence.add_argument("--comment", required=True, help="why")
    silence.add_argument("--author", default=default_actor(), help="who (default: you)")
    common_options(silence)
    silence.set_defaults(handler=_run_silence)

    silences = actions.add_parser("silences", help="silences in force or to come (--all: ended ones too)")
    silences.add_argument("--all", action="store_true", help="include ended silences")
    common_options(silences)
    silences.set_defaults(handler=_run_silences)

    unsilence = actions.add_parser("unsilence", help="end a silence now")
    unsilence.add_argument("id", help="silence id")
    common_options(unsilence)
    unsilence.set_defaults(handler=_run_unsilence)

    mute = actions.add_parser("mute", help="recurring mute windows")
    mutes = mute.add_subparsers(dest="mute_command", required=True, metavar="ACTION")
    mute_add = mutes.add_parser("add", help="mute matching alerts from each time CRON names, for DURATION")
    mute_add.add_argument("--cron", required=True, help="five fields, e.g. '0 22 * * 5'")
    mute_add.add_argument("--duration", type=duration_s, required=True, help="e.g. 2h")
    mute_add.add_argument("--timezone", default="UTC", help="IANA zone the cron is read in (default UTC)")
    _match_option(mute_add, "what it mutes: rule, queue, service or severity")
    mute_add.add_argument("--comment", default="", help="why")
    common_options(mute_add)
    mute_add.set_defaults(handler=_run_mute_add)
    mute_list = mutes.add_parser("list", help="every mute window")
    common_options(mute_list)
    mute_list.set_defaults(handler=_run_mute_list)
    mute_remove = mutes.add_parser("remove", help="delete a mute window")
    mute_remove.add_argument("id", help="mute window id")
    common_options(mute_remove)
    mute_remove.set_defaults(handler=_run_mute_remove)


def _matcher(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or key not in _MATCH_KEYS or not value:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=GLOB with KEY one of {', '.join(_MATCH_KEYS)}")
    return key, value


def _match_option(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--match", action="append", type=_matcher, default=[], metavar="KEY=GLOB", help=text)


def _matchers(rule: str | None, pairs: list[tuple[str, str]]) -> SilenceMatchers:
    values: dict[str, str] = dict(pairs)
    if rule is not None:
        values["rule"] = rule
    return SilenceMatchers(**values)


def _run_silence(args: argparse.Namespace, settings: CliSettings) -> int:
    matchers = _matchers(args.rule, args.match)
    client, space = client_and_space(args, settings)
    with client:
        silence = add_silence(
            client,
            matchers=matchers,
            duration_s=args.duration,
            comment=args.comment,
            author=args.author,
            keyspace=space,
        )
    return say(args, wire(silence), f"silence {silence.id} until {when(silence.ends_at_ms)}")


def _run_silences(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = client_and_space(args, settings)
    with client:
        silences = list_silences(client, keyspace=space, include_ended=args.all)
    if args.json:
        print_json([wire(silence) for silence in silences])
        return EXIT_OK
    now = int(time.time() * 1000)
    table = Table(title=f"{len(silences)} silences")
    for column in ("id", "matchers", "from", "until", "author", "comment", "state"):
        table.add_column(column)
    for silence in silences:
        matchers = ", ".join(f"{k}={v}" for k, v in wire(silence.matchers).items())
        state = "ended" if silence.ends_at_ms <= now else ("active" if silence.starts_at_ms <= now else "pending")
        cells = (
            silence.id,
            matchers,
            when(silence.starts_at_ms),
            when(silence.ends_at_ms),
            silence.author,
            silence.comment,
        )
        table.add_row(*(Text(cell) for cell in cells), state)
    console().print(table)
    return EXIT_OK


def _run_unsilence(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = client_and_space(args, settings)
    with client:
        silence = end_silence(client, args.id, actor=default_actor(), keyspace=space)
    return say(args, wire(silence), f"silence {silence.id} ended")


def _run_mute_add(args: argparse.Namespace, settings: CliSettings) -> int:
    matchers = _matchers(None, args.match)
    client, space = client_and_space(args, settings)
    with client:
        window = add_mute(
            client,
            cron=args.cron,
            duration_minutes=args.duration / 60,
            timezone_name=args.timezone,
            matchers=matchers,
            comment=args.comment,
            actor=default_actor(),
            keyspace=space,
        )
    return say(args, wire(window), f"mute window {window.id} added")


def _run_mute_list(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = client_and_space(args, settings)
    with client:
        windows = list_mutes(client, keyspace=space)
    if args.json:
        print_json([wire(window) for window in windows])
        return EXIT_OK
    table = Table("id", "cron", "duration", "zone", "matchers", "comment", title=f"{len(windows)} mute windows")
    for window in windows:
        matchers = ", ".join(f"{k}={v}" for k, v in wire(window.matchers).items())
        cells = (window.id, window.cron, f"{window.duration_minutes:g} min", window.timezone, matchers, window.comment)
        table.add_row(*(Text(cell) for cell in cells))
    console().print(table)
    return EXIT_OK


def _run_mute_remove(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = client_and_space(args, settings)
    with client:
        remove_mute(client, args.id, actor=default_actor(), keyspace=space)
    return say(args, {"id": args.id, "removed": True}, f"mute window {args.id} removed")
