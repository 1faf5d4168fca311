"""Alert rules, alert states and transitions, notifications, silences, mute windows and channel settings."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, ClassVar

from pydantic import (
    Field,
    PlainSerializer,
    SecretStr,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from zenith_protocol._types import EpochMs, JsFloat, NonNegativeInt, ProtocolVersion, WireModel
from zenith_protocol.version import PROTOCOL_VERSION

__all__ = [
    "DEFAULT_ALERT_RULES",
    "FIRES_BELOW_THRESHOLD",
    "DEFAULT_CHANNEL_RETRIES",
    "DEFAULT_CHANNEL_TIMEOUT_S",
    "DEFAULT_WINDOW_MINUTES",
    "SUBJECT_ALL",
    "AlertChannels",
    "AlertConfig",
    "AlertEvent",
    "AlertRule",
    "AlertState",
    "AlertStatus",
    "AlertType",
    "ChannelHealth",
    "EmailChannel",
    "EmailSecurity",
    "MessageTemplates",
    "MuteWindow",
    "Notification",
    "NotificationKind",
    "NotificationSubject",
    "Severity",
    "Silence",
    "SilenceMatchers",
    "Transition",
    "WebhookChannel",
    "WebhookEndpoint",
    "notification_id",
]

DEFAULT_WINDOW_MINUTES = 5
"""Window of ``failure_count`` and ``failure_ratio`` rules when the rule names none."""
DEFAULT_CHANNEL_TIMEOUT_S = 5.0
"""Per-attempt timeout of a channel when its settings name none."""
DEFAULT_CHANNEL_RETRIES = 2
"""Retries after a failed attempt when a channel's settings name none."""
SUBJECT_ALL = "all"
"""Subject of a rule about the whole deployment (``worker_lost`` without a queue)."""


class AlertType(str, Enum):
    """What a rule watches."""

    BACKLOG = "backlog"
    FAILURE = "failure"
    WORKER_LOST = "worker_lost"
    NODE_CPU = "node_cpu"
    NODE_RAM = "node_ram"
    NODE_DISK = "node_disk"
    LATENCY = "latency"
    FAILURE_COUNT = "failure_count"
    FAILURE_RATIO = "failure_ratio"
    STUCK_JOB = "stuck_job"
    NODE_DOWN = "node_down"
    SCHEDULE_MISSED = "schedule_missed"
    CHANNEL_FAILING = "channel_failing"
    ARCHIVE_LAG = "archive_lag"


FIRES_BELOW_THRESHOLD = frozenset({AlertType.WORKER_LOST})
"""Rule types whose condition is value < threshold; every other type fires at value >= threshold."""


class Severity(str, Enum):
    """How urgent an alert event is."""

    WARNING = "warning"
    CRITICAL = "critical"


class _Additive(WireModel):
    """A model whose fields added to an existing structure are written only when they differ from their default.

    What the Node console wrote therefore encodes back byte for byte, and what it reads back
    carries only the fields someone set.
    """

    _OMITTED_AT_DEFAULT: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _omit_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in self._OMITTED_AT_DEFAULT:
            info = type(self).model_fields[name]
            if getattr(self, name) == info.get_default(call_default_factory=True):
                data.pop(info.alias or name, None)
                data.pop(name, None)
        return data


_OpenSeverity = Annotated[Severity | str, Field(union_mode="left_to_right")]
_OpenType = Annotated[AlertType | str, Field(union_mode="left_to_right")]


