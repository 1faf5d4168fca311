"""A redis-py client that records its round trips, to count them in tests."""

from __future__ import annotations

from typing import Any

import redis
from redis.client import Pipeline


class CountingPipeline(Pipeline):
    """A pipeline that records, on its client, each batch it sends."""

    def __init__(self, owner: CountingRedis, transaction: bool, shard_hint: Any) -> None:
        super().__init__(owner.connection_pool, owner.response_callbacks, transaction, shard_hint)
        self.owner = owner

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        if self.command_stack:
            self.owner.round_trips.append([args for args, _options in self.command_stack])
        return super().execute(raise_on_error)

    def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        # Sent at once, outside the batch: redis-py's SCRIPT EXISTS before a pipeline of scripts.
        self.owner.round_trips.append([args])
        return super().immediate_execute_command(*args, **options)  # type: ignore[no-untyped-call]


class CountingRedis(redis.Redis):
    """A client that records every round trip: one entry per direct command or non-empty pipeline."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.round_trips: list[list[tuple[Any, ...]]] = []

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        return CountingPipeline(self, transaction, shard_hint)

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.round_trips.append([args])
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
