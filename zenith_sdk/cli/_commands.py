"""``zenith command SERVICE TYPE --queue Q``: send a remote command to a service's nodes and show their replies."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from zenith_protocol import CommandPayload
from zenith_protocol.commands import BROADCAST_NODE, CommandType
from zenith_sdk.cli._common import (
    CliSettings,
    add_output_options,
    add_redis_options,
    console,
    keyspace_from,
    print_json,
    redis_from,
)
from zenith_sdk.commands import DEFAULT_WAIT_S, CommandResult, CommandSender
from zenith_sdk.events import EventEmitter

__all__ = ["register"]

DEFAULT_ISSUER = "zenith-cli"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``command`` to the command line."""
    known = ", ".join(kind.value for kind in CommandType)
    parser = commands.add_parser(
        "command",
        help="send a remote command to a service's nodes and print their replies",
        description="PUBLISH a remote command to one node (--node) or every node of SERVICE, then collect replies "
        "for --wait seconds. Legacy agents execute commands without replying. Exit status 1 when no node was "
        "subscribed or a node reported a failure.",
    )
    parser.add_argument("service", metavar="SERVICE", help="service whose nodes receive the command")
    parser.add_argument("type", metavar="TYPE", help=f"command type ({known})")
    parser.add_argument("--queue", required=True, help="queue the command acts on")
    parser.add_argument("--job-id", default=None, help="job the command acts on")
    parser.add_argument("--node", default=BROADCAST_NODE, help="node id to address (default: '*', every node)")
    parser.add_argument("--wait", type=float, default=DEFAULT_WAIT_S, metavar="S", help="seconds to collect replies")
    parser.add_argument("--issuer", default=DEFAULT_ISSUER, help=f"who sends it (default: {DEFAULT_ISSUER})")
    add_redis_options(parser)
    add_output_options(parser)
    parser.set_defaults(handler=_run_command)


def _run_command(args: argparse.Namespace, settings: CliSettings) -> int:
    client, _where = redis_from(args, settings)
    space = keyspace_from(args, settings)
    try:
        sender = CommandSender(client, keyspace=space, issuer=args.issuer, events=EventEmitter(client, keyspace=space))
        payload = CommandPayload(queue=args.queue, job_id=args.job_id)
        expect = None if args.node == BROADCAST_NODE else 1
        result = sender.send(
            args.service, args.type.upper(), payload, node_id=args.node, wait_s=args.wait, expect=expect
        )
    finally:
        client.close()
    if args.json:
        print_json(_as_json(result))
    else:
        _print_table(result, space.command_channel(args.service, args.node))
    return 0 if result.ok else 1


def _as_json(result: CommandResult) -> dict[str, object]:
    return {
        "ok": result.ok,
        "command": result.command.model_dump(mode="json", exclude_none=True),
        "delivered": result.delivered,
        "replies": [reply.model_dump(mode="json") for reply in result.replies],
    }


def _print_table(result: CommandResult, channel: str) -> None:
    out = console()
    command = result.command
    kind = command.type.value if isinstance(command.type, CommandType) else command.type
    out.print(escape(f"command {command.id} ({kind})"))
    if result.delivered == 0:
        out.print(
            f"[red]no node is subscribed to {escape(channel)}[/]: check the service name, the node id and "
            "--command-prefix"
        )
        return
    out.print(escape(f"reached {result.delivered} subscriber(s) on {channel}; {len(result.replies)} replied"))
    if not result.replies:
        out.print("no replies (legacy agents carry out commands without replying)")
        return
    table = Table("node", "ok", "message")
    for reply in sorted(result.replies, key=lambda reply: reply.node_id):
        table.add_row(Text(reply.node_id), "[green]yes[/]" if reply.ok else "[red]no[/]", Text(reply.message or ""))
    out.print(table)
