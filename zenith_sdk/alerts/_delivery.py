"""What every channel shares: the delivery result, the retry loop with jittered backoff, and secret redaction."""

from __future__ import annotations

import logging
import random
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from zenith_protocol.alerts import DEFAULT_CHANNEL_RETRIES, DEFAULT_CHANNEL_TIMEOUT_S, Notification
from zenith_sdk.alerts.messages import Message, render_message

__all__ = ["Attempt", "BaseChannel", "Delivery", "RetryPolicy", "redact"]

logger = logging.getLogger(__name__)

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,:;!?)\]}]")
"""A URL in running text; punctuation that ends a sentence or clause after it is not part of it."""
_HIDDEN = "***"


def _redact_url(url: str) -> str:
    """Scheme, host and port of ``url``; any path becomes ``/***``; credentials, query and fragment are dropped."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return _HIDDEN
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    where = f"{host}:{port}" if port is not None else host
    # Any path, even "/": what follows it in the text (a closing parenthesis, say) may be part of it.
    hidden = f"/{_HIDDEN}" if parts.path or parts.query or parts.fragment else ""
    return f"{parts.scheme}://{where}{hidden}"


def redact(text: str, *secrets: str | None) -> str:
    """``text`` safe to log or show: each given secret becomes ``***`` and every URL keeps only its scheme and host.

    ``redact("https://hooks.slack.com/services/T0/B0/XX?x=1")`` is ``"https://hooks.slack.com/***"``.
    """
    text = _URL.sub(lambda match: _redact_url(match.group(0)), text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, _HIDDEN)
    return text


@dataclass(frozen=True)
class Delivery:
    """The outcome of sending one notification to one channel (after its retries)."""

    channel: str
    ok: bool
    attempts: int
    error: str | None = None
    """Why it failed, redacted: no webhook URL path, secret or password; None when it was delivered."""
    status: int | None = None
    """The last HTTP status or SMTP reply code received, if any."""
    template_error: str | None = None
    """Why a user template was not used (the default text went out instead), or None."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long one attempt may take and how often, and after what pause, a failed attempt is repeated."""

    timeout_s: float = DEFAULT_CHANNEL_TIMEOUT_S
    """Bound on each phase of one attempt (connect, send, wait for the answer)."""
    retries: int = DEFAULT_CHANNEL_RETRIES
    """Attempts after the first one, for failures that may pass (5xx, 408, 429, timeouts, lost connections)."""
    backoff_s: float = 0.5
    """Pause before the first retry; it doubles for each further retry, with jitter (half fixed, half random)."""
    max_wait_s: float = 30.0
    """Longest pause between attempts; a receiver asking (Retry-After) for more is not retried."""

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.retries < 0 or self.backoff_s < 0 or self.max_wait_s < 0:
            raise ValueError(
                "RetryPolicy needs timeout_s > 0 and retries, backoff_s, max_wait_s >= 0, "
                f"got timeout_s={self.timeout_s}, retries={self.retries}, backoff_s={self.backoff_s}, "
                f"max_wait_s={self.max_wait_s}"
            )

    def backoff(self, retry: int) -> float:
        """The pause before retry number ``retry`` (1 for the first): half of the doubled step fixed, half random."""
        step = min(self.max_wait_s, self.backoff_s * 2.0 ** (retry - 1))
        return step / 2 + random.uniform(0, step / 2)


@dataclass(frozen=True)
class Attempt:
    """One try: delivered, or why not and whether another try may succeed."""

    ok: bool
    status: int | None = None
    error: str | None = None
    retryable: bool = False
    retry_after_s: float | None = None
    """The pause the receiver asked for (Retry-After), if any."""


class BaseChannel:
    """Renders the message, makes attempts until one succeeds or the policy says stop, and reports a Delivery.

    Subclasses implement :meth:`_attempt` and list the secrets their errors must never show.
    """

    renders_text = True
    """False for channels that send the notification itself rather than a text (templates do not apply)."""

    def __init__(
        self,
        name: str,
        *,
        policy: RetryPolicy,
        title_template: str | None = None,
        body_template: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.policy = policy
        self._title_template = title_template
        self._body_template = body_template
        self._sleep = sleep

    def _secrets(self) -> tuple[str | None, ...]:
        return ()

    def _redact(self, text: str) -> str:
        return redact(text, *self._secrets())

    def _attempt(self, n: Notification, message: Message | None) -> Attempt:
        raise NotImplementedError

    def send(self, n: Notification) -> Delivery:
        """Deliver ``n``; never raises for a delivery or template failure, the Delivery says what went wrong."""
        message = None
        if self.renders_text:
            message = render_message(n, title_template=self._title_template, body_template=self._body_template)
            if message.template_error:
                logger.warning(
                    "alert template failed channel=%s notification=%s error=%s",
                    self.name,
                    n.id,
                    self._redact(message.template_error),
                )
        delivery = self._deliver(n, message)
        if message is not None and message.template_error:
            delivery = replace(delivery, template_error=self._redact(message.template_error))
        return delivery

    def _deliver(self, n: Notification, message: Message | None) -> Delivery:
        attempts = 0
        while True:
            attempts += 1
            outcome = self._guarded_attempt(n, message)
            if outcome.ok:
                return Delivery(self.name, True, attempts, status=outcome.status)
            error = self._redact(outcome.error or "failed")
            pause, stop_reason = self._pause(outcome, attempts)
            if pause is None:
                error = f"{error}{stop_reason}"
                logger.warning(
                    "alert delivery failed channel=%s notification=%s attempts=%d error=%s",
                    self.name,
                    n.id,
                    attempts,
                    error,
                )
                return Delivery(self.name, False, attempts, error=error, status=outcome.status)
            logger.info(
                "alert delivery attempt failed channel=%s notification=%s attempt=%d retry_in_s=%.2f error=%s",
                self.name,
                n.id,
                attempts,
                pause,
                error,
            )
            self._sleep(pause)

    def _guarded_attempt(self, n: Notification, message: Message | None) -> Attempt:
        try:
            return self._attempt(n, message)
        except Exception as exc:
            # A bug in one channel must not stop the sender from serving the others. The traceback is
            # not logged, as its text may hold a secret; its innermost frame says where to look.
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            error = self._redact(f"unexpected {type(exc).__name__} at {frame.filename}:{frame.lineno}: {exc}")
            logger.error("alert channel failed channel=%s notification=%s error=%s", self.name, n.id, error)
            return Attempt(False, error=error)

    def _pause(self, outcome: Attempt, attempts: int) -> tuple[float | None, str]:
        """The pause before the next attempt, or None and why there is none."""
        if not outcome.retryable:
            return None, ""
        if attempts > self.policy.retries:
            return None, f" (gave up after {attempts} attempts)"
        if outcome.retry_after_s is not None:
            if outcome.retry_after_s > self.policy.max_wait_s:
                return None, (
                    f" (the receiver asked to retry after {outcome.retry_after_s:g} s, longer than the "
                    f"{self.policy.max_wait_s:g} s this channel waits; not retried)"
                )
            return max(0.0, outcome.retry_after_s), ""
        return self.policy.backoff(attempts), ""
