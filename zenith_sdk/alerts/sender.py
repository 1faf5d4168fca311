"""Senders: a consumer group on the notification outbox that delivers each notification to its channels.

Several senders may run at once, anywhere. Each reads new outbox entries with XREADGROUP and
claims, with XAUTOCLAIM, entries another sender took and left unacknowledged for longer than
``claim_idle_s`` (it died mid-send). An entry is sent to each of its channels at once (in threads,
so a hanging channel costs the others nothing); after a channel succeeds a delivered marker
(``SET NX`` with a TTL) records it, so a redelivered entry skips the channels already done, and
once every channel is done or has given up (after its own retries) the entry is acknowledged.
A sender killed mid-send thus redelivers at most the entries it held, each with its same id (the
``webhook-id`` and the footer of chat messages), and every outcome updates the channel's health.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.exceptions import ResponseError

from zenith_protocol import AlertConfig, ErrorKind, KeySpace, Notification, ProtocolError, decode_alert_notification
from zenith_sdk._background import BackgroundLoop
from zenith_sdk._wire import text_of
from zenith_sdk.alerts._settings import load_config
from zenith_sdk.alerts.channels import Channel, Delivery, configured_channels
from zenith_sdk.alerts.store import OUTBOX_FIELD, record_delivery

__all__ = ["CLAIM_IDLE_S", "GROUP", "MARKER_TTL_S", "Sender", "SentEntry"]

logger = logging.getLogger(__name__)

GROUP = "senders"
"""The consumer group of every sender."""
CLAIM_IDLE_S = 60.0
"""How long an entry stays with a sender that does not acknowledge it before another claims it."""
MARKER_TTL_S = 7 * 24 * 3600
"""How long a delivered marker is kept (longer than any entry stays pending)."""
BATCH = 1
"""Entries read (or claimed) at once. One: an entry is taken only when it is about to be sent, so
it stays pending for one channel budget at most, well under the claim time; a batch would sit
pending while the entries before it were sent, and a hanging channel could let another sender
claim (and send again) entries this one had not reached."""
_PAUSE_S = 0.01
"""Between two rounds (a round waits ``block_s`` for new entries itself)."""
MAX_PARALLEL = 8
"""Channel sends in flight at once per sender."""


@dataclass(frozen=True)
class SentEntry:
    """What became of one outbox entry: its notification id, and per channel ``sent``, ``done`` or ``failed``."""

    entry_id: str
    notification_id: str | None
    outcomes: dict[str, str]


class Sender:
    """Delivers outbox entries to channels as one consumer of the ``senders`` group.

    Args:
        client: a redis-py client (the caller owns it).
        keyspace: key names.
        consumer: this sender's name in the group (default: host, pid and a random part).
        claim_idle_s: claim entries idle this long in a dead sender's hands; keep it longer than any
            channel's whole budget (timeout x attempts plus backoff), or a slow send is sent twice.
        block_s: how long one read waits for new entries.
        channels: builds the channels of a config (default: :func:`configured_channels`).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        keyspace: KeySpace | None = None,
        consumer: str | None = None,
        claim_idle_s: float = CLAIM_IDLE_S,
        block_s: float = 1.0,
        marker_ttl_s: int = MARKER_TTL_S,
        channels: Callable[[AlertConfig], dict[str, Channel]] = configured_channels,
    ) -> None:
        if claim_idle_s <= 0 or block_s < 0:
            raise ValueError("claim_idle_s must be positive and block_s not negative")
        self.client = client
        self.keyspace = keyspace or KeySpace()
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self.block_ms = int(block_s * 1000)
        self.marker_ttl_s = marker_ttl_s
        self.channels = channels
        self._group_ready = False
        self._pool = ThreadPoolExecutor(max_workers=MAX_PARALLEL, thread_name_prefix="zenith-alert-send")
        self._loop: BackgroundLoop | None = None
        self._stopping = threading.Event()

    # -- one round ----------------------------------------------------------------------------

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # From the start of the outbox: notifications written before any sender ran are sent too.
            self.client.xgroup_create(self.keyspace.alerts_outbox(), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _fetch(self, *, block: bool) -> list[tuple[str, Any]]:
        """Entries to deliver: those claimed from dead senders, then new ones."""
        outbox = self.keyspace.alerts_outbox()
        claimed: list[Any] = self.client.xautoclaim(
            outbox, GROUP, self.consumer, self.claim_idle_ms, "0-0", count=BATCH
        )
        entries = [(text_of(entry_id), fields) for entry_id, fields in claimed[1] if fields is not None]
        gone = [text_of(entry_id) for entry_id in (claimed[2] if len(claimed) > 2 else [])]
        if gone:
            self.client.xack(outbox, GROUP, *gone)  # trimmed from the outbox while pending: nothing to send
        if entries:
            return entries
        read: list[Any] = cast(
            "list[Any]",
            self.client.xreadgroup(
                GROUP, self.consumer, {outbox: ">"}, count=BATCH, block=self.block_ms if block else None
            ),
        )
        return [(text_of(entry_id), fields) for _stream, batch in read or [] for entry_id, fields in batch]

    def run_once(self, *, block: bool = False) -> list[SentEntry]:
        """Claim or read one batch of entries and deliver them; returns what became of each."""
        self._ensure_group()
        entries = self._fetch(block=block)
        if not entries:
            return []
        config = load_config(self.client, keyspace=self.keyspace, reveal=True)
        channels = self.channels(config)
        return [self._deliver(entry_id, fields, channels) for entry_id, fields in entries]

    def _deliver(self, entry_id: str, fields: Any, channels: dict[str, Channel]) -> SentEntry:
        outbox = self.keyspace.alerts_outbox()
        try:
            notification = decode_alert_notification(_field(fields, OUTBOX_FIELD))
        except ProtocolError as exc:
            logger.error("outbox entry %s does not decode (%s); acknowledged without sending", entry_id, exc.reason)
            self.client.xack(outbox, GROUP, entry_id)
            return SentEntry(entry_id, None, {})
        targets = notification.channels or sorted(channels)
        if not targets:
            logger.warning(
                "notification=%s not sent: no channel is enabled (see `zenith alerts channels`)", notification.id
            )
        outcomes: dict[str, str] = {}
        pending: dict[str, Future[Delivery]] = {}
        for name in targets:
            channel = channels.get(name)
            if channel is None:
                logger.warning("notification=%s names channel %s, which is not enabled; skipped", notification.id, name)
                outcomes[name] = "failed"
            elif self.client.exists(self.keyspace.alerts_delivered(notification.id, name)):
                outcomes[name] = "done"  # delivered before this entry came back
            else:
                pending[name] = self._pool.submit(channel.send, notification)
        for name, future in pending.items():
            outcomes[name] = self._settle(notification, name, future)
        self.client.xack(outbox, GROUP, entry_id)
        return SentEntry(entry_id, notification.id, outcomes)

    def _settle(self, notification: Notification, name: str, future: Future[Delivery]) -> str:
        try:
            delivery = future.result()
        except Exception as exc:  # a channel must not raise; if one does, count it as a failed delivery
            logger.exception("channel=%s raised while sending notification=%s", name, notification.id)
            delivery = Delivery(channel=name, ok=False, attempts=1, error=type(exc).__name__, status=None)
        now_ms = int(time.time() * 1000)
        if delivery.ok:
            marker = self.keyspace.alerts_delivered(notification.id, name)
            self.client.set(marker, "1", nx=True, ex=self.marker_ttl_s)
        else:
            logger.warning("channel=%s gave up on notification=%s: %s", name, notification.id, delivery.error)
        record_delivery(self.client, name, ok=delivery.ok, now_ms=now_ms, error=delivery.error, keyspace=self.keyspace)
        return "sent" if delivery.ok else "failed"

    # -- the loop -----------------------------------------------------------------------------

    def run(self, *, stop: threading.Event | None = None) -> None:
        """Deliver until :meth:`stop` (or ``stop`` is set); Redis outages are logged and retried."""
        loop = BackgroundLoop("zenith-alert-sender", _PAUSE_S, lambda: self.run_once(block=True), stop=stop)
        self._loop = loop
        try:
            if not self._stopping.is_set():
                loop.run()
        finally:
            self._loop = None

    def stop(self) -> None:
        """End :meth:`run` within one read (safe from any thread or a signal handler)."""
        self._stopping.set()
        if self._loop is not None:
            self._loop.stop()

    def close(self) -> None:
        """Let the channel threads finish."""
        self._pool.shutdown(wait=True)


def _field(fields: Any, name: str) -> Any:
    for key, value in (fields or {}).items():
        if text_of(key) == name:
            return value
    reason = f"the outbox entry has no {name!r} field"
    raise ProtocolError("alert_notification", ErrorKind.MISSING_FIELD, reason, raw=fields)
