"""``zenith console``: serves the console with uvicorn, prints its URL, stops on Ctrl-C; failures are one line."""

from __future__ import annotations

import socket

import httpx
from cli_run import one_line, prefix_options, zenith
from patience import HANG_S
from served_cli import served

from zenith_protocol import KeySpace
from zenith_sdk.producer import Producer


def test_console_serves_the_api_on_the_given_prefixes_behind_a_root_path(redis_url: str, keyspace: KeySpace) -> None:
    Producer(redis_url, keyspace=keyspace).push("send-welcome", {"to": "ada@example.com"}, queue="emails")
    argv = ["console", "--port", "0", "--root-path", "/proxy", "--redis", redis_url, *prefix_options(keyspace)]
    with served(argv) as console:
        url = console.wait_for_url()
        assert url.endswith("/proxy/"), url
        # A proxy strips /proxy before it forwards; the console builds its URLs with it.
        origin = url.removesuffix("proxy/")
        with httpx.Client(base_url=origin, timeout=HANG_S) as http:
            queues = http.get("api/queues")
            assert queues.status_code == 200, queues.text
            assert [queue["name"] for queue in queues.json()] == ["emails"]
            docs = http.get("api/docs")
            assert docs.status_code == 200 and "/proxy/api/openapi.json" in docs.text
        assert console.interrupt() == 0, console.err
    assert not any("Traceback" in line for line in console.err), console.err


def test_console_on_a_taken_port_is_one_line(redis_url: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = zenith("console", "--port", str(port), "--redis", redis_url)
    one_line(result, 2, f"port {port} on 127.0.0.1 is in use", "--port")


def test_console_without_redis_is_one_line_and_listens_nowhere() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    result = zenith("console", "--port", "0", "--redis", f"redis://127.0.0.1:{closed}/0")
    one_line(result, 2, f"cannot reach Redis at 127.0.0.1:{closed}", "--redis")
    assert result.stdout == ""
