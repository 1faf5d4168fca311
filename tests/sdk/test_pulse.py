"""``Pulse`` and ``zenith pulse`` against a real Redis, including a private server that is killed and restarted."""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cli_run import one_line, prefix_options, zenith
from counting import CountingRedis
from patience import HANG_S
from redis.backoff import NoBackoff
from redis.client import Monitor
from redis.retry import Retry

from zenith_protocol import KeySpace, PulseKeyForm, PulseNode, PulseQueue, QueueSize, decode_pulse, encode_pulse
from zenith_sdk.cli import main
from zenith_sdk.demo._redis import free_port
from zenith_sdk.pulse import Pulse

_BACKGROUND_LOGGER = "zenith_sdk._background"


def _poll(predicate: Callable[[], object], delay_s: float = 0.02) -> bool:
    """True as soon as ``predicate`` is truthy; False after ``HANG_S`` (a bound, not a measurement)."""
    deadline = time.monotonic() + HANG_S
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(delay_s)
    return True


def _no_retry_client(port: int) -> redis.Redis:
    """A client that fails at once when the server is down (redis-py retries 10 times by default)."""
    return redis.Redis(host="127.0.0.1", port=port, retry=Retry(NoBackoff(), 0), socket_timeout=2)


def _reachable(call: Callable[[], object]) -> bool:
    """Whether ``call`` returns something truthy, counting a refused connection as no."""
    try:
        return bool(call())
    except redis.ConnectionError:
        return False


def _messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if text in record.getMessage()]


