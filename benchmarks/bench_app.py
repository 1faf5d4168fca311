"""The Zenith app of the benchmarks that run workers in processes: the jobs of ``bench_tasks.py``."""

from __future__ import annotations

import importlib

from zenith_sdk.worker import App, JobContext

tasks = importlib.import_module("bench_tasks")  # beside this file, as the worker imports it
app = App()


@app.handler("record")
def record(job: JobContext) -> None:
    tasks.record(float(job.properties["at"]))


@app.handler("busy")
def busy(job: JobContext) -> None:
    tasks.busy()


@app.handler("crunch")
def crunch(job: JobContext) -> None:
    tasks.crunch(int(job.properties["rounds"]))
