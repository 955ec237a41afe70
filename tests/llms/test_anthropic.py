"""``ChatAnthropic`` on the scripted server replaying the documented Messages stream."""

from __future__ import annotations

import pytest

from rxllm import AIMessage, InvalidInputError
from rxllm.errors import BadRequestError, InternalServerError, RateLimitError
from rxllm.llms import ChatAnthropic
from rxllm.llms._anthropic import AnthropicTranslator
from rxllm.schema import ToolCall, ToolMessage, merge_message_chunks
from tests.servers.scripted import Reply, ScriptedServer
from tests.servers.wire import (
    anthropic_error,
    anthropic_text,
    anthropic_thinking,
    anthropic_tool_use,
    sse,
)

from .conftest import MODES, assert_all_closed, consume


def chat_for(server: ScriptedServer, **kwargs: object) -> ChatAnthropic:
    return ChatAnthropic(model="claude-test", base_url=server.url, api_key="sk-ant-test", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("split", [1, 7])
@pytest.mark.parametrize("mode", MODES)
def test_text_stream(server: ScriptedServer, mode: str, split: int) -> None:
    server.script(Reply(body=anthropic_text(["Hello", "!", " How are", " you?"]), split=split))
    chat = chat_for(server, temperature=0.2, stop=["END"])
    outcome = consume(chat, [("system", "Be kind"), ("human", "Hi")], mode)
    assert outcome.error is None
    assert [i.content for i in outcome.items] == ["Hello", "!", " How are", " you?", ""]
    assert all(i.id == "msg_01" for i in outcome.items)
    message = merge_message_chunks(outcome.items).to_message()
    assert message.usage_metadata is not None
    assert message.usage_metadata.model_dump() == {
        "input_tokens": 25,
        "output_tokens": 15,
        "total_tokens": 40,
    }
    assert message.response_metadata == {
        "model_name": "claude-test",
        "stop_reason": "end_turn",
        "stop_sequence": None,
    }
    request = server.requests[0]
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant-test"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.json() == {
        "model": "claude-test",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hi"}],
        "system": "Be kind",
        "temperature": 0.2,
        "stop_sequences": ["END"],
        "stream": True,
    }
    assert_all_closed(chat, server)


@pytest.mark.parametrize("mode", MODES)
def test_tool_use(server: ScriptedServer, mode: str) -> None:
    server.script(Reply(body=anthropic_tool_use(), split=3))
    chat = chat_for(server)
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    outcome = consume(chat, "Weather in SF?", mode, tools=tools)
    assert outcome.error is None
    message = merge_message_chunks(outcome.items).to_message()
    assert message.content == "Okay, let me check"
    assert message.tool_calls == [
        ToolCall(
            name="get_weather",
            args={"location": "San Francisco, CA"},
            id="toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        )
    ]
    assert message.response_metadata["stop_reason"] == "tool_use"
    assert message.usage_metadata is not None
    assert message.usage_metadata.input_tokens == 472
    assert server.requests[0].json()["tools"] == tools
    assert_all_closed(chat, server)


def test_tool_results_go_back_as_content_blocks(server: ScriptedServer) -> None:
    server.script(Reply(body=anthropic_tool_use()), Reply(body=anthropic_text(["Sunny"])))
    chat = chat_for(server)
    first = chat.invoke("Weather in SF?")
    assert isinstance(first, AIMessage)
    call = first.tool_calls[0]
    answer = chat.invoke(
        [
            ("human", "Weather in SF?"),
            first,
            ToolMessage(content="sunny", tool_call_id=str(call.id)),
        ]
    )
    assert answer.content == "Sunny"
    assert server.requests[1].json()["messages"] == [
        {"role": "user", "content": "Weather in SF?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Okay, let me check"},
                {"type": "tool_use", "id": call.id, "name": "get_weather", "input": call.args},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
        },
    ]
    assert_all_closed(chat, server)


