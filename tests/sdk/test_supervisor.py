"""The supervisor with real child processes: small Python programs that crash, exit, ignore SIGTERM."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest
from patience import HANG_S

from zenith_sdk.supervisor import SLOT_ENV, ChildExit, Supervisor


def _program(tmp_path: Path, body: str) -> list[str]:
    """A child that runs ``body`` with ``slot``, ``run`` (its start count in that slot) and ``out`` (tmp_path) set."""
    script = tmp_path / "child.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, signal, sys, time
            from pathlib import Path
            out = Path({str(tmp_path)!r})
            slot = int(os.environ[{SLOT_ENV!r}])
            runs = out / f"runs-{{slot}}"
            run = len(runs.read_text().split()) if runs.exists() else 0
            with runs.open("a") as f:
                f.write(f"{{os.getpid()}}\\n")
            """
        )
        + textwrap.dedent(body)
    )
    return [sys.executable, str(script)]


def _runs(tmp_path: Path, slot: int) -> list[int]:
    path = tmp_path / f"runs-{slot}"
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def _in_background(supervisor: Supervisor) -> tuple[threading.Thread, list[int]]:
    status: list[int] = []
    thread = threading.Thread(target=lambda: status.append(supervisor.run()), daemon=True)
    thread.start()
    return thread, status


def _wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + HANG_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


_SERVE_UNTIL_SIGTERM = """
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
while not stop:
    time.sleep(0.01)
(out / f"stopped-{slot}-{os.getpid()}").write_text("")
"""


def test_each_slot_runs_one_child_and_sigterm_stops_them_all_gracefully(tmp_path: Path) -> None:
    supervisor = Supervisor(_program(tmp_path, _SERVE_UNTIL_SIGTERM), 3)
    thread, status = _in_background(supervisor)
    _wait_for(lambda: all(_runs(tmp_path, slot) for slot in range(3)), "three children started")
    pids = supervisor.pids
    assert len(pids) == 3

    supervisor.stop()
    thread.join(HANG_S)

    assert status == [0]
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)
    stopped = sorted(path.name for path in tmp_path.glob("stopped-*"))
    assert stopped == sorted(f"stopped-{slot}-{_runs(tmp_path, slot)[0]}" for slot in range(3))
    assert [done.status for done in supervisor.exits] == []  # stopped children are not deaths


def test_a_child_that_dies_is_replaced_and_the_others_keep_running(tmp_path: Path) -> None:
    body = "if slot == 1 and run == 0:\n    os._exit(9)\n" + _SERVE_UNTIL_SIGTERM
    exits: list[ChildExit] = []
    supervisor = Supervisor(_program(tmp_path, body), 2, on_exit=exits.append)
    thread, status = _in_background(supervisor)
    _wait_for(lambda: len(_runs(tmp_path, 1)) == 2, "the dead child was replaced")
    _wait_for(lambda: len(supervisor.pids) == 2, "two children run again")
    supervisor.stop()
    thread.join(HANG_S)

    assert status == [0]
    assert [(done.slot, done.status, done.how) for done in exits] == [(1, 9, "status 9")]
    assert exits[0].restart_in_s == 0.5  # it died at once: the next start waited
    assert len(_runs(tmp_path, 0)) == 1  # slot 0 was never touched


def test_a_child_killed_by_a_signal_is_replaced(tmp_path: Path) -> None:
    supervisor = Supervisor(_program(tmp_path, _SERVE_UNTIL_SIGTERM), 1)
    thread, status = _in_background(supervisor)
    _wait_for(lambda: len(_runs(tmp_path, 0)) == 1, "the child started")
    [first] = _runs(tmp_path, 0)
    psutil.Process(first).kill()
    _wait_for(lambda: len(_runs(tmp_path, 0)) == 2 and len(supervisor.pids) == 1, "a new child took its place")
    supervisor.stop()
    thread.join(HANG_S)

    assert status == [0]
    [done] = supervisor.exits
    assert (done.pid, done.status, done.how) == (first, -9, "signal 9")


def test_a_child_that_exits_cleanly_on_its_own_is_replaced_at_once_without_counting_a_failure(tmp_path: Path) -> None:
    body = "if run < 4:\n    sys.exit(0)\n" + _SERVE_UNTIL_SIGTERM
    supervisor = Supervisor(_program(tmp_path, body), 1, max_quick_exits=2, backoff_s=HANG_S)
    thread, status = _in_background(supervisor)
    _wait_for(lambda: len(_runs(tmp_path, 0)) == 5, "each clean exit was followed by a new child at once")
    supervisor.stop()
    thread.join(HANG_S)
    assert status == [0]
    assert [done.status for done in supervisor.exits] == [0, 0, 0, 0]


def test_children_that_keep_dying_at_once_make_it_give_up_with_their_status(tmp_path: Path) -> None:
    supervisor = Supervisor(_program(tmp_path, "sys.exit(3)\n"), 2, max_quick_exits=3, backoff_s=0.01)
    assert supervisor.run() == 3
    deaths = max(len(_runs(tmp_path, 0)), len(_runs(tmp_path, 1)))
    assert deaths == 3  # the first slot to fail three times in a row stops them all
    assert supervisor.pids == []
    [last] = [done for done in supervisor.exits if done.restart_in_s is None]
    restarts = [done.restart_in_s for done in supervisor.exits if done.slot == last.slot]
    assert restarts == [0.01, 0.02, None]  # doubling pauses, then none: it gave up


def test_bad_input_at_the_first_run_is_not_retried(tmp_path: Path) -> None:
    body = "print('error: no such module: app', file=sys.stderr)\nsys.exit(2)\n"
    supervisor = Supervisor(_program(tmp_path, body), 1, max_quick_exits=5)
    assert supervisor.run() == 2
    assert len(_runs(tmp_path, 0)) == 1


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    body = "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.01)\n"
    supervisor = Supervisor(_program(tmp_path, body), 1, grace_s=0.3)
    thread, status = _in_background(supervisor)
    _wait_for(lambda: len(supervisor.pids) == 1, "the child started")
    [pid] = supervisor.pids
    supervisor.stop()
    thread.join(HANG_S)
    assert status == [0]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.parametrize(("processes", "command"), [(0, ["python"]), (1, [])])
def test_a_supervisor_needs_a_command_and_a_process(processes: int, command: list[str]) -> None:
    with pytest.raises(ValueError, match="processes|command"):
        Supervisor(command, processes)


def test_the_slot_is_in_the_childs_environment_only(tmp_path: Path) -> None:
    assert SLOT_ENV not in os.environ
    supervisor = Supervisor(_program(tmp_path, _SERVE_UNTIL_SIGTERM), 2)
    thread, _ = _in_background(supervisor)
    _wait_for(lambda: _runs(tmp_path, 0) and _runs(tmp_path, 1), "both slots started")
    supervisor.stop()
    thread.join(HANG_S)
    assert SLOT_ENV not in os.environ
