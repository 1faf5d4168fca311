"""``zenith archive search|jobs|timeline|export`` on every dialect: tables, JSON, pages, files, one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from archive.archived import HOUR_MS, NOW, add_event, add_job
from archive.conftest import url_of
from zenith_sdk.cli import main


def _seed(engine: Engine) -> None:
    with engine.begin() as connection:
        for n in range(5):
            add_job(connection, f"j-{n}", state="dead", error=f"SMTP timeout #{n}", updated_at=NOW + n * HOUR_MS)
        pk = add_job(
            connection, "billed", queue="billing", name="Charge [bold]Card[/bold]", properties={"tier": "gold"}
        )
        add_event(connection, pk, f"{NOW}-0", "enqueued", queue="billing", job_id="billed")
        add_event(connection, pk, f"{NOW + 5}-0", "deleted", queue="billing", job_id="billed", actor="alice")


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    assert main(["archive", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_search_prints_a_page_a_capped_total_and_the_next_key(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(engine)
    db = ["--db", url_of(engine)]

    first = _json(capsys, "search", "timeout -j-4", "--limit", "3", *db)
    assert isinstance(first, dict)
    rest = _json(capsys, "search", "timeout -j-4", "--limit", "3", "--after", first["next"], *db)
    assert isinstance(rest, dict)

    assert [job["job_id"] for job in first["jobs"]] == ["j-3", "j-2", "j-1"]
    assert (first["total"], first["capped"]) == (4, False)
    assert [job["job_id"] for job in rest["jobs"]] == ["j-0"] and rest["next"] is None
    assert main(["archive", "search", "tier:gold", *db]) == 0
    out = capsys.readouterr().out
    assert "Charge [bold]Card[/bold]" in out and "billing" in out and ": 1" in out


def test_jobs_lists_by_queue_state_and_time(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(engine)
    db = ["--db", url_of(engine)]
    window = ["--since", "2026-01-01T01:00:00Z", "--until", "2026-01-01T03:00:00Z"]

    listed = _json(capsys, "jobs", "--queue", "mail", "--state", "dead", *window, *db)

    assert isinstance(listed, dict)
    assert [job["job_id"] for job in listed["jobs"]] == ["j-2", "j-1"]
    assert main(["archive", "jobs", "--state", "grouped", *db]) == 2
    assert "--state 'grouped' is not a state" in capsys.readouterr().err
    assert main(["archive", "jobs", "--since", "soon", *db]) == 2
    assert "--since 'soon' is not a time" in capsys.readouterr().err


def test_timeline_shows_each_event_with_its_actor(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(engine)
    db = ["--db", url_of(engine)]

    told = _json(capsys, "timeline", "billed", *db)
    assert main(["archive", "timeline", "billed", "--queue", "billing", *db]) == 0
    table = capsys.readouterr().out

    assert isinstance(told, dict)
    assert [(event["type"], event["actor"]) for event in told["events"]] == [("enqueued", None), ("deleted", "alice")]
    assert "deleted" in table and "alice" in table and "2026-01-01 00:00:00 UTC" in table
    assert main(["archive", "timeline", "nope", *db]) == 2
    assert "job 'nope' not found" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_writes_a_file(engine: Engine, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(engine)
    target = tmp_path / f"out.{fmt}"

    assert (
        main(["archive", "export", "--query", "state:dead", "--format", fmt, "-o", str(target), "--db", url_of(engine)])
        == 0
    )

    text = target.read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines())) if fmt == "csv" else [json.loads(line) for line in text.splitlines()]
    assert [row["job_id"] for row in rows] == [f"j-{n}" for n in range(5)]
    assert f"exported 5 jobs to {target}" in capsys.readouterr().err


def test_errors_are_one_line_with_what_to_do(
    tmp_path: Path, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.db'}"

    assert main(["archive", "search", "x", "--db", empty]) == 2
    assert "run `zenith archive migrate --db URL` first" in capsys.readouterr().err
    assert main(["archive", "search", 'name:"open', "--db", url_of(engine)]) == 2
    err = capsys.readouterr().err
    assert "query syntax error at character 6: unbalanced quote" in err and len(err.strip().splitlines()) == 1
    assert main(["archive", "search", "x", "--db", "nonsense://"]) == 2
    assert "pass a URL such as sqlite:///archive.db" in capsys.readouterr().err
