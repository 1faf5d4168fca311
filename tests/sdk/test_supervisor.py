"""The supervisor with real child processes: small Python programs that crash, exit, ignore SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest
from patience import HANG_S

from zenith_sdk.supervisor import READY_FD_ENV, SLOT_ENV, ChildExit, Supervisor, supervised_ready


def _program(tmp_path: Path, body: str) -> list[str]:
    """A child that runs ``body`` with ``slot``, ``run`` (its start count in that slot) and ``out`` (tmp_path) set."""
    script = tmp_path / "child.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, signal, sys, time
            from pathlib import Path
            out = Path({str(tmp_path)!r})
            signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as if the tests did not run under nohup
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
    assert supervisor.children == {slot: _runs(tmp_path, slot)[0] for slot in range(3)}

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
    body = """
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        (out / "deaf").write_text("")
        while True:
            time.sleep(0.01)
        """
    exits: list[ChildExit] = []
    supervisor = Supervisor(_program(tmp_path, body), 1, grace_s=0.3, on_exit=exits.append)
    thread, status = _in_background(supervisor)
    _wait_for(lambda: (tmp_path / "deaf").exists(), "the child to ignore SIGTERM")
    [pid] = supervisor.pids
    supervisor.stop()
    thread.join(HANG_S)
    assert status == [0]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    # It cleaned nothing up: the caller hears of it (the worker CLI puts back the jobs it held).
    assert [(done.pid, done.how, done.restart_in_s) for done in exits] == [(pid, "signal 9", None)]


_SAY_UP = "from zenith_sdk.supervisor import supervised_ready\nsupervised_ready()\n"
_UP_THEN_SERVE = _SAY_UP + "(out / f'up-{os.getpid()}').write_text('')\n" + _SERVE_UNTIL_SIGTERM


def _up(tmp_path: Path, pid: int) -> bool:
    return (tmp_path / f"up-{pid}").exists()


def test_children_killed_from_outside_once_up_are_replaced_at_once_however_often(tmp_path: Path) -> None:
    # Any death that counted would wait HANG_S before the next start, and the third would end it all.
    supervisor = Supervisor(_program(tmp_path, _UP_THEN_SERVE), 2, max_quick_exits=3, backoff_s=HANG_S)
    thread, status = _in_background(supervisor)
    try:
        for kill in range(8):
            slot = kill % 2
            started = f"start {kill // 2 + 1} of slot {slot} (exits so far: {supervisor.exits})"
            _wait_for(lambda: len(_runs(tmp_path, slot)) == kill // 2 + 1, started)
            pid = _runs(tmp_path, slot)[-1]
            _wait_for(lambda: _up(tmp_path, pid), "the child said it is up")
            psutil.Process(pid).send_signal(signal.SIGKILL if kill % 4 else signal.SIGHUP)
        _wait_for(lambda: len(_runs(tmp_path, 0)) == len(_runs(tmp_path, 1)) == 5, "the last replacements")
    finally:
        supervisor.stop()
        thread.join(HANG_S)

    assert status == [0]
    assert sorted(done.how for done in supervisor.exits) == ["signal 1"] * 2 + ["signal 9"] * 6
    assert all(done.restart_in_s == 0.0 and done.was_up for done in supervisor.exits)
    assert len(supervisor.exits) == 8


def test_children_killed_before_they_are_up_count_as_failing_to_start(tmp_path: Path) -> None:
    body = "os.kill(os.getpid(), signal.SIGKILL)\n"  # as the OOM killer does to an app too big to start
    supervisor = Supervisor(_program(tmp_path, body), 1, max_quick_exits=3, backoff_s=0.01)
    assert supervisor.run() == 1
    assert [(done.how, done.was_up, done.restart_in_s) for done in supervisor.exits] == [
        ("signal 9", False, 0.01),
        ("signal 9", False, 0.02),
        ("signal 9", False, None),
    ]


@pytest.mark.parametrize("crash", ["sys.exit(3)", "os.abort()"])
def test_a_child_that_keeps_crashing_after_it_is_up_still_makes_it_give_up(tmp_path: Path, crash: str) -> None:
    supervisor = Supervisor(_program(tmp_path, f"{_SAY_UP}{crash}\n"), 1, max_quick_exits=3, backoff_s=0.01)
    status = supervisor.run()
    assert status == (3 if crash.startswith("sys") else 1)
    assert [done.was_up for done in supervisor.exits] == [True, True, True]
    assert [done.restart_in_s for done in supervisor.exits] == [0.01, 0.02, None]


def test_supervised_ready_tells_only_a_supervisor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(READY_FD_ENV, raising=False)
    assert supervised_ready() is False  # not supervised: nobody to tell
    with (tmp_path / "not-a-pipe").open("wb") as file:
        monkeypatch.setenv(READY_FD_ENV, str(file.fileno()))
        assert supervised_ready() is False  # the number belongs to a file now: nothing is written to it
        assert READY_FD_ENV not in os.environ
    assert (tmp_path / "not-a-pipe").read_bytes() == b""
    read_fd, write_fd = os.pipe()
    try:
        monkeypatch.setenv(READY_FD_ENV, str(write_fd))
        assert supervised_ready() is True
        assert os.read(read_fd, 64) == b"up\n" and os.read(read_fd, 64) == b""  # said once, then closed
        assert supervised_ready() is False
    finally:
        os.close(read_fd)


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
