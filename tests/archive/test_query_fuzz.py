"""Hypothesis: any query string gets results or a syntax error from the archive, never a database error."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from archive.archived import NOW, add_job
from zenith_archive.query import count, search
from zenith_protocol import QuerySyntaxError, UnsupportedQueryError

# What full-text syntaxes read as operators (FTS5, tsquery, MySQL boolean mode), LIKE's
# wildcards, SQL quoting, and the query language's own marks.
_MARKS = [
    '"', "'", "\\", "-", "+", "*", "^", "~", "<", ">", "(", ")", "@", ":", "%", "_", "/", "&", "|", "!",
    "NEAR", "AND", "NOT", "OR", "or", " ", "\t", "\u3000", "ü", "ß", "😀", "\u0301", "é", "x" * 90, "ab", "the",
    "timeout", "queue:", "state:", "name:", "after:", "before:", "email:", "a.b:", "2h", "2026-01-01", "--",
]  # fmt: skip
_QUERIES = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(_MARKS) | st.text(max_size=4), max_size=12).map("".join),
)
_FUZZ = settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    with engine.begin() as connection:
        add_job(connection, "j-1", error="SMTP timeout", properties={"email": "ann@example.com", "a": {"b": "x"}})
        add_job(connection, "j-2", name="the ab", state="dead", properties={"note": 'quote " and % and _'})
        add_job(connection, "j-3", name=None, updated_at=None)
    return engine


@_FUZZ
@given(query=_QUERIES)
@example(query='"')
@example(query="(")
@example(query="@3")
@example(query='"a" NEAR(b c) ^x *')
@example(query="x" * 3000)
@example(query='"' + "x" * 3000 + '"')
@example(query="+the +com")
def test_any_query_gets_results_or_a_syntax_error(seeded: Engine, query: str) -> None:
    try:
        page = search(seeded, query, now_ms=NOW, limit=5)
        counted = count(seeded, query, now_ms=NOW, cap=10)
    except (QuerySyntaxError, UnsupportedQueryError):
        return
    assert counted.n == len(page.rows) and not counted.capped
    assert {job.job_id for job in page.rows} <= {"j-1", "j-2", "j-3"}
