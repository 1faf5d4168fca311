"""Field types shared by the wire models: epoch milliseconds, ISO timestamps, the base model."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

__all__ = ["EpochMs", "IsoTimestamp", "NonNegativeInt", "ProtocolVersion", "WireModel", "format_iso", "utc_ms"]


def utc_ms(moment: datetime) -> datetime:
    """Return ``moment`` in UTC, truncated to whole milliseconds (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def format_iso(moment: datetime) -> str:
    """ISO-8601 with milliseconds and ``Z``, as JavaScript's ``Date.toISOString()`` writes it."""
    moment = utc_ms(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


EpochMs = Annotated[int, Field(ge=0, description="Unix epoch milliseconds")]
NonNegativeInt = Annotated[int, Field(ge=0)]
IsoTimestamp = Annotated[
    datetime,
    AfterValidator(utc_ms),
    PlainSerializer(format_iso, return_type=str, when_used="json-unless-none"),
    WithJsonSchema({"type": "string", "format": "date-time", "description": "ISO-8601 UTC with milliseconds"}),
]


ProtocolVersion = Annotated[
    int | None,
    Field(
        alias="protocolVersion", ge=1, description="Protocol major version of the writer; absent in legacy v1 input."
    ),
]
"""Type of the ``protocolVersion`` field; models default it to :data:`PROTOCOL_VERSION`."""


class WireModel(BaseModel):
    """Base of every model that crosses Redis: camelCase on the wire, unknown fields kept, immutable."""

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        str_strip_whitespace=False,
    )

    @property
    def is_legacy(self) -> bool:
        """True when a v1 writer (the Node system) wrote this value: it has no ``protocolVersion``."""
        return "protocol_version" in type(self).model_fields and getattr(self, "protocol_version", None) is None
