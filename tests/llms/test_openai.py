"""``OpenAI``/``ChatOpenAI`` on the scripted server: requests, usage, tool calls, translators."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex import operators as ops

from rxllm import AIMessage, AIMessageChunk, InvalidInputError
from rxllm._http._sse import SSEDecoder
from rxllm.errors import InternalServerError, ProtocolError
from rxllm.llms import ChatOpenAI, OpenAI
from rxllm.llms._openai import ChatCompletionTranslator, CompletionTranslator
from rxllm.schema import ToolCall, ToolMessage
from tests.servers.scripted import Reply, ScriptedServer
from tests.servers.wire import openai_chat, openai_completion, sse

from .conftest import MODES, assert_all_closed, consume, translated

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]


def chat_for(server: ScriptedServer, **kwargs: object) -> ChatOpenAI:
    return ChatOpenAI(base_url=f"{server.url}/v1", api_key="sk-test", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", MODES)
def test_completion_request_and_chunks(server: ScriptedServer, mode: str) -> None:
    server.script(Reply(body=openai_completion(["Hello", " world"])))
    llm = OpenAI(
        base_url=f"{server.url}/v1",
        api_key="sk-test",
        temperature=0.5,
        max_tokens=7,
        stop=["\n"],
        model_kwargs={"seed": 3},
    )
    outcome = consume(llm, "Say hi", mode, top_p=0.9)
    assert outcome.error is None
    # The finish and usage events come as chunks with no text.
    assert outcome.items == ["Hello", " world", "", ""]
    request = server.requests[0]
    assert (request.method, request.path) == ("POST", "/v1/completions")
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.json() == {
        "model": "gpt-3.5-turbo-instruct",
        "prompt": "Say hi",
        "temperature": 0.5,
        "max_tokens": 7,
        "stop": ["\n"],
        "stream_options": {"include_usage": True},
        "seed": 3,
        "top_p": 0.9,
        "stream": True,
    }
    assert_all_closed(llm, server)


def test_completion_usage_and_finish_reason(server: ScriptedServer) -> None:
    server.script(Reply(body=openai_completion(["a", "b"])))
    llm = OpenAI(base_url=f"{server.url}/v1")
    chunks = llm.observe("x").pipe(ops.to_list()).run()
    info = (chunks[0] + chunks[1] + chunks[2] + chunks[3]).generation_info
    assert info is not None
    assert info["finish_reason"] == "stop"
    assert info["token_usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert "authorization" not in server.requests[0].headers  # a local server, no key
    assert_all_closed(llm, server)


def test_call_stop_replaces_the_default(server: ScriptedServer) -> None:
    server.script(Reply(body=openai_completion(["a"])))
    llm = OpenAI(base_url=f"{server.url}/v1", stop=["x"], stream_usage=False)
    llm.invoke("p", stop=["y", "z"])
    assert server.requests[0].json()["stop"] == ["y", "z"]
    assert "stream_options" not in server.requests[0].json()
    assert_all_closed(llm, server)


@pytest.mark.parametrize("mode", MODES)
def test_chat_usage_lands_in_the_last_chunk(server: ScriptedServer, mode: str) -> None:
    server.script(Reply(body=openai_chat(["Hi", " there"])))
    chat = chat_for(server)
    outcome = consume(chat, [("system", "Be brief"), ("human", "Hello")], mode)
    assert outcome.error is None
    assert outcome.text == "Hi there"
    last = outcome.items[-1]
    assert last.usage_metadata is not None
    assert last.usage_metadata.model_dump() == {
        "input_tokens": 9,
        "output_tokens": 12,
        "total_tokens": 21,
    }
    assert all(item.usage_metadata is None for item in outcome.items[:-1])
    assert server.requests[0].json()["messages"] == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Hello"},
    ]
    assert_all_closed(chat, server)


@pytest.mark.parametrize("mode", MODES)
def test_chat_tool_calls_are_assembled(server: ScriptedServer, mode: str) -> None:
    calls = [
        ("call_1", "get_weather", ['{"loc', 'ation": "Paris"}']),
        ("call_2", "get_time", ["{}"]),
    ]
    server.script(Reply(body=openai_chat([], tool_calls=calls)))
    chat = chat_for(server)
    outcome = consume(chat, "Weather?", mode, tools=TOOLS, tool_choice="auto")
    assert outcome.error is None
    assert any(item.tool_call_chunks for item in outcome.items)
    total = outcome.items[0]
    for item in outcome.items[1:]:
        total = total + item
    message = total.to_message()
    assert message.tool_calls == [
        ToolCall(name="get_weather", args={"location": "Paris"}, id="call_1"),
        ToolCall(name="get_time", args={}, id="call_2"),
    ]
    assert message.response_metadata["finish_reason"] == "tool_calls"
    body = server.requests[0].json()
    assert body["tools"] == TOOLS
    assert body["tool_choice"] == "auto"
    assert_all_closed(chat, server)


def test_chat_invoke_parses_tool_calls_and_sends_them_back(server: ScriptedServer) -> None:
    calls = [("call_1", "get_weather", ['{"location": "Paris"}'])]
    server.script(Reply(body=openai_chat([], tool_calls=calls)), Reply(body=openai_chat(["Sunny"])))
    chat = chat_for(server, model_kwargs={"response_format": {"type": "text"}})
    message = chat.invoke("Weather?", tools=TOOLS)
    assert isinstance(message, AIMessage)
    assert message.tool_calls[0].args == {"location": "Paris"}
    assert message.usage_metadata is not None
    reply = chat.invoke(
        [("human", "Weather?"), message, ToolMessage(content="sunny", tool_call_id="call_1")]
    )
    assert reply.content == "Sunny"
    sent = server.requests[1].json()
    assert sent["response_format"] == {"type": "text"}
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
            }
        ],
    }
    assert sent["messages"][2] == {"role": "tool", "content": "sunny", "tool_call_id": "call_1"}
    assert_all_closed(chat, server)


@pytest.mark.parametrize("mode", MODES)
def test_in_band_error_data_line(server: ScriptedServer, mode: str) -> None:
    error = {"error": {"message": "The server had an error", "type": "server_error"}}
    server.script(
        Reply(
            body=openai_chat(["Hel", "lo"], done=False)[:3] + [sse(error)],
            headers={"x-request-id": "req_42"},
        )
    )
    chat = chat_for(server)
    outcome = consume(chat, "Hi", mode)
    assert isinstance(outcome.error, InternalServerError)
    assert outcome.error.status_code == 200
    assert outcome.error.request_id == "req_42"
    assert outcome.error.body == error
    assert outcome.error.partial == "Hello"
    assert server.unused_replies == 0  # not retried: chunks were emitted
    assert_all_closed(chat, server)


def test_a_key_is_required_for_api_openai_com(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    llm = OpenAI(model="gpt-3.5-turbo-instruct", temperature=0, max_tokens=512)
    with pytest.raises(InvalidInputError, match="OPENAI_API_KEY"):
        llm.invoke("hi")
    with pytest.raises(InvalidInputError, match="OPENAI_API_KEY"):
        ChatOpenAI().stream("hi")
    assert not llm._clients.values()  # nothing was sent


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    llm = ChatOpenAI()
    assert llm.base_url == "http://127.0.0.1:9/v1"
    assert llm.api_key is not None
    assert llm.api_key.get_secret_value() == "sk-env"


def test_ls_params() -> None:
    llm = OpenAI(api_key="k", temperature=0, max_tokens=512, stop=["\n"])
    assert llm._ls_params() == {
        "ls_provider": "openai",
        "ls_model_type": "llm",
        "ls_model_name": "gpt-3.5-turbo-instruct",
        "ls_temperature": 0,
        "ls_max_tokens": 512,
        "ls_stop": ["\n"],
    }
    assert ChatOpenAI(api_key="k", model="gpt-4o")._ls_params() == {
        "ls_provider": "openai",
        "ls_model_type": "chat",
        "ls_model_name": "gpt-4o",
    }


def test_unknown_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="temprature"):
        ChatOpenAI(api_key="k", temprature=0)  # type: ignore[call-arg]


# The translators, without HTTP.


def test_completion_translator_skips_empty_events() -> None:
    translator = CompletionTranslator()
    assert translator.feed({"choices": [{"text": "", "finish_reason": None}]}) is None
    chunk = translator.feed({"choices": [{"text": "a", "finish_reason": None}]})
    assert chunk is not None
    assert chunk.text == "a"
    assert chunk.generation_info is None


def test_chat_translator_role_only_delta_is_skipped() -> None:
    translator = ChatCompletionTranslator()
    assert translator.feed({"id": "c", "choices": [{"delta": {"role": "assistant"}}]}) is None
    chunk = translator.feed({"id": "c", "choices": [{"delta": {"content": "x"}}]})
    assert chunk == AIMessageChunk(content="x", id="c")


@pytest.mark.parametrize(
    "payload",
    [
        {"id": "c1", "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]},
        {"id": None, "choices": [{"delta": {"role": "assistant", "content": "hi"}}]},
        {"id": "c1", "choices": [{"delta": {"content": "hi"}, "finish_reason": "stop"}]},
        {"id": "c1", "choices": [{"delta": {"content": "hi", "refusal": "no"}}]},
        {"id": "c1", "choices": [{"delta": {"content": "hi"}}], "usage": {"total_tokens": 3}},
        {"id": "c1", "choices": [{"delta": {"content": ""}}]},
        {"id": "c1", "choices": []},
    ],
)
def test_chat_fast_path_agrees_with_the_general_one(payload: dict[str, Any]) -> None:
    translator = ChatCompletionTranslator()
    assert translator.feed(payload) == translator._feed(payload)


@pytest.mark.parametrize(
    "payload",
    [
        {"choices": [{"text": "hi", "index": 0, "logprobs": None, "finish_reason": None}]},
        {"choices": [{"text": "hi", "finish_reason": "length"}], "model": "m"},
        {"choices": [{"text": "hi", "logprobs": {"tokens": ["hi"]}}]},
        {"choices": [{"text": "hi"}], "usage": {"total_tokens": 3}},
        {"choices": [{"text": ""}]},
    ],
)
def test_completion_fast_path_agrees_with_the_general_one(payload: dict[str, Any]) -> None:
    translator = CompletionTranslator()
    assert translator.feed(payload) == translator._feed(payload)


def _choice_event(index: int, delta: dict[str, Any], **choice: Any) -> dict[str, Any]:
    return {"id": "c1", "model": "m", "choices": [{"index": index, "delta": delta, **choice}]}


def test_n_above_one_is_refused_before_sending(server: ScriptedServer) -> None:
    # Constructors raise pydantic's ValidationError (a ValueError), as for any bad field.
    with pytest.raises(ValueError, match="n=2"):
        chat_for(server, model_kwargs={"n": 2})
    with pytest.raises(InvalidInputError, match="n=3"):
        chat_for(server).invoke("hi", n=3)
    with pytest.raises(ValueError, match="n=2"):
        OpenAI(base_url=f"{server.url}/v1", model_kwargs={"n": 2})
    assert server.requests == []
    server.script(Reply(body=openai_chat(["ok"])))
    assert chat_for(server).invoke("hi", n=1).content == "ok"


@pytest.mark.parametrize("translator", [ChatCompletionTranslator, CompletionTranslator])
def test_a_second_choice_is_a_protocol_error_not_a_mix(translator: type) -> None:
    from rxllm.errors import ProtocolError

    feed = translator().feed
    feed(_choice_event(0, {"content": "a"}, text="a"))
    with pytest.raises(ProtocolError, match="more than one choice"):
        feed(_choice_event(1, {"content": "b"}, text="b"))
    two = {
        "choices": [{"index": 0, "delta": {}, "text": ""}, {"index": 1, "delta": {}, "text": ""}]
    }
    with pytest.raises(ProtocolError, match="more than one choice"):
        translator().feed(two)


def test_refusal_and_logprobs_are_joined_across_chunks() -> None:
    translator = ChatCompletionTranslator()
    top = [{"token": "I", "logprob": -0.1, "bytes": [73], "top_logprobs": []}]
    events = [
        _choice_event(0, {"role": "assistant", "refusal": ""}),
        _choice_event(0, {"refusal": "I can't"}, logprobs={"content": None, "refusal": top}),
        _choice_event(0, {"refusal": " help."}, logprobs={"content": None, "refusal": top}),
        _choice_event(0, {}, finish_reason="stop"),
    ]
    chunks = [c for c in map(translator.feed, events) if c is not None]
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert total.response_metadata["refusal"] == "I can't help."
    assert total.response_metadata["logprobs"] == {"content": None, "refusal": top + top}
    from rxllm.schema import merge_message_chunks

    assert merge_message_chunks(chunks).response_metadata == total.response_metadata


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_deltas_of_compatible_servers(field: str) -> None:
    translator = ChatCompletionTranslator()
    events = [
        _choice_event(0, {field: "Think"}),
        _choice_event(0, {field: "ing."}),
        _choice_event(0, {"content": "42"}),
        _choice_event(0, {}, finish_reason="stop"),
    ]
    chunks = [c for c in map(translator.feed, events) if c is not None]
    assert [(c.content, c.reasoning) for c in chunks[:3]] == [
        ("", "Think"),
        ("", "ing."),
        ("42", ""),
    ]
    from rxllm.schema import merge_message_chunks

    message = merge_message_chunks(chunks).to_message()
    assert (message.content, message.reasoning) == ("42", "Thinking.")
    assert translator.end() is None


@pytest.mark.parametrize("mode", MODES)
def test_a_reply_without_a_finish_reason_warns(server: ScriptedServer, mode: str) -> None:
    body = [sse(_choice_event(0, {"content": "Hel"})), sse(_choice_event(0, {"content": "lo"}))]
    server.script(Reply(body=[*body, b"data: [DONE]\n\n"]))
    outcome = consume(chat_for(server), "hi", mode)
    assert outcome.error is None
    assert outcome.text == "Hello"
    from rxllm.schema import merge_message_chunks

    warnings = merge_message_chunks(outcome.items).response_metadata["warnings"]
    assert "without a finish reason" in warnings[0]


def test_n_is_refused_when_the_call_is_made_not_when_it_starts(server: ScriptedServer) -> None:
    chat = chat_for(server)
    with pytest.raises(InvalidInputError, match="n=2"):
        chat.observe("hi", n=2)  # nothing subscribed yet
    with pytest.raises(InvalidInputError, match="n=4"):
        OpenAI(base_url=f"{server.url}/v1").observe("hi", n=4)


def test_a_delta_of_the_wrong_type_is_a_protocol_error_quoting_the_event() -> None:
    # Every provider's stream goes through the one wire loop, which turns JSON that
    # parsed but does not fit the chunk model into ProtocolError, never pydantic's error.
    body = b'data: {"choices": [{"index": 0, "delta": {"content": 5}}]}\n\n'

    with pytest.raises(ProtocolError, match="not shaped as") as caught:
        translated([body], SSEDecoder(), ChatCompletionTranslator())
    assert caught.value.line == body[6:-2].decode()
