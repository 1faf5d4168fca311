"""``run_worker_processes``: the Python form of ``zenith worker --processes N``, as a real process tree."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import redis
from patience import HANG_S
from worker_helpers import wait_for

from zenith_protocol import KeySpace
from zenith_sdk.producer import JobSpec, Producer

APP = """
import os
import time

from zenith_sdk.worker import App, JobContext

app = App()


@app.handler("nap")
def nap(job: JobContext) -> None:
    time.sleep(0.05)
    with open("ran.txt", "a", encoding="utf-8") as out:
        out.write(f"{job.id} {os.getpid()}\\n")
"""


def test_run_worker_processes_spreads_jobs_over_processes_and_stops_them_all_on_sigterm(
    redis_url: str, r: redis.Redis, keyspace: KeySpace, tmp_path: Path
) -> None:
    (tmp_path / "napping.py").write_text(textwrap.dedent(APP), encoding="utf-8")
    script = textwrap.dedent(
        f"""
        import sys
        from zenith_protocol import KeySpace
        from zenith_sdk.processes import run_worker_processes

        space = KeySpace.model_validate_json({keyspace.model_dump_json()!r})
        sys.exit(run_worker_processes("napping:app", processes=2, queues=["naps"], redis_url={redis_url!r},
                                      keyspace=space, worker_id="py-api"))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENITH_") and k != "REDIS_URL"}
    env["PYTHONPATH"] = str(tmp_path)
    process = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        ids = Producer(r, keyspace=keyspace).push_many([JobSpec(name="nap", queue="naps") for _ in range(40)])
        ran = tmp_path / "ran.txt"

        def lines() -> list[list[str]]:
            return [line.split() for line in ran.read_text(encoding="utf-8").splitlines()] if ran.exists() else []

        wait_for(lambda: len(lines()) == len(ids) or process.poll() is not None, what="every job to run")
        assert process.poll() is None, process.communicate()
        assert sorted(job for job, _ in lines()) == sorted(ids)
        assert len({pid for _, pid in lines()}) == 2  # two processes shared the work
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=HANG_S)
        assert process.returncode == 0, errors
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=HANG_S)
    assert list(r.scan_iter(match=keyspace.processing("naps", "*"))) == []
    assert [r.exists(keyspace.worker(f"py-api-{slot}")) for slot in (0, 1)] == [0, 0]
