"""Every Redis key and channel name Zenith uses, built in one place.

``KeySpace`` holds the configurable prefixes. Its default layout is the wire
layout of the existing Node.js system (``queue:emails``, ``queue:emails:failed``),
so Python and Node workers share queues. ``KeySpace(cluster_safe=True)`` wraps
every per-queue key in a hash tag (``queue:{emails}:failed``) so that one queue's
keys live in one Redis Cluster slot; it is for new deployments only, since Node
workers do not know it.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from functools import lru_cache
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, field_validator

from zenith_protocol.errors import ConfigError

__all__ = [
    "CONSOLE_TASK_TTL_S",
    "LANES_IN_POLL_ORDER",
    "PRIORITY_LANES",
    "RESERVED_QUEUE_NAMES",
    "KeyKind",
    "KeySpace",
    "ParsedKey",
    "PulseKeyForm",
    "lane_for",
    "validate_queue_name",
]

PRIORITY_LANES: tuple[str, ...] = ("critical", "high", "low")
"""Named priority lanes; consumers poll ``critical``, ``high``, the base queue, then ``low``."""

LANES_IN_POLL_ORDER: tuple[str | None, ...] = ("critical", "high", None, "low")
"""Every lane in the order consumers poll them; ``None`` is the base lane."""

RESERVED_QUEUE_NAMES: frozenset[str] = frozenset(
    {"active", "pending", "schedules", "schedule", "lock", "worker", "logs", "processing"}
)
"""Segments after the queue prefix that name structural keys, never a queue."""

CONSOLE_TASK_TTL_S = 3600
"""How long a console's background task (a bulk operation over every matching job) stays readable after it changed."""

_FORBIDDEN_PREFIX_CHARS = frozenset("*?[]{}\\ \n\r\t")
_FORBIDDEN_NAME_CHARS = frozenset(":{}*?[]\\\n\r")
_SCHEDULE_TAG = "{schedules}"
_EVENTS_TAG = "{events}"
_ALERTS_TAG = "{alerts}"


class KeyKind(str, Enum):
    """What a Redis key holds, as :meth:`KeySpace.parse` recognises it."""

    QUEUE = "queue"
    LANE = "lane"
    DELAYED = "delayed"
    FAILED = "failed"
    ACTIVE_SET = "active_set"
    PAUSED = "paused"
    RATE_LIMIT = "rate_limit"
    PROCESSING = "processing"
    GROUP_ACTIVE = "group_active"
    GROUP_PENDING = "group_pending"
    SCHEDULES = "schedules"
    SCHEDULE = "schedule"
    SCHEDULE_LOCK = "schedule_lock"
    WORKER = "worker"
    LEGACY_WORKER = "legacy_worker"
    LOG_HISTORY = "log_history"
    THROUGHPUT = "throughput"
    METRIC = "metric"
    PULSE = "pulse"
    LEGACY_PULSE = "legacy_pulse"
    ALERT_RULES = "alert_rules"
    ALERT_CONFIG = "alert_config"
    MAINTENANCE_CONFIG = "maintenance_config"
    EVENTS = "events"
    QUEUE_INDEX = "queue_index"
    WORKER_INDEX = "worker_index"
    WORKER_QUEUES = "worker_queues"
    SWEEP_LOCK = "sweep_lock"
    ALERT_STATES = "alert_states"
    ALERT_OUTBOX = "alert_outbox"
    ALERT_HISTORY = "alert_history"
    ALERT_SILENCES = "alert_silences"
    ALERT_MUTES = "alert_mutes"
    ALERT_CHANNELS = "alert_channels"
    ALERT_DELIVERED = "alert_delivered"
    CONSOLE_TASK = "console_task"
    QUEUE_COUNTERS = "queue_counters"
    STAGED_EVENTS = "staged_events"
    UNKNOWN = "unknown"


class PulseKeyForm(str, Enum):
    """Which key forms a pulse node is written under."""

    BOTH = "both"
    """``pulse:<service>:<nodeId>`` and the Node agent's ``gravito:quasar:node:<service>:<nodeId>``."""
    PULSE = "pulse"
    """Only ``pulse:<service>:<nodeId>``."""
    LEGACY = "legacy"
    """Only the Node agent's form, ``gravito:quasar:node:<service>:<nodeId>``."""


