"""The Lua scripts, one ``.lua`` file each, registered once per client.

Every script gets every key through KEYS and touches one queue's keys only, so the same
scripts run on the wire layout and on the cluster-safe layout (``count`` is read-only and is
given one queue's keys per call in the cluster-safe layout). Code shared by several scripts
lives in a ``_name.lua`` file, pulled in by a line ``--#include _name``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError

__all__ = ["NoScriptError", "Scripts"]


_INCLUDE = "--#include "


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.lua").read_text(encoding="utf-8")


def _source(name: str) -> str:
    """The script ``name`` with each ``--#include _lib`` line replaced by ``_lib.lua``."""
    lines = []
    for line in _read(name).splitlines(keepends=True):
        if line.startswith(_INCLUDE):
            lines.append(_read(line[len(_INCLUDE) :].strip()))
        else:
            lines.append(line)
    return "".join(lines)


_NAMES = (
    "fetch",
    "settle",
    "requeue",
    "enqueue",
    "events",
    "fire_schedule",
    "bulk",
    "pick",
    "count",
    "groups",
    "repair_group",
)
_SOURCES = {name: _source(name) for name in _NAMES}


class Scripts:
    """Every script registered on one client (redis-py computes the SHA and reloads on NOSCRIPT)."""

    def __init__(self, client: redis.Redis) -> None:
        self.fetch: Script = client.register_script(_SOURCES["fetch"])
        self.settle: Script = client.register_script(_SOURCES["settle"])
        self.requeue: Script = client.register_script(_SOURCES["requeue"])
        self.enqueue: Script = client.register_script(_SOURCES["enqueue"])
        self.events: Script = client.register_script(_SOURCES["events"])
        self.fire_schedule: Script = client.register_script(_SOURCES["fire_schedule"])
        self.bulk: Script = client.register_script(_SOURCES["bulk"])
        self.pick: Script = client.register_script(_SOURCES["pick"])
        self.count: Script = client.register_script(_SOURCES["count"])
        self.groups: Script = client.register_script(_SOURCES["groups"])
        self.repair_group: Script = client.register_script(_SOURCES["repair_group"])

    def queue_call(
        self, pipe: Pipeline, script: Script, keys: Sequence[str], args: Sequence[str | bytes | int]
    ) -> None:
        """Queue ``script`` on ``pipe`` as a bare EVALSHA.

        Unlike ``script(client=pipe)``, this adds no SCRIPT EXISTS round trip to every pipeline.
        The caller loads the scripts once (:meth:`load`) and, should Redis answer NOSCRIPT (its
        script cache was flushed), loads them again and repeats the failed calls.
        """
        pipe.evalsha(script.sha, len(keys), *keys, *args)

    def load(self, client: redis.Redis) -> None:
        """SCRIPT LOAD every script (idempotent; one round trip)."""
        pipe = client.pipeline(transaction=False)
        for script in (getattr(self, name) for name in _NAMES):
            pipe.script_load(script.script)
        pipe.execute()
