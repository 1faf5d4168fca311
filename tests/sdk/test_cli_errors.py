"""The ``zenith`` command never shows a person a traceback: one line that says what to do, and an exit status.

The command-line cases run the real ``zenith`` console script as a child process against the
test Redis; a few cases that need an injected failure call ``main()`` in this process.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from cli_run import ZENITH, child_env, finish, one_line, prefix_options, start, zenith, zenith_all
from patience import HANG_S
from redis.exceptions import ReadOnlyError
from wire_data import node_job

from zenith_protocol import (
    ConfigError,
    ErrorKind,
    KeySpace,
    ProtocolError,
    decode_job,
    decode_schedule,
)
from zenith_sdk.cli import _queues, main
from zenith_sdk.cli._bulk_cli import ACTION_STATES
from zenith_sdk.cli._common import read_json_object
from zenith_sdk.commands import CommandListener
from zenith_sdk.connection import RedisSettings
from zenith_sdk.control import BulkAction, JobState, bulk
from zenith_sdk.schedules import Scheduler
from zenith_sdk.worker import WorkerOptions

UNREACHABLE = "redis://127.0.0.1:1/0"
UNKNOWN_HOST = "redis://no-such-host.invalid:6379/0"  # .invalid never resolves (RFC 2606)
SECRET = "not-the-password-7Q"
# Data that rich would read as markup (a closing tag with nothing open crashes a table) or as an emoji.
MARKUP = "[/] [bold]b[/bold] :lock:"
NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z

APP_MODULE = """
from zenith_sdk.worker import App, JobContext

app = App()


@app.handler("touch")
def touch(job: JobContext) -> None:
    pass
"""


# -- URLs and options ------------------------------------------------------------------------------


def with_db(url: str, db: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


def with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{user}:{password}@{host}", parts.path, parts.query, ""))


def host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


@pytest.fixture
def opts(redis_url: str, keyspace: KeySpace) -> list[str]:
    """``--redis`` and every prefix option, pointing the command at this test's key space."""
    return ["--redis", redis_url, *prefix_options(keyspace)]


