"""``zenith alerts ...``: run the alert loop, edit rules, silence and mute alerts, read history and channel health."""

from __future__ import annotations

import argparse
import math
import re
import time
from datetime import datetime, timezone
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from zenith_protocol import AlertRule, SilenceMatchers, _json, encode_alert_config
from zenith_sdk.alerts import (
    AlertService,
    add_mute,
    add_rule,
    add_silence,
    channel_health,
    end_silence,
    list_mutes,
    list_silences,
    load_config,
    load_rules,
    read_history,
    read_states,
    remove_mute,
    remove_rule,
    update_rule,
)
from zenith_sdk.alerts.channels import send_test
from zenith_sdk.cli._common import (
    CliSettings,
    add_output_options,
    add_redis_options,
    console,
    default_actor,
    keyspace_from,
    print_json,
    redis_from,
)
from zenith_sdk.cli._schedules import _stop_on_signals

__all__ = ["register"]

EXIT_OK, EXIT_FAILED = 0, 1
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhdw])")
_MATCH_KEYS = ("rule", "queue", "service", "severity")
_RULE_OPTIONS: tuple[tuple[str, str, Any, str], ...] = (
    ("--name", "name", str, "display name"),
    ("--queue", "queue", str, "queue glob (absent: every queue; 'all' for worker_lost overall)"),
    ("--service", "service", str, "pulse service glob, for node rules"),
    ("--severity", "severity", str, "warning or critical"),
    ("--for", "forSeconds", "duration", "how long the condition must hold before firing (e.g. 5m)"),
    ("--keep-firing-for", "keepFiringForSeconds", "duration", "stay firing this long after it stops (e.g. 2m)"),
    ("--repeat", "repeatMinutes", "minutes", "re-notify while firing, every (e.g. 4h)"),
    ("--cooldown", "cooldownMinutes", "minutes", "legacy repeat interval (e.g. 30m)"),
    ("--window", "windowMinutes", "minutes", "window of failure_count and failure_ratio (e.g. 10m)"),
    ("--runbook", "runbookUrl", str, "runbook URL shown in messages"),
    ("--description", "description", str, "what the rule is about"),
)


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


