"""Structured output: partial_json, json_items."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError, field_validator
from reactivex import operators as ops
from reactivex.testing import TestScheduler

from rxllm.llms import FakeListChatModel, FakeStreamingListLLM
from rxllm.operators import json_items, partial_json
from rxllm.operators._jsonparse import PartialParser

from .helpers import on_completed, on_error, on_next, run, split_at, subscribe


class Person(BaseModel):
    name: str
    age: int
    tags: list[str] = []

    @field_validator("name")
    @classmethod
    def capitalised(cls, value: str) -> str:
        if not value[:1].isupper():
            raise ValueError("name must be capitalised")
        return value


def test_partial_json_marble() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, 'Sure: {"a": "x'), on_next(20, 'y", "b": 1'), on_next(30, "2"),
        on_next(40, "}"), on_next(50, " trailing text"), on_completed(60),
    )  # fmt: skip
    results = scheduler.start(lambda: xs.pipe(partial_json()))
    assert results.messages == [
        on_next(210, {"a": "x"}),
        on_next(220, {"a": "xy"}),  # "1" may continue: not shown yet
        on_next(240, {"a": "xy", "b": 12}),
        on_completed(260),
    ]
    assert xs.subscriptions == [subscribe(200, 260)]


def test_partial_json_fails_on_bad_json_with_partial_and_disposes() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, '{"a": 1,'), on_next(20, " oops"))
    results = scheduler.start(lambda: xs.pipe(partial_json()))
    error = results.messages[-1].value.exception
    assert isinstance(error, json.JSONDecodeError)
    assert error.partial == '{"a": 1, oops'  # type: ignore[attr-defined]
    assert results.messages[-1].time == 220


def test_partial_json_fails_when_the_stream_ends_too_soon() -> None:
    with pytest.raises(json.JSONDecodeError):
        run(partial_json(), ['{"a": [1, 2'])
    with pytest.raises(json.JSONDecodeError):
        run(partial_json(), ["no json here"])
    with pytest.raises(json.JSONDecodeError):
        run(partial_json(), ['{"n": 1.5e'])


def test_partial_json_numbers_are_ascii_digits_and_errors_point_into_the_text() -> None:
    with pytest.raises(json.JSONDecodeError) as caught:
        run(partial_json(), ['{"n": [1', "\u0661]}"])  # ARABIC-INDIC DIGIT ONE
    assert (caught.value.msg, caught.value.pos) == ("Expecting ',' delimiter", 8)
    assert caught.value.doc == '{"n": [1\u0661]}'


@pytest.mark.parametrize(
    "bad",
    ["[1, 2 x]", '{"a": "b\x01"}', '{"a" 1}', "[1, tru3]", '{"a": -x}', '{"a": 1 2}', "{1: 2}"],
)
def test_partial_json_errors_point_where_json_loads_does_however_the_text_is_cut(bad: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(bad)
    text = "Sure: " + bad
    for cut in range(1, len(text)):
        with pytest.raises(json.JSONDecodeError) as caught:
            run(partial_json(), [text[:cut], text[cut:]])
        assert caught.value.pos == expected.value.pos + 6
        assert text.startswith(caught.value.doc)  # the text fed up to the error


def test_partial_json_accepts_a_number_at_the_very_end() -> None:
    assert run(partial_json(), ["[1, 2", "]"]) == [[1], [1, 2]]


def test_partial_json_with_a_model_validates_complete_fields_only() -> None:
    chunks = ['{"name": "Al', 'ice", "ag', 'e": 3', '0, "tags": ["x"', "]}"]
    out = run(partial_json(Person), chunks)
    assert [p.model_fields_set for p in out] == [{"name"}, {"name", "age"}, {"name", "age", "tags"}]
    assert out[0].name == "Alice"
    assert out[-1] == Person(name="Alice", age=30, tags=["x"])


def test_partial_json_model_fails_fast_on_an_invalid_complete_field() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, '{"name": "alice", '), on_next(20, '"age": 3}'), on_completed(30)
    )
    results = scheduler.start(lambda: xs.pipe(partial_json(Person)))
    assert isinstance(results.messages[0].value.exception, ValidationError)
    assert results.messages[0].time == 210
    assert xs.subscriptions == [subscribe(200, 210)]


def parse(text: str) -> tuple[Any, bool]:
    """The value so far of ``text`` parsed in one piece, and whether it is complete."""
    parser = PartialParser()
    parser.feed(text)
    return parser.snapshot(), parser.complete


def test_partial_values_of_escapes_cut_anywhere_are_prefixes() -> None:
    text = json.dumps({"s": 'a "quoted" \\ path \u00e9 \U0001f600', "n": [1.5e3, True, None]})
    whole = json.loads(text)["s"]
    for cut in range(len(text) + 1):
        value, complete = parse(text[:cut])
        assert complete == (cut == len(text))
        if isinstance(value, dict) and "s" in value:
            # Never half an escape, nor half of a surrogate pair (its "\\ud83d" alone).
            assert whole.startswith(value["s"])
            value["s"].encode("utf-8")


def test_partial_json_never_emits_half_a_surrogate_pair() -> None:
    text = json.dumps({"s": "\U0001f600!"})  # {"s": "\\ud83d\\ude00!"}
    for cut in range(1, len(text)):
        for value in run(partial_json(), [text[:cut], text[cut:]]):
            assert value.get("s", "") in ("", "\U0001f600", "\U0001f600!")


def test_partial_json_emits_a_repeated_key_only_if_its_value_changes() -> None:
    assert run(partial_json(), ['{"a": 1, ', '"a": 1', "}"]) == [{"a": 1}]
    assert run(partial_json(), ['{"a": "x", "a": ', '"y"}']) == [{"a": "x"}, {"a": "y"}]


def test_partial_json_values_already_emitted_stay_as_they_were() -> None:
    # Consumers may keep every value (a UI diffing the last two, a log): the containers
    # still open are copied for each one, so later chunks change none of them.
    text = json.dumps({"a": [{"s": "x y", "n": [1, 2]}, "w"], "b": {"c": "d e"}, "t": True})
    frozen: list[Any] = []
    kept = run(
        lambda s: s.pipe(partial_json(), ops.do_action(lambda v: frozen.append(copy.deepcopy(v)))),
        list(text),
    )
    assert len(kept) > 10
    assert kept == frozen
    assert kept[-1] == json.loads(text)


def test_partial_json_keeps_an_escape_cut_short_across_empty_chunks() -> None:
    out = run(partial_json(), ['{"a": "x\\', "", '"y', "", '"}'])
    assert out == [{"a": "x"}, {"a": 'x"y'}]


def test_partial_json_parses_deep_nesting_without_recursion() -> None:
    # The parser before this one recursed per level and failed with RecursionError.
    out = run(partial_json(), ["[" * 5000, "]" * 5000])
    value, depth = out[-1], 0
    while value:
        value, depth = value[0], depth + 1
    assert depth == 4999


def test_partial_json_reads_each_character_once_however_the_text_is_cut() -> None:
    # The work is counted in characters read, not timed. Re-parsing the text so far at
    # each chunk would read about n * n / (2 * size) characters; this reads each one
    # once, plus the few of a number, literal or escape cut short by a chunk boundary.
    for repeats in (10, 100, 1000):
        value = {
            "text": 'a long string value, with "escapes" \u00e9 ' * repeats,
            "items": [{"id": i, "ok": i % 2 == 0, "tags": ["x", None]} for i in range(repeats)],
        }
        text = "Sure! Here it is: " + json.dumps(value)
        for size in (1, 3, 16):
            parser = PartialParser()
            for at in range(0, len(text), size):
                parser.feed(text[at : at + size])
                parser.snapshot()
            assert parser.complete
            assert parser.value == value
            assert parser.scanned <= 1.5 * len(text)


def _containers(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    # A function, not a lambda: hypothesis reads its source to check that it recurses.
    return st.lists(children, max_size=3) | st.dictionaries(
        st.text(max_size=3), children, max_size=3
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5), _containers, max_leaves=8
)


def draw_chunks(data: st.DataObject, text: str) -> list[str]:
    """``text`` cut anywhere, with some empty chunks among the pieces (providers send them)."""
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=len(text)), max_size=10))
    chunks = split_at(text, cuts)
    for at in data.draw(st.lists(st.integers(min_value=0, max_value=len(chunks)), max_size=3)):
        chunks.insert(at, "")
    return chunks


@settings(max_examples=200, deadline=None)
@given(value=st.dictionaries(st.text(max_size=3), json_values, max_size=4), data=st.data())
def test_partial_json_ends_with_the_value_for_any_split(
    value: dict[str, object], data: st.DataObject
) -> None:  # noqa: E501
    text = json.dumps(value)
    out = run(partial_json(), draw_chunks(data, text))
    assert out[-1] == value
    assert all(a != b for a, b in zip(out, out[1:], strict=False))  # only changes go out


def test_json_items_marble() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, '```json\n[{"a": 1}, {"a'), on_next(20, '": 2}'), on_next(30, ", 3"),
        on_next(40, "]\n```"), on_completed(50),
    )  # fmt: skip
    results = scheduler.start(lambda: xs.pipe(json_items()))
    assert results.messages == [
        on_next(210, {"a": 1}), on_next(220, {"a": 2}), on_next(240, 3), on_completed(250),
    ]  # fmt: skip


@pytest.mark.parametrize("make", [partial_json, json_items])
def test_an_error_after_the_whole_value_is_passed_on(make: Any) -> None:
    """The value being whole does not swallow the stream's error (it used to: no end at all)."""
    scheduler = TestScheduler()
    late = ConnectionError("lost after the value")
    xs = scheduler.create_cold_observable(on_next(10, "[1]"), on_error(20, late))
    results = scheduler.start(lambda: xs.pipe(make()))
    assert results.messages[-1] == on_error(220, late)


