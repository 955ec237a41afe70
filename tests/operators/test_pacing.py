"""Pacing: smooth, throttle_text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from reactivex.testing import TestScheduler

from rxllm.errors import InvalidInputError
from rxllm.llms import FakeListChatModel, FakeStreamingListLLM
from rxllm.operators import smooth, tap, throttle_text
from rxllm.schema import GenerationChunk

from .helpers import ThreadProbe, on_completed, on_error, on_next, run, split_texts, subscribe


def test_smooth_marble_releases_one_word_per_tick() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, "a b c d e"), on_completed(100))
    results = scheduler.start(lambda: xs.pipe(smooth(5, max_lag=1000)))
    assert results.messages == [
        on_next(210, "a "), on_next(215, "b "), on_next(220, "c "), on_next(225, "d "),
        on_next(300, "e"), on_completed(300),
    ]  # fmt: skip
    assert xs.subscriptions == [subscribe(200, 300)]


def test_smooth_catches_up_to_bound_the_lag() -> None:
    scheduler = TestScheduler()
    burst = "".join(f"w{i} " for i in range(12))
    xs = scheduler.create_cold_observable(on_next(10, burst), on_completed(500))
    results = scheduler.start(lambda: xs.pipe(smooth(10, max_lag=40)))
    released = [(m.time, len(m.value.value.split())) for m in results.messages[:-1]]
    assert "".join(m.value.value for m in results.messages[:-1]) == burst
    # 11 whole words at 210 (the 12th waits for what follows it: the end, at 700).
    # Ticks release in proportion to the backlog (ceil(11 * 10 / 40) = 3 first), and
    # at 250 everything left, which would otherwise wait longer than 40.
    assert released == [(210, 3), (220, 2), (230, 2), (240, 1), (250, 3), (700, 1)]


def test_smooth_releases_at_once_after_idling_and_flushes_fast_at_the_end() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "a "), on_next(12, "b "), on_next(50, "c d e f"), on_completed(52)
    )
    results = scheduler.start(lambda: xs.pipe(smooth(10, max_lag=1000)))
    # A word is whole once the next begins: "a " at 212, "b " at 250, more than a
    # delay later, so at once; the end at 252 releases the rest together.
    assert results.messages == [
        on_next(212, "a "), on_next(250, "b "), on_next(252, "c d e f"), on_completed(252),
    ]  # fmt: skip


def test_smooth_by_char_keeps_graphemes_whole() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "e\u0301👍"), on_next(11, "\U0001f3fdx"), on_next(12, "y"), on_completed(100)
    )
    results = scheduler.start(lambda: xs.pipe(smooth(1, "char", max_lag=100)))
    assert [m.value.value for m in results.messages[:-1]] == ["e\u0301", "👍\U0001f3fd", "x", "y"]


def test_smooth_by_line_and_error_flush() -> None:
    scheduler = TestScheduler()
    boom = RuntimeError("boom")
    xs = scheduler.create_cold_observable(on_next(10, "a\nb\nc"), on_error(20, boom))
    results = scheduler.start(lambda: xs.pipe(smooth(100, "line", max_lag=1000)))
    assert results.messages == [on_next(210, "a\n"), on_next(220, "b\nc"), on_error(220, boom)]


@settings(max_examples=100, deadline=None)
@given(case=split_texts())
def test_smooth_never_loses_or_reorders_text(case: tuple[str, list[str]]) -> None:
    text, chunks = case
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        *[on_next(10 + 3 * i, chunk) for i, chunk in enumerate(chunks)], on_completed(500)
    )
    results = scheduler.start(lambda: xs.pipe(smooth(2, "char", max_lag=20)))
    assert "".join(m.value.value for m in results.messages if m.value.kind == "N") == text


@pytest.mark.parametrize(
    "kwargs", [{"delay": 0}, {"delay": 1, "max_lag": 0}, {"delay": 1, "unit": "page"}]
)
def test_smooth_rejects_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        smooth(**kwargs)  # type: ignore[arg-type]


def test_throttle_text_marble_coalesces_and_loses_nothing() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "a"), on_next(12, "b"), on_next(14, "c"), on_next(50, "d"),
        on_next(52, "e"), on_completed(54),
    )  # fmt: skip
    results = scheduler.start(lambda: xs.pipe(throttle_text(10)))
    assert results.messages == [
        on_next(210, "a"), on_next(220, "bc"), on_next(250, "d"), on_next(254, "e"),
        on_completed(254),
    ]  # fmt: skip
    assert xs.subscriptions == [subscribe(200, 254)]


def test_throttle_text_merges_chunks_of_their_kind() -> None:
    chunks = [GenerationChunk(text="a"), GenerationChunk(text="b", generation_info={"x": 1})]
    assert run(throttle_text(60), chunks) == [
        GenerationChunk(text="a"),
        GenerationChunk(text="b", generation_info={"x": 1}),
    ]


def test_smooth_and_throttle_through_stream_on_the_loop_thread() -> None:
    llm = FakeStreamingListLLM(responses=["one two three four"], delay=0.001)
    probe = ThreadProbe()

    for operator in (smooth(0.002), throttle_text(0.005)):
        out = list(llm.pipe(operator, tap(probe)).stream("hi"))
        assert "".join(out) == "one two three four"
    assert probe.all_on_one_loop_thread()


async def test_smooth_through_chat_astream() -> None:
    chat = FakeListChatModel(responses=["one two three"], chunking="char")
    out = [c async for c in chat.pipe(smooth(0.001)).astream("hi")]
    assert "".join(c.content for c in out) == "one two three"
    assert all(c.content.count(" ") <= 3 for c in out)
