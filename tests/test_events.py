"""Events: drop-in for LangChain's astream_events, proven against LangChain itself."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel as LCFakeChat
from langchain_core.language_models.llms import LLM as LCLLM
from langchain_core.outputs import GenerationChunk as LCGenerationChunk
from langchain_core.runnables import RunnableGenerator as LCGenerator
from langchain_core.runnables import RunnableLambda as LCLambda
from reactivex import Observable
from reactivex import operators as ops

from rxllm import GenerationChunk, InvalidInputError, RunnableLambda
from rxllm.events import (
    EventFilter,
    StreamEvent,
    dispatch_custom_event,
    observe_events,
    tap_events,
)
from rxllm.llms import FakeListChatModel, FakeListLLM, FakeStreamingListLLM

TOKENS = ["Hi", " there", ",", " friend"]


class MyLLM(LCLLM):
    """LangChain's side: a provider that streams the same tokens through ``_stream``."""

    @property
    def _llm_type(self) -> str:
        return "my"

    def _call(self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any) -> str:
        return "".join(TOKENS)

    def _stream(
        self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[LCGenerationChunk]:
        for token in TOKENS:
            chunk = LCGenerationChunk(text=token)
            if run_manager:
                run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk


def rx_llm() -> FakeStreamingListLLM:
    return FakeStreamingListLLM(responses=["".join(TOKENS)], name="MyLLM")


def prompt(d: dict[str, str]) -> str:
    return f"Say {d['topic']}"


def parse(source: Observable[Any]) -> Observable[Any]:
    return source.pipe(ops.map(lambda chunk: chunk.text.upper()))


def lc_parse(chunks: Iterator[str]) -> Iterator[str]:
    for chunk in chunks:
        yield chunk.upper()


async def lc_aparse(chunks: AsyncIterator[str]) -> AsyncIterator[str]:
    async for chunk in chunks:
        yield chunk.upper()


def rx_chain() -> Any:
    return RunnableLambda(prompt).pipe(rx_llm(), parse)


def lc_chain() -> Any:
    return LCLambda(prompt) | MyLLM() | LCGenerator(lc_parse, lc_aparse, name="parse")


def shape(events: list[Any]) -> list[tuple[Any, ...]]:
    """What must match: event, name, tags, data keys, and parents as run positions."""
    order: dict[str, int] = {}
    for event in events:
        order.setdefault(event["run_id"], len(order))
    return [
        (
            e["event"],
            e["name"],
            e["tags"],
            sorted(e["data"]),
            [order.get(p, "?") for p in e.get("parent_ids", [])],
        )
        for e in events
    ]


async def lc_events(runnable: Any, input: Any, version: str, config: Any = None) -> list[Any]:
    return [e async for e in runnable.astream_events(input, config, version=version)]


CASES = [
    ("llm", lambda: rx_llm(), lambda: MyLLM(), "Say x"),
    (
        "chat",
        lambda: FakeListChatModel(responses=["Hello"], chunking="char", name="FakeListChatModel"),
        lambda: LCFakeChat(responses=["Hello"]),
        "hi",
    ),
    ("chain", rx_chain, lc_chain, {"topic": "x"}),
]
CONFIGS = [None, {"tags": ["t1"], "metadata": {"m": 1}, "run_name": "my_run"}]


@pytest.mark.filterwarnings("ignore:astream_events version='v1' is deprecated")
@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("config", CONFIGS, ids=["no-config", "config"])
@pytest.mark.parametrize(("case", "make_rx", "make_lc", "input"), CASES, ids=[c[0] for c in CASES])
async def test_same_events_as_langchain(
    case: str, make_rx: Any, make_lc: Any, input: Any, version: str, config: Any
) -> None:
    expected = shape(await lc_events(make_lc(), input, version, config))
    got_async = [e async for e in make_rx().astream_events(input, config, version=version)]
    got_sync = list(make_rx().stream_events(input, config, version=version))
    assert shape(got_async) == expected
    assert shape(got_sync) == expected


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_chunk_and_output_payload_types_match_langchain(version: str) -> None:
    def kinds(events: list[Any]) -> list[tuple[str, str]]:
        return [
            (e["event"], type(v).__name__) for e in events for k, v in e["data"].items()
            if k in ("chunk", "output")
        ]  # fmt: skip

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "astream_events version='v1' is deprecated")
        lc = await lc_events(lc_chain(), {"topic": "x"}, version)
    rx = [e async for e in rx_chain().astream_events({"topic": "x"}, version=version)]
    assert kinds(rx) == kinds(lc)
    root_llm = [e async for e in rx_llm().astream_events("x", version=version)]
    assert {type(e["data"]["chunk"]) for e in root_llm if "chunk" in e["data"]} == {str}


