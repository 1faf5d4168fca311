"""The demo's jobs: handlers that succeed, fail, retry, dead-letter and take time, and the trickle feeding them."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from zenith_sdk.producer import JobSpec, Producer
from zenith_sdk.worker import App, JobContext

__all__ = ["DEMO_QUEUES", "DemoFeed", "demo_app"]

DEMO_QUEUES = ("emails", "billing", "reports", "integrations", "media")
"""The queues the demo worker serves, in the order it polls them."""
_CUSTOMERS = 12
_PEOPLE = ("ada", "grace", "alan", "barbara", "edsger", "margaret", "linus", "radia")


class JobInterrupted(RuntimeError):
    """The demo stopped while a job was running; the job is retried when a worker runs again."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"the demo stopped while job {job_id} was running; it will be retried")


def demo_app(stop: threading.Event, *, rng: random.Random | None = None) -> App:
    """Handlers for every job the demo pushes; they wait on ``stop`` rather than sleep, so the demo stops at once."""
    pick = rng or random.Random()
    app = App()

    def work(job: JobContext, low_s: float, high_s: float) -> None:
        if stop.wait(pick.uniform(low_s, high_s)):
            raise JobInterrupted(job.id)

    @app.handler("send-welcome", timeout_s=10)
    def send_welcome(job: JobContext) -> None:
        work(job, 0.05, 0.3)
        if pick.random() < 0.05:
            raise ConnectionError(f"SMTP timeout sending to {job.properties.get('to')}")

    @app.handler("charge-card", timeout_s=10)
    def charge_card(job: JobContext) -> None:
        work(job, 0.1, 0.5)
        if job.properties.get("amount", 0) > 900:
            raise ValueError(f"card declined for order {job.properties.get('order')}: amount over the limit")

    @app.handler("build-report", timeout_s=30)
    def build_report(job: JobContext) -> None:
        work(job, 0.5, 2.0)

    @app.handler("sync-crm", timeout_s=10)
    def sync_crm(job: JobContext) -> None:
        work(job, 0.05, 0.2)
        if pick.random() < 0.5:  # three attempts: about one job in eight is dead-lettered
            raise RuntimeError(f"CRM answered 503 Service Unavailable (attempt {job.attempt})")

    @app.handler("transcode-video", timeout_s=60)
    def transcode_video(job: JobContext) -> None:
        work(job, 3.0, 8.0)

    return app


@dataclass
class DemoFeed:
    """Pushes a few jobs to each demo queue per :meth:`tick`, the way a busy application would."""

    producer: Producer
    rng: random.Random

    def _specs(self) -> list[JobSpec]:
        pick, order = self.rng, self.rng.randrange(10_000, 99_999)
        person = pick.choice(_PEOPLE)
        specs = [
            JobSpec(name="send-welcome", properties={"to": f"{person}@example.com"}, queue="emails")
            for _ in range(pick.randint(1, 3))
        ]
        customer = f"customer-{pick.randrange(_CUSTOMERS)}"
        amount = round(pick.uniform(5, 1000), 2)
        specs.append(
            JobSpec(
                name="charge-card",
                properties={"order": order, "customer": customer, "amount": amount},
                queue="billing",
                group_id=customer,  # one charge at a time per customer, in order
            )
        )
        if pick.random() < 0.5:
            delay_s = pick.choice((5, 15, 30, 60))
            specs.append(
                JobSpec(
                    name="build-report", properties={"kind": "sales", "for": person}, queue="reports", delay_s=delay_s
                )
            )
        if pick.random() < 0.5:
            specs.append(
                JobSpec(
                    name="sync-crm",
                    properties={"contact": f"{person}@example.com"},
                    queue="integrations",
                    max_attempts=3,
                    retry_after_s=1,
                )
            )
        if pick.random() < 0.05:
            specs.append(JobSpec(name="transcode-video", properties={"video": f"v{order}.mp4"}, queue="media"))
        return specs

    def tick(self) -> None:
        """Push one round of jobs in one round trip."""
        self.producer.push_many(self._specs())

    def burst(self, rounds: int) -> None:
        """Push ``rounds`` rounds at once, so the console has something to show from the start."""
        self.producer.push_many([spec for _ in range(rounds) for spec in self._specs()])
