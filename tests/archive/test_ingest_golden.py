"""The archive of a fixed stream is exactly the recorded one: every table, byte for byte, on every dialect.

The recorded archives (``golden/ingest_<dialect>_<states>.json``) were written by the archiver
as it stood when the test was added; a change to ingest that is meant to store the same thing
must keep this test passing. After a change that is meant to store something else, rewrite them
with ``ZENITH_WRITE_GOLDEN=1 python -m pytest tests/archive/test_ingest_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy.engine import Engine

from archive.helpers import drain
from archive.ingest_stream import dump, fill
from zenith_archive.archiver import Archiver
from zenith_archive.schema import State
from zenith_protocol import KeySpace

GOLDEN = Path(__file__).parent / "golden"
STATES = {"default": None, "completed": frozenset({State.COMPLETED})}


def _check(found: dict[str, Any], path: Path) -> None:
    text = json.dumps(found, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    if os.environ.get("ZENITH_WRITE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        pytest.skip(f"wrote {path}")
    expected = json.loads(path.read_text(encoding="utf-8"))
    for table, rows in expected.items():
        assert found.get(table) == rows, table
    assert found.keys() == expected.keys()


@pytest.mark.parametrize("states", sorted(STATES))
def test_a_fixed_stream_is_archived_as_recorded(
    r: redis.Redis, keyspace: KeySpace, engine: Engine, dialect: str, states: str
) -> None:
    fill(r, keyspace)
    chosen = STATES[states]
    options: dict[str, Any] = {"states": chosen} if chosen is not None else {}
    # Small batches, so that jobs are created in one batch and brought up to date in later ones.
    first = Archiver(r, engine, keyspace=keyspace, batch=4, consumer="golden", auto_cleanup=False, **options)
    drain(first)
    # A second group reads the whole stream again: every entry is already archived, nothing changes.
    again = Archiver(r, engine, keyspace=keyspace, group="again", consumer="golden", auto_cleanup=False, **options)
    drain(again)
    _check(dump(engine), GOLDEN / f"ingest_{dialect}_{states}.json")