@pytest.fixture
def acl_user(r: redis.Redis) -> Iterator[str]:
    """A temporary Redis user (password ``SECRET``) that may run everything but SCAN; deleted afterwards."""
    name = f"zenith-cli-test-{uuid.uuid4().hex[:8]}"
    r.acl_setuser(name, enabled=True, passwords=[f"+{SECRET}"], commands=["+@all", "-scan"], keys=["*"], channels=["*"])
    try:
        yield name
    finally:
        r.acl_deluser(name)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections (the kernel's backlog) and never answers: every read times out."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        port: int = server.getsockname()[1]
        yield port


def _failed(job_id: str, name: str, error: str, **extra: object) -> str:
    return node_job(job_id, name, {"email": "a@x.io"}, created_at=NOW, attempts=3, error=error, failedAt=NOW, **extra)


# -- 1. Redis cannot be reached: every command says where and what to do, exit 2 -------------------

REDIS_COMMANDS = {
    "queues": ["queues"],
    "jobs": ["jobs", "q"],
    "job": ["job", "q", "id-1"],
    "retry": ["retry", "q", "--all", "--yes"],
    "delete": ["delete", "q", "id-1", "--yes"],
    "pause": ["pause", "q"],
    "resume": ["resume", "q"],
    "purge": ["purge", "q", "--yes"],
    "clear-failed": ["clear-failed", "q", "--yes"],
    "push": ["push", "q", "welcome"],
    "search": ["search", "anything"],
    "schedules-list": ["schedules", "list"],
    "schedules-add": ["schedules", "add", "nightly", "0 3 * * *", "q", "build"],
    "schedules-remove": ["schedules", "remove", "nightly", "--yes"],
    "schedules-pause": ["schedules", "pause", "nightly"],
    "schedules-resume": ["schedules", "resume", "nightly"],
    "schedules-run": ["schedules", "run", "nightly"],
    "command": ["command", "billing", "RETRY_JOB", "--queue", "q", "--wait", "0.2"],
    "recover": ["recover"],
    "doctor": ["doctor"],
    "pulse-once": ["pulse", "--service", "sidecar", "--once"],
    "workers": ["workers"],
    "nodes": ["nodes"],
}


# Every command meets a refused connection, and one of the other failures in turn (each one many commands).
OTHER_FAILURES = ("db-out-of-range", "wrong-password", "unknown-host")
UNREACHABLE_CASES = {
    f"{name}-{OTHER_FAILURES[n % len(OTHER_FAILURES)]}": (argv, OTHER_FAILURES[n % len(OTHER_FAILURES)])
    for n, (name, argv) in enumerate(REDIS_COMMANDS.items())
}


@pytest.mark.parametrize(("argv", "failure"), UNREACHABLE_CASES.values(), ids=UNREACHABLE_CASES.keys())
def test_every_command_says_in_one_line_that_redis_cannot_be_reached(
    redis_url: str, acl_user: str, argv: list[str], failure: str
) -> None:
    url, texts = {
        "db-out-of-range": (with_db(redis_url, "99"), (f"{host_port(redis_url)} db 99", "DB index is out of range")),
        "wrong-password": (
            with_user(redis_url, acl_user, "wrong-" + SECRET),
            (f"{host_port(redis_url)} db", "refused the credentials", "check the user name and password"),
        ),
        "unknown-host": (UNKNOWN_HOST, ("cannot reach Redis at no-such-host.invalid:6379 db 0",)),
    }[failure]

    refused, other = zenith_all([[*argv, "--redis", UNREACHABLE], [*argv, "--redis", url]])

    one_line(refused, 2, "cannot reach Redis at 127.0.0.1:1 db 0", "Connection refused", "--redis URL")
    assert SECRET not in one_line(other, 2, *texts, "--redis URL")
    assert refused.stdout == other.stdout == ""


def test_a_server_that_never_answers_is_unreachable_too(silent_server: int) -> None:
    # URL options override the client's defaults: a short timeout keeps the test quick.
    silent = f"redis://127.0.0.1:{silent_server}/0?socket_timeout=0.2&socket_connect_timeout=0.2"
    results = zenith_all([["queues", "--redis", silent], ["pulse", "--service", "side", "--once", "--redis", silent]])
    for result in results:
        one_line(result, 2, f"cannot reach Redis at 127.0.0.1:{silent_server} db 0", "Timeout")


def test_the_redis_url_from_the_environment_is_named_in_the_message() -> None:
    env = {**child_env(), "REDIS_URL": "redis://127.0.0.1:1/3"}
    process = subprocess.run([*ZENITH, "queues"], env=env, capture_output=True, text=True, timeout=HANG_S)
    one_line(process, 2, "127.0.0.1:1 db 3", "$REDIS_URL")


# -- 2. other Redis errors, bad input and bugs -----------------------------------------------------


def test_a_denied_command_and_a_wrongtype_reply_are_one_line_with_exit_1(
    redis_url: str, r: redis.Redis, keyspace: KeySpace, acl_user: str, opts: list[str]
) -> None:
    r.lpush(keyspace.queue("q"), node_job("w-1", "work", {}, created_at=NOW))
    r.set(keyspace.failed("q"), "not a list")
    allowed = with_user(redis_url, acl_user, SECRET)

    denied, wrong_type = zenith_all(
        [
            ["queues", "--redis", allowed, *prefix_options(keyspace)],
            ["jobs", "q", "--state", "failed", *opts],
        ]
    )

    assert SECRET not in one_line(denied, 1, "denied a command", "permissions to run the 'scan' command", "ACL")
    one_line(wrong_type, 1, "refused a command", "WRONGTYPE", "--queue-prefix")


LIMITS = {
    "limit-0": (["jobs", "q", "--limit", "0"], "--limit: must be from 1 to 1000, got 0"),
    "limit-5000": (["jobs", "q", "--limit", "5000"], "--limit: must be from 1 to 1000, got 5000"),
    "offset-negative": (["jobs", "q", "--offset", "-1"], "--offset: must be at least 0, got -1"),
    "limit-not-a-number": (["jobs", "q", "--limit", "ten"], "--limit: 'ten' is not a whole number"),
    "search-limit-0": (["search", "x", "--limit", "0"], "--limit: must be at least 1, got 0"),
    "doctor-sample-0": (["doctor", "--sample", "0"], "--sample: must be at least 1, got 0"),
    "scheduler-interval-0": (["scheduler", "--interval", "0"], "--interval: must be positive"),
    "scheduler-interval-text": (["scheduler", "--interval", "soon"], "--interval: 'soon' is not a number"),
}


def test_limits_out_of_range_are_refused_by_the_parser_in_one_line() -> None:
    # The parser refuses them before anything connects: no Redis is named at all.
    cases = [LIMITS[name] for name in ("limit-0", "limit-5000", "offset-negative")]
    for (argv, message), result in zip(cases, zenith_all([argv for argv, _message in cases]), strict=True):
        line = one_line(result, 2, message, "see `zenith jobs --help`")
        assert line.startswith(f"zenith {argv[0]}: error: argument ")


@pytest.mark.parametrize(("argv", "message"), LIMITS.values(), ids=LIMITS.keys())
def test_every_limit_names_its_range(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err


def test_rejected_option_values_are_one_pydantic_sentence(tmp_path: Path, opts: list[str]) -> None:
    (tmp_path / "tiny_app.py").write_text(textwrap.dedent(APP_MODULE), encoding="utf-8")

    worker, push = zenith_all(
        [
            ["worker", "tiny_app:app", "--concurrency", "0", *opts],
            ["push", "q", "welcome", "--max-attempts", "0", *opts],
        ],
        cwd=tmp_path,
    )

    assert one_line(worker, 2) == "error: concurrency: Input should be greater than or equal to 1"
    assert one_line(push, 2) == "error: max_attempts: Input should be greater than or equal to 1"


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (redis.AuthenticationError("Authentication required."), 2, "refused the credentials"),
        (redis.ResponseError("NOAUTH Authentication required."), 2, "refused the credentials"),
        (redis.ResponseError("WRONGPASS invalid username-password pair"), 2, "refused the credentials"),
        (redis.TimeoutError("Timeout reading from socket"), 2, "cannot reach Redis at 127.0.0.1:1 db 0"),
        (redis.ResponseError("WRONGTYPE Operation against a key"), 1, "refused a command (WRONGTYPE"),
        (redis.ResponseError("Command # 2 (LLEN q) of pipeline caused error: WRONGTYPE Op"), 1, "--queue-prefix"),
        (ReadOnlyError("You can't write against a read only replica."), 1, "refused a command (You can't write"),
        (redis.ResponseError("ERR unknown command 'X'"), 1, "-vv shows which one"),
        (redis.DataError("Invalid input of type: 'dict'"), 1, "Redis at 127.0.0.1:1 db 0: Invalid input"),
        (ProtocolError("job", ErrorKind.INVALID_JSON, "not JSON", raw="{x"), 1, "zenith doctor"),
        (ConfigError("queue name 'a:b' contains ':'"), 2, "error: queue name"),
        (ValueError("wait_s must be zero or a positive number\nof seconds"), 2, "positive number of seconds"),
        (PermissionError(13, "Permission denied", "/x"), 1, "Permission denied"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_each_kind_of_failure_has_its_status_and_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception, status: int, words: str
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(_queues, "queue_snapshots", fail)
    assert main(["queues", "--redis", UNREACHABLE]) == status
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and words in err and "Traceback" not in err


def test_a_validation_error_names_each_field(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Exception) as caught:
        WorkerOptions(concurrency=0, prefetch=-1)

    def fail(*args: object, **kwargs: object) -> None:
        raise caught.value

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_queues, "queue_snapshots", fail)
        assert main(["queues", "--redis", UNREACHABLE]) == 2
    assert capsys.readouterr().err == (
        "error: concurrency: Input should be greater than or equal to 1; "
        "prefetch: Input should be greater than or equal to 0\n"
    )


def test_a_bug_is_one_line_with_exit_70_and_minus_vv_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def bug(*args: object, **kwargs: object) -> None:
        raise KeyError("lanes")

    monkeypatch.setattr(_queues, "queue_snapshots", bug)

    assert main(["queues", "--redis", UNREACHABLE]) == 70
    err = capsys.readouterr().err
    assert err == (
        "internal error: KeyError: 'lanes'; this is a bug — rerun with -vv to see the traceback and report it\n"
    )
    assert main(["-vv", "queues", "--redis", UNREACHABLE]) == 70
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "in bug" in err
    last = err.splitlines()[-1]
    assert last == "internal error: KeyError: 'lanes'; this is a bug — report it with the traceback above"


def test_ctrl_c_exits_130_quietly(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_queues, "queue_snapshots", interrupted)
    assert main(["queues", "--redis", UNREACHABLE]) == 130
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("output", [[], ["--json"]], ids=["table", "json"])
def test_a_reader_that_goes_away_is_no_error(output: list[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # `zenith ... | head` after head has exited: every write fails with EPIPE
    try:
        process = subprocess.run(
            [*ZENITH, "doctor", "--vectors", *output],
            env=child_env(),
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=HANG_S,
        )
    finally:
        os.close(write_end)
    assert process.returncode == 1
    assert process.stderr == b""


def test_a_broken_pipe_inside_this_process_ends_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def gone(*args: object, **kwargs: object) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(_queues, "queue_snapshots", gone)
    assert main(["queues", "--redis", UNREACHABLE]) == 1
    assert capsys.readouterr() == ("", "")


def test_queues_json_lists_the_queues(opts: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["queues", "--json", *opts]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_bad_environment_value_is_one_line() -> None:
    env = {**child_env(), "ZENITH_CLUSTER_SAFE": "maybe"}
    process = subprocess.run([*ZENITH, "queues"], env=env, capture_output=True, text=True, timeout=HANG_S)
    one_line(process, 2, "error: cluster_safe: Input should be a valid boolean")


def test_python_minus_m_runs_the_same_command() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "zenith_sdk.cli", "--version"], env=child_env(), capture_output=True, text=True
    )
    assert process.returncode == 0 and process.stdout.startswith("zenith ")


# -- 3. a cron expression that never fires --------------------------------------------------------


def test_schedules_add_refuses_a_cron_that_never_fires(r: redis.Redis, keyspace: KeySpace, opts: list[str]) -> None:
    never, fine = zenith_all(
        [
            ["schedules", "add", "feb-30", "0 0 30 2 *", "reports", "build", *opts],
            ["schedules", "add", "feb-29", "0 0 29 2 *", "reports", "build", "--json", *opts],
        ]
    )

    one_line(never, 2, "schedule 'feb-30'", "'0 0 30 2 *'", "never fires")
    assert r.exists(keyspace.schedule("feb-30")) == 0
    assert fine.returncode == 0, fine.stderr  # a leap day is rare, not impossible
    assert json.loads(fine.stdout)["id"] == "feb-29"


# -- 4. data from Redis is shown as it is, never as markup or emoji -------------------------------


@pytest.fixture
def odd_jobs(r: redis.Redis, keyspace: KeySpace) -> tuple[str, str, str]:
    """A failed, a delayed and a waiting job whose id, name and error are full of markup and emoji codes."""
    failed = f"f{MARKUP}"
    r.lpush(keyspace.failed("q"), _failed(failed, f"name {MARKUP}", f"error {MARKUP}"))
    r.zadd(keyspace.delayed("q"), {node_job(f"d{MARKUP}", f"later {MARKUP}", {}, created_at=NOW): NOW})
    r.lpush(keyspace.queue("q"), node_job(f"w{MARKUP}", f"now {MARKUP}", {"text": MARKUP}, created_at=NOW))
    r.lpush(keyspace.queue("q"), json.dumps({"note": f"later {MARKUP}"}))  # not a job: listed as undecodable
    return failed, f"d{MARKUP}", f"w{MARKUP}"


def test_job_data_is_printed_literally(odd_jobs: tuple[str, str, str], opts: list[str]) -> None:
    failed, delayed, waiting = odd_jobs

    queues, listing, one, dry_run, search, found, preview, missing = zenith_all(
        [
            ["queues", *opts],
            ["jobs", "q", "--state", "failed", *opts],
            ["job", "q", delayed, *opts],
            ["retry", "q", failed, delayed, "--dry-run", *opts],
            ["search", "later", *opts],
            ["search", "later", "--json", *opts],
            ["delete", "q", waiting, *opts],  # not a terminal: shows what it would delete, then refuses to ask
            ["job", "q", f"nope{MARKUP}", *opts],
        ]
    )

    for result, texts in (
        (queues, ["q", "1", "2"]),
        (listing, [failed, f"name {MARKUP}", f"error {MARKUP}"]),
        (one, [delayed, f"later {MARKUP}"]),
        (dry_run, [failed, delayed, f"error {MARKUP}", "dry run: 2 failed or delayed jobs"]),
        (search, [delayed, f"later {MARKUP}", "(undecodable)", f'raw input: b\'{{"note": "later {MARKUP}"}}\'']),
    ):
        assert result.returncode == 0, result.stderr
        for text in texts:
            assert text in result.stdout, (text, result.stdout)
    assert found.returncode == 0, found.stderr
    rows = json.loads(found.stdout)
    assert sorted(str(row["id"]) for row in rows) == sorted(["None", delayed])
    assert preview.returncode == 1 and waiting in preview.stderr and f"now {MARKUP}" in preview.stderr
    assert "Traceback" not in preview.stderr
    one_line(missing, 2, f"job 'nope{MARKUP}' not found")


def test_schedules_list_prints_ids_and_job_names_literally(r: redis.Redis, keyspace: KeySpace, opts: list[str]) -> None:
    with Scheduler(r, keyspace=keyspace, events=False) as scheduler:
        scheduler.register("nightly:lock:", "0 3 * * *", "reports", f"build {MARKUP}", actor="ann")
    r.hset(keyspace.schedule("broken:lock:"), mapping={"id": "broken:lock:", "cron": f"0 3 * * * {MARKUP}"})

    result = zenith("schedules", "list", *opts)

    assert result.returncode == 0, result.stderr
    for text in ("nightly:lock:", f"build {MARKUP}", "broken:lock:"):
        assert text in result.stdout
    assert "broken:lock:" in result.stderr and "Traceback" not in result.stderr


def test_command_replies_are_printed_literally(redis_url: str, keyspace: KeySpace, opts: list[str]) -> None:
    client = redis.Redis.from_url(redis_url)
    listener = CommandListener(
        client, "billing", node_id="web[/]", keyspace=keyspace, handlers={"RETRY_JOB": lambda command: MARKUP}
    )
    listener.start()
    try:
        assert listener.wait_subscribed(5)
        result = zenith("command", "billing", "RETRY_JOB", "--queue", "q", *opts)
    finally:
        listener.stop()
        client.close()

    assert result.returncode == 0, result.stderr
    assert "web[/]" in result.stdout and MARKUP in result.stdout


def test_recover_pulse_and_doctor_print_data_literally(r: redis.Redis, keyspace: KeySpace, opts: list[str]) -> None:
    dead = f"dead{MARKUP}"
    r.lpush(keyspace.processing("q", dead), node_job("job-1", "touch", {}, created_at=NOW))
    seconds, _micros = r.time()
    r.zadd(keyspace.worker_index(), {dead: (seconds - 600) * 1000})
    r.hset(keyspace.worker_queues(), dead, json.dumps(["q"]))
    r.lpush(f"{keyspace.queue_prefix}odd{MARKUP}", "x")  # not a Zenith structure: listed by name
    r.set(f"{keyspace.queue_prefix}bold[bold]", "x")  # a queue key of the wrong type: invalid

    recover, pulse, doctor = zenith_all(
        [
            ["recover", *opts],
            ["pulse", "--service", "side[/]", "--framework", MARKUP, "--once", *opts],
            ["doctor", *opts],
        ]
    )

    assert recover.returncode == 0, recover.stderr
    assert f"{dead}: put back 1 jobs" in recover.stdout
    assert pulse.returncode == 0, pulse.stderr
    assert "side[/]" in pulse.stdout and MARKUP in pulse.stdout
    assert doctor.returncode == 1, doctor.stderr
    assert f"odd{MARKUP}" in doctor.stdout and "bold[bold]: wrong_type" in doctor.stdout
    assert doctor.stderr == ""


def test_the_worker_banner_prints_its_id_literally(tmp_path: Path, opts: list[str]) -> None:
    (tmp_path / "tiny_app.py").write_text(textwrap.dedent(APP_MODULE), encoding="utf-8")
    worker_id = "w[/][bold]b[/bold]:lock:"  # Redis names its connection after it: no spaces
    argv = ["-v", "worker", "tiny_app:app", "--worker-id", worker_id, "--queues", "q", *opts]
    process = start(argv, cwd=tmp_path)
    seen: list[str] = []
    try:
        assert process.stderr is not None
        # Stop it once its loop runs (logged at -v), when SIGTERM is a graceful stop.
        while not seen or "started on queues" not in seen[-1]:
            line = process.stderr.readline()
            assert line, seen
            seen.append(line)
        process.send_signal(signal.SIGTERM)
    finally:
        result = finish(process)
    assert f"worker {worker_id}: 1 handlers ['touch'], queues ['q']" in "".join(seen)
    assert result.returncode == 0, result.stderr
    assert f"worker {worker_id} stopped" in result.stderr


# -- 5. a database that is not a number -----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/abc",
        "redis://127.0.0.1:6379/-1",
        "redis://127.0.0.1:6379/1x",
        "redis://127.0.0.1:6379?db=abc",
        "redis://127.0.0.1:6379/0?db=-2",
        "unix:///tmp/redis.sock?db=two",
    ],
)
def test_a_database_that_is_not_a_whole_number_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="must be a whole number of 0 or more"):
        RedisSettings.from_url(url)


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("redis://127.0.0.1:6379/0", "127.0.0.1:6379 db 0"),
        ("redis://127.0.0.1:6380", "127.0.0.1:6380 db 0"),
        ("redis://127.0.0.1/", "127.0.0.1:6379 db 0"),
        (f"redis://ann:{SECRET}@cache.internal:7000/12", "cache.internal:7000 db 12"),
        ("rediss://[::1]:6379/3?db=4", "[::1]:6379 db 4"),
        ("unix:///run/redis.sock?db=2", "/run/redis.sock db 2"),
        ("redis://", "localhost:6379 db 0"),
    ],
)
def test_a_good_url_says_where_it_points_without_the_password(url: str, where: str) -> None:
    assert RedisSettings.from_url(url).location() == where


