"""Handlers by job name, and what a handler receives."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from zenith_protocol import JobPayload

__all__ = ["App", "Handler", "JobContext"]


@dataclass(frozen=True)
class JobContext:
    """What a handler gets: the job, where it came from and which attempt this is."""

    payload: JobPayload
    queue: str
    attempt: int
    worker_id: str

    @property
    def id(self) -> str:
        """The job id."""
        return self.payload.id

    @property
    def name(self) -> str | None:
        """The job name."""
        return self.payload.name

    @property
    def properties(self) -> dict[str, Any]:
        """The job's arguments."""
        return self.payload.properties


HandlerFn = Callable[[JobContext], Any]
"""A handler: called on a slot thread with the job's context; raising fails the attempt. Its
return value is ignored, except an awaitable (an ``async def`` handler's coroutine), which is run
to completion in an event loop of its own, made for that one job (``asyncio.run``): nothing bound
to an event loop outlives the job."""


@dataclass(frozen=True)
class Handler:
    """A registered handler and its per-job options (``None`` means the worker's default)."""

    fn: HandlerFn
    timeout_s: float | None = None
    max_attempts: int | None = None

    @property
    def is_async(self) -> bool:
        """True for an ``async def`` handler; each of its jobs runs in a new event loop (see :data:`HandlerFn`)."""
        return inspect.iscoroutinefunction(self.fn)


class App:
    """Handlers by job name. Register with the decorator or pass a mapping.

    ::

        app = App()

        @app.handler("send-email", timeout_s=30)
        def send_email(job: JobContext) -> None:
            ...
    """

    def __init__(self, handlers: Mapping[str, HandlerFn] | None = None) -> None:
        self._handlers: dict[str, Handler] = {}
        for name, fn in (handlers or {}).items():
            self.register(name, fn)

    def register(
        self, name: str, fn: HandlerFn, *, timeout_s: float | None = None, max_attempts: int | None = None
    ) -> None:
        """Handle jobs called ``name`` with ``fn``."""
        if not name:
            raise ValueError("a handler needs a non-empty job name")
        if not callable(fn):
            raise TypeError(f"handler for {name!r} must be callable, got {type(fn).__name__}")
        if timeout_s is not None and timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if name in self._handlers:
            raise ValueError(f"a handler for {name!r} is already registered")
        self._handlers[name] = Handler(fn, timeout_s, max_attempts)

    def handler(
        self, name: str, *, timeout_s: float | None = None, max_attempts: int | None = None
    ) -> Callable[[HandlerFn], HandlerFn]:
        """Decorator form of :meth:`register`."""

        def decorate(fn: HandlerFn) -> HandlerFn:
            self.register(name, fn, timeout_s=timeout_s, max_attempts=max_attempts)
            return fn

        return decorate

    def get(self, name: str | None) -> Handler | None:
        """The handler for ``name``, if any."""
        return self._handlers.get(name) if name else None

    def names(self) -> list[str]:
        """Registered job names, sorted."""
        return sorted(self._handlers)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._handlers)
