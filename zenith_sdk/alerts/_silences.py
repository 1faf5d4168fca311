"""Silences and recurring mute windows, each a JSON value in its own HASH (id -> JSON).

A silence is active from ``startsAt`` until ``endsAt``; ending one early sets ``endsAt`` to now,
so it stays listed as expired until :func:`prune_silences` removes it. Creating, ending and removing
them writes an ``operator`` event (``queue`` empty), the audit trail of who muted what.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis
from croniter import croniter

from zenith_protocol import (
    EventType,
    KeySpace,
    MuteWindow,
    NotFoundError,
    OperatorAction,
    ProtocolError,
    Silence,
    SilenceMatchers,
    decode_alert_mute_window,
    decode_alert_silence,
    encode_alert_mute_window,
    encode_alert_silence,
)
from zenith_sdk._wire import text_of
from zenith_sdk.events import EventEmitter, job_event

__all__ = [
    "EXPIRED_KEPT_MS",
    "add_mute",
    "add_silence",
    "end_silence",
    "list_mutes",
    "list_silences",
    "mutes_from",
    "prune_silences",
    "remove_mute",
    "silences_from",
]

logger = logging.getLogger(__name__)

EXPIRED_KEPT_MS = 24 * 3600 * 1000
"""How long an ended silence stays listed before :func:`prune_silences` removes it."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _audit(client: redis.Redis, space: KeySpace, action: OperatorAction, actor: str | None) -> None:
    if actor:
        event = job_event(EventType.OPERATOR, "", actor=actor, action=action, count=1)
        EventEmitter(client, keyspace=space, live_log=False).emit(event)


def add_silence(
    client: redis.Redis,
    *,
    matchers: SilenceMatchers,
    duration_s: float,
    comment: str,
    author: str,
    starts_at_ms: int | None = None,
    keyspace: KeySpace | None = None,
    now_ms: int | None = None,
) -> Silence:
    """Silence every alert ``matchers`` select for ``duration_s`` seconds from ``starts_at_ms`` (default now).

    Raises:
        ValueError: the duration is not positive, or every matcher is empty (that would silence everything:
            say ``rule="*"`` to mean it).
    """
    if duration_s <= 0:
        raise ValueError(f"a silence lasts a positive time, got {duration_s} s")
    if not any(value for value in matchers.model_dump().values()):
        raise ValueError("a silence needs a matcher (rule, queue, service or severity); use rule='*' for everything")
    space = keyspace or KeySpace()
    now = _now_ms() if now_ms is None else now_ms
    start = now if starts_at_ms is None else starts_at_ms
    silence = Silence(
        id=uuid.uuid4().hex[:12],
        matchers=matchers,
        author=author,
        comment=comment,
        starts_at_ms=start,
        ends_at_ms=start + int(duration_s * 1000),
        created_at_ms=now,
    )
    client.hset(space.alerts_silences(), silence.id, encode_alert_silence(silence))
    _audit(client, space, OperatorAction.SILENCE, author)
    logger.info("silence added id=%s author=%s until=%d", silence.id, author, silence.ends_at_ms)
    return silence


def list_silences(
    client: redis.Redis, *, keyspace: KeySpace | None = None, now_ms: int | None = None, include_ended: bool = False
) -> list[Silence]:
    """Silences that have not ended (all of them with ``include_ended``), by start time; bad entries skipped."""
    raw_hash = client.hgetall((keyspace or KeySpace()).alerts_silences())
    return silences_from(raw_hash, now_ms=_now_ms() if now_ms is None else now_ms, include_ended=include_ended)


def silences_from(raw_hash: Mapping[Any, Any], *, now_ms: int, include_ended: bool = False) -> list[Silence]:
    """The silences of a silences hash as HGETALL returned it (see :func:`list_silences`)."""
    found = []
    for name, raw in raw_hash.items():
        try:
            silence = decode_alert_silence(raw)
        except ProtocolError as exc:
            logger.warning("silence %s does not decode (%s); `zenith doctor` shows it", text_of(name), exc.reason)
            continue
        if include_ended or silence.ends_at_ms > now_ms:
            found.append(silence)
    return sorted(found, key=lambda silence: (silence.starts_at_ms, silence.id))


