"""Behavioural conformance (spec 13.5): the conformance jobs, and runs that check a worker or a producer."""

from zenith_sdk.conformance._app import app
from zenith_sdk.conformance._manifest import ManifestJob, producer_manifest
from zenith_sdk.conformance._plan import worker_queues
from zenith_sdk.conformance._producer import check_producer
from zenith_sdk.conformance._report import CheckResult, CheckStatus, ConformanceReport
from zenith_sdk.conformance._worker import WORKER_CHECKS, check_worker

__all__ = [
    "WORKER_CHECKS",
    "CheckResult",
    "CheckStatus",
    "ConformanceReport",
    "ManifestJob",
    "app",
    "check_producer",
    "check_worker",
    "producer_manifest",
    "worker_queues",
]
