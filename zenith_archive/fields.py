"""Job properties as ``zenith_job_fields`` rows: flattened key paths and normalised values.

Ingest and search share these functions, so that ``email:User@Example.com`` finds the job whose
properties hold ``{"email": " user@example.com"}``: strings are trimmed and lowercased, numbers,
booleans and null are their JSON text (``42``, ``1.5``, ``true``, ``null``), nested objects give
dotted paths (``address.city``) and each element of a list is a value of the list's key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from zenith_archive.schema import MAX_FIELD_KEY_CHARS, MAX_FIELD_VALUE_CHARS, MAX_FIELDS_PER_JOB

__all__ = ["flatten_properties", "normalize_value"]


def normalize_value(value: Any) -> str:
    """The form a property value is stored and searched in (at most 256 characters)."""
    if isinstance(value, str):
        text = value.strip().lower()
    elif isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() and math.isfinite(value) else repr(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)
    return text[:MAX_FIELD_VALUE_CHARS]


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)):
                yield from _walk(item, path)
            elif path:
                yield path, normalize_value(item)
    elif path:
        yield path, normalize_value(value)


def flatten_properties(properties: Any) -> list[tuple[str, str]]:
    """The distinct ``(key path, normalised value)`` pairs of ``properties``, in order, at most 64.

    Paths longer than 128 characters are left out; a scalar or list at the top has no key, so it
    gives nothing.
    """
    pairs: dict[tuple[str, str], None] = {}
    if not isinstance(properties, dict):
        return []
    for pair in _walk(properties, ""):
        if len(pair[0]) <= MAX_FIELD_KEY_CHARS:
            pairs.setdefault(pair)
            if len(pairs) >= MAX_FIELDS_PER_JOB:
                break
    return list(pairs)