def end_silence(
    client: redis.Redis, silence_id: str, *, actor: str | None = None, keyspace: KeySpace | None = None
) -> Silence:
    """End a silence now (it stays listed as ended for a day).

    Raises:
        NotFoundError: no such silence.
    """
    space = keyspace or KeySpace()
    raw = client.hget(space.alerts_silences(), silence_id)
    if raw is None:
        raise NotFoundError("silence", silence_id, hint="`zenith alerts silences` lists them")
    silence = decode_alert_silence(raw)
    now = _now_ms()
    if silence.ends_at_ms > now:
        silence = silence.model_copy(update={"ends_at_ms": max(now, silence.starts_at_ms)})
        client.hset(space.alerts_silences(), silence_id, encode_alert_silence(silence))
    _audit(client, space, OperatorAction.UNSILENCE, actor)
    return silence


def prune_silences(client: redis.Redis, *, keyspace: KeySpace | None = None, now_ms: int | None = None) -> int:
    """Remove silences that ended more than :data:`EXPIRED_KEPT_MS` ago; returns how many."""
    space = keyspace or KeySpace()
    now = _now_ms() if now_ms is None else now_ms
    old = [
        silence.id
        for silence in list_silences(client, keyspace=space, now_ms=now, include_ended=True)
        if now - silence.ends_at_ms > EXPIRED_KEPT_MS
    ]
    return int(client.hdel(space.alerts_silences(), *old)) if old else 0


def add_mute(
    client: redis.Redis,
    *,
    cron: str,
    duration_minutes: float,
    matchers: SilenceMatchers,
    timezone_name: str = "UTC",
    comment: str = "",
    actor: str | None = None,
    keyspace: KeySpace | None = None,
) -> MuteWindow:
    """A recurring mute window: from each time ``cron`` names (in ``timezone_name``), for ``duration_minutes``.

    Raises:
        ValueError: the cron expression, the zone or the duration cannot be used.
    """
    _check_cron(cron, timezone_name)
    space = keyspace or KeySpace()
    window = MuteWindow(
        id=uuid.uuid4().hex[:12],
        cron=cron,
        duration_minutes=duration_minutes,
        timezone=timezone_name,
        matchers=matchers,
        comment=comment,
    )
    client.hset(space.alerts_mutes(), window.id, encode_alert_mute_window(window))
    _audit(client, space, OperatorAction.MUTE, actor)
    return window


def _check_cron(cron: str, zone: str) -> None:
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise ValueError(f"cron {cron!r} is not a five-field expression such as '0 22 * * 5'")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"time zone {zone!r} is not an IANA zone such as 'Europe/Berlin' or 'UTC'") from exc


def list_mutes(client: redis.Redis, *, keyspace: KeySpace | None = None) -> list[MuteWindow]:
    """Every mute window, by id (entries that do not decode are skipped)."""
    return mutes_from(client.hgetall((keyspace or KeySpace()).alerts_mutes()))


def mutes_from(raw_hash: Mapping[Any, Any]) -> list[MuteWindow]:
    """The mute windows of a mute-windows hash as HGETALL returned it."""
    found = []
    for name, raw in raw_hash.items():
        try:
            found.append(decode_alert_mute_window(raw))
        except ProtocolError as exc:
            logger.warning("mute window %s does not decode (%s)", text_of(name), exc.reason)
    return sorted(found, key=lambda window: window.id)


def remove_mute(
    client: redis.Redis, mute_id: str, *, actor: str | None = None, keyspace: KeySpace | None = None
) -> None:
    """Delete a mute window.

    Raises:
        NotFoundError: no such mute window.
    """
    space = keyspace or KeySpace()
    if not client.hdel(space.alerts_mutes(), mute_id):
        raise NotFoundError("mute window", mute_id, hint="`zenith alerts mute list` lists them")
    _audit(client, space, OperatorAction.UNMUTE, actor)
