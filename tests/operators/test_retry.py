"""Retrying: again only before the first item, never repeating text."""

from __future__ import annotations

import pytest
import reactivex
from reactivex.testing import TestScheduler

from rxllm.errors import (
    AuthenticationError,
    BadRequestError,
    InvalidInputError,
    ProtocolError,
    RateLimitError,
)
from rxllm.llms import FakeListChatModel, FakeStreamingListLLM
from rxllm.operators import first_token_timeout, retry, text
from rxllm.testing import MarbleLLM

from .helpers import on_completed, on_error, on_next, subscribe


def test_retry_marble_subscribes_again_after_an_early_failure() -> None:
    scheduler = TestScheduler()
    boom = RuntimeError("boom")
    xs = scheduler.create_cold_observable(on_error(10, boom))
    results = scheduler.start(lambda: xs.pipe(retry(3)))
    assert results.messages == [on_error(230, boom)]
    assert xs.subscriptions == [subscribe(200, 210), subscribe(210, 220), subscribe(220, 230)]


def test_retry_never_repeats_text_a_failed_attempt_sent() -> None:
    scheduler = TestScheduler()
    boom = RuntimeError("boom")
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_error(20, boom))
    results = scheduler.start(lambda: xs.pipe(retry(3)))
    assert results.messages == [on_next(210, "a"), on_error(220, boom)]
    assert xs.subscriptions == [subscribe(200, 220)]


def test_retry_waits_between_attempts_in_virtual_time() -> None:
    scheduler = TestScheduler()
    calls: list[float] = []

    def attempt(_: object) -> reactivex.Observable[str]:
        calls.append(scheduler.clock)
        if len(calls) < 3:
            return reactivex.throw(RateLimitError("slow down", status_code=429))
        return reactivex.of("ok")

    results = scheduler.start(lambda: reactivex.defer(attempt).pipe(retry(3, delay=50)))
    assert calls == [200, 250, 300]
    assert results.messages == [on_next(300, "ok"), on_completed(300)]


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("bad key", status_code=401),
        BadRequestError("bad request", status_code=400),
        ProtocolError("not JSON", line="{"),
        InvalidInputError("bad input"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_retry_does_not_make_again_a_call_that_would_fail_the_same_way(error: Exception) -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_error(10, error))
    results = scheduler.start(lambda: xs.pipe(retry(3)))
    assert results.messages == [on_error(210, error)]
    assert xs.subscriptions == [subscribe(200, 210)]


def test_retry_with_a_marble_model_counts_the_calls() -> None:
    scheduler = TestScheduler()
    llm = MarbleLLM(marbles="--a|", timespan=10)
    results = scheduler.start(
        lambda: llm.observe("hi").pipe(first_token_timeout(15), retry(2), text())
    )
    # Each attempt gives up at 15 ticks, before "a" at 20: two calls, both cancelled.
    assert results.messages[-1].time == 230
    assert llm.calls.started == 2
    assert llm.calls.cancelled == 2


def test_retry_disposal_stops_the_attempt_in_flight() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_error(10, RuntimeError("x")))
    never = scheduler.create_cold_observable(on_next(500, "late"))
    sources = iter([xs, never])
    scheduler.start(lambda: reactivex.defer(lambda _: next(sources)).pipe(retry(2)), disposed=300)
    assert never.subscriptions == [subscribe(210, 300)]


@pytest.mark.parametrize(("attempts", "delay"), [(0, 0.0), (1, -1.0)])
def test_retry_rejects_bad_arguments(attempts: int, delay: float) -> None:
    with pytest.raises(InvalidInputError):
        retry(attempts, delay=delay)


def test_retry_through_stream() -> None:
    llm = FakeStreamingListLLM(responses=["Hello there"], error_after=0)
    with pytest.raises(RuntimeError):
        list(llm.pipe(retry(3)).stream("hi"))
    assert llm.calls.started == 3
    midway = FakeStreamingListLLM(responses=["Hello there"], error_after=1)
    got: list[str] = []
    with pytest.raises(RuntimeError) as caught:
        got.extend(midway.pipe(retry(3)).stream("hi"))
    assert got == ["Hello"]  # once: the failure after it is not retried
    assert midway.calls.started == 1
    assert getattr(caught.value, "partial", None) == "Hello"


async def test_retry_through_chat_astream() -> None:
    chat = FakeListChatModel(responses=["Hi"], error_after=0)
    with pytest.raises(RuntimeError):
        [c async for c in chat.pipe(retry(2)).astream("hi")]  # noqa: B018
    assert chat.calls.started == 2
