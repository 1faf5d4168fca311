"""``zenith pulse``: run the System Pulse agent as a sidecar, or write one report and print it."""

from __future__ import annotations

import argparse
import json
import time

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from zenith_protocol import PulseKeyForm, PulseNode, encode_pulse
from zenith_protocol.pulse import PULSE_INTERVAL_S, PULSE_TTL_S
from zenith_sdk.cli._common import (
    CliSettings,
    add_output_options,
    add_redis_options,
    console,
    human_bytes,
    keyspace_from,
    print_json,
    redis_from,
    stop_on_signals,
)
from zenith_sdk.pulse import CPU_WARMUP_S, Pulse

__all__ = ["register"]

EXIT_OK = 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pulse`` to the command line."""
    parser = commands.add_parser(
        "pulse",
        help="report this machine's CPU, memory and disk to Redis (sidecar agent)",
        description="Write a pulse node every --interval seconds until SIGTERM or Ctrl-C, then delete it. "
        "With --once, write one report, print it and exit.",
    )
    add_redis_options(parser)
    add_output_options(parser)
    parser.add_argument("--service", required=True, metavar="NAME", help="service name the console groups nodes by")
    parser.add_argument(
        "--interval",
        type=float,
        default=float(PULSE_INTERVAL_S),
        metavar="S",
        help=f"seconds between reports (default {PULSE_INTERVAL_S})",
    )
    parser.add_argument(
        "--ttl", type=int, default=PULSE_TTL_S, metavar="S", help=f"key lifetime in seconds (default {PULSE_TTL_S})"
    )
    parser.add_argument(
        "--disk",
        action="extend",
        nargs="+",
        metavar="PATH",
        help="filesystem to report; repeat or list several (default /)",
    )
    parser.add_argument("--framework", metavar="TEXT", help="free text shown as the node's framework")
    parser.add_argument(
        "--key-form",
        choices=[form.value for form in PulseKeyForm],
        help="keys to write: both (pulse: and the Node console's gravito:quasar:node:), pulse or legacy "
        "(default: $ZENITH_PULSE_KEY_FORM, else both)",
    )
    parser.add_argument("--once", action="store_true", help="write one report, print it and exit")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace, settings: CliSettings) -> int:
    client, where = redis_from(args, settings)
    err = console(stderr=True)
    try:  # bad options (ValueError) and an unreachable Redis are main()'s to report
        pulse = Pulse(
            args.service,
            client,
            keyspace=keyspace_from(args, settings),
            interval_s=args.interval,
            ttl_s=args.ttl,
            disk_paths=args.disk or ("/",),
            framework=args.framework,
            key_form=PulseKeyForm(args.key_form) if args.key_form else settings.pulse_key_form,
        )
        if args.once:
            return _run_once(pulse, as_json=args.json)
        every = f"every {pulse.interval_s:g} s"
        keys = " and ".join(pulse.keys)
        err.print(escape(f"pulse: writing {keys} to {where} {every}; stop with Ctrl-C or SIGTERM"))
        with stop_on_signals() as stop_requested:
            pulse.start()
            try:
                # A timed wait, so the main thread returns to the interpreter to run signal handlers.
                while not stop_requested.wait(1.0):
                    pass
            finally:
                pulse.stop()
        err.print(escape(f"pulse: stopped, {keys} deleted"))
        return EXIT_OK
    finally:
        client.close()


def _run_once(pulse: Pulse, *, as_json: bool) -> int:
    # A CPU percentage needs a window: let one pass after the meters were primed.
    time.sleep(CPU_WARMUP_S)
    node = pulse.beat()
    if as_json:
        print_json(json.loads(encode_pulse(node)))
    else:
        _print_node(node, pulse.keys, pulse.ttl_s)
    return EXIT_OK


def _print_node(node: PulseNode, keys: tuple[str, ...], ttl_s: int) -> None:
    expiry = f"expires in {ttl_s} s" if len(keys) == 1 else f"each expires in {ttl_s} s"
    table = Table(title=escape(f"{' and '.join(keys)} ({expiry})"), show_header=False)
    table.add_column("field")
    table.add_column("value")
    system, process = node.memory.system, node.memory.process
    rows = [
        ("node", f"{node.id} ({node.language.value} {node.version}, {node.platform})"),
        ("cpu", f"system {node.cpu.system:.1f}%, process {node.cpu.process:.1f}%, {node.cpu.cores} cores"),
        ("memory", f"{human_bytes(system.used)} used of {human_bytes(system.total)}, {human_bytes(system.free)} free"),
        ("process rss", human_bytes(process.rss)),
        ("load average", " ".join(f"{value:.2f}" for value in node.load_avg) if node.load_avg else "n/a"),
        ("uptime", f"{node.runtime.uptime_s:.0f} s"),
    ]
    if node.runtime.framework:
        rows.append(("framework", node.runtime.framework))
    for disk in node.disk or []:
        rows.append(
            (f"disk {disk.path}", f"{human_bytes(disk.used)} used of {human_bytes(disk.total)} ({disk.percent:.1f}%)")
        )
    for field, value in rows:
        table.add_row(Text(field), Text(value))
    console().print(table)
