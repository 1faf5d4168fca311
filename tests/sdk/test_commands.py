"""Remote commands on a real Redis: CommandSender, CommandListener and ``zenith command``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import redis
from event_stream import stream_events
from patience import HANG_S
from redis.backoff import NoBackoff
from redis.client import PubSub
from redis.retry import Retry

from zenith_protocol import (
    CommandPayload,
    CommandType,
    EventType,
    KeySpace,
    OperatorAction,
    RemoteCommand,
    decode_command,
    decode_command_reply,
    encode_command,
)
from zenith_sdk.cli._commands import register
from zenith_sdk.cli._common import CliSettings
from zenith_sdk.commands import CommandHandler, CommandListener, CommandSender
from zenith_sdk.events import EventEmitter

SERVICE = "billing"
WIRE_FIELDS = {"id", "type", "targetNodeId", "payload", "timestamp", "issuer", "replyTo", "protocolVersion"}


class Recorder:
    """A handler that records the commands it ran (thread-safe) and says which node ran them."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.commands: list[RemoteCommand] = []
        self._lock = threading.Lock()

    def __call__(self, command: RemoteCommand) -> str:
        with self._lock:
            self.commands.append(command)
        return f"retried {command.payload.job_id} on {self.node_id}"

    def ids(self) -> list[str]:
        with self._lock:
            return [command.id for command in self.commands]


def _poll(condition: Callable[[], object], *, pause_s: float = 0.05) -> bool:
    """True as soon as ``condition`` holds; False after ``HANG_S`` (a bound, not a measurement)."""
    deadline = time.monotonic() + HANG_S
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(pause_s)
    return True


ListenerFactory = Callable[..., CommandListener]


@pytest.fixture
def listen(redis_url: str, keyspace: KeySpace) -> Iterator[ListenerFactory]:
    """Starts listeners (subscribed before it returns) on clients of their own; all are stopped afterwards."""
    started: list[tuple[CommandListener, redis.Redis]] = []

    def make(
        node_id: str,
        handlers: Mapping[CommandType | str, CommandHandler],
        *,
        allow: list[CommandType | str] | None = None,
        **client_options: Any,
    ) -> CommandListener:
        client = redis.Redis.from_url(redis_url, **client_options)
        listener = CommandListener(client, SERVICE, node_id=node_id, keyspace=keyspace, handlers=handlers, allow=allow)
        started.append((listener, client))
        listener.start()
        assert listener.wait_subscribed(5), f"listener {node_id} did not subscribe"
        return listener

    yield make
    for listener, client in started:
        listener.stop()
        client.close()


@pytest.fixture
def sender(r: redis.Redis, keyspace: KeySpace) -> CommandSender:
    return CommandSender(r, keyspace=keyspace, issuer="alice@example.com")


@pytest.fixture
def subscription(r: redis.Redis) -> Iterator[PubSub]:
    pubsub: PubSub = r.pubsub()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
    yield pubsub
    pubsub.close()


def _confirm(pubsub: PubSub) -> None:
    assert _poll(lambda: (m := pubsub.get_message(timeout=0.05)) is not None and "subscribe" in m["type"])


def _retry(job_id: str = "job-1") -> CommandPayload:
    return CommandPayload(queue="emails", job_id=job_id)


def _legacy(keyspace: KeySpace, target: str, *, reply_to: str | None = None) -> RemoteCommand:
    return RemoteCommand(
        id=str(uuid.uuid4()),
        type=CommandType.RETRY_JOB,
        target_node_id=target,
        payload=_retry(),
        timestamp=int(time.time() * 1000),
        issuer="node-console",
        reply_to=reply_to,
    )


# -- delivery ----------------------------------------------------------------------------------------


