"""``zenith_protocol.keys``: exact wire names, custom prefixes, the cluster-safe layout, parse and SCAN patterns."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zenith_protocol import (
    LANES_IN_POLL_ORDER,
    PRIORITY_LANES,
    ConfigError,
    KeyKind,
    KeySpace,
    ParsedKey,
    PulseKeyForm,
    lane_for,
    validate_queue_name,
)
from zenith_protocol.keys import RESERVED_QUEUE_NAMES

PROPERTY = settings(max_examples=100, deadline=None)

WIRE = KeySpace()
CLUSTER = KeySpace(cluster_safe=True)
CUSTOM = KeySpace(
    queue_prefix="app1:q:",
    console_prefix="app1:console:",
    pulse_prefix="app1:pulse:",
    legacy_pulse_prefix="app1:legacy-pulse:",
    command_prefix="app1:cmd:",
    settings_prefix="app1:settings:",
    zenith_prefix="app1:z:",
)
NESTED = KeySpace(console_prefix="queue:console:", zenith_prefix="queue:zenith:", pulse_prefix="queue:pulse:")
SHARED = KeySpace(console_prefix="queue:")
"""The console prefix of a Node consumer started without a monitor prefix: the queue prefix itself."""

SPACES = {
    "wire": WIRE,
    "cluster": CLUSTER,
    "custom": CUSTOM,
    "custom-cluster": CUSTOM.model_copy(update={"cluster_safe": True}),
    "nested": NESTED,
}


# -- exact names -----------------------------------------------------------------------------------

WIRE_NAMES: list[tuple[Callable[[KeySpace], str], str]] = [
    (lambda k: k.queue("emails"), "queue:emails"),
    (lambda k: k.lane("emails", "critical"), "queue:emails:critical"),
    (lambda k: k.lane("emails", "high"), "queue:emails:high"),
    (lambda k: k.lane("emails", "low"), "queue:emails:low"),
    (lambda k: k.lane("emails", None), "queue:emails"),
    (lambda k: k.lane("emails", ""), "queue:emails"),
    (lambda k: k.delayed("emails"), "queue:emails:delayed"),
    (lambda k: k.delayed("emails", "high"), "queue:emails:high:delayed"),
    (lambda k: k.failed("emails"), "queue:emails:failed"),
    (lambda k: k.active_set("emails"), "queue:emails:active"),
    (lambda k: k.paused("emails"), "queue:emails:paused"),
    (lambda k: k.paused("emails", "low"), "queue:emails:low:paused"),
    (lambda k: k.rate_limit("emails", 28400000), "queue:emails:ratelimit:28400000"),
    (lambda k: k.processing("emails", "py-web1-4242"), "queue:emails:processing:py-web1-4242"),
    (lambda k: k.queue_keys_pattern("emails"), "queue:emails:*"),
    (lambda k: k.group_active("emails"), "queue:active"),
    (lambda k: k.group_pending("emails", "tenant-7"), "queue:pending:tenant-7"),
    (lambda k: k.schedules(), "queue:schedules"),
    (lambda k: k.schedule("nightly-report"), "queue:schedule:nightly-report"),
    (lambda k: k.schedule_lock("nightly-report", 1767236400), "queue:lock:schedule:nightly-report:1767236400"),
    (lambda k: k.worker("worker-a1b2c3"), "flux_console:worker:worker-a1b2c3"),
    (lambda k: k.legacy_worker("worker-a1b2c3"), "queue:worker:worker-a1b2c3"),
    (lambda k: k.logs_channel(), "flux_console:logs"),
    (lambda k: k.logs_history(), "flux_console:logs:history"),
    (lambda k: k.legacy_logs_history(), "queue:logs:history"),
    (lambda k: k.throughput(29453760), "flux_console:throughput:29453760"),
    (lambda k: k.metric("waiting", 29453760), "flux_console:metrics:waiting:29453760"),
    (lambda k: k.pulse("billing", "web1-4242"), "pulse:billing:web1-4242"),
    (lambda k: k.legacy_pulse("billing", "web1-4242"), "gravito:quasar:node:billing:web1-4242"),
    (lambda k: k.command_channel("billing", "web1-4242"), "gravito:quasar:cmd:billing:web1-4242"),
    (lambda k: k.command_channel("billing"), "gravito:quasar:cmd:billing:*"),
    (lambda k: k.command_reply_channel("c-1"), "zenith:cmd-reply:c-1"),
    (lambda k: k.wake_channel("emails"), "zenith:wake:emails"),
    (lambda k: k.alert_rules(), "gravito:zenith:alerts:rules"),
    (lambda k: k.alert_config(), "gravito:zenith:alerts:config"),
    (lambda k: k.maintenance_config(), "gravito:zenith:maintenance:config"),
    (lambda k: k.events(), "zenith:events"),
    (lambda k: k.queue_index(), "zenith:queues"),
    (lambda k: k.queue_counters("emails"), "zenith:counters:emails"),
    (lambda k: k.queue_counters_pattern(), "zenith:counters:*"),
    (lambda k: k.worker_index(), "zenith:workers"),
    (lambda k: k.worker_queues(), "zenith:worker-queues"),
    (lambda k: k.sweep_lock(), "zenith:sweep-lock"),
    (lambda k: k.staged_events("w-1"), "zenith:staged-events:w-1"),
    (lambda k: k.staged_events_pattern(), "zenith:staged-events:*"),
    (lambda k: k.console_task("t-1"), "zenith:console-task:t-1"),
    (lambda k: k.alerts_states(), "zenith:alerts:states"),
    (lambda k: k.alerts_outbox(), "zenith:alerts:outbox"),
    (lambda k: k.alerts_history(), "zenith:alerts:history"),
    (lambda k: k.alerts_silences(), "zenith:alerts:silences"),
    (lambda k: k.alerts_mutes(), "zenith:alerts:mutes"),
    (lambda k: k.alerts_channels(), "zenith:alerts:channels"),
    (lambda k: k.alerts_delivered("r1:queue:q:3", "webhook:ops"), "zenith:alerts:delivered:r1:queue:q:3:webhook:ops"),
]


@pytest.mark.parametrize(("build", "name"), WIRE_NAMES, ids=[name for _, name in WIRE_NAMES])
def test_default_prefixes_give_the_wire_names(build: Callable[[KeySpace], str], name: str) -> None:
    assert build(WIRE) == name


def test_every_name_builder_has_an_exact_wire_name() -> None:
    called = {name for build, _ in WIRE_NAMES for name in build.__code__.co_names}

    assert (
        _public_methods() - {"parse", "queue_key_parser", "scan_patterns"} - POLL_ORDER_METHODS - GROUP_METHODS
        <= called
    )


POLL_ORDER_METHODS = {"lanes_in_poll_order", "delayed_in_poll_order", "paused_in_poll_order"}
GROUP_METHODS = {"pulse_keys", "pulse_scan_patterns", "worker_scan_patterns"}
"""Methods that return several names built by the others (tested below)."""


def test_lanes_are_polled_critical_high_base_low() -> None:
    assert WIRE.lanes_in_poll_order("emails") == (
        "queue:emails:critical",
        "queue:emails:high",
        "queue:emails",
        "queue:emails:low",
    )
    assert WIRE.delayed_in_poll_order("emails") == (
        "queue:emails:critical:delayed",
        "queue:emails:high:delayed",
        "queue:emails:delayed",
        "queue:emails:low:delayed",
    )
    assert WIRE.paused_in_poll_order("emails") == (
        "queue:emails:critical:paused",
        "queue:emails:high:paused",
        "queue:emails:paused",
        "queue:emails:low:paused",
    )
    assert PRIORITY_LANES == ("critical", "high", "low")
    assert LANES_IN_POLL_ORDER == ("critical", "high", None, "low")


@pytest.mark.parametrize("lane", ["medium", "CRITICAL", "delayed", "1"])
def test_only_polled_lanes_have_delayed_sets_and_paused_flags(lane: str) -> None:
    with pytest.raises(ConfigError, match="not one of critical, high, low"):
        WIRE.delayed("emails", lane)
    with pytest.raises(ConfigError, match="not one of critical, high, low"):
        WIRE.paused("emails", lane)


@pytest.mark.parametrize(
    ("priority", "lane"), [("high", "high"), ("low", "low"), ("medium", None), (5, None), (None, None)]
)
def test_a_priority_names_a_lane_only_when_the_lane_is_polled(priority: object, lane: str | None) -> None:
    assert lane_for(priority) == lane


CLUSTER_NAMES: list[tuple[Callable[[KeySpace], str], str]] = [
    (lambda k: k.queue("emails"), "queue:{emails}"),
    (lambda k: k.lane("emails", "high"), "queue:{emails}:high"),
    (lambda k: k.delayed("emails"), "queue:{emails}:delayed"),
    (lambda k: k.delayed("emails", "critical"), "queue:{emails}:critical:delayed"),
    (lambda k: k.paused("emails", "critical"), "queue:{emails}:critical:paused"),
    (lambda k: k.failed("emails"), "queue:{emails}:failed"),
    (lambda k: k.processing("emails", "w1"), "queue:{emails}:processing:w1"),
    (lambda k: k.group_active("emails"), "queue:{emails}:groups:active"),
    (lambda k: k.group_pending("emails", "g1"), "queue:{emails}:groups:pending:g1"),
    (lambda k: k.schedules(), "queue:{schedules}:schedules"),
    (lambda k: k.schedule("nightly"), "queue:{schedules}:schedule:nightly"),
    (lambda k: k.schedule_lock("nightly", 1767236400), "queue:{schedules}:lock:schedule:nightly:1767236400"),
    (lambda k: k.worker("w1"), "flux_console:worker:w1"),
    (lambda k: k.legacy_worker("w1"), "queue:worker:w1"),
    (lambda k: k.events(), "zenith:{events}:stream"),
    (lambda k: k.logs_history(), "flux_console:{events}:logs:history"),
    (lambda k: k.throughput(29453760), "flux_console:{events}:throughput:29453760"),
    (lambda k: k.queue_counters("emails"), "zenith:{events}:counters:emails"),
    (lambda k: k.queue_counters_pattern(), "zenith:{events}:counters:*"),
    (lambda k: k.metric("waiting", 29453760), "flux_console:metrics:waiting:29453760"),
    (lambda k: k.alerts_states(), "zenith:{alerts}:states"),
    (lambda k: k.alerts_outbox(), "zenith:{alerts}:outbox"),
    (lambda k: k.alerts_history(), "zenith:{alerts}:history"),
    (lambda k: k.alerts_silences(), "zenith:{alerts}:silences"),
    (lambda k: k.alerts_mutes(), "zenith:{alerts}:mutes"),
    (lambda k: k.alerts_channels(), "zenith:{alerts}:channels"),
    (lambda k: k.alerts_delivered("r1:all:1", "slack"), "zenith:{alerts}:delivered:r1:all:1:slack"),
]


@pytest.mark.parametrize(("build", "name"), CLUSTER_NAMES, ids=[name for _, name in CLUSTER_NAMES])
def test_cluster_safe_layout_names(build: Callable[[KeySpace], str], name: str) -> None:
    assert build(CLUSTER) == name


def test_custom_prefixes_replace_the_defaults_verbatim() -> None:
    for build, name in WIRE_NAMES:
        expected = name
        for default, custom in [
            ("gravito:quasar:node:", "app1:legacy-pulse:"),
            ("gravito:quasar:cmd:", "app1:cmd:"),
            ("gravito:zenith:", "app1:settings:"),
            ("flux_console:", "app1:console:"),
            ("pulse:", "app1:pulse:"),
            ("zenith:", "app1:z:"),
            ("queue:", "app1:q:"),
        ]:
            if expected.startswith(default):
                expected = custom + expected[len(default) :]
                break
        assert build(CUSTOM) == expected


# -- every builder, in both layouts ----------------------------------------------------------------

_QUEUE_CHARS = st.characters(exclude_characters=":{}*?[]\\\n\r", exclude_categories=["Cs"])
QUEUE_NAMES = st.text(_QUEUE_CHARS, min_size=1, max_size=12).filter(lambda name: name not in RESERVED_QUEUE_NAMES)
IDS = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12)
SERVICES = st.text(st.characters(exclude_characters=":", exclude_categories=["Cs"]), min_size=1, max_size=8)
MINUTES = st.integers(min_value=0, max_value=10**9)


def _shadowed(space: KeySpace, name: str) -> bool:
    """True when another prefix starts with ``<queue prefix><name>:``: the queue's keys are then ambiguous."""
    nested = space.queue_prefix + name + ":"
    others = [space.console_prefix, space.pulse_prefix, space.legacy_pulse_prefix, space.settings_prefix]
    return any(prefix.startswith(nested) for prefix in [*others, space.zenith_prefix])


