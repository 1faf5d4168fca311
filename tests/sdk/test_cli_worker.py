"""``zenith worker MODULE:APP`` and ``zenith recover`` run as real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import redis
from patience import HANG_S
from wire_data import node_job
from worker_helpers import wait_for

from zenith_protocol import EventType, KeySpace, PulseNode, decode_event_fields, decode_heartbeat, decode_pulse
from zenith_sdk.producer import JobSpec, Producer

APP_MODULE = """
import os
from pathlib import Path

from zenith_sdk.worker import App, JobContext

DONE = Path(__file__).with_name("done.txt")
PIDS = Path(__file__).with_name("pids.txt")
app = App()


@app.handler("touch")
def touch(job: JobContext) -> None:
    with DONE.open("a", encoding="utf-8") as out:
        out.write(f"{job.id} {job.properties['n']} {job.attempt}\\n")
    with PIDS.open("a", encoding="utf-8") as out:
        out.write(f"{os.getpid()}\\n")


handlers = {"touch": touch}
not_an_app = 42
"""

Run = Callable[..., subprocess.CompletedProcess[str]]
Spawn = Callable[..., subprocess.Popen[str]]


def zenith_command() -> list[str]:
    """The ``zenith`` console script next to this interpreter (or the same entry point through it)."""
    script = Path(sys.executable).with_name("zenith")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from zenith_sdk.cli import main; sys.exit(main())"]


def child_env() -> dict[str, str]:
    """This environment without settings that would redirect the CLI elsewhere."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ZENITH_") and k != "REDIS_URL"}


def prefix_options(redis_url: str, space: KeySpace) -> list[str]:
    return [
        "--redis",
        redis_url,
        "--queue-prefix",
        space.queue_prefix,
        "--console-prefix",
        space.console_prefix,
        "--zenith-prefix",
        space.zenith_prefix,
    ]


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "tests_app_module.py").write_text(textwrap.dedent(APP_MODULE), encoding="utf-8")
    return tmp_path


