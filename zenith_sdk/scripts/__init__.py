"""The Lua scripts, one ``.lua`` file each: one object per script, one way to call them, NOSCRIPT handled here.

Every script gets every key through KEYS and a script that writes touches one queue's keys only
(PROTOCOL 3.5), so the same scripts run on the wire layout and on the cluster-safe layout. Code
shared by several scripts lives in a ``_name.lua`` file, pulled in by a line ``--#include _name``.
A script whose first line is ``#!lua flags=no-writes`` only reads: it is called with EVALSHA_RO,
so it also runs on a replica and for a user whose ACL forbids writes.

Each script is a module constant (:data:`FETCH`, :data:`SETTLE`, ...); an operation holds the
one it runs. :func:`scripts_for` gives the one :class:`Scripts` of a client, which calls them:
:meth:`Scripts.call` now, :meth:`ScriptPipeline.call` queued with other commands. Calls are bare
EVALSHA (no SCRIPT EXISTS round trip before a pipeline); when Redis answers NOSCRIPT (its script
cache was flushed, or it restarted), :class:`ScriptPipeline` loads the scripts concerned and
repeats just those calls, so no caller deals with it. Read-only work calls
:meth:`Scripts.read_only`, which answers None when this client may not run scripts (an ACL
without ``@scripting``, or a server older than Redis 7): the caller then reads plainly.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import redis
from redis.client import Pipeline
from redis.connection import AbstractConnection
from redis.exceptions import NoPermissionError, NoScriptError, ResponseError

__all__ = [
    "ALERT_APPLY",
    "BULK",
    "COMPARE_AND_SET",
    "COUNT",
    "ENQUEUE",
    "EVENTS",
    "FETCH",
    "FIRE_SCHEDULE",
    "GROUPS",
    "MATCH",
    "PICK",
    "RELOADS",
    "REPAIR_GROUP",
    "REQUEUE",
    "SETTLE",
    "NoScriptError",
    "Script",
    "ScriptArg",
    "ScriptPipeline",
    "Scripts",
    "scripts_for",
]

ScriptArg = str | bytes | int | float
"""One ARGV value."""

RELOADS = 3
"""How many times calls answered NOSCRIPT are repeated after loading their scripts."""

_INCLUDE = "--#include "
_READ_ONLY = "#!lua flags=no-writes"


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.lua").read_text(encoding="utf-8")


def _source(name: str) -> str:
    """The script ``name`` with each ``--#include _lib`` line replaced by ``_lib.lua``."""
    lines = []
    for line in _read(name).splitlines(keepends=True):
        if line.startswith(_INCLUDE):
            lines.append(_read(line[len(_INCLUDE) :].strip()))
        else:
            lines.append(line)
    return "".join(lines)


@dataclass(frozen=True)
class Script:
    """One Lua script: its name, source and SHA1, and whether it only reads."""

    name: str
    source: str = field(repr=False)
    sha: str = field(repr=False)
    read_only: bool

    @classmethod
    def named(cls, name: str) -> Script:
        """The script in ``name.lua``, its includes pulled in."""
        source = _source(name)
        sha = hashlib.sha1(source.encode("utf-8")).hexdigest()
        return cls(name, source, sha, source.startswith(_READ_ONLY))

    def command(self, keys: Sequence[str], args: Sequence[ScriptArg]) -> tuple[Any, ...]:
        """The command that calls this script (EVALSHA, or EVALSHA_RO for a read-only one)."""
        return ("EVALSHA_RO" if self.read_only else "EVALSHA", self.sha, len(keys), *keys, *args)


FETCH = Script.named("fetch")
SETTLE = Script.named("settle")
REQUEUE = Script.named("requeue")
ENQUEUE = Script.named("enqueue")
EVENTS = Script.named("events")
FIRE_SCHEDULE = Script.named("fire_schedule")
BULK = Script.named("bulk")
PICK = Script.named("pick")
REPAIR_GROUP = Script.named("repair_group")
MATCH = Script.named("match")
COUNT = Script.named("count")
GROUPS = Script.named("groups")
COMPARE_AND_SET = Script.named("compare_and_set")
ALERT_APPLY = Script.named("alert_apply")

