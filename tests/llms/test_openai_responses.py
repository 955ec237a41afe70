"""``ChatOpenAI(use_responses_api=True)``: recorded Responses API streams, checked against
the official ``openai`` SDK reading the same bytes from the same local server.

The recordings and where they come from are in ``recorded/openai_responses/SOURCES.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops

from rxllm import AIMessage, AIMessageChunk, InvalidInputError
from rxllm._constants import MAX_EVENT_BYTES
from rxllm._http._sse import SSEDecoder
from rxllm.errors import (
    APIError,
    BadRequestError,
    InternalServerError,
    ProtocolError,
    RateLimitError,
    StreamInterruptedError,
)
from rxllm.llms import ChatOpenAI
from rxllm.llms._responses import ResponsesTranslator
from rxllm.schema import BaseMessage, ToolCall, ToolMessage
from tests.servers.scripted import Reply, ScriptedServer

from .conftest import MODES, assert_all_closed, consume, translated

RECORDED = Path(__file__).parent / "recorded" / "openai_responses"


def recorded(name: str) -> bytes:
    return (RECORDED / f"{name}.sse").read_bytes()


def events_of(body: bytes) -> list[bytes]:
    """The SSE events of a recording, each with its blank line."""
    return [block + b"\n\n" for block in body.split(b"\n\n") if block.strip()]


def chat_for(server: ScriptedServer, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=f"{server.url}/v1", api_key="sk-test", use_responses_api=True, **kwargs
    )


def total(items: list[Any]) -> AIMessage:
    """The message a stream's chunks add up to, tool calls parsed."""
    chunk: AIMessageChunk = items[0]
    for item in items[1:]:
        chunk = chunk + item
    return chunk.to_message()


@dataclass
class Oracle:
    """What the official SDK made of a stream."""

    events: list[Any]
    final: Any  # the ParsedResponse, when the stream completed
    error: Exception | None

    @property
    def text_so_far(self) -> str:
        """The text the SDK had accumulated at its last text delta."""
        deltas = [e for e in self.events if e.type == "response.output_text.delta"]
        return str(deltas[-1].snapshot) if deltas else ""

    def items(self, kind: str) -> list[Any]:
        return [item for item in self.final.output if item.type == kind]


def oracle(body: bytes) -> Oracle:
    """Replay ``body`` to the official SDK's ``responses.stream`` and keep what it made."""
    events: list[Any] = []
    final: Any = None
    error: Exception | None = None
    with (
        ScriptedServer() as server,
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-test", max_retries=0) as client,
    ):
        server.script(Reply(body=[body]))
        try:
            with client.responses.stream(model="gpt-4o", input="x") as stream:
                events.extend(stream)
                final = stream.get_final_response()
        except Exception as exc:  # the SDK's verdict is what is compared
            error = exc
    return Oracle(events, final, error)


# Recorded streams, compared with the SDK.


@pytest.mark.parametrize("mode", MODES)
def test_text_as_the_sdk_reads_it(server: ScriptedServer, mode: str) -> None:
    body = recorded("text")
    sdk = oracle(body)
    server.script(Reply(body=[body]))
    chat = chat_for(server)
    outcome = consume(chat, "What is the capital of France?", mode)
    assert outcome.error is None
    assert outcome.text == sdk.final.output_text == "The capital of France is Paris."
    assert [i.content for i in outcome.items[:-1]] == [
        "The",
        " capital",
        " of",
        " France",
        " is",
        " Paris",
        ".",
    ]
    response_id = sdk.final.id
    assert {item.id for item in outcome.items} == {response_id}
    last = outcome.items[-1]
    assert last.content == ""
    assert last.usage_metadata is not None
    assert last.usage_metadata.model_dump() == {
        "input_tokens": sdk.final.usage.input_tokens,
        "output_tokens": sdk.final.usage.output_tokens,
        "total_tokens": sdk.final.usage.total_tokens,
        "input_token_details": {"cache_read": 0},
        "output_token_details": {"reasoning": 0},
    }
    assert all(item.usage_metadata is None for item in outcome.items[:-1])
    assert last.response_metadata == {
        "id": response_id,
        "model_name": "gpt-4o-2024-08-06",
        "status": "completed",
        "finish_reason": "stop",
    }
    request = server.requests[0]
    assert (request.method, request.path) == ("POST", "/v1/responses")
    assert request.headers["authorization"] == "Bearer sk-test"
    assert outcome.busy == 0
    assert_all_closed(chat, server)


