"""A dead letter's bytes rewritten for an operator's retry, byte for byte as the scripts' ``_retry.lua`` does.

PROTOCOL 4.13: the new bytes are the old ones with ``attempts`` set to 0 and the ``error`` and
``failedAt`` members removed, every other byte unchanged. Only top-level members change: the
value of ``attempts`` becomes ``0`` (a job without it stays without it); ``error`` and ``failedAt``
are cut out, each with the comma that separates it from a member kept before it or, when no member
is kept before it, with everything up to the next member's name. Whitespace other writers put
between tokens stays where it was.

A bulk retry by id computes the bytes here, so the pick script only checks that the job is still
there and moves it: Redis spends no time decoding and rewriting it.
"""

from __future__ import annotations

import json
import re
from typing import Any, AnyStr

__all__ = ["retried"]

_RESET = {"attempts": "0", "error": "", "failedAt": ""}
_RESET_BYTES = {key: with_.encode() for key, with_ in _RESET.items()}
_QUOTED = {key: f'"{key}"'.encode() for key in _RESET}
_SPACE = " \t\n\r"
_SPACE_BYTES = frozenset(_SPACE.encode())
_SCALAR_END = re.compile(rb"[,}\] \t\n\r]")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_COMPACT = {
    "attempts": re.compile(rb'[,{]"attempts":(-?[0-9.eE+]+)[,}]'),
    "error": re.compile(rb',"error":("[^"\\]*(?:\\.[^"\\]*)*")[,}]'),
    "failedAt": re.compile(rb',"failedAt":(-?[0-9.eE+]+)[,}]'),
}
"""Each reset member written compactly (the common case, read with one match), from the byte before its name."""
_DECODER = json.JSONDecoder()
_COMMA, _OPEN, _COLON, _QUOTE = ord(","), ord("{"), ord(":"), ord('"')

_Cut = tuple[int, int, str]
"""A span to replace, ``[start, end)``, and what replaces it (a value set to 0 that is 0 already is
replaced by itself)."""
_ByteCut = tuple[int, int, bytes]
"""The same, in a payload's bytes."""


def retried(raw: bytes, job: dict[str, Any] | None = None) -> bytes | None:
    """``raw`` rewritten for a retry (see the module docstring); None when it is not a JSON object.

    ``job`` is ``raw`` decoded, when the caller has it: with it, the members are found by a few
    plain searches when each is written once, else the top-level members are walked one by one.
    """
    if job is not None:
        found = _searched(raw, job)
        if found is not None:
            return _spliced(raw, found)
    try:
        text = raw.decode()
        cuts = _scanned(text)
    except (UnicodeDecodeError, ValueError, IndexError, RecursionError):
        return None
    return None if cuts is None else _spliced(text, cuts).encode()


def _spliced(raw: AnyStr, cuts: list[tuple[int, int, AnyStr]]) -> AnyStr:
    """``raw`` (bytes or text) with each span of ``cuts`` (in order, apart) replaced."""
    pieces: list[AnyStr] = []
    at = 0
    for start, end, with_ in cuts:
        pieces += [raw[at:start], with_]
        at = end
    pieces.append(raw[at:])
    return raw[:0].join(pieces)


def _searched(raw: bytes, job: dict[str, Any]) -> list[_ByteCut] | None:
    """The cuts, when every reset member ``job`` has is written once as a member name, not escaped.

    A quoted name followed by a colon, with a comma or brace before it, is a member name (its
    quote is not escaped); written once in the whole payload, it is the top-level member's. A
    member name written with a \\u escape defeats the search (a reset key has no other escape).
    """
    if b"\\u" in raw:
        return None
    cuts: list[_ByteCut] = []
    for key, with_ in _RESET_BYTES.items():
        if key in job:
            cut = _member_cut(raw, key, with_)
            if cut is None:
                return None
            cuts.append(cut)
    cuts.sort()
    return cuts


def _member_cut(raw: bytes, key: str, with_: bytes) -> _ByteCut | None:
    """The cut of the member ``key`` when its quoted name is written once, as a member name."""
    quoted = _QUOTED[key]
    at = raw.find(quoted)
    if at < 0 or raw.find(quoted, at + len(quoted)) >= 0:
        return None
    compact = _COMPACT[key].match(raw, at - 1) if at else None
    if compact is not None:
        value, end = compact.span(1)
        return (value, end, with_) if with_ else (at - 1, end, with_)
    colon = _skip(raw, at + len(quoted))
    before = _skip_back(raw, at - 1)
    if colon >= len(raw) or raw[colon] != _COLON or before < 0 or raw[before] not in (_COMMA, _OPEN):
        return None
    value = _skip(raw, colon + 1)
    value_end = _value_end(raw, value)
    if value_end is None:
        return None
    if with_:
        return value, value_end, with_
    # A member cut out goes with the comma before it; the first one, with what follows it (the walk's job).
    return (before, value_end, with_) if raw[before] == _COMMA else None


def _skip(raw: bytes, index: int) -> int:
    while index < len(raw) and raw[index] in _SPACE_BYTES:
        index += 1
    return index


def _skip_back(raw: bytes, index: int) -> int:
    while index >= 0 and raw[index] in _SPACE_BYTES:
        index -= 1
    return index


def _value_end(raw: bytes, value: int) -> int | None:
    """Where the string or scalar value at ``value`` ends (exclusive); None for an object or array."""
    if value >= len(raw) or raw[value] in b"{[":
        return None
    if raw[value] == _QUOTE:
        string = _STRING.match(raw, value)
        return None if string is None else string.end()
    stop = _SCALAR_END.search(raw, value)
    return len(raw) if stop is None else stop.start()


def _skip_text(text: str, index: int) -> int:
    while index < len(text) and text[index] in _SPACE:
        index += 1
    return index


def _scanned(text: str) -> list[_Cut] | None:
    """The cuts, found by walking the top-level members of ``text`` (None: not a JSON object).

    Raises ValueError (or IndexError) for text that is not JSON.
    """
    index = _skip_text(text, 0)
    if text[index : index + 1] != "{":
        return None
    index = _skip_text(text, index + 1)
    if text[index] == "}":
        if text[index + 1 :].strip(_SPACE):
            raise ValueError(f"expected the object to end at {index}")
        return []
    cuts: list[_Cut] = []
    kept_before, comma = False, 0
    while True:
        if text[index] != '"':
            raise ValueError(f"expected a member name at {index}")
        name, name_end = _DECODER.raw_decode(text, index)
        colon = _skip_text(text, name_end)
        if text[colon] != ":":
            raise ValueError(f"expected a colon at {colon}")
        value = _skip_text(text, colon + 1)
        _, end = _DECODER.raw_decode(text, value)
        after = _skip_text(text, end)
        following = _skip_text(text, after + 1) if text[after] == "," else None
        with_ = _RESET.get(name) if isinstance(name, str) else None
        if with_:
            cuts.append((value, end, with_))
        elif with_ is not None and kept_before:
            cuts.append((comma, end, with_))
        elif with_ is not None:
            # No member is kept before it: it goes with everything up to the next member's name.
            cuts.append((index, end if following is None else following, with_))
        kept_before = kept_before or with_ != ""
        if following is None:
            if text[after] != "}" or text[after + 1 :].strip(_SPACE):
                raise ValueError(f"expected the object to end at {after}")
            return cuts
        comma, index = after, following