def test_an_unreadable_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid Redis URL 'redis://\\[::1/0'"):
        RedisSettings.from_url("redis://[::1/0")


def test_the_password_never_appears_in_a_url_error() -> None:
    with pytest.raises(ConfigError) as caught:
        RedisSettings.from_url(f"redis://ann:{SECRET}@h:1/x?password={SECRET}")
    assert SECRET not in str(caught.value)
    with pytest.raises(ConfigError, match="Port") as port:
        RedisSettings.from_url(f"redis://ann:{SECRET}@h:99999/0").location()
    assert SECRET not in str(port.value)


def test_the_command_refuses_a_database_that_is_not_a_number(redis_url: str) -> None:
    one_line(zenith("queues", "--redis", with_db(redis_url, "abc")), 2, "must be a whole number", "'abc'")


# -- 6. --json exits like the table form ----------------------------------------------------------

FAILING = {
    "no-node-subscribed": (["command", "billing", "RETRY_JOB", "--queue", "q", "--node", "ghost", "--wait", "0.2"], 1),
    "unknown-queue": (["jobs", "ghost"], 2),
    "unknown-job": (["job", "q", "nope"], 2),
    "delete-missing-id": (["delete", "q", "nope", "--yes"], 1),
    "retry-missing-id-dry-run": (["retry", "q", "nope", "--dry-run"], 1),
    "unknown-schedule": (["schedules", "run", "nope"], 2),
    "doctor-invalid": (["doctor"], 1),
}


