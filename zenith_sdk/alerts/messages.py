"""The text of a notification: default titles and bodies per kind, and user templates rendered in a sandbox.

Everything that comes from rules or Redis (rule names, subjects, runbook links) is data handed to a
template as a value; it is never compiled as a template itself. User templates run in Jinja2's
immutable sandbox with strict undefined names, and any error (syntax, unknown name, unsafe access)
makes that part fall back to the default text, with the reason in :attr:`Message.template_error`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from zenith_protocol.alerts import FIRES_BELOW_THRESHOLD, Notification, NotificationSubject

__all__ = [
    "MAX_LISTED_SUBJECTS",
    "Message",
    "default_body",
    "default_title",
    "footer",
    "human_duration",
    "iso_utc",
    "measure",
    "render_message",
    "template_context",
]

MAX_LISTED_SUBJECTS = 10
"""Subjects a message lists by name; the rest are counted ("and 40 more")."""

_MAX_TITLE_CHARS = 250
_UNITS = {
    "latency": "s",
    "stuck_job": "s",
    "node_down": "s",
    "schedule_missed": "s",
    "node_cpu": "%",
    "node_ram": "%",
    "node_disk": "%",
    "failure_ratio": "%",
}
_KIND_LABELS = {"firing": "FIRING", "repeat": "STILL FIRING", "resolved": "RESOLVED", "no_data": "NO DATA"}

_MAX_REPEAT = 100_000
_MAX_EXPONENT = 64
_MAX_POWER_BITS = 4096


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox that also refuses ``*`` and ``**`` results too large to build in memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, (int, float)):
            too_long = isinstance(left, int) and left.bit_length() * right > _MAX_POWER_BITS
            if abs(right) > _MAX_EXPONENT or too_long:
                raise SecurityError(
                    f"a power with more than {_MAX_POWER_BITS} bits or an exponent above {_MAX_EXPONENT}"
                )
        if operator == "*":
            sized, count = (left, right) if isinstance(left, (str, list, tuple)) else (right, left)
            if isinstance(sized, (str, list, tuple)) and isinstance(count, int) and len(sized) * count > _MAX_REPEAT:
                raise SecurityError(f"a repeated value would be longer than {_MAX_REPEAT}")
        return super().call_binop(context, operator, left, right)


_ENV = _Sandbox(undefined=StrictUndefined, autoescape=False)


@dataclass(frozen=True)
class Message:
    """A rendered notification: a one-line title, a body, and the footer carrying the idempotency key."""

    title: str
    body: str
    footer: str
    kind: str
    severity: str
    template_error: str | None = None
    """Why a user template was not used (the default text was), or None."""


def _text(value: object) -> str:
    return str(value.value) if isinstance(value, Enum) else str(value)


def iso_utc(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC to the second: ``2026-05-01T10:00:00Z``."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_duration(seconds: float) -> str:
    """A short duration as people write it: ``45s``, ``12m``, ``3h 5m``, ``2d 4h``."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "no value"
    shown = f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{shown}{unit}"


def measure(value: float | None, rule_type: Enum | str) -> str:
    """A rule's value or threshold with the unit of its type: ``47.62%``, ``90s``, ``1500``."""
    return _number(value, _UNITS.get(_text(rule_type), ""))


def _plain(value: float | None) -> float | int | None:
    """A whole float as an int, so that templates print ``1500``, not ``1500.0``."""
    return int(value) if value is not None and float(value).is_integer() else value


def _comparison(n: Notification) -> str:
    if n.threshold is None:
        return "not set"
    operator = "<" if _text(n.type) in FIRES_BELOW_THRESHOLD else ">="
    return f"{operator} {measure(n.threshold, n.type)}"


def _since(n: Notification, subject: NotificationSubject) -> str:
    if subject.since_ms is None:
        return ""
    return f" since {iso_utc(subject.since_ms)} (for {human_duration((n.at_ms - subject.since_ms) / 1000)})"


def _where(n: Notification) -> str:
    if len(n.subjects) == 1:
        return n.subjects[0].subject
    return f"{len(n.subjects)} subjects"


def default_title(n: Notification) -> str:
    """``[FIRING critical] Queue backlog: queue:emails`` (or ``: 50 subjects`` when it groups several)."""
    kind = _text(n.kind)
    label = _KIND_LABELS.get(kind, kind.upper())
    severity = "" if kind == "resolved" else f" {_text(n.severity)}"
    return f"[{label}{severity}] {n.rule_name}: {_where(n)}"


