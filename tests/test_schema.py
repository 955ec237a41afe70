"""Chunks add up; messages coerce; usage sums; tool calls parse."""

from __future__ import annotations

from functools import reduce
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxllm import (
    AIMessage,
    AIMessageChunk,
    GenerationChunk,
    HumanMessage,
    InvalidInputError,
    SystemMessage,
    ToolMessage,
    Usage,
)
from rxllm.schema import (
    ToolCallChunk,
    coerce_messages,
    coerce_prompt,
    merge_generation_chunks,
    merge_message_chunks,
)


def test_generation_chunks_concatenate_and_merge_info() -> None:
    total = GenerationChunk(text="Hel", generation_info={"a": 1, "finish_reason": None}) + (
        GenerationChunk(text="lo", generation_info={"finish_reason": "stop"})
    )
    assert total.text == "Hello"
    assert total.generation_info == {"a": 1, "finish_reason": "stop"}
    assert str(total) == "Hello"


def test_none_never_overwrites_metadata() -> None:
    total = GenerationChunk(generation_info={"finish_reason": "stop"}) + GenerationChunk(
        generation_info={"finish_reason": None}
    )
    assert total.generation_info == {"finish_reason": "stop"}


@given(st.lists(st.text(), max_size=30))
def test_sum_of_chunks_is_the_concatenation(texts: list[str]) -> None:
    chunks = [GenerationChunk(text=t) for t in texts]
    assert merge_generation_chunks(chunks).text == "".join(texts)
    if chunks:
        assert reduce(lambda a, b: a + b, chunks).text == "".join(texts)
    messages = [AIMessageChunk(content=t) for t in texts]
    assert merge_message_chunks(messages).content == "".join(texts)


def test_message_chunks_merge_usage_metadata_and_ids() -> None:
    total = (
        AIMessageChunk(content="a", id="run-1", response_metadata={"model": "m"})
        + AIMessageChunk(content="b", usage_metadata=Usage(input_tokens=2, output_tokens=1))
        + AIMessageChunk(
            content="", usage_metadata=Usage(output_tokens=4, total_tokens=7), id="other"
        )
    )
    assert total.content == "ab"
    assert total.id == "run-1"
    assert total.response_metadata == {"model": "m"}
    assert total.usage_metadata == Usage(input_tokens=2, output_tokens=5, total_tokens=7)
    assert total.usage_metadata["output_tokens"] == 5


def test_usage_indexing_rejects_unknown_keys() -> None:
    with pytest.raises(KeyError):
        Usage()["nope"]


def test_tool_call_chunks_merge_by_index_and_parse() -> None:
    pieces = [
        AIMessageChunk(tool_call_chunks=[ToolCallChunk(name="get", args='{"ci', id="c1", index=0)]),
        AIMessageChunk(tool_call_chunks=[ToolCallChunk(args='ty": "Oslo"}', index=0)]),
        AIMessageChunk(tool_call_chunks=[ToolCallChunk(name="bad", args="{oops", index=1)]),
    ]
    total = merge_message_chunks(pieces)
    assert [c.args for c in total.tool_call_chunks] == ['{"city": "Oslo"}', "{oops"]
    message = total.to_message()
    assert type(message) is AIMessage
    assert [(c.name, c.args, c.id) for c in message.tool_calls] == [("get", {"city": "Oslo"}, "c1")]
    assert message.invalid_tool_calls[0].name == "bad"
    assert "not valid JSON" in (message.invalid_tool_calls[0].error or "")


def test_an_ai_message_chunk_is_an_ai_message() -> None:
    assert isinstance(AIMessageChunk(content="x"), AIMessage)


def test_adding_different_kinds_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        GenerationChunk(text="a") + AIMessageChunk(content="b")  # type: ignore[operator]


def test_response_models_accept_unknown_fields() -> None:
    chunk = GenerationChunk.model_validate({"text": "a", "logprobs": [1]})
    assert chunk.model_extra == {"logprobs": [1]}


def test_coerce_messages_shapes() -> None:
    messages = coerce_messages(
        [
            ("system", "s"),
            {"role": "user", "content": "u"},
            HumanMessage(content="h"),
            "plain",
            {"role": "tool", "content": "42", "tool_call_id": "c1"},
        ]
    )
    assert [type(m) for m in messages] == [
        SystemMessage,
        HumanMessage,
        HumanMessage,
        HumanMessage,
        ToolMessage,
    ]
    assert coerce_messages(("ai", "x"))[0].type == "ai"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (42, "got int"),
        ([("wizard", "x")], "unknown message role 'wizard'"),
        ([("human", 3)], "content must be a str"),
        ([{"content": "x"}], "needs 'role' and 'content'"),
        ([{"role": "tool", "content": "x"}], "invalid 'tool' message"),
        ([], "empty"),
        ("", "empty"),
        ([object()], "got object"),
    ],
)
def test_bad_inputs_raise_invalid_input(value: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        coerce_prompt(value)


@given(st.text(min_size=1).filter(str.strip))
def test_any_string_with_text_is_a_prompt(text: str) -> None:
    assert coerce_prompt(text) == text
    assert coerce_messages(text)[0].content == text


#: Whitespace as ``str.strip`` sees it, ASCII and Unicode (no-break, line separator...).
_BLANKS = st.text(st.sampled_from(" \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u2029\u3000"))


@given(_BLANKS)
def test_a_blank_prompt_is_refused_by_llms_and_chat_models(blank: str) -> None:
    for coerce in (coerce_prompt, coerce_messages):
        with pytest.raises(InvalidInputError, match="the prompt is empty or blank"):
            coerce(blank)


@given(st.lists(_BLANKS, min_size=1, max_size=4))
def test_a_conversation_of_blank_messages_is_refused(blanks: list[str]) -> None:
    conversation = [("human" if i % 2 == 0 else "ai", text) for i, text in enumerate(blanks)]
    for coerce in (coerce_prompt, coerce_messages):
        with pytest.raises(InvalidInputError, match="the prompt is empty or blank"):
            coerce(conversation)


def test_blank_messages_beside_one_with_text_are_kept() -> None:
    conversation = [("system", "  "), ("human", "hi"), ("ai", "\n")]
    assert [m.content for m in coerce_messages(conversation)] == ["  ", "hi", "\n"]
    assert coerce_prompt(conversation) == "System:   \nHuman: hi\nAI: \n"


_DETAILS = st.dictionaries(
    st.sampled_from(["audio", "cache_read", "cache_creation", "reasoning"]),
    st.integers(0, 10**6),
    max_size=3,
)
_USAGE = st.fixed_dictionaries(
    {
        "input_tokens": st.integers(0, 10**6),
        "output_tokens": st.integers(0, 10**6),
        "total_tokens": st.integers(0, 10**6),
    },
    optional={"input_token_details": _DETAILS, "output_token_details": _DETAILS},
)


@given(_USAGE, _USAGE)
def test_usage_sums_as_langchain_sums_it_details_included(left: Any, right: Any) -> None:
    from langchain_core.messages.ai import add_usage

    assert (Usage(**left) + Usage(**right)).model_dump() == add_usage(left, right)
