"""``check_producer`` and the manifest (spec 13.5): our producer passes, each broken producer fails its check."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from foreign_producer import ForeignProducer, push_with_our_producer
from hypothesis import given
from hypothesis import strategies as st
from protocol.strategies import json_values, text

from zenith_protocol import ConfigError, JobPayload, KeySpace, encode_job
from zenith_sdk.conformance import CheckStatus, ConformanceReport, ManifestJob, check_producer, producer_manifest
from zenith_sdk.conformance._report import canonical_finding


def _failed_and_warned(report: ConformanceReport) -> tuple[list[str], list[str]]:
    return report.failed(), [check.name for check in report.checks if check.status is CheckStatus.WARN]


def test_our_producer_passes_and_the_check_deletes_what_it_read(r: redis.Redis, keyspace: KeySpace) -> None:
    push_with_our_producer(r, keyspace, "ours")

    report = check_producer(r, queue="ours", keyspace=keyspace)

    assert [check.name for check in report.checks] == [
        "pushed",
        "bytes",
        "fields",
        "lanes",
        "delayed",
        "groups",
        "index",
        "events",
    ]
    assert {check.name: check.problems for check in report.checks if check.problems} == {}
    assert report.ok and {check.status for check in report.checks} == {CheckStatus.PASS}
    assert list(r.scan_iter(match=f"{keyspace.queue_prefix}ours.*")) == []
    assert not r.sismember(keyspace.queue_index(), "ours.produced")
    assert r.scard(keyspace.group_active("ours.produced")) == 0


def test_keep_leaves_the_jobs(r: redis.Redis, keyspace: KeySpace) -> None:
    push_with_our_producer(r, keyspace, "kept")

    check_producer(r, queue="kept", keyspace=keyspace, keep=True)

    assert r.llen(keyspace.lane("kept.produced", None)) == 4


@pytest.mark.parametrize(
    ("knobs", "fails"),
    [
        ({}, []),
        ({"canonical": False}, ["bytes"]),
        ({"lanes": False}, ["lanes"]),
        ({"score_skew_ms": 5000}, ["delayed"]),
        ({"admit_groups": False}, ["groups"]),
    ],
)
def test_a_broken_producer_fails_its_check_and_no_other(
    r: redis.Redis, keyspace: KeySpace, knobs: dict[str, Any], fails: list[str]
) -> None:
    producer = ForeignProducer(r, keyspace, **knobs)
    for job in producer_manifest("foreign"):
        producer.push(job, 1_767_225_600_000)

    report = check_producer(r, queue="foreign", keyspace=keyspace)

    # It writes no events: a warning (SHOULD), not a failure.
    assert _failed_and_warned(report) == (fails, ["events"]), [check.problems for check in report.checks]


def test_a_legacy_push_fails_bytes_and_fields(r: redis.Redis, keyspace: KeySpace) -> None:
    for job in producer_manifest("node"):
        if not job.delay_seconds and not job.group_id:
            fields = json.loads(encode_job(JobPayload.create(job.name, job.properties, job_type=job.type)))
            fields = {**fields, "delaySeconds": 0, "maxAttempts": job.max_attempts}
            del fields["protocolVersion"]
            r.lpush(keyspace.lane("node.produced", None), json.dumps(fields, separators=(",", ":")))

    report = check_producer(r, queue="node", keyspace=keyspace)

    assert {"pushed", "bytes", "fields", "lanes"} <= set(report.failed())
    bytes_check = report.checks[1]
    assert any("protocolVersion" in problem or "not canonical" in problem for problem in bytes_check.problems)


def test_nothing_pushed_is_an_error(r: redis.Redis, keyspace: KeySpace) -> None:
    with pytest.raises(ConfigError, match="push the jobs"):
        check_producer(r, queue="empty", keyspace=keyspace)


def test_the_manifest_reads_back_as_itself_with_sorted_members() -> None:
    manifest = producer_manifest("m")

    assert [ManifestJob.model_validate(json.loads(json.dumps(job.to_dict()))) for job in manifest] == list(manifest)
    assert len({job.case for job in manifest}) == len(manifest)

    def sorted_everywhere(value: object) -> bool:
        if isinstance(value, dict):
            return list(value) == sorted(value) and all(sorted_everywhere(item) for item in value.values())
        if isinstance(value, list):
            return all(sorted_everywhere(item) for item in value)
        return True

    assert all(sorted_everywhere(job.properties) and job.properties["case"] == job.case for job in manifest)
    numbers = next(job for job in manifest if job.case == "numbers")
    assert '"whole":2' in numbers.expected_data() and '"big":1e+21' in numbers.expected_data()


@given(text(min_size=1), st.dictionaries(text(max_size=6), json_values(), max_size=4))
def test_a_new_job_passes_and_any_other_spelling_is_found_at_its_first_difference(
    name: str, properties: dict[str, Any]
) -> None:
    text_ = encode_job(JobPayload.create(name, properties, created_at_ms=1))
    spaced = json.dumps(json.loads(text_), separators=(", ", ": "), ensure_ascii=False)
    offset = next(i for i, (a, b) in enumerate(zip(spaced.encode(), text_.encode())) if a != b)

    assert canonical_finding("job", text_, created=True) is None
    assert canonical_finding("job", text_.encode(), created=True) is None
    finding = canonical_finding("job", spaced, created=True)
    assert finding is not None and f"from offset {offset}:" in finding
    legacy = text_.replace(',"protocolVersion":2}', "}")
    assert canonical_finding("job", legacy, created=False) is None
    assert "without protocolVersion" in str(canonical_finding("job", legacy, created=True))
