"""Several worker processes from Python, exactly as ``zenith worker --processes N`` runs them."""

from __future__ import annotations

from collections.abc import Sequence

from zenith_protocol import KeySpace

__all__ = ["run_worker_processes"]


def run_worker_processes(
    app: str,
    *,
    processes: int,
    concurrency: int = 1,
    queues: Sequence[str] = ("default",),
    redis_url: str | None = None,
    keyspace: KeySpace | None = None,
    worker_id: str | None = None,
    max_jobs_per_child: int | None = None,
    max_memory_per_child_mb: float | None = None,
    events: bool = True,
    poll_interval_s: float = 0.5,
    shutdown_timeout_s: float = 30.0,
) -> int:
    """Run ``processes`` worker processes of ``concurrency`` slots each under a supervisor; returns its exit status.

    ``app`` names the App as ``"module:attribute"``: every process imports it for itself (a new
    interpreter, not a fork), so it must be importable from the current folder or ``sys.path``.
    The supervisor restarts a process that dies, replaces one after ``max_jobs_per_child`` jobs
    or above ``max_memory_per_child_mb`` MiB, and stops them all gracefully on SIGTERM/SIGINT.
    Blocks until then, from the main thread (it installs signal handlers). Status 2: the app or
    an option is wrong (the message says which); 1: processes kept failing.
    """
    from zenith_sdk.cli import main
    from zenith_sdk.cli._common import redis_option_args

    argv = ["worker", app, "--processes", str(processes), "--concurrency", str(concurrency)]
    argv += ["--queues", ",".join(queues), "--poll-interval", str(poll_interval_s)]
    argv += ["--shutdown-timeout", str(shutdown_timeout_s)]
    if worker_id is not None:
        argv += ["--worker-id", worker_id]
    if max_jobs_per_child is not None:
        argv += ["--max-jobs-per-child", str(max_jobs_per_child)]
    if max_memory_per_child_mb is not None:
        argv += ["--max-memory-per-child", str(max_memory_per_child_mb)]
    if not events:
        argv.append("--no-events")
    return main([*argv, *redis_option_args(redis_url, keyspace)])
