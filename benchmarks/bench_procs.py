"""Workers started as their users start them, each in a process of its own, for the benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent


def url_for_db(url: str, db: int) -> str:
    """``url`` pointing at database ``db``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


def zenith_worker(url: str, queue: str, *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "zenith_sdk.cli",
        "worker",
        "bench_app:app",
        "--queues",
        queue,
        "--redis",
        url,
        *options,
    ]


def rq_worker(url: str, queue: str, processes: int = 1) -> list[str]:
    """RQ's default worker (it forks a process per job); several at once with ``rq worker-pool``."""
    if processes == 1:
        return [sys.executable, "-m", "rq.cli", "worker", queue, "--url", url, "--logging_level", "WARNING"]
    pool = [sys.executable, "-m", "rq.cli", "worker-pool", queue, "--url", url, "-n", str(processes)]
    return [*pool, "--logging-level", "WARNING"]


def celery_worker(queue: str, processes: int = 1) -> list[str]:
    """Celery's prefork pool of ``processes`` children."""
    command = [sys.executable, "-m", "celery", "-A", "bench_tasks:celery", "worker", "-P", "prefork"]
    return [*command, "-c", str(processes), "-Q", queue, "-l", "WARNING", *_QUIET_CELERY]


_QUIET_CELERY = ("--without-gossip", "--without-mingle", "--without-heartbeat")


@contextmanager
def running(command: list[str], env: dict[str, str]) -> Iterator[None]:
    """Run ``command`` in this folder (so it imports the job modules) until the block ends; then SIGTERM it."""
    process = subprocess.Popen(
        command, cwd=HERE, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield
    finally:
        process.terminate()
        try:
            _, errors = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, errors = process.communicate()
        if process.returncode not in (0, -15, 143) and errors:
            print(errors.decode(errors="replace")[-2000:], file=sys.stderr)
