"""``from_langchain``: LangChain runnables as rxllm runnables, under rxllm's operators,
events and cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import aclosing

import pytest
from langchain_core import messages as lc
from langchain_core.language_models import FakeListLLM as LCFakeListLLM
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI as LCChatOpenAI

from rxllm import AIMessage, AIMessageChunk, InvalidInputError
from rxllm.langchain import from_langchain
from rxllm.operators import stop_on, words
from rxllm.schema import merge_message_chunks
from tests.conftest import wait_until
from tests.llms.recorded import recorded_path
from tests.servers.scripted import Reply, ScriptedServer

from .test_adapters import SLOW, slow_stream


def fake_chat(text: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([lc.AIMessage(content=text)]))


@pytest.fixture
def openai_at(server: ScriptedServer) -> Iterator[LCChatOpenAI]:
    model = LCChatOpenAI(base_url=f"{server.url}/v1", api_key="k", model="gpt-4o", max_retries=0)
    yield model
    model.root_client.close()


def test_a_chat_model_streams_rxllm_chunks_through_rxllm_operators() -> None:
    chat = from_langchain(fake_chat("hello big world\n\nignored"))
    pieces = chat.pipe(words(), stop_on(["\n\n"])).stream("hi")
    assert [piece.content for piece in pieces] == [
        "hello ",
        "big ",
        "world",
    ]
    message = from_langchain(fake_chat("hello there")).invoke([lc.HumanMessage("hi")])
    assert isinstance(message, AIMessage)
    assert message.content == "hello there"


def test_langchain_inputs_are_taken_and_the_model_is_not_a_call_argument() -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "say {word}")])
    chat = from_langchain(fake_chat("ok"))
    assert chat.invoke(prompt.invoke({"word": "x"})).content == "ok"
    with pytest.raises(InvalidInputError, match="runnable is a setting of the model"):
        chat.invoke("hi", runnable=None)


def test_a_recorded_openai_stream_arrives_whole(
    server: ScriptedServer, openai_at: LCChatOpenAI
) -> None:
    server.script(Reply(body=[recorded_path("openai", "chat_tool_call").read_bytes()]))
    chunks = list(from_langchain(openai_at).stream("weather?"))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    message = merge_message_chunks(chunks).to_message()
    assert [(c.name, c.args) for c in message.tool_calls] == [
        ("get_weather", {"city": "New York City"})
    ]
    assert message.usage_metadata is not None
    assert message.usage_metadata.input_tokens == 44


def test_a_chain_streams_its_output() -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "say {word}")])
    chain = from_langchain(prompt | fake_chat("hi there") | StrOutputParser())
    assert "".join(chain.stream({"word": "x"})) == "hi there"
    assert from_langchain(LCFakeListLLM(responses=["done"])).invoke("go") == "done"


def test_anything_but_a_runnable_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="not builtin_function_or_method"):
        from_langchain(print)  # type: ignore[arg-type]


def test_a_langchain_model_is_a_run_in_rxllms_events() -> None:
    chat = from_langchain(fake_chat("hello world"))
    pipeline = chat.pipe(words())
    events = list(pipeline.stream_events("hi"))
    root = events[0]
    assert root["event"] == "on_chain_start"
    starts = [e for e in events if e["event"] == "on_chat_model_start"]
    assert [e["name"] for e in starts] == ["GenericFakeChatModel"]
    assert starts[0]["parent_ids"] == [root["run_id"]]
    assert starts[0]["metadata"]["ls_model_type"] == "chat"
    streamed = [e["data"]["chunk"].content for e in events if e["event"] == "on_chat_model_stream"]
    assert "".join(streamed) == "hello world"


def test_leaving_rxllms_stream_closes_langchains_request(
    server: ScriptedServer, openai_at: LCChatOpenAI
) -> None:
    server.script(slow_stream())
    stream = from_langchain(openai_at).stream("count")
    received = [next(stream) for _ in range(3)]
    stream.close()
    assert [c.content for c in received] == ["w0 ", "w1 ", "w2 "]
    wait_until(lambda: server.aborted == 1)
    assert server.body_bytes < sum(map(len, SLOW))


async def test_leaving_rxllms_astream_closes_langchains_request(
    server: ScriptedServer, openai_at: LCChatOpenAI
) -> None:
    server.script(slow_stream())
    async with aclosing(from_langchain(openai_at).astream("count")) as stream:
        count = 0
        async for _ in stream:
            count += 1
            if count == 3:
                break
    for _ in range(200):
        if server.aborted == 1:
            break
        await asyncio.sleep(0.01)
    assert server.aborted == 1
