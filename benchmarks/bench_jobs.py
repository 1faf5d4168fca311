"""Job functions for the benchmarks (importable by name, as RQ requires)."""

from __future__ import annotations


def noop() -> None:
    """Do nothing: the benchmark measures the worker, not the job."""
    return None