@pytest.mark.parametrize(("argv", "status"), FAILING.values(), ids=FAILING.keys())
def test_json_output_exits_as_the_table_does(
    r: redis.Redis, keyspace: KeySpace, opts: list[str], argv: list[str], status: int
) -> None:
    r.lpush(keyspace.queue("q"), node_job("w-1", "work", {}, created_at=NOW), "garbage")

    table, as_json = zenith_all([[*argv, *opts], [*argv, "--json", *opts]])

    assert (table.returncode, as_json.returncode) == (status, status), (table.stderr, as_json.stderr)
    assert "Traceback" not in table.stderr + as_json.stderr
    if as_json.stdout:
        json.loads(as_json.stdout)


# -- 7. push --priority: only the lanes that are polled -------------------------------------------


def test_push_priority_takes_only_the_polled_lanes(r: redis.Redis, keyspace: KeySpace, opts: list[str]) -> None:
    wrong, high = zenith_all(
        [
            ["push", "q", "welcome", "--priority", "urgent", *opts],
            ["push", "q", "welcome", "--priority", "high", "--json", *opts],
        ]
    )

    one_line(wrong, 2, "--priority: invalid choice: 'urgent'", "'critical', 'high', 'low'")
    assert high.returncode == 0, high.stderr
    [raw] = r.lrange(keyspace.lane("q", "high"), 0, -1)
    assert decode_job(raw).id == json.loads(high.stdout)["id"]
    assert r.llen(keyspace.queue("q")) == 0


