"""How a failure reaches a person: one line on standard error that says what is wrong and what to do.

``main()`` is the only caller of :func:`report_failure`; commands raise and never print a traceback.
Exit statuses:

====  ==========================================================================================
0     done
1     done, but something was not as asked (a job id not found, a node that failed, ...), or
      Redis refused a command (WRONGTYPE, NOPERM, read-only replica, ...)
2     bad input (an option, a URL, a cron expression, an unknown queue or job), or Redis
      cannot be reached (refused, unknown host, no such database, wrong password, timeout)
70    a bug (``EX_SOFTWARE``): an error nobody planned for; ``-vv`` shows the traceback
130   interrupted (Ctrl-C)
====  ==========================================================================================
"""

from __future__ import annotations

import os
import sys
import traceback

import redis
from pydantic import ValidationError
from redis.exceptions import NoPermissionError
from rich.console import Console
from rich.text import Text

from zenith_protocol import ProtocolError, ZenithError

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "one_line",
    "print_error",
    "report_failure",
    "validation_message",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 2, 70, 130
_DB_OUT_OF_RANGE = "DB index is out of range"
_AUTH_REPLIES = ("WRONGPASS", "NOAUTH", "invalid password", "AUTH")
_PIPELINE_PREFIX = "of pipeline caused error: "


def one_line(text: str) -> str:
    """``text`` with its line breaks (and the blanks around them) folded into single spaces."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def print_error(message: str, *, label: str = "error") -> None:
    """Write ``label: message`` as one line on standard error; ``message`` is never read as rich markup."""
    # soft_wrap: a long line stays one line, whatever the terminal width (colour only on a terminal).
    err = Console(stderr=True, highlight=False, emoji=False, markup=False, soft_wrap=True)
    err.print(Text.assemble((label, "bold red"), ": ", one_line(message)))


def validation_message(exc: ValidationError) -> str:
    """Pydantic's errors as one sentence each, ``field: message``, joined by ``; ``."""
    parts: list[str] = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        cause = error.get("ctx", {}).get("error")
        text = str(cause) if error["type"] == "value_error" and cause is not None else error["msg"]
        parts.append(f"{where}: {text}" if where else text)
    return "; ".join(parts) or str(exc)


def _redis_problem(exc: redis.RedisError, where: str) -> tuple[int, str]:
    reason = one_line(str(exc)).rstrip(".") or type(exc).__name__
    # redis-py prefixes an error inside a pipeline with "Command # N (...) of pipeline caused error: ".
    reply = reason.rpartition(_PIPELINE_PREFIX)[2]
    if isinstance(exc, redis.AuthenticationError) or (
        isinstance(exc, redis.ResponseError) and reply.startswith(_AUTH_REPLIES)
    ):
        return EXIT_UNREACHABLE, (
            f"Redis at {where} refused the credentials ({reason}); "
            "check the user name and password in --redis URL (or $REDIS_URL)"
        )
    if isinstance(exc, redis.ResponseError) and reply.startswith(_DB_OUT_OF_RANGE):
        return EXIT_UNREACHABLE, (
            f"Redis at {where} has no such database ({reason}); "
            "pass --redis URL with a database number the server has (0-15 unless configured otherwise)"
        )
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return EXIT_UNREACHABLE, (
            f"cannot reach Redis at {where} ({reason}); start Redis there or pass --redis URL (or set $REDIS_URL)"
        )
    if isinstance(exc, NoPermissionError):
        return EXIT_FAILED, f"Redis at {where} denied a command ({reason}); the Redis user needs more ACL permissions"
    if isinstance(exc, redis.ResponseError) and reply.startswith("WRONGTYPE"):
        return EXIT_FAILED, (
            f"Redis at {where} refused a command ({reason}); "
            "check that the key prefixes (--queue-prefix, ...) point at Zenith data"
        )
    if isinstance(exc, redis.ResponseError):
        return EXIT_FAILED, f"Redis at {where} refused a command ({reason}); -vv shows which one"
    return EXIT_FAILED, f"Redis at {where}: {reason}"


def _problem(exc: Exception, where: str | None) -> tuple[int, str] | None:
    """The exit status and the line for ``exc``, or None when nobody planned for it (a bug)."""
    if isinstance(exc, redis.RedisError):
        return _redis_problem(exc, where or "the URL given")
    if isinstance(exc, ProtocolError):
        return EXIT_FAILED, f"{exc}; `zenith doctor` lists every entry that does not decode"
    if isinstance(exc, ValidationError):
        return EXIT_USAGE, validation_message(exc)
    if isinstance(exc, (ZenithError, ValueError)):
        # Library code checks its arguments with ValueError (STYLE 6): it is bad input.
        return EXIT_USAGE, str(exc)
    if isinstance(exc, OSError):
        return EXIT_FAILED, str(exc)
    return None


def _quiet_stdout() -> None:
    """After a broken pipe, point standard output at /dev/null so the exit flush fails no more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. captured output)
        pass


def report_failure(exc: Exception, *, where: str | None, verbose: int) -> int:
    """Tell the person what went wrong in one line and return the exit status.

    ``where`` names the Redis in use (``host:port db N``, never a password), for Redis errors.
    With ``verbose >= 2`` the traceback comes first, for bug reports.
    """
    if isinstance(exc, BrokenPipeError):  # the reader went away (`zenith jobs q | head`): nothing to say
        _quiet_stdout()
        return EXIT_FAILED
    if verbose >= 2:
        traceback.print_exception(exc, file=sys.stderr)
    problem = _problem(exc, where)
    if problem is not None:
        status, message = problem
        print_error(message)
        return status
    after = (
        "report it with the traceback above" if verbose >= 2 else "rerun with -vv to see the traceback and report it"
    )
    print_error(f"{type(exc).__name__}: {exc}; this is a bug — {after}", label="internal error")
    return EXIT_INTERNAL
