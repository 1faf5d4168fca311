"""What endpoints take as parameters: the console state and the actor of a change."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from zenith_sdk.console._models import ApiError
from zenith_sdk.console._state import ConsoleState, state

__all__ = ["ERRORS", "Actor", "Console", "WithToken"]


def _actor(request: Request) -> str:
    """Who a change is recorded as: the API token's name, else the console's actor."""
    return str(getattr(request.state, "zenith_actor", None) or request.app.state.console.settings.actor)


def _with_token(request: Request) -> bool:
    """Whether the call carries an API token (one that reaches an endpoint is valid: the middleware refused others)."""
    return request.headers.get("authorization", "").lower().startswith("bearer ")


Console = Annotated[ConsoleState, Depends(state)]
WithToken = Annotated[bool, Depends(_with_token)]
Actor = Annotated[str, Depends(_actor)]
ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ApiError, "description": text}
    for status, text in (
        (400, "bad input"),
        (403, "cross-site check failed"),
        (404, "no such queue or job"),
        (503, "Redis is not reachable"),
    )
}
"""The error responses every endpoint may give, for the OpenAPI document."""