class AlertRule(_Additive):
    """One rule; unknown rule types from newer writers are kept as text (and skipped by evaluators)."""

    _OMITTED_AT_DEFAULT = frozenset({"severity", "for_s", "keep_firing_for_s", "window_minutes", "enabled"})

    id: str = Field(min_length=1)
    name: str
    type: _OpenType
    threshold: JsFloat
    queue: str | None = Field(default=None, description="glob over queue names (fnmatch); absent = every queue")
    cooldown_minutes: JsFloat = Field(default=30, alias="cooldownMinutes", ge=0)
    severity: _OpenSeverity = Severity.WARNING
    service: str | None = Field(default=None, description="glob over pulse services; absent = every service")
    for_s: JsFloat = Field(default=0, alias="forSeconds", ge=0, description="how long the condition must hold")
    keep_firing_for_s: JsFloat = Field(
        default=0, alias="keepFiringForSeconds", ge=0, description="how long to stay firing after the condition stops"
    )
    repeat_minutes: JsFloat | None = Field(
        default=None, alias="repeatMinutes", gt=0, description="re-notify interval; absent = cooldownMinutes"
    )
    window_minutes: int = Field(default=DEFAULT_WINDOW_MINUTES, alias="windowMinutes", gt=0, le=10_080)
    channels: list[str] | None = Field(default=None, description="channel names; absent = every enabled channel")
    runbook_url: str | None = Field(default=None, alias="runbookUrl")
    description: str | None = None
    enabled: bool = True

    @property
    def repeat_interval_ms(self) -> int | None:
        """Milliseconds between two notifications of one firing alert; ``None`` when it never repeats."""
        minutes = self.repeat_minutes if self.repeat_minutes is not None else self.cooldown_minutes
        return round(minutes * 60_000) if minutes > 0 else None


DEFAULT_ALERT_RULES: tuple[AlertRule, ...] = (
    AlertRule(id="high_failure", name="High failure count", type=AlertType.FAILURE, threshold=50, cooldown_minutes=30),
    AlertRule(id="high_backlog", name="Queue backlog", type=AlertType.BACKLOG, threshold=1000, cooldown_minutes=60),
    AlertRule(id="no_workers", name="No workers online", type=AlertType.WORKER_LOST, threshold=1, cooldown_minutes=15),
)
"""What an absent rules key means: failures >= 50, backlog >= 1000, fewer than 1 worker."""


class AlertEvent(WireModel):
    """One fired alert."""

    rule_id: str = Field(alias="ruleId")
    timestamp: EpochMs
    message: str
    severity: _OpenSeverity
    protocol_version: ProtocolVersion = PROTOCOL_VERSION


# -- states, transitions, notifications ------------------------------------------------------------


class AlertStatus(str, Enum):
    """State of one (rule, subject)."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"
    NO_DATA = "no_data"
    ERROR = "error"


class NotificationKind(str, Enum):
    """Why a notification goes out."""

    FIRING = "firing"
    REPEAT = "repeat"
    RESOLVED = "resolved"
    NO_DATA = "no_data"


class AlertState(WireModel):
    """The state of one rule for one subject, as the states hash stores it."""

    state: AlertStatus
    seq: NonNegativeInt = Field(default=0, description="+1 on every change of the record; 0 = never written")
    since_ms: EpochMs = Field(alias="since", description="when the current state began")
    active_since_ms: EpochMs | None = Field(
        default=None, alias="activeSince", description="when the condition began to hold (pending, firing)"
    )
    recovering_since_ms: EpochMs | None = Field(
        default=None, alias="recoveringSince", description="when the condition stopped while firing"
    )
    value: JsFloat | None = None
    threshold: JsFloat | None = None
    notified: bool = Field(default=False, description="the current firing has been notified")
    last_notified_ms: EpochMs | None = Field(default=None, alias="lastNotifiedMs")
    silenced_by: str | None = Field(
        default=None, alias="silencedBy", description='silence or mute window id, or "inhibited:<rule id>"'
    )
    protocol_version: ProtocolVersion = PROTOCOL_VERSION


class Transition(WireModel):
    """One change of an alert state, as the history list and the lifecycle stream record it."""

    rule_id: str = Field(alias="ruleId")
    subject: str
    from_state: AlertStatus = Field(alias="fromState")
    to_state: AlertStatus = Field(alias="toState")
    seq: NonNegativeInt = Field(description="the state's new seq")
    at_ms: EpochMs = Field(alias="at")
    value: JsFloat | None = None
    threshold: JsFloat | None = None
    kind: NotificationKind | None = Field(default=None, description="the notification it caused; absent = none")
    silenced_by: str | None = Field(default=None, alias="silencedBy")
    protocol_version: ProtocolVersion = PROTOCOL_VERSION


class NotificationSubject(WireModel):
    """One subject of a grouped notification."""

    subject: str
    value: JsFloat | None = None
    since_ms: EpochMs | None = Field(default=None, alias="since", description="when the condition began to hold")
    duration_s: JsFloat | None = Field(default=None, alias="durationS", description="resolved: how long it fired")
    seq: NonNegativeInt | None = Field(default=None, description="the subject's state seq after this change")


class Notification(WireModel):
    """What the outbox carries: one rule's changes of one kind in one evaluation, its subjects grouped."""

    id: str = Field(min_length=1, description='idempotency key "<ruleId>:<first subject>:<its seq>"')
    rule_id: str = Field(alias="ruleId")
    rule_name: str = Field(alias="ruleName")
    type: _OpenType
    kind: NotificationKind
    severity: _OpenSeverity = Severity.WARNING
    at_ms: EpochMs = Field(alias="at")
    threshold: JsFloat | None = None
    runbook_url: str | None = Field(default=None, alias="runbookUrl")
    description: str | None = None
    channels: list[str] = Field(default_factory=list, description="channel names; empty = every enabled channel")
    subjects: list[NotificationSubject] = Field(default_factory=list, description="sorted by subject")
    protocol_version: ProtocolVersion = PROTOCOL_VERSION


