"""Settings every entry point reads from the environment (``ZENITH_*``; ``REDIS_URL`` also works)."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from zenith_protocol import KeySpace
from zenith_sdk.connection import DEFAULT_REDIS_URL

__all__ = ["PREFIX_FIELDS", "ZenithEnv"]

PREFIX_FIELDS = (
    "queue_prefix",
    "console_prefix",
    "pulse_prefix",
    "legacy_pulse_prefix",
    "command_prefix",
    "settings_prefix",
    "zenith_prefix",
)
"""The key-prefix settings, named as :class:`~zenith_protocol.KeySpace` names them."""


class ZenithEnv(BaseSettings):
    """Where Redis is, its key prefixes and the SQL archive; arguments override ``ZENITH_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="ZENITH_", extra="forbid", populate_by_name=True)

    redis_url: str = Field(default=DEFAULT_REDIS_URL, validation_alias=AliasChoices("ZENITH_REDIS_URL", "REDIS_URL"))
    queue_prefix: str | None = None
    console_prefix: str | None = None
    pulse_prefix: str | None = None
    legacy_pulse_prefix: str | None = None
    command_prefix: str | None = None
    settings_prefix: str | None = None
    zenith_prefix: str | None = None
    cluster_safe: bool = False
    archive_url: str | None = None
    """The SQL archive (``ZENITH_ARCHIVE_URL``); else the zero-config SQLite file."""

    def keyspace(self, **overrides: Any) -> KeySpace:
        """The key space these settings name; ``overrides`` (prefixes, ``cluster_safe``) win when not ``None``."""
        values: dict[str, Any] = {name: getattr(self, name) for name in PREFIX_FIELDS if getattr(self, name)}
        values["cluster_safe"] = self.cluster_safe
        values.update({name: value for name, value in overrides.items() if value is not None})
        return KeySpace(**values)