def test_a_command_reaches_its_node_and_a_broadcast_reaches_every_node(
    listen: ListenerFactory, sender: CommandSender
) -> None:
    recorders = {node: Recorder(node) for node in ("web1", "web2", "web3")}
    for node, recorder in recorders.items():
        listen(node, {CommandType.RETRY_JOB: recorder})

    one = sender.send(SERVICE, CommandType.RETRY_JOB, _retry("j-1"), node_id="web2", expect=1)
    assert one.delivered == 1
    assert [(reply.node_id, reply.ok, reply.message) for reply in one.replies] == [
        ("web2", True, "retried j-1 on web2")
    ]
    assert one.ok
    assert recorders["web2"].ids() == [one.command.id]
    assert recorders["web1"].ids() == recorders["web3"].ids() == []

    every = sender.send(SERVICE, "RETRY_JOB", {"queue": "emails", "jobId": "j-2"}, wait_s=5)
    assert every.delivered == 3
    assert sorted(reply.node_id for reply in every.replies) == ["web1", "web2", "web3"]
    assert all(reply.ok and reply.command_id == every.command.id for reply in every.replies)
    assert all(recorder.ids()[-1] == every.command.id for recorder in recorders.values())


def test_a_listener_ignores_commands_for_other_nodes(
    r: redis.Redis, keyspace: KeySpace, listen: ListenerFactory, sender: CommandSender, subscription: PubSub
) -> None:
    recorder = Recorder("web1")
    listener = listen("web1", {CommandType.RETRY_JOB: recorder})
    stray_reply = keyspace.command_reply_channel("stray")
    subscription.subscribe(stray_reply)
    _confirm(subscription)
    stray = _legacy(keyspace, "web9", reply_to=stray_reply)
    assert listener.handle(encode_command(stray)) is None

    # Through Redis: on the broadcast channel, then a command it does run. The listener handles
    # messages in order, so once the second one is answered the first one has been dealt with.
    assert r.publish(keyspace.command_channel(SERVICE, "*"), encode_command(stray)) == 1
    follow_up = sender.send(SERVICE, CommandType.RETRY_JOB, _retry(), node_id="web1", expect=1)
    assert [reply.node_id for reply in follow_up.replies] == ["web1"]
    assert recorder.ids() == [follow_up.command.id]
    assert subscription.get_message(timeout=0.1) is None


# -- refusals and failures ---------------------------------------------------------------------------


def test_a_type_not_on_the_allow_list_is_refused_and_not_run(listen: ListenerFactory, sender: CommandSender) -> None:
    retry, delete = Recorder("web1"), Recorder("web1")
    listen("web1", {CommandType.RETRY_JOB: retry, CommandType.DELETE_JOB: delete}, allow=[CommandType.RETRY_JOB])

    for kind in ("DELETE_JOB", "LARAVEL_ACTION", "SHUTDOWN"):
        result = sender.send(SERVICE, kind, _retry(), node_id="web1", expect=1)
        assert [(reply.ok, reply.message) for reply in result.replies] == [
            (False, f"command type {kind} is not allowed on this node")
        ]
        assert not result.ok
    assert delete.ids() == [] and retry.ids() == []


