"""The scripts: one object per client, one way to call, NOSCRIPT recovered in one place, read-only ones apart."""

from __future__ import annotations

import gc
import hashlib
import weakref

import pytest
import redis
from acl_users import NO_SCRIPTS, restricted_client
from counting import CountingRedis

from zenith_protocol import KeySpace
from zenith_sdk import scripts as scripts_module
from zenith_sdk.scripts import COUNT, ENQUEUE, MATCH, RELOADS, NoScriptError, Script, scripts_for

ALL = [value for value in vars(scripts_module).values() if isinstance(value, Script)]


def test_a_client_has_one_scripts_object_for_as_long_as_it_lives(redis_url: str) -> None:
    first, second = redis.Redis.from_url(redis_url), redis.Redis.from_url(redis_url)
    kept = scripts_for(first)

    assert scripts_for(first) is kept
    assert scripts_for(second) is not kept
    assert kept.client is first

    gone = weakref.ref(kept)
    del first, kept
    gc.collect()
    assert gone() is None
    second.close()


def test_only_the_scripts_that_read_say_so_and_redis_agrees_on_every_sha(r: redis.Redis) -> None:
    assert {script.name for script in ALL if script.read_only} == {"match", "count", "groups"}
    assert len({script.name for script in ALL}) == len(ALL) == 14
    for script in ALL:
        assert script.source.startswith("#!lua flags=no-writes\n") is script.read_only
        assert not any(line.startswith("--#include") for line in script.source.splitlines())
        assert script.sha == hashlib.sha1(script.source.encode()).hexdigest()
        assert r.script_load(script.source) == script.sha
        assert script.command(["k"], [1])[0] == ("EVALSHA_RO" if script.read_only else "EVALSHA")


def _group_push(space: KeySpace, raw: str, group: str = "g") -> tuple[list[str], list[str]]:
    return [space.queue("q"), space.group_active("q"), space.group_pending("q", group)], [raw, group]


def test_a_warm_pipeline_is_one_round_trip_with_no_script_exists(counting: CountingRedis, keyspace: KeySpace) -> None:
    scripts = scripts_for(counting)
    scripts.load(ENQUEUE)
    counting.round_trips.clear()

    pipe = scripts.pipeline(transaction=False)
    pipe.commands.lpush(keyspace.queue("q"), "plain")
    pipe.call(ENQUEUE, *_group_push(keyspace, "first"))

    assert pipe.execute() == [1, 1]
    assert [[args[0] for args in trip] for trip in counting.round_trips] == [["LPUSH", "EVALSHA"]]


@pytest.mark.parametrize("transaction", [False, True])
def test_calls_that_met_a_flushed_script_cache_are_repeated_and_nothing_else_is(
    counting: CountingRedis, keyspace: KeySpace, transaction: bool
) -> None:
    scripts = scripts_for(counting)
    counting.script_flush()
    counting.round_trips.clear()

    pipe = scripts.pipeline(transaction=transaction)
    pipe.commands.lpush(keyspace.queue("q"), "plain")
    pipe.call(ENQUEUE, *_group_push(keyspace, "first"))
    pipe.commands.llen(keyspace.queue("q"))
    pipe.call(ENQUEUE, *_group_push(keyspace, "second"))
    results = pipe.execute()

    # The LPUSH and LLEN ran once, before the two calls were repeated: admitted, then held back.
    assert results == [1, 1, 1, 0]
    assert counting.lrange(keyspace.queue("q"), 0, -1) == [b"first", b"plain"]
    assert counting.lrange(keyspace.group_pending("q", "g"), 0, -1) == [b"second"]
    sent = [[str(args[0]).upper() for args in trip] for trip in counting.round_trips[:3]]
    assert sent[1:] == [["SCRIPT LOAD"], ["EVALSHA", "EVALSHA"]]


