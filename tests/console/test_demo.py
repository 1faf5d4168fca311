"""``zenith demo`` started as a new user would, on the machine's Redis, on a redis-server of its own, on fakeredis.

Each run waits for the URL, reads the console's API, stops the demo with Ctrl-C and checks that
every process it started is gone.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import httpx
import psutil
import redis
from patience import HANG_S
from served_cli import Served, served

from zenith_sdk.demo import DEMO_PREFIX, DEMO_QUEUES


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _read_api(demo: Served) -> list[dict[str, object]]:
    url = demo.wait_for_url()
    with httpx.Client(base_url=url, timeout=HANG_S) as http:
        health = http.get("api/health")
        assert health.status_code == 200, health.text
        assert health.json()["redis"] is True
        queues = http.get("api/queues")
        assert queues.status_code == 200, queues.text
        listed: list[dict[str, object]] = queues.json()
        return listed


def _stop_and_check(demo: Served, started: list[psutil.Process]) -> None:
    assert demo.interrupt() == 0, (demo.out, demo.err)
    gone, alive = psutil.wait_procs(started, timeout=HANG_S)
    assert not alive, f"still running after the demo stopped: {alive}"
    assert not any("Traceback" in line for line in demo.err), demo.err


def _path_with(tmp_path: Path, *programs: str) -> str:
    """A PATH holding only ``programs`` (links to the real ones)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for program in programs:
        real = shutil.which(program)
        assert real is not None, f"{program} is not on PATH"
        os.symlink(real, folder / program)
    return str(folder)


def test_demo_uses_the_redis_at_redis_url_under_its_own_prefix(redis_url: str, isolated_db: redis.Redis) -> None:
    db = isolated_db.connection_pool.connection_kwargs["db"]
    url = f"{redis_url.rsplit('/', 1)[0]}/{db}"
    isolated_db.set("someone-elses-key", "untouched")
    with served(["demo", "--port", "0"], env={"REDIS_URL": url}) as demo:
        queues = _read_api(demo)
        started = demo.children()
        assert started == [], f"it started processes on a reachable Redis: {started}"
        assert any(line.startswith("Zenith demo on Redis at") for line in demo.out), demo.out
        assert {queue["name"] for queue in queues} <= set(DEMO_QUEUES) and queues
        _stop_and_check(demo, started)
    keys = {key.decode() for key in isolated_db.scan_iter(count=1000)}
    assert "someone-elses-key" in keys and isolated_db.get("someone-elses-key") == b"untouched"
    assert {key for key in keys if not key.startswith(DEMO_PREFIX)} == {"someone-elses-key"}
    assert any(key.startswith(f"{DEMO_PREFIX}queue:") for key in keys), keys


def test_demo_starts_and_stops_a_redis_server_of_its_own(tmp_path: Path) -> None:
    env = {"REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0", "PATH": _path_with(tmp_path, "redis-server")}
    with served(["demo", "--port", "0"], env=env) as demo:
        queues = _read_api(demo)
        started = demo.children()
        servers = [child for child in started if child.name() == "redis-server"]
        assert len(servers) == 1, started
        ports = [conn.laddr.port for conn in servers[0].net_connections(kind="tcp") if conn.status == "LISTEN"]
        assert ports, "the demo's redis-server listens nowhere"
        assert {queue["name"] for queue in queues} <= set(DEMO_QUEUES) and queues
        _stop_and_check(demo, started)
    assert not any(_listening(port) for port in ports)


def test_demo_falls_back_to_fakeredis_without_redis_server(tmp_path: Path) -> None:
    env = {"REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0", "PATH": _path_with(tmp_path)}
    with served(["demo", "--port", "0"], env=env) as demo:
        queues = _read_api(demo)
        started = demo.children()
        assert started == [], f"it started processes with fakeredis: {started}"
        assert any("fakeredis" in line for line in demo.out), demo.out
        assert {queue["name"] for queue in queues} <= set(DEMO_QUEUES) and queues
        _stop_and_check(demo, started)


def test_demo_with_an_unreachable_redis_named_on_the_command_line_says_so() -> None:
    with served(["demo", "--port", "0", "--redis", f"redis://127.0.0.1:{_closed_port()}/0"]) as demo:
        assert demo.process.wait(HANG_S) == 2
    assert not any("Traceback" in line for line in demo.err), demo.err
    assert len(demo.err) == 1 and "cannot reach Redis" in demo.err[0], demo.err


def test_demo_on_a_port_asked_for_and_taken_says_so() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        with served(["demo", "--port", str(port)]) as demo:
            assert demo.process.wait(HANG_S) == 2
        assert len(demo.err) == 1 and f"port {port} on 127.0.0.1 is in use" in demo.err[0], demo.err
