"""Redaction at ingest: secrets in job payloads are replaced before anything reaches the database.

:func:`redact_keys` replaces the value of every key on the list (case-insensitive, at any depth,
inside lists too) with ``"***"``. The archiver applies it, then the user's hook, to each job as a
dict whose ``data`` is already parsed (``{"job": name, "properties": {...}}``)::

    def drop_card_numbers(job: dict[str, Any]) -> dict[str, Any]:
        job["data"].get("properties", {}).pop("pan", None)
        return job

    Archiver(client, engine, redact=drop_card_numbers)
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

__all__ = ["DEFAULT_REDACTED_KEYS", "REDACTED", "Redactor", "redact_keys"]

REDACTED = "***"
"""What a redacted value becomes."""
DEFAULT_REDACTED_KEYS: frozenset[str] = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "cookie",
        "credit_card",
        "card_number",
        "cvv",
        "ssn",
        "private_key",
    }
)
"""Keys whose values never reach the archive (compared case-insensitively)."""

Redactor = Callable[[dict[str, Any]], dict[str, Any]]
"""A user hook: takes a job (``data`` parsed) and returns the job to store."""


def redact_keys(value: Any, keys: Collection[str] = DEFAULT_REDACTED_KEYS) -> Any:
    """A copy of ``value`` with the value of every key in ``keys`` (any case, any depth) replaced by ``"***"``."""
    lowered = keys if isinstance(keys, frozenset) and all(key == key.lower() for key in keys) else None
    wanted = lowered if lowered is not None else frozenset(key.lower() for key in keys)
    return _redact(value, wanted)


def _redact(value: Any, keys: frozenset[str]) -> Any:
    # Iterative depth is bounded: every value comes from protocol JSON (at most 64 levels deep).
    # Scalars are taken as they are, without a call each: most of a payload is scalars.
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(key, str) and key.lower() in keys
            else (_redact(item, keys) if isinstance(item, (dict, list)) else item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item, keys) if isinstance(item, (dict, list)) else item for item in value]
    return value
