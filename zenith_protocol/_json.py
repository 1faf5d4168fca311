"""Compact JSON in the byte form the Node writers use, and a loader that never surprises."""

from __future__ import annotations

import json
import math
import re
from typing import Any

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

_MAX_SAFE_INTEGER = 2**53


def _js_numbers(value: Any) -> Any:
    """Write integral floats as integers, as JavaScript's JSON.stringify does (1.0 -> 1)."""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < _MAX_SAFE_INTEGER:
            return int(value)
        return value
    if isinstance(value, dict):
        return {key: _js_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_js_numbers(item) for item in value]
    return value


def dumps(value: Any) -> str:
    """Compact JSON: no spaces, raw UTF-8, ``/`` unescaped, JavaScript number forms."""
    text = json.dumps(_js_numbers(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    # A lone surrogate cannot be written as UTF-8; escape it as JSON.stringify does (well-formed stringify).
    return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range for a JSON number")
    return number


def loads(text: str) -> Any:
    """Parse strict JSON: NaN, Infinity and overflowing numbers are refused, as JSON.parse would."""
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
