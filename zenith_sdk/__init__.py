"""Zenith SDK: what Python workers and admin panels import to take part in Zenith."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zenith_sdk.commands import CommandListener, CommandResult, CommandSender
    from zenith_sdk.connection import DEFAULT_REDIS_URL, RedisSettings, connect
    from zenith_sdk.doctor import DoctorReport, run_doctor
    from zenith_sdk.events import EventEmitter, job_event
    from zenith_sdk.producer import JobSpec, Producer
    from zenith_sdk.pulse import Pulse
    from zenith_sdk.schedules import InvalidScheduleEntry, Scheduler
    from zenith_sdk.worker import App, JobContext, RateLimit, Worker, WorkerOptions, recover_dead_workers

_HOMES = {
    "zenith_sdk.commands": ("CommandListener", "CommandResult", "CommandSender"),
    "zenith_sdk.connection": ("DEFAULT_REDIS_URL", "RedisSettings", "connect"),
    "zenith_sdk.doctor": ("DoctorReport", "run_doctor"),
    "zenith_sdk.events": ("EventEmitter", "job_event"),
    "zenith_sdk.producer": ("JobSpec", "Producer"),
    "zenith_sdk.pulse": ("Pulse",),
    "zenith_sdk.schedules": ("InvalidScheduleEntry", "Scheduler"),
    "zenith_sdk.worker": ("App", "JobContext", "RateLimit", "Worker", "WorkerOptions", "recover_dead_workers"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    """Import each public name's module on first use: a worker process needs few of them."""
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'zenith_sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "DEFAULT_REDIS_URL",
    "App",
    "CommandListener",
    "CommandResult",
    "CommandSender",
    "DoctorReport",
    "EventEmitter",
    "InvalidScheduleEntry",
    "JobContext",
    "JobSpec",
    "Producer",
    "Pulse",
    "RateLimit",
    "RedisSettings",
    "Scheduler",
    "Worker",
    "WorkerOptions",
    "__version__",
    "connect",
    "job_event",
    "recover_dead_workers",
    "run_doctor",
]
