"""Remote commands: send them from a control plane, and listen for them on a worker node.

A command is PUBLISHed on ``KeySpace.command_channel(service, node_id)`` (``*`` = every node of the
service). :class:`CommandSender` subscribes to the command's reply channel
(``KeySpace.command_reply_channel(id)``) *before* it publishes, so no reply is lost, then collects
:class:`~zenith_protocol.CommandReply` messages for a bounded time, and closes that subscription.
Legacy Node agents never reply: silence means "no reply", not failure.

:class:`CommandListener` is the node side: a daemon thread subscribed to its own channel and its
service's ``*`` channel that runs the handler registered for each allow-listed command type and
replies on the command's ``replyTo`` channel when it has one. It survives Redis outages (reconnect
with backoff, resubscribe) and never raises into the host program.

Ready-made RETRY_JOB and DELETE_JOB handlers, which run the control plane's retry and delete,
come from :func:`zenith_sdk.control.job_command_handlers`; pass them, or your own, as ``handlers``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any, TypeAlias

import redis
from redis.client import PubSub

from zenith_protocol import (
    CommandPayload,
    CommandReply,
    CommandType,
    EventType,
    KeySpace,
    OperatorAction,
    ProtocolError,
    RemoteCommand,
    decode_command,
    decode_command_reply,
    encode_command,
    encode_command_reply,
)
from zenith_protocol.commands import BROADCAST_NODE
from zenith_sdk.connection import ClientHolder, connect
from zenith_sdk.events import EventEmitter, job_event

__all__ = ["DEFAULT_MAX_AGE_S", "DEFAULT_WAIT_S", "CommandHandler", "CommandListener", "CommandResult", "CommandSender"]

logger = logging.getLogger(__name__)

DEFAULT_WAIT_S = 2.0
"""How long :meth:`CommandSender.send` collects replies by default."""

DEFAULT_MAX_AGE_S = 60.0
"""Commands older than this (by their ``timestamp``) are ignored, so replays do nothing (PROTOCOL 9.2)."""

CommandHandler: TypeAlias = Callable[[RemoteCommand], str | None]
"""Runs one command on a node; returns a human-readable outcome (or None) and raises on failure."""

_POLL_S = 0.2
_SUBSCRIBE_CONFIRM_S = 5.0
_FIRST_BACKOFF_S = 0.1
_MAX_BACKOFF_S = 10.0
_STOP_TIMEOUT_S = 5.0


def _now_ms() -> int:
    return int(time.time() * 1000)


def _type_name(command_type: CommandType | str) -> str:
    return command_type.value if isinstance(command_type, Enum) else str(command_type)


def _check_name(what: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty name, got {value!r}")
    if ":" in value or "*" in value:
        raise ValueError(f"{what} {value!r} contains ':' or '*', which would change the channel; use '-' or '.'")


def _wait_subscribed(pubsub: PubSub, channels: int, timeout_s: float) -> None:
    """Read until Redis confirmed ``channels`` subscriptions (messages before that cannot exist)."""
    deadline = time.monotonic() + timeout_s
    confirmed = 0
    while confirmed < channels:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise redis.TimeoutError(f"Redis did not confirm the subscription within {timeout_s} s")
        message = pubsub.get_message(timeout=remaining)
        if message is not None and message["type"] == "subscribe":
            confirmed += 1


@dataclass(frozen=True)
class CommandResult:
    """What came of one command: how many subscribers PUBLISH reached and the replies collected."""

    command: RemoteCommand
    delivered: int
    replies: tuple[CommandReply, ...]

    @property
    def ok(self) -> bool:
        """True when the command reached someone and no reply reported a failure."""
        return self.delivered > 0 and all(reply.ok for reply in self.replies)


class CommandSender(ClientHolder):
    """Publishes remote commands and collects the nodes' replies (the control-plane side).

    A client made from a URL is the sender's own: :meth:`close` (or leaving a ``with`` block)
    closes it; a client passed in stays open. Each :meth:`send` opens one pub/sub connection for
    the replies and closes it before returning.

    Args:
        client: a redis-py client or a URL.
        keyspace: channel names (default: the wire layout).
        issuer: who sends the commands (written on the wire and as the audit event's actor).
        events: if given, each sent command is recorded as an ``operator`` event (action ``command``).
    """

    def __init__(
        self,
        client: redis.Redis | str | None = None,
        *,
        keyspace: KeySpace | None = None,
        issuer: str,
        events: EventEmitter | None = None,
    ) -> None:
        if not isinstance(issuer, str) or not issuer.strip():
            raise ValueError("issuer must name who sends the command, such as 'alice@example.com'")
        self._hold(client)
        self.keyspace = keyspace or KeySpace()
        self.issuer = issuer
        self.events = events

    def send(
        self,
        service: str,
        command_type: CommandType | str,
        payload: CommandPayload | Mapping[str, Any],
        *,
        node_id: str = BROADCAST_NODE,
        wait_s: float = DEFAULT_WAIT_S,
        expect: int | None = None,
    ) -> CommandResult:
        """Publish a command to ``node_id`` (``*`` = every node of ``service``) and collect replies.

        Collecting stops after ``wait_s``, or as soon as ``expect`` replies arrived (by default, and
        at most, one per subscriber PUBLISH reached; nothing is awaited when it reached no one).
        """
        _check_name("service", service)
        if node_id != BROADCAST_NODE:
            _check_name("node_id", node_id)
        if not wait_s >= 0:
            raise ValueError(f"wait_s must be zero or a positive number of seconds, got {wait_s!r}")
        if expect is not None and expect < 1:
            raise ValueError(f"expect must be at least 1 (or None for one reply per subscriber), got {expect!r}")
        body = payload if isinstance(payload, CommandPayload) else CommandPayload.model_validate(dict(payload))
        command_id = str(uuid.uuid4())
        command = RemoteCommand(
            id=command_id,
            type=command_type,
            target_node_id=node_id,
            payload=body,
            timestamp=_now_ms(),
            issuer=self.issuer,
            reply_to=self.keyspace.command_reply_channel(command_id),
        )
        delivered, replies = self._publish_and_collect(service, command, wait_s, expect)
        result = CommandResult(command=command, delivered=delivered, replies=tuple(replies))
        self._record(result)
        return result

    def _publish_and_collect(
        self, service: str, command: RemoteCommand, wait_s: float, expect: int | None
    ) -> tuple[int, list[CommandReply]]:
        reply_to = command.reply_to or ""
        pubsub: PubSub = self.client.pubsub()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
        try:
            pubsub.subscribe(reply_to)
            # Wait for Redis to confirm SUBSCRIBE before publishing: a fast node could otherwise
            # reply before the subscription exists, and pub/sub does not keep messages.
            _wait_subscribed(pubsub, 1, _SUBSCRIBE_CONFIRM_S)
            channel = self.keyspace.command_channel(service, command.target_node_id)
            delivered = int(self.client.publish(channel, encode_command(command)))
            logger.info(
                "sent command id=%s type=%s channel=%s delivered=%d",
                command.id,
                _type_name(command.type),
                channel,
                delivered,
            )
            # Each subscriber answers at most once, so more than `delivered` replies never come.
            wanted = delivered if expect is None else min(expect, delivered)
            return delivered, self._collect(pubsub, command.id, wanted, wait_s)
        finally:
            pubsub.close()

    def _collect(self, pubsub: PubSub, command_id: str, wanted: int, wait_s: float) -> list[CommandReply]:
        replies: list[CommandReply] = []
        deadline = time.monotonic() + wait_s
        while len(replies) < wanted:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=remaining)
            if message is None or message["type"] != "message":
                continue
            try:
                reply = decode_command_reply(message["data"])
            except ProtocolError as exc:
                logger.debug("skipped a malformed reply to command id=%s: %s", command_id, exc)
                continue
            if reply.command_id != command_id:
                logger.debug("skipped a reply for command id=%s on the channel of id=%s", reply.command_id, command_id)
                continue
            replies.append(reply)
        return replies

    def _record(self, result: CommandResult) -> None:
        if self.events is None:
            return
        command = result.command
        failed = [f"{reply.node_id}: {reply.message}" for reply in result.replies if not reply.ok]
        event = job_event(
            EventType.OPERATOR,
            command.payload.queue,
            command.payload.job_id,
            actor=self.issuer,
            action=OperatorAction.COMMAND,
            count=result.delivered,
            error="; ".join(failed) or None,
        )
        try:
            self.events.emit(event)
        except redis.RedisError:
            # The command is already out; losing its audit line must not hide the replies from the caller.
            logger.exception("command id=%s was sent but its audit event could not be written", command.id)


class CommandListener:
    """Runs remote commands addressed to this node, on a daemon thread (the worker side).

    Subscribes to ``command_channel(service, node_id)`` and ``command_channel(service, "*")``. Only
    types on ``allow`` (default: every key of ``handlers``) run; others are refused with an
    ``ok: false`` reply. Handlers run one at a time on the listener thread, so keep them short.
    A handler's return value becomes the reply message; an exception becomes ``ok: false`` with
    its text. Commands for other nodes and commands older than ``max_age_s`` are ignored without
    reply. Malformed messages are skipped (the first one logged at warning, later ones at debug).

    Args:
        client: a redis-py client or a URL (its ``client_name``, if any, names the connections).
        service: the service this node belongs to.
        node_id: this node's id (default ``{hostname}-{pid}``, as :class:`~zenith_sdk.Pulse` uses).
        keyspace: channel names (default: the wire layout).
        handlers: command type -> handler.
        allow: command types this node executes (each needs a handler).
        max_age_s: ignore commands older than this; None accepts any age.
    """

    def __init__(
        self,
        client: redis.Redis | str | None,
        service: str,
        *,
        node_id: str | None = None,
        keyspace: KeySpace | None = None,
        handlers: Mapping[CommandType | str, CommandHandler],
        allow: Collection[CommandType | str] | None = None,
        max_age_s: float | None = DEFAULT_MAX_AGE_S,
    ) -> None:
        _check_name("service", service)
        node_id = f"{socket.gethostname()}-{os.getpid()}" if node_id is None else node_id
        _check_name("node_id", node_id)
        if max_age_s is not None and not max_age_s > 0:
            raise ValueError(f"max_age_s must be a positive number of seconds (or None), got {max_age_s!r}")
        self.handlers = {_type_name(kind): handler for kind, handler in handlers.items()}
        self.allow = frozenset(self.handlers if allow is None else (_type_name(kind) for kind in allow))
        missing = sorted(self.allow - self.handlers.keys())
        if missing:
            raise ValueError(f"allow lists {missing} but handlers has no handler for them; add one or drop them")
        self.client = connect(client)
        self._owns_client = not isinstance(client, redis.Redis)
        self.service = service
        self.node_id = node_id
        self.keyspace = keyspace or KeySpace()
        self.max_age_s = max_age_s
        self.channels = (
            self.keyspace.command_channel(service, node_id),
            self.keyspace.command_channel(service, BROADCAST_NODE),
        )
        self.failing = False
        self._warned_malformed = False
        self._subscribed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the listener thread (once); see :meth:`wait_subscribed`."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"zenith-commands:{self.node_id}", daemon=True)
        self._thread.start()

    def wait_subscribed(self, timeout_s: float = _SUBSCRIBE_CONFIRM_S) -> bool:
        """Wait until both channels are subscribed (commands sent earlier never arrive); False on timeout."""
        return self._subscribed.wait(timeout_s)

    def stop(self, timeout_s: float | None = _STOP_TIMEOUT_S) -> None:
        """Ask the thread to finish, wait for it up to ``timeout_s``, and close a client this listener opened."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        if self._owns_client and not self.running:
            self.client.close()

    def __enter__(self) -> CommandListener:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # -- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = _FIRST_BACKOFF_S
        while not self._stop.is_set():
            pubsub: PubSub = self.client.pubsub()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
            try:
                self._listen(pubsub)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if not self.failing:
                    logger.warning("command listener node=%s: Redis unreachable (%s); reconnecting", self.node_id, exc)
                self.failing = True
            except Exception:
                # A bug or an unexpected reply must not end a thread the host program relies on:
                # log it with its traceback, then subscribe again.
                logger.exception("command listener node=%s failed; subscribing again", self.node_id)
            else:
                backoff = _FIRST_BACKOFF_S
            finally:
                self._subscribed.clear()
                self._close(pubsub)
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, _MAX_BACKOFF_S)

    def _listen(self, pubsub: PubSub) -> None:
        """Subscribe, then handle messages until stopped (returns) or Redis fails (raises)."""
        pubsub.subscribe(*self.channels)
        _wait_subscribed(pubsub, len(self.channels), _SUBSCRIBE_CONFIRM_S)
        if self.failing:
            logger.warning("command listener node=%s: Redis reachable again, subscribed", self.node_id)
            self.failing = False
        self._subscribed.set()
        logger.debug("command listener node=%s subscribed to %s", self.node_id, self.channels)
        while not self._stop.is_set():
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=_POLL_S)
            if message is not None and message["type"] == "message":
                self.handle(message["data"])

    @staticmethod
    def _close(pubsub: PubSub) -> None:
        try:
            pubsub.close()
        except redis.RedisError as exc:  # the connection is already broken: nothing left to release
            logger.debug("closing a broken pub/sub connection: %s", exc)

    # -- one command -----------------------------------------------------------------------------

    def handle(self, raw: str | bytes) -> CommandReply | None:
        """Run one raw command message as the thread does; returns the reply (None when ignored)."""
        try:
            command = decode_command(raw)
        except ProtocolError as exc:
            level = logging.DEBUG if self._warned_malformed else logging.WARNING
            self._warned_malformed = True
            logger.log(level, "command listener node=%s skipped a malformed command: %s", self.node_id, exc)
            return None
        if command.target_node_id not in (self.node_id, BROADCAST_NODE):
            logger.debug("ignored command id=%s for node=%s", command.id, command.target_node_id)
            return None
        if self.max_age_s is not None and _now_ms() - command.timestamp > self.max_age_s * 1000:
            logger.info("ignored command id=%s: older than %s s", command.id, self.max_age_s)
            return None
        reply = self._execute(command)
        if command.reply_to:
            self._publish_reply(command.reply_to, reply)
        return reply

    def _execute(self, command: RemoteCommand) -> CommandReply:
        kind = _type_name(command.type)
        if kind not in self.allow:
            logger.warning("refused command id=%s type=%s: not on the allow-list", command.id, kind)
            return self._reply(command, ok=False, message=f"command type {kind} is not allowed on this node")
        try:
            outcome = self.handlers[kind](command)
        except Exception as exc:
            # A failing handler is reported to the issuer; the listener itself goes on.
            logger.exception("command id=%s type=%s failed", command.id, kind)
            return self._reply(command, ok=False, message=f"{kind} failed: {type(exc).__name__}: {exc}")
        logger.info("ran command id=%s type=%s issuer=%s", command.id, kind, command.issuer)
        return self._reply(command, ok=True, message=outcome or "")

    def _reply(self, command: RemoteCommand, *, ok: bool, message: str) -> CommandReply:
        return CommandReply(command_id=command.id, node_id=self.node_id, ok=ok, message=message, timestamp=_now_ms())

    def _publish_reply(self, channel: str, reply: CommandReply) -> None:
        try:
            self.client.publish(channel, encode_command_reply(reply))
        except redis.RedisError as exc:
            # The command has run; resubscribing would not bring the reply back, so only log it.
            logger.warning("reply to command id=%s lost: %s", reply.command_id, exc)
