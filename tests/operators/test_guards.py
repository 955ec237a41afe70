"""Guards: deadlines, stop_on, max_chars, detect_repetition."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.testing import TestScheduler

from rxllm.errors import (
    FirstTokenTimeoutError,
    InvalidInputError,
    StallTimeoutError,
    TotalTimeoutError,
)
from rxllm.llms import FakeListChatModel, FakeStreamingListLLM
from rxllm.operators import (
    detect_repetition,
    first_token_timeout,
    max_chars,
    stall_timeout,
    stop_on,
    tap,
    total_timeout,
)
from rxllm.operators._deadlines import deadlines
from rxllm.operators._segment import _WORD
from rxllm.schema import AIMessageChunk, GenerationChunk, Usage
from rxllm.testing import MarbleLLM

from .helpers import LONG, ThreadProbe, on_completed, on_next, run, split_at, subscribe

# -- deadlines, in virtual time ---------------------------------------------------------


def test_first_token_timeout_fails_and_disposes_upstream_at_the_deadline() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, ""), on_next(50, "late"), on_completed(60))
    results = scheduler.start(lambda: xs.pipe(first_token_timeout(30)))
    assert [m.time for m in results.messages] == [210, 230]
    assert results.messages[0] == on_next(210, "")  # an empty chunk is not a token
    error = results.messages[1].value.exception
    assert isinstance(error, FirstTokenTimeoutError)
    assert error.partial == ""
    assert xs.subscriptions == [subscribe(200, 230)]


def test_first_token_timeout_stops_counting_at_the_first_content() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(20, "a"), on_next(100, "b"), on_completed(110))
    results = scheduler.start(lambda: xs.pipe(first_token_timeout(30)))
    assert results.messages == [on_next(220, "a"), on_next(300, "b"), on_completed(310)]
    assert xs.subscriptions == [subscribe(200, 310)]


def test_stall_timeout_measures_gaps_after_the_first_chunk_only() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(100, "a"), on_next(120, "b"), on_next(200, "c"), on_completed(210)
    )
    results = scheduler.start(lambda: xs.pipe(stall_timeout(50)))
    assert results.messages[:2] == [on_next(300, "a"), on_next(320, "b")]
    error = results.messages[2].value.exception
    assert results.messages[2].time == 370
    assert isinstance(error, StallTimeoutError)
    assert error.partial == "ab"
    assert xs.subscriptions == [subscribe(200, 370)]


def test_total_timeout_carries_the_partial_text() -> None:
    scheduler = TestScheduler()
    llm = MarbleLLM(marbles="-a-b-c-d|", values={"a": "He", "b": "llo"}, timespan=10)
    results = scheduler.start(lambda: llm.observe("hi").pipe(total_timeout(35)))
    assert [m.time for m in results.messages] == [210, 230, 235]
    error = results.messages[-1].value.exception
    assert isinstance(error, TotalTimeoutError)
    assert error.partial == "Hello"
    assert llm.calls.cancelled == 1


def test_deadlines_let_a_timely_stream_through_and_leave_no_timer() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(20, "b"), on_completed(30))
    results = scheduler.start(
        lambda: xs.pipe(first_token_timeout(15), stall_timeout(15), total_timeout(50))
    )
    assert results.messages == [on_next(210, "a"), on_next(220, "b"), on_completed(230)]
    assert scheduler.clock == 1000  # nothing left queued that would fire later


@pytest.mark.parametrize(
    "token",
    [
        AIMessageChunk(reasoning="thinking"),
        AIMessageChunk(tool_call_chunks=[{"name": "f", "args": "", "index": 0}]),
        GenerationChunk(text="", reasoning="hmm"),
    ],
    ids=["reasoning", "tool call", "llm reasoning"],
)
def test_a_chunk_of_reasoning_or_a_tool_call_is_a_first_token(token: object) -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(20, token), on_next(100, token), on_completed(110)
    )
    results = scheduler.start(lambda: xs.pipe(first_token_timeout(30)))
    assert results.messages == [on_next(220, token), on_next(300, token), on_completed(310)]


def test_one_deadlines_operator_times_the_stall_before_a_later_total() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(200, "b"), on_completed(210))
    results = scheduler.start(lambda: xs.pipe(deadlines(first=5_000, stall=50, total=500)))
    assert results.messages[0] == on_next(210, "a")
    assert results.messages[1].time == 260
    error = results.messages[1].value.exception
    assert type(error) is StallTimeoutError
    assert error.partial == "a"
    assert xs.subscriptions == [subscribe(200, 260)]


@pytest.mark.parametrize("seconds", [0, -1])
def test_deadlines_must_be_positive(seconds: float) -> None:
    with pytest.raises(InvalidInputError):
        first_token_timeout(seconds)


def test_stall_timeout_through_stream_fires_on_the_loop_not_a_timer_thread() -> None:
    llm = FakeStreamingListLLM(responses=["a b c"], delay=0.2)
    probe = ThreadProbe()
    with pytest.raises(StallTimeoutError):
        list(llm.pipe(stall_timeout(0.02), tap(probe, on_error=probe)).stream("hi"))
    assert len(probe.seen) == 1  # the item and the timeout's error: the same loop thread
    assert probe.all_on_one_loop_thread()


def test_first_token_timeout_through_stream_raises_typed_error_and_cancels() -> None:
    llm = FakeStreamingListLLM(responses=[LONG], delay=0.5)
    with pytest.raises(FirstTokenTimeoutError) as caught:
        list(llm.pipe(first_token_timeout(0.05)).stream("hi"))
    assert caught.value.partial == ""
    assert llm.calls.cancelled == 1


async def test_stall_timeout_through_astream_raises_with_partial() -> None:
    llm = FakeStreamingListLLM(responses=["a b"], delay=0.3)
    # The first chunk comes after 0.3 s; the gap after it is 0.3 s too, over 0.1 s.
    got: list[str] = []

    async def consume() -> None:
        async for piece in llm.pipe(stall_timeout(0.1)).astream("hi"):
            got.append(piece)

    with pytest.raises(StallTimeoutError) as caught:
        await consume()
    assert got == ["a"]
    assert caught.value.partial == "a"
    assert llm.calls.cancelled == 1


async def test_total_timeout_through_astream() -> None:
    llm = FakeStreamingListLLM(responses=[LONG], delay=0.01)
    with pytest.raises(TotalTimeoutError) as caught:
        await llm.pipe(total_timeout(0.1)).ainvoke("hi")
    assert caught.value.partial
    assert LONG.startswith(caught.value.partial)
    assert llm.calls.cancelled == 1


# -- stop_on ----------------------------------------------------------------------------


def test_stop_on_marble_cuts_across_chunks_and_disposes_upstream() -> None:
    scheduler = TestScheduler()
    llm = MarbleLLM(
        marbles="-a-b-c-d|", values={"a": "ab E", "b": "ND cd", "c": "ef", "d": "gh"}, timespan=10
    )
    results = scheduler.start(lambda: llm.observe("hi").pipe(stop_on("END")))
    # "E" may begin "END": it waits for the next chunk, which settles it.
    assert [(m.time, m.value.kind) for m in results.messages] == [(210, "N"), (230, "C")]
    assert results.messages[0].value.value.text == "ab "
    assert llm.calls.cancelled == 1


def test_stop_on_with_test_scheduler_subscriptions() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "ab E"), on_next(20, "ND cd"), on_next(30, "ef"), on_completed(40)
    )
    results = scheduler.start(lambda: xs.pipe(stop_on("END")))
    assert results.messages == [on_next(210, "ab "), on_completed(220)]
    assert xs.subscriptions == [subscribe(200, 220)]


def test_stop_on_holds_only_what_could_start_a_stop() -> None:
    # "x" cannot start "Human:", so it goes out at once; "\n\nHu" waits.
    assert run(stop_on("\n\nHuman:"), ["x", "y\n\nHu", "go"]) == ["x", "y", "\n\nHugo"]
    assert run(stop_on("\n\nHuman:"), ["x", "y\n\nHu", "man: z"]) == ["x", "y"]


def test_stop_on_prefers_the_earliest_stop_among_several() -> None:
    assert "".join(run(stop_on(["abcd", "c"]), ["ab", "cx"])) == "ab"
    assert "".join(run(stop_on(["abcd", "c"]), ["ab", "cd e"])) == ""
    assert "".join(run(stop_on(["xyz", "yz!"]), ["axy", "z!"])) == "a"


def test_stop_on_regex_with_bounded_and_unbounded_width() -> None:
    assert "".join(run(stop_on(re.compile(r"\d{3}")), ["a1", "2", "34b"])) == "a"
    with pytest.raises(InvalidInputError):
        stop_on(re.compile(r"\n{2,}"))
    assert "".join(run(stop_on(re.compile(r"\n{2,}"), window=8), ["a\n", "\n\nb"])) == "a"


@pytest.mark.parametrize("bad", [[], [""], "", re.compile("x?")])
def test_stop_on_rejects_empty_stops(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        stop_on(bad)  # type: ignore[arg-type]


def test_stop_on_keeps_chunk_kind_and_usage() -> None:
    usage = Usage(input_tokens=1, output_tokens=9, total_tokens=10)
    chunks = [
        AIMessageChunk(content="Hi ST", id="m"),
        AIMessageChunk(content="OP more", id="m", usage_metadata=usage),
    ]
    out = run(stop_on("STOP"), chunks)
    assert all(type(c) is AIMessageChunk for c in out)
    total = sum(out[1:], out[0])
    assert total.content == "Hi "
    assert total.usage_metadata == usage
    assert run(stop_on("Z"), [GenerationChunk(text="abc")]) == [GenerationChunk(text="abc")]


stops = st.lists(st.text(alphabet="abc\n", min_size=1, max_size=4), min_size=1, max_size=3)


@settings(max_examples=400, deadline=None)
@given(
    text=st.text(alphabet="abc\nx", max_size=40),
    stop=stops,
    cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=15),
)
def test_stop_on_output_is_the_text_before_the_first_stop_for_every_split(
    text: str, stop: list[str], cuts: list[int]
) -> None:
    found = [i for i in (text.find(s) for s in stop) if i >= 0]
    expected = text[: min(found)] if found else text
    assert "".join(run(stop_on(stop), split_at(text, cuts))) == expected


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="ab1 \n", max_size=40),
    cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=15),
)
def test_stop_on_regex_for_every_split(text: str, cuts: list[int]) -> None:
    pattern = re.compile(r"1 ?[ab]{2}")
    found = pattern.search(text)
    expected = text[: found.start()] if found else text
    assert "".join(run(stop_on(pattern), split_at(text, cuts))) == expected


def test_stop_on_through_stream_cancels_the_provider_call() -> None:
    llm = FakeStreamingListLLM(responses=["Hello there. STOP " + LONG], delay=0.005)
    assert "".join(llm.pipe(stop_on("STOP")).stream("hi")) == "Hello there. "
    assert llm.calls.cancelled == 1
    assert llm.calls.completed == 0


async def test_stop_on_through_chat_astream_cancels() -> None:
    chat = FakeListChatModel(responses=["Answer: 42\n\nHuman: " + LONG], delay=0.005)
    out = [c async for c in chat.pipe(stop_on("\n\nHuman:")).astream("hi")]
    assert "".join(c.content for c in out) == "Answer: 42"
    assert chat.calls.cancelled == 1
    assert (await chat.pipe(stop_on("42")).ainvoke("hi")).content == "Answer: "


# -- max_chars --------------------------------------------------------------------------


def test_max_chars_marble_completes_and_disposes_at_the_crossing_chunk() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "ab"), on_next(20, "cde"), on_next(30, "f"), on_completed(40)
    )
    results = scheduler.start(lambda: xs.pipe(max_chars(4)))
    assert results.messages == [on_next(210, "ab"), on_next(220, "cd"), on_completed(220)]
    assert xs.subscriptions == [subscribe(200, 220)]


def test_max_chars_waits_at_an_exact_limit_and_keeps_combining_marks() -> None:
    assert run(max_chars(4), ["abcd", "\u0301e", "f"]) == ["abcd", "\u0301"]
    assert run(max_chars(2), ["a👍", "\U0001f3fd!"]) == ["a👍", "\U0001f3fd"]
    assert run(max_chars(2), ["a👨\u200d", "👩x"]) == ["a👨\u200d", "👩"]
    assert run(max_chars(3), ["ab"]) == ["ab"]
    assert run(max_chars(0), ["ab"]) == []


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet="ab \u0301", max_size=30),
    limit=st.integers(min_value=0, max_value=30),
    cuts=st.lists(st.integers(min_value=1, max_value=30), max_size=10),
)
def test_max_chars_does_not_depend_on_the_split(text: str, limit: int, cuts: list[int]) -> None:
    out = "".join(run(max_chars(limit), split_at(text, cuts)))
    assert out == "".join(run(max_chars(limit), [text]))
    assert text.startswith(out)
    assert len(out.rstrip("\u0301")) <= limit


def test_max_chars_through_stream_cancels() -> None:
    llm = FakeStreamingListLLM(responses=[LONG], delay=0.002)
    assert "".join(llm.pipe(max_chars(20)).stream("hi")) == LONG[:20]
    assert llm.calls.cancelled == 1


# -- detect_repetition ------------------------------------------------------------------


def test_detect_repetition_marble_stops_after_the_nth_repeat() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "la "), on_next(20, "la "), on_next(30, "la "), on_next(40, "la "),
        on_next(50, "la"), on_completed(60),
    )  # fmt: skip
    results = scheduler.start(lambda: xs.pipe(detect_repetition(3)))
    assert results.messages == [
        on_next(210, "la "),
        on_next(220, "la "),
        on_next(230, "la "),
        on_completed(240),
    ]
    assert xs.subscriptions == [subscribe(200, 240)]


def test_detect_repetition_finds_multi_word_loops_and_spares_normal_text() -> None:
    loop = "I am sorry. " * 6
    assert "".join(run(detect_repetition(3), [loop])) == "I am sorry. " * 3
    prose = "the cat sat on the mat and the dog sat on the log"
    assert "".join(run(detect_repetition(3), [prose])) == prose
    assert "".join(run(detect_repetition(2, max_period=2), ["a b c a b c"])) == "a b c a b c"


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet="ab \n", max_size=40),
    cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=15),
)
def test_detect_repetition_does_not_depend_on_the_split(text: str, cuts: list[int]) -> None:
    out = "".join(run(detect_repetition(3), split_at(text, cuts)))
    assert out == "".join(run(detect_repetition(3), [text]))
    assert text.startswith(out)


def test_detect_repetition_through_stream_cancels_a_looping_model() -> None:
    llm = FakeStreamingListLLM(responses=["Sure! " + "ok then " * 100], delay=0.002)
    assert "".join(llm.pipe(detect_repetition(4)).stream("hi")) == "Sure! " + "ok then " * 4
    assert llm.calls.cancelled == 1


@pytest.mark.parametrize("count", [0, 1])
def test_detect_repetition_needs_two_repeats(count: int) -> None:
    with pytest.raises(InvalidInputError):
        detect_repetition(count)


def _looping_reference(text: str, count: int, max_period: int) -> str:
    """What ``detect_repetition`` lets through, by brute force: after each whole word,
    is there a period ``p`` whose last ``count * p`` words are ``count`` equal runs?"""
    segments = _WORD.findall(text)
    words: list[str] = []
    for number, segment in enumerate(segments[:-1], 1):  # the last one may still grow
        words.append(segment.rstrip())
        for period in range(1, max_period + 1):
            if count * period <= len(words) and words[-count * period :] == words[-period:] * count:
                return "".join(segments[:number])
    return text


# Few distinct words, so that loops are common; ASCII and other text both.
loop_words = st.sampled_from(["a", "b", "c", "d", "é", "你", "好。", "\u3000", "x\x1c"])
loop_spaces = st.sampled_from(["", " ", " ", "  ", "\n", "\t"])


@settings(max_examples=500, deadline=None)
@given(
    parts=st.lists(st.tuples(loop_words, loop_spaces), max_size=40),
    count=st.integers(min_value=2, max_value=4),
    max_period=st.integers(min_value=1, max_value=8),
    cuts=st.lists(st.integers(min_value=1, max_value=120), max_size=15),
)
def test_detect_repetition_matches_a_brute_force_reference(
    parts: list[tuple[str, str]], count: int, max_period: int, cuts: list[int]
) -> None:
    text = "".join(word + space for word, space in parts)
    out = "".join(run(detect_repetition(count, max_period=max_period), split_at(text, cuts)))
    assert out == _looping_reference(text, count, max_period)


def test_detect_repetition_finds_a_loop_whose_last_word_recurs_within_it() -> None:
    # "a" comes three times in each run of six words: the loop shows through its distance
    # to the third "a" back, not the nearest ones.
    loop = "b a c a d a "
    assert "".join(run(detect_repetition(2), [loop * 3])) == loop * 2
    assert "".join(run(detect_repetition(2, max_period=5), [loop * 3])) == loop * 3


def test_deadlines_pass_parsed_objects_through_and_keep_the_text_before_them() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "so far"), on_next(20, {"a": 1}), on_next(300, {"a": 2})
    )
    results = scheduler.start(lambda: xs.pipe(total_timeout(50)))
    assert results.messages[:2] == [on_next(210, "so far"), on_next(220, {"a": 1})]
    error = results.messages[2].value.exception
    assert isinstance(error, TotalTimeoutError)
    assert error.partial == "so far"
