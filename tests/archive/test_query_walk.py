"""A frequent word read by walking the newest jobs (MySQL/MariaDB) finds what the full-text index finds, in order."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from archive.archived import NOW, add_job
from zenith_archive import _walk
from zenith_archive.query import Count, count, search

_ERRORS = (
    "plan premium expired",  # each of these holds the word "premium"
    "PREMIUM quota",
    "premium-plan refused",
    "Premium",
    "premiums expired",  # and none of these does
    "xpremium quota",
    "premium42 refused",
)
_HOLDING = 4
_ROUNDS = 5


def _seed(engine: Engine) -> list[str]:
    """Jobs whose errors hold "premium" or text like it, interleaved; the ids of the holders, newest first."""
    holders: list[str] = []
    with engine.begin() as connection:
        add_job(connection, "w-odd", name="Bill", error="premium_plan prémium")  # the oldest; not ASCII
        for n in range(_ROUNDS * len(_ERRORS)):
            index = n % len(_ERRORS)
            queue = "gold" if n % 2 else "mail"
            add_job(connection, f"w-{n:02}", queue=queue, name="Bill", updated_at=NOW + n, error=_ERRORS[index])
            if index < _HOLDING:
                holders.append(f"w-{n:02}")
    return holders[::-1]


def _all_pages(engine: Engine, query: str, limit: int) -> list[str]:
    seen: list[str] = []
    page = search(engine, query, limit=limit)
    while True:
        seen.extend(job.job_id for job in page.rows)
        if page.next_key is None:
            return seen
        page = search(engine, query, limit=limit, after_key=page.next_key)


def _answers(engine: Engine, query: str) -> tuple[list[str], list[Count]]:
    counts = [count(engine, query, cap=cap) for cap in (1, 9, 10, 11, 19, 20, 21, 100)]
    return _all_pages(engine, query, 3), counts


@pytest.mark.parametrize("query", ["premium", "Premium queue:gold", "premium -quota", "premium name:Bill expired"])
def test_a_walk_finds_what_the_index_finds_in_the_same_order_and_counts(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    _seed(engine)
    walked = _answers(engine, query)  # the windows hold every job: the walk answers alone
    monkeypatch.setattr(_walk, "PAGE_WINDOW", 4)
    monkeypatch.setattr(_walk, "COUNT_WINDOW", 12)
    windowed = _answers(engine, query)  # the windows end before the jobs do: the walk answers some, the index others
    monkeypatch.setattr(_walk.Walk, "of", classmethod(lambda cls, query, dialect: None))
    indexed = _answers(engine, query)

    assert walked == indexed
    assert windowed == indexed


def test_a_frequent_word_pages_newest_first_and_counts_up_to_the_cap(engine: Engine) -> None:
    holders = _seed(engine)

    assert _all_pages(engine, "premium -id:w-odd", 3) == holders
    assert count(engine, "premium -id:w-odd") == Count(len(holders), capped=False)
    assert count(engine, "premium -id:w-odd", cap=len(holders)) == Count(len(holders), capped=False)
    assert count(engine, "premium -id:w-odd", cap=len(holders) - 1) == Count(len(holders) - 1, capped=True)