# -- 8. --data JSON, @FILE or - --------------------------------------------------------------------


def test_push_and_schedules_add_read_data_from_a_file_or_standard_input(
    r: redis.Redis, keyspace: KeySpace, opts: list[str], tmp_path: Path
) -> None:
    big = {"rows": ["x" * 100] * 3000, "note": MARKUP}  # about 300 KB: too big for a command line
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps(big), encoding="utf-8")
    small = json.dumps({"kind": "daily"})

    pushed_file = zenith("push", "q", "import", "--data", f"@{payload}", "--json", *opts)
    pushed_stdin = zenith("push", "q", "import", "--data", "-", "--json", *opts, stdin_text=json.dumps(big))
    added_file = zenith("schedules", "add", "a", "0 3 * * *", "q", "build", "--data", f"@{payload}", *opts)
    added_stdin = zenith("schedules", "add", "b", "0 3 * * *", "q", "build", "--data", "-", *opts, stdin_text=small)
    added_old = zenith("schedules", "add", "c", "0 3 * * *", "q", "build", "--properties", small, *opts)

    for result in (pushed_file, pushed_stdin, added_file, added_stdin, added_old):
        assert result.returncode == 0, result.stderr
    jobs = {decode_job(raw).id: decode_job(raw) for raw in r.lrange(keyspace.queue("q"), 0, -1)}
    for result in (pushed_file, pushed_stdin):
        assert jobs[json.loads(result.stdout)["id"]].properties == big
    for schedule_id, properties in (("a", big), ("b", {"kind": "daily"}), ("c", {"kind": "daily"})):
        schedule = decode_schedule(r.hgetall(keyspace.schedule(schedule_id)))
        assert schedule.job.properties == properties