def _count_beats(pulse: Pulse, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Count every finished ``beat`` attempt of ``pulse``, whether it wrote or raised."""
    attempts = [0]
    original = pulse.beat

    def counting() -> PulseNode:
        try:
            return original()
        finally:
            attempts[0] += 1

    monkeypatch.setattr(pulse, "beat", counting)
    return lambda: attempts[0]


class _PrivateRedis:
    """A throwaway redis-server on a free port, without persistence, that tests may kill."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = _no_retry_client(self.port)
        try:
            if not _poll(lambda: _reachable(probe.ping)):
                raise RuntimeError(f"redis-server did not start on port {self.port}")
        finally:
            probe.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=HANG_S)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[_PrivateRedis]:
    """A private redis-server, killed at teardown whatever the test did."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH")
    server = _PrivateRedis(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.kill()


# -- what is written ----------------------------------------------------------------------------------


def test_writes_a_decodable_node_with_sane_values(r: redis.Redis, keyspace: KeySpace) -> None:
    before_ms = int(time.time() * 1000)
    pulse = Pulse("billing", r, keyspace=keyspace, interval_s=0.05, ttl_s=7)
    try:
        pulse.start()
        assert _poll(lambda: r.exists(pulse.key))
        raw = r.get(pulse.key)
        ttl = r.ttl(pulse.key)
        after_ms = int(time.time() * 1000)
    finally:
        pulse.stop()

    assert raw is not None
    node = decode_pulse(raw)
    node_id = f"{socket.gethostname()}-{os.getpid()}"
    assert pulse.key == keyspace.pulse("billing", node_id)
    identity = {"id": node_id, "service": "billing", "hostname": socket.gethostname(), "pid": os.getpid()}
    identity |= {"language": "python", "platform": sys.platform, "version": platform.python_version()}
    assert node.model_dump(mode="json", include=set(identity)) == identity
    assert node.protocol_version is not None
    assert node.cpu.cores >= 1
    assert 0 <= node.cpu.system <= 100 and 0 <= node.cpu.process <= 100
    assert 0 < node.memory.system.used <= node.memory.system.total
    assert node.memory.system.used + node.memory.system.free == node.memory.system.total
    assert node.memory.process.rss > 0
    assert node.memory.process.heap_total is None and node.memory.process.heap_used is None
    assert node.disk is not None and [disk.path for disk in node.disk] == ["/"]
    assert 0 < node.disk[0].used <= node.disk[0].total
    assert before_ms <= node.timestamp <= after_ms
    assert node.runtime.uptime_s > 0
    assert node.load_avg is not None and len(node.load_avg) == 3
    assert node.queues is None and node.meta is None
    assert 0 < ttl <= 7


def test_beat_writes_what_it_returns_under_both_keys_and_stop_deletes_both(r: redis.Redis, keyspace: KeySpace) -> None:
    pulse = Pulse("api", r, keyspace=keyspace, node_id="web-1", ttl_s=40)
    node = pulse.beat()
    keys = [keyspace.pulse("api", "web-1"), keyspace.legacy_pulse("api", "web-1")]
    raws = [r.get(key) for key in keys]

    assert list(pulse.keys) == keys and pulse.key == keys[0]
    assert raws[0] is not None and raws[0] == raws[1] and decode_pulse(raws[0]) == node
    assert all(30 < r.ttl(key) <= 40 for key in keys)
    assert not pulse.running
    pulse.stop()
    assert r.exists(*keys) == 0


def _sets_seen(monitor: Monitor, keys: set[str]) -> list[dict[str, Any]]:
    """The SET commands on ``keys`` that MONITOR reports, read until there is one per key."""
    seen: list[dict[str, Any]] = []
    while len(seen) < len(keys):
        command: dict[str, Any] = monitor.next_command()  # type: ignore[no-untyped-call]
        words = command["command"].split(" ")
        if words[0] == "SET" and words[1] in keys:
            seen.append(command)
    return seen


def test_both_key_forms_travel_in_one_round_trip(r: redis.Redis, counting: CountingRedis, keyspace: KeySpace) -> None:
    pulse = Pulse("billing", counting, keyspace=keyspace, node_id="web-1", ttl_s=25)
    with r.monitor() as monitor:  # type: ignore[no-untyped-call]
        node = pulse.beat()
        seen = _sets_seen(monitor, set(pulse.keys))

    keys = (keyspace.pulse("billing", "web-1"), keyspace.legacy_pulse("billing", "web-1"))
    payload = encode_pulse(node)
    assert counting.round_trips == [[("SET", key, payload, "EX", 25) for key in keys]]
    # What the server ran: one SET with the TTL per key, both from the same connection.
    assert sorted(command["command"].split(" ")[1] for command in seen) == sorted(keys)
    assert all(command["command"].endswith(" EX 25") for command in seen)
    assert len({(command["client_address"], command["client_port"]) for command in seen}) == 1
    pulse.stop()
    assert r.exists(*keys) == 0


@pytest.mark.parametrize(
    ("form", "written"),
    [(PulseKeyForm.PULSE, "pulse"), (PulseKeyForm.LEGACY, "legacy_pulse"), ("legacy", "legacy_pulse")],
)
def test_one_key_form_when_told(r: redis.Redis, keyspace: KeySpace, form: PulseKeyForm, written: str) -> None:
    pulse = Pulse("api", r, keyspace=keyspace, node_id="web-1", key_form=form)
    pulse.beat()
    key = getattr(keyspace, written)("api", "web-1")
    other = keyspace.legacy_pulse("api", "web-1") if written == "pulse" else keyspace.pulse("api", "web-1")

    assert pulse.keys == (key,)
    assert r.exists(key) and not r.exists(other)
    pulse.stop()
    assert not r.exists(key)


def test_one_key_when_both_prefixes_are_the_same(r: redis.Redis, counting: CountingRedis, keyspace: KeySpace) -> None:
    same = keyspace.model_copy(update={"pulse_prefix": keyspace.legacy_pulse_prefix})
    pulse = Pulse("api", counting, keyspace=same, node_id="web-1")
    pulse.beat()

    assert pulse.keys == (same.legacy_pulse("api", "web-1"),)
    assert [len(batch) for batch in counting.round_trips] == [1]
    pulse.stop()


def test_an_unknown_key_form_says_what_to_pass() -> None:
    with pytest.raises(ValueError, match="key_form must be one of 'both', 'pulse', 'legacy'"):
        Pulse("api", key_form="all")  # type: ignore[arg-type]


def test_optional_fields_are_written(r: redis.Redis, keyspace: KeySpace) -> None:
    queues = [PulseQueue(name="emails", driver="redis", size=QueueSize(waiting=3, failed=1))]
    options: dict[str, Any] = {"framework": "celery", "version": "2.4.0", "meta": {"region": "eu"}}
    pulse = Pulse("mailer", r, keyspace=keyspace, queues=lambda: queues, **options)
    pulse.beat()
    raw = r.get(pulse.key)
    pulse.stop()

    assert raw is not None
    node = decode_pulse(raw)
    assert (node.runtime.framework, node.version, node.meta) == ("celery", "2.4.0", {"region": "eu"})
    assert node.queues == queues


def test_a_failing_queues_callback_is_logged_once_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> list[PulseQueue]:
        raise KeyError("no such queue")

    pulse = Pulse("mailer", queues=broken)
    nodes = [pulse.sample(), pulse.sample()]

    assert [node.queues for node in nodes] == [None, None]
    assert len(_messages(caplog, "queues callback failed")) == 1


def test_the_first_sample_measures_cpu_since_construction() -> None:
    pulse = Pulse("cpu-check")
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # burn CPU, so a primed meter cannot read 0
        pass

    node = pulse.sample()

    assert node.cpu.process > 0
    assert node.cpu.system > 0


def test_a_missing_disk_path_is_skipped_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    missing = str(tmp_path / "not-mounted")
    pulse = Pulse("disks", disk_paths=["/", missing, str(tmp_path), "/"])

    nodes = [pulse.sample(), pulse.sample(), pulse.sample()]

    assert all([disk.path for disk in node.disk or []] == ["/", str(tmp_path)] for node in nodes)
    warnings = _messages(caplog, missing)
    assert len(warnings) == 1 and "skipped" in warnings[0]


def test_context_manager_starts_and_stops(redis_url: str, r: redis.Redis, keyspace: KeySpace) -> None:
    with Pulse("ctx", redis_url, keyspace=keyspace, interval_s=0.05, ttl_s=5) as pulse:
        assert pulse.running
        assert _poll(lambda: r.exists(pulse.key))
        assert pulse.key in repr(pulse)
    assert not pulse.running
    assert not r.exists(pulse.key)


def test_start_twice_and_restart(r: redis.Redis, keyspace: KeySpace) -> None:
    pulse = Pulse("restart", r, keyspace=keyspace, interval_s=0.05, ttl_s=5)
    try:
        pulse.start()
        pulse.start()
        assert _poll(lambda: r.exists(pulse.key))
        pulse.stop()
        assert not r.exists(pulse.key) and not pulse.running
        pulse.start()
        assert _poll(lambda: r.exists(pulse.key))
    finally:
        pulse.stop()
    assert not r.exists(pulse.key)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"service": ""}, ValueError, "non-empty name"),
        ({"service": "  "}, ValueError, "non-empty name"),
        ({"service": "billing:api"}, ValueError, "contains ':'"),
        ({"node_id": ""}, ValueError, "node_id must not be empty"),
        ({"interval_s": 0}, ValueError, "interval_s must be a positive"),
        ({"interval_s": -1.5}, ValueError, "interval_s must be a positive"),
        ({"interval_s": float("nan")}, ValueError, "interval_s must be a positive"),
        ({"interval_s": 10, "ttl_s": 10}, ValueError, "greater than interval_s=10"),
        ({"ttl_s": 0}, ValueError, "ttl_s must be a whole number"),
        ({"ttl_s": 12.5}, ValueError, "ttl_s must be a whole number"),
        ({"disk_paths": "/data"}, TypeError, r"\['/data'\], not a single string"),
    ],
)
def test_invalid_arguments_say_what_to_do(options: dict[str, Any], error: type[Exception], message: str) -> None:
    arguments: dict[str, Any] = {"service": "svc", **options}
    with pytest.raises(error, match=message):
        Pulse(**arguments)


# -- stopping never raises ----------------------------------------------------------------------------


def test_stop_with_redis_down_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    client = _no_retry_client(free_port())
    try:
        pulse = Pulse("down", client)
        pulse.stop()
        assert _messages(caplog, "not deleted")

        pulse = Pulse("down", client, interval_s=0.05, ttl_s=1)
        pulse.start()
        assert _poll(lambda: _messages(caplog, "Redis unreachable"))
        assert pulse.running
        pulse.stop()
        assert not pulse.running
    finally:
        client.close()


def test_stop_survives_a_bug(
    r: redis.Redis, keyspace: KeySpace, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    pulse = Pulse("buggy", r, keyspace=keyspace)

    def broken_delete(*keys: str) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(r, "delete", broken_delete)
    pulse.stop()

    assert _messages(caplog, "stopping failed")


# -- outages ------------------------------------------------------------------------------------------


def test_keeps_running_through_a_redis_outage(
    private_redis: _PrivateRedis, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger=_BACKGROUND_LOGGER)
    client = _no_retry_client(private_redis.port)
    pulse = Pulse("outage", client, interval_s=0.05, ttl_s=5)
    beats = _count_beats(pulse, monkeypatch)
    try:
        pulse.start()
        assert _poll(lambda: _reachable(lambda: client.exists(pulse.key)))

        private_redis.kill()
        assert _poll(lambda: _messages(caplog, "Redis unreachable"))
        failed_so_far = beats()
        assert _poll(lambda: beats() > failed_so_far), "no second attempt during the outage"
        assert pulse.running

        private_redis.start()
        assert _poll(lambda: _reachable(lambda: client.exists(pulse.key))), (
            "the key did not come back after Redis restarted"
        )
        assert pulse.running
    finally:
        pulse.stop()
        client.close()
    assert len(_messages(caplog, "Redis unreachable")) == 1
    assert len(_messages(caplog, "Redis reachable again")) == 1


def test_keeps_refreshing_after_its_connection_is_killed(redis_url: str, r: redis.Redis, keyspace: KeySpace) -> None:
    # Kill only this pulse's connections (found by client name): CLIENT KILL TYPE normal would also
    # cut every other client of the shared server, including concurrent test runs.
    name = f"zenith-pulse-test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url, client_name=name)
    pulse = Pulse("killed", client, keyspace=keyspace, interval_s=0.05, ttl_s=5)

    def connection_ids() -> set[str]:
        return {entry["id"] for entry in r.client_list() if entry.get("name") == name}

    try:
        pulse.start()
        assert _poll(lambda: r.exists(pulse.key))
        killed = connection_ids()
        assert killed
        for connection_id in killed:
            r.client_kill_filter(_id=connection_id)
        r.delete(pulse.key)

        assert _poll(lambda: r.exists(pulse.key)), "no report after the connection was killed"
        assert pulse.running
        assert connection_ids() and not connection_ids() & killed
    finally:
        pulse.stop()
        client.close()


# -- the command line ---------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    return main(argv)  # through main(): it turns bad options and an unreachable Redis into one line


def _cli_key(keyspace: KeySpace, service: str) -> str:
    return keyspace.pulse(service, f"{socket.gethostname()}-{os.getpid()}")


def test_cli_once_json_writes_and_prints_the_node(
    redis_url: str, r: redis.Redis, keyspace: KeySpace, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["pulse", "--redis", redis_url, *prefix_options(keyspace), "--service", "side"]
    status = _cli([*argv, "--once", "--json", "--ttl", "25", "--disk", "/", "--framework", "gunicorn"])

    assert status == 0
    printed = decode_pulse(json.dumps(json.loads(capsys.readouterr().out)))
    raw = r.get(_cli_key(keyspace, "side"))
    assert raw is not None and decode_pulse(raw) == printed
    assert printed.runtime.framework == "gunicorn"
    assert 0 < r.ttl(_cli_key(keyspace, "side")) <= 25


def test_cli_once_prints_a_table(
    redis_url: str, keyspace: KeySpace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["pulse", "--redis", redis_url, *prefix_options(keyspace), "--service", "side", "--once"]
    assert _cli([*argv, "--disk", "/", str(tmp_path), "--framework", "uvicorn"]) == 0

    out = capsys.readouterr().out
    for label in ("cpu", "memory", "load average", "disk /", "uvicorn"):
        assert label in out


def test_cli_key_form_option_and_setting(
    redis_url: str, r: redis.Redis, keyspace: KeySpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["pulse", "--redis", redis_url, *prefix_options(keyspace), "--once", "--json"]
    node_id = f"{socket.gethostname()}-{os.getpid()}"
    pulse_key, legacy_key = keyspace.pulse("one", node_id), keyspace.legacy_pulse("one", node_id)

    assert _cli([*argv, "--service", "one", "--key-form", "legacy"]) == 0
    assert (r.exists(pulse_key), r.exists(legacy_key)) == (0, 1)
    r.delete(legacy_key)

    monkeypatch.setenv("ZENITH_PULSE_KEY_FORM", "pulse")
    assert _cli([*argv, "--service", "one"]) == 0
    assert (r.exists(pulse_key), r.exists(legacy_key)) == (1, 0)
    r.delete(pulse_key)

    monkeypatch.delenv("ZENITH_PULSE_KEY_FORM")
    assert _cli([*argv, "--service", "one"]) == 0
    assert (r.exists(pulse_key), r.exists(legacy_key)) == (1, 1)


def test_cli_rejects_an_unknown_key_form_with_exit_2(redis_url: str) -> None:
    result = zenith("pulse", "--redis", redis_url, "--service", "one", "--once", "--key-form", "all")
    one_line(result, 2, "--key-form", "invalid choice")


def test_cli_rejects_bad_options_with_exit_2(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["pulse", "--redis", redis_url, "--service", "side", "--interval", "0", "--once"]) == 2
    assert "interval_s must be a positive" in capsys.readouterr().err


def test_cli_once_reports_unreachable_redis(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def unreachable(self: Pulse) -> PulseNode:
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(Pulse, "beat", unreachable)
    assert _cli(["pulse", "--redis", redis_url, "--service", "side", "--once"]) == 2
    assert "cannot reach Redis" in capsys.readouterr().err


def test_cli_sidecar_runs_until_sigterm_then_deletes_its_keys(
    redis_url: str, r: redis.Redis, keyspace: KeySpace
) -> None:
    key = _cli_key(keyspace, "sidecar")
    seen: list[bool] = []
    returned = threading.Event()

    def terminate_once_written() -> None:
        seen.append(_poll(lambda: returned.is_set() or r.exists(key)) and not returned.is_set())
        # Only while the command's own handler is in place: the default one would end pytest.
        if _poll(lambda: returned.is_set() or signal.getsignal(signal.SIGTERM) is not previous):
            if not returned.is_set():
                os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    killer = threading.Thread(target=terminate_once_written)
    killer.start()
    try:
        argv = ["pulse", "--redis", redis_url, *prefix_options(keyspace), "--service", "sidecar"]
        status = _cli([*argv, "--interval", "0.05", "--ttl", "5"])
    finally:
        returned.set()
        killer.join()

    assert seen == [True]
    assert status == 0
    assert r.exists(key, keyspace.legacy_pulse("sidecar", key.rsplit(":", 1)[1])) == 0
    assert signal.getsignal(signal.SIGTERM) is previous
