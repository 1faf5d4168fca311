"""The Lua scripts, one ``.lua`` file each, registered once per client.

Every script gets every key through KEYS and touches one queue's keys only, so the same
scripts run on the wire layout and on the cluster-safe layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError

__all__ = ["NoScriptError", "Scripts"]


def _source(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.lua").read_text(encoding="utf-8")


_SOURCES = {
    name: _source(name)
    for name in (
        "fetch",
        "settle",
        "requeue",
        "claim_group",
        "release_group",
        "events",
        "fire_schedule",
        "bulk",
    )
}


class Scripts:
    """Every script registered on one client (redis-py computes the SHA and reloads on NOSCRIPT)."""

    def __init__(self, client: redis.Redis) -> None:
        self.fetch: Script = client.register_script(_SOURCES["fetch"])
        self.settle: Script = client.register_script(_SOURCES["settle"])
        self.requeue: Script = client.register_script(_SOURCES["requeue"])
        self.claim_group: Script = client.register_script(_SOURCES["claim_group"])
        self.release_group: Script = client.register_script(_SOURCES["release_group"])
        self.events: Script = client.register_script(_SOURCES["events"])
        self.fire_schedule: Script = client.register_script(_SOURCES["fire_schedule"])
        self.bulk: Script = client.register_script(_SOURCES["bulk"])

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
        scripts = (
            self.fetch,
            self.settle,
            self.requeue,
            self.claim_group,
            self.release_group,
            self.events,
            self.fire_schedule,
            self.bulk,
        )
        for script in scripts:
            pipe.script_load(script.script)
        pipe.execute()
