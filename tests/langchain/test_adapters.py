"""``to_langchain``: conversion both ways, tool formats, construction, events, and
cancellation seen from the server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import aclosing

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core import messages as lc
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel, ValidationError

from rxllm import (
    AIMessage,
    AIMessageChunk,
    InternalServerError,
    InvalidInputError,
    ToolMessage,
    Usage,
)
from rxllm.langchain import (
    ChatRxLLM,
    RxLLM,
    chunk_from_langchain,
    chunk_to_langchain,
    message_from_langchain,
    message_to_langchain,
    messages_from_langchain,
    to_langchain,
)
from rxllm.llms import ChatOpenAI, FakeListChatModel, FakeStreamingListLLM
from rxllm.schema import ToolCall, ToolCallChunk
from tests.conftest import wait_until
from tests.llms.recorded import recorded_path
from tests.servers.scripted import Pause, Reply, ScriptedServer

from .scripted_openai import TEXT, reply_to, sse


def recorded(name: str) -> Reply:
    return Reply(body=[recorded_path("openai", name).read_bytes()])


@pytest.fixture
def chat_at(server: ScriptedServer) -> Iterator[ChatRxLLM]:
    model = ChatOpenAI(base_url=f"{server.url}/v1", api_key="k", max_retries=0)
    with model:
        yield ChatRxLLM(rxllm_model=model)


# -- conversion --------------------------------------------------------------------


def test_a_message_converts_both_ways_with_nothing_lost() -> None:
    message = AIMessage(
        content="It is sunny.",
        id="m1",
        reasoning="The user asked about weather.",
        tool_calls=[ToolCall(name="get_weather", args={"city": "Paris"}, id="c1")],
        usage_metadata=Usage(input_tokens=10, output_tokens=5, total_tokens=15),
        response_metadata={"model_name": "gpt-4o", "finish_reason": "tool_calls"},
    )
    converted = message_to_langchain(message)
    assert isinstance(converted, lc.AIMessage)
    assert converted.additional_kwargs == {"reasoning_content": "The user asked about weather."}
    assert converted.tool_calls[0]["args"] == {"city": "Paris"}
    assert converted.usage_metadata == {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    # LangChain reads the reasoning as a standard reasoning block.
    assert {"type": "reasoning", "reasoning": "The user asked about weather."} in [
        {k: v for k, v in block.items() if k in ("type", "reasoning")}
        for block in converted.content_blocks
    ]
    assert message_from_langchain(converted) == message


def test_a_chunk_converts_both_ways_with_nothing_lost() -> None:
    chunk = AIMessageChunk(
        content="",
        id="m1",
        reasoning="hmm",
        tool_call_chunks=[ToolCallChunk(name="f", args='{"a"', id="c1", index=0)],
        usage_metadata=Usage(input_tokens=3, output_tokens=1, total_tokens=4),
        response_metadata={"finish_reason": "stop"},
    )
    assert chunk_from_langchain(chunk_to_langchain(chunk)) == chunk


def test_langchain_content_blocks_are_read_and_reasoning_blocks_kept() -> None:
    message = lc.AIMessage(
        content=[
            {"type": "thinking", "thinking": "first "},
            {"type": "reasoning", "reasoning": "then"},
            {"type": "text", "text": "answer"},
            {"type": "tool_use", "id": "c1", "name": "f", "input": {}},
        ],
        tool_calls=[{"name": "f", "args": {}, "id": "c1"}],
    )
    converted = message_from_langchain(message)
    assert isinstance(converted, AIMessage)
    assert (converted.content, converted.reasoning) == ("answer", "first then")
    assert [c.name for c in converted.tool_calls] == ["f"]


def test_a_conversation_converts_role_by_role() -> None:
    messages = messages_from_langchain(
        [
            lc.SystemMessage("be brief"),
            lc.HumanMessage([{"type": "text", "text": "hi"}]),
            lc.ToolMessage("42", tool_call_id="c1"),
            lc.ChatMessage(role="assistant", content="ok"),
        ]
    )
    assert [m.type for m in messages] == ["system", "human", "tool", "ai"]
    assert messages[1].content == "hi"
    assert isinstance(messages[2], ToolMessage)
    assert messages[2].tool_call_id == "c1"


def test_content_rxllm_cannot_carry_is_refused_not_dropped() -> None:
    image = {"type": "image", "url": "https://example.com/a.png"}
    with pytest.raises(InvalidInputError, match="'image' content block"):
        message_from_langchain(lc.HumanMessage([{"type": "text", "text": "see"}, image]))
    with pytest.raises(InvalidInputError, match="ChatMessage"):
        message_from_langchain(lc.ChatMessage(role="critic", content="meh"))


# -- construction ------------------------------------------------------------------


def test_to_langchain_picks_the_adapter_and_refuses_anything_else() -> None:
    assert isinstance(to_langchain(FakeListChatModel(responses=["a"])), ChatRxLLM)
    assert isinstance(to_langchain(FakeStreamingListLLM(responses=["a"])), RxLLM)
    with pytest.raises(InvalidInputError, match="not str"):
        to_langchain("gpt-4o")  # type: ignore[arg-type]


def test_parameters_build_the_provider_model() -> None:
    chat = ChatRxLLM(provider="openai", model="m", temperature=0, max_tokens=5, api_key="k")
    assert isinstance(chat.rxllm_model, ChatOpenAI)
    assert (chat.rxllm_model.model, chat.rxllm_model.max_tokens) == ("m", 5)
    assert chat._get_ls_params(stop=["x"], model="other") == {
        "ls_provider": "openai",
        "ls_model_type": "chat",
        "ls_model_name": "other",
        "ls_temperature": 0.0,
        "ls_max_tokens": 5,
        "ls_stop": ["x"],
    }
    with pytest.raises(ValidationError, match="unknown provider 'nope'"):
        ChatRxLLM(provider="nope")
    with pytest.raises(ValidationError, match="not both"):
        ChatRxLLM(rxllm_model=FakeListChatModel(responses=["a"]), temperature=0)
    with pytest.raises(ValidationError, match="must be an rxllm BaseChatModel"):
        ChatRxLLM(rxllm_model=FakeStreamingListLLM(responses=["a"]))
    with pytest.raises(ValidationError, match="temprature"):
        ChatRxLLM(temprature=0)  # type: ignore[call-arg]


def test_import_without_langchain_core_says_what_to_install() -> None:
    code = "import sys; sys.modules['langchain_core'] = None; import rxllm.langchain"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert "rxllm.langchain needs `pip install 'rxllm[langchain]'`" in result.stderr


# -- streams -----------------------------------------------------------------------


def test_a_recorded_tool_call_stream_follows_langchains_rules(
    server: ScriptedServer, chat_at: ChatRxLLM
) -> None:
    server.script(recorded("chat_tool_call"))
    chunks = list(chat_at.stream("weather in NYC?"))
    assert sum(1 for c in chunks if c.usage_metadata and c.usage_metadata["input_tokens"]) == 1
    assert sum(1 for c in chunks if "model_name" in c.response_metadata) == 1
    assert chunks[-1].chunk_position == "last"
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert isinstance(total, lc.AIMessageChunk)
    assert [(c["name"], c["args"]) for c in total.tool_calls] == [
        ("get_weather", {"city": "New York City"})
    ]
    assert total.usage_metadata == {"input_tokens": 44, "output_tokens": 16, "total_tokens": 60}
    assert total.response_metadata["finish_reason"] == "tool_calls"
    assert total.response_metadata["model_name"] == "gpt-4o-2024-08-06"


def test_streamed_reasoning_lands_where_langchain_reads_it(
    server: ScriptedServer, chat_at: ChatRxLLM
) -> None:
    server.script(recorded("chat_reasoning_content"), recorded("chat_reasoning_content"))
    streamed = list(chat_at.stream("think"))
    total = streamed[0]
    for chunk in streamed[1:]:
        total += chunk
    invoked = chat_at.invoke("think")
    reasoning = total.additional_kwargs["reasoning_content"]
    assert reasoning
    assert invoked.additional_kwargs["reasoning_content"] == reasoning
    assert any(b["type"] == "reasoning" for b in invoked.content_blocks)
    assert invoked.content == total.content


def test_bind_tools_sends_openai_tools_and_normalises_tool_choice(
    server: ScriptedServer, chat_at: ChatRxLLM
) -> None:
    class Weather(BaseModel):
        """Get the weather."""

        city: str

    server.script(recorded("chat_tool_call"))
    chat_at.bind_tools([Weather], tool_choice="any").invoke("weather?")
    body = server.requests[0].json()
    assert body["tools"][0]["function"]["name"] == "Weather"
    assert body["tool_choice"] == "required"
    with pytest.raises(InvalidInputError, match="not one of the tools"):
        chat_at.bind_tools([Weather], tool_choice="Other")
    with pytest.raises(InvalidInputError, match="unknown method"):
        chat_at.with_structured_output(Weather, method="xml")  # type: ignore[arg-type]


def test_tools_are_sent_in_anthropics_format_to_anthropic(server: ScriptedServer) -> None:
    chat = ChatRxLLM(provider="anthropic", model="claude", base_url=server.url, api_key="k")
    server.script(Reply(body=[recorded_path("anthropic", "tool_use").read_bytes()]))

    def get_weather(city: str) -> str:
        """Get the weather in a city."""
        return "sunny"

    message = chat.bind_tools([get_weather], tool_choice="get_weather").invoke("weather?")
    body = server.requests[0].json()
    assert body["tools"][0]["name"] == "get_weather"
    assert body["tools"][0]["input_schema"]["properties"]["city"]["type"] == "string"
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert message.tool_calls
    chat.rxllm_model.close()


def test_an_llm_streams_and_batches_as_a_langchain_llm() -> None:
    fake = FakeStreamingListLLM(responses=["a b", "c d"])
    llm = to_langchain(fake)
    assert isinstance(llm, RxLLM)
    assert list(llm.stream("x")) == ["a", " b"]  # one chunk per token, as the fake streams
    assert sorted(llm.batch(["x", "y"])) == ["a b", "c d"]


async def test_an_rxllm_model_nests_in_langchains_events() -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "say {word}")])
    chain = prompt | to_langchain(FakeListChatModel(responses=["hello there"])) | StrOutputParser()
    events = [e async for e in chain.astream_events({"word": "hi"}, version="v2")]
    root = events[0]
    assert (root["event"], root["name"]) == ("on_chain_start", "RunnableSequence")
    streams = [e for e in events if e["event"] == "on_chat_model_stream"]
    assert "".join(e["data"]["chunk"].content for e in streams) == "hello there"
    assert all(e["parent_ids"] == [root["run_id"]] for e in streams)
    assert streams[0]["metadata"]["ls_model_type"] == "chat"
    assert events[-1]["data"]["output"] == "hello there"


# -- cancellation, seen from the server ---------------------------------------------


SLOW = sse(
    [
        {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": f"w{i} "}}]}
        for i in range(20)
    ]
)[:-1]


def slow_stream() -> Reply:
    """Twenty content events a tenth of a second apart, then a hang: only the client
    leaving ends it."""
    body: list[bytes | Pause] = []
    for piece in SLOW:
        body += [piece, Pause(0.1)]
    return Reply(body=body, end="hang")


def test_leaving_langchains_stream_closes_the_request(
    server: ScriptedServer, chat_at: ChatRxLLM
) -> None:
    server.script(slow_stream())
    stream = chat_at.stream("count")
    received = [next(stream) for _ in range(3)]
    stream.close()
    assert [c.content for c in received] == ["w0 ", "w1 ", "w2 "]
    wait_until(lambda: server.aborted == 1)
    assert server.body_bytes < sum(map(len, SLOW))  # it stopped writing part way


async def test_leaving_langchains_astream_closes_the_request(
    server: ScriptedServer, chat_at: ChatRxLLM
) -> None:
    server.script(slow_stream())
    async with aclosing(chat_at.astream("count")) as stream:
        count = 0
        async for _ in stream:
            count += 1
            if count == 3:
                break
    assert count == 3
    for _ in range(200):
        if server.aborted == 1:
            break
        await asyncio.sleep(0.01)
    assert server.aborted == 1
    await chat_at.rxllm_model.aclose()


# -- LangChain's wrappers ------------------------------------------------------------


def test_with_fallbacks_moves_on_from_an_rxllm_error(
    server: ScriptedServer, chat_at: ChatRxLLM
) -> None:
    server.script(Reply(status=500, body=[b'{"error": {"message": "down"}}']))
    backup = to_langchain(FakeListChatModel(responses=["from the backup"]))
    assert chat_at.with_fallbacks([backup]).invoke("hi").content == "from the backup"
    assert len(server.requests) == 1


def test_with_retry_retries_an_rxllm_error(server: ScriptedServer, chat_at: ChatRxLLM) -> None:
    server.script(
        Reply(status=500, body=[b'{"error": {"message": "down"}}']), recorded("chat_text_usage")
    )
    retried = chat_at.with_retry(
        retry_if_exception_type=(InternalServerError,), wait_exponential_jitter=False
    )
    assert retried.invoke("hi").content.startswith("I'm unable")
    assert len(server.requests) == 2


def test_all_is_honest() -> None:
    from tests.test_exported_members import test_all_is_honest as check

    check("rxllm.langchain")


def test_the_core_does_not_import_langchain() -> None:
    code = (
        "import sys, rxllm, rxllm.llms, rxllm.operators, rxllm.events, rxllm.testing; "
        "print(sorted(m for m in sys.modules if m.startswith(('langchain', 'rxllm.langchain'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


texts = st.text(max_size=20)
chunks = st.builds(
    AIMessageChunk,
    content=texts,
    id=st.none() | st.text(min_size=1, max_size=8),
    reasoning=texts,
    tool_call_chunks=st.lists(
        st.builds(
            ToolCallChunk,
            name=st.none() | texts,
            args=st.none() | texts,
            id=st.none() | texts,
            index=st.none() | st.integers(0, 3),
        ),
        max_size=2,
    ),
    usage_metadata=st.none()
    | st.builds(Usage, input_tokens=st.integers(0, 99), output_tokens=st.integers(0, 99)),
    response_metadata=st.dictionaries(st.sampled_from(["finish_reason", "model_name"]), texts),
)


@given(chunks)
def test_any_chunk_converts_both_ways_unchanged(chunk: AIMessageChunk) -> None:
    assert chunk_from_langchain(chunk_to_langchain(chunk)) == chunk


def test_structured_output_streams_partial_objects(server: ScriptedServer) -> None:
    server.respond = reply_to
    schema = {
        "title": "joke",
        "description": "A joke.",
        "type": "object",
        "properties": {"setup": {"type": "string"}, "punchline": {"type": "string"}},
        "required": ["setup", "punchline"],
    }
    with ChatOpenAI(base_url=f"{server.url}/v1", api_key="k") as model:
        parts = list(ChatRxLLM(rxllm_model=model).with_structured_output(schema).stream("joke"))
    assert len(parts) > 2  # partial objects as the arguments arrive
    assert parts[-1] == {"setup": TEXT, "punchline": TEXT}
    assert all(set(part) <= {"setup", "punchline"} for part in parts)
