"""The query language of live search and the SQL archive (``zenith search``, ``zenith archive search``).

The grammar and its tree live in :mod:`zenith_protocol.query` (pure, so the archive reads the same
tree); this module is where SDK users import them from, with the errors they raise. Live search
evaluates a query with :func:`zenith_sdk.control.search`; ``JobFilter.from_query`` turns one into
a bulk filter.
"""

from __future__ import annotations

from zenith_protocol import query as _query
from zenith_protocol.errors import QuerySyntaxError, UnsupportedQueryError
from zenith_protocol.query import *  # noqa: F403  (the names of _query.__all__)

__all__ = [*_query.__all__, "QuerySyntaxError", "UnsupportedQueryError"]