@st.composite
def _builder_calls(draw: st.DrawFn, space: KeySpace) -> list[tuple[str, str, ParsedKey]]:
    """(builder name, key, what parse() must return) for every key builder of ``space``."""
    q = draw(QUEUE_NAMES.filter(lambda name: not _shadowed(space, name)))
    worker, group, schedule, node = draw(IDS), draw(IDS), draw(IDS), draw(IDS)
    service = draw(SERVICES)
    lane = draw(st.sampled_from(PRIORITY_LANES))
    window, minute, epoch_s = draw(MINUTES), draw(MINUTES), draw(MINUTES)
    metric = draw(st.sampled_from(["waiting", "delayed", "failed", "workers"]))
    notification, channel = draw(IDS), draw(IDS)
    per_queue_group = q if space.cluster_safe else None
    return [
        ("queue", space.queue(q), ParsedKey(KeyKind.QUEUE, q)),
        ("lane", space.lane(q, lane), ParsedKey(KeyKind.LANE, q, lane)),
        ("delayed", space.delayed(q), ParsedKey(KeyKind.DELAYED, q)),
        ("delayed", space.delayed(q, lane), ParsedKey(KeyKind.DELAYED, q, lane)),
        ("failed", space.failed(q), ParsedKey(KeyKind.FAILED, q)),
        ("active_set", space.active_set(q), ParsedKey(KeyKind.ACTIVE_SET, q)),
        ("paused", space.paused(q), ParsedKey(KeyKind.PAUSED, q)),
        ("paused", space.paused(q, lane), ParsedKey(KeyKind.PAUSED, q, lane)),
        ("rate_limit", space.rate_limit(q, window), ParsedKey(KeyKind.RATE_LIMIT, q, str(window))),
        ("processing", space.processing(q, worker), ParsedKey(KeyKind.PROCESSING, q, worker)),
        ("group_active", space.group_active(q), ParsedKey(KeyKind.GROUP_ACTIVE, per_queue_group)),
        ("group_pending", space.group_pending(q, group), ParsedKey(KeyKind.GROUP_PENDING, per_queue_group, group)),
        ("schedules", space.schedules(), ParsedKey(KeyKind.SCHEDULES)),
        ("schedule", space.schedule(schedule), ParsedKey(KeyKind.SCHEDULE, part=schedule)),
        (
            "schedule_lock",
            space.schedule_lock(schedule, epoch_s),
            ParsedKey(KeyKind.SCHEDULE_LOCK, part=f"{schedule}:{epoch_s}"),
        ),
        ("worker", space.worker(worker), ParsedKey(KeyKind.WORKER, part=worker)),
        ("legacy_worker", space.legacy_worker(worker), ParsedKey(KeyKind.LEGACY_WORKER, part=worker)),
        ("logs_history", space.logs_history(), ParsedKey(KeyKind.LOG_HISTORY)),
        ("legacy_logs_history", space.legacy_logs_history(), ParsedKey(KeyKind.LOG_HISTORY)),
        ("throughput", space.throughput(minute), ParsedKey(KeyKind.THROUGHPUT, part=str(minute))),
        ("metric", space.metric(metric, minute), ParsedKey(KeyKind.METRIC, part=f"{metric}:{minute}")),
        ("pulse", space.pulse(service, node), ParsedKey(KeyKind.PULSE, part=f"{service}:{node}")),
        ("legacy_pulse", space.legacy_pulse(service, node), ParsedKey(KeyKind.LEGACY_PULSE, part=f"{service}:{node}")),
        ("alert_rules", space.alert_rules(), ParsedKey(KeyKind.ALERT_RULES)),
        ("alert_config", space.alert_config(), ParsedKey(KeyKind.ALERT_CONFIG)),
        ("maintenance_config", space.maintenance_config(), ParsedKey(KeyKind.MAINTENANCE_CONFIG)),
        ("events", space.events(), ParsedKey(KeyKind.EVENTS)),
        ("queue_index", space.queue_index(), ParsedKey(KeyKind.QUEUE_INDEX)),
        ("queue_counters", space.queue_counters(q), ParsedKey(KeyKind.QUEUE_COUNTERS, q)),
        ("worker_index", space.worker_index(), ParsedKey(KeyKind.WORKER_INDEX)),
        ("worker_queues", space.worker_queues(), ParsedKey(KeyKind.WORKER_QUEUES)),
        ("sweep_lock", space.sweep_lock(), ParsedKey(KeyKind.SWEEP_LOCK)),
        ("staged_events", space.staged_events(worker), ParsedKey(KeyKind.STAGED_EVENTS, part=worker)),
        ("console_task", space.console_task(worker), ParsedKey(KeyKind.CONSOLE_TASK, part=worker)),
        ("alerts_states", space.alerts_states(), ParsedKey(KeyKind.ALERT_STATES)),
        ("alerts_outbox", space.alerts_outbox(), ParsedKey(KeyKind.ALERT_OUTBOX)),
        ("alerts_history", space.alerts_history(), ParsedKey(KeyKind.ALERT_HISTORY)),
        ("alerts_silences", space.alerts_silences(), ParsedKey(KeyKind.ALERT_SILENCES)),
        ("alerts_mutes", space.alerts_mutes(), ParsedKey(KeyKind.ALERT_MUTES)),
        ("alerts_channels", space.alerts_channels(), ParsedKey(KeyKind.ALERT_CHANNELS)),
        (
            "alerts_delivered",
            space.alerts_delivered(notification, channel),
            ParsedKey(KeyKind.ALERT_DELIVERED, part=f"{notification}:{channel}"),
        ),
    ]


