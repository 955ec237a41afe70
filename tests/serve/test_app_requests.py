"""Each API's request body as the rxllm call it asks for, without HTTP; and the replies
that do not stream, read back by the official SDKs' own models."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.types import Message
from hypothesis import given
from hypothesis import strategies as st
from openai.types import Completion
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from rxllm import AIMessageChunk, GenerationChunk, InvalidInputError
from rxllm.schema import (
    AIMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
    Usage,
)
from rxllm.serve._replies import Reply, reply_json
from rxllm.serve._requests import parse


def call(format: str, body: dict[str, Any]) -> Any:
    return parse(format, json.dumps(body).encode())


def test_openai_chat_with_tool_calls_and_parameters() -> None:
    got = call("openai-chat", {
        "model": "m", "stream": True, "stream_options": {"include_usage": True},
        "temperature": 0, "max_tokens": 9, "stop": "END", "tools": [{"type": "function"}],
        "user": "someone",  # a field the API has and the server does not use
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "a"},
                                         {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": "c1", "type": "function",
                "function": {"name": "f", "arguments": '{"x": 1}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ],
    })  # fmt: skip
    assert got.messages == [
        SystemMessage(content="be brief"),
        HumanMessage(content="ab"),
        AIMessage(content="", tool_calls=[ToolCall(name="f", args={"x": 1}, id="c1")]),
        ToolMessage(content="42", tool_call_id="c1"),
    ]
    assert got.params == {"temperature": 0, "max_tokens": 9, "stop": ["END"],
                          "tools": [{"type": "function"}]}  # fmt: skip
    assert got.stream
    assert got.include_usage
    assert got.model == "m"


def test_anthropic_messages_with_a_system_and_tool_results() -> None:
    got = call("anthropic", {
        "model": "c", "max_tokens": 5, "system": [{"type": "text", "text": "sys"}],
        "stop_sequences": ["\n"],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "let me see"},
                {"type": "tool_use", "id": "t1", "name": "f", "input": {"q": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                          "content": "found"}]},
        ],
    })  # fmt: skip
    assert got.messages == [
        SystemMessage(content="sys"),
        HumanMessage(content="hi"),
        AIMessage(content="let me see", tool_calls=[ToolCall(name="f", args={"q": 1}, id="t1")]),
        ToolMessage(content="found", tool_call_id="t1"),
    ]
    assert got.params == {"max_tokens": 5, "stop": ["\n"]}


def test_responses_input_items_and_ui_messages() -> None:
    got = call("openai-responses", {
        "instructions": "sys", "max_output_tokens": 3,
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c", "output": "done"},
        ],
    })  # fmt: skip
    assert got.messages == [
        SystemMessage(content="sys"),
        HumanMessage(content="hi"),
        AIMessage(tool_calls=[ToolCall(name="f", args={}, id="c")]),
        ToolMessage(content="done", tool_call_id="c"),
    ]
    assert got.params == {"max_tokens": 3}
    ui = call("vercel-ui", {"id": "chat", "trigger": "submit-message", "messages": [
        {"id": "1", "role": "user", "parts": [{"type": "text", "text": "hi"}]},
        {"id": "2", "role": "assistant", "parts": [
            {"type": "step-start"}, {"type": "reasoning", "text": "hm"},
            {"type": "text", "text": "hello"}]},
    ]})  # fmt: skip
    assert ui.messages == [HumanMessage(content="hi"), AIMessage(content="hello")]
    assert ui.stream
    assert ui.chat_id == "chat"


@pytest.mark.parametrize(
    ("format", "body", "message"),
    [
        ("openai-chat", {"messages": []}, "messages: List should have at least 1 item"),
        ("openai-chat", {"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
        ("openai-chat", {"messages": [{"role": "assistant", "tool_calls": [
            {"function": {"name": "f", "arguments": "{"}}]}]}, "not JSON"),
        ("openai-completions", {"prompt": ["a", "b"]}, "one prompt per request"),
        ("openai-responses", {"input": [{"type": "web_search_call"}]}, "not served"),
        ("vercel-ui", {"messages": [{"role": "user", "parts": [{"type": "file"}]}]},
         "only text is served"),
    ],
)  # fmt: skip
def test_requests_that_are_refused_say_why(format: str, body: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        call(format, body)


def test_whole_replies_are_what_the_sdks_models_read() -> None:
    reply = Reply("m")
    for item in [
        AIMessageChunk(content="", reasoning="think"),
        AIMessageChunk(content="Hel"),
        "lo",
        GenerationChunk(text="!"),
        AIMessageChunk(tool_call_chunks=[ToolCallChunk(name="f", id="t", index=0, args='{"a"')]),
        AIMessageChunk(tool_call_chunks=[ToolCallChunk(index=0, args=": 1}")]),
        AIMessageChunk(usage_metadata=Usage(input_tokens=2, output_tokens=3, total_tokens=5),
                       response_metadata={"finish_reason": "tool_calls"}),
    ]:  # fmt: skip
        reply.feed(item)
    chat = ChatCompletion.model_validate(reply_json("openai-chat", reply))
    assert chat.choices[0].message.content == "Hello!"
    assert chat.choices[0].finish_reason == "tool_calls"
    assert chat.choices[0].message.tool_calls is not None
    assert chat.choices[0].message.tool_calls[0].function.arguments == '{"a": 1}'  # type: ignore[union-attr]
    assert chat.usage is not None
    assert chat.usage.total_tokens == 5
    assert Completion.model_validate(reply_json("openai-completions", reply)).choices[0].text == (
        "Hello!"
    )
    response = Response.model_validate(reply_json("openai-responses", reply))
    assert response.output_text == "Hello!"
    message = Message.model_validate(reply_json("anthropic", reply))
    assert message.stop_reason == "tool_use"
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use"]
    assert message.content[2].input == {"a": 1}  # type: ignore[union-attr]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_KEYS = ["model", "messages", "prompt", "input", "system", "max_tokens", "stop", "tools",
         "stream", "temperature", "role", "content", "parts", "type", "text", "tool_calls",
         "function", "arguments", "name", "id", "instructions", "stream_options"]  # fmt: skip
_SHAPED = st.recursive(
    _JSON,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.mark.parametrize(
    "format", ["openai-chat", "openai-completions", "openai-responses", "anthropic", "vercel-ui"]
)
@given(body=_SHAPED)
def test_any_body_is_a_call_or_an_invalid_input_error(format: str, body: Any) -> None:
    try:
        got = call(format, body)
    except InvalidInputError as exc:
        refused = str(exc)
    else:
        assert got.messages is not None or got.prompt is not None
        return
    assert refused