def test_bad_data_is_one_line_and_writes_nothing(
    r: redis.Redis, keyspace: KeySpace, opts: list[str], tmp_path: Path
) -> None:
    add = ["schedules", "add", "s", "0 3 * * *", "q", "build"]
    missing = tmp_path / "missing.json"
    push_file, add_text = zenith_all(
        [["push", "q", "n", "--data", f"@{missing}", *opts], [*add, "--data", "{nope", *opts]]
    )
    push_stdin = zenith("push", "q", "n", "--data", "-", *opts, stdin_text="[1, 2]")

    one_line(push_file, 2, f"--data @{missing}: cannot read", "No such file or directory", "@FILE")
    one_line(add_text, 2, "--data is not JSON", "pass an object such as")
    one_line(push_stdin, 2, "--data - (standard input) must be a JSON object", "got an array")
    assert r.exists(keyspace.queue("q"), keyspace.schedule("s")) == 0


@pytest.mark.parametrize(
    ("content", "words"),
    [("{not json", "is not JSON (Expecting property name"), ("[1]", "got an array"), ('"x"', "got a string")]
    + [("3", "got a number"), ("true", "got a boolean"), ("null", "got null"), (b"\xff{}", "cannot read")],
)
def test_a_data_file_must_hold_one_json_object(tmp_path: Path, content: str | bytes, words: str) -> None:
    path = tmp_path / "data.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(words)):
        read_json_object(f"@{path}")


