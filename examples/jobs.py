"""A worker app: run it with ``zenith worker examples.jobs:app --queues emails,images --concurrency 4``."""

from __future__ import annotations

import logging

from zenith_sdk.worker import App, JobContext

logger = logging.getLogger(__name__)
app = App()


@app.handler("send-welcome", timeout_s=30, max_attempts=5)
def send_welcome(job: JobContext) -> None:
    """Jobs pushed by Node producers (``{"job": "send-welcome", ...}``) run here unchanged."""
    logger.info("welcome mail to %s (attempt %d)", job.properties.get("to"), job.attempt)


@app.handler("resize")
async def resize(job: JobContext) -> None:
    """Async handlers run to completion on their slot's own event loop."""
    logger.info("resizing %s", job.properties)
