"""The console's template filters: moments, durations, sizes and JSON as the pages print them."""

from __future__ import annotations

import pytest

from zenith_sdk.console.pages._render import _duration, _pretty, _size, _when


def test_moments_print_in_utc_and_absent_ones_as_a_dash() -> None:
    assert _when(1_767_225_600_000) == "2026-01-01 00:00:00 UTC"
    assert _when(None) == _duration(None) == _size(None) == "—"


@pytest.mark.parametrize(
    ("ms", "shown"),
    [(-5, "0 s"), (999, "0 s"), (3_500, "3 s"), (240_000, "4 min"), (7_200_000, "2 h"), (5 * 86_400_000, "5 d")],
)
def test_durations_take_the_largest_unit_that_fits(ms: int, shown: str) -> None:
    assert _duration(ms) == shown


@pytest.mark.parametrize(
    ("count", "shown"),
    [(512, "512 B"), (1536, "1.5 KiB"), (3 * 1024**2, "3.0 MiB"), (2 * 1024**3, "2.0 GiB"), (5 * 1024**4, "5.0 TiB")],
)
def test_sizes_are_in_binary_units(count: int, shown: str) -> None:
    assert _size(count) == shown


def test_json_is_indented_and_other_text_is_kept() -> None:
    assert _pretty('{"b": 1, "a": "é"}') == '{\n  "a": "é",\n  "b": 1\n}'
    assert _pretty({"x": [1]}) == '{\n  "x": [\n    1\n  ]\n}'
    assert _pretty("not json {") == "not json {"