@pytest.fixture
def run_cli(app_dir: Path) -> Run:
    """Runs ``zenith ARGS`` to completion in the app folder."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*zenith_command(), *args], cwd=app_dir, env=child_env(), capture_output=True, text=True, timeout=HANG_S
        )

    return run


@pytest.fixture
def spawn_cli(app_dir: Path) -> Iterator[Spawn]:
    """Starts ``zenith ARGS`` in the app folder; any process still running afterwards is killed."""
    processes: list[subprocess.Popen[str]] = []

    def spawn(*args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [*zenith_command(), *args],
            cwd=app_dir,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=HANG_S)


def done_lines(app_dir: Path) -> list[str]:
    path = app_dir / "done.txt"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


# -- zenith worker ---------------------------------------------------------------------------------


def test_the_worker_command_runs_jobs_and_stops_cleanly_on_sigterm(
    redis_url: str, r: redis.Redis, keyspace: KeySpace, app_dir: Path, spawn_cli: Spawn
) -> None:
    worker_id = f"cli-{uuid.uuid4().hex[:8]}"
    process = spawn_cli(
        "worker", "tests_app_module:app", "--queues", "cli,other", "--worker-id", worker_id,
        "--concurrency", "2", *prefix_options(redis_url, keyspace),
    )  # fmt: skip
    heartbeat = keyspace.worker(worker_id)
    wait_for(lambda: r.exists(heartbeat) or process.poll() is not None, what="the worker to start")
    assert process.poll() is None, process.communicate()
    beat = decode_heartbeat(r.get(heartbeat) or b"")
    assert (beat.queues, beat.concurrency, beat.pid) == (["cli", "other"], 2, process.pid)

    ids = Producer(r, keyspace=keyspace).push_many(
        [JobSpec(name="touch", properties={"n": n}, queue="cli" if n % 2 else "other") for n in range(4)]
    )
    wait_for(lambda: len(done_lines(app_dir)) == 4, what="four jobs")
    wait_for(lambda: r.llen(keyspace.processing("cli", worker_id)) == 0, what="the acks")

    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=HANG_S)

    assert process.returncode == 0, err
    assert sorted(line.split()[0] for line in done_lines(app_dir)) == sorted(ids)
    assert all(line.endswith(" 1") for line in done_lines(app_dir))
    assert r.exists(heartbeat) == 0
    assert r.zscore(keyspace.worker_index(), worker_id) is None
    assert r.hget(keyspace.worker_queues(), worker_id) is None
    assert "4 jobs, 0 failed" in err
    completed = [decode_event_fields(f) for _id, f in r.xrange(keyspace.events()) or [] if f is not None]
    assert sorted(e.job_id or "" for e in completed if e.type is EventType.COMPLETED) == sorted(ids)


def test_the_worker_command_accepts_a_dict_of_handlers_and_no_events(
    redis_url: str, r: redis.Redis, keyspace: KeySpace, app_dir: Path, spawn_cli: Spawn
) -> None:
    worker_id = f"cli-{uuid.uuid4().hex[:8]}"
    r.lpush(keyspace.queue("default"), node_job("1700000000000-k3j9x2a", "touch", {"n": 7}, created_at=1))
    process = spawn_cli(
        "worker", "tests_app_module:handlers", "--worker-id", worker_id, "--no-events",
        *prefix_options(redis_url, keyspace),
    )  # fmt: skip

    wait_for(lambda: done_lines(app_dir) or process.poll() is not None, what="the job")
    wait_for(lambda: r.llen(keyspace.processing("default", worker_id)) == 0, what="the ack")
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=HANG_S)

    assert process.returncode == 0, err
    assert done_lines(app_dir) == ["1700000000000-k3j9x2a 7 1"]
    assert r.exists(keyspace.events(), keyspace.worker(worker_id)) == 0


def _pids(app_dir: Path) -> list[int]:
    path = app_dir / "pids.txt"
    return [int(pid) for pid in path.read_text(encoding="utf-8").split()] if path.exists() else []


def _ids_of(r: redis.Redis, keyspace: KeySpace, prefix: str) -> list[str]:
    """The registered workers whose id starts with ``prefix`` (children are ``prefix-slot-pid``)."""
    members = [m.decode() if isinstance(m, bytes) else str(m) for m in r.zrange(keyspace.worker_index(), 0, -1)]
    return [member for member in members if member.startswith(f"{prefix}-")]


def test_worker_processes_are_recycled_after_their_jobs_and_sigterm_stops_them_all(
    redis_url: str, r: redis.Redis, keyspace: KeySpace, app_dir: Path, spawn_cli: Spawn
) -> None:
    worker_id = f"cli-{uuid.uuid4().hex[:8]}"
    process = spawn_cli(
        "worker", "tests_app_module:app", "--queues", "cli", "--worker-id", worker_id, "--processes", "2",
        "--max-jobs-per-child", "5", *prefix_options(redis_url, keyspace),
    )  # fmt: skip
    ids = Producer(r, keyspace=keyspace).push_many(
        [JobSpec(name="touch", properties={"n": n}, queue="cli") for n in range(40)]
    )
    wait_for(lambda: len(done_lines(app_dir)) >= 40 or process.poll() is not None, what="forty jobs")
    wait_for(lambda: len(_ids_of(r, keyspace, worker_id)) == 2, what="two workers")
    children = psutil.Process(process.pid).children()

    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=HANG_S)

    assert process.returncode == 0, err
    assert sorted(line.split()[0] for line in done_lines(app_dir)) == sorted(ids)  # each job once
    runs = Counter(_pids(app_dir))
    assert len(runs) >= 8 and max(runs.values()) <= 5  # no process ran more than five jobs
    assert "worker: all workers stopped" in err and "Traceback" not in err
    assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
    assert _ids_of(r, keyspace, worker_id) == []  # every child deregistered
    assert not list(r.scan_iter(match=keyspace.processing("cli", "*")))  # and left no processing list


def test_sigterm_to_the_supervisor_mid_run_leaves_no_process_and_no_processing_list(
    redis_url: str, r: redis.Redis, keyspace: KeySpace, app_dir: Path, spawn_cli: Spawn
) -> None:
    worker_id = f"cli-{uuid.uuid4().hex[:8]}"
    process = spawn_cli(
        "worker", "tests_app_module:app", "--queues", "mid", "--worker-id", worker_id, "--processes", "2",
        "--concurrency", "2", *prefix_options(redis_url, keyspace),
    )  # fmt: skip
    ids = Producer(r, keyspace=keyspace).push_many(
        [JobSpec(name="touch", properties={"n": n}, queue="mid") for n in range(5_000)]
    )
    wait_for(lambda: len(done_lines(app_dir)) >= 200 or process.poll() is not None, what="jobs under way")
    children = psutil.Process(process.pid).children()
    held = sum(int(r.llen(key)) for key in r.scan_iter(match=keyspace.processing("mid", "*")))

    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=HANG_S)

    assert process.returncode == 0, err
    assert held > 0 or len(done_lines(app_dir)) == len(ids)  # the children held jobs when it came
    assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
    assert not list(r.scan_iter(match=keyspace.processing("mid", "*")))
    assert _ids_of(r, keyspace, worker_id) == []
    done = [line.split()[0] for line in done_lines(app_dir)]
    waiting = [json.loads(raw)["id"] for raw in r.lrange(keyspace.queue("mid"), 0, -1)]
    assert sorted(done + waiting) == sorted(ids)  # each job ran once or waits again, none lost


def _pulse_node(r: redis.Redis, key: str, children: int) -> PulseNode | None:
    raw = r.get(key)
    node = decode_pulse(raw) if raw is not None else None
    listed = len(node.processes or []) if node is not None else 0
    return node if node is not None and listed == (children + 1 if children else 0) else None


@pytest.mark.parametrize("processes", [1, 2])
def test_a_worker_reports_one_pulse_node_with_every_process_in_it(
    redis_url: str, r: redis.Redis, keyspace: KeySpace, spawn_cli: Spawn, processes: int
) -> None:
    process = spawn_cli(
        "worker", "tests_app_module:app", "--queues", "cli", "--processes", str(processes), "--pulse", "billing",
        "--pulse-prefix", keyspace.pulse_prefix, "--legacy-pulse-prefix", keyspace.legacy_pulse_prefix,
        *prefix_options(redis_url, keyspace),
    )  # fmt: skip
    children = processes if processes > 1 else 0
    key = keyspace.pulse("billing", f"{socket.gethostname()}-{process.pid}")
    wait_for(lambda: _pulse_node(r, key, children) or process.poll() is not None, what="the pulse node")
    node = _pulse_node(r, key, children)
    assert node is not None, process.communicate()
    pids = {child.pid for child in psutil.Process(process.pid).children()}
    nodes = [*r.scan_iter(match=keyspace.pulse("billing", "*")), *r.scan_iter(match=keyspace.legacy_pulse("*", "*"))]

    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=HANG_S)

    assert process.returncode == 0, err
    assert len(nodes) == 2  # one node, under both key forms: children write none of their own
    assert node.pid == process.pid and node.runtime.framework == "zenith worker"
    assert r.exists(key, keyspace.legacy_pulse("billing", node.id)) == 0  # deleted on the way out
    if not children:
        assert node.processes is None
        return
    listed = node.processes or []
    assert [(p.role.value, p.slot) for p in listed] == [("supervisor", None), ("child", 0), ("child", 1)]
    assert listed[0].pid == process.pid and {p.pid for p in listed[1:]} == pids
    assert node.memory.process.rss == sum(p.rss for p in listed)


def test_a_worker_process_above_its_memory_limit_is_replaced_after_its_job(
    redis_url: str, r: redis.Redis, keyspace: KeySpace, app_dir: Path, spawn_cli: Spawn
) -> None:
    process = spawn_cli(
        "worker", "tests_app_module:app", "--queues", "mem", "--max-memory-per-child", "1",
        *prefix_options(redis_url, keyspace),
    )  # fmt: skip
    ids = Producer(r, keyspace=keyspace).push_many(
        [JobSpec(name="touch", properties={"n": n}, queue="mem") for n in range(3)]
    )
    wait_for(lambda: len(done_lines(app_dir)) >= 3 or process.poll() is not None, what="three jobs")
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=HANG_S)

    assert process.returncode == 0, err
    assert sorted(line.split()[0] for line in done_lines(app_dir)) == sorted(ids)
    assert len(set(_pids(app_dir))) == 3  # every process is above 1 MiB: each ran one job, then made way


def test_worker_processes_for_an_app_that_cannot_import_say_so_once(
    redis_url: str, keyspace: KeySpace, run_cli: Run
) -> None:
    result = run_cli("worker", "no_such_module_here:app", "--processes", "4", *prefix_options(redis_url, keyspace))
    assert result.returncode == 2
    assert result.stderr.count("cannot import 'no_such_module_here'") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("tests_app_module", "expected MODULE:APP"),
        ("tests_app_module:", "expected MODULE:APP"),
        ("no_such_module_here:app", "cannot import 'no_such_module_here'"),
        ("tests_app_module:missing", "found nothing"),
        ("tests_app_module:not_an_app", "found int"),
    ],
)
def test_a_bad_module_app_exits_2_with_a_clear_message(
    redis_url: str, keyspace: KeySpace, run_cli: Run, target: str, message: str
) -> None:
    result = run_cli("worker", target, *prefix_options(redis_url, keyspace))

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_the_worker_command_takes_its_poll_interval_and_can_poll_without_waiting(
    redis_url: str, r: redis.Redis, keyspace: KeySpace, app_dir: Path, run_cli: Run, spawn_cli: Spawn
) -> None:
    refused = run_cli("worker", "tests_app_module:app", "--poll-interval", "0", *prefix_options(redis_url, keyspace))
    assert refused.returncode == 2 and "poll_interval_s" in refused.stderr and "Traceback" not in refused.stderr

    worker_id = f"cli-{uuid.uuid4().hex[:8]}"
    process = spawn_cli(
        "worker", "tests_app_module:app", "--queues", "polled", "--worker-id", worker_id, "--no-wake",
        "--poll-interval", "0.05", *prefix_options(redis_url, keyspace),
    )  # fmt: skip
    r.lpush(keyspace.queue("polled"), node_job("polled-1", "touch", {"n": 1}, created_at=1))
    wait_for(lambda: done_lines(app_dir) or process.poll() is not None, what="the polled job")
    assert [line.split()[0] for line in done_lines(app_dir)] == ["polled-1"]
    mine = [c for c in r.client_list() if c["name"] == f"zenith-worker:{worker_id}"]
    assert mine and not [c for c in mine if c["cmd"] in ("blmove", "subscribe")]  # it polls: no wait, no listener


# -- zenith recover --------------------------------------------------------------------------------


def test_recover_json_puts_back_the_jobs_of_dead_workers(
    redis_url: str, r: redis.Redis, keyspace: KeySpace, run_cli: Run
) -> None:
    raws = [node_job(f"job-{n}", "touch", {"n": n}, created_at=1) for n in range(3)]
    r.lpush(keyspace.processing("q", "dead-1"), *raws)
    seconds, _micros = r.time()
    r.zadd(keyspace.worker_index(), {"dead-1": (seconds - 600) * 1000})
    r.hset(keyspace.worker_queues(), "dead-1", json.dumps(["q"]))
    r.script_flush()  # as on a fresh Redis: the command must load what it needs

    first = run_cli("recover", "--json", *prefix_options(redis_url, keyspace))
    second = run_cli("recover", "--json", *prefix_options(redis_url, keyspace))

    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"workers": {"dead-1": {"q": 3}}, "groups": []}
    assert sorted(r.lrange(keyspace.queue("q"), 0, -1)) == sorted(raw.encode() for raw in raws)
    assert r.exists(keyspace.processing("q", "dead-1")) == 0
    assert r.zscore(keyspace.worker_index(), "dead-1") is None
    events = [decode_event_fields(f) for _id, f in r.xrange(keyspace.events()) or [] if f is not None]
    assert [(e.type, e.worker_id, e.count, e.actor) for e in events] == [
        (EventType.RECOVERED, "dead-1", 3, "zenith-cli")
    ]
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == {"workers": {}, "groups": []}