class ParsedKey(NamedTuple):
    """A key taken apart: its kind, the queue it belongs to (if any) and its variable part."""

    kind: KeyKind
    queue: str | None = None
    part: str | None = None


def lane_for(priority: object) -> str | None:
    """The lane a job's ``priority`` names (``critical``, ``high``, ``low``), else ``None``: the base lane."""
    return priority if isinstance(priority, str) and priority in PRIORITY_LANES else None


def validate_queue_name(name: str) -> str:
    """Return ``name`` if it can name a queue, else raise :class:`ConfigError` saying why."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"queue name must be a non-empty string, got {name!r}")
    if not _FORBIDDEN_NAME_CHARS.isdisjoint(name):
        bad = sorted(set(name) & _FORBIDDEN_NAME_CHARS)
        raise ConfigError(f"queue name {name!r} contains {''.join(bad)!r}; use letters, digits, '-', '_' or '.'")
    if name in RESERVED_QUEUE_NAMES:
        raise ConfigError(f"queue name {name!r} is reserved for a structural key; pick another name")
    return name


class KeySpace(BaseModel):
    """Builds every key and channel name from configurable prefixes.

    Args:
        queue_prefix: prefix of queue lists, schedules and group-FIFO keys.
        console_prefix: prefix of worker heartbeats, live logs and per-minute metrics.
        pulse_prefix: prefix this package writes pulse nodes under.
        legacy_pulse_prefix: prefix the Node agent writes pulse nodes under (and ours, by default, too).
        command_prefix: prefix of remote-command channels.
        settings_prefix: prefix of alert and maintenance settings.
        zenith_prefix: prefix of structures new in this package (event stream, indexes, replies).
        cluster_safe: hash-tag per-queue keys for Redis Cluster (not readable by Node workers).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue_prefix: str = "queue:"
    console_prefix: str = "flux_console:"
    pulse_prefix: str = "pulse:"
    legacy_pulse_prefix: str = "gravito:quasar:node:"
    command_prefix: str = "gravito:quasar:cmd:"
    settings_prefix: str = "gravito:zenith:"
    zenith_prefix: str = "zenith:"
    cluster_safe: bool = False

    @field_validator(
        "queue_prefix",
        "console_prefix",
        "pulse_prefix",
        "legacy_pulse_prefix",
        "command_prefix",
        "settings_prefix",
        "zenith_prefix",
    )
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not value:
            raise ValueError("a key prefix must not be empty")
        bad = sorted(set(value) & _FORBIDDEN_PREFIX_CHARS)
        if bad:
            raise ValueError(f"key prefix {value!r} contains {''.join(bad)!r}, which SCAN patterns cannot match")
        return value

    # -- queues ---------------------------------------------------------------------------------

    def _q(self, queue: str) -> str:
        validate_queue_name(queue)
        return f"{self.queue_prefix}{{{queue}}}" if self.cluster_safe else f"{self.queue_prefix}{queue}"

    def queue(self, queue: str) -> str:
        """LIST of waiting jobs (base lane): producers LPUSH, consumers pop from the right."""
        return self._q(queue)

    def lane(self, queue: str, priority: str | None) -> str:
        """LIST of one priority lane; ``None`` or ``""`` is the base queue."""
        return self._q(queue) if not priority else f"{self._q(queue)}:{priority}"

    def lanes_in_poll_order(self, queue: str) -> tuple[str, ...]:
        """Waiting lists in the order consumers poll them: critical, high, base, low."""
        return tuple(self.lane(queue, lane) for lane in LANES_IN_POLL_ORDER)

    def delayed(self, queue: str, lane: str | None = None) -> str:
        """ZSET of one lane's delayed jobs scored by due time in ms (``None``: the base lane's)."""
        return f"{self._lane_head(queue, lane)}:delayed"

    def delayed_in_poll_order(self, queue: str) -> tuple[str, ...]:
        """The delayed sets of the lanes, in poll order: critical, high, base, low."""
        return tuple(self.delayed(queue, lane) for lane in LANES_IN_POLL_ORDER)

    def _lane_head(self, queue: str, lane: str | None) -> str:
        if lane is None or lane == "":
            return self._q(queue)
        if lane not in PRIORITY_LANES:
            raise ConfigError(f"lane {lane!r} is not one of {', '.join(PRIORITY_LANES)}")
        return f"{self._q(queue)}:{lane}"

    def failed(self, queue: str) -> str:
        """LIST of dead-lettered jobs, newest at index 0."""
        return f"{self._q(queue)}:failed"

    def active_set(self, queue: str) -> str:
        """SET the old console counts as active (nothing writes it; read for compatibility)."""
        return f"{self._q(queue)}:active"

    def paused(self, queue: str, lane: str | None = None) -> str:
        """STRING ``"1"`` while the queue (``lane`` ``None``) or one of its lanes is paused."""
        return f"{self._lane_head(queue, lane)}:paused"

    def paused_in_poll_order(self, queue: str) -> tuple[str, ...]:
        """The paused flags of the lanes, in poll order: critical, high, base (the whole queue), low."""
        return tuple(self.paused(queue, lane) for lane in LANES_IN_POLL_ORDER)

    def rate_limit(self, queue: str, window: int | str) -> str:
        """STRING fixed-window counter of one rate-limit window."""
        return f"{self._q(queue)}:ratelimit:{window}"

    def processing(self, queue: str, worker_id: str) -> str:
        """LIST of jobs one worker has fetched from ``queue`` and not yet finished."""
        return f"{self._q(queue)}:processing:{worker_id}"

    def queue_keys_pattern(self, queue: str) -> str:
        """SCAN pattern of every key of ``queue`` but the base list (lanes, delayed, failed, flags, ...)."""
        return f"{self._q(queue)}:*"

    def group_active(self, queue: str) -> str:
        """SET of group ids being processed (global per prefix in the wire layout)."""
        return f"{self._q(queue)}:groups:active" if self.cluster_safe else f"{self.queue_prefix}active"

    def group_pending(self, queue: str, group_id: str) -> str:
        """LIST of a busy group's waiting jobs (global per prefix in the wire layout)."""
        if self.cluster_safe:
            return f"{self._q(queue)}:groups:pending:{group_id}"
        return f"{self.queue_prefix}pending:{group_id}"

    # -- schedules ------------------------------------------------------------------------------

    def _sched(self) -> str:
        return f"{self.queue_prefix}{_SCHEDULE_TAG}:" if self.cluster_safe else self.queue_prefix

    def schedules(self) -> str:
        """ZSET of schedule ids scored by their next run in ms."""
        return f"{self._sched()}schedules"

    def schedule(self, schedule_id: str) -> str:
        """HASH of one schedule."""
        return f"{self._sched()}schedule:{schedule_id}"

    def schedule_lock(self, schedule_id: str, epoch_s: int | str) -> str:
        """STRING lock taken (SET NX EX) by whoever fires one run of a schedule."""
        return f"{self._sched()}lock:schedule:{schedule_id}:{epoch_s}"

    # -- workers, logs and metrics (console prefix) ---------------------------------------------

    def worker(self, worker_id: str) -> str:
        """STRING heartbeat of one worker, kept alive by its TTL."""
        return f"{self.console_prefix}worker:{worker_id}"

    def legacy_worker(self, worker_id: str) -> str:
        """STRING heartbeat the Node consumer writes when given no monitor prefix (read only)."""
        return f"{self.queue_prefix}worker:{worker_id}"

    def logs_channel(self) -> str:
        """Pub/sub channel of live log lines."""
        return f"{self.console_prefix}logs"

    def _ev(self, prefix: str) -> str:
        # In the cluster-safe layout the keys one events script call writes share a slot.
        return f"{prefix}{_EVENTS_TAG}:" if self.cluster_safe else prefix

    def logs_history(self) -> str:
        """LIST of the latest 100 log lines, newest at index 0."""
        return f"{self._ev(self.console_prefix)}logs:history"

    def legacy_logs_history(self) -> str:
        """LIST of log lines a Node consumer without monitor prefix writes (read only)."""
        return f"{self.queue_prefix}logs:history"

    def throughput(self, epoch_minute: int | str) -> str:
        """STRING counter of jobs finished in one minute."""
        return f"{self._ev(self.console_prefix)}throughput:{epoch_minute}"

    def metric(self, name: str, epoch_minute: int | str) -> str:
        """STRING sparkline sample (``waiting``, ``delayed``, ``failed`` or ``workers``) of one minute."""
        return f"{self.console_prefix}metrics:{name}:{epoch_minute}"

    # -- pulse and remote commands --------------------------------------------------------------

    def pulse(self, service: str, node_id: str) -> str:
        """STRING pulse node written by this package."""
        return f"{self.pulse_prefix}{service}:{node_id}"

    def legacy_pulse(self, service: str, node_id: str) -> str:
        """STRING pulse node under the Node agent's prefix, which the Node console reads."""
        return f"{self.legacy_pulse_prefix}{service}:{node_id}"

    def pulse_keys(self, service: str, node_id: str, form: PulseKeyForm = PulseKeyForm.BOTH) -> tuple[str, ...]:
        """The keys one pulse node is written under, for ``form``; one key when both forms coincide."""
        keys = {
            PulseKeyForm.BOTH: (self.pulse(service, node_id), self.legacy_pulse(service, node_id)),
            PulseKeyForm.PULSE: (self.pulse(service, node_id),),
            PulseKeyForm.LEGACY: (self.legacy_pulse(service, node_id),),
        }[PulseKeyForm(form)]
        return tuple(dict.fromkeys(keys))

    def pulse_scan_patterns(self) -> tuple[str, ...]:
        """SCAN MATCH patterns that cover the pulse nodes of both key forms, without overlap."""
        return _outermost(self.pulse_prefix, self.legacy_pulse_prefix)

    def worker_scan_patterns(self) -> tuple[str, ...]:
        """SCAN MATCH patterns of the worker heartbeats: the console form, then the Node consumer's own."""
        return tuple(dict.fromkeys((f"{self.console_prefix}worker:*", f"{self.queue_prefix}worker:*")))

    def command_channel(self, service: str, node_id: str = "*") -> str:
        """Pub/sub channel of remote commands for one node (``*`` = every node of the service)."""
        return f"{self.command_prefix}{service}:{node_id}"

    def command_reply_channel(self, command_id: str) -> str:
        """Pub/sub channel on which nodes answer one remote command."""
        return f"{self.zenith_prefix}cmd-reply:{command_id}"

    def wake_channel(self, queue: str) -> str:
        """Pub/sub channel on which producers announce jobs an idle worker's wait cannot see (PROTOCOL 4.6)."""
        return f"{self.zenith_prefix}wake:{validate_queue_name(queue)}"

    # -- settings and new structures ------------------------------------------------------------

    def alert_rules(self) -> str:
        """STRING: JSON array of alert rules (absent means the three defaults)."""
        return f"{self.settings_prefix}alerts:rules"

    def alert_config(self) -> str:
        """STRING: JSON alert channel configuration."""
        return f"{self.settings_prefix}alerts:config"

    def maintenance_config(self) -> str:
        """STRING: JSON maintenance configuration."""
        return f"{self.settings_prefix}maintenance:config"

    def events(self) -> str:
        """STREAM of job lifecycle events, capped; the archive reads it with a consumer group."""
        return f"{self._ev(self.zenith_prefix)}stream" if self.cluster_safe else f"{self.zenith_prefix}events"

    def queue_counters(self, queue: str) -> str:
        """HASH of one queue's job counters and duration histogram; only ever incremented (PROTOCOL 6.6).

        Written by the events call (one ``{events}`` slot in the cluster-safe layout).
        """
        return f"{self._ev(self.zenith_prefix)}counters:{validate_queue_name(queue)}"

    def queue_counters_pattern(self) -> str:
        """SCAN pattern of every queue's counters hash."""
        return f"{self._ev(self.zenith_prefix)}counters:*"

    def queue_index(self) -> str:
        """SET of queue names written by this package's producers."""
        return f"{self.zenith_prefix}queues"

    def worker_index(self) -> str:
        """ZSET of worker ids scored by their last heartbeat in ms."""
        return f"{self.zenith_prefix}workers"

    def worker_queues(self) -> str:
        """HASH: worker id -> JSON array of the queues it fetches from (to find its processing lists)."""
        return f"{self.zenith_prefix}worker-queues"

    def staged_events(self, worker_id: str) -> str:
        """LIST of one worker's events written with the acknowledgements they report and not yet
        appended to the events stream (PROTOCOL 8.1); in the ``{events}`` slot in the cluster-safe layout."""
        return f"{self._ev(self.zenith_prefix)}staged-events:{worker_id}"

    def staged_events_pattern(self) -> str:
        """SCAN pattern of every worker's staged events list."""
        return f"{self._ev(self.zenith_prefix)}staged-events:*"

    def sweep_lock(self) -> str:
        """STRING taken (SET NX EX) by the one worker that looks for orphaned processing lists this interval."""
        return f"{self.zenith_prefix}sweep-lock"

    def console_task(self, task_id: str) -> str:
        """HASH: progress of one console task (state, matched, moved, ...), kept ``CONSOLE_TASK_TTL_S`` s."""
        return f"{self.zenith_prefix}console-task:{task_id}"

    # -- alerting (zenith prefix; one hash tag in the cluster-safe layout) ----------------------

    def _alerts(self) -> str:
        # The alert_apply script writes states, outbox and history in one call: in the
        # cluster-safe layout they share a slot.
        return f"{self.zenith_prefix}{_ALERTS_TAG}:" if self.cluster_safe else f"{self.zenith_prefix}alerts:"

    def alerts_states(self) -> str:
        """HASH: ``<ruleId>\\x1f<subject>`` -> alert state JSON (state, seq, since, ...)."""
        return f"{self._alerts()}states"

    def alerts_outbox(self) -> str:
        """STREAM of notifications to send, capped; senders read it with a consumer group."""
        return f"{self._alerts()}outbox"

    def alerts_history(self) -> str:
        """LIST of the latest alert transitions (JSON), newest at index 0."""
        return f"{self._alerts()}history"

    def alerts_silences(self) -> str:
        """HASH: silence id -> silence JSON."""
        return f"{self._alerts()}silences"

    def alerts_mutes(self) -> str:
        """HASH: mute window id -> mute window JSON."""
        return f"{self._alerts()}mutes"

    def alerts_channels(self) -> str:
        """HASH: channel name -> delivery health JSON (last success, last error, consecutive failures)."""
        return f"{self._alerts()}channels"

    def alerts_delivered(self, notification_id: str, channel: str) -> str:
        """STRING marker (SET NX with a TTL): ``notification_id`` was delivered to ``channel``."""
        return f"{self._alerts()}delivered:{notification_id}:{channel}"

    # -- discovery ------------------------------------------------------------------------------

    def scan_patterns(self) -> tuple[str, ...]:
        """SCAN MATCH patterns that together cover every key of this key space, without overlap."""
        return _outermost(
            self.queue_prefix,
            self.console_prefix,
            self.pulse_prefix,
            self.legacy_pulse_prefix,
            self.settings_prefix,
            self.zenith_prefix,
        )

    def parse(self, key: str) -> ParsedKey | None:
        """Take a key apart; ``None`` if it is outside every prefix of this key space."""
        prefixes = (
            self.console_prefix,
            self.pulse_prefix,
            self.legacy_pulse_prefix,
            self.settings_prefix,
            self.zenith_prefix,
            self.queue_prefix,
        )
        # Longest prefix first, so that nested prefixes ("queue:" and "queue:x:") resolve correctly;
        # a key the longer prefix does not explain ("queue:x:failed", queue "x") may still be the
        # shorter prefix's, so UNKNOWN is only the answer when no prefix knows the key.
        unknown = None
        for prefix, parser in _parse_plan(prefixes):
            if key.startswith(prefix):
                parsed = parser(self, key[len(prefix) :])
                if parsed is not None and parsed.kind is not KeyKind.UNKNOWN:
                    return parsed
                unknown = unknown or parsed
        return unknown

    def queue_key_parser(self) -> Callable[[str], ParsedKey | None]:
        """A parser for keys under the queue prefix (what ``SCAN MATCH <queue_prefix>*`` returns).

        It gives the same answers as :meth:`parse` for those keys, faster: when no other prefix
        of this key space lies under the queue prefix, it skips the other prefixes.
        """
        queue_prefix = self.queue_prefix
        others = (
            self.console_prefix,
            self.pulse_prefix,
            self.legacy_pulse_prefix,
            self.settings_prefix,
            self.zenith_prefix,
        )
        if any(other.startswith(queue_prefix) for other in others):
            return self.parse
        start = len(queue_prefix)
        parse_queue = self._parse_queue

        def parse_queue_key(key: str) -> ParsedKey | None:
            return parse_queue(key[start:]) if key.startswith(queue_prefix) else None

        return parse_queue_key

    def _parse_console(self, rest: str) -> ParsedKey | None:
        if self.cluster_safe and rest.startswith(_EVENTS_TAG + ":"):
            rest = rest[len(_EVENTS_TAG) + 1 :]
        head, _, tail = rest.partition(":")
        if head == "worker" and tail:
            return ParsedKey(KeyKind.WORKER, part=tail)
        if rest == "logs:history":
            return ParsedKey(KeyKind.LOG_HISTORY)
        if head == "throughput" and tail.isdigit():
            return ParsedKey(KeyKind.THROUGHPUT, part=tail)
        if head == "metrics":
            name, _, minute = tail.partition(":")
            if name and minute.isdigit():
                return ParsedKey(KeyKind.METRIC, part=f"{name}:{minute}")
        return ParsedKey(KeyKind.UNKNOWN)

    def _parse_settings(self, rest: str) -> ParsedKey | None:
        kinds = {
            "alerts:rules": KeyKind.ALERT_RULES,
            "alerts:config": KeyKind.ALERT_CONFIG,
            "maintenance:config": KeyKind.MAINTENANCE_CONFIG,
        }
        return ParsedKey(kinds.get(rest, KeyKind.UNKNOWN))

    def _parse_zenith(self, rest: str) -> ParsedKey | None:
        # The keys one events call writes: under the {events} tag in the cluster-safe layout.
        tagged = self.cluster_safe and rest.startswith(_EVENTS_TAG + ":")
        if tagged:
            rest = rest[len(_EVENTS_TAG) + 1 :]
            if rest == "stream":
                return ParsedKey(KeyKind.EVENTS)
        head, _, queue = rest.partition(":")
        if head == "staged-events" and tagged == self.cluster_safe:
            return ParsedKey(KeyKind.STAGED_EVENTS, part=queue) if queue else ParsedKey(KeyKind.UNKNOWN)
        if head == "counters" and tagged == self.cluster_safe:
            valid = queue and _FORBIDDEN_NAME_CHARS.isdisjoint(queue) and queue not in RESERVED_QUEUE_NAMES
            return ParsedKey(KeyKind.QUEUE_COUNTERS, queue=queue) if valid else ParsedKey(KeyKind.UNKNOWN)
        if tagged:
            return ParsedKey(KeyKind.UNKNOWN)
        alerts = f"{_ALERTS_TAG}:" if self.cluster_safe else "alerts:"
        if rest.startswith(alerts):
            return _parse_alerts(rest[len(alerts) :])
        kinds = {
            "events": KeyKind.EVENTS,
            "queues": KeyKind.QUEUE_INDEX,
            "workers": KeyKind.WORKER_INDEX,
            "worker-queues": KeyKind.WORKER_QUEUES,
            "sweep-lock": KeyKind.SWEEP_LOCK,
        }
        head, _, tail = rest.partition(":")
        if head == "console-task" and tail:
            return ParsedKey(KeyKind.CONSOLE_TASK, part=tail)
        return ParsedKey(kinds.get(rest, KeyKind.UNKNOWN))

    def _parse_queue(self, rest: str) -> ParsedKey | None:
        if self.cluster_safe and rest.startswith("{"):
            if rest.startswith(_SCHEDULE_TAG + ":"):
                return self._parse_structural(rest[len(_SCHEDULE_TAG) + 1 :]) or ParsedKey(KeyKind.UNKNOWN)
            name, closed, suffix = rest[1:].partition("}")
            if not name or not closed or (suffix and not suffix.startswith(":")) or name in RESERVED_QUEUE_NAMES:
                return ParsedKey(KeyKind.UNKNOWN)
            return _parse_queue_suffix(name, suffix[1:])
        name, _, suffix = rest.partition(":")
        if name in RESERVED_QUEUE_NAMES:
            return self._parse_structural(rest)
        if self.cluster_safe or not name:
            return ParsedKey(KeyKind.UNKNOWN)
        return _parse_queue_suffix(name, suffix)

    def _parse_structural(self, rest: str) -> ParsedKey | None:
        head, _, tail = rest.partition(":")
        if head not in RESERVED_QUEUE_NAMES:
            return None
        if rest == "active":
            return ParsedKey(KeyKind.GROUP_ACTIVE)
        if head == "pending" and tail:
            return ParsedKey(KeyKind.GROUP_PENDING, part=tail)
        if rest == "schedules":
            return ParsedKey(KeyKind.SCHEDULES)
        if head == "schedule" and tail:
            return ParsedKey(KeyKind.SCHEDULE, part=tail)
        if head == "lock" and tail.startswith("schedule:"):
            return ParsedKey(KeyKind.SCHEDULE_LOCK, part=tail[len("schedule:") :])
        if head == "worker" and tail:
            return ParsedKey(KeyKind.LEGACY_WORKER, part=tail)
        if rest == "logs:history":
            return ParsedKey(KeyKind.LOG_HISTORY)
        return ParsedKey(KeyKind.UNKNOWN)


