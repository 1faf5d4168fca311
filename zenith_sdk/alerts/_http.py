"""HTTP channels: Slack and Discord incoming webhooks, and a JSON webhook signed as Standard Webhooks specify."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import httpx

from zenith_protocol._json import dumps
from zenith_protocol.alerts import Notification
from zenith_protocol.codec import encode_alert_notification
from zenith_protocol.errors import ConfigError
from zenith_sdk.alerts._delivery import Attempt, BaseChannel, RetryPolicy, redact
from zenith_sdk.alerts.messages import Message

__all__ = ["DiscordChannel", "SignedWebhookChannel", "SlackChannel", "signing_key", "webhook_id_of"]

_SECRET_PREFIX = "whsec_"
_ID_SAFE = "!#$&'()*+,/:;=?@[]~-._ "
_RETRIED_STATUSES = frozenset({408, 429})
_ERROR_PREVIEW_CHARS = 200
_SLACK_SECTION_CHARS = 3000
_SLACK_TEXT_CHARS = 40_000
_DISCORD_CONTENT_CHARS = 2000
_DISCORD_DESCRIPTION_CHARS = 4096
_DISCORD_FOOTER_CHARS = 2048
_COLOURS = {"resolved": 0x2EB67D, "no_data": 0x9E9E9E}
_SEVERITY_COLOURS = {"critical": 0xE01E5A, "warning": 0xECB22E}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after_s(response: httpx.Response) -> float | None:
    """The pause a Retry-After header asks for, in seconds (delta-seconds or an HTTP date), if it has one."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return None if math.isnan(seconds) else max(0.0, seconds)


class _HttpChannel(BaseChannel):
    """POSTs a body to one URL per attempt with the policy's timeout; 2xx is delivered, 408/429/5xx retried."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        policy: RetryPolicy,
        title_template: str | None = None,
        body_template: str | None = None,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(name, policy=policy, title_template=title_template, body_template=body_template, sleep=sleep)
        self._url = url
        self._client = client

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, url={redact(self._url)!r})"

    def _secrets(self) -> tuple[str | None, ...]:
        return (self._url,)

    def _request(self, n: Notification, message: Message | None) -> tuple[bytes, dict[str, str]]:
        raise NotImplementedError

    def _attempt(self, n: Notification, message: Message | None) -> Attempt:
        body, headers = self._request(n, message)
        where = redact(self._url)
        try:
            if self._client is not None:
                response = self._client.post(self._url, content=body, headers=headers, timeout=self.policy.timeout_s)
            else:
                with httpx.Client(follow_redirects=False) as client:
                    response = client.post(self._url, content=body, headers=headers, timeout=self.policy.timeout_s)
        except httpx.TimeoutException:
            return Attempt(False, error=f"no answer from {where} within {self.policy.timeout_s:g} s", retryable=True)
        except httpx.UnsupportedProtocol as exc:
            return Attempt(False, error=f"cannot post to {where}: {exc}; the URL must start with https:// or http://")
        except httpx.TransportError as exc:
            return Attempt(False, error=f"could not reach {where}: {type(exc).__name__}: {exc}", retryable=True)
        except httpx.InvalidURL as exc:
            return Attempt(False, error=f"invalid URL {where}: {exc}; check the channel's URL")
        except httpx.HTTPError as exc:  # the request went out, the answer was unreadable: a retry could duplicate it
            return Attempt(False, error=f"unreadable answer from {where}: {type(exc).__name__}: {exc}")
        return self._judge(response, where)

    def _judge(self, response: httpx.Response, where: str) -> Attempt:
        status = response.status_code
        if 200 <= status < 300:
            return Attempt(True, status=status)
        preview = " ".join(response.text.split())[:_ERROR_PREVIEW_CHARS]
        error = f"HTTP {status} from {where}" + (f": {preview}" if preview else "")
        if 300 <= status < 400:
            error += "; webhook URLs must not redirect, use the final URL"
        retryable = status in _RETRIED_STATUSES or status >= 500
        return Attempt(False, status=status, error=error, retryable=retryable, retry_after_s=_retry_after_s(response))


def _slack_escape(text: str) -> str:
    """Text as Slack shows it literally: data never becomes a mention (``<!channel>``) or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackChannel(_HttpChannel):
    """A Slack incoming webhook: ``{"text", "blocks"}`` with the idempotency key in a context footer."""

    def _request(self, n: Notification, message: Message | None) -> tuple[bytes, dict[str, str]]:
        if message is None:
            raise TypeError("SlackChannel sends a rendered message")
        title, body, foot = (_slack_escape(part) for part in (message.title, message.body, message.footer))
        blocks = [
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"*{title}*\n{body}", _SLACK_SECTION_CHARS)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": foot}]},
        ]
        payload = {"text": _cut(f"*{title}*\n{body}\n\n{foot}", _SLACK_TEXT_CHARS), "blocks": blocks}
        return dumps(payload).encode(), {"content-type": "application/json"}


