"""Zenith SDK: what Python workers and admin panels import to take part in Zenith."""

from zenith_sdk.commands import CommandListener, CommandResult, CommandSender
from zenith_sdk.connection import DEFAULT_REDIS_URL, RedisSettings, connect
from zenith_sdk.doctor import DoctorReport, run_doctor
from zenith_sdk.events import EventEmitter, job_event
from zenith_sdk.producer import JobSpec, Producer
from zenith_sdk.pulse import Pulse
from zenith_sdk.schedules import InvalidScheduleEntry, Scheduler
from zenith_sdk.worker import App, JobContext, RateLimit, Worker, WorkerOptions, recover_dead_workers

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