def _outermost(*prefixes: str) -> tuple[str, ...]:
    """``<prefix>*`` for each prefix that does not start with another one (its keys are already matched)."""
    unique = sorted(set(prefixes))
    kept = [p for p in unique if not any(p != other and p.startswith(other) for other in unique)]
    return tuple(f"{prefix}*" for prefix in kept)


_QUEUE_SUFFIXES = {
    "": KeyKind.QUEUE,
    "delayed": KeyKind.DELAYED,
    "failed": KeyKind.FAILED,
    "active": KeyKind.ACTIVE_SET,
    "paused": KeyKind.PAUSED,
}


_LANE_SUFFIXES = {"delayed": KeyKind.DELAYED, "paused": KeyKind.PAUSED}
"""Per-lane keys: ``<lane>:delayed`` and ``<lane>:paused`` (``part`` is the lane)."""


def _parse_queue_suffix(name: str, suffix: str) -> ParsedKey:
    if suffix in _QUEUE_SUFFIXES:
        return ParsedKey(_QUEUE_SUFFIXES[suffix], queue=name)
    if suffix in PRIORITY_LANES:
        return ParsedKey(KeyKind.LANE, queue=name, part=suffix)
    head, _, tail = suffix.partition(":")
    if head in PRIORITY_LANES and tail in _LANE_SUFFIXES:
        return ParsedKey(_LANE_SUFFIXES[tail], queue=name, part=head)
    if head == "ratelimit" and tail:
        return ParsedKey(KeyKind.RATE_LIMIT, queue=name, part=tail)
    if head == "processing" and tail:
        return ParsedKey(KeyKind.PROCESSING, queue=name, part=tail)
    if head == "groups":
        if tail == "active":
            return ParsedKey(KeyKind.GROUP_ACTIVE, queue=name)
        group_head, _, group_id = tail.partition(":")
        if group_head == "pending" and group_id:
            return ParsedKey(KeyKind.GROUP_PENDING, queue=name, part=group_id)
    return ParsedKey(KeyKind.UNKNOWN, queue=name, part=suffix)