class Configured(FakeStreamingListLLM):
    model: str = "tiny-1"
    temperature: float = 0.0
    max_tokens: int = 16


def test_v2_llm_end_output_and_ls_metadata() -> None:
    events = list(Configured(responses=["Hi"]).stream_events("x", {"metadata": {"m": 1}}))
    assert events[-1]["data"]["output"] == {
        "generations": [[{"text": "Hi", "generation_info": None, "type": "Generation"}]],
        "llm_output": None,
    }
    assert events[0]["metadata"] == {
        "m": 1,
        "ls_provider": "configured",
        "ls_model_type": "llm",
        "ls_model_name": "tiny-1",
        "ls_temperature": 0.0,
        "ls_max_tokens": 16,
    }
    v1 = list(Configured(responses=["Hi"]).stream_events("x", {"metadata": {"m": 1}}, version="v1"))
    assert v1[0]["metadata"] == {"m": 1}  # LangChain's v1 keeps ls_* off a root run


def test_inside_a_pipeline_llm_chunks_are_generation_chunks_in_v2() -> None:
    events = list(rx_chain().stream_events({"topic": "x"}))
    chunks = [e["data"]["chunk"] for e in events if e["event"] == "on_llm_stream"]
    assert all(isinstance(c, GenerationChunk) for c in chunks)


def test_chat_end_output_is_the_merged_chunk() -> None:
    events = list(FakeListChatModel(responses=["Hello big world"]).stream_events("hi"))
    assert events[-1]["event"] == "on_chat_model_end"
    assert events[-1]["data"]["output"].content == "Hello big world"
    assert events[0]["metadata"]["ls_model_type"] == "chat"


def test_improvement_a_model_without_streaming_still_reports_one_stream_event() -> None:
    events = list(FakeListLLM(responses=["whole reply"]).stream_events("x"))
    assert [e["event"] for e in events] == ["on_llm_start", "on_llm_stream", "on_llm_end"]
    assert events[1]["data"]["chunk"] == "whole reply"


def nested() -> Any:
    inner = RunnableLambda(prompt, name="inner_prompt").pipe(rx_llm())
    return RunnableLambda(lambda x: x, name="outer").pipe(inner, parse)


@pytest.mark.parametrize(
    ("filters", "expected_names"),
    [
        ({"include_names": ["MyLLM"]}, {"MyLLM"}),
        ({"include_types": ["llm"]}, {"MyLLM"}),
        (
            {"include_types": ["chain"], "exclude_names": ["RunnableSequence"]},
            {"outer", "inner_prompt", "parse"},
        ),  # fmt: skip
        ({"include_tags": ["seq:step:3"]}, {"parse"}),
        (
            {
                "include_names": ["MyLLM"],
                "include_types": ["chain"],
                "exclude_tags": ["seq:step:1"],
            },
            {"MyLLM", "RunnableSequence", "parse"},
        ),  # fmt: skip
        ({"exclude_types": ["chain"]}, {"MyLLM"}),
    ],
)
def test_filters_on_a_nested_pipeline(filters: dict[str, Any], expected_names: set[str]) -> None:
    events = list(nested().stream_events({"topic": "x"}, **filters))
    assert {e["name"] for e in events} == expected_names


def test_nested_pipeline_run_tree() -> None:
    events = list(nested().stream_events({"topic": "x"}))
    starts = {e["name"]: e for e in events if e["event"].endswith("_start")}
    outer_id = events[0]["run_id"]
    inner = [e for e in events if e["event"] == "on_chain_start" and e["tags"] == ["seq:step:2"]]
    assert len(inner) == 1
    assert starts["outer"]["parent_ids"] == [outer_id]
    assert starts["MyLLM"]["parent_ids"] == [outer_id, inner[0]["run_id"]]
    assert starts["MyLLM"]["tags"] == ["seq:step:2"]
    assert starts["parse"]["tags"] == ["seq:step:3"]


