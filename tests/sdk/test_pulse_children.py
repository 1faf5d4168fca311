"""A pulse node made of several processes: a real supervisor's children, counted in one report."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import redis
from patience import HANG_S

from zenith_protocol import KeySpace, PulseNode, PulseProcessRole, decode_pulse
from zenith_sdk._pulse_children import ChildMeter
from zenith_sdk.pulse import Pulse
from zenith_sdk.supervisor import Supervisor

CHILD_MIB = 48

CHILD = f"""
import signal, time

block = bytearray({CHILD_MIB} * 1024 * 1024)
for page in range(0, len(block), 4096):  # touch every page, so it is resident
    block[page] = 1
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
while not stop:
    time.sleep(0.01)
"""


def _wait_for(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + HANG_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    """Two children that each hold ``CHILD_MIB`` MiB, supervised from a thread; stopped afterwards."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD), encoding="utf-8")
    running = Supervisor([sys.executable, str(script)], 2, grace_s=HANG_S)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        _wait_for(lambda: len(running.pids) == 2, "two children")
        yield running
    finally:
        running.stop()
        thread.join(HANG_S)


def _report(r: redis.Redis, key: str, accept: Callable[[PulseNode], bool]) -> PulseNode:
    """The first report under ``key`` that ``accept`` takes (the pulse writes a new one every interval)."""
    found: list[PulseNode] = []

    def read() -> bool:
        raw = r.get(key)
        found[:] = [] if raw is None else [decode_pulse(raw)]
        return bool(found) and accept(found[0])

    _wait_for(read, f"a report under {key}")
    return found[0]


def _lists(node: PulseNode, *pids: int) -> bool:
    """Whether ``node`` lists the supervisor and two children, those of ``pids`` among them, each resident."""
    children = (node.processes or [])[1:]
    listed = [process.pid for process in children]
    resident = all(process.rss >= CHILD_MIB * 2**20 for process in children)
    return len(children) == 2 and resident and all(pid in listed for pid in pids)


def _children_resident(supervisor: Supervisor) -> bool:
    pids = supervisor.children.values()
    return all(psutil.Process(pid).memory_info().rss >= CHILD_MIB * 2**20 for pid in pids)


def test_a_supervisor_reports_itself_and_its_children_as_one_node(
    r: redis.Redis, keyspace: KeySpace, supervisor: Supervisor
) -> None:
    _wait_for(lambda: _children_resident(supervisor), "the children's memory")
    pulse = Pulse("fleet", r, keyspace=keyspace, interval_s=0.05, children=lambda: supervisor.children)
    with pulse:
        first = _report(r, pulse.key, _lists)
        [old] = [pid for slot, pid in supervisor.children.items() if slot == 1]
        psutil.Process(old).kill()
        _wait_for(lambda: supervisor.children.get(1, old) != old, "a replacement")
        new = supervisor.children[1]
        later = _report(r, pulse.key, lambda node: _lists(node, new))
    assert r.exists(*pulse.keys) == 0

    for node in (first, later):
        processes = node.processes or []
        assert (node.pid, node.id) == (os.getpid(), pulse.node_id)  # the supervisor's node: one for them all
        assert [(p.role, p.slot) for p in processes] == [
            (PulseProcessRole.SUPERVISOR, None),
            (PulseProcessRole.CHILD, 0),
            (PulseProcessRole.CHILD, 1),
        ]
        assert processes[0].pid == os.getpid()
        assert all(process.rss >= CHILD_MIB * 2**20 for process in processes[1:])
        assert node.memory.process.rss == sum(process.rss for process in processes)
        assert node.cpu.process == pytest.approx(min(100.0, sum(process.cpu or 0.0 for process in processes)), abs=0.2)
    assert old in [process.pid for process in first.processes or []]
    assert [process.pid for process in later.processes or []][1:] == [supervisor.children[0], new]


def test_a_child_gone_since_it_was_listed_is_left_out() -> None:
    gone = psutil.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    meter = ChildMeter(lambda: {0: os.getpid(), 1: gone.pid}, psutil.cpu_count() or 1, name="test")

    [report] = meter.read()

    assert (report.pid, report.slot, report.role) == (os.getpid(), 0, PulseProcessRole.CHILD)
    assert report.rss > 0


def test_a_failing_children_callback_is_logged_once_and_the_node_reports_itself(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> dict[int, int]:
        raise RuntimeError("supervisor gone")

    pulse = Pulse("fleet", children=broken)
    nodes = [pulse.sample(), pulse.sample()]

    assert all([p.role for p in node.processes or []] == [PulseProcessRole.SUPERVISOR] for node in nodes)
    assert all(node.memory.process.rss == (node.processes or [])[0].rss for node in nodes)
    assert len([rec for rec in caplog.records if "children callback failed" in rec.getMessage()]) == 1


def test_a_single_process_node_lists_no_processes() -> None:
    assert Pulse("alone").sample().processes is None