_WRITERS = (
    FETCH,
    SETTLE,
    REQUEUE,
    ENQUEUE,
    EVENTS,
    FIRE_SCHEDULE,
    BULK,
    PICK,
    REPAIR_GROUP,
    COMPARE_AND_SET,
    ALERT_APPLY,
)

_Call = tuple[int, Script, tuple[str, ...], tuple[ScriptArg, ...]]
"""A script call queued on a pipeline: its index there, the script, its keys and arguments."""


def _scripts_refused(exc: Exception) -> bool:
    """Whether ``exc`` says this client may not run scripts at all (not that a script failed)."""
    text = str(exc).lower()
    if isinstance(exc, NoPermissionError):
        return "'evalsha" in text or "'script" in text
    return isinstance(exc, ResponseError) and "unknown command" in text and "evalsha_ro" in text


class Scripts:
    """The scripts on one client; get it with :func:`scripts_for`. Thread-safe, as the client is."""

    def __init__(self, client: redis.Redis) -> None:
        # Held weakly: the registry keeps this object for as long as the client lives, not longer.
        self._client = weakref.ref(client)
        self.refused = False
        """True once Redis refused read-only scripts to this client (:meth:`read_only` then answers None)."""

    @property
    def client(self) -> redis.Redis:
        """The client these scripts run on."""
        client = self._client()
        if client is None:  # pragma: no cover - whoever calls holds the client
            raise RuntimeError("the Redis client of these scripts is gone")
        return client

    def call(self, script: Script, keys: Sequence[str], args: Sequence[ScriptArg] = ()) -> Any:
        """Run ``script`` now and return its reply (its error is raised)."""
        pipe = self.pipeline(transaction=False)
        pipe.call(script, keys, args)
        return pipe.execute()[0]

    def pipeline(self, *, transaction: bool) -> ScriptPipeline:
        """A pipeline for script calls and other commands (see :class:`ScriptPipeline`)."""
        return ScriptPipeline(self, transaction=transaction)

    def read_only(self, calls: Sequence[tuple[Script, Sequence[str], Sequence[ScriptArg]]]) -> list[Any] | None:
        """The replies of read-only script calls, sent in one round trip.

        None when this client may not run scripts: its ACL denies them, or the server (older
        than Redis 7) has no EVALSHA_RO; this is remembered, so later calls answer None at once.
        The caller then reads the keys with plain commands instead.
        """
        if self.refused:
            return None
        pipe = self.pipeline(transaction=False)
        for script, keys, args in calls:
            if not script.read_only:
                raise ValueError(f"the {script.name} script writes; call it with call() or a pipeline")
            pipe.call(script, keys, args)
        try:
            return pipe.execute()
        except (NoPermissionError, ResponseError) as exc:
            if not _scripts_refused(exc):
                raise
            self.refused = True
            return None

    def load(self, *scripts: Script) -> None:
        """SCRIPT LOAD ``scripts`` (default: every script that writes) in one round trip; idempotent."""
        pipe = self.client.pipeline(transaction=False)
        for script in scripts or _WRITERS:
            pipe.script_load(script.source)
        pipe.execute()

    def reply(self, connection: AbstractConnection, script: Script, command: tuple[Any, ...]) -> Any:
        """Read the reply to ``command``, a call of ``script`` sent on ``connection`` by its caller.

        For callers that write to a connection of their own; replies come as raw bytes. Should
        Redis answer NOSCRIPT, the script is loaded on that connection and the call sent again
        (up to :data:`RELOADS` times).
        """
        return self.replies(connection, script, [command])[0]

    def replies(self, connection: AbstractConnection, script: Script, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Read the replies to ``commands``, calls of ``script`` its caller sent together on ``connection``.

        Those answered NOSCRIPT (they did nothing) are sent again in order, as :meth:`reply` says.
        """
        replies: list[Any] = []
        lost: list[int] = []
        for index in range(len(commands)):
            try:
                replies.append(connection.read_response(disable_decoding=True))
            except NoScriptError:
                replies.append(None)
                lost.append(index)
        for index in lost:
            replies[index] = self._sent_again(connection, script, commands[index])
        return replies

    @staticmethod
    def _sent_again(connection: AbstractConnection, script: Script, command: tuple[Any, ...]) -> Any:
        """Load ``script`` on ``connection`` and send ``command`` again; its reply. NOSCRIPT again (the
        cache flushed meanwhile) is tried again, up to :data:`RELOADS` loads in all, then raised."""

        def loaded_and_sent() -> Any:
            connection.send_command("SCRIPT", "LOAD", script.source)  # type: ignore[no-untyped-call]
            connection.read_response()
            connection.send_command(*command)  # type: ignore[no-untyped-call]
            return connection.read_response(disable_decoding=True)

        for _ in range(RELOADS - 1):
            try:
                return loaded_and_sent()
            except NoScriptError:
                continue
        return loaded_and_sent()

    def _recover(self, results: list[Any], calls: list[_Call], *, transaction: bool) -> None:
        """Repeat the calls Redis answered NOSCRIPT (they did nothing), after loading their scripts.

        In a transaction the other commands ran; the calls repeated run in a transaction of their
        own. Should the cache be flushed again between the load and the calls, they are tried
        again, up to :data:`RELOADS` times in all; then their NOSCRIPT errors stay in ``results``.
        """
        lost = calls
        for _ in range(RELOADS):
            lost = [call for call in lost if isinstance(results[call[0]], NoScriptError)]
            if not lost:
                return
            self.load(*{call[1] for call in lost})
            pipe = self.client.pipeline(transaction=transaction)
            for _, script, keys, args in lost:
                pipe.execute_command(*script.command(keys, args))  # type: ignore[no-untyped-call]
            for (index, *_), result in zip(lost, pipe.execute(raise_on_error=False)):
                results[index] = result


class ScriptPipeline:
    """A redis-py pipeline (:attr:`commands`, for plain commands) that also carries script calls.

    :meth:`execute` sends everything in one round trip; calls answered NOSCRIPT are repeated
    after their scripts are loaded, so the results read as if the cache had never been flushed.
    """

    def __init__(self, scripts: Scripts, *, transaction: bool) -> None:
        self.scripts = scripts
        self.transaction = transaction
        self.commands: Pipeline = scripts.client.pipeline(transaction=transaction)
        self._calls: list[_Call] = []

    def call(self, script: Script, keys: Sequence[str], args: Sequence[ScriptArg] = ()) -> None:
        """Queue a call of ``script``; its reply comes at this position of :meth:`execute`'s list."""
        self._calls.append((len(self.commands), script, tuple(keys), tuple(args)))
        self.commands.execute_command(*script.command(keys, args))  # type: ignore[no-untyped-call]

    def __len__(self) -> int:
        return len(self.commands)

    def execute(self, *, raise_on_error: bool = True) -> list[Any]:
        """Send every queued command; their replies in order (errors raised, or returned in place)."""
        calls, self._calls = self._calls, []
        results: list[Any] = self.commands.execute(raise_on_error=False)
        self.scripts._recover(results, calls, transaction=self.transaction)
        if raise_on_error:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return results


_BY_CLIENT: weakref.WeakKeyDictionary[redis.Redis, Scripts] = weakref.WeakKeyDictionary()


def scripts_for(client: redis.Redis) -> Scripts:
    """The :class:`Scripts` of ``client``: the same object for as long as the client lives."""
    scripts = _BY_CLIENT.get(client)
    if scripts is None:
        scripts = _BY_CLIENT.setdefault(client, Scripts(client))
    return scripts
