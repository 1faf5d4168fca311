"""An archiver in a process of its own, for the crash tests: ``python archiver_child.py URL PREFIX CONSUMER CLAIM_MS``.

It prints ``pre-commit`` when a batch's transaction is about to commit and ``pre-ack`` when the
commit is done and the acknowledgement is about to go, then pauses a little at each, so that the
test can SIGKILL it at exactly those two moments. SIGTERM stops it cleanly.
"""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType
from typing import Any

import redis
from sqlalchemy import event
from sqlalchemy.engine import Connection

from zenith_archive import connect
from zenith_archive.archiver import Archiver
from zenith_protocol import KeySpace

PAUSE_S = 0.05


def _say(word: str) -> None:
    sys.stdout.write(word + "\n")
    sys.stdout.flush()
    time.sleep(PAUSE_S)


class _SayingClient(redis.Redis):
    def xack(self, name: Any, groupname: Any, *ids: Any) -> Any:
        _say("pre-ack")
        return super().xack(name, groupname, *ids)


def main(url: str, redis_url: str, prefix: str, consumer: str, claim_idle_ms: int) -> None:
    engine = connect(url)

    @event.listens_for(engine, "commit")
    def _before_commit(connection: Connection) -> None:
        _say("pre-commit")

    client = _SayingClient.from_url(redis_url)
    archiver = Archiver(
        client,
        engine,
        keyspace=KeySpace(zenith_prefix=prefix),
        consumer=consumer,
        batch=50,
        claim_idle_ms=claim_idle_ms,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        archiver.stop()

    signal.signal(signal.SIGTERM, stop)
    _say("started")
    archiver.run()
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