def test_a_handler_exception_becomes_a_failed_reply_and_the_listener_goes_on(
    listen: ListenerFactory, sender: CommandSender, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(command: RemoteCommand) -> str:
        raise LookupError(f"job {command.payload.job_id} is not in the failed list")

    listen("web1", {CommandType.RETRY_JOB: explode, CommandType.DELETE_JOB: lambda command: None})
    failed = sender.send(SERVICE, CommandType.RETRY_JOB, _retry("j-7"), node_id="web1", expect=1)
    assert len(failed.replies) == 1
    assert not failed.replies[0].ok
    assert "job j-7 is not in the failed list" in failed.replies[0].message
    assert any(record.exc_info for record in caplog.records if record.name == "zenith_sdk.commands")

    after = sender.send(SERVICE, CommandType.DELETE_JOB, _retry(), node_id="web1", expect=1)
    assert [(reply.ok, reply.message) for reply in after.replies] == [(True, "")]


def test_a_legacy_command_without_reply_channel_runs_and_publishes_nothing(
    r: redis.Redis, keyspace: KeySpace, listen: ListenerFactory, sender: CommandSender, subscription: PubSub
) -> None:
    recorder = Recorder("web1")
    listen("web1", {CommandType.RETRY_JOB: recorder})
    subscription.psubscribe(keyspace.command_reply_channel("*"))
    _confirm(subscription)
    legacy = _legacy(keyspace, "web1")
    assert r.publish(keyspace.command_channel(SERVICE, "web1"), encode_command(legacy)) == 1
    follow_up = sender.send(SERVICE, CommandType.RETRY_JOB, _retry(), node_id="web1", expect=1)

    assert recorder.ids() == [legacy.id, follow_up.command.id]
    seen = []
    while (message := subscription.get_message(timeout=0.1)) is not None:
        seen.append(decode_command_reply(message["data"]).command_id)
    assert seen == [follow_up.command.id]


def test_malformed_commands_are_skipped_and_warned_about_once(
    r: redis.Redis, keyspace: KeySpace, listen: ListenerFactory, sender: CommandSender, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="zenith_sdk.commands")
    recorder = Recorder("web1")
    listen("web1", {CommandType.RETRY_JOB: recorder})
    for raw in (b"not json", b"{}", b"\xff\xfe", b'{"id":"x","type":"RETRY_JOB"}', b"[1,2]"):
        r.publish(keyspace.command_channel(SERVICE, "web1"), raw)
        r.publish(keyspace.command_channel(SERVICE, "*"), raw)

    result = sender.send(SERVICE, CommandType.RETRY_JOB, _retry(), node_id="web1", expect=1)
    assert [reply.ok for reply in result.replies] == [True]
    assert recorder.ids() == [result.command.id]
    malformed = [record for record in caplog.records if "malformed command" in record.getMessage()]
    assert len(malformed) == 10
    assert [record.levelno for record in malformed].count(logging.WARNING) == 1


# -- the sender --------------------------------------------------------------------------------------


def test_what_send_publishes_decodes_and_carries_every_wire_field(
    keyspace: KeySpace, sender: CommandSender, subscription: PubSub
) -> None:
    subscription.subscribe(keyspace.command_channel(SERVICE, "web1"))
    _confirm(subscription)
    payload = CommandPayload(queue="emails", job_id="j-1", job_key="queues:emails:1", driver="redis", action="retry")
    result = sender.send(SERVICE, CommandType.LARAVEL_ACTION, payload, node_id="web1", wait_s=0.05)
    assert result.delivered == 1 and result.replies == ()

    message = subscription.get_message(timeout=HANG_S)
    assert message is not None and message["type"] == "message"
    wire = json.loads(message["data"])
    assert set(wire) == WIRE_FIELDS
    assert list(wire["payload"]) == ["queue", "jobId", "jobKey", "driver", "action"]
    assert uuid.UUID(wire["id"]).version == 4
    assert (
        wire["replyTo"]
        == keyspace.command_reply_channel(wire["id"])
        == f"{keyspace.zenith_prefix}cmd-reply:{wire['id']}"
    )
    assert (wire["type"], wire["targetNodeId"], wire["issuer"]) == ("LARAVEL_ACTION", "web1", "alice@example.com")
    assert isinstance(wire["timestamp"], int) and wire["timestamp"] > 1_700_000_000_000
    assert decode_command(message["data"]) == result.command


def test_send_skips_malformed_replies_and_records_an_operator_event(
    r: redis.Redis, keyspace: KeySpace, listen: ListenerFactory
) -> None:
    def noisy(command: RemoteCommand) -> str:
        assert command.reply_to is not None
        for junk in (b"garbage", b'{"commandId":"x"}', b"\xff"):
            r.publish(command.reply_to, junk)
        return "done"

    listen("web1", {CommandType.RETRY_JOB: noisy})
    sender = CommandSender(r, keyspace=keyspace, issuer="alice@example.com", events=EventEmitter(r, keyspace=keyspace))
    result = sender.send(SERVICE, CommandType.RETRY_JOB, _retry("j-3"), node_id="web1", wait_s=5)
    assert [(reply.node_id, reply.message) for reply in result.replies] == [("web1", "done")]

    (event,) = stream_events(r, keyspace)
    assert (event.type, event.action, event.actor) == (EventType.OPERATOR, OperatorAction.COMMAND, "alice@example.com")
    assert (event.queue, event.job_id, event.count, event.error) == ("emails", "j-3", 1, None)


def test_a_command_nobody_listens_to_returns_at_once_with_nothing(sender: CommandSender) -> None:
    result = sender.send(SERVICE, CommandType.RETRY_JOB, _retry(), wait_s=30)
    assert (result.delivered, result.replies, result.ok) == (0, (), False)


def test_bad_arguments_are_refused(r: redis.Redis, sender: CommandSender) -> None:
    with pytest.raises(ValueError, match="service"):
        sender.send("a:b", CommandType.RETRY_JOB, _retry())
    with pytest.raises(ValueError, match="expect"):
        sender.send(SERVICE, CommandType.RETRY_JOB, _retry(), expect=0)
    with pytest.raises(ValueError, match="issuer"):
        CommandSender(r, issuer=" ")
    with pytest.raises(ValueError, match="no handler"):
        CommandListener(r, SERVICE, handlers={}, allow=[CommandType.DELETE_JOB])


# -- resilience and lifecycle ------------------------------------------------------------------------


@pytest.mark.parametrize("client_retries", [True, False], ids=["redis-py-retries", "listener-reconnects"])
def test_the_listener_recovers_after_its_connection_is_killed(
    r: redis.Redis,
    listen: ListenerFactory,
    sender: CommandSender,
    caplog: pytest.LogCaptureFixture,
    client_retries: bool,
) -> None:
    # Kill only this listener's connections (found by client name): CLIENT KILL TYPE normal would
    # also cut every other client of the shared server, including concurrent test runs.
    # Without redis-py's own retries the error reaches the listener's reconnect loop.
    name = f"zenith-cmd-test-{uuid.uuid4().hex[:8]}"
    options: dict[str, Any] = {} if client_retries else {"retry": Retry(NoBackoff(), 0)}
    listener = listen("web1", {CommandType.RETRY_JOB: Recorder("web1")}, client_name=name, **options)

    def connection_ids() -> set[str]:
        return {entry["id"] for entry in r.client_list() if entry.get("name") == name}

    killed = connection_ids()
    assert killed
    for connection_id in killed:
        r.client_kill_filter(_id=connection_id)

    def answered() -> bool:
        result = sender.send(SERVICE, CommandType.RETRY_JOB, _retry(), node_id="web1", wait_s=0.5, expect=1)
        return [reply.ok for reply in result.replies] == [True]

    assert _poll(answered), "no reply after the connection was killed"
    assert listener.running
    assert connection_ids() and not connection_ids() & killed
    if not client_retries:
        messages = [record.getMessage() for record in caplog.records if record.name == "zenith_sdk.commands"]
        assert any("Redis unreachable" in message for message in messages)
        assert any("Redis reachable again" in message for message in messages)


def test_stop_ends_the_thread_and_unsubscribes(r: redis.Redis, keyspace: KeySpace, listen: ListenerFactory) -> None:
    listener = listen("web1", {CommandType.RETRY_JOB: Recorder("web1")})
    channel = keyspace.command_channel(SERVICE, "web1")
    assert r.pubsub_numsub(channel) == [(channel.encode(), 1)]
    listener.stop()
    assert not listener.running
    assert _poll(lambda: r.pubsub_numsub(channel) == [(channel.encode(), 0)])


def test_the_context_manager_starts_and_stops(redis_url: str, keyspace: KeySpace) -> None:
    with CommandListener(redis_url, SERVICE, keyspace=keyspace, handlers={"RETRY_JOB": Recorder("x")}) as listener:
        assert listener.wait_subscribed(5)
        assert listener.node_id.endswith(f"-{os.getpid()}")
    assert not listener.running


# -- the command line --------------------------------------------------------------------------------


def _cli(redis_url: str, keyspace: KeySpace, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="zenith")
    register(parser.add_subparsers(dest="command", required=True))
    prefixes = ["--command-prefix", keyspace.command_prefix, "--zenith-prefix", keyspace.zenith_prefix]
    args = parser.parse_args(["command", *argv, "--redis", redis_url, *prefixes])
    status: int = args.handler(args, CliSettings())
    return status


def test_cli_prints_the_replies_as_json_and_as_a_table(
    redis_url: str, keyspace: KeySpace, listen: ListenerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    listen("web1", {CommandType.RETRY_JOB: Recorder("web1")})
    listen("web2", {CommandType.RETRY_JOB: Recorder("web2")})

    assert _cli(redis_url, keyspace, SERVICE, "retry_job", "--queue", "emails", "--job-id", "j-1", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["delivered"] == 2
    assert report["command"]["payload"] == {"queue": "emails", "jobId": "j-1"}
    assert sorted(reply["nodeId"] for reply in report["replies"]) == ["web1", "web2"]

    assert _cli(redis_url, keyspace, SERVICE, "DELETE_JOB", "--queue", "emails", "--node", "web2") == 1
    out = capsys.readouterr().out
    assert "web2" in out and "command type DELETE_JOB is not allowed on this node" in out


def test_cli_fails_when_no_node_is_subscribed(
    redis_url: str, keyspace: KeySpace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(redis_url, keyspace, SERVICE, "RETRY_JOB", "--queue", "emails", "--node", "ghost") == 1
    assert "no node is subscribed" in capsys.readouterr().out


def test_cli_says_when_nodes_received_it_but_none_replied(
    redis_url: str, keyspace: KeySpace, subscription: PubSub, capsys: pytest.CaptureFixture[str]
) -> None:
    subscription.subscribe(keyspace.command_channel(SERVICE, "*"))  # a legacy agent: it never replies
    _confirm(subscription)
    assert _cli(redis_url, keyspace, SERVICE, "RETRY_JOB", "--queue", "emails", "--wait", "0.05") == 0
    out = capsys.readouterr().out
    assert "reached 1 subscriber(s)" in out and "no replies" in out


def test_commands_older_than_max_age_are_ignored(r: redis.Redis, keyspace: KeySpace) -> None:
    recorder = Recorder("web1")
    listener = CommandListener(r, SERVICE, node_id="web1", keyspace=keyspace, handlers={"RETRY_JOB": recorder})
    stale = _legacy(keyspace, "web1").model_copy(update={"timestamp": int(time.time() * 1000) - 61_000})
    assert listener.handle(encode_command(stale)) is None
    assert recorder.ids() == []
    with pytest.raises(ValueError, match="max_age_s"):
        CommandListener(r, SERVICE, handlers={}, max_age_s=0)


# -- who closes what ----------------------------------------------------------------------------------


def _connections(r: redis.Redis, name: str) -> int:
    return sum(1 for client in r.client_list() if client.get("name") == name)


def test_a_sender_closes_what_it_opened_and_leaves_a_client_it_was_given_open(
    r: redis.Redis, redis_url: str, keyspace: KeySpace, listen: ListenerFactory
) -> None:
    listen("node-1", {CommandType.RETRY_JOB: Recorder("node-1")})
    name = f"sender-{uuid.uuid4().hex[:8]}"
    named = f"{redis_url}?client_name={name}"

    with CommandSender(named, keyspace=keyspace, issuer="alice") as sender:
        assert sender.send(SERVICE, CommandType.RETRY_JOB, _retry(), wait_s=HANG_S).replies
        # The reply subscription is closed once send returns; the publishing connection stays for reuse.
        assert _connections(r, name) == 1
    assert _connections(r, name) == 0

    given = redis.Redis.from_url(named)
    try:
        sender = CommandSender(given, keyspace=keyspace, issuer="alice")
        assert sender.send(SERVICE, CommandType.RETRY_JOB, _retry(), wait_s=HANG_S).replies
        sender.close()  # not the sender's to close
        assert _connections(r, name) == 1
        assert given.ping()
    finally:
        given.close()
    assert _connections(r, name) == 0
