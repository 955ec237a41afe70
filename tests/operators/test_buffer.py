"""Buffering: buffer_tokens, buffer_time, buffer_time_or_count."""

from __future__ import annotations

import pytest
from reactivex.testing import TestScheduler

from rxllm.errors import InvalidInputError
from rxllm.llms import FakeListChatModel, FakeStreamingListLLM
from rxllm.operators import buffer_time, buffer_time_or_count, buffer_tokens, tap
from rxllm.schema import GenerationChunk, Usage

from .helpers import ThreadProbe, on_completed, on_error, on_next, run, subscribe


def test_buffer_tokens_marble() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "a"), on_next(20, "b"), on_next(30, "c"), on_next(40, "d"),
        on_next(50, "e"), on_completed(60),
    )  # fmt: skip
    results = scheduler.start(lambda: xs.pipe(buffer_tokens(2)))
    assert results.messages == [
        on_next(220, "ab"), on_next(240, "cd"), on_next(260, "e"), on_completed(260),
    ]  # fmt: skip
    assert xs.subscriptions == [subscribe(200, 260)]


def test_buffer_tokens_flushes_before_an_error() -> None:
    scheduler = TestScheduler()
    boom = RuntimeError("boom")
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_error(20, boom))
    results = scheduler.start(lambda: xs.pipe(buffer_tokens(3)))
    assert results.messages == [on_next(220, "a"), on_error(220, boom)]


def test_buffers_merge_chunks_keeping_metadata() -> None:
    usage = {"usage": Usage(output_tokens=2).model_dump()}
    chunks = [GenerationChunk(text="a"), GenerationChunk(text="b", generation_info=usage)]
    assert run(buffer_tokens(5), chunks) == [GenerationChunk(text="ab", generation_info=usage)]


def test_buffer_time_marble_window_opens_with_the_first_item() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "a"), on_next(20, "b"), on_next(70, "c"), on_next(90, "d"),
        on_next(110, "e"), on_completed(200),
    )  # fmt: skip
    results = scheduler.start(lambda: xs.pipe(buffer_time(30)))
    # Windows [210, 240), [270, 300), [310, 340); nothing while idle, no empty buffers.
    assert results.messages == [
        on_next(240, "ab"), on_next(300, "cd"), on_next(340, "e"), on_completed(400),
    ]  # fmt: skip
    assert xs.subscriptions == [subscribe(200, 400)]


def test_buffer_time_flushes_at_completion_without_waiting() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_completed(15))
    results = scheduler.start(lambda: xs.pipe(buffer_time(100)))
    assert results.messages == [on_next(215, "a"), on_completed(215)]


def test_buffer_time_or_count_marble() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "a"), on_next(20, "b"), on_next(30, "c"), on_completed(100)
    )
    results = scheduler.start(lambda: xs.pipe(buffer_time_or_count(50, 2)))
    assert results.messages == [on_next(220, "ab"), on_next(280, "c"), on_completed(300)]


def test_buffer_time_disposal_cancels_the_timer() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(100, "b"))
    results = scheduler.start(lambda: xs.pipe(buffer_time(50)), disposed=230)
    assert results.messages == []
    assert xs.subscriptions == [subscribe(200, 230)]


@pytest.mark.parametrize(
    "make", [lambda: buffer_tokens(0), lambda: buffer_time(0), lambda: buffer_time_or_count(1, 0)]
)
def test_buffers_reject_bad_sizes(make: object) -> None:
    with pytest.raises(InvalidInputError):
        make()  # type: ignore[operator]


def test_buffer_tokens_through_stream_and_invoke() -> None:
    llm = FakeStreamingListLLM(responses=["abcde"], chunking="char")
    assert list(llm.pipe(buffer_tokens(2)).stream("hi")) == ["ab", "cd", "e"]
    assert llm.pipe(buffer_tokens(2)).invoke("hi") == "abcde"


def test_buffer_time_through_stream_runs_timers_on_the_loop() -> None:
    text = "abcdefghijklmnopqrst" * 2
    llm = FakeStreamingListLLM(responses=[text], chunking="char", delay=0.001)
    probe = ThreadProbe()
    out = list(llm.pipe(buffer_time(0.005), tap(probe)).stream("hi"))
    assert "".join(out) == text
    assert len(out) > 1  # windows closed by the timer, not only by the end
    assert probe.all_on_one_loop_thread()


async def test_buffer_time_or_count_through_chat_astream() -> None:
    chat = FakeListChatModel(responses=["abcdef"], chunking="char")
    out = [c async for c in chat.pipe(buffer_time_or_count(10, 4)).astream("hi")]
    assert [c.content for c in out] == ["abcd", "ef"]