CHANNEL_BUILDERS = {"logs_channel", "command_channel", "command_reply_channel", "wake_channel"}
"""Pub/sub channels: names, but not keys (nothing is stored, SCAN never sees them)."""
OTHER_METHODS = {
    "parse",
    "queue_key_parser",
    "queue_keys_pattern",
    "queue_counters_pattern",
    "staged_events_pattern",
    "scan_patterns",
    *POLL_ORDER_METHODS,
    *GROUP_METHODS,
}


def _public_methods() -> set[str]:
    return {name for name, value in vars(KeySpace).items() if callable(value) and not name.startswith("_")}


@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_every_key_builder_and_key_kind_is_covered(data: st.DataObject) -> None:
    calls = data.draw(_builder_calls(WIRE))

    assert {builder for builder, _, _ in calls} == _public_methods() - CHANNEL_BUILDERS - OTHER_METHODS
    assert {parsed.kind for _, _, parsed in calls} == set(KeyKind) - {KeyKind.UNKNOWN}


@pytest.mark.parametrize("layout", sorted(SPACES))
@PROPERTY
@given(data=st.data())
def test_parse_takes_every_builder_output_apart(layout: str, data: st.DataObject) -> None:
    space = SPACES[layout]
    for builder, key, expected in data.draw(_builder_calls(space)):
        assert space.parse(key) == expected, (builder, key)


