"""The Zenith app of ``pickup_latency.py``: the same two jobs as ``bench_pickup_jobs.py``."""

from __future__ import annotations

import importlib

from zenith_sdk.worker import App, JobContext

jobs = importlib.import_module("bench_pickup_jobs")  # beside this file, as the worker imports it
app = App()


@app.handler("pickup")
def pickup(job: JobContext) -> None:
    jobs.record(float(job.properties["at"]))


@app.handler("busy")
def busy_job(job: JobContext) -> None:
    jobs.busy()
