"""Metrics: StreamMetrics while streaming and at the end."""

from __future__ import annotations

import pytest
from reactivex.testing import TestScheduler

from rxllm.llms import FakeListChatModel, FakeStreamingListLLM
from rxllm.operators import StreamMetrics, metrics
from rxllm.schema import AIMessageChunk, GenerationChunk, Usage

from .helpers import on_completed, on_error, on_next, run, subscribe


def test_metrics_marble_in_virtual_time() -> None:
    scheduler = TestScheduler()
    finals: list[StreamMetrics] = []
    meter = metrics(finals.append)
    xs = scheduler.create_cold_observable(
        on_next(10, ""), on_next(20, "ab"), on_next(30, "c"), on_next(60, "def"), on_completed(70)
    )
    during: list[StreamMetrics | None] = []
    scheduler.schedule_absolute(235, lambda *_: during.append(meter.current))
    results = scheduler.start(lambda: xs.pipe(meter))
    assert results.messages == [
        on_next(210, ""), on_next(220, "ab"), on_next(230, "c"), on_next(260, "def"),
        on_completed(270),
    ]  # fmt: skip
    assert xs.subscriptions == [subscribe(200, 270)]
    now = during[0]
    assert now is not None
    assert (now.chunks, now.characters, now.finished, now.elapsed) == (3, 3, False, 35)
    (final,) = finals
    assert final == meter.current
    assert final.time_to_first_token == 20  # the empty chunk at 210 is not a token
    assert final.elapsed == 70
    assert (final.chunks, final.characters) == (4, 6)
    assert final.gap_min == 10
    assert final.gap_max == 30
    assert final.gap_mean == pytest.approx(50 / 3)
    variance = ((10 - 50 / 3) ** 2 * 2 + (30 - 50 / 3) ** 2) / 3
    assert final.gap_stdev == pytest.approx(variance**0.5)
    assert final.chunks_per_second == pytest.approx(3 / 50)
    assert final.characters_per_second == pytest.approx(6 / 50)
    assert final.finished
    assert final.error is None


def test_metrics_records_errors_and_usage() -> None:
    scheduler = TestScheduler()
    finals: list[StreamMetrics] = []
    boom = RuntimeError("boom")
    usage = Usage(input_tokens=3, output_tokens=4, total_tokens=7)
    xs = scheduler.create_cold_observable(
        on_next(10, AIMessageChunk(content="a", usage_metadata=usage)),
        on_next(20, AIMessageChunk(content="b", usage_metadata=usage)),
        on_error(30, boom),
    )
    scheduler.start(lambda: xs.pipe(metrics(finals.append)))
    assert finals[0].usage == usage + usage
    assert finals[0].error == "RuntimeError: boom"


def test_metrics_reads_usage_from_generation_info() -> None:
    meter = metrics()
    run(meter, [GenerationChunk(text="a", generation_info={"usage": {"output_tokens": 2}})])
    assert meter.current is not None
    assert meter.current.usage == Usage(output_tokens=2)


def test_metrics_before_and_after_disposal() -> None:
    scheduler = TestScheduler()
    meter = metrics()
    assert meter.current is None
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(100, "b"))
    scheduler.start(lambda: xs.pipe(meter), disposed=250)
    assert meter.current is not None
    assert meter.current.finished
    assert meter.current.elapsed == 50
    assert meter.current.chunks_per_second is None  # one chunk: no rate yet


def test_metrics_through_stream() -> None:
    llm = FakeStreamingListLLM(responses=["Hello there world"], delay=0.001)
    finals: list[StreamMetrics] = []
    assert llm.pipe(metrics(finals.append)).invoke("hi") == "Hello there world"
    (final,) = finals
    assert final.chunks == 3
    assert final.characters == len("Hello there world")
    assert final.time_to_first_token is not None
    assert final.time_to_first_token > 0
    assert final.elapsed >= final.time_to_first_token


