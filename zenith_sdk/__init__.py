"""Zenith SDK: what Python workers and admin panels import to take part in Zenith."""

from zenith_sdk.connection import DEFAULT_REDIS_URL, RedisSettings, connect
from zenith_sdk.doctor import DoctorReport, run_doctor

__version__ = "0.1.0"

__all__ = ["DEFAULT_REDIS_URL", "DoctorReport", "RedisSettings", "__version__", "connect", "run_doctor"]