_ALERT_KEYS = {
    "states": KeyKind.ALERT_STATES,
    "outbox": KeyKind.ALERT_OUTBOX,
    "history": KeyKind.ALERT_HISTORY,
    "silences": KeyKind.ALERT_SILENCES,
    "mutes": KeyKind.ALERT_MUTES,
    "channels": KeyKind.ALERT_CHANNELS,
}


def _parse_alerts(rest: str) -> ParsedKey:
    """A key after ``<zenith prefix>alerts:`` (or ``{alerts}:``); a delivered marker's part is ``<id>:<channel>``."""
    head, _, tail = rest.partition(":")
    if head == "delivered" and tail:
        return ParsedKey(KeyKind.ALERT_DELIVERED, part=tail)
    return ParsedKey(_ALERT_KEYS.get(rest, KeyKind.UNKNOWN))


def _parse_pulse(rest: str, kind: KeyKind) -> ParsedKey:
    service, _, node_id = rest.partition(":")
    if service and node_id:
        return ParsedKey(kind, part=rest)
    return ParsedKey(KeyKind.UNKNOWN)


_PARSERS: tuple[Callable[[KeySpace, str], ParsedKey | None], ...] = (
    KeySpace._parse_console,
    lambda space, rest: _parse_pulse(rest, KeyKind.PULSE),
    lambda space, rest: _parse_pulse(rest, KeyKind.LEGACY_PULSE),
    KeySpace._parse_settings,
    KeySpace._parse_zenith,
    KeySpace._parse_queue,
)
"""Parsers in the order of the prefixes :meth:`KeySpace.parse` lists."""


@lru_cache(maxsize=64)
def _parse_plan(
    prefixes: tuple[str, ...],
) -> tuple[tuple[str, Callable[[KeySpace, str], ParsedKey | None]], ...]:
    """The prefixes with their parsers, longest prefix first (computed once per set of prefixes)."""
    order = sorted(range(len(prefixes)), key=lambda index: -len(prefixes[index]))
    return tuple((prefixes[index], _PARSERS[index]) for index in order)