@pytest.mark.parametrize("layout", sorted(SPACES))
@PROPERTY
@given(data=st.data(), foreign=st.text(max_size=20))
def test_the_queue_key_parser_agrees_with_parse_under_the_queue_prefix(
    layout: str, data: st.DataObject, foreign: str
) -> None:
    space = SPACES[layout]
    parse_queue_key = space.queue_key_parser()
    keys = [key for _, key, _ in data.draw(_builder_calls(space))] + [space.queue_prefix + foreign]
    for key in keys:
        if key.startswith(space.queue_prefix):
            assert parse_queue_key(key) == space.parse(key), key


def test_the_queue_key_parser_takes_the_general_path_when_prefixes_nest() -> None:
    assert NESTED.queue_key_parser() == NESTED.parse
    assert WIRE.queue_key_parser() != WIRE.parse
    assert NESTED.queue_key_parser()("queue:console:worker:w1") == ParsedKey(KeyKind.WORKER, part="w1")


@pytest.mark.parametrize("layout", sorted(SPACES))
@PROPERTY
@given(data=st.data())
def test_scan_patterns_cover_every_builder_output(layout: str, data: st.DataObject) -> None:
    space = SPACES[layout]
    patterns = space.scan_patterns()
    for builder, key, _ in data.draw(_builder_calls(space)):
        matching = [pattern for pattern in patterns if _glob_match(pattern, key)]
        assert len(matching) == 1, (builder, key, matching)


