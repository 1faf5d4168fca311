"""Errors as JSON bodies with one line that says what is wrong and what to do; never a traceback."""

from __future__ import annotations

import logging

import redis
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.requests import Request

from zenith_protocol import ConflictError, NotFoundError, ProtocolError, ZenithError

__all__ = ["Unavailable", "install_error_handlers"]

logger = logging.getLogger(__name__)


class Unavailable(Exception):
    """A database the console reads besides Redis (the archive's) does not answer: 503 with this message."""


def _body(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def install_error_handlers(app: FastAPI, redis_location: str) -> None:
    """Map the SDK's errors to HTTP statuses on ``app``."""

    async def not_found(_request: Request, exc: Exception) -> JSONResponse:
        return _body(404, str(exc))

    async def conflict(_request: Request, exc: Exception) -> JSONResponse:
        return _body(409, str(exc))

    async def bad_input(_request: Request, exc: Exception) -> JSONResponse:
        return _body(400, str(exc))

    async def unreadable(_request: Request, exc: Exception) -> JSONResponse:
        return _body(422, str(exc))

    async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        return _body(422, f"invalid request: {problems}")

    async def redis_down(_request: Request, exc: Exception) -> JSONResponse:
        logger.warning("console: Redis at %s: %s", redis_location, exc)
        return _body(503, f"Redis at {redis_location} is not reachable ({exc}); start it or fix ZENITH_REDIS_URL")

    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(ConflictError, conflict)
    app.add_exception_handler(ProtocolError, unreadable)
    app.add_exception_handler(ZenithError, bad_input)  # ConfigError, query syntax, schedules
    app.add_exception_handler(ValueError, bad_input)
    app.add_exception_handler(RequestValidationError, invalid_request)

    async def unavailable(_request: Request, exc: Exception) -> JSONResponse:
        return _body(503, str(exc))

    app.add_exception_handler(Unavailable, unavailable)
    app.add_exception_handler(redis.ConnectionError, redis_down)
    app.add_exception_handler(redis.TimeoutError, redis_down)
