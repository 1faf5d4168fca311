"""Compact JSON in the byte form the Node writers use, and a loader that never surprises."""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

_SURROGATES = re.compile("[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]")
_ANY_SURROGATE = re.compile("[\ud800-\udfff]")
"""One character class: found several times faster than :data:`_SURROGATES`, and in the same texts."""
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|-?[0-9][0-9.eE+-]*')

_NUMBER_HINT = re.compile(r"[:,\[]-?[0-9]+(?:\.0(?![0-9])|(?:\.[0-9]+)?[eE])")
"""Every float text that JavaScript writes differently contains one of these (a false hit only costs time)."""

MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer a field of the protocol may hold: every integer up to it is exact in an IEEE-754 double."""

MAX_DEPTH = 64
"""Deepest nesting of objects and arrays any JSON text of the protocol may have (the outermost is level 1)."""

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class NestingError(ValueError):
    """A JSON text nests objects and arrays deeper than :data:`MAX_DEPTH` levels."""

    def __init__(self, depth: int) -> None:
        super().__init__(f"nested {depth} levels deep; the protocol allows at most {MAX_DEPTH}")
        self.depth = depth


def nesting_depth(text: str) -> int:
    """How deep ``text`` nests objects and arrays (0 for a scalar), counted without parsing it.

    Brackets inside strings do not count; for text that is not valid JSON the figure is the deepest
    point the brackets reach, which is what a recursive parser would have to descend.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check_depth(text: str) -> None:
    """Raise :class:`NestingError` if ``text`` nests deeper than :data:`MAX_DEPTH` levels."""
    # Cheap test first: that deep needs more brackets than the limit (most texts have far fewer).
    if text.count("[") + text.count("{") > MAX_DEPTH:
        depth = nesting_depth(text)
        if depth > MAX_DEPTH:
            raise NestingError(depth)


def _js_numbers(value: Any) -> Any:
    """Write integral floats as integers, as JavaScript's JSON.stringify does (1.0 -> 1)."""
    if isinstance(value, float):
        if value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
            return int(value)
        return value
    if isinstance(value, dict):
        return {key: _js_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_js_numbers(item) for item in value]
    return value


def _surrogate(match: re.Match[str]) -> str:
    text = match.group()
    if len(text) == 2:
        # A high and a low surrogate spell one character, which is what a JavaScript string holds.
        return chr(0x10000 + ((ord(text[0]) - 0xD800) << 10) + (ord(text[1]) - 0xDC00))
    # A lone surrogate cannot be written as UTF-8; escape it as JSON.stringify does (well-formed stringify).
    return f"\\u{ord(text):04x}"


def js_number(value: float) -> str:
    """``value`` as JavaScript's ``Number.prototype.toString`` writes it (``1e-7``, ``0.000001``, ``1e+21``)."""
    if value == 0:
        return "0"
    if value < 0:
        return "-" + js_number(-value)
    mantissa, _, exponent = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    # value = 0.<digits> x 10^point
    point = len(whole) + int(exponent or 0) - (len(whole + fraction) - len(digits))
    digits = digits.rstrip("0")
    if len(digits) <= point <= 21:
        return digits + "0" * (point - len(digits))
    if 0 < point <= 21:
        return f"{digits[:point]}.{digits[point:]}"
    if -6 < point <= 0:
        return "0." + "0" * -point + digits
    mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
    return f"{mantissa}e{'+' if point > 0 else '-'}{abs(point - 1)}"


def has_lone_surrogate(text: str) -> bool:
    """True if ``text`` holds a surrogate code point (text decoded from JSON or UTF-8 holds only lone ones)."""
    return not text.isascii() and _ANY_SURROGATE.search(text) is not None


def _js_token(match: re.Match[str]) -> str:
    token = match.group()
    if token.startswith('"') or token.lstrip("-").isdigit():
        return token
    return js_number(float(token))


def js_number_forms(text: str) -> str:
    """Rewrite the numbers of compact JSON ``text`` in JavaScript's form (``1.0`` -> ``1``, ``1e-07`` -> ``1e-7``)."""
    if _NUMBER_HINT.search(text) is None:
        return text  # the common case: no float JavaScript would write differently (".0", exponents)
    return _TOKEN.sub(_js_token, text)


def dumps(value: Any) -> str:
    """Compact JSON: no spaces, raw UTF-8, ``/`` unescaped, JavaScript number forms.

    Raises:
        NestingError: ``value`` nests deeper than :data:`MAX_DEPTH` levels, which readers refuse.
    """
    text = json.dumps(_js_numbers(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    check_depth(text)
    return js_number_forms(_SURROGATES.sub(_surrogate, text))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range for a JSON number")
    return number


def loads(text: str) -> Any:
    """Parse strict JSON: NaN, Infinity and overflowing numbers are refused, as JSON.parse would.

    Nesting deeper than :data:`MAX_DEPTH` is refused before parsing (:class:`NestingError`), so no
    input can exhaust the stack of the recursive parser.
    """
    check_depth(text)
    if text.startswith("\ufeff"):  # as json.loads refuses it
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _DECODER.decode(text)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
"""One decoder for every :func:`loads` (``json.loads`` with options builds a new one per call)."""
