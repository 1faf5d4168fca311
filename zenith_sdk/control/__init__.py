"""The control plane: see and steer every queue."""

from zenith_sdk.control._entries import JobEntry, JobState
from zenith_sdk.control.bulk import BulkAction, BulkResult, JobFilter, bulk
from zenith_sdk.control.groups import GroupRepair, GroupStatus, group_survey, repair_groups, stuck_groups
from zenith_sdk.control.jobs import (
    clear_failed,
    delete_job,
    get_job,
    list_jobs,
    pause,
    promote_job,
    purge,
    resume,
    retry_job,
)
from zenith_sdk.control.queues import QueueKeys, discover_queues, queue_snapshots, require_queue
from zenith_sdk.control.remote import job_command_handlers
from zenith_sdk.control.search import search
from zenith_sdk.fleet import NodeEntry, StaleReason, WorkerEntry, list_nodes, list_workers

__all__ = [
    "BulkAction",
    "BulkResult",
    "GroupRepair",
    "GroupStatus",
    "JobEntry",
    "JobFilter",
    "JobState",
    "NodeEntry",
    "QueueKeys",
    "StaleReason",
    "WorkerEntry",
    "bulk",
    "clear_failed",
    "delete_job",
    "discover_queues",
    "get_job",
    "group_survey",
    "job_command_handlers",
    "list_jobs",
    "list_nodes",
    "list_workers",
    "pause",
    "promote_job",
    "purge",
    "queue_snapshots",
    "repair_groups",
    "require_queue",
    "resume",
    "retry_job",
    "search",
    "stuck_groups",
]
