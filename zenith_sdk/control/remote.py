"""Handlers that let a node act on RETRY_JOB and DELETE_JOB commands with the control operations.

::

    listener = CommandListener(client, "billing", handlers=job_command_handlers(client))
    listener.start()
"""

from __future__ import annotations

import redis

from zenith_protocol import CommandType, KeySpace, RemoteCommand
from zenith_sdk.commands import CommandHandler
from zenith_sdk.control.jobs import delete_job, retry_job
from zenith_sdk.events import EventEmitter

__all__ = ["job_command_handlers"]


def _job_id(command: RemoteCommand) -> str:
    job_id = command.payload.job_id or command.payload.job_key
    if not job_id:
        raise ValueError(f"{command.type} needs payload.jobId (or jobKey) naming the job")
    return job_id


def job_command_handlers(
    client: redis.Redis, *, keyspace: KeySpace | None = None, events: EventEmitter | None = None
) -> dict[str, CommandHandler]:
    """RETRY_JOB and DELETE_JOB handlers; each records the command's issuer as the actor."""

    def retry(command: RemoteCommand) -> str:
        job_id = _job_id(command)
        actor = command.issuer or "remote"
        state = retry_job(client, command.payload.queue, job_id, actor=actor, keyspace=keyspace, events=events)
        return f"job {job_id} retried from {state.value}"

    def delete(command: RemoteCommand) -> str:
        job_id = _job_id(command)
        actor = command.issuer or "remote"
        state = delete_job(client, command.payload.queue, job_id, actor=actor, keyspace=keyspace, events=events)
        return f"job {job_id} deleted from {state.value}"

    return {CommandType.RETRY_JOB.value: retry, CommandType.DELETE_JOB.value: delete}
