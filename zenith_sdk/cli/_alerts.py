"""``zenith alerts ...``: run the alert loop, edit rules, silence and mute alerts, read history and channel health."""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from zenith_protocol import AlertRule, _json, encode_alert_config
from zenith_sdk.alerts import (
    AlertService,
    add_rule,
    channel_health,
    load_config,
    load_rules,
    read_history,
    read_states,
    remove_rule,
    update_rule,
)
from zenith_sdk.alerts.channels import send_test
from zenith_sdk.cli._alerts_common import (
    EXIT_FAILED,
    EXIT_OK,
    client_and_space,
    common_options,
    duration_s,
    say,
    text,
    when,
    wire,
)
from zenith_sdk.cli._alerts_quiet import register_quiet
from zenith_sdk.cli._common import (
    CliSettings,
    add_redis_options,
    console,
    keyspace_from,
    print_json,
    redis_from,
    stop_on_signals,
)

__all__ = ["register"]

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
    common_options(listing)
    listing.set_defaults(handler=_run_rules)

    add = actions.add_parser("add", help="add a rule (the first edit also writes the three default rules)")
    add.add_argument("--type", required=True, help="backlog, latency, failure, failure_count, failure_ratio, ...")
    add.add_argument("--threshold", required=True, type=float, help="the limit the value is compared with")
    add.add_argument("--id", default=None, help="rule id (default: from the type and queue)")
    _rule_options(add)
    add.add_argument("--channel", action="append", dest="channels", metavar="NAME", help="a channel (repeatable)")
    add.add_argument("--disabled", action="store_true", help="add it disabled")
    common_options(add)
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
    common_options(edit)
    edit.set_defaults(handler=_run_edit)

    remove = actions.add_parser("remove", help="remove a rule")
    remove.add_argument("id", help="rule id")
    common_options(remove)
    remove.set_defaults(handler=_run_remove)

    register_quiet(actions)

    history = actions.add_parser("history", help="the latest alert state changes, newest first")
    history.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    common_options(history)
    history.set_defaults(handler=_run_history)

    test = actions.add_parser(
        "test", help="send a test notification to a channel (slack, discord, email, webhook:NAME)"
    )
    test.add_argument("channel", help="channel name")
    common_options(test)
    test.set_defaults(handler=_run_test)

    channels = actions.add_parser("channels", help="channel settings (secrets redacted) and delivery health")
    common_options(channels)
    channels.set_defaults(handler=_run_channels)


def _rule_options(parser: argparse.ArgumentParser) -> None:
    for flag, dest, kind, words in _RULE_OPTIONS:
        parser_type = duration_s if kind in ("duration", "minutes") else kind
        parser.add_argument(flag, dest=dest, type=parser_type, default=None, help=words)


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
    with stop_on_signals() as stop_requested:
        try:
            service.run(stop=stop_requested)
        finally:
            client.close()
    err.print("alerts: stopped")
    return EXIT_OK


def _run_rules(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = client_and_space(args, settings)
    with client:
        rules = load_rules(client, keyspace=space)
        states = read_states(client, keyspace=space).states
    by_rule: dict[str, dict[str, Any]] = {rule.id: {} for rule in rules}
    for (rule_id, subject), state in sorted(states.items()):
        by_rule.setdefault(rule_id, {})[subject] = state
    if args.json:
        print_json(
            [
                {**wire(rule), "states": {subject: wire(state) for subject, state in by_rule[rule.id].items()}}
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
        cells = (rule.id, text(rule.type), scope, f"{rule.threshold:g}", text(rule.severity))
        table.add_row(*(Text(cell) for cell in cells), "yes" if rule.enabled else "no", Text(summary))
    console().print(table)
    return EXIT_OK


def _run_add(args: argparse.Namespace, settings: CliSettings) -> int:
    fields = _fields(args)
    rule_id = args.id or f"{args.type}-{args.queue or args.service or 'all'}".replace("*", "any")
    fields.setdefault("name", rule_id)
    if args.disabled:
        fields["enabled"] = False
    rule = AlertRule.model_validate({"id": rule_id, **fields})  # checked before connecting
    client, space = client_and_space(args, settings)
    with client:
        add_rule(client, rule, keyspace=space)
    return say(args, wire(rule), f"rule {rule.id} added")


def _run_edit(args: argparse.Namespace, settings: CliSettings) -> int:
    changes: dict[str, Any] = {**_fields(args), **{name: None for name in args.clear}}
    if not changes:
        raise ValueError("nothing to change: pass options such as --threshold 500 or --clear runbookUrl")
    client, space = client_and_space(args, settings)
    with client:
        rule = update_rule(client, args.id, changes, keyspace=space)
    return say(args, wire(rule), f"rule {rule.id} updated")


def _run_remove(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = client_and_space(args, settings)
    with client:
        remove_rule(client, args.id, keyspace=space)
    return say(args, {"id": args.id, "removed": True}, f"rule {args.id} removed")


def _run_history(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = client_and_space(args, settings)
    with client:
        transitions = read_history(client, keyspace=space, limit=args.limit)
    if args.json:
        print_json([wire(transition) for transition in transitions])
        return EXIT_OK
    table = Table("at", "rule", "subject", "change", "value", "notified", title=f"{len(transitions)} changes")
    for transition in transitions:
        change = f"{text(transition.from_state)} -> {text(transition.to_state)}"
        value = "-" if transition.value is None else f"{transition.value:g}"
        kind = (
            text(transition.kind)
            if transition.kind
            else (f"silenced: {transition.silenced_by}" if transition.silenced_by else "-")
        )
        cells = (when(transition.at_ms), transition.rule_id, transition.subject, change, value, kind)
        table.add_row(*(Text(cell) for cell in cells))
    console().print(table)
    return EXIT_OK


def _run_test(args: argparse.Namespace, settings: CliSettings) -> int:
    client, space = client_and_space(args, settings)
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
    client, space = client_and_space(args, settings)
    with client:
        config = load_config(client, keyspace=space)
        health = channel_health(client, keyspace=space)
    if args.json:
        print_json(
            {"config": _json.loads(encode_alert_config(config)), "health": {k: wire(v) for k, v in health.items()}}
        )
        return EXIT_OK
    table = Table("channel", "last success", "last attempt", "failures in a row", "last error", title="channel health")
    for name, state in sorted(health.items()):
        failures = Text(str(state.consecutive_failures), style="red" if state.consecutive_failures else "")
        cells = (name, when(state.last_success_ms), when(state.last_attempt_ms))
        table.add_row(*(Text(cell) for cell in cells), failures, Text(state.last_error or "-"))
    console().print(Text(encode_alert_config(config)))
    console().print(table)
    return EXIT_OK