@PROPERTY
@given(name=QUEUE_NAMES)
def test_lanes_in_poll_order_parse_back_in_order(name: str) -> None:
    for space in SPACES.values():
        parsed = [space.parse(key) for key in space.lanes_in_poll_order(name)]
        assert parsed == [
            ParsedKey(KeyKind.LANE, name, "critical"),
            ParsedKey(KeyKind.LANE, name, "high"),
            ParsedKey(KeyKind.QUEUE, name),
            ParsedKey(KeyKind.LANE, name, "low"),
        ]


@pytest.mark.parametrize("name", ["console", "zenith"])
def test_queue_keys_parse_under_a_nested_prefix_of_the_same_name(name: str) -> None:
    # NESTED puts the console and zenith prefixes under "queue:<name>:". (Its pulse prefix makes
    # "queue:pulse:processing:w1" both a pulse key and queue "pulse"'s processing list: truly ambiguous.)
    assert NESTED.parse(NESTED.queue(name)) == ParsedKey(KeyKind.QUEUE, name)
    assert NESTED.parse(NESTED.failed(name)) == ParsedKey(KeyKind.FAILED, name)
    assert NESTED.parse(NESTED.processing(name, "w1")) == ParsedKey(KeyKind.PROCESSING, name, "w1")
    assert NESTED.parse(NESTED.worker("w1")) == ParsedKey(KeyKind.WORKER, part="w1")
    assert NESTED.parse(NESTED.events()) == ParsedKey(KeyKind.EVENTS)


