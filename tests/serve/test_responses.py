"""``openai-responses``: read back by the official SDK's Responses stream accumulator
(every event validated against the SDK's own types first) and by rxllm's own reader."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from hypothesis import given
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from rxllm import AIMessageChunk, GenerationChunk, InternalServerError, RateLimitError
from rxllm.llms import ChatOpenAI
from rxllm.llms._responses import ResponsesTranslator
from rxllm.schema import ToolCallChunk, Usage
from rxllm.serve import to_sse
from rxllm.serve._errors import ClientError
from tests.servers.scripted import Reply, ScriptedServer

from .conftest import Expected, collect, counts, encode, events_of, replies

_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def sdk_read(body: bytes) -> ResponseStreamState[Any]:
    """The official SDK's state after every event of ``body``, each one checked first:
    it validates as the SDK's type, its ``event:`` line is its type, its number the next."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for number, sse in enumerate(events_of(body)):
        event = _EVENT.validate_json(sse.data)
        assert sse.event == event.type
        assert event.sequence_number == number
        state.handle_event(event)
    return state


def rxllm_read(body: bytes) -> AIMessageChunk:
    """What ``ChatOpenAI(use_responses_api=True)``'s translator makes of ``body``."""
    translator = ResponsesTranslator()
    total = AIMessageChunk(content="")
    for sse in events_of(body):
        chunk = translator.feed(json.loads(sse.data))
        if chunk is not None:
            total = total + chunk
    assert translator.finished
    return total


def calls_of(chunk: AIMessageChunk) -> list[tuple[str | None, str | None, str | None]]:
    return [(c.id, c.name, c.args) for c in chunk.tool_call_chunks]


