"""The seed document's examples, on fake models: sync stream, async stream, one chunk."""

from __future__ import annotations

import pytest
from reactivex import operators as ops

from rxllm import GenerationChunk
from rxllm.llms import FakeListLLM, FakeStreamingListLLM

SONG = "Sparkling water, oh so clear\nBubbles dancing, without fear"
TOKENS = ["Sparkling", " water", ",", " oh", " so", " clear", "\nBubbles", " dancing",
          ",", " without", " fear"]  # fmt: skip


def test_stream_prints_tokens_separated_by_bars(capsys: pytest.CaptureFixture[str]) -> None:
    llm = FakeStreamingListLLM(responses=[SONG])
    for chunk in llm.stream("Write me a 1 verse song about sparkling water."):
        print(chunk, end="|", flush=True)
    assert capsys.readouterr().out == "|".join(TOKENS) + "|"


async def test_astream_prints_tokens_separated_by_bars(
    capsys: pytest.CaptureFixture[str],
) -> None:
    llm = FakeStreamingListLLM(responses=[SONG])
    async for chunk in llm.astream("Write me a 1 verse song about sparkling water."):
        print(chunk, end="|", flush=True)
    assert capsys.readouterr().out == "|".join(TOKENS) + "|"


def test_observe_emits_generation_chunks() -> None:
    llm = FakeStreamingListLLM(responses=[SONG])
    chunks = llm.observe("song").pipe(ops.to_list()).run()
    assert all(isinstance(chunk, GenerationChunk) for chunk in chunks)
    assert [chunk.text for chunk in chunks] == TOKENS


def test_default_implementation_streams_one_chunk(capsys: pytest.CaptureFixture[str]) -> None:
    llm = FakeListLLM(responses=[SONG])
    for chunk in llm.stream("Write me a 1 verse song about sparkling water."):
        print(chunk, end="|", flush=True)
    assert capsys.readouterr().out == SONG + "|"
    assert [c.text for c in llm.observe("again").pipe(ops.to_list()).run()] == [SONG]


async def test_default_implementation_astreams_one_chunk() -> None:
    llm = FakeListLLM(responses=[SONG])
    assert [chunk async for chunk in llm.astream("song")] == [SONG]


def test_models_are_interchangeable() -> None:
    """The same code runs on a streaming and a non-streaming model, to the same text."""
    for llm in (FakeStreamingListLLM(responses=[SONG]), FakeListLLM(responses=[SONG])):
        assert "".join(llm.stream("song")) == SONG
        assert llm.invoke("song") == SONG
