"""The query language: what parses to what, the errors and their positions, and round trips (Hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from zenith_protocol import QuerySyntaxError
from zenith_protocol.query import (
    QUALIFIERS,
    AnyOf,
    Clause,
    Field,
    Query,
    Term,
    Text,
    TimeBound,
    iso_ms,
    parse,
    time_ms,
)

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z
H = 3_600_000


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        ("", ()),
        ("  \t ", ()),
        ("SMTP timeout", (Text("SMTP"), Text("timeout"))),
        ('"exact phrase"', (Text("exact phrase"),)),
        ('say "a b"c', (Text("say"), Text("a bc"))),
        ('"q \\"x\\" \\\\ \\n"', (Text('q "x" \\ \\n'),)),
        ("-draft", (Text("draft", negated=True),)),
        ("--x", (Text("-x", negated=True),)),
        ('-"two words"', (Text("two words", negated=True),)),
        ("email:ann@example.com", (Field("email", "ann@example.com"),)),
        ("a.b:c:d", (Field("a.b", "c:d"),)),
        ('name:"Send Email"', (Field("name", "Send Email"),)),
        ("-queue:mail", (Field("queue", "mail", negated=True),)),
        ('"a:b"', (Text("a:b"),)),
        (":x", (Text(":x"),)),
        ('"k":v', (Text("k:v"),)),
        ("or", (Text("or"),)),
        ('"OR"', (Text("OR"),)),
        ("-OR", (Text("OR", negated=True),)),
        ("a OR b", (AnyOf((Text("a"), Text("b"))),)),
        ("a b OR c OR -d e", (Text("a"), AnyOf((Text("b"), Text("c"), Text("d", negated=True))), Text("e"))),
        ("after:2h", (TimeBound("after", NOW - 2 * H, "2h"),)),
        ("before:90s", (TimeBound("before", NOW - 90_000, "90s"),)),
        ("after:7d", (TimeBound("after", NOW - 7 * 24 * H, "7d"),)),
        ("after:2w", (TimeBound("after", NOW - 14 * 24 * H, "2w"),)),
        ("after:30m", (TimeBound("after", NOW - 1_800_000, "30m"),)),
        ("before:2026-01-02", (TimeBound("before", NOW + 24 * H, "2026-01-02"),)),
        ("after:2026-01-01T01:00:00Z", (TimeBound("after", NOW + H, "2026-01-01T01:00:00Z"),)),
        ("after:2026-01-01T03:00:00+02:00", (TimeBound("after", NOW + H, "2026-01-01T03:00:00+02:00"),)),
        ('after:"2026-01-01 01:00"', (TimeBound("after", NOW + H, "2026-01-01 01:00"),)),
    ],
)
def test_parses_to_the_tree(text: str, clauses: tuple[Clause, ...]) -> None:
    assert parse(text, now_ms=NOW) == Query(clauses)


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ('a "open', 2, "unbalanced quote"),
        ("name:", 5, "name: needs a value"),
        ('x name:""', 7, "needs a value"),
        ('""', 0, "empty quotes"),
        ("a - b", 2, "'-' must be followed"),
        ("a -", 2, "'-' must be followed"),
        ("OR a", 0, "OR needs a term"),
        ("a OR", 2, "OR needs a term"),
        ("a OR OR b", 5, "OR needs a term"),
        ("after:yesterday", 6, "is not a time"),
        ("before:2026-13-01", 7, "is not a time"),
        ("after:-2h", 6, "is not a time"),
        ("after:99999999999w", 6, "out of range"),
        ("--k:v", 1, "cannot be a key"),
        ("a\x00b", 1, "NUL"),
        ("ok \udcff", 3, "not valid Unicode"),
    ],
)
def test_bad_input_raises_a_syntax_error_with_its_position(text: str, position: int, words: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(text, now_ms=NOW)

    assert caught.value.position == position
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"query syntax error at character {position + 1}: ")


def test_times_read_iso_and_relative_forms() -> None:
    assert iso_ms("2026-01-01") == iso_ms("2026-01-01T00:00:00Z") == iso_ms("2026-01-01T00:00:00z") == NOW
    assert iso_ms("not a time") is None
    assert time_ms("1h", now_ms=NOW) == NOW - H
    with pytest.raises(QuerySyntaxError):
        time_ms("soon")


def test_bind_decides_queue_and_state_and_keeps_the_rest() -> None:
    query = parse("queue:mail OR queue:billing -state:failed invoice OR state:active", now_ms=NOW)

    assert query.bind({"queue": "other", "state": "waiting"}) is None
    assert query.bind({"queue": "mail", "state": "failed"}) is None
    assert query.bind({"queue": "mail", "state": "waiting"}) == Query((Text("invoice"),))
    assert query.bind({"queue": "mail", "state": "active"}) == Query()
    assert query.bind({"queue": "billing"}) == Query(
        (Field("state", "failed", negated=True), AnyOf((Text("invoice"), Field("state", "active"))))
    )


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: Text(""), "empty"),
        (lambda: Field("", "v"), "cannot be a key"),
        (lambda: Field("-k", "v"), "cannot be a key"),
        (lambda: Field("a b", "v"), "cannot be a key"),
        (lambda: Field("k", ""), "needs a value"),
        (lambda: Field("after", "2h"), "time bound"),
        (lambda: TimeBound("since", 0, "x"), "after: or before:"),  # type: ignore[arg-type]
        (lambda: AnyOf((Text("a"),)), "at least two"),
    ],
)
def test_trees_that_cannot_be_written_are_refused(make: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        make()  # type: ignore[operator]


# Arbitrary text, and text made mostly of the language's own marks.
_MARKS = ['"', "\\", "-", ":", " ", "OR", "or", "a", "k:", "after:", "2h", "name:", "\t", "é", "\u3000", "\x00"]
_TEXTS = st.one_of(
    st.text(st.characters(exclude_categories=())),
    st.lists(st.sampled_from(_MARKS) | st.text(max_size=3), max_size=16).map("".join),
)


@given(text=_TEXTS)
@example(text='"\\')
@example(text='a"b" c:"" OR')
def test_any_text_gives_a_query_that_prints_back_to_itself_or_a_syntax_error(text: str) -> None:
    try:
        query = parse(text, now_ms=NOW)
    except QuerySyntaxError as exc:
        assert 0 <= exc.position <= len(text)
        return
    assert parse(str(query), now_ms=NOW) == query


_VALUES = st.text(min_size=1, max_size=12).filter(lambda value: "\x00" not in value)
_KEYS = st.text(st.characters(exclude_characters='": \x00', exclude_categories=("Cs", "Zs", "Cc")), min_size=1).filter(
    lambda key: not key.startswith("-") and not any(ch.isspace() for ch in key) and key not in ("after", "before")
)
_RELATIVE = st.builds(lambda n, unit: f"{n}{unit}", st.integers(0, 10_000), st.sampled_from("smhdw"))
_ISO = st.dates().map(lambda day: day.isoformat())


@st.composite
def _terms(draw: st.DrawFn) -> Term:
    negated = draw(st.booleans())
    kind = draw(st.sampled_from(["text", "qualifier", "property", "time"]))
    if kind == "text":
        return Text(draw(_VALUES), negated)
    if kind == "time":
        written = draw(_RELATIVE | _ISO)
        return TimeBound(draw(st.sampled_from(["after", "before"])), time_ms(written, now_ms=NOW), written, negated)
    key = draw(st.sampled_from(QUALIFIERS)) if kind == "qualifier" else draw(_KEYS)
    return Field(key, draw(_VALUES), negated)


_CLAUSES = _terms() | st.lists(_terms(), min_size=2, max_size=3).map(lambda terms: AnyOf(tuple(terms)))


@given(clauses=st.lists(_CLAUSES, max_size=5))
def test_every_query_tree_round_trips_through_its_text(clauses: list[Clause]) -> None:
    query = Query(tuple(clauses))

    assert parse(str(query), now_ms=NOW) == query
