"""Recorded provider bytes, assembled by rxllm and by the official SDK, must agree.

Each test serves one recorded stream (``tests/llms/recorded/``) from a local server to
rxllm (through ``stream`` and ``astream``) and, where an official SDK exists, to that
SDK's own client over HTTP; the SDK's assembled reply is the oracle. Ollama has no SDK
that assembles a stream, so its oracle is the records' own fields, joined.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from reactivex import operators as ops

from rxllm.errors import InternalServerError, ProtocolError
from rxllm.llms import ChatAnthropic, ChatOllama, ChatOpenAI, Ollama, OpenAI
from rxllm.schema import AIMessage, merge_generation_chunks, merge_message_chunks
from tests.servers.scripted import Reply, ScriptedServer

from .conftest import MODES, assert_all_closed, consume
from .recorded import recorded

NDJSON = "application/x-ndjson"


@pytest.fixture
def replay(server: ScriptedServer) -> Callable[[str, str], ScriptedServer]:
    """Serve one recorded body to every request, in writes of 64 bytes (so events and
    UTF-8 sequences are split across reads, as over a real network)."""

    def serve(provider: str, name: str) -> ScriptedServer:
        body = recorded(provider, name)
        content_type = NDJSON if provider == "ollama" else "text/event-stream"
        server.respond = lambda _: Reply(body=[body], content_type=content_type, write_size=64)
        return server

    return serve


def _reply(model: Any, prompt: Any, mode: str) -> AIMessage:
    outcome = consume(model, prompt, mode)
    assert outcome.error is None, outcome.error
    return merge_message_chunks(outcome.items).to_message()


# OpenAI chat completions: the SDK's ChatCompletionStreamState is the oracle.


def _openai_sdk(server: ScriptedServer) -> Any:
    """The official SDK's assembled completion of the stream the server replays."""
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-test", max_retries=0)
    state = ChatCompletionStreamState()
    with client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    ) as stream:
        for chunk in stream:
            state.handle_chunk(chunk)
    client.close()
    return state.current_completion_snapshot


