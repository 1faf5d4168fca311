"""The alert loop: evaluate every interval, and deliver what the evaluations notify.

One evaluation reads the rules, the silences and mute windows and the stored states, gathers a
snapshot, runs the pure evaluator and applies its result with the compare-and-set script. Any
number of :class:`AlertService` may run against one Redis, anywhere: each change is applied once
and each notification sent once (see ``store`` and ``sender``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import partial

import redis

from zenith_protocol import AlertRule, KeySpace, ProtocolError, decode_alert_rules
from zenith_sdk._background import BackgroundLoop
from zenith_sdk.alerts._silences import mutes_from, prune_silences, silences_from
from zenith_sdk.alerts.evaluate import Evaluation, Snapshot, evaluate
from zenith_sdk.alerts.sender import CLAIM_IDLE_S, Sender
from zenith_sdk.alerts.snapshot import REDISCOVER_EVERY, SnapshotGatherer
from zenith_sdk.alerts.store import Applied, apply_evaluation, states_from

__all__ = ["DEFAULT_INTERVAL_S", "AlertService", "EvaluationReport"]

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 15.0
_PRUNE_EVERY = 240
"""Evaluations between two prunings of ended silences."""


@dataclass(frozen=True)
class EvaluationReport:
    """What one evaluation saw and did."""

    at_ms: int
    rules: int
    snapshot: Snapshot
    evaluation: Evaluation
    applied: Applied


class AlertService:
    """Evaluates alert rules every ``interval_s`` seconds and runs senders that deliver the notifications.

    Args:
        client: a redis-py client (the caller owns it).
        keyspace: key names.
        interval_s: seconds between two evaluations.
        evaluate: run the evaluator loop.
        send: run senders.
        senders: how many sender threads.
        claim_idle_s: a sender claims entries left this long by a sender that died.
        rediscover_every: evaluations between two SCAN passes of the snapshot.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        keyspace: KeySpace | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
        evaluate: bool = True,
        send: bool = True,
        senders: int = 1,
        claim_idle_s: float = CLAIM_IDLE_S,
        rediscover_every: int = REDISCOVER_EVERY,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        if not evaluate and not send:
            raise ValueError("an alert service that neither evaluates nor sends does nothing; drop one of the flags")
        self.client = client
        self.keyspace = keyspace or KeySpace()
        self.interval_s = interval_s
        self.evaluating = evaluate
        self.gatherer = SnapshotGatherer(client, keyspace=self.keyspace, rediscover_every=rediscover_every)
        self.senders = [
            Sender(client, keyspace=self.keyspace, claim_idle_s=claim_idle_s) for _ in range(senders if send else 0)
        ]
        self.evaluations = 0
        self._stopping = threading.Event()
        self._loops: list[BackgroundLoop] = []

    def evaluate_once(self, *, now_ms: int | None = None) -> EvaluationReport:
        """One evaluation: read rules, silences, mute windows and states (one round trip), gather, evaluate, apply.

        Raises:
            redis.RedisError: Redis could not be read or written (the loop logs it and tries again).
            ProtocolError: the rules do not decode (the loop logs it; fix them with ``zenith alerts``).
        """
        now = int(time.time() * 1000) if now_ms is None else now_ms
        space = self.keyspace
        pipe = self.client.pipeline(transaction=False)
        pipe.get(space.alert_rules())
        pipe.hgetall(space.alerts_silences())
        pipe.hgetall(space.alerts_mutes())
        pipe.hgetall(space.alerts_states())
        raw_rules, raw_silences, raw_mutes, raw_states = pipe.execute()
        rules: list[AlertRule] = list(decode_alert_rules(raw_rules))
        silences = silences_from(raw_silences, now_ms=now)
        mutes = mutes_from(raw_mutes)
        read = states_from(raw_states)
        snapshot = self.gatherer.gather(rules, now_ms=now)
        evaluation = evaluate(rules, snapshot, read.states, silences, mutes, now)
        for problem in evaluation.problems:
            logger.warning("alert evaluation: %s", problem)
        applied = apply_evaluation(self.client, read, evaluation, keyspace=self.keyspace, rules=rules)
        self.evaluations += 1
        if self.evaluations % _PRUNE_EVERY == 0:
            prune_silences(self.client, keyspace=self.keyspace, now_ms=now)
        if applied.notifications or applied.states_lost:
            logger.info(
                "alert evaluation: %d change(s) written, %d made elsewhere, %d notification(s)",
                applied.states_written,
                applied.states_lost,
                applied.notifications,
            )
        return EvaluationReport(now, len(rules), snapshot, evaluation, applied)

    def _tick(self) -> None:
        try:
            self.evaluate_once()
        except ProtocolError as exc:
            logger.error("alert rules unreadable, nothing evaluated: %s", exc)

    def run(self, *, stop: threading.Event | None = None) -> None:
        """Run the senders (threads) and the evaluator (this thread) until :meth:`stop` or ``stop`` is set.

        Redis outages are logged and retried with backoff; nothing is raised.
        """
        stopping = stop or self._stopping
        self._loops = [
            BackgroundLoop(f"zenith-alert-sender-{index}", 0.01, partial(sender.run_once, block=True))
            for index, sender in enumerate(self.senders)
        ]
        for loop in self._loops:
            loop.start()
        try:
            if self.evaluating:
                evaluator = BackgroundLoop("zenith-alert-evaluator", self.interval_s, self._tick, stop=stopping)
                self._loops.append(evaluator)
                if not self._stopping.is_set():
                    evaluator.run()
            else:
                while not stopping.wait(0.5) and not self._stopping.is_set():
                    pass
        finally:
            for loop in self._loops:
                loop.stop()
            for sender in self.senders:
                sender.close()
            self._loops = []

    def stop(self) -> None:
        """End :meth:`run` (safe from any thread or a signal handler)."""
        self._stopping.set()
        for loop in self._loops:
            loop.stop(timeout_s=0)
