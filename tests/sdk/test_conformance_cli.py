"""``zenith conformance``, run as a person or a CI job runs it: exit statuses, tables, ``--json``, no tracebacks."""

from __future__ import annotations

import json

import redis
from cli_run import finish, one_line, prefix_options, start, zenith
from foreign_producer import spec_of
from worker_fixtures import StartWorker

from zenith_protocol import KeySpace
from zenith_sdk import Producer
from zenith_sdk.conformance import ManifestJob, app


def _options(redis_url: str, space: KeySpace) -> list[str]:
    return ["--redis", redis_url, *prefix_options(space)]


def test_queues_prints_the_list_a_worker_is_started_with() -> None:
    result = zenith("conformance", "queues", "--queue", "ci")

    assert (result.returncode, result.stdout, result.stderr) == (0, "ci.jobs,ci.lanes,ci.paused,ci.dead\n", "")


def test_worker_run_with_json_passes_for_our_worker(
    redis_url: str, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    process = start(
        ["conformance", "worker", "--queue", "cli", "--check", "lanes", "--json", *_options(redis_url, keyspace)]
    )
    assert process.stderr is not None
    waiting = process.stderr.readline()  # it says so once the first job waits: start the worker now
    assert "cli.jobs,cli.lanes,cli.paused,cli.dead" in waiting, waiting
    start_worker(app, queues=("cli.jobs", "cli.lanes", "cli.paused", "cli.dead"))
    result = finish(process)

    assert "Traceback" not in result.stderr
    assert result.returncode == 0, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["role"] == "worker" and report["queue"] == "cli"
    assert [(c["name"], c["status"], c["sections"]) for c in report["checks"]] == [
        ("registration", "pass", ["6.1", "4.6", "4.12"]),
        ("lanes", "pass", ["4.4"]),
    ]


def test_worker_run_refuses_keys_in_use(redis_url: str, r: redis.Redis, keyspace: KeySpace) -> None:
    r.set(keyspace.paused("used.lanes"), "1")

    result = zenith("conformance", "worker", "--queue", "used", "--wait", "0.1", *_options(redis_url, keyspace))

    one_line(result, 2, "already holds data", keyspace.paused("used.lanes"))
    assert r.get(keyspace.paused("used.lanes")) == b"1"


def test_worker_run_without_a_worker_says_what_to_start(redis_url: str, keyspace: KeySpace) -> None:
    result = zenith("conformance", "worker", "--queue", "lonely", "--wait", "0.2", *_options(redis_url, keyspace))

    assert (result.returncode, result.stdout) == (2, "")
    assert "Traceback" not in result.stderr
    waiting, error = result.stderr.splitlines()
    assert (
        waiting.startswith("waiting for a worker") and "lonely.jobs,lonely.lanes,lonely.paused,lonely.dead" in waiting
    )
    assert error.startswith("error: no worker took the first job from lonely.jobs within 0.2 s")


def test_worker_run_against_an_unreachable_redis() -> None:
    result = zenith("conformance", "worker", "--redis", "redis://127.0.0.1:1/0", "--wait", "0.1")

    one_line(result, 2, "cannot reach Redis")


def test_an_unknown_check_is_a_usage_error() -> None:
    result = zenith("conformance", "worker", "--check", "speed")

    one_line(result, 2, "--check")


def _push_manifest_from_json(r: redis.Redis, space: KeySpace, text: str) -> int:
    """Push the manifest as a program reads it: from its JSON."""
    jobs = [ManifestJob.model_validate(job) for job in json.loads(text)["jobs"]]
    producer = Producer(r, keyspace=space)
    for job in jobs:
        producer.push_many([spec_of(job)])
    return len(jobs)


def test_producer_run_from_the_json_manifest(redis_url: str, r: redis.Redis, keyspace: KeySpace) -> None:
    manifest = zenith("conformance", "manifest", "--queue", "prod", "--json")
    assert manifest.returncode == 0 and manifest.stderr == ""
    assert _push_manifest_from_json(r, keyspace, manifest.stdout) == 12

    result = zenith("conformance", "producer", "--queue", "prod", *_options(redis_url, keyspace))

    assert (result.returncode, result.stderr) == (0, "")
    for name in ("pushed", "bytes", "fields", "lanes", "delayed", "groups", "index", "events"):
        assert name in result.stdout
    assert "no check failed" in result.stdout
    again = zenith("conformance", "producer", "--queue", "prod", *_options(redis_url, keyspace))
    one_line(again, 2, "push the jobs `zenith conformance manifest --queue prod` prints first")


def test_producer_run_fails_with_exit_1_and_names_the_check(redis_url: str, r: redis.Redis, keyspace: KeySpace) -> None:
    manifest = zenith("conformance", "manifest", "--queue", "bad", "--json")
    _push_manifest_from_json(r, keyspace, manifest.stdout)
    key = keyspace.lane("bad.produced", "low")
    raw = r.lpop(key)
    assert isinstance(raw, bytes)
    r.lpush(keyspace.lane("bad.produced", None), raw)  # the low job on the base lane

    result = zenith("conformance", "producer", "--queue", "bad", "--json", *_options(redis_url, keyspace))

    assert (result.returncode, result.stderr) == (1, "")
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert [c["name"] for c in report["checks"] if c["status"] == "fail"] == ["lanes"]
    lanes = next(c for c in report["checks"] if c["name"] == "lanes")
    assert "low: pushed to" in lanes["detail"]


def test_manifest_table_for_people() -> None:
    result = zenith("conformance", "manifest", "--queue", "t")

    assert result.returncode == 0
    assert "t.produced" in result.stdout and "App\\Jobs\\ConformanceJob" in result.stdout