def test_custom_events_land_under_the_run_that_dispatched_them() -> None:
    def sync_step(text: str) -> str:
        dispatch_custom_event("from_sync", {"n": 1})
        return text

    async def async_step(text: str) -> str:
        dispatch_custom_event("from_async", {"n": 2})
        await asyncio.sleep(0)
        return text

    def tagging(source: Observable[Any]) -> Observable[Any]:
        return source.pipe(ops.do_action(lambda _: dispatch_custom_event("from_op", {"n": 3})))

    chain = RunnableLambda(sync_step).pipe(RunnableLambda(async_step), tagging)
    events = list(chain.stream_events("hi"))
    root = events[0]["run_id"]
    run_of = {e["name"]: e["run_id"] for e in events if e["event"] == "on_chain_start"}
    custom = {e["name"]: e for e in events if e["event"] == "on_custom_event"}
    assert custom["from_sync"]["run_id"] == run_of["sync_step"]
    assert custom["from_sync"]["data"] == {"n": 1}
    assert custom["from_async"]["run_id"] == run_of["async_step"]
    assert custom["from_op"]["run_id"] == run_of["tagging"]
    assert all(c["parent_ids"] == [root] for c in custom.values())


def test_custom_events_outside_a_listened_run_do_nothing() -> None:
    def step(text: str) -> str:
        dispatch_custom_event("ignored", {})
        return text

    assert RunnableLambda(step).invoke("x") == "x"
    assert [e["event"] for e in RunnableLambda(step).stream_events("x", version="v1")] == [
        "on_chain_start", "on_chain_stream", "on_chain_end"
    ]  # fmt: skip


class Boom(Exception):
    pass


def test_a_failing_step_delivers_earlier_events_then_raises() -> None:
    llm = FakeStreamingListLLM(responses=["a b c"], error_after=2, error=Boom())
    chain = RunnableLambda(prompt).pipe(llm)
    events: list[StreamEvent] = []
    with pytest.raises(Boom) as caught:
        events.extend(chain.stream_events({"topic": "x"}))
    assert caught.value.partial == "a b"  # type: ignore[attr-defined]
    llm_streams = [e for e in events if e["event"] == "on_llm_stream"]
    assert [e["data"]["chunk"].text for e in llm_streams] == ["a", " b"]
    assert not any(e["event"].endswith("_end") and e["name"] == "FakeStreamingListLLM"
                   for e in events)  # fmt: skip


async def test_a_failing_step_raises_the_typed_error_in_astream_events() -> None:
    llm = FakeStreamingListLLM(responses=["a b"], error_after=1, error=Boom())
    seen: list[str] = []

    async def consume() -> None:
        async for event in llm.astream_events("x"):
            seen.append(event["event"])

    with pytest.raises(Boom):
        await consume()
    assert seen == ["on_llm_start", "on_llm_stream"]


def test_breaking_out_of_stream_events_cancels_the_call() -> None:
    llm = FakeStreamingListLLM(responses=["word " * 100], delay=0.005)
    for event in llm.stream_events("x"):
        if event["event"] == "on_llm_stream":
            break
    assert llm.calls.cancelled == 1


async def test_breaking_out_of_astream_events_cancels_the_call() -> None:
    from contextlib import aclosing

    llm = FakeStreamingListLLM(responses=["word " * 100], delay=0.005)
    async with aclosing(llm.astream_events("x")) as events:  # type: ignore[type-var]
        async for event in events:
            if event["event"] == "on_llm_stream":
                break
    assert llm.calls.cancelled == 1


def test_tap_events_sees_the_events_of_the_same_call() -> None:
    llm = FakeStreamingListLLM(responses=["Hi there"])
    seen: list[StreamEvent] = []
    text = list(llm.pipe(tap_events(seen.append)).stream("x"))
    assert text == ["Hi", " there"]
    assert [e["event"] for e in seen] == [
        "on_llm_start", "on_llm_stream", "on_llm_stream", "on_llm_end"
    ]  # fmt: skip
    assert llm.calls.started == 1


def test_tap_events_filters_and_versions() -> None:
    seen: list[StreamEvent] = []
    chain = RunnableLambda(prompt).pipe(rx_llm())
    tapped = chain.pipe(tap_events(seen.append, include_types=["llm"], version="v1"))
    assert tapped.invoke({"topic": "x"}) == "".join(TOKENS)
    assert {e["event"] for e in seen} == {"on_llm_start", "on_llm_stream", "on_llm_end"}
    assert all(e["parent_ids"] == [] for e in seen)


def test_events_of_a_batch_are_not_produced_without_a_listener() -> None:
    llm = FakeStreamingListLLM(responses=["a"])
    assert llm.batch(["x", "y"]) == ["a", "a"]


