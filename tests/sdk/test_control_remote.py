"""RETRY_JOB and DELETE_JOB sent to a node, executed with the control operations, answered."""

from __future__ import annotations

import redis
from wire_data import dead_letter_job

from zenith_protocol import CommandPayload, CommandType, KeySpace, decode_job
from zenith_sdk.commands import CommandListener, CommandSender
from zenith_sdk.control.remote import job_command_handlers

NOW = 1_767_225_600_000


def test_a_node_retries_and_deletes_jobs_on_command(r: redis.Redis, keyspace: KeySpace) -> None:
    r.lpush(keyspace.failed("billing"), dead_letter_job("j-1", failed_at=NOW), dead_letter_job("j-2", failed_at=NOW))
    listener = CommandListener(
        r, "billing", node_id="n1", keyspace=keyspace, handlers=job_command_handlers(r, keyspace=keyspace)
    )
    sender = CommandSender(r, keyspace=keyspace, issuer="alice")
    with listener:
        assert listener.wait_subscribed(5)
        retried = sender.send("billing", CommandType.RETRY_JOB, CommandPayload(queue="billing", job_id="j-1"), wait_s=5)
        deleted = sender.send("billing", CommandType.DELETE_JOB, {"queue": "billing", "jobId": "j-2"}, wait_s=5)
        missing = sender.send("billing", CommandType.DELETE_JOB, {"queue": "billing", "jobId": "nope"}, wait_s=5)
        no_id = sender.send("billing", CommandType.RETRY_JOB, {"queue": "billing"}, wait_s=5)

    assert [(reply.ok, reply.message) for reply in retried.replies] == [(True, "job j-1 retried from failed")]
    assert [(reply.ok, reply.message) for reply in deleted.replies] == [(True, "job j-2 deleted from failed")]
    assert [reply.ok for reply in missing.replies] == [False] and "nope" in missing.replies[0].message
    assert [reply.ok for reply in no_id.replies] == [False] and "jobId" in no_id.replies[0].message
    assert [decode_job(raw).id for raw in r.lrange(keyspace.lane("billing", "high"), 0, -1)] == ["j-1"]
    assert r.llen(keyspace.failed("billing")) == 0
