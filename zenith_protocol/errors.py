"""Every error Zenith raises on purpose.

The tree::

    ZenithError                      root: catch this to catch anything Zenith raises on purpose
     ├── ProtocolError               a Redis value or message does not decode (carries the raw input)
     ├── ConfigError                 an option, URL or prefix is unusable (also a ValueError)
     ├── NotFoundError               a queue, job or schedule that does not exist (also a LookupError)
     ├── InvalidScheduleError        a schedule's cron expression or time zone is unusable (also a ValueError)
     ├── ConflictError               a compare-and-set edit kept losing to concurrent writers
     ├── QuerySyntaxError            a search query does not parse (also a ValueError; carries the position)
     └── UnsupportedQueryError       a query that parses but this back end cannot evaluate (also a ValueError)

Later packages add their errors under this root, in this module, so that one
``except ZenithError`` keeps covering everything.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "ConfigError",
    "ConflictError",
    "ErrorKind",
    "InvalidScheduleError",
    "NotFoundError",
    "ProtocolError",
    "QuerySyntaxError",
    "UnsupportedQueryError",
    "ZenithError",
]

_RAW_PREVIEW_CHARS = 120


class ZenithError(Exception):
    """Root of every error Zenith raises on purpose."""


class ErrorKind(str, Enum):
    """Why a value failed to decode; golden vectors name these."""

    INVALID_ENCODING = "invalid_encoding"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    INVALID_VALUE = "invalid_value"
    UNSUPPORTED_VERSION = "unsupported_version"


class ProtocolError(ZenithError):
    """A value read from Redis (or a channel) does not decode as the structure expected.

    Attributes:
        structure: the structure being decoded, e.g. ``"job"`` or ``"heartbeat"``.
        kind: an :class:`ErrorKind` saying what is wrong.
        reason: a sentence a person can act on.
        raw: the exact input, kept so nothing is lost.
        field: the offending field path (``"memory.rss"``), when one is to blame.
    """

    def __init__(
        self,
        structure: str,
        kind: ErrorKind,
        reason: str,
        *,
        raw: object = None,
        field: str | None = None,
    ) -> None:
        self.structure = structure
        self.kind = kind
        self.reason = reason
        self.raw = raw
        self.field = field
        preview = repr(raw)
        if len(preview) > _RAW_PREVIEW_CHARS:
            preview = preview[:_RAW_PREVIEW_CHARS] + "..."
        super().__init__(f"invalid {structure} ({kind.value}): {reason}; raw input: {preview}")


class ConfigError(ZenithError, ValueError):
    """An option, URL or prefix cannot be used; the message says which and why."""


class NotFoundError(ZenithError, LookupError):
    """A queue, job or schedule named by the caller does not exist.

    Attributes:
        what: the kind of thing, e.g. ``"queue"``.
        name: the name or id the caller gave.
    """

    def __init__(self, what: str, name: str, *, hint: str = "") -> None:
        self.what = what
        self.name = name
        message = f"{what} {name!r} not found"
        super().__init__(f"{message}; {hint}" if hint else message)


class InvalidScheduleError(ZenithError, ValueError):
    """A schedule's cron expression or time zone cannot be used; the message names which and why.

    Attributes:
        schedule_id: the schedule concerned.
        field: ``"cron"`` or ``"timezone"``.
        value: the rejected value.
        reason: why it was rejected.
    """

    def __init__(self, schedule_id: str, field: str, value: str, reason: str) -> None:
        self.schedule_id = schedule_id
        self.field = field
        self.value = value
        self.reason = reason
        hint = {
            "cron": "use five fields: minute hour day-of-month month day-of-week, e.g. '0 3 * * *'",
            "timezone": "use an IANA zone name such as 'Europe/Berlin' or 'UTC'",
        }.get(field, "")
        message = f"schedule {schedule_id!r}: invalid {field} {value!r}: {reason}"
        super().__init__(f"{message}; {hint}" if hint else message)


class ConflictError(ZenithError):
    """A compare-and-set edit found the value changed by another writer every time it tried.

    Attributes:
        what: what was being edited, e.g. ``"alert rules"``.
        attempts: how many times the edit was tried.
    """

    def __init__(self, what: str, attempts: int) -> None:
        self.what = what
        self.attempts = attempts
        super().__init__(
            f"{what} changed under this edit {attempts} times in a row (other writers are editing them); "
            "read them again and retry"
        )


class QuerySyntaxError(ZenithError, ValueError):
    """A search query does not parse; the message says what to write instead.

    Attributes:
        reason: what is wrong, as a sentence.
        position: the 0-based index in the query text where the problem starts.
    """

    def __init__(self, reason: str, position: int) -> None:
        self.reason = reason
        self.position = position
        super().__init__(f"query syntax error at character {position + 1}: {reason}")


class UnsupportedQueryError(ZenithError, ValueError):
    """A query that parses, but holds a construct the back end asked cannot evaluate.

    Attributes:
        construct: the construct, as written in the query (``state:completed``).
        reason: why it cannot be evaluated here and what to do instead.
    """

    def __init__(self, construct: str, reason: str) -> None:
        self.construct = construct
        self.reason = reason
        super().__init__(f"cannot evaluate {construct!r} here: {reason}")
