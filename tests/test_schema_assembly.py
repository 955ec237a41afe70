"""How chunks add up: reasoning beside content, joined metadata, tool calls cut short."""

from __future__ import annotations

from functools import reduce
from operator import add
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from rxllm.schema import (
    AIMessageChunk,
    GenerationChunk,
    ToolCallChunk,
    merge_generation_chunks,
    merge_message_chunks,
)

_pieces = st.lists(st.tuples(st.text(max_size=5), st.text(max_size=5)), min_size=1, max_size=8)


@given(_pieces)
def test_reasoning_adds_up_beside_content(pieces: list[tuple[str, str]]) -> None:
    chunks = [AIMessageChunk(content=c, reasoning=r) for c, r in pieces]
    for total in (merge_message_chunks(chunks), reduce(add, chunks)):
        assert total.content == "".join(c for c, _ in pieces)
        assert total.reasoning == "".join(r for _, r in pieces)
        assert total.to_message().reasoning == total.reasoning
    generations = [GenerationChunk(text=c, reasoning=r) for c, r in pieces]
    assert merge_generation_chunks(generations).reasoning == "".join(r for _, r in pieces)
    assert reduce(add, generations).reasoning == "".join(r for _, r in pieces)


def test_joined_metadata_is_joined_and_the_rest_replaced() -> None:
    def chunk(**metadata: Any) -> AIMessageChunk:
        return AIMessageChunk(response_metadata=metadata)

    chunks = [
        chunk(refusal="I can", model_name="a", logprobs={"content": [1], "refusal": None}),
        chunk(refusal="'t.", finish_reason=None, logprobs={"content": [2, 3]}),
        chunk(model_name="b", finish_reason="stop", logprobs=None),
    ]
    assert merge_message_chunks(chunks).response_metadata == {
        "refusal": "I can't.",
        "model_name": "b",
        "finish_reason": "stop",
        "logprobs": {"content": [1, 2, 3], "refusal": None},
    }
    info = [{"logprobs": {"tokens": ["a"], "token_logprobs": [-1.0]}}, {"logprobs": None}]
    info.append({"logprobs": {"tokens": ["b"], "token_logprobs": [-2.0]}})
    total = merge_generation_chunks(GenerationChunk(text="x", generation_info=i) for i in info)
    assert total.generation_info == {
        "logprobs": {"tokens": ["a", "b"], "token_logprobs": [-1.0, -2.0]}
    }


def _call(args: str) -> AIMessageChunk:
    return AIMessageChunk(tool_call_chunks=[ToolCallChunk(name="f", id="t1", index=0, args=args)])


def test_a_tool_call_cut_short_keeps_what_was_complete() -> None:
    message = _call('{"city": "Paris", "days": [1, 2').to_message()
    assert message.invalid_tool_calls == []
    assert message.tool_calls[0].args == {"city": "Paris", "days": [1, 2]}
    # An unfinished string is left out, as the Anthropic SDK's partial parse leaves it.
    assert _call('{"city": "Par').to_message().tool_calls[0].args == {}


def test_arguments_that_are_not_json_stay_invalid() -> None:
    for args in ('{"a": 1} trailing', "[1, 2]", '{"a": }'):
        message = _call(args).to_message()
        assert message.tool_calls == []
        assert message.invalid_tool_calls[0].args == args


def test_reprs_show_reasoning_only_when_there_is_some() -> None:
    assert "reasoning" not in repr(GenerationChunk(text="x"))
    assert "reasoning" not in repr(AIMessageChunk(content="x").to_message())
    assert "reasoning='why'" in repr(GenerationChunk(text="x", reasoning="why"))
    assert "reasoning='why'" in repr(AIMessageChunk(content="x", reasoning="why"))
