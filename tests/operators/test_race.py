"""Racing: the first to emit content wins, the others are cancelled."""

from __future__ import annotations

import pytest
import reactivex
from reactivex.testing import TestScheduler

from rxllm.errors import InvalidInputError
from rxllm.llms import FakeListChatModel, FakeStreamingListLLM
from rxllm.operators import Race, race, text
from rxllm.schema import AIMessage, AIMessageChunk
from rxllm.testing import MarbleLLM

from .helpers import LONG, on_completed, on_error, on_next, subscribe


def test_race_marble_first_content_wins_and_losers_are_disposed_then() -> None:
    scheduler = TestScheduler()
    slow = scheduler.create_cold_observable(on_next(40, "x"), on_completed(50))
    fast = scheduler.create_cold_observable(
        on_next(5, ""), on_next(20, "p"), on_next(30, "q"), on_completed(60)
    )
    results = scheduler.start(lambda: race(slow, fast))
    # The empty chunk at 205 decides nothing: it waits and goes out with "p".
    assert results.messages == [
        on_next(220, ""), on_next(220, "p"), on_next(230, "q"), on_completed(260),
    ]  # fmt: skip
    assert slow.subscriptions == [subscribe(200, 220)]
    assert fast.subscriptions == [subscribe(200, 260)]


def test_race_an_early_error_does_not_win() -> None:
    scheduler = TestScheduler()
    boom = RuntimeError("boom")
    failing = scheduler.create_cold_observable(on_error(10, boom))
    working = scheduler.create_cold_observable(on_next(30, "ok"), on_completed(40))
    results = scheduler.start(lambda: race(failing, working))
    assert results.messages == [on_next(230, "ok"), on_completed(240)]


def test_race_all_failing_raises_the_first_error() -> None:
    scheduler = TestScheduler()
    first, second = RuntimeError("first"), RuntimeError("second")
    a = scheduler.create_cold_observable(on_error(30, second))
    b = scheduler.create_cold_observable(on_error(10, first))
    results = scheduler.start(lambda: race(a, b))
    assert results.messages == [on_error(230, first)]


def test_race_an_empty_reply_wins_only_if_nobody_has_content() -> None:
    scheduler = TestScheduler()
    empty = scheduler.create_cold_observable(on_next(5, ""), on_completed(10))
    failing = scheduler.create_cold_observable(on_error(20, RuntimeError("x")))
    results = scheduler.start(lambda: race(empty, failing))
    assert results.messages == [on_next(220, ""), on_completed(220)]


def test_race_with_marble_models_cancels_the_losing_call() -> None:
    scheduler = TestScheduler()
    slow = MarbleLLM(marbles="----a|", timespan=10)
    fast = MarbleLLM(marbles="-b-c|", timespan=10)
    contest = race(slow, fast)
    assert isinstance(contest, Race)
    results = scheduler.start(lambda: contest.observe("hi").pipe(text()))
    assert results.messages == [on_next(210, "b"), on_next(230, "c"), on_completed(240)]
    assert slow.calls.cancelled == 1
    assert fast.calls.completed == 1


def test_race_rejects_nothing_and_non_candidates() -> None:
    with pytest.raises(InvalidInputError):
        race()
    with pytest.raises(InvalidInputError):
        race("a prompt")  # type: ignore[call-overload]


def test_race_through_stream_cancels_the_slow_provider() -> None:
    fast = FakeStreamingListLLM(responses=["fast reply"], delay=0.001)
    slow = FakeStreamingListLLM(responses=[LONG], delay=0.5)
    assert list(race(slow, fast).stream("hi")) == ["fast", " reply"]
    assert slow.calls.cancelled == 1
    assert fast.calls.completed == 1
    assert race(slow, fast).invoke("hi") == "fast reply"


async def test_race_through_chat_astream_and_pipe() -> None:
    fast = FakeListChatModel(responses=["quick"], delay=0.001)
    slow = FakeListChatModel(responses=[LONG], delay=0.5)
    out = [c async for c in race(slow, fast).pipe(text()).astream("hi")]
    assert out == ["quick"]
    assert slow.calls.cancelled == 1
    reply = await race(fast, slow).ainvoke("hi")
    assert isinstance(reply, AIMessage)
    assert reply.content == "quick"


def test_race_of_observables_is_an_observable() -> None:
    winner = race(reactivex.never(), reactivex.of(AIMessageChunk(content="x")))
    assert isinstance(winner, reactivex.Observable)
    assert winner.pipe(text()).run() == "x"
