"""``zenith workers`` and ``zenith nodes``: every worker heartbeat and every pulse node, Node or Python."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from itertools import groupby
from typing import TypeVar

import redis
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from zenith_protocol import KeySpace, PulseProcess
from zenith_protocol.workers import HEARTBEAT_TTL_S
from zenith_sdk.cli._common import (
    CliSettings,
    add_output_options,
    add_redis_options,
    console,
    human_bytes,
    keyspace_from,
    print_json,
    redis_from,
)
from zenith_sdk.fleet import NodeEntry, WorkerEntry, list_nodes, list_workers

__all__ = ["register"]

_STALE_STYLE = "yellow"
_ERROR_STYLE = "red"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``workers`` and ``nodes`` to the command line."""
    workers = commands.add_parser(
        "workers",
        help="list every worker heartbeat, Node or Python, with its status, job, memory and age",
        description="Read the heartbeats of both key forms and the worker index. A worker whose heartbeat "
        "expired while it is still registered (recovery treats it as dead) is listed as stale.",
    )
    add_redis_options(workers)
    add_output_options(workers)
    workers.add_argument(
        "--ttl",
        type=float,
        default=float(HEARTBEAT_TTL_S),
        metavar="S",
        help=f"heartbeat lifetime that staleness is measured against (default {HEARTBEAT_TTL_S})",
    )
    workers.add_argument("--hide-stale", action="store_true", help="leave out stale workers")
    workers.set_defaults(handler=_run_workers)

    nodes = commands.add_parser(
        "nodes",
        help="list every pulse node (both key forms, merged) with CPU, memory, disk and load, by service",
        description="Read the pulse nodes under the pulse prefix and the Node agent's prefix; a node written "
        "under both counts once. A report older than 60 s is listed as stale.",
    )
    add_redis_options(nodes)
    add_output_options(nodes)
    nodes.add_argument("--hide-stale", action="store_true", help="leave out nodes whose report is over 60 s old")
    nodes.set_defaults(handler=_run_nodes)


Listed = TypeVar("Listed", WorkerEntry, NodeEntry)


def _listed(
    args: argparse.Namespace, settings: CliSettings, lister: Callable[[redis.Redis, KeySpace], list[Listed]]
) -> tuple[list[Listed], str]:
    """What ``lister`` finds in the Redis the options name, and where that is; printed here as JSON with ``--json``."""
    client, where = redis_from(args, settings)
    try:
        entries = lister(client, keyspace_from(args, settings))
    finally:
        client.close()
    if args.json:
        print_json([entry.to_dict() for entry in entries])
    return entries, where


def _run_workers(args: argparse.Namespace, settings: CliSettings) -> int:
    if not args.ttl > 0:
        raise ValueError(f"--ttl must be a positive number of seconds, got {args.ttl}")
    entries, where = _listed(
        args,
        settings,
        lambda client, space: list_workers(client, keyspace=space, ttl_s=args.ttl, include_stale=not args.hide_stale),
    )
    if args.json:
        return 0
    stale = sum(1 for entry in entries if entry.stale)
    caption = f"{_count(len(entries), 'worker')}, {stale} stale"
    table = Table(title=escape(f"Workers at {where}"), caption=caption)
    for column in ("worker", "lang", "host", "queues", "status", "job", "rss", "uptime", "seen", "conc"):
        table.add_column(column, justify="right" if column in ("rss", "uptime", "seen", "conc") else "left")
    for entry in entries:
        table.add_row(*_worker_row(entry))
    console().print(table)
    return 0


