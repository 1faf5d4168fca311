"""Workers (Node and Python, what each runs now) and Pulse (a card per node, grouped by service)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

from starlette.requests import Request
from starlette.responses import HTMLResponse

from zenith_protocol import PulseNode
from zenith_sdk.console.pages._render import console_of, render
from zenith_sdk.control import NodeEntry, list_nodes, list_workers

__all__ = ["Gauges", "pulse_page", "workers_page"]


@dataclass(frozen=True)
class Gauges:
    """A node's CPU, RAM and fullest disk, in percent (``disk`` None: the report has no disks)."""

    cpu: float
    ram: float
    disk: float | None

    @classmethod
    def of(cls, node: PulseNode) -> Gauges:
        """The gauges of ``node``'s report."""
        memory = node.memory.system
        ram = 100.0 * (memory.total - memory.free) / memory.total if memory.total else 0.0
        disk = max((usage.percent for usage in node.disk), default=None) if node.disk else None
        return cls(cpu=min(100.0, node.cpu.system), ram=ram, disk=disk)


def workers_page(request: Request) -> HTMLResponse:
    """Every worker, Node and Python, alive or stale, with the job it runs now."""
    console = console_of(request)
    return render(request, "workers.html", workers=list_workers(console.client, keyspace=console.keyspace))


def pulse_page(request: Request) -> HTMLResponse:
    """A card per pulse node with CPU, RAM and disk gauges, grouped by service; stale nodes marked."""
    console = console_of(request)
    nodes = sorted(list_nodes(console.client, keyspace=console.keyspace), key=lambda entry: entry.service)
    services: list[tuple[str, list[tuple[NodeEntry, Gauges | None]]]] = [
        (service, [(entry, Gauges.of(entry.node) if entry.node else None) for entry in group])
        for service, group in groupby(nodes, key=lambda entry: entry.service)
    ]
    return render(request, "pulse.html", services=services)
