"""What a console needs to know: Redis, key prefixes, the archive, API tokens and trusted origins."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from zenith_sdk._env import ZenithEnv

__all__ = ["ConsoleSettings"]


class ConsoleSettings(ZenithEnv):
    """Settings of one console; arguments override ``ZENITH_*`` variables.

    Args:
        redis_url: the Redis to show (``ZENITH_REDIS_URL``, else ``REDIS_URL``).
        title: the name shown in the page header (say ``production``).
        actor: who operator actions taken in the browser are recorded as.
        api_tokens: bearer tokens for API clients, ``name=token`` (``ZENITH_API_TOKENS``, a JSON list);
            a call with a valid token acts as ``name`` and needs no cross-site token.
        trusted_origins: origins besides the console's own allowed to send changes (a proxy's public URL).
        overview_interval_s: the queue overview is computed at most this often, whoever asks.
        metrics_detailed_labels: ``/metrics`` also reports per worker and per job name (more series).
    """

    title: str = "Zenith"
    actor: str = "console"
    api_tokens: list[SecretStr] = Field(default_factory=list)
    trusted_origins: list[str] = Field(default_factory=list)
    overview_interval_s: float = Field(default=2.0, gt=0)
    metrics_detailed_labels: bool = False

    @field_validator("api_tokens")
    @classmethod
    def _named(cls, tokens: list[SecretStr]) -> list[SecretStr]:
        for token in tokens:
            name, sep, secret = token.get_secret_value().partition("=")
            if not (name and sep and len(secret) >= 16):
                raise ValueError("each API token is name=secret with a secret of at least 16 characters")
        return tokens

    @field_validator("trusted_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not origin.startswith(("http://", "https://")) or origin.rstrip("/").count("/") != 2:
                raise ValueError(f"a trusted origin is scheme://host[:port], got {origin!r}")
        return [origin.rstrip("/") for origin in origins]

    def token_names(self) -> dict[str, str]:
        """Each API token's secret mapped to its name."""
        pairs = (token.get_secret_value().partition("=") for token in self.api_tokens)
        return {secret: name for name, _sep, secret in pairs}
