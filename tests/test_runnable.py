"""Runnable composition: pipe, Runnable steps, lambdas, twins."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as ops

from rxllm import (
    AIMessage,
    AIMessageChunk,
    GenerationChunk,
    InvalidInputError,
    Pipeline,
    Runnable,
    RunnableLambda,
)
from rxllm.llms import FakeListChatModel, FakeStreamingListLLM
from rxllm.runnable import aggregate
from rxllm.schema import merge_message_chunks


def test_pipe_applies_reactivex_operators_to_the_chunks() -> None:
    llm = FakeStreamingListLLM(responses=["one two three"])
    piped = llm.pipe(ops.map(lambda chunk: chunk.text.strip()), ops.filter(lambda t: t != "two"))
    assert list(piped.stream("hi")) == ["one", "three"]
    assert piped.invoke("hi") == "onethree"


async def test_pipe_works_with_every_bridge() -> None:
    piped = FakeStreamingListLLM(responses=["a b"]).pipe(ops.map(lambda c: c.text.upper()))
    assert [c async for c in piped.astream("x")] == ["A", " B"]
    assert await piped.ainvoke("x") == "A B"
    assert piped.batch(["x", "y"]) == ["A B", "A B"]
    assert await piped.abatch(["x"]) == ["A B"]


def test_text_chunks_reach_the_consumer_as_text() -> None:
    piped = FakeStreamingListLLM(responses=["a b c"]).pipe(ops.take(2))
    assert list(piped.stream("x")) == ["a", " b"]
    assert piped.invoke("x") == "a b"


def test_chat_pipeline_ends_as_an_ai_message() -> None:
    piped = FakeListChatModel(responses=["Hello big world"]).pipe(ops.skip(1))
    result = piped.invoke("hi")
    assert isinstance(result, AIMessage)
    assert result.content == " big world"


def test_a_runnable_step_receives_the_previous_final_output() -> None:
    prompt = RunnableLambda(lambda d: f"Say {d['topic']}")
    llm = FakeStreamingListLLM(responses=["Hi there"])
    chain = prompt.pipe(llm, ops.map(lambda c: c.text.upper()))
    assert list(chain.stream({"topic": "x"})) == ["HI", " THERE"]
    assert llm.calls.inputs == ["Say x"]


def test_or_composes_like_pipe() -> None:
    chain = RunnableLambda(str.strip) | FakeStreamingListLLM(responses=["ok"])
    assert isinstance(chain, Pipeline)
    assert chain.invoke("  padded  ") == "ok"


def test_pipelines_flatten_and_nest() -> None:
    llm = FakeStreamingListLLM(responses=["a b"])
    flat = llm.pipe(ops.take(5)).pipe(ops.map(lambda c: c.text))
    assert isinstance(flat, Pipeline)
    assert flat.first is llm
    assert len(flat.steps) == 2
    nested = RunnableLambda(lambda x: x).pipe(flat)
    assert nested.invoke("q") == "a b"


def test_a_step_that_is_neither_operator_nor_runnable_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="operator or a Runnable"):
        FakeStreamingListLLM(responses=["a"]).pipe(42)  # type: ignore[arg-type]


def test_lambda_kinds() -> None:
    def gen(x: str) -> Iterator[str]:
        yield from x

    async def agen(x: str) -> AsyncIterator[str]:
        for ch in x:
            yield ch

    async def coro(x: str) -> str:
        await asyncio.sleep(0)
        return x * 2

    assert list(RunnableLambda(gen).stream("abc")) == ["a", "b", "c"]
    assert list(RunnableLambda(agen).stream("abc")) == ["a", "b", "c"]
    assert list(RunnableLambda(coro).stream("ab")) == ["abab"]
    assert RunnableLambda(gen).invoke("abc") == "abc"
    assert RunnableLambda(len).invoke("abcd") == 4


def test_lambda_errors_keep_their_type() -> None:
    def fail(_: object) -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        RunnableLambda(fail).invoke(1)


def test_lambda_needs_a_callable() -> None:
    with pytest.raises(InvalidInputError):
        RunnableLambda("not callable")  # type: ignore[arg-type]


def test_names() -> None:
    def make_prompt(x: str) -> str:
        return x

    assert RunnableLambda(make_prompt).get_name() == "make_prompt"
    assert RunnableLambda(make_prompt, name="prompt").get_name() == "prompt"
    assert FakeStreamingListLLM(responses=["a"]).get_name() == "FakeStreamingListLLM"
    assert FakeStreamingListLLM(responses=["a"], name="mine").get_name() == "mine"
    assert Pipeline(RunnableLambda(make_prompt)).get_name() == "RunnableSequence"


@pytest.mark.parametrize(
    ("sync", "async_"),
    [
        ("invoke", "ainvoke"),
        ("stream", "astream"),
        ("batch", "abatch"),
        ("batch_as_completed", "abatch_as_completed"),
    ],
)
def test_twins_have_the_same_signature(sync: str, async_: str) -> None:
    assert (
        inspect.signature(getattr(Runnable, sync)).parameters
        == inspect.signature(getattr(Runnable, async_)).parameters
    )


def test_invalid_config_is_refused_before_any_call() -> None:
    llm = FakeStreamingListLLM(responses=["a"])
    with pytest.raises(InvalidInputError, match="max_concurency"):
        llm.invoke("x", {"max_concurency": 2})
    with pytest.raises(InvalidInputError, match="greater than 0"):
        llm.batch(["x"], {"max_concurrency": 0})
    assert llm.calls.started == 0


def test_aggregate_rules() -> None:
    assert aggregate([]) is None
    assert aggregate(["a", "b"]) == "ab"
    assert aggregate([[1], [2, 3]]) == [1, 2, 3]
    assert aggregate([{"a": 1}, {"a": 2}]) == {"a": 2}
    assert aggregate(["a", GenerationChunk(text="b"), "c"]) == "c"  # mixed: the last item
    assert aggregate([GenerationChunk(text="a"), GenerationChunk(text="b")]) == "ab"
    assert aggregate([AIMessageChunk(content="a"), AIMessageChunk(content="b")]) == AIMessage(
        content="ab"
    )


def _aggregate_by_the_rules(items: list[Any]) -> Any:
    """``aggregate`` as its docstring states it, on the whole list at once."""
    if not items:
        return None
    kinds = {type(item) for item in items}
    if kinds == {str}:
        return "".join(items)
    if kinds == {GenerationChunk}:
        return "".join(item.text for item in items)
    if kinds == {AIMessageChunk}:
        return merge_message_chunks(items).to_message()
    if kinds == {list}:
        return [element for item in items for element in item]
    return items[-1]


_ITEMS = st.one_of(
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.builds(GenerationChunk, text=st.text(max_size=3)),
    st.builds(AIMessageChunk, content=st.text(max_size=3)),
    st.dictionaries(st.text(max_size=1), st.integers(), max_size=1),
)


@given(st.lists(_ITEMS, max_size=6) | st.lists(st.text(max_size=3), max_size=6))
def test_aggregate_sums_as_it_goes_with_the_same_result(items: list[Any]) -> None:
    # ``aggregate`` keeps a running total (so events need not keep every chunk).
    assert aggregate(items) == _aggregate_by_the_rules(items)


def test_pipeline_repr_names_its_steps() -> None:
    piped = RunnableLambda(str.strip, name="strip").pipe(ops.map(str.upper), ops.take(1))
    assert repr(piped) == "Pipeline(RunnableLambda(strip), map, take)"