def _worker_row(entry: WorkerEntry) -> list[Text]:
    heartbeat = entry.heartbeat
    status = Text(entry.status or "")
    if entry.problem is not None:
        status = Text(f"undecodable: {entry.problem.reason}", style=_ERROR_STYLE)
    if entry.stale:
        status.append(("; " if status else "") + f"STALE: {entry.stale.description}", style=_STALE_STYLE)
    if heartbeat is None:
        host = job = rss = uptime = ""
    else:
        host = f"{heartbeat.hostname}:{heartbeat.pid}"
        job = " ".join(part for part in (heartbeat.current_job_id, heartbeat.job_name) if part)
        rss = heartbeat.memory.rss
        uptime = _duration(heartbeat.uptime_s)
    seen = "" if entry.age_ms is None else f"{_duration(entry.age_ms / 1000)} ago"
    concurrency = "" if entry.concurrency is None else str(entry.concurrency)
    texts = (entry.id, entry.language or "?", host, ", ".join(entry.queues))
    return [*(Text(text) for text in texts), status, *(Text(text) for text in (job, rss, uptime, seen, concurrency))]


def _run_nodes(args: argparse.Namespace, settings: CliSettings) -> int:
    entries, where = _listed(
        args, settings, lambda client, space: list_nodes(client, keyspace=space, include_stale=not args.hide_stale)
    )
    if args.json:
        return 0
    stale = sum(1 for entry in entries if entry.stale)
    services = len({entry.service for entry in entries})
    caption = f"{_count(len(entries), 'node')} in {_count(services, 'service')}, {stale} stale"
    table = Table(title=escape(f"Pulse nodes at {where}"), caption=caption)
    columns = (
        "service",
        "node",
        "lang",
        "cpu sys",
        "cpu proc",
        "ram used",
        "rss",
        "disk",
        "load",
        "age",
        "keys",
        "state",
    )
    for column in columns:
        table.add_column(column, justify="right" if column in ("cpu sys", "cpu proc", "rss", "age") else "left")
    for index, (service, group) in enumerate(groupby(entries, key=lambda entry: entry.service)):
        if index:
            table.add_section()
        for row, entry in enumerate(group):
            table.add_row(Text(service if row == 0 else ""), *_node_row(entry))
            for process in (entry.node.processes if entry.node is not None else None) or []:
                table.add_row(Text(""), *_process_row(process, len(columns) - 1))
    console().print(table)
    return 0


def _process_row(process: PulseProcess, width: int) -> list[Text]:
    """One process of a node that reports several: under the node, its pid and role, CPU and RSS."""
    role = process.role.value + ("" if process.slot is None else f" {process.slot}")
    cpu = "" if process.cpu is None else f"{process.cpu:.1f}%"
    # Under node, lang, cpu sys, cpu proc, ram used, rss; the rest blank.
    cells = [f"  pid {process.pid}", role, "", cpu, "", human_bytes(process.rss)]
    return [Text(cell, style="dim") for cell in cells] + [Text("") for _ in range(width - len(cells))]


def _node_row(entry: NodeEntry) -> list[Text]:
    keys = Text("+".join(form.value for form in entry.forms))
    node = entry.node
    if node is None:
        reason = entry.problem.reason if entry.problem is not None else "no report"
        blank = (Text("") for _ in range(7))
        return [Text(entry.node_id), Text("?"), *blank, keys, Text(f"undecodable: {reason}", style=_ERROR_STYLE)]
    system = node.memory.system
    used = f"{human_bytes(system.used)} / {human_bytes(system.total)}"
    if system.total:
        used += f" ({system.used / system.total * 100:.0f}%)"
    disks = ", ".join(f"{disk.path} {disk.percent:.0f}%" for disk in node.disk or [])
    load = " ".join(f"{value:.2f}" for value in node.load_avg or [])
    age = "" if entry.age_ms is None else f"{_duration(entry.age_ms / 1000)} ago"
    state = Text("STALE", style=_STALE_STYLE) if entry.stale else Text("live")
    cpu = (f"{node.cpu.system:.1f}%", f"{node.cpu.process:.1f}%")
    texts = (entry.node_id, node.language.value, *cpu, used, human_bytes(node.memory.process.rss), disks, load, age)
    return [*(Text(text) for text in texts), keys, state]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``3 h 05 min``, ``2 d 4 h``."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, hours, days = whole // 60, whole // 3600, whole // 86400
    if whole < 3600:
        return f"{minutes} min"
    if whole < 86400:
        return f"{hours} h {minutes % 60:02d} min"
    return f"{days} d {hours % 24} h"