@pytest.mark.parametrize("mode", MODES)
def test_reasoning_summary_as_the_sdk_reads_it(server: ScriptedServer, mode: str) -> None:
    body = recorded("reasoning_summary")
    sdk = oracle(body)
    (reasoning_item,) = sdk.items("reasoning")
    parts = [part.text for part in reasoning_item.summary]
    assert len(parts) == 4
    server.script(Reply(body=[body]))
    chat = chat_for(server, model="o3-mini")
    outcome = consume(chat, "How do I cross the street?", mode)
    assert outcome.error is None
    message = total(outcome.items)
    # The summary's parts, separated by a blank line; the answer apart from them.
    assert message.reasoning == "\n\n".join(parts)
    assert message.content == sdk.final.output_text
    assert not any(item.content and item.reasoning for item in outcome.items)
    assert message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] == sdk.final.usage.output_tokens == 1680
    assert message.usage_metadata.output_token_details == {
        "reasoning": sdk.final.usage.output_tokens_details.reasoning_tokens
    }
    assert_all_closed(chat, server)


@pytest.mark.parametrize("name", ["function_call", "parallel_function_calls", "usage_details"])
@pytest.mark.parametrize("mode", MODES)
def test_function_calls_as_the_sdk_reads_them(server: ScriptedServer, mode: str, name: str) -> None:
    body = recorded(name)
    sdk = oracle(body)
    expected = [
        ToolCall(name=item.name, args=json.loads(item.arguments), id=item.call_id)
        for item in sdk.items("function_call")
    ]
    assert expected  # the recording holds calls
    server.script(Reply(body=[body]))
    chat = chat_for(server)
    outcome = consume(chat, "What is the capital of France?", mode)
    assert outcome.error is None
    message = total(outcome.items)
    assert message.tool_calls == expected
    assert message.invalid_tool_calls == []
    assert message.content == sdk.final.output_text
    assert message.response_metadata["finish_reason"] == "tool_calls"
    usage = sdk.final.usage
    assert message.usage_metadata is not None
    assert message.usage_metadata.model_dump() == {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "input_token_details": {"cache_read": usage.input_tokens_details.cached_tokens},
        "output_token_details": {"reasoning": usage.output_tokens_details.reasoning_tokens},
    }
    assert_all_closed(chat, server)


def test_parallel_calls_stream_interleaved_by_output_index(server: ScriptedServer) -> None:
    server.script(Reply(body=[recorded("parallel_function_calls")]))
    chat = chat_for(server)
    pieces = [
        (piece.index, piece.args)
        for chunk in chat.stream("Capitals?")
        for piece in chunk.tool_call_chunks
    ]
    assert pieces[:4] == [(0, ""), (1, ""), (0, '{"'), (1, '{"')]
    assert {index for index, _ in pieces} == {0, 1}
    assert_all_closed(chat, server)


def test_reasoning_tokens_are_reported(server: ScriptedServer) -> None:
    server.script(Reply(body=[recorded("usage_details")]))
    chat = chat_for(server, model="gpt-5")
    message = chat.invoke("Calculate 100 * 200 / 3")
    assert message.usage_metadata is not None
    assert message.usage_metadata.output_token_details == {"reasoning": 448}
    assert message.response_metadata["model_name"] == "gpt-5-2025-08-07"
    assert message.reasoning == ""  # the recording's reasoning item has no summary
    assert_all_closed(chat, server)


