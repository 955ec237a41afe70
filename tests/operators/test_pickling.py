"""rxllm's operators pickle as the call that made them, so pipelines can go to Dask workers."""

from __future__ import annotations

import pickle
import re
from typing import Any

import pytest
from hypothesis import given, settings
from pydantic import BaseModel
from reactivex import Observable
from reactivex.testing import TestScheduler

import rxllm.operators as operators
from rxllm.llms import FakeStreamingListLLM
from rxllm.schema import GenerationChunk

from .helpers import on_completed, on_next, split_texts

NOTED: list[Any] = []


def note(*item: Any) -> None:
    """A module-level callback: importable, so it pickles by reference."""
    NOTED.append(item)


class Point(BaseModel):
    x: int
    y: list[str] = []


#: Every operator factory of rxllm.operators, with arguments (positional and keyword,
#: so both kinds travel) that make it act on the streams below.
SAMPLES: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "text": ((), {}),
    "map_text": ((str.upper,), {}),
    "accumulate": ((), {}),
    "buffer_tokens": ((2,), {}),
    "buffer_time": ((3.0,), {}),
    "buffer_time_or_count": ((3.0,), {"count": 2}),
    "words": ((), {}),
    "lines": ((), {}),
    "sentences": ((), {}),
    "split_on": ((re.compile(r",\s*"),), {}),
    "markdown_blocks": ((), {}),
    "smooth": ((2.0, "char"), {"max_lag": 50.0}),
    "throttle_text": ((4.0,), {}),
    "tap": ((), {"on_next": note, "on_completed": note}),
    "on_first_token": ((note,), {}),
    "first_token_timeout": ((15,), {}),
    "stall_timeout": ((25,), {}),
    "total_timeout": ((100,), {}),
    "stop_on": ((["STOP", "?"],), {}),
    "max_chars": ((20,), {}),
    "detect_repetition": ((3,), {"max_period": 8}),
    "share_stream": ((), {"replay": False}),
    "retry": ((2,), {"delay": 1.0}),
    "partial_json": ((Point,), {}),
    "json_items": ((), {"model": Point}),
}
JSON = {"partial_json", "json_items"}
#: Public callables of rxllm.operators that are not pickled, and why.
NOT_PICKLED = {
    "metrics": "keeps the numbers of its subscription for the caller to read, under a lock",
    "tap_events": "made in rxllm._runs as a closure",
    "race": "makes a Race runnable or an Observable, not an operator",
}
#: A streamed JSON text for each structured operator, and its last value.
JSON_STREAMS = {
    "partial_json": (['{"x": 1', ', "y": ["a', '", "b"', "]}"], Point(x=1, y=["a", "b"])),
    "json_items": (['[{"x": 1, "y": ["a', '", "b"]}, {"x"', ": 2}", "]"], Point(x=2)),
}


def messages(operator: Any, chunks: list[Any]) -> list[tuple[Any, ...]]:
    """What ``operator`` emits, with virtual times, for ``chunks`` 10 ticks apart."""
    scheduler = TestScheduler()
    timed = [on_next(10 * (i + 1), chunk) for i, chunk in enumerate(chunks)]
    source: Observable[Any] = scheduler.create_cold_observable(
        *timed, on_completed(10 * (len(chunks) + 1))
    )
    recorded = scheduler.start(lambda: source.pipe(operator), disposed=10_000)
    out: list[tuple[Any, ...]] = []
    for message in recorded.messages:
        value = message.value
        if value.kind == "E":  # exceptions compare by identity: compare what they say
            out.append((message.time, "E", type(value.exception), str(value.exception)))
        else:
            out.append((message.time, value.kind, getattr(value, "value", None)))
    return out


def made(name: str) -> Any:
    args, kwargs = SAMPLES[name]
    return getattr(operators, name)(*args, **kwargs)


def test_every_operator_factory_is_sampled_or_said_not_to_pickle() -> None:
    public = {
        name
        for name in operators.__all__
        if callable(getattr(operators, name)) and name[0].islower()
    }
    assert public == set(SAMPLES) | set(NOT_PICKLED)
    assert not set(SAMPLES) & set(NOT_PICKLED)


@pytest.mark.parametrize("name", sorted(set(SAMPLES) - JSON))
@settings(max_examples=20, deadline=None)
@given(split=split_texts())
def test_a_pickled_operator_emits_what_the_original_does(
    name: str, split: tuple[str, list[str]]
) -> None:
    _, chunks = split
    chunks = [*chunks, "One two, three.\nFour STOP"]
    original = made(name)
    copy = pickle.loads(pickle.dumps(original))
    assert type(copy) is type(original)
    assert copy.__name__ == name
    assert messages(copy, chunks) == messages(original, chunks)


@pytest.mark.parametrize("name", sorted(JSON))
def test_a_pickled_json_operator_parses_as_the_original_does(name: str) -> None:
    pieces, last = JSON_STREAMS[name]
    chunks = [GenerationChunk(text=piece) for piece in pieces]
    copy = pickle.loads(pickle.dumps(made(name)))
    got = messages(copy, chunks)
    assert got == messages(made(name), chunks)
    assert got[-2][2] == last


def test_a_pickled_operator_is_made_again_with_state_of_its_own() -> None:
    limit = operators.max_chars(20)
    copy = pickle.loads(pickle.dumps(limit))
    assert copy is not limit
    assert copy._apply is not limit._apply
    assert repr(copy) == repr(limit) == "<operator max_chars>"


def test_a_pipeline_of_operators_pickles_when_its_steps_do() -> None:
    llm = FakeStreamingListLLM(responses=["one two, three? four"], chunking="char")
    steps = (operators.stop_on("?"), operators.words(), operators.map_text(str.upper))
    # The fake model holds a lock; rxllm.distributed packs models without it. Here the
    # pipeline is rebuilt around the same model to show the steps travel.
    copied = pickle.loads(pickle.dumps(steps))
    assert list(llm.pipe(*copied).stream("hi")) == list(llm.pipe(*steps).stream("hi"))
    assert list(llm.pipe(*copied).stream("hi")) == ["ONE ", "TWO, ", "THREE"]
    assert repr(llm.pipe(*copied)) == repr(llm.pipe(*steps))


def test_an_operator_with_a_lambda_argument_does_not_pickle() -> None:
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(operators.map_text(lambda s: s))
