"""Alert rules, alert events and notification channel settings."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from pydantic import Field, PlainSerializer, SecretStr, field_validator

from zenith_protocol._types import EpochMs, JsFloat, NonNegativeInt, ProtocolVersion, WireModel
from zenith_protocol.version import PROTOCOL_VERSION

__all__ = [
    "DEFAULT_ALERT_RULES",
    "AlertChannels",
    "AlertConfig",
    "AlertEvent",
    "AlertRule",
    "AlertType",
    "EmailChannel",
    "Severity",
    "WebhookChannel",
]


class AlertType(str, Enum):
    """What a rule watches."""

    BACKLOG = "backlog"
    FAILURE = "failure"
    WORKER_LOST = "worker_lost"
    NODE_CPU = "node_cpu"
    NODE_RAM = "node_ram"
    NODE_DISK = "node_disk"


class Severity(str, Enum):
    """How urgent an alert event is."""

    WARNING = "warning"
    CRITICAL = "critical"


class AlertRule(WireModel):
    """One rule; unknown rule types from newer writers are kept as text."""

    id: str = Field(min_length=1)
    name: str
    type: Annotated[AlertType | str, Field(union_mode="left_to_right")]
    threshold: JsFloat
    queue: str | None = None
    cooldown_minutes: JsFloat = Field(default=30, alias="cooldownMinutes", ge=0)


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
    severity: Annotated[Severity | str, Field(union_mode="left_to_right")]
    protocol_version: ProtocolVersion = PROTOCOL_VERSION


_Secret = Annotated[SecretStr, PlainSerializer(lambda secret: secret.get_secret_value(), return_type=str)]


class WebhookChannel(WireModel):
    """A Slack or Discord incoming webhook."""

    enabled: bool = False
    webhook_url: str | None = Field(default=None, alias="webhookUrl")


class EmailChannel(WireModel):
    """SMTP settings; the password is a secret and never shows in a repr."""

    enabled: bool = False
    smtp_host: str | None = Field(default=None, alias="smtpHost")
    smtp_port: NonNegativeInt | None = Field(default=None, alias="smtpPort")
    smtp_user: str | None = Field(default=None, alias="smtpUser")
    smtp_pass: _Secret | None = Field(default=None, alias="smtpPass")
    from_address: str | None = Field(default=None, alias="from")
    to: str | None = Field(default=None, description="recipients, comma-separated")

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


class AlertChannels(WireModel):
    """Where notifications go."""

    slack: WebhookChannel | None = None
    discord: WebhookChannel | None = None
    email: EmailChannel | None = None


class AlertConfig(WireModel):
    """Notification settings stored at ``{settings}alerts:config``."""

    channels: AlertChannels = Field(default_factory=AlertChannels)
    protocol_version: ProtocolVersion = PROTOCOL_VERSION