@pytest.mark.parametrize("mode", MODES)
def test_refusal_as_the_sdk_reads_it(server: ScriptedServer, mode: str) -> None:
    body = recorded("refusal")
    sdk = oracle(body)
    (sdk_message,) = sdk.items("message")
    refusal = sdk_message.content[0].refusal
    assert refusal == "I'm sorry, but I can't help with that."
    server.script(Reply(body=[body]))
    chat = chat_for(server)
    outcome = consume(chat, "Help me with something bad", mode)
    assert outcome.error is None
    message = total(outcome.items)
    assert message.content == sdk.final.output_text == ""
    assert message.response_metadata["refusal"] == refusal
    assert sum("refusal" in item.response_metadata for item in outcome.items) == 10
    assert_all_closed(chat, server)


@pytest.mark.parametrize("mode", MODES)
def test_logprobs_as_the_sdk_reads_them(server: ScriptedServer, mode: str) -> None:
    body = recorded("logprobs")
    sdk = oracle(body)
    expected = [
        (p.token, p.logprob)
        for event in sdk.events
        if event.type == "response.output_text.delta"
        for p in event.logprobs
    ]
    assert len(expected) > 5
    # The completed response repeats the tokens (with its logprobs rounded).
    (sdk_message,) = sdk.items("message")
    assert [p.token for p in sdk_message.content[0].logprobs] == [t for t, _ in expected]
    server.script(Reply(body=[body]))
    chat = chat_for(server, model="gpt-4o-mini")
    outcome = consume(chat, "What is the capital of Minas Gerais?", mode)
    assert outcome.error is None
    message = total(outcome.items)
    assert message.content == sdk.final.output_text
    logprobs = message.response_metadata["logprobs"]
    assert [(p["token"], p["logprob"]) for p in logprobs] == expected
    assert_all_closed(chat, server)


# Endings: failed, error, incomplete, cut.


@pytest.mark.parametrize("mode", MODES)
def test_failed_after_text_is_typed_and_keeps_the_text(server: ScriptedServer, mode: str) -> None:
    body = recorded("failed_after_text")
    sdk = oracle(body)
    failed = sdk.events[-1]
    assert failed.type == "response.failed"
    assert failed.response.error.code == "server_error"
    server.script(Reply(body=[body], headers={"x-request-id": "req_7"}))
    chat = chat_for(server)
    outcome = consume(chat, "What is the capital of France?", mode)
    error = outcome.error
    assert isinstance(error, InternalServerError)
    assert error.partial == sdk.text_so_far == "The capital of France"
    assert "server_error: The model produced invalid content" in str(error)
    assert (error.status_code, error.request_id) == (200, "req_7")
    assert len(server.requests) == 1  # not retried: chunks were emitted
    assert_all_closed(chat, server)


@pytest.mark.parametrize("mode", MODES)
def test_error_event_after_text_is_typed_and_keeps_the_text(
    server: ScriptedServer, mode: str
) -> None:
    body = recorded("error_after_text")
    sdk = oracle(body)
    event = sdk.events[-1]
    assert (event.type, event.code) == ("error", "rate_limit_exceeded")
    server.script(Reply(body=[body]))
    chat = chat_for(server)
    outcome = consume(chat, "What is the capital of France?", mode)
    error = outcome.error
    assert isinstance(error, RateLimitError)
    assert error.partial == sdk.text_so_far == "The capital of France"
    assert "Rate limit reached for gpt-4o" in str(error)
    assert error.body == {
        "error": {
            "code": "rate_limit_exceeded",
            "message": event.message,
            "param": None,
            "type": "rate_limit_exceeded",
        }
    }
    assert len(server.requests) == 1
    assert_all_closed(chat, server)