def notification_id(rule_id: str, subject: str, seq: int) -> str:
    """The idempotency key of a notification whose first subject is ``subject`` at state ``seq``."""
    return f"{rule_id}:{subject}:{seq}"


# -- silences and mute windows ---------------------------------------------------------------------


class SilenceMatchers(WireModel):
    """Globs an alert must all match; an absent matcher matches anything."""

    rule: str | None = Field(default=None, description="glob over rule ids")
    queue: str | None = Field(default=None, description="glob over queue names")
    service: str | None = Field(default=None, description="glob over pulse services")
    severity: str | None = Field(default=None, description="glob over severities")


class Silence(WireModel):
    """Mutes matching alerts from ``startsAt`` (inclusive) to ``endsAt`` (exclusive)."""

    id: str = Field(min_length=1)
    matchers: SilenceMatchers = Field(default_factory=SilenceMatchers)
    author: str = ""
    comment: str = ""
    starts_at_ms: EpochMs = Field(alias="startsAt")
    ends_at_ms: EpochMs = Field(alias="endsAt")
    created_at_ms: EpochMs | None = Field(default=None, alias="createdAt")
    protocol_version: ProtocolVersion = PROTOCOL_VERSION


class MuteWindow(WireModel):
    """Mutes matching alerts for ``durationMinutes`` after each time a cron expression names."""

    id: str = Field(min_length=1)
    cron: str = Field(min_length=1, description="five-field cron expression")
    duration_minutes: JsFloat = Field(alias="durationMinutes", gt=0)
    timezone: str = Field(default="UTC", description="IANA zone the cron expression is read in")
    matchers: SilenceMatchers = Field(default_factory=SilenceMatchers)
    comment: str = ""
    protocol_version: ProtocolVersion = PROTOCOL_VERSION


class ChannelHealth(WireModel):
    """Delivery record of one channel."""

    last_success_ms: EpochMs | None = Field(default=None, alias="lastSuccessMs")
    last_error: str | None = Field(default=None, alias="lastError", description="redacted")
    consecutive_failures: NonNegativeInt = Field(default=0, alias="consecutiveFailures")
    last_attempt_ms: EpochMs | None = Field(default=None, alias="lastAttemptMs")
    protocol_version: ProtocolVersion = PROTOCOL_VERSION


# -- channel settings ------------------------------------------------------------------------------

_Secret = Annotated[SecretStr, PlainSerializer(lambda secret: secret.get_secret_value(), return_type=str)]
_TimeoutS = Annotated[JsFloat, Field(alias="timeoutSeconds", gt=0, description="per attempt")]
_Retries = Annotated[int, Field(ge=0, le=100, description="attempts after the first")]
_DELIVERY_FIELDS = frozenset({"timeout_s", "retries"})


