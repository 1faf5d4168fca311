"""``zenith console``: serve the web console with uvicorn; :class:`ConsoleServer` is shared with ``zenith demo``.

The console runs on a thread of its own; the main thread waits for SIGINT/SIGTERM and then asks
uvicorn to finish, so a stop is an orderly exit (status 0), never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import logging
import socket
import threading
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from zenith_protocol import ConfigError
from zenith_sdk._env import PREFIX_FIELDS
from zenith_sdk.cli._common import CliSettings, add_redis_options, console, redis_from, stop_on_signals

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from zenith_sdk.console import ConsoleSettings

__all__ = ["ConsoleServer", "add_listen_options", "console_settings", "open_socket", "register", "serve_until_stopped"]

DEFAULT_PORT = 8000
_STARTUP_POLL_S = 0.05
_STOP_JOIN_S = 10.0
_EXTRA = 'the console needs its extra: pip install "zenith-sdk[console]"'


def add_listen_options(parser: argparse.ArgumentParser, *, port_help: str) -> None:
    """``--host`` and ``--port``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, metavar="N", help=port_help)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``console`` to the command line."""
    parser = commands.add_parser(
        "console",
        help="serve the web console and its JSON API",
        description="Serve the console (pages, /api/, /api/docs) with uvicorn until SIGTERM or Ctrl-C. "
        "Settings not given here come from ZENITH_* variables (ZENITH_API_TOKENS, ZENITH_ARCHIVE_URL, ...).",
    )
    add_listen_options(parser, port_help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument(
        "--root-path", default="", metavar="PATH", help="the path a proxy serves the console under, such as /zenith"
    )
    parser.add_argument("--title", default=None, help="name shown in the page header (say production)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log each request")
    add_redis_options(parser)
    parser.set_defaults(handler=_run)


def open_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), bound before anything else starts.

    Raises:
        ConfigError: the port is taken or the address cannot be used; the message says what to pass.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is in use; pass --port with a free port (0 picks one)") from exc
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pass another --host") from exc
    return sock


class ConsoleServer:
    """uvicorn serving ``app`` on ``sock`` in a thread of its own."""

    def __init__(self, app: FastAPI, sock: socket.socket, *, root_path: str = "", access_log: bool = True) -> None:
        try:
            import uvicorn
        except ImportError as exc:  # pragma: no cover - depends on what is installed
            raise ConfigError(_EXTRA) from exc
        # log_config=None: the records go to the handlers the command line set up, in its format.
        config = uvicorn.Config(app, root_path=root_path, log_config=None, access_log=access_log, lifespan="on")
        self.server: uvicorn.Server = uvicorn.Server(config)
        self._socket = sock
        self._thread = threading.Thread(target=self._serve, name="zenith-console", daemon=True)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}{root_path.rstrip('/')}/"

    def _serve(self) -> None:
        self.server.run(sockets=[self._socket])

    def start(self, stop: threading.Event) -> bool:
        """Start serving; True once uvicorn accepts requests, False when ``stop`` was set first.

        Raises:
            ConfigError: uvicorn gave up while starting (its log says why).
        """
        self._thread.start()
        while not self.server.started:
            if not self._thread.is_alive():
                raise ConfigError("the console did not start; rerun with -v to see why")
            if stop.wait(_STARTUP_POLL_S):
                return False
        return True

    @property
    def alive(self) -> bool:
        """True while uvicorn runs."""
        return self._thread.is_alive()

    def stop(self) -> None:
        """Let uvicorn finish the requests in progress and close the socket. Safe to call more than once."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(_STOP_JOIN_S)
        self._socket.close()


def serve_until_stopped(server: ConsoleServer, stop: threading.Event) -> None:
    """Wait until ``stop`` is set (a signal) or uvicorn ends on its own."""
    # A timed wait, so the main thread returns to the interpreter to run signal handlers.
    while server.alive and not stop.wait(0.5):
        pass


def console_settings(args: argparse.Namespace, **fields: Any) -> ConsoleSettings:
    """``ConsoleSettings`` from the command line's options; the rest comes from ``ZENITH_*`` variables."""
    try:
        from zenith_sdk.console import ConsoleSettings
    except ImportError as exc:  # pragma: no cover - depends on what is installed
        raise ConfigError(_EXTRA) from exc
    options = {name: getattr(args, name, None) for name in ("title", "cluster_safe", *PREFIX_FIELDS)}
    options["redis_url"] = getattr(args, "redis", None)
    options |= fields
    return ConsoleSettings(**{name: value for name, value in options.items() if value is not None})


def _run(args: argparse.Namespace, settings: CliSettings) -> int:
    from zenith_sdk.console import create_app

    client, where = redis_from(args, settings)
    try:
        client.ping()  # an unreachable Redis is main()'s to report, before anything listens
    finally:
        client.close()
    logging.getLogger("uvicorn").setLevel(logging.INFO)  # uvicorn's start-up lines and the access log
    sock = open_socket(args.host, DEFAULT_PORT if args.port is None else args.port)
    app = create_app(console_settings(args))
    server = ConsoleServer(app, sock, root_path=args.root_path, access_log=not args.no_access_log)
    err = console(stderr=True)
    with stop_on_signals() as stop:
        try:
            if server.start(stop):
                out = console()
                out.print(escape(f"Zenith console on Redis {where}: {server.url}"))
                out.file.flush()
                err.print("stop with Ctrl-C or SIGTERM")
                serve_until_stopped(server, stop)
        finally:
            server.stop()
    err.print("console stopped")
    return 0
