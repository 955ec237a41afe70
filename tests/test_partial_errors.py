"""A stream that fails after some chunks raises the same exception, with the partial text."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from rxllm import StreamInterruptedError
from rxllm.llms import FakeListChatModel, FakeStreamingListLLM


class Boom(Exception):
    pass


def failing_llm(error: Exception) -> FakeStreamingListLLM:
    return FakeStreamingListLLM(responses=["one two three four"], error_after=2, error=error)


def through_observe(llm: FakeStreamingListLLM) -> None:
    done = threading.Event()
    failure: list[Exception] = []

    def on_error(error: Exception) -> None:
        failure.append(error)
        done.set()

    llm.observe("hi").subscribe(on_error=on_error, on_completed=done.set)
    assert done.wait(5)
    raise failure[0]


def through_stream(llm: FakeStreamingListLLM) -> None:
    received = list(_consume_sync(llm))
    assert received  # never reached


def _consume_sync(llm: FakeStreamingListLLM) -> list[str]:
    out: list[str] = []
    for chunk in llm.stream("hi"):
        out.append(chunk)
    return out


def through_invoke(llm: FakeStreamingListLLM) -> None:
    llm.invoke("hi")


CONSUMERS: list[Callable[[FakeStreamingListLLM], Any]] = [
    through_observe,
    through_stream,
    through_invoke,
]


@pytest.mark.parametrize("consume", CONSUMERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("error", [Boom("boom"), StreamInterruptedError("connection lost")])
def test_sync_consumers_get_the_same_error_with_partial_text(
    consume: Callable[[FakeStreamingListLLM], Any], error: Exception
) -> None:
    with pytest.raises(type(error)) as caught:
        consume(failing_llm(error))
    assert caught.value is error
    assert caught.value.partial == "one two"  # type: ignore[attr-defined]


@pytest.mark.parametrize("error", [Boom("boom"), StreamInterruptedError("connection lost")])
async def test_astream_gets_the_same_error_with_partial_text(error: Exception) -> None:
    received: list[str] = []

    async def consume() -> None:
        async for chunk in failing_llm(error).astream("hi"):
            received.append(chunk)

    with pytest.raises(type(error)) as caught:
        await consume()
    assert received == ["one", " two"]
    assert caught.value.partial == "one two"  # type: ignore[attr-defined]


async def test_ainvoke_error_carries_partial_text() -> None:
    with pytest.raises(Boom) as caught:
        await failing_llm(Boom()).ainvoke("hi")
    assert caught.value.partial == "one two"  # type: ignore[attr-defined]


def test_chat_error_carries_partial_content() -> None:
    chat = FakeListChatModel(responses=["Hello big world"], error_after=1, error=Boom())
    with pytest.raises(Boom) as caught:
        chat.invoke("hi")
    assert caught.value.partial == "Hello"  # type: ignore[attr-defined]


def test_error_before_the_first_chunk_has_no_partial() -> None:
    error = StreamInterruptedError("refused")
    with pytest.raises(StreamInterruptedError) as caught:
        FakeStreamingListLLM(responses=["a b"], error_after=0, error=error).invoke("hi")
    assert caught.value.partial is None


def test_an_existing_partial_is_kept() -> None:
    error = StreamInterruptedError("lost", partial="from the provider")
    with pytest.raises(StreamInterruptedError) as caught:
        failing_llm(error).invoke("hi")
    assert caught.value.partial == "from the provider"


def test_the_failed_call_is_not_left_running() -> None:
    llm = failing_llm(Boom())
    with pytest.raises(Boom):
        llm.invoke("hi")
    assert llm.calls.failed == 1
    assert llm.calls.in_flight == 0