class MessageTemplates(WireModel):
    """Jinja2 templates (rendered sandboxed) of a message's title and body; absent = the default."""

    title: str | None = None
    body: str | None = None


class EmailSecurity(str, Enum):
    """How an SMTP connection is protected."""

    STARTTLS = "starttls"
    SSL = "ssl"
    NONE = "none"
    AUTO = "auto"
    """STARTTLS when the server offers it, else plain: what the Node console's mailer did."""


class WebhookChannel(_Additive):
    """A Slack or Discord incoming webhook."""

    _OMITTED_AT_DEFAULT = _DELIVERY_FIELDS

    enabled: bool = False
    webhook_url: str | None = Field(default=None, alias="webhookUrl", repr=False)  # a credential itself
    timeout_s: _TimeoutS = DEFAULT_CHANNEL_TIMEOUT_S
    retries: _Retries = DEFAULT_CHANNEL_RETRIES
    templates: MessageTemplates | None = None


class EmailChannel(_Additive):
    """SMTP settings; the password is a secret and never shows in a repr."""

    _OMITTED_AT_DEFAULT = _DELIVERY_FIELDS

    enabled: bool = False
    smtp_host: str | None = Field(default=None, alias="smtpHost")
    smtp_port: NonNegativeInt | None = Field(default=None, alias="smtpPort")
    smtp_user: str | None = Field(default=None, alias="smtpUser")
    smtp_pass: _Secret | None = Field(default=None, alias="smtpPass")
    from_address: str | None = Field(default=None, alias="from")
    to: str | None = Field(default=None, description="recipients, comma-separated")
    security: Annotated[EmailSecurity | str, Field(union_mode="left_to_right")] | None = Field(
        default=None, description="absent: ssl on port 465, else auto (STARTTLS when offered)"
    )
    timeout_s: _TimeoutS = DEFAULT_CHANNEL_TIMEOUT_S
    retries: _Retries = DEFAULT_CHANNEL_RETRIES
    templates: MessageTemplates | None = None

    @field_validator("to", mode="before")
    @classmethod
    def _list_to_text(cls, value: Any) -> Any:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return ", ".join(value)
        return value

    @field_validator("smtp_port", mode="before")
    @classmethod
    def _port_from_text(cls, value: Any) -> Any:
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @property
    def effective_security(self) -> EmailSecurity | str:
        """``security`` as given, else ``ssl`` on port 465 and ``auto`` (STARTTLS when offered) on any other port.

        Settings the Node console saved have no ``security``: they keep working with a server that
        offers no STARTTLS, as they did there.
        """
        if self.security is not None:
            return self.security
        return EmailSecurity.SSL if self.smtp_port == 465 else EmailSecurity.AUTO


class WebhookEndpoint(_Additive):
    """A generic JSON webhook signed in the Standard Webhooks scheme; its channel name is ``webhook:<name>``."""

    _OMITTED_AT_DEFAULT = _DELIVERY_FIELDS

    name: str = Field(min_length=1)
    enabled: bool = True
    url: str = Field(repr=False)  # may carry a token
    secret: _Secret | None = Field(default=None, description='signing key "whsec_<base64>"')
    timeout_s: _TimeoutS = DEFAULT_CHANNEL_TIMEOUT_S
    retries: _Retries = DEFAULT_CHANNEL_RETRIES
    templates: MessageTemplates | None = None


class AlertChannels(_Additive):
    """Where notifications go."""

    _OMITTED_AT_DEFAULT = frozenset({"webhooks"})

    slack: WebhookChannel | None = None
    discord: WebhookChannel | None = None
    email: EmailChannel | None = None
    webhooks: list[WebhookEndpoint] = Field(default_factory=list)


class AlertConfig(WireModel):
    """Notification settings stored at ``{settings}alerts:config``."""

    channels: AlertChannels = Field(default_factory=AlertChannels)
    templates: MessageTemplates | None = None
    protocol_version: ProtocolVersion = PROTOCOL_VERSION