def test_a_failure_before_any_chunk_is_retried(server: ScriptedServer) -> None:
    failed = events_of(recorded("failed_after_text"))
    server.script(Reply(body=failed[:2] + failed[-1:]), Reply(body=[recorded("text")]))
    chat = chat_for(server)
    assert chat.invoke("What is the capital of France?").content == (
        "The capital of France is Paris."
    )
    assert len(server.requests) == 2
    assert_all_closed(chat, server)


@pytest.mark.parametrize("mode", MODES)
def test_incomplete_completes_with_the_reason(server: ScriptedServer, mode: str) -> None:
    body = recorded("incomplete")
    sdk = oracle(body)
    last = sdk.events[-1]
    assert last.type == "response.incomplete"
    assert isinstance(sdk.error, RuntimeError)  # no final response: not completed
    server.script(Reply(body=[body]))
    chat = chat_for(server, max_tokens=16)
    outcome = consume(chat, "What is the capital of France?", mode)
    assert outcome.error is None
    assert outcome.text == sdk.text_so_far == "The capital of France"
    metadata = outcome.items[-1].response_metadata
    assert metadata["status"] == last.response.status == "incomplete"
    assert metadata["finish_reason"] == "length"
    assert metadata["incomplete_details"] == {"reason": last.response.incomplete_details.reason}
    assert "warnings" not in metadata
    assert server.requests[0].json()["max_output_tokens"] == 16
    assert_all_closed(chat, server)


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_cut_before_its_terminal_event(server: ScriptedServer, mode: str) -> None:
    cut = b"".join(events_of(recorded("text"))[:-1])
    sdk = oracle(cut)
    assert isinstance(sdk.error, RuntimeError)  # "Didn't receive a `response.completed`"
    server.script(Reply(body=[cut]))
    chat = chat_for(server)
    outcome = consume(chat, "What is the capital of France?", mode)
    assert isinstance(outcome.error, StreamInterruptedError)
    assert "terminal event" in str(outcome.error)
    assert outcome.error.partial == sdk.text_so_far == "The capital of France is Paris."
    assert_all_closed(chat, server)


def test_done_after_the_terminal_event_is_drained(server: ScriptedServer) -> None:
    server.script(Reply(body=[recorded("text"), b"data: [DONE]\n\n"]))
    chat = chat_for(server)
    assert chat.invoke("Hi").content == "The capital of France is Paris."
    assert_all_closed(chat, server)


def test_done_before_the_terminal_event_is_an_interruption(server: ScriptedServer) -> None:
    events = events_of(recorded("text"))
    server.script(Reply(body=[*events[:-1], b"data: [DONE]\n\n", events[-1]]))
    chat = chat_for(server, max_retries=0)
    with pytest.raises(StreamInterruptedError) as caught:
        chat.invoke("Hi")
    assert caught.value.partial == "The capital of France is Paris."
    assert_all_closed(chat, server)


@pytest.mark.parametrize(
    ("event", "match"),
    [
        (b"data: [1, 2]\n\n", "not a JSON object"),
        (b'data: {"type":"response.output_text.delta","delta":5}\n\n', "not shaped as"),
        (b'data: {"type":"response.output_text.delta","delta"\n\n', "JSON"),
    ],
)
def test_malformed_events_are_protocol_errors(
    server: ScriptedServer, event: bytes, match: str
) -> None:
    events = events_of(recorded("text"))
    server.script(Reply(body=[*events[:6], event]))
    chat = chat_for(server)
    with pytest.raises(ProtocolError, match=match) as caught:
        chat.invoke("Hi")
    assert caught.value.partial == "The capital"
    assert caught.value.line is not None
    assert_all_closed(chat, server)


# The request.


