"""Waking an idle worker the moment a job may be waiting, instead of at its next poll.

Each queue gets a thread that waits on the queue's base list with
``BLMOVE <base> <base> RIGHT RIGHT <timeout>``: Redis answers as soon as the list holds a
job, whoever pushed it (the Node producer sends nothing but its ``LPUSH``), and the element
it pops goes back where it was in the same atomic command, so the wait takes nothing: the
job stays in the list for the fetch script, which still applies pauses, rate limits and
lane order. A worker that dies while waiting leaves every job where it was.

One more thread listens on the queues' wake channels (PROTOCOL 4.6), where this package's
producer announces what the base list does not show: jobs pushed onto another lane, and
delayed jobs. Jobs another producer pushes onto a lane without a signal wait at most the
poll interval.

A thread waits only while the loop has armed it (after a fetch found nothing and the base
list was empty) and disarms itself when it fires, so a queue that is paused with jobs
waiting never turns the wait into a busy loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import redis

from zenith_protocol import KeySpace

__all__ = ["Waker"]

logger = logging.getLogger(__name__)

_LONGEST_BLOCK_S = 5
_RETRY_S = 1.0
_LISTEN_S = 0.2
"""The listener looks at the stop flag this often (a subscribed connection cannot be unblocked)."""


class Waker:
    """Threads that call ``notify`` when an armed queue may have a job to fetch.

    Args:
        client: the worker's client; each thread opens a connection of its own like it.
        keyspace: key and channel names.
        queues: the queues to watch.
        notify: called from a waker thread (must be quick and thread-safe).
    """

    def __init__(
        self, client: redis.Redis, keyspace: KeySpace, queues: Sequence[str], notify: Callable[[], None]
    ) -> None:
        self._client = client
        self._keyspace = keyspace
        self._queues = tuple(queues)
        self._notify = notify
        self._armed = {queue: threading.Event() for queue in self._queues}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watchers: dict[str, redis.Redis] = {}
        self._ids: dict[str, int] = {}
        self._broken: set[str] = set()
        timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
        # A blocking call must return before the connection's read timeout ends it as a failure.
        self._block_s = _LONGEST_BLOCK_S if timeout is None else max(1, min(_LONGEST_BLOCK_S, int(timeout / 2)))

    def start(self) -> None:
        """Start one waiting thread per queue and the wake-channel listener."""
        for queue in self._queues:
            self._spawn(self._watch, queue)
        self._spawn(self._listen, None)

    def _spawn(self, target: Callable[[str], None] | Callable[[None], None], queue: str | None) -> None:
        name = f"zenith-wake-{queue}" if queue is not None else "zenith-wake-signals"
        thread = threading.Thread(target=target, args=(queue,), name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def arm(self, queue: str) -> None:
        """Wait for a job on ``queue``'s base list from now on, until the next one arrives."""
        if queue not in self._broken:
            self._armed[queue].set()

    @property
    def watching(self) -> bool:
        """Whether every queue's base list is watched (else the loop polls for the ones that are not)."""
        return not self._broken

    def stop(self) -> None:
        """End the threads now: blocked calls are cut short (``CLIENT UNBLOCK``), connections closed."""
        self._stop.set()
        for event in self._armed.values():
            event.set()
        for client_id in list(self._ids.values()):
            try:
                self._client.client_unblock(client_id)
            except redis.RedisError:
                pass  # the connection is gone already: its thread is not blocked
        for thread in self._threads:
            thread.join(_LONGEST_BLOCK_S + _RETRY_S)
        for queue in list(self._watchers):
            self._drop_watcher(queue)

    def _watch(self, queue: str) -> None:
        base = self._keyspace.lane(queue, None)
        armed = self._armed[queue]
        while not self._stop.is_set():
            if not armed.wait(_RETRY_S):
                continue
            try:
                watcher = self._watcher(queue)
                if self._stop.is_set():
                    return
                found = watcher.blmove(base, base, self._block_s, "RIGHT", "RIGHT")
            except redis.ResponseError as exc:
                # Not a list, or an ACL without BLMOVE: this queue is polled instead.
                logger.warning("cannot wait on queue=%s (%s); polling it instead", queue, exc)
                self._broken.add(queue)
                armed.clear()
                return
            except redis.RedisError as exc:
                logger.debug("waiting on queue=%s failed (%s); trying again", queue, exc)
                self._drop_watcher(queue)
                self._stop.wait(_RETRY_S)
                continue
            if found is not None and not self._stop.is_set():
                armed.clear()
                self._notify()

    def _watcher(self, queue: str) -> redis.Redis:
        """This queue's own connection, opened on first use; its id is kept to unblock it."""
        watcher = self._watchers.get(queue)
        if watcher is None:
            pool = self._client.connection_pool
            own = pool.__class__(connection_class=pool.connection_class, **pool.connection_kwargs)
            watcher = self._watchers[queue] = redis.Redis(connection_pool=own, single_connection_client=True)
            self._ids[queue] = int(watcher.client_id())
        return watcher

    def _drop_watcher(self, queue: str) -> None:
        self._ids.pop(queue, None)
        watcher = self._watchers.pop(queue, None)
        if watcher is not None:
            watcher.close()

    def _listen(self, _: None) -> None:
        channels = [self._keyspace.wake_channel(queue) for queue in self._queues]
        listener = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            while not self._stop.is_set():
                try:
                    if not listener.subscribed:
                        listener.subscribe(*channels)
                    if listener.get_message(timeout=_LISTEN_S) is not None:
                        self._notify()
                except redis.RedisError as exc:
                    logger.debug("wake channels: %s; subscribing again", exc)
                    listener.reset()
                    self._stop.wait(_RETRY_S)
        finally:
            listener.close()
