"""``zenith demo``: a worker with realistic jobs, schedules, pulse, alerts and the archive, on any Redis."""

from zenith_sdk.demo._jobs import DEMO_QUEUES, DemoFeed, demo_app
from zenith_sdk.demo._redis import DEMO_PREFIX, DemoRedis, choose_redis, demo_keyspace
from zenith_sdk.demo._services import Demo, archive_available

__all__ = [
    "DEMO_PREFIX",
    "DEMO_QUEUES",
    "Demo",
    "DemoFeed",
    "DemoRedis",
    "archive_available",
    "choose_redis",
    "demo_app",
    "demo_keyspace",
]
