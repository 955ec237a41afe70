"""A call nobody else sees is iterated by the bridge itself (``rxllm._runtime.Source``).

Each test pins one half of the rule: the direct way is taken exactly when subscribing
would add nothing (no operator, no run hook, no listener), and it behaves as the
Observable does: same items, one call, the call closed when the consumer stops, an
error carrying the text so far.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops

from rxllm import RunnableLambda, _runs, aiterate, iterate
from rxllm._runtime import Source, direct_of, library_loop
from rxllm.events import observe_events
from rxllm.llms import BaseLLM, FakeListLLM
from rxllm.operators import tap_events
from rxllm.schema import GenerationChunk

Outcome = tuple[list[str], str | None, str | None]


class Twins(BaseLLM):
    """Streams the words of its prompt, both ways, noting where each call ran."""

    fail_after: int | None = None
    where: list[tuple[str, Any]] = []
    closed: list[str] = []

    def _words(self, prompt: str) -> Iterator[str]:
        for index, word in enumerate(prompt.split()):
            if index == self.fail_after:
                raise ValueError("broke mid-stream")
            yield word + " "

    def _stream(self, prompt: str, stop: list[str] | None = None, **kwargs: Any) -> Iterator[Any]:
        self.where.append(("sync", threading.current_thread().name))
        try:
            for word in self._words(prompt):
                yield GenerationChunk(text=word)
        finally:
            self.closed.append("sync")

    async def _astream(
        self, prompt: str, stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        self.where.append(("async", asyncio.current_task()))
        try:
            for word in self._words(prompt):
                await asyncio.sleep(0)
                yield GenerationChunk(text=word)
        finally:
            self.closed.append("async")


def twins(**fields: Any) -> Twins:
    return Twins(where=[], closed=[], **fields)


def test_a_sync_consumer_runs_the_blocking_twin_on_its_own_thread() -> None:
    model = twins()
    assert list(model.stream("a b c")) == ["a ", "b ", "c "]
    assert model.invoke("d e") == "d e "
    here = threading.current_thread().name
    assert model.where == [("sync", here), ("sync", here)]
    assert model.closed == ["sync", "sync"]


async def test_an_async_consumer_runs_the_call_on_its_own_task() -> None:
    model = twins()
    assert [chunk async for chunk in model.astream("a b")] == ["a ", "b "]
    assert await model.ainvoke("c") == "c "
    task = asyncio.current_task()
    assert model.where == [("async", task), ("async", task)]


async def test_anyone_else_seeing_the_call_means_it_is_subscribed() -> None:
    model = twins()
    # An operator listening, a run the call is a step of: the call runs as a task.
    seen: list[str] = []
    listened = model.pipe(tap_events(lambda e: seen.append(e["event"])))
    assert [c async for c in listened.astream("b")] == ["b "]
    assert seen == ["on_llm_start", "on_llm_stream", "on_llm_end"]
    assert await (RunnableLambda(str.upper) | model).ainvoke("c") == "C "
    task = asyncio.current_task()
    assert [kind for kind, _ in model.where] == ["async"] * 2
    assert all(where is not task for _, where in model.where)


async def test_the_events_of_a_lone_call_are_made_by_the_bridge_as_it_iterates() -> None:
    model = twins()
    events = [e["event"] async for e in model.astream_events("a", version="v2")]
    assert events == ["on_llm_start", "on_llm_stream", "on_llm_end"]
    assert model.where == [("async", asyncio.current_task())]
    assert [e["event"] for e in model.stream_events("b c", version="v1")] == [
        "on_llm_start",
        "on_llm_stream",
        "on_llm_stream",
        "on_llm_end",
    ]
    assert model.where[1] == ("sync", threading.current_thread().name)


@pytest.mark.parametrize("way", ["sync", "async"])
async def test_a_call_made_inside_a_listened_run_is_subscribed_and_reports(way: str) -> None:
    model = twins()

    def inner(text: str) -> str:
        return model.invoke(text)

    async def ainner(text: str) -> str:
        return await model.ainvoke(text)

    outer = RunnableLambda(inner if way == "sync" else ainner, name="outer")
    events = [(e["event"], e["name"]) async for e in outer.astream_events("a", version="v2")]
    assert ("on_llm_start", "Twins") in events
    assert ("on_llm_end", "Twins") in events


def test_a_run_hook_sees_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    class Hook:
        def run(self, runnable: Any, input: Any, config: Any, source: Any) -> Any:
            seen.append(runnable.get_name())
            return source

        def step(self, operator: Any, name: str) -> Any:
            return operator

    monkeypatch.setattr(_runs, "run_hook", Hook())
    model = twins()
    assert model.invoke("a") == "a "
    assert seen == ["Twins"]
    assert model.where[0][0] == "async"


def test_an_operator_between_means_the_observable_is_subscribed() -> None:
    model = twins()
    upper: Callable[[GenerationChunk], str] = lambda c: c.text.upper()  # noqa: E731
    piped = model.observe("a b").pipe(ops.map(upper))
    assert direct_of(piped) is None
    assert list(iterate(piped)) == ["A ", "B "]
    assert model.where[0][0] == "async"  # the Observable's way, from a task
    observed = model.observe("c")
    assert isinstance(direct_of(observed), Source)
    assert isinstance(direct_of(observe_events(observed)), Source)
    assert direct_of(observe_events(observed.pipe(ops.take(1)))) is None


def test_without_a_blocking_twin_a_sync_consumer_subscribes() -> None:
    class AsyncOnly(Twins):
        _stream = BaseLLM._stream  # not implemented: the hook counts as absent

    model = AsyncOnly(where=[], closed=[])
    assert list(model.stream("a b")) == ["a ", "b "]  # still token by token
    assert model.where[0][0] == "async"


def test_a_whole_result_call_is_the_blocking_way_only_when_nothing_streams() -> None:
    class StreamsAsyncCallsSync(Twins):
        _stream = BaseLLM._stream

        def _call(self, prompt: str, stop: list[str] | None = None, **kwargs: Any) -> str:
            raise AssertionError("a sync consumer must get the tokens, not one result")

    model = StreamsAsyncCallsSync(where=[], closed=[])
    assert list(model.stream("a b")) == ["a ", "b "]
    assert FakeListLLM(responses=["whole"]).invoke("x") == "whole"


@pytest.mark.parametrize("way", ["sync", "async"])
def test_leaving_early_closes_the_call_at_once(way: str) -> None:
    model = twins()
    if way == "sync":
        stream = model.stream("a b c d")
        assert next(stream) == "a "
        stream.close()  # type: ignore[attr-defined]
    else:

        async def first() -> None:
            stream = model.astream("a b c d")
            assert await anext(stream) == "a "
            await stream.aclose()  # type: ignore[attr-defined]

        asyncio.run(first())
    assert model.closed == [way]


@settings(max_examples=40, deadline=None)
@given(
    words=st.lists(st.sampled_from(["a", "bc", "d", "éf"]), min_size=1, max_size=8),
    fail_after=st.none() | st.integers(0, 8),
)
def test_both_ways_give_the_subscribed_observable_s_items_and_error(
    words: list[str], fail_after: int | None
) -> None:
    model = twins(fail_after=fail_after)
    prompt = " ".join(words)

    def outcome(items: Iterator[Any]) -> Outcome:
        got: list[str] = []
        try:
            for item in items:
                got.append(item if isinstance(item, str) else item.text)
        except ValueError as exc:
            return got, str(exc), getattr(exc, "partial", None)
        return got, None, None

    async def aoutcome(items: AsyncIterator[str]) -> Outcome:
        got: list[str] = []
        try:
            async for item in items:
                got.append(item)
        except ValueError as exc:
            return got, str(exc), getattr(exc, "partial", None)
        return got, None, None

    subscribed = outcome(iterate(model.observe(prompt).pipe(ops.map(lambda c: c))))
    assert outcome(model.stream(prompt)) == subscribed
    assert asyncio.run(aoutcome(model.astream(prompt))) == subscribed
    if fail_after is not None and fail_after < len(words):
        assert subscribed[1] == "broke mid-stream"
        assert subscribed[2] == ("".join(w + " " for w in words[:fail_after]) or None)
    else:
        assert subscribed == ([w + " " for w in words], None, None)


def test_a_blocking_call_on_rxllm_s_loop_thread_is_refused_either_way() -> None:
    model = twins()

    async def on_the_loop() -> str:
        try:
            model.invoke("a")
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    loop = library_loop()
    message = asyncio.run_coroutine_threadsafe(on_the_loop(), loop).result(5)
    assert "would deadlock" in message
    assert model.where == []


def comparable(events: list[Any]) -> list[Any]:
    """Events without what differs between two calls: run ids and times."""
    ids: dict[str, int] = {}
    out = []
    for event in events:
        event = dict(event)
        event.pop("time")
        event["run_id"] = ids.setdefault(event["run_id"], len(ids))
        event["parent_ids"] = [ids.setdefault(i, len(ids)) for i in event["parent_ids"]]
        out.append(event)
    return out


@settings(max_examples=40, deadline=None)
@given(
    words=st.lists(st.sampled_from(["a", "bc", "éf"]), min_size=1, max_size=5),
    fail_after=st.none() | st.integers(0, 5),
    version=st.sampled_from(["v1", "v2"]),
    tags=st.lists(st.sampled_from(["t1", "t2"]), max_size=2),
    exclude=st.booleans(),
)
def test_a_lone_call_s_events_are_the_subscribed_observable_s(
    words: list[str], fail_after: int | None, version: str, tags: list[str], exclude: bool
) -> None:
    model = twins(fail_after=fail_after)
    prompt = " ".join(words)
    config: Any = {"tags": tags, "metadata": {"k": 1}, "run_name": "named"}
    excluded = {"exclude_tags": ["t1"]} if exclude else {}

    def outcome(events: Iterator[Any]) -> tuple[list[Any], str | None, str | None]:
        got: list[Any] = []
        try:
            for event in events:
                got.append(event)
        except ValueError as exc:
            return comparable(got), str(exc), getattr(exc, "partial", None)
        return comparable(got), None, None

    async def aoutcome() -> tuple[list[Any], str | None, str | None]:
        got: list[Any] = []
        events = model.astream_events(prompt, config, version=version, **excluded)
        try:
            async for event in events:
                got.append(event)
        except ValueError as exc:
            return comparable(got), str(exc), getattr(exc, "partial", None)
        return comparable(got), None, None

    observed = model.observe_events(prompt, config, version=version, **excluded)
    assert isinstance(direct_of(observed), Source)
    subscribed = outcome(iterate(observed.pipe(ops.map(lambda e: e))))
    assert outcome(model.stream_events(prompt, config, version=version, **excluded)) == subscribed
    assert asyncio.run(aoutcome()) == subscribed
    if not exclude or "t1" not in tags:
        assert subscribed[0][0]["event"] == "on_llm_start"


class Made:
    """A call with no text to keep (``text_of=None``): its iterators, as they are made,
    and which were closed."""

    def __init__(self, items: list[str]) -> None:
        self.items = items
        self.made: list[Any] = []
        self.closed: list[str] = []

    def make(self) -> Iterator[str]:
        def call() -> Iterator[str]:
            try:
                yield from self.items
            finally:
                self.closed.append("sync")

        made = call()
        self.made.append(made)
        return made

    def amake(self) -> AsyncIterator[str]:
        async def call() -> AsyncIterator[str]:
            try:
                for item in self.items:
                    yield item
            finally:
                self.closed.append("async")

        made = call()
        self.made.append(made)
        return made

    def source(self) -> Source[str]:
        return Source(self.amake, self.make)


def test_a_call_that_needs_nothing_from_the_bridge_is_the_for_loop_s_own_iterator() -> None:
    call = Made(["a", "b"])
    iteration = iterate(call.source())
    assert iter(iteration) is call.made[0]  # the call's generator, no layer between
    assert list(iteration) == ["a", "b"]
    presented = iter(iterate(call.source(), str.upper))  # presenting is the bridge's
    assert list(presented) == ["A", "B"]
    assert presented is not call.made[1]
    kept = iter(iterate(Source(call.amake, call.make, text_of=str)))  # and keeping text
    assert list(kept) == ["a", "b"]
    assert kept is not call.made[2]

    async def consume() -> list[str]:
        iteration = aiterate(call.source())
        assert aiter(iteration) is call.made[3]  # the call's async generator itself
        return [item async for item in iteration]

    assert asyncio.run(consume()) == ["a", "b"]
    assert call.closed == ["sync", "sync", "sync", "async"]


def test_an_iteration_stepped_by_hand_starts_at_the_first_item_and_closes() -> None:
    call = Made(["a", "b", "c"])
    iteration = iterate(call.source())
    assert call.made == []  # nothing is made before the first item is asked for
    assert next(iteration) == "a"
    iteration.close()
    assert call.closed == ["sync"]
    assert list(iteration) == []

    async def by_hand() -> None:
        iteration = aiterate(call.source())
        assert len(call.made) == 1
        assert await anext(iteration) == "a"
        await iteration.aclose()
        assert call.closed == ["sync", "async"]
        assert [item async for item in iteration] == []

    asyncio.run(by_hand())


def test_an_iteration_closed_before_it_starts_never_makes_the_call() -> None:
    call = Made(["a"])
    iteration = iterate(call.source())
    iteration.close()
    assert list(iteration) == []

    async def closed_first() -> list[str]:
        iteration = aiterate(call.source())
        await iteration.aclose()
        return [item async for item in iteration]

    assert asyncio.run(closed_first()) == []
    assert call.made == []
