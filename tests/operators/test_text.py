"""The shared text helpers: text_of, with_text, merge, Rechunker, GRAPHEME."""

from __future__ import annotations

import pytest

from rxllm.errors import InvalidInputError
from rxllm.operators._text import (
    GRAPHEME,
    Rechunker,
    is_token,
    merge,
    text_if_any,
    text_of,
    with_text,
)
from rxllm.schema import (
    AIMessage,
    AIMessageChunk,
    GenerationChunk,
    ToolCall,
    ToolCallChunk,
    Usage,
)


def test_text_of_each_kind() -> None:
    assert text_of("a") == "a"
    assert text_of(GenerationChunk(text="b")) == "b"
    assert text_of(AIMessageChunk(content="c")) == "c"
    assert text_of(AIMessage(content="d")) == "d"
    with pytest.raises(InvalidInputError, match="not int"):
        text_of(3)


def test_with_text_keeps_everything_else() -> None:
    chunk = AIMessageChunk(content="x", id="m", usage_metadata=Usage(output_tokens=1))
    assert with_text(chunk, "y") == chunk.model_copy(update={"content": "y"})
    assert with_text("x", "y") == "y"


def test_merge_sums_by_kind() -> None:
    assert merge(["a", "b"]) == "ab"
    assert merge([GenerationChunk(text="a"), GenerationChunk(text="b")]).text == "ab"
    assert merge([AIMessageChunk(content="a"), AIMessageChunk(content="b")]).content == "ab"


def test_rechunker_moves_metadata_to_the_next_piece_once() -> None:
    rechunk = Rechunker()
    tool = ToolCallChunk(name="f", args="{}", index=0)
    assert rechunk.feed(AIMessageChunk(content="ab", id="m", tool_call_chunks=[tool])) == "ab"
    first, second = rechunk.make("a"), rechunk.make("b")
    assert (first.tool_call_chunks, second.tool_call_chunks) == ([tool], [])
    assert first.id == second.id == "m"
    assert rechunk.leftover() is None


def test_graphemes_keep_clusters_whole() -> None:
    family = "👨\u200d👩\u200d👧"
    expected = ["e\u0301", family, "🇫🇷", "👍🏽", "\r\n", "x"]
    assert GRAPHEME.findall(f"e\u0301{family}🇫🇷👍🏽\r\nx") == expected


def test_with_text_keeps_a_generation_chunks_info_and_unknown_fields() -> None:
    chunk = GenerationChunk(text="a", generation_info={"logprobs": [1]}, provider_field=3)
    changed = with_text(chunk, "b")
    assert changed == GenerationChunk(text="b", generation_info={"logprobs": [1]}, provider_field=3)
    assert chunk.text == "a"


def test_a_token_is_text_reasoning_a_tool_call_or_a_parsed_object() -> None:
    tokens = [
        "a",
        GenerationChunk(text="a"),
        GenerationChunk(text="", reasoning="thinking"),
        AIMessageChunk(content="a"),
        AIMessageChunk(content="", reasoning="thinking"),
        AIMessageChunk(content="", tool_call_chunks=[ToolCallChunk(name="f", index=0)]),
        AIMessage(content="", tool_calls=[ToolCall(name="f")]),
        {"parsed": True},
        [1, 2],
    ]
    placeholders = [
        "",
        GenerationChunk(text=""),
        AIMessageChunk(content=""),
        AIMessageChunk(content="", usage_metadata=Usage(output_tokens=3)),
    ]
    assert [is_token(item) for item in tokens] == [True] * len(tokens)
    assert [is_token(item) for item in placeholders] == [False] * len(placeholders)


def test_text_if_any_is_empty_for_an_item_that_is_not_text() -> None:
    assert text_if_any("a") == "a"
    assert text_if_any(AIMessageChunk(content="b")) == "b"
    assert text_if_any(GenerationChunk(text="c")) == "c"
    assert text_if_any({"a": 1}) == ""
    assert text_if_any(None) == ""
