"""Secrets never reach the archive: the default key list, then the user's hook, at ingest."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from sqlalchemy.engine import Engine

from archive.helpers import archive, emit, job, rows
from zenith_archive.redact import REDACTED, redact_keys
from zenith_archive.schema import job_events, job_fields, legacy_job_archive
from zenith_protocol import EventType, JobPayload, KeySpace
from zenith_sdk.events import job_event

SECRETS = {
    "Password": "p1",
    "nested": {"API_KEY": "p2", "list": [{"Authorization": "p3"}, {"cvv": 123}]},
    "card": {"card_number": "4111", "private_key": {"pem": "p4"}},
    "Cookie": "p5",
    "ssn": "p6",
    "safe": "visible",
}


def test_redact_keys_replaces_listed_keys_at_any_depth_in_any_case() -> None:
    redacted = redact_keys(SECRETS)
    assert redacted["Password"] == REDACTED
    assert redacted["nested"]["API_KEY"] == REDACTED
    assert redacted["nested"]["list"] == [{"Authorization": REDACTED}, {"cvv": REDACTED}]
    assert redacted["card"] == {"card_number": REDACTED, "private_key": REDACTED}
    assert redacted["safe"] == "visible"
    assert SECRETS["Password"] == "p1"  # a copy: the input is left alone
    assert redact_keys({"Token": 1, "other": 2}, ["TOKEN"]) == {"Token": REDACTED, "other": 2}


def _everything(engine: Engine) -> str:
    texts = [str(row) for table in (job_events, job_fields, legacy_job_archive) for row in rows(engine, table)]
    return " ".join(texts) + str(job(engine, "s1", "secure"))


def _emit_secret_job(r: redis.Redis, keyspace: KeySpace) -> None:
    payload = JobPayload.create("Login", SECRETS, job_id="s1")
    emit(
        r,
        keyspace,
        job_event(EventType.ENQUEUED, "secure", payload, include_payload=True),
        job_event(EventType.DEAD_LETTERED, "secure", payload, include_payload=True, error="nope"),
    )


def test_no_secret_of_the_default_list_reaches_the_database(r: redis.Redis, keyspace: KeySpace, engine: Engine) -> None:
    _emit_secret_job(r, keyspace)
    archive(r, engine, keyspace)
    stored = _everything(engine)
    for secret in ("p1", "p2", "p3", "4111", "p4", "p5", "p6", "123"):
        assert f"'{secret}'" not in stored and f'"{secret}"' not in stored and f":{secret}" not in stored
    assert "visible" in stored


def test_the_users_hook_runs_after_the_default_list(r: redis.Redis, keyspace: KeySpace, engine: Engine) -> None:
    seen: list[dict[str, Any]] = []

    def hook(job_: dict[str, Any]) -> dict[str, Any]:
        seen.append(job_)
        job_["data"]["properties"]["safe"] = "hidden too"
        return job_

    _emit_secret_job(r, keyspace)
    archive(r, engine, keyspace, redact=hook)
    assert seen and seen[0]["data"]["properties"]["Password"] == REDACTED
    stored = _everything(engine)
    assert "visible" not in stored and "hidden too" in stored


@pytest.mark.parametrize("failure", ["raises", "not json"])
def test_a_failing_hook_keeps_the_payload_out_and_the_archiver_going(
    r: redis.Redis, keyspace: KeySpace, engine: Engine, failure: str
) -> None:
    def hook(job_: dict[str, Any]) -> dict[str, Any]:
        if failure == "raises":
            raise RuntimeError("bug in the hook")
        return {"data": object()}

    _emit_secret_job(r, keyspace)
    archive(r, engine, keyspace, redact=hook)
    row = job(engine, "s1", "secure")
    assert (row["state"], row["payload"]) == ("dead", None)
    assert "visible" not in _everything(engine)


def test_a_key_written_with_an_escape_is_redacted_and_a_payload_without_keys_is_kept_whole() -> None:
    from zenith_archive._ingest import Decoder

    decoder = Decoder()
    data = '{"job":"login","properties":{"\\\\u0070assword":"hunter2","user":"ann"}}'
    quoted = data.replace(chr(34), chr(92) + chr(34))  # the data string inside the job's JSON
    escaped = decoder._job(f'{{"id":"j1","type":"json","data":"{quoted}"}}')
    clean = '{"job":"x","properties":{"user":"bob"}}'.replace(chr(34), chr(92) + chr(34))
    plain = decoder._job(f'{{"id":"j2","type":"json","data":"{clean}"}}')

    assert escaped is not None and "hunter2" not in escaped.payload and REDACTED in escaped.payload
    assert plain is not None and '\\"user\\":\\"bob\\"' in plain.payload