@given(replies())
def test_any_stream_is_what_the_sdk_and_rxllm_assemble(reply: Expected) -> None:
    body = encode(reply.chunks, "openai-responses", model="m")
    response = sdk_read(body)._completed_response
    assert response is not None
    assert (response.status, response.model) == ("completed", "m")
    assert response.output_text == reply.text
    summaries = [
        "".join(part.text for part in item.summary)
        for item in response.output
        if item.type == "reasoning"
    ]
    assert "".join(summaries) == reply.reasoning
    calls = [item for item in response.output if item.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == reply.calls
    if reply.usage is None:
        assert response.usage is None
    else:
        assert response.usage is not None
        assert response.usage.input_tokens == reply.usage.input_tokens
        assert response.usage.output_tokens == reply.usage.output_tokens
        assert response.usage.total_tokens == reply.usage.total_tokens

    # The round trip: rxllm's own reader gets the chunks' sum back.
    message = rxllm_read(body)
    assert message.content == reply.text
    assert message.reasoning == "\n\n".join(summaries)  # its documented part separator
    assert calls_of(message) == reply.calls
    assert counts(message.usage_metadata) == counts(reply.usage)
    finish = "tool_calls" if reply.calls else "stop"
    assert message.response_metadata["finish_reason"] == finish


async def test_to_sse_writes_the_item_kinds_as_openai_does() -> None:
    async def chunks() -> AsyncIterator[AIMessageChunk]:
        yield AIMessageChunk(reasoning="Think")
        yield AIMessageChunk(content="Hé")
        yield AIMessageChunk(content="llo\n")
        call = ToolCallChunk(name="get", id="t1", index=3, args='{"a"')
        yield AIMessageChunk(tool_call_chunks=[call])
        yield AIMessageChunk(tool_call_chunks=[ToolCallChunk(index=3, args=": 1}")])
        usage = Usage(input_tokens=3, output_tokens=4, total_tokens=7)
        yield AIMessageChunk(usage_metadata=usage, response_metadata={"stop_reason": "tool_use"})

    body = await collect(to_sse(chunks(), format="openai-responses", model="m"))
    kinds = [event.event for event in events_of(body)]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    response = sdk_read(body)._completed_response
    assert response is not None
    assert response.output_text == "Héllo\n"
    assert [(o.type, getattr(o, "status", None)) for o in response.output[1:]] == [
        ("message", "completed"),
        ("function_call", "completed"),
    ]
    message = rxllm_read(body).to_message()
    assert message.tool_calls[0].args == {"a": 1}
    assert message.usage_metadata is not None
    assert message.usage_metadata.total_tokens == 7


def test_a_refusal_is_a_refusal_part() -> None:
    chunks = [
        AIMessageChunk(response_metadata={"refusal": "I can't"}),
        AIMessageChunk(response_metadata={"refusal": " help."}),
    ]
    body = encode(chunks, "openai-responses")
    kinds = [event.event for event in events_of(body)]
    assert kinds.count("response.refusal.delta") == 2
    assert "response.refusal.done" in kinds
    response = sdk_read(body)._completed_response
    assert response is not None
    (item,) = response.output
    assert item.type == "message"
    assert [(p.type, getattr(p, "refusal", None)) for p in item.content] == [
        ("refusal", "I can't help.")
    ]
    assert rxllm_read(body).response_metadata["refusal"] == "I can't help."


@pytest.mark.parametrize(
    ("stop", "reason", "finish"),
    [
        ("max_tokens", "max_output_tokens", "length"),
        ("refusal", "content_filter", "content_filter"),
    ],
)
def test_a_cut_reply_is_incomplete(stop: str, reason: str, finish: str) -> None:
    chunks = [
        AIMessageChunk(content="cut"),
        AIMessageChunk(response_metadata={"stop_reason": stop}),
    ]
    body = encode(chunks, "openai-responses")
    last = events_of(body)[-1]
    assert last.event == "response.incomplete"
    sdk_read(body)  # the SDK accepts it
    response = json.loads(last.data)["response"]
    assert (response["status"], response["incomplete_details"]) == (
        "incomplete",
        {"reason": reason},
    )
    assert response["output"][0]["content"][0]["text"] == "cut"
    assert rxllm_read(body).response_metadata["finish_reason"] == finish


@pytest.mark.parametrize("items", [[], [""], [GenerationChunk(text="")]])
def test_an_empty_stream_is_an_empty_reply(items: list[Any]) -> None:
    response = sdk_read(encode(items, "openai-responses"))._completed_response
    assert response is not None
    assert (response.status, response.output_text, response.output) == ("completed", "", [])


def test_strings_and_text_chunks_are_text() -> None:
    items = ["one ", GenerationChunk(text="two", reasoning="r"), "three"]
    body = encode(items, "openai-responses")
    response = sdk_read(body)._completed_response
    assert response is not None
    assert response.output_text == "one twothree"
    assert rxllm_read(body).reasoning == "r"


@pytest.mark.parametrize(
    ("kind", "code", "raised"),
    [
        ("rate_limit_error", "rate_limit_exceeded", RateLimitError),
        ("api_error", "server_error", InternalServerError),
    ],
)
def test_an_error_after_the_first_byte_is_a_failed_response(
    kind: str, code: str, raised: type[Exception]
) -> None:
    error = ClientError(429, kind, "slow down")
    body = encode([AIMessageChunk(content="The capital")], "openai-responses", error=error)
    last = events_of(body)[-1]
    assert last.event == "response.failed"
    state = sdk_read(body)
    assert state._completed_response is None
    failed = json.loads(last.data)["response"]
    assert failed["error"] == {"code": code, "message": "slow down"}
    assert failed["output"][0]["content"][0]["text"] == "The capital"

    # The SDK over HTTP yields the failure as the last event, and get_final_response raises.
    with (
        ScriptedServer() as server,
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-test", max_retries=0) as client,
    ):
        server.script(Reply(body=[body]), Reply(body=[body]))
        with client.responses.stream(model="m", input="x") as stream:
            seen = list(stream)
            with pytest.raises(RuntimeError, match="response.completed"):
                stream.get_final_response()
        assert seen[-1].type == "response.failed"

        # rxllm's own client raises the error's type, the text so far kept.
        chat = ChatOpenAI(
            base_url=f"{server.url}/v1", api_key="sk-test", use_responses_api=True, max_retries=0
        )
        with pytest.raises(raised) as caught:
            chat.invoke("x")
    assert "slow down" in str(caught.value)
    assert caught.value.partial == "The capital"  # type: ignore[attr-defined]
