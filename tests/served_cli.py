"""A long-running ``zenith`` command (console, demo) as a child process: wait for its URL, stop it with Ctrl-C."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import psutil
from cli_run import ZENITH, child_env
from patience import HANG_S

_URL = re.compile(r"(http://\S+/)\s*$")


@dataclass
class Served:
    """A running command, what it printed so far, and the processes it started."""

    process: subprocess.Popen[str]
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    url: str = ""

    def wait_for_url(self) -> str:
        """The URL the command prints, once it prints it; fails with its output if it ends first."""
        while True:
            try:
                line = self.lines.get(timeout=HANG_S)
            except queue.Empty:
                raise AssertionError(f"no URL after {HANG_S} s; output {self.out}, errors {self.err}") from None
            if line is None:
                self.process.wait(HANG_S)
                raise AssertionError(f"it ended ({self.process.returncode}) before a URL: {self.out} {self.err}")
            found = _URL.search(line)
            if found:
                self.url = found.group(1)
                return self.url

    def children(self) -> list[psutil.Process]:
        """Every process it started (children, grandchildren), now."""
        return psutil.Process(self.process.pid).children(recursive=True)

    def interrupt(self) -> int:
        """Ctrl-C, then its exit status (killed after the patience bound)."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(HANG_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"still running {HANG_S} s after Ctrl-C; output {self.out} {self.err}") from None


def _pump(stream: Iterator[str], into: list[str], lines: queue.Queue[str | None] | None) -> None:
    for line in stream:
        into.append(line)
        if lines is not None:
            lines.put(line)
    if lines is not None:
        lines.put(None)


@contextmanager
def served(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> Iterator[Served]:
    """Start ``zenith ARGV`` with ``env`` added to a clean environment; killed at the end if still running."""
    process = subprocess.Popen(
        [*ZENITH, *argv],
        env={**child_env(), **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = Served(process)
    assert process.stdout is not None and process.stderr is not None
    readers = [
        threading.Thread(target=_pump, args=(process.stdout, running.out, running.lines), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, running.err, None), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for reader in readers:
            reader.join(HANG_S)
        process.stdout.close()
        process.stderr.close()