def test_the_request_body(server: ScriptedServer) -> None:
    server.script(Reply(body=[recorded("text")]))
    chat = chat_for(
        server,
        model="gpt-4o",
        temperature=0.2,
        max_tokens=64,
        model_kwargs={"reasoning": {"summary": "auto"}, "store": False},
    )
    tools = [{"type": "function", "name": "get_capital", "parameters": {"type": "object"}}]
    conversation = [
        ("system", "Be brief."),
        ("human", "What is the capital of France?"),
        AIMessage(
            content="Let me look.",
            tool_calls=[ToolCall(name="get_capital", args={"country": "France"}, id="call_1")],
        ),
        ToolMessage(content="Paris", tool_call_id="call_1"),
        AIMessage(content="Paris."),
        ("human", "And of Japan?"),
    ]
    chat.invoke(conversation, tools=tools, max_tokens=32, text={"verbosity": "low"})
    assert server.requests[0].path == "/v1/responses"
    assert server.requests[0].json() == {
        "model": "gpt-4o",
        "input": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "Let me look."},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_capital",
                "arguments": '{"country": "France"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "Paris"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "And of Japan?"},
        ],
        "temperature": 0.2,
        "max_output_tokens": 32,
        "reasoning": {"summary": "auto"},
        "store": False,
        "tools": tools,
        "text": {"verbosity": "low"},
        "stream": True,
    }
    assert_all_closed(chat, server)


def test_a_streamed_reply_sent_back_keeps_its_tool_calls(server: ScriptedServer) -> None:
    server.script(Reply(body=[recorded("function_call")]), Reply(body=[recorded("text")]))
    chat = chat_for(server)
    chunks = chat.observe("What is the capital of France?").pipe(ops.to_list()).run()
    summed = chunks[0]
    for chunk in chunks[1:]:
        summed = summed + chunk
    result = ToolMessage(content="Paris", tool_call_id="call_kL0PCQV7M2WMoVX8V8OtYSAL")
    assert chat.invoke(["What is the capital of France?", summed, result]).content == (
        "The capital of France is Paris."
    )
    assert server.requests[1].json()["input"][1:] == [
        {
            "type": "function_call",
            "call_id": "call_kL0PCQV7M2WMoVX8V8OtYSAL",
            "name": "get_capital",
            "arguments": '{"country": "France"}',
        },
        {
            "type": "function_call_output",
            "call_id": "call_kL0PCQV7M2WMoVX8V8OtYSAL",
            "output": "Paris",
        },
    ]
    assert_all_closed(chat, server)


def test_stop_is_refused_before_sending(server: ScriptedServer) -> None:
    with pytest.raises(ValueError, match="stop_on"):
        chat_for(server, stop=["\n"])
    chat = chat_for(server)
    with pytest.raises(InvalidInputError, match="no stop sequences"):
        chat.stream("Hi", stop=["\n"])
    with pytest.raises(InvalidInputError, match="no stop sequences"):
        chat_for(server, model_kwargs={"stop": ["\n"]}).invoke("Hi")
    assert chat_for(server, stop=[]).stop == []  # nothing to stop on: accepted
    assert server.requests == []


def test_n_and_a_per_call_switch_are_refused(server: ScriptedServer) -> None:
    with pytest.raises(InvalidInputError, match="no n"):
        chat_for(server).invoke("Hi", n=1)
    with pytest.raises(InvalidInputError, match="setting of the model"):
        chat_for(server).stream("Hi", use_responses_api=False)
    with pytest.raises(InvalidInputError, match="no role"):
        chat_for(server).invoke([("human", "Hi"), BaseMessage(type="function", content="x")])
    call = ToolCall(name="f", args={})
    with pytest.raises(InvalidInputError, match="has no id"):
        chat_for(server).invoke([("human", "Hi"), AIMessage(content="", tool_calls=[call])])
    assert server.requests == []


def test_the_endpoint_follows_base_url_and_the_switch() -> None:
    chat = ChatOpenAI(api_key="sk-test", use_responses_api=True)
    assert str(chat._endpoint()) == "https://api.openai.com/v1/responses"
    assert chat._endpoint() is chat._endpoint()  # made once
    chat.base_url = "http://127.0.0.1:9/openai/v1"
    assert str(chat._endpoint()) == "http://127.0.0.1:9/openai/v1/responses"
    chat.use_responses_api = False
    assert str(chat._endpoint()) == "http://127.0.0.1:9/openai/v1/chat/completions"


