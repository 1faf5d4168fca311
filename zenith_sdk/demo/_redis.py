"""The demo's Redis: the one at the URL given if it answers, else a ``redis-server`` of its own, else fakeredis.

A server the demo starts is its own child: stopped by :meth:`DemoRedis.close`, and (on Linux)
sent SIGTERM by the kernel when the demo process dies, however it dies.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from zenith_protocol import ConfigError, KeySpace
from zenith_sdk.connection import RedisSettings

__all__ = [
    "DEMO_PREFIX",
    "DemoRedis",
    "choose_redis",
    "demo_keyspace",
    "die_with_parent",
    "free_port",
    "start_fakeredis",
    "start_redis_server",
]

logger = logging.getLogger(__name__)

DEMO_PREFIX = "zenith-demo:"
"""What every key of a demo on a Redis it did not start begins with."""
_PING_TRIES, _PING_DELAY_S = 200, 0.025  # at most about 5 s for a fresh redis-server to answer
_STOP_TIMEOUT_S = 5.0
_PR_SET_PDEATHSIG = 1


@dataclass
class DemoRedis:
    """Where the demo's Redis is, what it is, and how to let it go."""

    url: str
    kind: str
    """``"existing"`` (the machine's, left running), ``"redis-server"`` or ``"fakeredis"`` (the demo's own)."""
    description: str
    pid: int | None = None
    """The process id of a ``redis-server`` the demo started."""
    _close: Callable[[], None] = field(default=lambda: None, repr=False)

    @property
    def shared(self) -> bool:
        """True when the Redis is not the demo's own: its keys then carry :data:`DEMO_PREFIX`."""
        return self.kind == "existing"

    def close(self) -> None:
        """Stop the server the demo started (nothing for the machine's Redis). Safe to call more than once."""
        close, self._close = self._close, lambda: None
        close()


def demo_keyspace(shared: bool) -> KeySpace:
    """The default key layout on the demo's own server; every prefix under :data:`DEMO_PREFIX` on a shared one."""
    if not shared:
        return KeySpace()
    defaults = KeySpace()
    names = [name for name in KeySpace.model_fields if name.endswith("_prefix")]
    return KeySpace(**{name: DEMO_PREFIX + getattr(defaults, name) for name in names})


def _answers(url: str) -> bool:
    settings = RedisSettings.from_url(url)
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2, retry=Retry(NoBackoff(), 0))
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        logger.debug("demo: no Redis answers at %s", settings.location())
        return False
    finally:
        client.close()


def choose_redis(url: str, *, directory: Path, explicit: bool = False) -> DemoRedis:
    """The Redis at ``url`` if it answers PING; else a ``redis-server`` from PATH; else an in-process fakeredis.

    With ``explicit`` (the person named ``url``), an unreachable ``url`` is an error, not a reason to start one.

    Raises:
        redis.ConnectionError: ``explicit`` and nothing answers at ``url``.
        ConfigError: no Redis answers, ``redis-server`` is not on PATH and fakeredis is not installed.
    """
    where = RedisSettings.from_url(url).location()
    if _answers(url):
        return DemoRedis(url, "existing", f"Redis at {where} (keys under {DEMO_PREFIX}*, nothing else touched)")
    if explicit:
        raise redis.ConnectionError(f"nothing answers PING at {where}")
    executable = shutil.which("redis-server")
    if executable is not None:
        return start_redis_server(executable, directory)
    return start_fakeredis()


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux send the child SIGTERM when this process dies, even by SIGKILL.

    The kernel ties the signal to the thread that forked the child, so only the main thread asks for it.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: the child only calls it
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return preexec


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(process: subprocess.Popen[bytes], port: int) -> str | None:
    """None once this very process answers PING on ``port``; else why it did not."""
    probe = redis.Redis(port=port, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0))
    try:
        for _ in range(_PING_TRIES):
            if process.poll() is not None:
                return f"it exited with status {process.returncode}"
            try:
                # Another server that took the port first would answer too: make sure it is this one.
                if int(probe.info("server")["process_id"]) == process.pid:
                    return None
                return "another process answered on its port"
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(_PING_DELAY_S)
        return f"no answer after {_PING_TRIES} tries"
    finally:
        probe.close()


def start_redis_server(executable: str, directory: Path) -> DemoRedis:
    """A ``redis-server`` child on a free port of 127.0.0.1, without persistence, logging into ``directory``.

    Raises:
        ConfigError: it did not start or did not answer; the message names its log.
    """
    port = free_port()
    log_path = directory / "redis-server.log"
    command = [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(directory), "--daemonize", "no"]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo alone, which stops its workers before Redis
            preexec_fn=die_with_parent(),
        )
    problem = _wait_until_up(process, port)
    if problem is not None:
        _stop_process(process)
        raise ConfigError(f"{executable} did not start on port {port} ({problem}); see {log_path}")
    return DemoRedis(
        f"redis://127.0.0.1:{port}/0",
        "redis-server",
        f"its own redis-server on 127.0.0.1:{port} (pid {process.pid}, stopped when the demo stops)",
        pid=process.pid,
        _close=lambda: _stop_process(process),
    )


def start_fakeredis() -> DemoRedis:
    """An in-process fakeredis server on a free port of 127.0.0.1, served by a daemon thread.

    Raises:
        ConfigError: fakeredis (with Lua) is not installed.
    """
    try:
        from fakeredis import TcpFakeServer
    except ImportError as exc:
        raise ConfigError(
            "no Redis answers, redis-server is not on PATH and fakeredis is not installed: "
            'start Redis (and set REDIS_URL), install redis-server, or pip install "fakeredis[lua]"'
        ) from exc
    server = TcpFakeServer(("127.0.0.1", 0), server_type="redis")
    server.daemon_threads = True  # a connection left open never holds the demo's exit
    thread = threading.Thread(target=server.serve_forever, name="zenith-demo-fakeredis", daemon=True)
    thread.start()
    port = server.server_address[1]

    def close() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return DemoRedis(
        f"redis://127.0.0.1:{port}/0",
        "fakeredis",
        f"an in-process fakeredis on 127.0.0.1:{port} (no Redis answered and redis-server is not on PATH)",
        _close=close,
    )
