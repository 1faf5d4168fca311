"""What every check of a worker run has: a verdict, hooks the run calls, and shared comparisons."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from redis.client import Pipeline

from zenith_sdk.conformance._plan import WorkerPlan
from zenith_sdk.conformance._report import CheckResult, Verdict, fields_of
from zenith_sdk.conformance._run import Run, Snapshot

__all__ = ["Check", "changed_members", "check_dead_letter"]


class Check:
    """One check. The run calls ``setup`` before its first job, ``start`` once a worker took that
    job, ``observe`` on every read until ``done``, and ``conclude`` at the end."""

    name: ClassVar[str]
    title: ClassVar[str]
    sections: ClassVar[tuple[str, ...]]
    passed: ClassVar[str]
    """What held, for the report, when nothing was found."""
    watches: ClassVar[bool] = True
    """False for checks that only judge at the end (the run need not wait for them)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.verdict = Verdict(self.name, self.title, self.sections)
        self.done = not self.watches

    @property
    def plan(self) -> WorkerPlan:
        return self.run.plan

    def label(self, job_id: str) -> str:
        """A job id without the run's queue name in front."""
        return job_id.removeprefix(f"{self.run.plan.queue}-")

    def setup(self, pipe: Pipeline, now_ms: int) -> None:
        """Queue writes that must be in place before any worker fetches (nothing by default)."""

    def start(self, now_ms: int) -> None:
        """Push this check's jobs (nothing by default)."""

    def observe(self, snap: Snapshot) -> None:
        """Look at one read of Redis."""

    def conclude(self, snap: Snapshot) -> None:
        """Judge, after the last read."""

    def result(self) -> CheckResult:
        return self.verdict.result(self.passed)


def changed_members(pushed: dict[str, Any], got: dict[str, Any], allowed: Iterable[str]) -> list[str]:
    """Members other than ``allowed`` that were added, dropped or changed between two versions of a job."""
    skip = set(allowed)
    out = []
    for key in [*pushed, *(key for key in got if key not in pushed)]:
        if key in skip:
            continue
        if key not in got:
            out.append(f"{key} dropped")
        elif key not in pushed:
            out.append(f"{key} added ({got[key]!r})")
        elif got[key] != pushed[key] or type(got[key]) is not type(pushed[key]):
            out.append(f"{key} changed from {pushed[key]!r} to {got[key]!r}")
    return out


def check_dead_letter(
    verdict: Verdict, what: str, raw: bytes, pushed: bytes, *, attempts: int, error: str, also: Iterable[str] = ()
) -> None:
    """Judge a dead letter of ``pushed`` (4.3): ``attempts``, an ``error`` in its error, ``failedAt``, the rest kept."""
    got, before = fields_of(raw), fields_of(pushed)
    if got is None or before is None:
        verdict.fail(f"{what}: the dead letter is not a JSON object: {raw[:80]!r}")
        return
    if got.get("attempts") != attempts:
        verdict.fail(f"{what}: dead-lettered with attempts {got.get('attempts')!r}, expected {attempts}")
    if not isinstance(got.get("error"), str) or error not in got["error"]:
        verdict.fail(f"{what}: dead-letter error {got.get('error')!r} does not contain {error!r}")
    if not isinstance(got.get("failedAt"), int):
        verdict.fail(f"{what}: dead letter without an integer failedAt ({got.get('failedAt')!r})")
    for change in changed_members(before, got, {"attempts", "error", "failedAt", *also}):
        verdict.fail(f"{what}: dead letter {change} (every other member is kept as read, 4.3)")