def test_json_items_validates_with_a_model_and_handles_empty_arrays() -> None:
    out = run(json_items(Person), ['[{"name": "Bo", "age": 1}, ', '{"name": "Cy", "age": 2}]'])
    assert out == [Person(name="Bo", age=1), Person(name="Cy", age=2)]
    assert run(json_items(), ["[", " ]"]) == []
    with pytest.raises(ValidationError):
        run(json_items(int), ['[1, "x"]'])
    with pytest.raises(json.JSONDecodeError):
        run(json_items(), ["[1, 2"])
    for bad in (
        ["[1 2]"],
        ['[{"a": 1} 2]'],
        ['[{"a": 1}', " x, 2]"],
        ["[1,,2]"],
        ["[1,]"],
        ["[,1]"],
    ):
        with pytest.raises(json.JSONDecodeError):
            run(json_items(), bad)


@pytest.mark.parametrize(
    "bad", ["[1,,2]", "[1,]", "[,1]", '[{"a": 1} 2]', "[1 2]", "[1}", '["a" "b"]', "[1 {}]"]
)
def test_json_items_errors_point_where_json_loads_does_however_the_text_is_cut(bad: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(bad)
    text = "Sure: " + bad
    for cut in range(1, len(text)):
        with pytest.raises(json.JSONDecodeError) as caught:
            run(json_items(), [text[:cut], text[cut:]])
        assert (caught.value.msg, caught.value.pos) == (expected.value.msg, expected.value.pos + 6)
        assert text.startswith(caught.value.doc)  # the text pushed up to the error


def test_json_items_keeps_an_escape_cut_short_across_empty_chunks() -> None:
    assert run(json_items(), ['["a\\', "", '"b", 1', "", " ]"]) == ['a"b', 1]


def test_json_items_fails_on_an_element_too_deep_to_parse_keeping_the_text() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(json.JSONDecodeError, match="nested too deeply") as caught:
        run(json_items(), ["[1, ", deep, "]"])
    assert caught.value.partial.startswith("[1, [[[")  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None)