class DiscordChannel(_HttpChannel):
    """A Discord webhook: the title as content, the body in an embed whose footer carries the idempotency key."""

    def _request(self, n: Notification, message: Message | None) -> tuple[bytes, dict[str, str]]:
        if message is None:
            raise TypeError("DiscordChannel sends a rendered message")
        colour = _COLOURS.get(message.kind, _SEVERITY_COLOURS.get(message.severity, _SEVERITY_COLOURS["warning"]))
        embed = {
            "description": _cut(message.body, _DISCORD_DESCRIPTION_CHARS),
            "color": colour,
            "footer": {"text": _cut(message.footer, _DISCORD_FOOTER_CHARS)},
        }
        payload = {
            "content": _cut(message.title, _DISCORD_CONTENT_CHARS),
            "embeds": [embed],
            "allowed_mentions": {"parse": []},  # data never pings @everyone or a role
        }
        return dumps(payload).encode(), {"content-type": "application/json"}


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 after ``whsec_`` (the prefix is optional).

    Raises:
        ConfigError: the secret is empty or not base64 (the message never contains it).
    """
    encoded = secret.removeprefix(_SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(
            "a webhook secret must be 'whsec_' followed by base64 (for example 'whsec_' + base64 of 32 random bytes)"
        ) from exc
    if not key:
        raise ConfigError("a webhook secret must not be empty: use 'whsec_' followed by base64 of random bytes")
    return key


def webhook_id_of(n: Notification) -> str:
    """The ``webhook-id`` header of ``n``: its idempotency key, percent-encoded where it is not printable ASCII."""
    if n.id.isascii() and n.id.isprintable():
        return n.id
    return quote(n.id, safe=_ID_SAFE)


class SignedWebhookChannel(_HttpChannel):
    """POSTs the notification JSON with ``webhook-id`` (its idempotency key), ``webhook-timestamp`` and, given a
    secret, ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``)."""

    renders_text = False

    def __init__(
        self,
        name: str,
        url: str,
        *,
        secret: str | None,
        policy: RetryPolicy,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, url, policy=policy, client=client, sleep=sleep)
        self._secret = secret
        self._key = signing_key(secret) if secret else None
        self._clock = clock

    def _secrets(self) -> tuple[str | None, ...]:
        return (self._url, self._secret, self._secret.removeprefix(_SECRET_PREFIX) if self._secret else None)

    def _request(self, n: Notification, message: Message | None) -> tuple[bytes, dict[str, str]]:
        body = encode_alert_notification(n).encode()
        timestamp = str(math.floor(self._clock()))
        webhook_id = webhook_id_of(n)
        headers = {"content-type": "application/json", "webhook-id": webhook_id, "webhook-timestamp": timestamp}
        if self._key is not None:
            digest = hmac.new(self._key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
            headers["webhook-signature"] = "v1," + base64.b64encode(digest).decode()
        return body, headers