def test_stream_usage_per_call_is_not_sent_to_the_chat_api(server: ScriptedServer) -> None:
    server.script(
        Reply(
            body=[
                b'data: {"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]}\n\n',
                b"data: [DONE]\n\n",
            ]
        )
    )
    chat = ChatOpenAI(base_url=f"{server.url}/v1", api_key="sk-test")
    chat.invoke("Hi", stream_usage=False)
    body = server.requests[0].json()
    assert "stream_usage" not in body
    assert "stream_options" not in body
    assert_all_closed(chat, server)


# The translator alone.


def test_an_error_event_nested_under_error_maps_by_its_type() -> None:
    translator = ResponsesTranslator(secrets=("sk-secret-key",), request_id="req_1")
    event = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
            "message": "Your input exceeds the context window (key sk-secret-key).",
        },
        "sequence_number": 3,
    }
    with pytest.raises(BadRequestError, match="context window") as caught:
        translator.feed(event)
    assert "sk-secret-key" not in str(caught.value)
    assert caught.value.request_id == "req_1"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"code": "server_error", "message": "m"}, InternalServerError),
        ({"code": "rate_limit_exceeded", "message": "m"}, RateLimitError),
        ({"code": "invalid_prompt", "message": "m"}, BadRequestError),
        ({"code": "image_too_large", "message": "m"}, BadRequestError),
        ({"code": "vector_store_timeout", "message": "m"}, InternalServerError),
        ({"code": "something_new", "message": "m"}, APIError),
        (None, APIError),
    ],
)
def test_a_failed_response_maps_by_its_code(error: Any, expected: type[APIError]) -> None:
    translator = ResponsesTranslator()
    event = {"type": "response.failed", "response": {"status": "failed", "error": error}}
    with pytest.raises(expected) as caught:
        translator.feed(event)
    assert type(caught.value) is expected
    assert translator.finished


def test_a_content_filter_incompletion_is_made_visible() -> None:
    translator = ResponsesTranslator()
    translator.feed({"type": "response.created", "response": {"id": "resp_1", "model": "m"}})
    last = translator.feed(
        {
            "type": "response.incomplete",
            "response": {
                "id": "resp_1",
                "status": "incomplete",
                "incomplete_details": {"reason": "content_filter"},
            },
        }
    )
    assert last is not None
    assert last.response_metadata["finish_reason"] == "content_filter"
    assert "content filter" in last.response_metadata["warnings"][0]
    assert last.usage_metadata is None  # none reported
    assert translator.finished


def test_unknown_and_bookkeeping_events_make_no_chunk() -> None:
    translator = ResponsesTranslator()
    for kind in (
        "response.in_progress",
        "response.content_part.added",
        "response.output_text.done",
        "response.web_search_call.searching",
        "response.something_new",
    ):
        assert translator.feed({"type": kind}) is None
    assert translator.feed({"type": "response.output_item.added", "item": "odd"}) is None
    assert not translator.finished


def parse_in_reads(body: bytes, cuts: list[int]) -> list[AIMessageChunk]:
    """The chunks of ``body`` as the read loop makes them when it arrives in reads
    split at ``cuts`` (no server: see ``translated``)."""
    bounds = [0, *sorted(set(cuts)), len(body)]
    reads = [body[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]
    return translated(reads, SSEDecoder(MAX_EVENT_BYTES), ResponsesTranslator())


@settings(database=None, max_examples=50, deadline=None)
@given(data=st.data())
def test_any_split_into_reads_gives_the_same_chunks(data: st.DataObject) -> None:
    body = recorded("parallel_function_calls")
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=40))
    whole = parse_in_reads(body, [])
    assert parse_in_reads(body, cuts) == whole
    assert [call.args for call in total(whole).tool_calls] == [
        {"country": "France"},
        {"country": "Japan"},
    ]