def test_queue_keys_parse_when_the_console_prefix_is_the_queue_prefix() -> None:
    assert SHARED.parse(SHARED.failed("emails")) == ParsedKey(KeyKind.FAILED, "emails")
    assert SHARED.parse(SHARED.queue("emails")) == ParsedKey(KeyKind.QUEUE, "emails")
    assert SHARED.parse(SHARED.throughput(5)) == ParsedKey(KeyKind.THROUGHPUT, part="5")
    assert SHARED.parse(SHARED.worker("w1")) in (
        ParsedKey(KeyKind.WORKER, part="w1"),
        ParsedKey(KeyKind.LEGACY_WORKER, part="w1"),
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("queue:emails:urgent", ParsedKey(KeyKind.UNKNOWN, "emails", "urgent")),
        ("queue:emails:processing:", ParsedKey(KeyKind.UNKNOWN, "emails", "processing:")),
        ("queue:", ParsedKey(KeyKind.UNKNOWN)),
        ("queue::failed", ParsedKey(KeyKind.UNKNOWN)),
        ("flux_console:something", ParsedKey(KeyKind.UNKNOWN)),
        ("flux_console:throughput:abc", ParsedKey(KeyKind.UNKNOWN)),
        ("gravito:zenith:alerts:other", ParsedKey(KeyKind.UNKNOWN)),
        ("zenith:alerts:other", ParsedKey(KeyKind.UNKNOWN)),
        ("zenith:alerts:delivered:", ParsedKey(KeyKind.UNKNOWN)),
        ("zenith:alerts", ParsedKey(KeyKind.UNKNOWN)),
        ("zenith:{alerts}:states", ParsedKey(KeyKind.UNKNOWN)),
        ("zenith:other", ParsedKey(KeyKind.UNKNOWN)),
        ("pulse:service-only", ParsedKey(KeyKind.UNKNOWN)),
        ("elsewhere:emails", None),
        ("", None),
    ],
)
def test_parse_of_foreign_keys(key: str, expected: ParsedKey | None) -> None:
    assert WIRE.parse(key) == expected


# -- reserved names --------------------------------------------------------------------------------

_SUFFIXES = ["", ":failed", ":delayed", ":paused", ":high", ":x", ":processing:w", ":groups:active"]


@pytest.mark.parametrize("reserved", sorted(RESERVED_QUEUE_NAMES))
@pytest.mark.parametrize("suffix", _SUFFIXES)
def test_reserved_names_are_never_parsed_as_queues(reserved: str, suffix: str) -> None:
    for key in (f"queue:{reserved}{suffix}", f"queue:{{{reserved}}}{suffix}"):
        for space in (WIRE, CLUSTER):
            parsed = space.parse(key)
            assert parsed is not None
            assert parsed.queue != reserved, (key, space.cluster_safe, parsed)


@pytest.mark.parametrize("reserved", sorted(RESERVED_QUEUE_NAMES))
def test_reserved_names_are_refused(reserved: str) -> None:
    with pytest.raises(ConfigError, match="reserved"):
        validate_queue_name(reserved)
    with pytest.raises(ConfigError):
        WIRE.queue(reserved)


