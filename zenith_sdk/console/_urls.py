"""URLs of this console's routes under its mount, whatever app it is mounted in.

Starlette's ``request.url_for`` asks the outermost router, so a console mounted beside another
(``/prod`` and ``/staging``) could be given the other's URLs. These ask the console's own router
and put the mount (the request's ``root_path``, which proxies set too) in front.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

__all__ = ["mount_url"]


def mount_url(request: Request, name: str, query: dict[str, Any] | None = None, **params: Any) -> str:
    """The path of route ``name`` of this console, under its mount, with an optional query string."""
    path = str(request.app.router.url_path_for(name, **params))
    full = f"{request.scope.get('root_path', '')}{path}"
    return f"{full}?{urlencode(query)}" if query else full
