"""The traceback a failed event carries: as Python prints it, cut at its start past the spec's limit."""

from __future__ import annotations

from zenith_protocol.events import MAX_STACK_CHARS
from zenith_sdk.worker._outcomes import stack_text


def _raised(depth: int) -> BaseException:
    # Two functions calling each other: Python does not fold frames that differ from the one before.
    def dive(n: int) -> None:
        if n == 0:
            raise ValueError("at the bottom")
        again(n - 1)

    def again(n: int) -> None:
        dive(n)

    try:
        dive(depth)
    except ValueError as exc:
        return exc
    raise AssertionError("dive() did not raise")


def test_a_short_trace_is_whole() -> None:
    stack = stack_text(_raised(2)) or ""

    assert stack.startswith("Traceback (most recent call last):")
    assert stack.endswith("ValueError: at the bottom") and stack.count(", in dive") == 3 and "repeated" not in stack


def test_a_long_trace_keeps_its_end_where_the_failing_call_is() -> None:
    stack = stack_text(_raised(400)) or ""

    assert len(stack) == MAX_STACK_CHARS
    assert stack.startswith("...\n") and not stack.startswith("...\nTraceback")
    assert stack.endswith('raise ValueError("at the bottom")\nValueError: at the bottom')


def test_an_exception_never_raised_has_no_trace() -> None:
    assert stack_text(TimeoutError("job timed out after 2 s")) is None