def test_a_flush_between_the_reload_and_the_repeated_call_is_survived_a_few_times_over(
    r: redis.Redis, keyspace: KeySpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = scripts_for(r)
    load = scripts.load
    loads = 0

    def load_then_flush(*loaded: Script) -> None:
        nonlocal loads
        loads += 1
        load(*loaded)
        if loads < RELOADS:
            r.script_flush()  # as if another client flushed right after

    monkeypatch.setattr(scripts, "load", load_then_flush)
    r.script_flush()

    assert scripts.call(ENQUEUE, *_group_push(keyspace, "first")) == 1
    assert loads == RELOADS
    r.script_flush()
    loads = -10  # from now on every load is flushed at once: the NOSCRIPT error comes through
    with pytest.raises(NoScriptError):
        scripts.call(ENQUEUE, *_group_push(keyspace, "second"))
    assert r.lrange(keyspace.queue("q"), 0, -1) == [b"first"]


def test_a_direct_call_loads_its_script_when_redis_lost_it(r: redis.Redis, keyspace: KeySpace) -> None:
    r.script_flush()

    assert scripts_for(r).call(ENQUEUE, *_group_push(keyspace, "first")) == 1
    assert r.lrange(keyspace.queue("q"), 0, -1) == [b"first"]


def test_an_error_that_is_not_noscript_is_raised_or_returned_in_place(r: redis.Redis, keyspace: KeySpace) -> None:
    r.set(keyspace.queue("q"), "not a list")
    pipe = scripts_for(r).pipeline(transaction=False)
    pipe.call(ENQUEUE, *_group_push(keyspace, "first"))
    pipe.commands.get(keyspace.queue("q"))

    first, second = pipe.execute(raise_on_error=False)

    assert isinstance(first, redis.ResponseError) and not isinstance(first, NoScriptError)
    assert second == b"not a list"
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        scripts_for(r).call(ENQUEUE, *_group_push(keyspace, "first", "another group"))


def test_read_only_scripts_run_for_a_user_that_may_not_write(r: redis.Redis, keyspace: KeySpace) -> None:
    r.lpush(keyspace.failed("q"), "a", "b")
    r.script_flush()
    reader_rights = ("+@read", "+@connection", "+evalsha_ro", "+script|load")
    with restricted_client(r, reader_rights) as reader:
        scripts = scripts_for(reader)

        assert scripts.read_only([(COUNT, [keyspace.failed("q")], ["L"])]) == [[2]]
        assert not scripts.refused
        with pytest.raises(redis.exceptions.NoPermissionError):
            scripts.call(ENQUEUE, *_group_push(keyspace, "x"))


def test_read_only_answers_none_once_and_for_all_to_a_user_that_may_not_run_scripts(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    with restricted_client(r, NO_SCRIPTS) as user:
        reader = CountingRedis(connection_pool=user.connection_pool)
        scripts = scripts_for(reader)
        call = (COUNT, [keyspace.failed("q")], ["L"])

        assert scripts.read_only([call]) is None
        assert scripts.refused
        reader.round_trips.clear()
        assert scripts.read_only([call]) is None
        assert reader.round_trips == []


def test_read_only_takes_read_only_scripts_only_and_raises_their_errors(r: redis.Redis, keyspace: KeySpace) -> None:
    scripts = scripts_for(r)
    with pytest.raises(ValueError, match="enqueue script writes"):
        scripts.read_only([(ENQUEUE, *_group_push(keyspace, "x"))])
    with pytest.raises(redis.ResponseError, match="count reads with"):
        scripts.read_only([(COUNT, [keyspace.failed("q")], ["D"])])
    with pytest.raises(redis.ResponseError, match="one read letter per key"):
        scripts.read_only([(COUNT, [keyspace.failed("q"), keyspace.queue("q")], ["L"])])
    assert not scripts.refused
    assert scripts.read_only([(MATCH, [keyspace.failed("q")], ["list", 0, 10, "{}", 5])]) == [[0, 0]]