async def test_metrics_through_chat_astream() -> None:
    chat = FakeListChatModel(responses=["Hi you"])
    meter = metrics()
    out = [c async for c in chat.pipe(meter).astream("hi")]
    assert len(out) == 2
    assert meter.current is not None
    assert (meter.current.chunks, meter.current.characters) == (2, 6)


def test_items_without_text_are_counted_as_chunks() -> None:
    import reactivex

    seen: list[StreamMetrics] = []
    meter = metrics(on_complete=seen.append)
    reactivex.of({"a": 1}, {"a": 2}).pipe(meter).subscribe()
    assert seen[0].chunks == 2
    assert seen[0].characters == 0


def _chat(**metadata: object) -> AIMessageChunk:
    return AIMessageChunk(content="", response_metadata=metadata)


def _llm(**info: object) -> GenerationChunk:
    return GenerationChunk(text="", generation_info=info)


REASONS = {
    "OpenAI, llama.cpp": (AIMessageChunk(content="Hi"), _chat(finish_reason="length"), "length"),
    "Anthropic": (AIMessageChunk(content="Hi"), _chat(stop_reason="end_turn"), "end_turn"),
    "ChatOllama": (AIMessageChunk(content="Hi"), _chat(done_reason="stop"), "stop"),
    "OpenAI completions": (GenerationChunk(text="Hi"), _llm(finish_reason="stop"), "stop"),
    "Ollama": (GenerationChunk(text="Hi"), _llm(done_reason="stop"), "stop"),
}


@pytest.mark.parametrize("provider", list(REASONS))
def test_metrics_reports_the_finish_reason_in_virtual_time(provider: str) -> None:
    first, last, reason = REASONS[provider]
    scheduler = TestScheduler()
    finals: list[StreamMetrics] = []
    meter = metrics(finals.append)
    xs = scheduler.create_cold_observable(on_next(10, first), on_next(20, last), on_completed(30))
    during: list[StreamMetrics | None] = []
    scheduler.schedule_absolute(215, lambda *_: during.append(meter.current))
    scheduler.start(lambda: xs.pipe(meter))
    (final,) = finals
    assert final.finish_reason == reason
    assert final.warnings == ()
    assert during[0] is not None
    assert during[0].finish_reason is None  # not seen yet at 215


def test_a_model_stream_completing_without_a_finish_reason_is_warned_about() -> None:
    """As llama.cpp's server ends a request it interrupts: [DONE] with no finish_reason."""
    scheduler = TestScheduler()
    finals: list[StreamMetrics] = []
    meter = metrics(finals.append)
    xs = scheduler.create_cold_observable(
        on_next(10, AIMessageChunk(content="Once upon")),
        # Anthropic's final metadata when no message_delta came: the key, with None.
        on_next(20, AIMessageChunk(content=" a", response_metadata={"stop_reason": None})),
        on_completed(30),
    )
    during: list[StreamMetrics | None] = []
    scheduler.schedule_absolute(225, lambda *_: during.append(meter.current))
    scheduler.start(lambda: xs.pipe(meter))
    (final,) = finals
    assert final.finish_reason is None
    (warning,) = final.warnings
    assert "no finish reason" in warning
    assert "cut short" in warning
    assert final.error is None
    assert during[0] is not None
    assert during[0].warnings == ()  # not before it has completed
    assert meter.current == final


@pytest.mark.parametrize(
    "ending",
    ["failed", "disposed", "text only"],
)
def test_no_finish_reason_warning_where_none_was_to_be_expected(ending: str) -> None:
    """A failed stream has its error; one disposed was cut by its consumer; plain text
    (after ``text()``) never carries a finish reason."""
    scheduler = TestScheduler()
    meter = metrics()
    item: object = "Hi" if ending == "text only" else AIMessageChunk(content="Hi")
    end = on_error(30, RuntimeError("boom")) if ending == "failed" else on_completed(30)
    xs = scheduler.create_cold_observable(on_next(10, item), end)
    scheduler.start(lambda: xs.pipe(meter), disposed=225 if ending == "disposed" else 1000)
    assert meter.current is not None
    assert meter.current.finished
    assert meter.current.finish_reason is None
    assert meter.current.warnings == ()