def _openai_chat(server: ScriptedServer, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(base_url=f"{server.url}/v1", api_key="sk-test", **kwargs)


@pytest.mark.parametrize(
    "name",
    [
        "chat_text_usage",
        "chat_refusal",
        "chat_logprobs",
        "chat_refusal_logprobs",
        "chat_tool_call",
        "chat_parallel_tool_calls",
        "chat_length",
        "chat_reasoning_content",
        "chat_reasoning",
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_openai_chat_agrees_with_the_sdk(replay: Any, name: str, mode: str) -> None:
    server = replay("openai", name)
    chat = _openai_chat(server)
    message = _reply(chat, "hi", mode)
    expected = _openai_sdk(server)
    choice = expected.choices[0]
    assert message.content == (choice.message.content or "")
    assert message.response_metadata["finish_reason"] == choice.finish_reason
    assert message.response_metadata["model_name"] == expected.model
    assert message.response_metadata.get("refusal") == choice.message.refusal
    if choice.logprobs is None:
        assert "logprobs" not in message.response_metadata
    else:
        assert message.response_metadata["logprobs"] == choice.logprobs.model_dump(mode="json")
    calls = choice.message.tool_calls or []
    assert [(c.id, c.name, c.args) for c in message.tool_calls] == [
        (c.id, c.function.name, json.loads(c.function.arguments)) for c in calls
    ]
    assert message.invalid_tool_calls == []
    # The SDK keeps what its types do not know as extra attributes of the message.
    extra = choice.message.model_extra or {}
    assert message.reasoning == (extra.get("reasoning_content") or extra.get("reasoning") or "")
    if expected.usage is not None:
        assert message.usage_metadata is not None
        assert message.usage_metadata.input_tokens == expected.usage.prompt_tokens
        assert message.usage_metadata.output_tokens == expected.usage.completion_tokens
    assert "warnings" not in message.response_metadata
    assert_all_closed(chat, server)


def test_openai_reasoning_streams_before_the_answer(replay: Any) -> None:
    chunks = list(_openai_chat(replay("openai", "chat_reasoning_content")).stream("hi"))
    first_content = next(i for i, c in enumerate(chunks) if c.content)
    assert first_content > 100
    assert all(c.reasoning and not c.content for c in chunks[:first_content])
    assert not any(c.reasoning for c in chunks[first_content:])


@pytest.mark.parametrize("mode", MODES)
def test_openai_several_choices_are_refused_not_mixed(replay: Any, mode: str) -> None:
    server = replay("openai", "chat_n3")
    outcome = consume(_openai_chat(server), "hi", mode)
    assert isinstance(outcome.error, ProtocolError)
    assert "more than one choice" in str(outcome.error)
    # What was kept is the first choice's text so far, never a mix of choices.
    first = _openai_sdk(server).choices[0].message.content
    assert first.startswith(outcome.text)
    assert first.startswith(outcome.error.partial or "")


@pytest.mark.parametrize("mode", MODES)
def test_openai_completions_agree_with_the_recorded_chunks(replay: Any, mode: str) -> None:
    server = replay("openai", "completions_text")
    llm = OpenAI(base_url=f"{server.url}/v1", api_key="sk-test")
    outcome = consume(llm, "hi", mode)
    assert outcome.error is None
    events = [
        json.loads(line[len("data: ") :])
        for line in recorded("openai", "completions_text").decode().splitlines()
        if line.startswith("data: {")
    ]
    assert outcome.text == "".join(c["text"] for e in events for c in e["choices"])
    total = merge_generation_chunks(llm.observe("hi").pipe(ops.to_list()).run())
    assert total.text == outcome.text
    assert total.generation_info is not None
    assert total.generation_info["finish_reason"] == "length"
    assert total.generation_info["token_usage"] == events[-1]["usage"]


# Anthropic: the SDK's MessageStream (accumulate_event) is the oracle.


def _anthropic_sdk(server: ScriptedServer) -> Any:
    client = anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test", max_retries=0)
    with client.messages.stream(
        model="m", max_tokens=1024, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        message = stream.get_final_message()
    client.close()
    return message


def _anthropic_chat(server: ScriptedServer) -> ChatAnthropic:
    return ChatAnthropic(model="m", base_url=server.url, api_key="sk-ant-test")


@pytest.mark.parametrize(
    "name",
    ["text", "tool_use", "tool_use_max_tokens", "refusal", "thinking_refusal", "thinking"]
    + ["web_search"],
)
@pytest.mark.parametrize("mode", MODES)
def test_anthropic_agrees_with_the_sdk(replay: Any, name: str, mode: str) -> None:
    server = replay("anthropic", name)
    chat = _anthropic_chat(server)
    message = _reply(chat, "hi", mode)
    expected = _anthropic_sdk(server)
    blocks = [b.to_dict() for b in expected.content]
    assert message.content == "".join(b["text"] for b in blocks if b["type"] == "text")
    assert message.reasoning == "".join(b["thinking"] for b in blocks if b["type"] == "thinking")
    assert [(c.id, c.name, c.args) for c in message.tool_calls] == [
        (b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"
    ]
    assert message.invalid_tool_calls == []
    metadata = message.response_metadata
    assert metadata["stop_reason"] == expected.stop_reason
    assert metadata["stop_sequence"] == expected.stop_sequence
    assert metadata["model_name"] == expected.model
    assert metadata.get("stop_details") == (
        None if expected.stop_details is None else expected.stop_details.to_dict()
    )
    plain = all(b["type"] in ("text", "tool_use") and not b.get("citations") for b in blocks)
    if plain:
        assert "content_blocks" not in metadata
    else:
        assert metadata["content_blocks"] == blocks
    assert message.usage_metadata is not None
    usage = expected.usage
    assert message.usage_metadata.output_tokens == usage.output_tokens
    assert message.usage_metadata.input_tokens == usage.input_tokens + (
        usage.cache_creation_input_tokens or 0
    ) + (usage.cache_read_input_tokens or 0)
    assert_all_closed(chat, server)


def test_anthropic_server_tools_are_not_tool_calls(replay: Any) -> None:
    message = _anthropic_chat(replay("anthropic", "web_search")).invoke("hi")
    assert message.tool_calls == []
    assert message.invalid_tool_calls == []
    kinds = [b["type"] for b in message.response_metadata["content_blocks"]]
    assert kinds[:2] == ["server_tool_use", "web_search_tool_result"]
    search = message.response_metadata["content_blocks"][0]
    assert search["name"] == "web_search"
    assert search["input"]["query"]


def test_anthropic_tool_call_cut_by_max_tokens_keeps_its_partial_arguments(
    replay: Any,
) -> None:
    message = _anthropic_chat(replay("anthropic", "tool_use_max_tokens")).invoke("hi")
    assert message.response_metadata["stop_reason"] == "max_tokens"
    (call,) = message.tool_calls
    assert call.name == "make_file"
    assert call.args


@pytest.mark.parametrize("mode", MODES)
def test_anthropic_in_band_error_keeps_the_text(replay: Any, mode: str) -> None:
    server = replay("anthropic", "error")
    outcome = consume(_anthropic_chat(server), "hi", mode)
    assert isinstance(outcome.error, InternalServerError)
    assert outcome.error.partial == "Hello" == outcome.text
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        _anthropic_sdk(server)


# Ollama: no SDK assembles a stream; the oracle is the records' fields joined.


def _records(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in recorded("ollama", name).splitlines() if line.strip()]


@pytest.mark.parametrize("name", ["chat_text", "chat_thinking", "chat_tool_call"])
@pytest.mark.parametrize("mode", MODES)
def test_ollama_chat_joins_every_field(replay: Any, name: str, mode: str) -> None:
    server = replay("ollama", name)
    chat = ChatOllama(model="m", base_url=server.url)
    message = _reply(chat, "hi", mode)
    records = _records(name)
    assert message.content == "".join(r["message"].get("content") or "" for r in records)
    assert message.reasoning == "".join(r["message"].get("thinking") or "" for r in records)
    calls = [c["function"] for r in records for c in r["message"].get("tool_calls") or ()]
    assert [(c.name, c.args) for c in message.tool_calls] == [
        (c["name"], c["arguments"]) for c in calls
    ]
    final = records[-1]
    assert message.response_metadata.get("done_reason") == final.get("done_reason")
    assert message.usage_metadata is not None
    assert message.usage_metadata.output_tokens == final.get("eval_count", 0)
    assert_all_closed(chat, server)


@pytest.mark.parametrize("name", ["generate", "generate_thinking"])
@pytest.mark.parametrize("mode", MODES)
def test_ollama_generate_joins_every_field(replay: Any, name: str, mode: str) -> None:
    server = replay("ollama", name)
    llm = Ollama(model="m", base_url=server.url)
    outcome = consume(llm, "hi", mode)
    assert outcome.error is None
    records = _records(name)
    assert outcome.text == "".join(r.get("response") or "" for r in records)
    total = merge_generation_chunks(llm.observe("hi").pipe(ops.to_list()).run())
    assert total.text == outcome.text
    assert total.reasoning == "".join(r.get("thinking") or "" for r in records)
    assert_all_closed(llm, server)
