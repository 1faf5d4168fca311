"""Which subjects a rule covers, and which alerts silences, mute windows and inhibition keep quiet.

Globs are ``fnmatch`` patterns (``*``, ``?``, ``[..]``), case-sensitive, matched against the
whole name. Pure functions: the clock is always an argument.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from zenith_protocol import (
    AlertState,
    AlertStatus,
    AlertType,
    InvalidScheduleError,
    MuteWindow,
    Silence,
    SilenceMatchers,
)
from zenith_sdk.schedules import previous_run_ms

__all__ = [
    "INHIBITED_PREFIX",
    "NODE_RESOURCE_TYPES",
    "AlertLabels",
    "active_mutes",
    "glob_matches",
    "inhibitors",
    "is_glob",
    "matcher",
    "matchers_match",
    "mute_active",
    "select",
    "select_any",
    "silence_active",
    "silenced_by",
]

INHIBITED_PREFIX = "inhibited:"
"""``silencedBy`` of an alert kept quiet by a firing ``node_down`` rule: ``inhibited:<rule id>``."""
NODE_RESOURCE_TYPES = frozenset({AlertType.NODE_CPU, AlertType.NODE_RAM, AlertType.NODE_DISK})
"""Rule types a firing ``node_down`` alert of the same node inhibits."""


@dataclass(frozen=True)
class AlertLabels:
    """What silence and mute matchers are compared with; an absent label reads as ``""``."""

    rule: str
    severity: str
    queue: str | None = None
    service: str | None = None


_GLOB_CHAR = re.compile(r"[*?\[]").search


def is_glob(pattern: str) -> bool:
    """True if ``pattern`` has a glob character; a plain name matches only itself."""
    return _GLOB_CHAR(pattern) is not None


@lru_cache(maxsize=1024)
def _prefix(pattern: str) -> str | None:
    """``prefix`` when ``pattern`` is ``prefix*`` (the common scope), else None."""
    head, star, tail = pattern.partition("*")
    return head if star and not tail and not is_glob(head) else None


@lru_cache(maxsize=1024)
def matcher(pattern: str) -> Callable[[str], bool]:
    """A test of names against ``pattern``: equality for a plain name, a prefix test for
    ``prefix*``, else the glob's regular expression."""
    if not is_glob(pattern):
        return pattern.__eq__
    head = _prefix(pattern)
    if head is not None:
        return lambda text: text.startswith(head)
    match = re.compile(fnmatch.translate(pattern)).match
    return lambda text: match(text) is not None


def glob_matches(pattern: str | None, value: str | None) -> bool:
    """Whether ``value`` matches ``pattern``; no pattern matches anything, no value reads as ``""``."""
    return pattern is None or matcher(pattern)(value or "")


def select(pattern: str | None, names: Iterable[str]) -> list[str]:
    """The ``names`` that ``pattern`` matches, in their order (all of them for no pattern)."""
    if pattern is None:
        return list(names)
    head = _prefix(pattern)
    if head is not None:  # evaluations test thousands of names against each rule: no call per name
        return [name for name in names if name.startswith(head)]
    keep = matcher(pattern)
    return [name for name in names if keep(name)]


def select_any(patterns: Iterable[str | None], names: Iterable[str]) -> list[str]:
    """The ``names`` that at least one of ``patterns`` matches, in their order (all for a ``None``)."""
    given = list(dict.fromkeys(patterns))
    if None in given:
        return list(names)
    prefixes = tuple(head for head in map(_prefix, given) if head is not None)
    tests = [matcher(pattern) for pattern in given if pattern is not None and _prefix(pattern) is None]
    return [name for name in names if name.startswith(prefixes) or any(test(name) for test in tests)]


def matchers_match(matchers: SilenceMatchers, labels: AlertLabels) -> bool:
    """True if every matcher that is given matches its label."""
    return (
        glob_matches(matchers.rule, labels.rule)
        and glob_matches(matchers.queue, labels.queue)
        and glob_matches(matchers.service, labels.service)
        and glob_matches(matchers.severity, labels.severity)
    )


def silence_active(silence: Silence, now_ms: int) -> bool:
    """True from ``startsAt`` (inclusive) to ``endsAt`` (exclusive)."""
    return silence.starts_at_ms <= now_ms < silence.ends_at_ms


def mute_active(window: MuteWindow, now_ms: int) -> bool:
    """True when the latest time the window's cron names (in its zone) is at most ``durationMinutes`` ago.

    Raises:
        InvalidScheduleError: the cron expression or the time zone cannot be used.
    """
    if len(window.cron.split()) != 5:
        raise InvalidScheduleError(window.id, "cron", window.cron, "a mute window's cron has 5 fields")
    started_ms = previous_run_ms(window.cron, now_ms, window.timezone, schedule_id=window.id)
    return now_ms < started_ms + window.duration_minutes * 60_000


def active_mutes(windows: Iterable[MuteWindow], now_ms: int) -> tuple[list[MuteWindow], list[str]]:
    """The windows active at ``now_ms``, sorted by id, and one line per window that cannot be read."""
    active: list[MuteWindow] = []
    problems: list[str] = []
    for window in sorted(windows, key=lambda item: item.id):
        try:
            if mute_active(window, now_ms):
                active.append(window)
        except InvalidScheduleError as exc:
            problems.append(f"mute window {window.id!r} is ignored: {exc}")
    return active, problems


def silenced_by(
    labels: AlertLabels,
    silences: Iterable[Silence],
    mutes: Iterable[MuteWindow],
    now_ms: int,
    *,
    inhibitor: str | None = None,
) -> str | None:
    """What keeps an alert quiet: an active silence's id, else an active mute window's, else ``inhibited:<rule>``.

    Args:
        silences: every silence (inactive ones are skipped); the lowest matching id wins.
        mutes: the windows active now (see :func:`active_mutes`).
        inhibitor: id of a firing ``node_down`` rule of the alert's node, if any.
    """
    for silence in sorted(silences, key=lambda item: item.id):
        if silence_active(silence, now_ms) and matchers_match(silence.matchers, labels):
            return silence.id
    for window in mutes:
        if matchers_match(window.matchers, labels):
            return window.id
    return None if inhibitor is None else INHIBITED_PREFIX + inhibitor


def inhibitors(node_down_states: Mapping[tuple[str, str], AlertState]) -> dict[str, str]:
    """Node subject -> id of the first (by id) ``node_down`` rule firing for it."""
    out: dict[str, str] = {}
    for (rule_id, subject), state in sorted(node_down_states.items()):
        if state.state is AlertStatus.FIRING:
            out.setdefault(subject, rule_id)
    return out
