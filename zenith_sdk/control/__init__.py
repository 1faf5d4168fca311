"""The control plane: see and steer every queue."""

from zenith_sdk.control.bulk import BulkAction, BulkResult, JobFilter, JobState, bulk
from zenith_sdk.control.queues import QueueKeys, discover_queues, queue_snapshots

__all__ = [
    "BulkAction",
    "BulkResult",
    "JobFilter",
    "JobState",
    "QueueKeys",
    "bulk",
    "discover_queues",
    "queue_snapshots",
]