def test_reserved_names_are_the_documented_ones() -> None:
    assert RESERVED_QUEUE_NAMES == {
        "active",
        "pending",
        "schedules",
        "schedule",
        "lock",
        "worker",
        "logs",
        "processing",
    }


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("char", list(":{}*?[]\\\n\r"))
def test_queue_names_with_forbidden_characters_are_refused(char: str) -> None:
    for name in (f"a{char}b", char, f"{char}emails"):
        with pytest.raises(ConfigError, match="contains"):
            validate_queue_name(name)
        for space in (WIRE, CLUSTER):
            with pytest.raises(ConfigError):
                space.failed(name)


@pytest.mark.parametrize("name", ["", None, 5, b"emails"])
def test_queue_names_must_be_non_empty_strings(name: Any) -> None:
    with pytest.raises(ConfigError, match="non-empty string"):
        validate_queue_name(name)


@pytest.mark.parametrize("name", ["emails", "Emails.v2", "a-b_c", "ünïcødé", "x" * 200, "with space", "critical", "1"])
def test_valid_queue_names_are_returned(name: str) -> None:
    assert validate_queue_name(name) == name


def test_config_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        validate_queue_name("a:b")


_PREFIX_FIELDS = [
    "queue_prefix",
    "console_prefix",
    "pulse_prefix",
    "legacy_pulse_prefix",
    "command_prefix",
    "settings_prefix",
    "zenith_prefix",
]


