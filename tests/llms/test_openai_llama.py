"""``OpenAI`` and ``ChatOpenAI`` end to end, against a real llama.cpp server.

The server is OpenAI-compatible but has its own corners: it ignores
``stream_options.include_usage`` (so usage is checked on the scripted server, in
``test_openai.py``) and echoes the requested model name.
"""

from __future__ import annotations

import asyncio

import pytest
from reactivex import operators as ops

from rxllm import AIMessage, AIMessageChunk
from rxllm.llms import ChatOpenAI, OpenAI
from tests.conftest import wait_until

from .conftest import MODES, busy_connections, consume, pool_connections

PROMPT = "The three primary colors are"
DETERMINISTIC = {"seed": 7}


@pytest.fixture
def llm(llama_base_url: str) -> OpenAI:
    return OpenAI(base_url=llama_base_url, temperature=0, max_tokens=24, model_kwargs=DETERMINISTIC)


@pytest.fixture
def chat(llama_base_url: str) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=llama_base_url, temperature=0, max_tokens=24, model_kwargs=DETERMINISTIC
    )


def test_seed_example_shape(llama_base_url: str) -> None:
    llm = OpenAI(
        model="gpt-3.5-turbo-instruct", temperature=0, max_tokens=512, base_url=llama_base_url
    )
    with llm:
        assert llm.invoke("Say hi.", max_tokens=8)


@pytest.mark.parametrize("mode", MODES)
def test_completion_streams_tokens(llm: OpenAI, mode: str) -> None:
    outcome = consume(llm, PROMPT, mode)
    assert outcome.error is None
    assert len(outcome.items) > 3
    assert all(isinstance(item, str) for item in outcome.items)
    assert outcome.text == llm.invoke(PROMPT)
    assert outcome.busy == 0
    llm.close()


def test_completion_chunks_carry_finish_reason(llm: OpenAI) -> None:
    final = llm.observe(PROMPT).pipe(ops.to_list()).run()
    assert final[-1].generation_info["finish_reason"] == "length"
    llm.close()


async def test_completion_async_invoke_and_batch(llm: OpenAI) -> None:
    async with llm:
        one = await llm.ainvoke(PROMPT)
        many = await llm.abatch([PROMPT, "Water is made of"], config={"max_concurrency": 2})
        assert many[0] == one
        assert many[1]
        assert many[1] != one


def test_completion_batch_keeps_order(llm: OpenAI) -> None:
    with llm:
        prompts = [PROMPT, "Water is made of", "The sun is"]
        assert llm.batch(prompts) == [llm.invoke(p) for p in prompts]


@pytest.mark.parametrize("mode", MODES)
def test_stop_sequences_cut_the_completion(llm: OpenAI, mode: str) -> None:
    full = llm.invoke(PROMPT)
    word = full.split()[1]
    outcome = consume(llm, PROMPT, mode, stop=[word])
    assert outcome.error is None
    assert word not in outcome.text
    assert full.startswith(outcome.text)
    llm.close()


@pytest.mark.parametrize("mode", MODES)
def test_chat_streams_message_chunks(chat: ChatOpenAI, mode: str) -> None:
    outcome = consume(chat, [("system", "You are terse."), ("human", "Name a fruit.")], mode)
    assert outcome.error is None
    assert all(isinstance(item, AIMessageChunk) for item in outcome.items)
    assert len(outcome.items) > 2
    assert outcome.items[-1].response_metadata["finish_reason"] in ("stop", "length")
    assert outcome.busy == 0
    chat.close()


def test_chat_invoke_equals_sum_of_stream(chat: ChatOpenAI) -> None:
    with chat:
        message = chat.invoke("Name a fruit.")
        assert isinstance(message, AIMessage)
        assert message.content == "".join(c.content for c in chat.stream("Name a fruit."))
        assert [m.content for m in chat.batch(["Name a fruit."] * 2)] == [message.content] * 2


@pytest.mark.parametrize("mode", MODES)
def test_breaking_out_closes_the_connection(llama_base_url: str, mode: str) -> None:
    llm = OpenAI(base_url=llama_base_url, temperature=0, max_tokens=200)
    if mode == "stream":
        stream = llm.stream("Count from one to one hundred:")
        for count, _ in enumerate(stream, 1):
            if count == 3:
                break
        stream.close()
        # By the time close() returns the response is closed: no connection left.
        client = llm._sync_clients._client  # a sync consumer's calls take the blocking client
        assert client is not None
        assert all(c.is_closed() for c in pool_connections(client))
        llm.close()
        return

    async def run() -> None:
        async with llm:
            stream = llm.astream("Count from one to one hundred:")
            count = 0
            async for _ in stream:
                count += 1
                if count == 3:
                    break
            await stream.aclose()
            client = llm._client()
            assert all(c.is_closed() for c in pool_connections(client))
            assert busy_connections(llm) == 0

    asyncio.run(run())


def test_same_text_as_the_official_sdk(llama_base_url: str) -> None:
    import openai

    sdk = openai.OpenAI(base_url=llama_base_url, api_key="unused", max_retries=0)
    try:
        sdk_text = "".join(
            event.choices[0].text
            for event in sdk.completions.create(
                model="gpt-3.5-turbo-instruct", prompt=PROMPT, max_tokens=24, temperature=0,
                seed=7, stream=True,
            )
            if event.choices
        )  # fmt: skip
        sdk_chat = "".join(
            event.choices[0].delta.content or ""
            for event in sdk.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Name a fruit."}],
                max_tokens=24, temperature=0, seed=7, stream=True,
            )
            if event.choices
        )  # fmt: skip
    finally:
        sdk.close()
    with OpenAI(
        base_url=llama_base_url, temperature=0, max_tokens=24, model_kwargs=DETERMINISTIC
    ) as llm:
        assert llm.invoke(PROMPT) == sdk_text
    with ChatOpenAI(
        base_url=llama_base_url, temperature=0, max_tokens=24, model_kwargs=DETERMINISTIC
    ) as chat:
        assert chat.invoke("Name a fruit.").content == sdk_chat


def test_one_model_serves_sync_and_async_callers(llm: OpenAI) -> None:
    sync_text = llm.invoke(PROMPT)

    async def run() -> str:
        return await llm.ainvoke(PROMPT)

    # Two clients: the blocking one of sync calls, and asyncio.run's loop's (closed with it).
    async def run_and_close() -> str:
        try:
            return await run()
        finally:
            await llm.aclose()

    assert asyncio.run(run_and_close()) == sync_text
    assert llm.invoke(PROMPT) == sync_text  # a fresh client after aclose()
    llm.close()
    wait_until(lambda: not llm._clients.values())
