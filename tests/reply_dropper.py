"""A TCP proxy in front of the test Redis that cuts one connection in the middle of a round trip.

Armed with a byte string, it waits for the first request (a command or a whole pipeline) that
holds it; then either delivers it to Redis, lets every reply come back to the proxy and drops
them (the reply is lost: the client cannot tell whether its commands ran), or drops the
request itself (nothing ran). Either way it then closes both sides of that connection. Other
connections, and the same one before and after, are passed through untouched; unless the cut
begins an outage, during which every new connection is closed at once.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import hiredis

_CHUNK = 65536


@dataclass
class _Plan:
    marker: bytes
    deliver: bool
    outage: threading.Event | None
    done: threading.Event = field(default_factory=threading.Event)


class _Link:
    """One client connection and its connection to Redis, pumped by two threads."""

    def __init__(self, proxy: ReplyDropper, client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = socket.create_connection((proxy.redis_host, proxy.redis_port))
        self.dropping: int | None = None  # replies still to swallow, once a delivered request is cut
        self.plan: _Plan | None = None
        for target in (self._requests, self._replies):
            threading.Thread(target=target, daemon=True).start()

    def _requests(self) -> None:
        reader = hiredis.Reader()
        pending = b""
        while chunk := self._recv(self.client):
            pending += chunk
            reader.feed(chunk)
            commands = 0
            while reader.gets() is not False:
                commands += 1
            if reader.has_data():
                continue  # a request cut in two: wait for the rest before deciding
            plan = self.proxy.claim(pending)
            if plan is not None:
                self.plan = plan
                if not plan.deliver:
                    self.close()
                    return
                self.dropping = commands
            self._send(self.server, pending)
            pending = b""

    def _replies(self) -> None:
        reader = hiredis.Reader()
        while chunk := self._recv(self.server):
            if self.dropping is None:
                self._send(self.client, chunk)
                continue
            reader.feed(chunk)
            while self.dropping and reader.gets() is not False:
                self.dropping -= 1
            if not self.dropping:
                self.close()  # every reply of the request came back, and none reaches the client
                return

    def close(self) -> None:
        for sock in (self.client, self.server):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self.plan is not None:
            self.plan.done.set()

    @staticmethod
    def _recv(sock: socket.socket) -> bytes:
        try:
            return sock.recv(_CHUNK)
        except OSError:
            return b""

    @staticmethod
    def _send(sock: socket.socket, data: bytes) -> None:
        with suppress(OSError):
            sock.sendall(data)


class ReplyDropper:
    """The proxy; connect to :attr:`port` on 127.0.0.1."""

    def __init__(self, redis_host: str, redis_port: int) -> None:
        self.redis_host, self.redis_port = redis_host, redis_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._plan: _Plan | None = None
        self._outage: threading.Event | None = None
        self.refused = 0
        """Connections closed at once, during an outage."""
        self._links: list[_Link] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, marker: bytes, *, deliver: bool, outage: threading.Event | None = None) -> threading.Event:
        """Cut the first request holding ``marker``; the event is set once its connection is closed.

        With ``outage``, from the cut until that event is set, new connections are closed at once
        (Redis looks down, while connections opened before live on).
        """
        plan = _Plan(marker, deliver, outage)
        with self._lock:
            self._plan = plan
        return plan.done

    def claim(self, request: bytes) -> _Plan | None:
        """The armed plan, taken (it fires once), when ``request`` holds its marker."""
        with self._lock:
            plan = self._plan
            if plan is None or plan.marker not in request:
                return None
            self._plan = None
            self._outage = plan.outage
            return plan

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._outage is not None and not self._outage.is_set():
                client.close()
                self.refused += 1
                continue
            self._links.append(_Link(self, client))

    def close(self) -> None:
        """Stop listening and close every connection still open."""
        self._listener.close()
        for link in self._links:
            link.close()


@contextmanager
def reply_dropper(redis_host: str, redis_port: int) -> Iterator[ReplyDropper]:
    """A proxy for the test's own redis-server, closed afterwards."""
    proxy = ReplyDropper(redis_host, redis_port)
    try:
        yield proxy
    finally:
        proxy.close()