@pytest.mark.parametrize("field", _PREFIX_FIELDS)
@pytest.mark.parametrize("prefix", ["", "a*", "a?", "a[", "a]", "{a}:", "a}", "a\\", "a b:", "a\tb", "a\n", "a\r"])
def test_invalid_prefixes_are_refused(field: str, prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        KeySpace.model_validate({field: prefix})


def test_unknown_options_are_refused() -> None:
    with pytest.raises(ValueError):
        KeySpace.model_validate({"queue_prefx": "q:"})


def test_key_space_is_immutable() -> None:
    with pytest.raises(ValueError):
        WIRE.queue_prefix = "other:"  # type: ignore[misc]


# -- cluster slots ---------------------------------------------------------------------------------


def crc16_xmodem(data: bytes) -> int:
    """CRC-16/XMODEM (polynomial 0x1021, initial 0), the checksum Redis Cluster hashes keys with."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def hash_slot(key: str) -> int:
    """The Redis Cluster slot of ``key``: only the first non-empty ``{...}`` tag is hashed, if there is one."""
    data = key.encode("utf-8")
    start = data.find(b"{")
    if start != -1:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    return crc16_xmodem(data) % 16384


def test_crc16_and_hash_slot_match_redis() -> None:
    assert crc16_xmodem(b"123456789") == 0x31C3
    assert hash_slot("foo") == 12182
    assert hash_slot("{user1000}.following") == hash_slot("{user1000}.followers") == hash_slot("user1000")
    assert hash_slot("foo{}{bar}") == crc16_xmodem(b"foo{}{bar}") % 16384


_PER_QUEUE = ["queue", "lane", "delayed", "failed", "active_set", "paused", "rate_limit", "processing"]
_PER_QUEUE += ["group_active", "group_pending"]
_SCHEDULE_KEYS = ["schedules", "schedule", "schedule_lock"]
_ALERT_KEYS = ["alerts_states", "alerts_outbox", "alerts_history", "alerts_silences", "alerts_mutes"]
_ALERT_KEYS += ["alerts_channels", "alerts_delivered"]


@pytest.mark.parametrize("space", [CLUSTER, SPACES["custom-cluster"]], ids=["default", "custom"])
@PROPERTY
@given(data=st.data())
def test_cluster_safe_keys_of_one_queue_share_a_slot(space: KeySpace, data: st.DataObject) -> None:
    calls = {builder: key for builder, key, _ in data.draw(_builder_calls(space))}
    queue = space.parse(calls["queue"])
    assert queue is not None and queue.queue is not None
    tag = "{" + queue.queue + "}"

    for builder in _PER_QUEUE:
        assert calls[builder].startswith(space.queue_prefix + tag), builder
        assert hash_slot(calls[builder]) == hash_slot(calls["queue"]), builder
    for key in space.lanes_in_poll_order(queue.queue):
        assert hash_slot(key) == hash_slot(calls["queue"])
    for builder in _SCHEDULE_KEYS:
        assert calls[builder].startswith(space.queue_prefix + "{schedules}:"), builder
        assert hash_slot(calls[builder]) == hash_slot("schedules"), builder
    # One events script call writes the stream, the log history and the throughput counter.
    for builder in ("events", "logs_history", "throughput"):
        assert hash_slot(calls[builder]) == hash_slot("events"), builder
    # One alert_apply call writes the states, the outbox and the history; senders touch the rest.
    for builder in _ALERT_KEYS:
        assert calls[builder].startswith(space.zenith_prefix + "{alerts}:"), builder
        assert hash_slot(calls[builder]) == hash_slot("alerts"), builder


# -- SCAN patterns ---------------------------------------------------------------------------------


def _glob_match(pattern: str, key: str) -> bool:
    """Redis glob matching for the patterns KeySpace builds (a literal prefix and ``*``)."""
    assert not re.search(r"[?\[\]\\]", pattern), pattern
    return fnmatch.fnmatchcase(key, pattern)


def _patterns_overlap(first: str, second: str) -> bool:
    """Two ``<literal>*`` patterns overlap when one literal starts with the other."""
    a, b = first.removesuffix("*"), second.removesuffix("*")
    return a.startswith(b) or b.startswith(a)


@pytest.mark.parametrize("layout", sorted(SPACES) + ["shared"])
def test_scan_patterns_have_no_overlap(layout: str) -> None:
    space = SHARED if layout == "shared" else SPACES[layout]
    patterns = space.scan_patterns()

    assert patterns
    assert len(set(patterns)) == len(patterns)
    for pattern in patterns:
        assert pattern.endswith("*") and "*" not in pattern[:-1]
    for index, first in enumerate(patterns):
        for second in patterns[index + 1 :]:
            assert not _patterns_overlap(first, second), (first, second)


def test_default_scan_patterns() -> None:
    assert sorted(WIRE.scan_patterns()) == sorted(
        ["queue:*", "flux_console:*", "pulse:*", "gravito:quasar:node:*", "gravito:zenith:*", "zenith:*"]
    )
    assert sorted(NESTED.scan_patterns()) == ["gravito:quasar:node:*", "gravito:zenith:*", "queue:*"]


def test_pulse_keys_of_each_form() -> None:
    both = ("pulse:billing:web1-4242", "gravito:quasar:node:billing:web1-4242")

    assert WIRE.pulse_keys("billing", "web1-4242") == both
    assert WIRE.pulse_keys("billing", "web1-4242", PulseKeyForm.BOTH) == both
    assert WIRE.pulse_keys("billing", "web1-4242", PulseKeyForm.PULSE) == both[:1]
    assert WIRE.pulse_keys("billing", "web1-4242", PulseKeyForm.LEGACY) == both[1:]
    same = KeySpace(pulse_prefix="gravito:quasar:node:")
    assert same.pulse_keys("billing", "web1-4242") == both[1:]
    with pytest.raises(ValueError, match="'all' is not a valid PulseKeyForm"):
        WIRE.pulse_keys("billing", "web1-4242", "all")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("space", "patterns"),
    [
        (WIRE, ("gravito:quasar:node:*", "pulse:*")),
        (KeySpace(pulse_prefix="gravito:quasar:node:"), ("gravito:quasar:node:*",)),
        (KeySpace(pulse_prefix="p:", legacy_pulse_prefix="p:legacy:"), ("p:*",)),
    ],
)
def test_pulse_scan_patterns_cover_both_forms_once(space: KeySpace, patterns: tuple[str, ...]) -> None:
    assert space.pulse_scan_patterns() == patterns
    for key in space.pulse_keys("svc", "node-1"):
        assert sum(_glob_match(pattern, key) for pattern in patterns) == 1, key


@pytest.mark.parametrize("layout", sorted(SPACES) + ["shared"])
def test_worker_scan_patterns_match_both_heartbeat_keys(layout: str) -> None:
    space = SHARED if layout == "shared" else SPACES[layout]
    patterns = space.worker_scan_patterns()

    assert len(set(patterns)) == len(patterns)
    for key in (space.worker("w:1"), space.legacy_worker("w:1")):
        assert any(_glob_match(pattern, key) for pattern in patterns), key
    assert not any(_glob_match(pattern, space.worker_index()) for pattern in patterns)