@pytest.mark.parametrize(
    "kwargs",
    [{"version": "v3"}, {"include_names": "MyLLM"}, {"exclude_tags": [1]}],
)
def test_bad_event_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        rx_llm().observe_events("x", **kwargs)


def test_operator_steps_are_named_after_their_operator() -> None:
    chain = rx_llm().pipe(ops.map(lambda c: c), ops.take(10), lambda source: source)
    names = [e["name"] for e in chain.stream_events("x") if e["event"] == "on_chain_start"]
    assert names == ["RunnableSequence", "map", "take", "operator"]


def test_events_carry_the_time_they_happened() -> None:
    before = time.time()
    events = list(FakeStreamingListLLM(responses=["a b c"], delay=0.001).stream_events("x"))
    times = [e["time"] for e in events]
    assert before <= times[0] <= times[-1] <= time.time()
    assert times == sorted(times)


@pytest.mark.parametrize(
    ("model", "pipe"),
    [
        (FakeListChatModel(responses=["a b c d e f g h"]), False),  # a chat model's run
        # An LLM's run (its chunks are reported as text at the root, as chunks in a chain),
        # the chain's and the operator step's.
        (FakeStreamingListLLM(responses=["a b c d e f g h"]), True),
    ],
)
def test_runs_sum_their_chunks_as_they_pass_instead_of_keeping_them(model: Any, pipe: bool) -> None:
    # Chunks held until the end event would be seen, and promoted, by the garbage
    # collector over a long stream; the end event's output is a running total instead.
    runnable = model.pipe(ops.map(lambda chunk: chunk)) if pipe else model
    alive: list[weakref.ref[Any]] = []
    outputs: list[Any] = []
    held_at_end: list[int] = []
    done = threading.Event()

    def on_event(event: StreamEvent) -> None:  # called as each event is emitted
        if event["event"].endswith("_stream") and event["name"] == model.get_name():
            alive.append(weakref.ref(event["data"]["chunk"]))
        elif event["event"].endswith("_end") and event["name"] == model.get_name():
            gc.collect()
            held_at_end.append(sum(ref() is not None for ref in alive))
            outputs.append(event["data"]["output"])

    runnable.observe_events("hi").subscribe(on_event, lambda _: done.set(), done.set)
    done.wait()
    assert len(alive) == 8
    assert held_at_end[0] <= 1  # the provider call's loop variable may hold the last one
    output = outputs[0]
    text = output.content if hasattr(output, "content") else output["generations"][0][0]["text"]
    assert text == "a b c d e f g h"


def test_observe_events_of_a_call_with_operators_applied() -> None:
    llm = FakeStreamingListLLM(responses=["hi there"])
    piped = llm.observe("x").pipe(ops.map(str))
    events = observe_events(piped, "v2", EventFilter(include_types=["llm"]))
    got = events.pipe(ops.to_list()).run()
    assert [e["event"] for e in got] == ["on_llm_start", "on_llm_stream", "on_llm_stream",
                                         "on_llm_end"]  # fmt: skip
    assert [e["data"]["chunk"] for e in got[1:3]] == ["hi", " there"]
    excluded = observe_events(piped, filter=EventFilter(exclude_types=["llm"]))
    assert excluded.pipe(ops.to_list()).run() == []


def test_observe_events_refuses_a_filter_that_is_not_an_event_filter() -> None:
    llm = FakeListLLM(responses=["a"])
    with pytest.raises(InvalidInputError, match="filter must be an EventFilter, not dict"):
        observe_events(llm.observe("x"), "v2", {"include_types": ["llm"]})  # type: ignore[arg-type]


def test_the_iterator_twins_take_the_filters_of_observe_events() -> None:
    import inspect

    llm = FakeListLLM(responses=["a"])
    expected = inspect.signature(llm.observe_events).parameters
    for twin in (llm.stream_events, llm.astream_events):
        assert inspect.signature(twin).parameters == expected
    with pytest.raises(InvalidInputError, match="include_tags must be a list of strings"):
        llm.stream_events("x", include_tags="tag")


def test_the_iterator_twins_follow_an_overridden_observe_events() -> None:
    class Quiet(FakeListLLM):
        def observe_events(self, /, input: Any, config: Any = None, **kwargs: Any) -> Any:
            return super().observe_events(input, config, include_types=["nothing"], **kwargs)

    assert list(Quiet(responses=["a"]).stream_events("x")) == []
