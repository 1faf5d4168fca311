"""Connection settings: the keywords ``from_url`` takes are the settings' fields."""

from __future__ import annotations

import pydantic
import pytest

from zenith_sdk.connection import RedisOptions, RedisSettings


def test_from_url_takes_every_setting_as_a_keyword_and_nothing_else() -> None:
    assert set(RedisOptions.__annotations__) == set(RedisSettings.model_fields) - {"url"}

    settings = RedisSettings.from_url(
        "redis://127.0.0.1:6379/0", socket_timeout_s=3, connect_timeout_s=2, health_check_interval_s=0
    )

    assert (settings.socket_timeout_s, settings.connect_timeout_s, settings.health_check_interval_s) == (3, 2, 0)
    with pytest.raises(pydantic.ValidationError, match="socket_timeout"):
        RedisSettings.from_url("redis://127.0.0.1:6379/0", socket_timeout=3)  # type: ignore[call-arg]