@given(items=st.lists(json_values, max_size=5), data=st.data())
def test_json_items_for_any_split(items: list[object], data: st.DataObject) -> None:
    text = json.dumps(items)
    assert run(json_items(), draw_chunks(data, text)) == items


def test_partial_json_through_stream_and_invoke() -> None:
    llm = FakeStreamingListLLM(responses=['{"name": "Ann", "age": 7}'], chunking="char")
    snapshots = list(llm.pipe(partial_json(Person)).stream("hi"))
    assert snapshots[-1] == Person(name="Ann", age=7)
    assert llm.pipe(partial_json(Person)).invoke("hi") == Person(name="Ann", age=7)


async def test_json_items_through_chat_astream() -> None:
    chat = FakeListChatModel(responses=['[1, {"b": [2]}, "three"]'], chunking="char")
    assert [x async for x in chat.pipe(json_items()).astream("hi")] == [1, {"b": [2]}, "three"]
    assert await chat.pipe(json_items()).ainvoke("hi") == "three"


@settings(max_examples=200, deadline=None)
@given(value=json_values, data=st.data())
def test_fed_in_chunks_equals_parsed_whole_and_never_changes_what_was_emitted(
    value: object, data: st.DataObject
) -> None:
    text = json.dumps([value, {"k": value}])
    cuts = sorted(data.draw(st.lists(st.integers(min_value=1, max_value=len(text)), max_size=12)))
    parser = PartialParser()
    emitted: list[tuple[str, object]] = []
    fed = 0
    for cut in [*cuts, len(text)]:
        parser.feed(text[fed:cut])
        fed = max(fed, cut)
        snapshot = parser.snapshot()
        assert (snapshot, parser.complete) == parse(text[:fed])
        emitted.append((text[:fed], snapshot))  # the very object, not a copy
    assert parser.value == [value, {"k": value}]
    for prefix, snapshot in emitted:  # later chunks did not change what went out before
        assert snapshot == parse(prefix)[0]
