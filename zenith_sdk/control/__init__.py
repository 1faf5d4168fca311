"""The control plane: see and steer every queue."""

from zenith_sdk.control.queues import QueueKeys, discover_queues, queue_snapshots

__all__ = ["QueueKeys", "discover_queues", "queue_snapshots"]