def test_data_is_read_inline_or_from_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    assert read_json_object('{"a": [1]}') == {"a": [1]}
    monkeypatch.setattr("sys.stdin", io.StringIO('{"from": "stdin"}'))
    assert read_json_object("-", option="--properties") == {"from": "stdin"}
    with pytest.raises(ConfigError, match="^--properties is not JSON"):
        read_json_object("", option="--properties")


# -- 9. delete and retry by id, wherever the jobs are ---------------------------------------------


@pytest.fixture
def three_states(r: redis.Redis, keyspace: KeySpace) -> None:
    r.lpush(keyspace.failed("q"), _failed("f-1", "mail", "SMTP timeout"), _failed("f-2", "mail", "SMTP timeout"))
    r.zadd(keyspace.delayed("q"), {node_job(f"d-{n}", "later", {}, created_at=NOW): NOW + n for n in (1, 2)})
    r.lpush(keyspace.queue("q"), *(node_job(f"w-{n}", "work", {}, created_at=NOW) for n in (1, 2)))


@pytest.mark.parametrize("action", ACTION_STATES.keys(), ids=lambda action: action.value)
def test_the_states_an_action_takes_by_id_are_those_bulk_accepts(
    r: redis.Redis, keyspace: KeySpace, action: BulkAction
) -> None:
    r.lpush(keyspace.queue("q"), node_job("w-1", "work", {}, created_at=NOW))
    accepted = []
    for state in JobState:
        try:
            bulk(r, "q", state, action, keyspace=keyspace, ids=["w-1"], dry_run=True, actor="ann")
        except ValueError:
            continue
        accepted.append(state)
    assert sorted(accepted) == sorted(ACTION_STATES[action])


