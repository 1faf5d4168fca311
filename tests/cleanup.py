"""Delete what a test wrote under one key prefix (between hypothesis examples, for instance)."""

from __future__ import annotations

import redis


def delete_prefix(r: redis.Redis, prefix: str) -> int:
    """Delete every key under ``prefix``; returns how many there were."""
    keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        r.delete(*keys[start : start + 500])
    return len(keys)
