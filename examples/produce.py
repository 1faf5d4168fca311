"""Push jobs the way the Node producer does: ``python examples/produce.py [REDIS_URL]``."""

from __future__ import annotations

import sys

from zenith_sdk import JobSpec, Producer


def main(url: str) -> None:
    producer = Producer(url)
    first = producer.push("send-welcome", {"to": "ada@example.com"}, queue="emails")
    producer.push("send-welcome", {"to": "ops@example.com"}, queue="emails", priority="critical")
    producer.push("send-welcome", {"to": "later@example.com"}, queue="emails", delay_s=30)
    batch = producer.push_many([JobSpec(name="resize", properties={"n": n}, queue="images") for n in range(100)])
    print(f"pushed {first} and {len(batch) + 2} more")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0")