@pytest.mark.parametrize("mode", MODES)
def test_thinking(server: ScriptedServer, mode: str) -> None:
    server.script(Reply(body=anthropic_thinking()))
    chat = chat_for(server, model_kwargs={"thinking": {"type": "enabled", "budget_tokens": 1024}})
    outcome = consume(chat, "6 x 7?", mode)
    assert outcome.error is None
    assert [(i.content, i.reasoning) for i in outcome.items[:2]] == [
        ("", "Let me "),
        ("", "think."),
    ]
    message = merge_message_chunks(outcome.items).to_message()
    assert (message.content, message.reasoning) == ("42", "Let me think.")
    assert message.response_metadata["content_blocks"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "EqQB"},
        {"type": "text", "text": "42"},
    ]
    assert server.requests[0].json()["thinking"]["budget_tokens"] == 1024
    # The thinking block, signature included, goes back as it came (Anthropic checks it).
    server.script(Reply(body=anthropic_text(["ok"])))
    chat.invoke([("human", "6 x 7?"), message, ("human", "and 6 x 8?")])
    sent = server.requests[0].json()["messages"][1]  # script() cleared the first request
    assert sent == {"role": "assistant", "content": message.response_metadata["content_blocks"]}
    assert_all_closed(chat, server)


@pytest.mark.parametrize("mode", MODES)
def test_overloaded_error_mid_stream(server: ScriptedServer, mode: str) -> None:
    body = anthropic_text(["Hel", "lo"], stop=False)[:5] + [anthropic_error()]
    server.script(Reply(body=body, headers={"request-id": "req_9"}))
    chat = chat_for(server)
    outcome = consume(chat, "Hi", mode)
    assert isinstance(outcome.error, InternalServerError)
    assert outcome.error.status_code == 200
    assert outcome.error.request_id == "req_9"
    assert "overloaded_error" in str(outcome.error)
    assert outcome.error.partial == "Hello"
    assert_all_closed(chat, server)


@pytest.mark.parametrize("mode", MODES)
def test_overloaded_before_any_chunk_is_retried(server: ScriptedServer, mode: str) -> None:
    server.script(
        Reply(body=anthropic_text([], stop=False)[:3] + [anthropic_error()]),
        Reply(body=anthropic_text(["ok"])),
    )
    chat = chat_for(server)
    outcome = consume(chat, "Hi", mode)
    assert outcome.error is None
    assert outcome.text == "ok"
    assert len(server.requests) == 2
    assert_all_closed(chat, server)


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        (400, "invalid_request_error", BadRequestError),
        (429, "rate_limit_error", RateLimitError),
        (529, "overloaded_error", InternalServerError),
    ],
)
def test_http_errors(server: ScriptedServer, status: int, kind: str, error: type) -> None:
    body = {"type": "error", "error": {"type": kind, "message": "nope"}}
    server.script(
        *[
            Reply(status, [sse(body).removeprefix(b"data: ")], content_type="application/json")
            for _ in range(3)
        ]
    )
    chat = chat_for(server)
    with pytest.raises(error) as caught:
        chat.invoke("Hi")
    assert caught.value.status_code == status
    assert caught.value.body == body
    assert "nope" in str(caught.value)
    assert_all_closed(chat, server)


def test_unknown_events_are_ignored() -> None:
    translator = AnthropicTranslator()
    assert translator.feed("future_event", {"type": "future_event", "x": 1}) is None
    assert translator.feed("ping", {"type": "ping"}) is None
    assert not translator.finished


def test_a_key_is_required_for_api_anthropic_com(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    chat = ChatAnthropic(model="claude-sonnet-4-5")
    with pytest.raises(InvalidInputError, match="ANTHROPIC_API_KEY"):
        chat.invoke("Hi")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    assert ChatAnthropic(model="m").api_key is not None


def test_only_system_messages_is_invalid(server: ScriptedServer) -> None:
    chat = chat_for(server)
    with pytest.raises(InvalidInputError, match="non-system"):
        chat.invoke([("system", "Be kind")])
    assert server.requests == []
