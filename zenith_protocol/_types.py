"""Field types shared by the wire models: epoch milliseconds, ISO timestamps, the base model."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from zenith_protocol._json import MAX_SAFE_INTEGER

__all__ = [
    "EpochMs",
    "IsoTimestamp",
    "JsFloat",
    "NonNegativeInt",
    "ProtocolVersion",
    "SafeInt",
    "WireModel",
    "epoch_ms",
    "format_iso",
    "parse_iso",
    "utc_ms",
]


def utc_ms(moment: datetime) -> datetime:
    """Return ``moment`` in UTC, truncated to whole milliseconds (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def format_iso(moment: datetime) -> str:
    """ISO-8601 with milliseconds and ``Z``, as JavaScript's ``Date.toISOString()`` writes it."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _js_number(value: float) -> float | int:
    """Whole floats below 1e21 as integers, with the digits JavaScript prints (``1e16`` -> ``10000000000000000``)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < _JS_EXPONENT_FROM:
        return int(Decimal(repr(value)))
    return value


_JS_EXPONENT_FROM = 1e21

JsFloat = Annotated[float, PlainSerializer(_js_number, when_used="json")]
"""A float written the JavaScript way: no ``.0`` on whole numbers."""

EpochMs = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER, description="Unix epoch milliseconds")]
NonNegativeInt = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
SafeInt = Annotated[int, Field(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
"""Integer fields hold values a JavaScript reader represents exactly: magnitude at most 2^53 - 1 (2.2)."""


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_ISO = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.(?P<fraction>[0-9]+))?"
    r"(?P<offset>Z|[+-][0-9]{2}:[0-9]{2})?",
    re.ASCII,
)
"""The date-times a reader accepts (2.4): ``YYYY-MM-DDTHH:MM:SS``, a fraction, ``Z`` or ``±HH:MM`` or nothing."""


def parse_iso(text: str) -> datetime:
    """Read an ISO-8601 date-time in the one grammar of the protocol (2.4), as UTC truncated to milliseconds.

    Raises:
        ValueError: ``text`` is not in that grammar, or names a date or time that does not exist.
    """
    match = _ISO.fullmatch(text)
    if match is None:
        raise ValueError(f"expected an ISO-8601 date-time such as 2026-01-01T00:00:05.123Z, got {text[:40]!r}")
    fraction = (match["fraction"] or "")[:3].ljust(3, "0")
    offset = match["offset"] or "Z"
    try:
        moment = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}")
        hours, minutes = (0, 0) if offset == "Z" else (int(offset[1:3]), int(offset[4:6]))
        if hours > 23 or minutes > 59:
            raise ValueError(f"offset {offset} is out of range")
        zone = timezone((-1 if offset[0] == "-" else 1) * timedelta(hours=hours, minutes=minutes))
        return moment.replace(tzinfo=zone).astimezone(timezone.utc)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{text[:40]!r} is not a date-time that exists ({exc})") from exc


def epoch_ms(moment: datetime) -> int:
    """``moment`` in whole epoch milliseconds (integer arithmetic: no float rounding)."""
    return (utc_ms(moment) - _EPOCH) // timedelta(milliseconds=1)


def _wire_moment(value: Any) -> Any:
    """An ISO field's wire value as a datetime: text in the ISO grammar, or a number of epoch milliseconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"a timestamp in epoch milliseconds must not be negative, got {value}")
        try:
            # Whole milliseconds, exactly: value / 1000 as a float loses the last millisecond after 2128.
            return _EPOCH + timedelta(milliseconds=int(value))
        except OverflowError as exc:
            raise ValueError(f"{value} epoch milliseconds is after the year 9999") from exc
    if isinstance(value, str):
        return parse_iso(value)
    return value


IsoTimestamp = Annotated[
    datetime,
    BeforeValidator(_wire_moment),
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


@cache
def _known_keys(model: type[BaseModel]) -> frozenset[str]:
    """Wire names of a model's fields, but ``protocolVersion`` (whose absence means something)."""
    return frozenset(info.alias or name for name, info in model.model_fields.items() if name != "protocol_version")


@cache
def wire_names(model: type[BaseModel]) -> dict[str, str]:
    """Wire name -> attribute name of every field of ``model``."""
    return {info.alias or name: name for name, info in model.model_fields.items()}


def _mentions_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_mentions_model(arg) for arg in get_args(annotation))


@cache
def model_fields_of(model: type[BaseModel]) -> tuple[str, ...]:
    """Attribute names of the fields of ``model`` that can hold models (directly or in a list)."""
    return tuple(name for name, info in model.model_fields.items() if _mentions_model(info.annotation))


class WireModel(BaseModel):
    """Base of every model that crosses Redis: camelCase on the wire, unknown fields kept, immutable."""

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        str_strip_whitespace=False,
        allow_inf_nan=False,
    )

    @model_validator(mode="before")
    @classmethod
    def _null_means_absent(cls, data: Any) -> Any:
        # Legacy writers keep explicit nulls; a null known field reads as the field's default.
        if isinstance(data, dict) and None in data.values():
            known = _known_keys(cls)
            return {key: value for key, value in data.items() if value is not None or key not in known}
        return data

    @property
    def is_legacy(self) -> bool:
        """True when a v1 writer (the Node system) wrote this value: it has no ``protocolVersion``."""
        return "protocol_version" in type(self).model_fields and getattr(self, "protocol_version", None) is None