def _matcher(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or key not in _MATCH_KEYS or not value:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=GLOB with KEY one of {', '.join(_MATCH_KEYS)}")
    return key, value


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``alerts`` and its subcommands to the command line."""
    parser = commands.add_parser("alerts", help="alert rules, silences, history, channels and the alert loop")
    actions = parser.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")

    run = actions.add_parser(
        "run",
        help="evaluate rules and send notifications until stopped (run several anywhere: each change is sent once)",
    )
    run.add_argument("--interval", type=duration_s, default=15.0, metavar="S", help="between evaluations (default 15s)")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--no-send", action="store_true", help="evaluate only (other processes send)")
    mode.add_argument("--no-evaluate", action="store_true", help="send only (other processes evaluate)")
    run.add_argument("--senders", type=int, default=1, help="sender threads (default 1)")
    run.add_argument(
        "--claim-idle", type=duration_s, default=60.0, metavar="S", help="claim a dead sender's entries after"
    )
    add_redis_options(run)
    run.set_defaults(handler=_run_loop)

    listing = actions.add_parser("rules", help="the rules with the states of their subjects")
    _common(listing)
    listing.set_defaults(handler=_run_rules)

    add = actions.add_parser("add", help="add a rule (the first edit also writes the three default rules)")
    add.add_argument("--type", required=True, help="backlog, latency, failure, failure_count, failure_ratio, ...")
    add.add_argument("--threshold", required=True, type=float, help="the limit the value is compared with")
    add.add_argument("--id", default=None, help="rule id (default: from the type and queue)")
    _rule_options(add)
    add.add_argument("--channel", action="append", dest="channels", metavar="NAME", help="a channel (repeatable)")
    add.add_argument("--disabled", action="store_true", help="add it disabled")
    _common(add)
    add.set_defaults(handler=_run_add)

    edit = actions.add_parser("edit", help="change fields of a rule (compare-and-set)")
    edit.add_argument("id", help="rule id")
    edit.add_argument("--threshold", type=float, default=None, help="the limit")
    edit.add_argument("--type", default=None, help="what the rule watches")
    _rule_options(edit)
    edit.add_argument("--channel", action="append", dest="channels", metavar="NAME", help="a channel (repeatable)")
    edit.add_argument("--enable", dest="enabled", action="store_true", default=None, help="enable it")
    edit.add_argument("--disable", dest="enabled", action="store_false", help="disable it")
    edit.add_argument(
        "--clear", action="append", default=[], metavar="FIELD", help="remove an optional field (wire name)"
    )
    _common(edit)
    edit.set_defaults(handler=_run_edit)

    remove = actions.add_parser("remove", help="remove a rule")
    remove.add_argument("id", help="rule id")
    _common(remove)
    remove.set_defaults(handler=_run_remove)

    silence = actions.add_parser("silence", help="silence alerts of a rule, or those matching --match, for a while")
    silence.add_argument("rule", nargs="?", default=None, help="rule id (glob)")
    _match_option(silence, "what it silences besides RULE: rule, queue, service or severity")
    silence.add_argument("--for", dest="duration", type=duration_s, required=True, metavar="DURATION", help="e.g. 2h")
    silence.add_argument("--comment", required=True, help="why")
    silence.add_argument("--author", default=default_actor(), help="who (default: you)")
    _common(silence)
    silence.set_defaults(handler=_run_silence)

    silences = actions.add_parser("silences", help="silences in force or to come (--all: ended ones too)")
    silences.add_argument("--all", action="store_true", help="include ended silences")
    _common(silences)
    silences.set_defaults(handler=_run_silences)

    unsilence = actions.add_parser("unsilence", help="end a silence now")
    unsilence.add_argument("id", help="silence id")
    _common(unsilence)
    unsilence.set_defaults(handler=_run_unsilence)

    mute = actions.add_parser("mute", help="recurring mute windows")
    mutes = mute.add_subparsers(dest="mute_command", required=True, metavar="ACTION")
    mute_add = mutes.add_parser("add", help="mute matching alerts from each time CRON names, for DURATION")
    mute_add.add_argument("--cron", required=True, help="five fields, e.g. '0 22 * * 5'")
    mute_add.add_argument("--duration", type=duration_s, required=True, help="e.g. 2h")
    mute_add.add_argument("--timezone", default="UTC", help="IANA zone the cron is read in (default UTC)")
    _match_option(mute_add, "what it mutes: rule, queue, service or severity")
    mute_add.add_argument("--comment", default="", help="why")
    _common(mute_add)
    mute_add.set_defaults(handler=_run_mute_add)
    mute_list = mutes.add_parser("list", help="every mute window")
    _common(mute_list)
    mute_list.set_defaults(handler=_run_mute_list)
    mute_remove = mutes.add_parser("remove", help="delete a mute window")
    mute_remove.add_argument("id", help="mute window id")
    _common(mute_remove)
    mute_remove.set_defaults(handler=_run_mute_remove)

    history = actions.add_parser("history", help="the latest alert state changes, newest first")
    history.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    _common(history)
    history.set_defaults(handler=_run_history)

    test = actions.add_parser(
        "test", help="send a test notification to a channel (slack, discord, email, webhook:NAME)"
    )
    test.add_argument("channel", help="channel name")
    _common(test)
    test.set_defaults(handler=_run_test)

    channels = actions.add_parser("channels", help="channel settings (secrets redacted) and delivery health")
    _common(channels)
    channels.set_defaults(handler=_run_channels)


def _match_option(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--match", action="append", type=_matcher, default=[], metavar="KEY=GLOB", help=text)


def _common(parser: argparse.ArgumentParser) -> None:
    add_redis_options(parser)
    add_output_options(parser)


def _rule_options(parser: argparse.ArgumentParser) -> None:
    for flag, dest, kind, text in _RULE_OPTIONS:
        parser_type = duration_s if kind in ("duration", "minutes") else kind
        parser.add_argument(flag, dest=dest, type=parser_type, default=None, help=text)


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    """The rule fields the options gave, by wire name (durations in the unit each field takes)."""
    fields: dict[str, Any] = {}
    for _flag, dest, kind, _text in _RULE_OPTIONS:
        value = getattr(args, dest)
        if value is not None:
            fields[dest] = value / 60 if kind == "minutes" else value
    for name in ("type", "threshold", "channels", "enabled"):
        value = getattr(args, name, None)
        if value is not None:
            fields[name] = value
    return fields


def _client(args: argparse.Namespace, settings: CliSettings) -> tuple[Any, Any]:
    client, _where = redis_from(args, settings)
    return client, keyspace_from(args, settings)


def _say(args: argparse.Namespace, data: Any, text: str) -> int:
    if args.json:
        print_json(data)
    else:
        console().print(escape(text))
    return EXIT_OK


def _wire(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- handlers ----------------------------------------------------------------------------------------


def _run_loop(args: argparse.Namespace, settings: CliSettings) -> int:
    client, where = redis_from(args, settings)
    service = AlertService(
        client,
        keyspace=keyspace_from(args, settings),
        interval_s=args.interval,
        evaluate=not args.no_evaluate,
        send=not args.no_send,
        senders=args.senders,
        claim_idle_s=args.claim_idle,
    )
    err = console(stderr=True)
    what = (
        "sending"
        if args.no_evaluate
        else f"evaluating every {args.interval:g} s" + ("" if args.no_send else " and sending")
    )
    err.print(escape(f"alerts: {what} in {where}; stop with Ctrl-C or SIGTERM"))
    with _stop_on_signals() as stop_requested:
        try:
            service.run(stop=stop_requested)
        finally:
            client.close()
    err.print("alerts: stopped")
    return EXIT_OK


def _run_rules(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = _client(args, settings)
    with client:
        rules = load_rules(client, keyspace=space)
        states = read_states(client, keyspace=space).states
    by_rule: dict[str, dict[str, Any]] = {rule.id: {} for rule in rules}
    for (rule_id, subject), state in sorted(states.items()):
        by_rule.setdefault(rule_id, {})[subject] = state
    if args.json:
        print_json(
            [
                {**_wire(rule), "states": {subject: _wire(state) for subject, state in by_rule[rule.id].items()}}
                for rule in rules
            ]
        )
        return EXIT_OK
    table = Table(title=f"{len(rules)} alert rules")
    for column in ("id", "type", "scope", "threshold", "severity", "enabled", "states"):
        table.add_column(column)
    for rule in rules:
        counts: dict[str, int] = {}
        for state in by_rule[rule.id].values():
            counts[state.state.value] = counts.get(state.state.value, 0) + 1
        summary = ", ".join(f"{count} {name}" for name, count in sorted(counts.items())) or "-"
        scope = rule.queue or rule.service or "*"
        cells = (rule.id, _text(rule.type), scope, f"{rule.threshold:g}", _text(rule.severity))
        table.add_row(*(Text(cell) for cell in cells), "yes" if rule.enabled else "no", Text(summary))
    console().print(table)
    return EXIT_OK


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))


def _run_add(args: argparse.Namespace, settings: CliSettings) -> int:
    fields = _fields(args)
    rule_id = args.id or f"{args.type}-{args.queue or args.service or 'all'}".replace("*", "any")
    fields.setdefault("name", rule_id)
    if args.disabled:
        fields["enabled"] = False
    rule = AlertRule.model_validate({"id": rule_id, **fields})  # checked before connecting
    client, space = _client(args, settings)
    with client:
        add_rule(client, rule, keyspace=space)
    return _say(args, _wire(rule), f"rule {rule.id} added")


def _run_edit(args: argparse.Namespace, settings: CliSettings) -> int:
    changes: dict[str, Any] = {**_fields(args), **{name: None for name in args.clear}}
    if not changes:
        raise ValueError("nothing to change: pass options such as --threshold 500 or --clear runbookUrl")
    client, space = _client(args, settings)
    with client:
        rule = update_rule(client, args.id, changes, keyspace=space)
    return _say(args, _wire(rule), f"rule {rule.id} updated")


def _run_remove(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = _client(args, settings)
    with client:
        remove_rule(client, args.id, keyspace=space)
    return _say(args, {"id": args.id, "removed": True}, f"rule {args.id} removed")


def _matchers(rule: str | None, pairs: list[tuple[str, str]]) -> SilenceMatchers:
    values: dict[str, str] = dict(pairs)
    if rule is not None:
        values["rule"] = rule
    return SilenceMatchers(**values)


def _run_silence(args: argparse.Namespace, settings: CliSettings) -> int:
    matchers = _matchers(args.rule, args.match)
    client, space = _client(args, settings)
    with client:
        silence = add_silence(
            client,
            matchers=matchers,
            duration_s=args.duration,
            comment=args.comment,
            author=args.author,
            keyspace=space,
        )
    return _say(args, _wire(silence), f"silence {silence.id} until {_when(silence.ends_at_ms)}")


def _run_silences(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = _client(args, settings)
    with client:
        silences = list_silences(client, keyspace=space, include_ended=args.all)
    if args.json:
        print_json([_wire(silence) for silence in silences])
        return EXIT_OK
    now = int(time.time() * 1000)
    table = Table(title=f"{len(silences)} silences")
    for column in ("id", "matchers", "from", "until", "author", "comment", "state"):
        table.add_column(column)
    for silence in silences:
        matchers = ", ".join(f"{k}={v}" for k, v in _wire(silence.matchers).items())
        state = "ended" if silence.ends_at_ms <= now else ("active" if silence.starts_at_ms <= now else "pending")
        cells = (
            silence.id,
            matchers,
            _when(silence.starts_at_ms),
            _when(silence.ends_at_ms),
            silence.author,
            silence.comment,
        )
        table.add_row(*(Text(cell) for cell in cells), state)
    console().print(table)
    return EXIT_OK


def _run_unsilence(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = _client(args, settings)
    with client:
        silence = end_silence(client, args.id, actor=default_actor(), keyspace=space)
    return _say(args, _wire(silence), f"silence {silence.id} ended")


def _run_mute_add(args: argparse.Namespace, settings: CliSettings) -> int:
    matchers = _matchers(None, args.match)
    client, space = _client(args, settings)
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
    return _say(args, _wire(window), f"mute window {window.id} added")


def _run_mute_list(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = _client(args, settings)
    with client:
        windows = list_mutes(client, keyspace=space)
    if args.json:
        print_json([_wire(window) for window in windows])
        return EXIT_OK
    table = Table("id", "cron", "duration", "zone", "matchers", "comment", title=f"{len(windows)} mute windows")
    for window in windows:
        matchers = ", ".join(f"{k}={v}" for k, v in _wire(window.matchers).items())
        cells = (window.id, window.cron, f"{window.duration_minutes:g} min", window.timezone, matchers, window.comment)
        table.add_row(*(Text(cell) for cell in cells))
    console().print(table)
    return EXIT_OK


def _run_mute_remove(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = _client(args, settings)
    with client:
        remove_mute(client, args.id, actor=default_actor(), keyspace=space)
    return _say(args, {"id": args.id, "removed": True}, f"mute window {args.id} removed")


def _run_history(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = _client(args, settings)
    with client:
        transitions = read_history(client, keyspace=space, limit=args.limit)
    if args.json:
        print_json([_wire(transition) for transition in transitions])
        return EXIT_OK
    table = Table("at", "rule", "subject", "change", "value", "notified", title=f"{len(transitions)} changes")
    for transition in transitions:
        change = f"{_text(transition.from_state)} -> {_text(transition.to_state)}"
        value = "-" if transition.value is None else f"{transition.value:g}"
        kind = (
            _text(transition.kind)
            if transition.kind
            else (f"silenced: {transition.silenced_by}" if transition.silenced_by else "-")
        )
        cells = (_when(transition.at_ms), transition.rule_id, transition.subject, change, value, kind)
        table.add_row(*(Text(cell) for cell in cells))
    console().print(table)
    return EXIT_OK


def _run_test(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = _client(args, settings)
    with client:
        config = load_config(client, keyspace=space, reveal=True)
    delivery = send_test(config, args.channel)
    data = {
        "channel": delivery.channel,
        "ok": delivery.ok,
        "attempts": delivery.attempts,
        "error": delivery.error,
        "status": delivery.status,
    }
    if args.json:
        print_json(data)
    elif delivery.ok:
        console().print(escape(f"test notification delivered to {args.channel} ({delivery.attempts} attempt(s))"))
    else:
        console(stderr=True).print(Text(f"test notification to {args.channel} failed: {delivery.error}", style="red"))
    return EXIT_OK if delivery.ok else EXIT_FAILED


def _run_channels(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = _client(args, settings)
    with client:
        config = load_config(client, keyspace=space)
        health = channel_health(client, keyspace=space)
    if args.json:
        print_json(
            {"config": _json.loads(encode_alert_config(config)), "health": {k: _wire(v) for k, v in health.items()}}
        )
        return EXIT_OK
    table = Table("channel", "last success", "last attempt", "failures in a row", "last error", title="channel health")
    for name, state in sorted(health.items()):
        failures = Text(str(state.consecutive_failures), style="red" if state.consecutive_failures else "")
        cells = (name, _when(state.last_success_ms), _when(state.last_attempt_ms))
        table.add_row(*(Text(cell) for cell in cells), failures, Text(state.last_error or "-"))
    console().print(Text(encode_alert_config(config)))
    console().print(table)
    return EXIT_OK
