"""Cross-site request protection that needs nothing from a host application's session.

A request that changes something (POST, PUT, PATCH, DELETE) passes when either

- it carries ``Authorization: Bearer <token>`` with a configured API token (scripts; it then acts
  as the token's name), or
- it comes from a page of this console: its ``Origin`` (else ``Referer``) is the console's own
  origin or a trusted one, and its ``X-Zenith-CSRF`` header equals the ``zenith_csrf`` cookie that
  the console's pages set (double submit; the cookie's path is the console's mount, so two consoles
  mounted side by side keep their own).

Every other change is refused with 403 and a line that says what to send. A wrong bearer token
is refused (401) on every method. Implemented as plain ASGI middleware so streamed responses
(Server-Sent Events) pass untouched.
"""

from __future__ import annotations

import hmac
import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSRF_COOKIE", "CSRF_HEADER", "CsrfMiddleware", "cookie_path", "new_csrf_token"]

CSRF_COOKIE = "zenith_csrf"
CSRF_HEADER = "x-zenith-csrf"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def new_csrf_token() -> str:
    """A fresh random token for the cookie and the page."""
    return secrets.token_urlsafe(32)


def cookie_path(scope: Scope) -> str:
    """The path the console's cookie is scoped to: its mount (``/`` at the root)."""
    return str(scope.get("root_path") or "") or "/"


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class CsrfMiddleware:
    """See the module docstring. ``tokens`` maps API token secrets to names; ``trusted`` adds origins."""

    def __init__(self, app: ASGIApp, *, tokens: dict[str, str], trusted: list[str], actor: str) -> None:
        self.app = app
        self.tokens = tokens
        self.trusted = {origin.lower() for origin in trusted}
        self.actor = actor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        actor, refusal = self._check(scope, headers)
        if refusal is not None:
            await _refuse(send, *refusal)
            return
        scope.setdefault("state", {})["zenith_actor"] = actor
        await self.app(scope, receive, send)

    def _check(self, scope: Scope, headers: dict[str, str]) -> tuple[str, tuple[int, str] | None]:
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            name = self._token_name(authorization[7:].strip())
            if name is None:
                return self.actor, (401, "the API token is not valid; use one listed in ZENITH_API_TOKENS")
            return name, None
        if scope["method"] in _SAFE:
            return self.actor, None
        return self.actor, self._browser_check(scope, headers)

    def _token_name(self, secret: str) -> str | None:
        for known, name in self.tokens.items():
            if hmac.compare_digest(known.encode(), secret.encode()):
                return name
        return None

    def _browser_check(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        origin = _origin(headers.get("origin") or headers.get("referer") or "")
        own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}".lower()
        if origin is None or (origin != own and origin not in self.trusted):
            return 403, (
                f"cross-site change refused: origin {origin or 'missing'} is not this console's ({own}); "
                "add it to ZENITH_TRUSTED_ORIGINS if a proxy serves the console there, or call with an API token"
            )
        cookie = SimpleCookie(headers.get("cookie", "")).get(CSRF_COOKIE)
        sent = headers.get(CSRF_HEADER, "")
        if cookie is None or not sent or not hmac.compare_digest(cookie.value.encode(), sent.encode()):
            return 403, (
                "cross-site token missing or wrong: reload the console page (it sets the zenith_csrf cookie "
                "and sends it as X-Zenith-CSRF), or call with an API token"
            )
        return None


async def _refuse(send: Send, status: int, reason: str) -> None:
    body = json.dumps({"error": reason}).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