def _ids(r: redis.Redis, key: str) -> list[str]:
    raws = cast("list[bytes]", r.zrange(key, 0, -1) if key.endswith(":delayed") else r.lrange(key, 0, -1))
    return sorted(decode_job(raw).id for raw in raws)


@pytest.mark.usefixtures("three_states")
def test_delete_by_id_finds_each_job_in_its_state_and_names_the_missing_ones(
    r: redis.Redis, keyspace: KeySpace, opts: list[str]
) -> None:
    dry_run, declined = zenith_all(
        [
            ["delete", "q", "f-1", "d-1", "w-1", "nope", "--dry-run", "--json", *opts],
            ["delete", "q", "f-1", "d-1", "w-1", *opts],  # not a terminal and no --yes: nothing happens
        ]
    )
    report = json.loads(dry_run.stdout)
    assert dry_run.returncode == 1
    assert (report["matched"], report["moved"], report["notFound"]) == (3, 0, ["nope"])
    assert (report["state"], report["states"]) == (None, ["failed", "delayed", "waiting"])
    assert sorted(entry["job"]["id"] for entry in report["sample"]) == ["d-1", "f-1", "w-1"]
    one_line(dry_run, 1, "'nope': no failed, delayed, waiting or grouped job of 'q' has this id")
    assert declined.returncode == 1 and "pass --yes" in declined.stderr
    assert _ids(r, keyspace.failed("q")) == ["f-1", "f-2"]

    done = zenith("delete", "q", "f-1", "d-1", "w-1", "f-1", "nope", "gone", "--yes", *opts)

    assert "deleted 3 of 3 matching failed, delayed or waiting jobs of 'q'" in done.stdout
    one_line(done, 1, "'nope', 'gone': no failed, delayed, waiting or grouped job of 'q' has these ids")
    assert (_ids(r, keyspace.failed("q")), _ids(r, keyspace.delayed("q"))) == (["f-2"], ["d-2"])
    assert _ids(r, keyspace.queue("q")) == ["w-2"]

    only_found = zenith("delete", "q", "f-2", "d-2", "--yes", "--json", *opts)
    assert only_found.returncode == 0, only_found.stderr
    assert json.loads(only_found.stdout)["notFound"] == [] and only_found.stderr == ""


@pytest.mark.usefixtures("three_states")
def test_retry_by_id_takes_failed_then_delayed_jobs_and_not_waiting_ones(
    r: redis.Redis, keyspace: KeySpace, opts: list[str]
) -> None:
    result = zenith("retry", "q", "f-1", "d-2", "w-1", "--yes", "--json", *opts)

    report = json.loads(result.stdout)
    assert result.returncode == 1
    assert (report["matched"], report["moved"], report["notFound"]) == (2, 2, ["w-1"])
    one_line(result, 1, "'w-1': no failed or delayed job of 'q' has this id")
    assert (_ids(r, keyspace.failed("q")), _ids(r, keyspace.delayed("q"))) == (["f-2"], ["d-1"])
    retried = [decode_job(raw) for raw in r.lrange(keyspace.queue("q"), 0, -1)]
    assert sorted((job.id, job.attempts, job.error) for job in retried if job.id in ("f-1", "d-2")) == [
        ("d-2", 0, None),
        ("f-1", 0, None),
    ]


@pytest.mark.usefixtures("three_states")
def test_ids_with_a_state_stay_in_that_state(r: redis.Redis, keyspace: KeySpace, opts: list[str]) -> None:
    result = zenith("delete", "q", "f-1", "w-1", "--state", "waiting", "--yes", *opts)

    assert result.returncode == 0, result.stderr
    assert "deleted 1 of 1 matching waiting jobs" in result.stdout
    assert _ids(r, keyspace.failed("q")) == ["f-1", "f-2"] and _ids(r, keyspace.queue("q")) == ["w-2"]
    one_line(zenith("retry", "ghost", "f-1", "--yes", *opts), 2, "queue 'ghost' not found")