def _subject_line(n: Notification, subject: NotificationSubject) -> str:
    value = measure(subject.value, n.type)
    kind = _text(n.kind)
    if kind == "resolved":
        resolved = f"resolved at {iso_utc(n.at_ms)}"
        if subject.duration_s is None:
            return f"- {subject.subject}: {value}, {resolved}"
        began = iso_utc(n.at_ms - round(subject.duration_s * 1000))
        return f"- {subject.subject}: {value}, fired from {began} for {human_duration(subject.duration_s)}, {resolved}"
    if kind == "no_data":
        return f"- {subject.subject}: no data (last value {value}), firing{_since(n, subject)}"
    return f"- {subject.subject}: {value}{_since(n, subject)}"


def _headline(n: Notification) -> str:
    kind = _text(n.kind)
    what = f"{n.rule_name} ({_text(n.type)}, rule {n.rule_id})"
    if kind == "resolved":
        return f"{what} is resolved."
    if kind == "no_data":
        return f"{what} lost its data while firing: the subjects below vanished or could not be read."
    still = "still " if kind == "repeat" else ""
    return f"{what} is {still}firing, severity {_text(n.severity)}."


def default_body(n: Notification) -> str:
    """What fired, where, the value against the threshold, since when, and the runbook link, as plain text."""
    lines = [_headline(n)]
    if n.description:
        lines.append(n.description)
    lines.append(f"Threshold: {_comparison(n)}")
    listed = n.subjects[:MAX_LISTED_SUBJECTS]
    lines += [_subject_line(n, subject) for subject in listed]
    if len(n.subjects) > len(listed):
        lines.append(f"and {len(n.subjects) - len(listed)} more")
    if n.runbook_url:
        lines.append(f"Runbook: {n.runbook_url}")
    return "\n".join(lines)


def footer(n: Notification) -> str:
    """The line naming the notification's idempotency key and time, for receivers that deduplicate."""
    return f"zenith alert {n.id} at {iso_utc(n.at_ms)}"


def _subject_context(n: Notification, subject: NotificationSubject) -> dict[str, Any]:
    since = subject.since_ms
    return {
        "subject": subject.subject,
        "value": _plain(subject.value),
        "since": None if since is None else iso_utc(since),
        "since_ms": since,
        "for": None if since is None else human_duration((n.at_ms - since) / 1000),
        "duration_s": subject.duration_s,
        "lasted": None if subject.duration_s is None else human_duration(subject.duration_s),
    }


def template_context(n: Notification) -> dict[str, Any]:
    """The names a user template sees: plain values copied from the notification, never live objects."""
    subjects = [_subject_context(n, subject) for subject in n.subjects]
    return {
        "id": n.id,
        "rule_id": n.rule_id,
        "rule_name": n.rule_name,
        "type": _text(n.type),
        "kind": _text(n.kind),
        "severity": _text(n.severity),
        "at": iso_utc(n.at_ms),
        "at_ms": n.at_ms,
        "threshold": _plain(n.threshold),
        "comparison": _comparison(n),
        "runbook_url": n.runbook_url,
        "description": n.description,
        "subjects": subjects,
        "listed_subjects": subjects[:MAX_LISTED_SUBJECTS],
        "more_subjects": max(0, len(subjects) - MAX_LISTED_SUBJECTS),
        "default_title": default_title(n),
        "default_body": default_body(n),
        "footer": footer(n),
    }


@lru_cache(maxsize=128)
def _compiled(source: str) -> Template:
    return _ENV.from_string(source)


def _render(part: str, source: str | None, context: dict[str, Any], default: str) -> tuple[str, str | None]:
    if not source:
        return default, None
    try:
        return _compiled(source).render(context), None
    except (
        Exception
    ) as exc:  # a user template must never break delivery: the caller reports why, and the default goes out
        return default, f"the {part} template failed ({type(exc).__name__}: {exc}); the default {part} was used"


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_TITLE_CHARS else line[: _MAX_TITLE_CHARS - 1] + "…"


def render_message(n: Notification, *, title_template: str | None = None, body_template: str | None = None) -> Message:
    """Render ``n`` with the user's templates where given (and working), else with the default text.

    The title is folded onto one line (it becomes an email subject). A template that fails never
    raises: the default is used for that part and :attr:`Message.template_error` says why.
    """
    context = template_context(n)
    title, title_error = _render("title", title_template, context, context["default_title"])
    body, body_error = _render("body", body_template, context, context["default_body"])
    errors = [error for error in (title_error, body_error) if error]
    return Message(
        title=_one_line(title) or _one_line(context["default_title"]),
        body=body,
        footer=context["footer"],
        kind=context["kind"],
        severity=context["severity"],
        template_error="; ".join(errors) or None,
    )
