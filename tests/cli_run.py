"""Running the real ``zenith`` console script as a child process, as a person would, and reading its output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from patience import HANG_S

from zenith_protocol import KeySpace

_SCRIPT = Path(sys.executable).with_name("zenith")
ZENITH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "zenith_sdk.cli"]
Result = subprocess.CompletedProcess[str]


def child_env() -> dict[str, str]:
    """This environment without settings that would point the command elsewhere, and without colour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENITH_") and k != "REDIS_URL"}
    return {**env, "NO_COLOR": "1"}


def start(argv: Sequence[str], *, cwd: Path | None = None, stdin: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*ZENITH, *argv],
        cwd=cwd,
        env=child_env(),
        stdin=subprocess.DEVNULL if stdin is None else stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], *, timeout_s: float = HANG_S) -> Result:
    """Wait for ``process``; one still running after ``timeout_s`` is killed (and its output kept)."""
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        err = f"(killed after {timeout_s} s)\n{err}"
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def zenith(*argv: str, stdin_text: str | None = None, cwd: Path | None = None) -> Result:
    """Run ``zenith ARGV`` to completion."""
    return subprocess.run(
        [*ZENITH, *argv],
        cwd=cwd,
        env=child_env(),
        input=stdin_text,
        stdin=subprocess.DEVNULL if stdin_text is None else None,
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )


def zenith_all(argvs: Sequence[Sequence[str]], *, cwd: Path | None = None) -> list[Result]:
    """Run several ``zenith`` commands at once (each is a process of its own) and wait for all."""
    processes = [start(argv, cwd=cwd) for argv in argvs]
    return [finish(process) for process in processes]


def one_line(result: Result, status: int, *texts: str) -> str:
    """The single stderr line of ``result``, after checking its exit status, that line and no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == status, (result.args, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for text in texts:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def prefix_options(space: KeySpace) -> list[str]:
    return [
        *("--queue-prefix", space.queue_prefix, "--console-prefix", space.console_prefix),
        *("--pulse-prefix", space.pulse_prefix, "--legacy-pulse-prefix", space.legacy_pulse_prefix),
        *("--command-prefix", space.command_prefix, "--settings-prefix", space.settings_prefix),
        *("--zenith-prefix", space.zenith_prefix),
    ]
