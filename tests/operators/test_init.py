"""The public face of rxllm.operators: exports, docstrings, names, composition."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops

import rxllm.events
import rxllm.operators as operators
from rxllm.llms import FakeListChatModel, FakeStreamingListLLM

OWN = [
    name
    for name in operators.__all__
    if getattr(operators, name).__module__.startswith("rxllm.operators.")
]
FACTORIES = sorted(name for name in OWN if inspect.isfunction(getattr(operators, name)))
CLASSES = sorted(name for name in OWN if inspect.isclass(getattr(operators, name)))


def test_all_is_honest() -> None:
    assert len(set(operators.__all__)) == len(operators.__all__)
    public = {
        name
        for name, value in vars(operators).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("rxllm.operators")
    }
    # tap_events belongs to the events API; it is listed here with the other taps.
    assert public | {"tap_events"} == set(operators.__all__)
    assert operators.tap_events is rxllm.events.tap_events
    assert CLASSES == ["Metrics", "Race", "Snapshot", "StreamMetrics"]
    assert len(FACTORIES) + len(CLASSES) + 1 == len(operators.__all__)


def test_every_operator_is_documented_with_a_marble_diagram() -> None:
    for name in FACTORIES:
        doc = inspect.getdoc(getattr(operators, name)) or ""
        assert doc.splitlines()[0].endswith("."), name
        assert ".. code-block:: text" in doc, name
        assert re.search(rf"{name}\(.*\):\s+-", doc), f"{name} has no marble line"
        assert "|" in doc, name


def _sample(name: str) -> Any:
    arguments: dict[str, tuple[Any, ...]] = {
        "buffer_tokens": (2,), "buffer_time": (1.0,), "buffer_time_or_count": (1.0, 2),
        "split_on": (",",), "smooth": (0.001,), "throttle_text": (0.001,),
        "map_text": (str,), "on_first_token": (print,), "first_token_timeout": (5,),
        "stall_timeout": (5,), "total_timeout": (5,), "stop_on": ("zz",), "max_chars": (100,),
        "detect_repetition": (5,),
    }  # fmt: skip
    return getattr(operators, name)(*arguments.get(name, ()))


def test_operators_compose_with_rxpy_operators_and_carry_their_names() -> None:
    for name in FACTORIES:
        if name in ("race", "partial_json", "json_items"):
            continue
        operator = _sample(name)
        assert getattr(operator, "__name__", None) == name
        got = reactivex.of("a b", " c").pipe(ops.map(str), operator, ops.to_list()).run()
        assert isinstance(got, list), name


def test_a_long_pipeline_of_operators() -> None:
    llm = FakeStreamingListLLM(responses=["One. Two! Three? STOP four"], chunking="char")
    pipeline = llm.pipe(
        operators.stop_on("STOP"),
        operators.sentences(),
        operators.map_text(str.upper),
        ops.filter(lambda chunk: bool(chunk.text.strip())),
        operators.text(),
    )
    assert list(pipeline.stream("hi")) == ["ONE. ", "TWO! ", "THREE? "]


REPLY = "One two, three.\nFour five? Six!"
PRESERVING = [name for name in FACTORIES if name not in ("race", "partial_json", "json_items")]


def _joined(items: list[Any]) -> str:
    if items and isinstance(items[-1], str) and type(items[-1]) is not str:  # snapshots
        return items[-1]
    return "".join(item if isinstance(item, str) else item.content for item in items)


@pytest.mark.parametrize("name", PRESERVING)
def test_every_text_operator_through_stream_keeps_the_text(name: str) -> None:
    llm = FakeStreamingListLLM(responses=[REPLY])
    assert _joined(list(llm.pipe(_sample(name)).stream("hi"))) == REPLY
    assert llm.pipe(_sample(name)).invoke("hi") == REPLY


@pytest.mark.parametrize("name", PRESERVING)
async def test_every_text_operator_through_chat_astream_keeps_the_text(name: str) -> None:
    chat = FakeListChatModel(responses=[REPLY], chunking="char")
    items = [item async for item in chat.pipe(_sample(name)).astream("hi")]
    if name == "accumulate":
        assert items[-1].content == REPLY
    else:
        assert _joined(items) == REPLY
    final = await chat.pipe(_sample(name)).ainvoke("hi")
    assert (final if name == "text" else final.content) == REPLY


@pytest.mark.parametrize("name", ["partial_json", "json_items"])
async def test_structured_operators_through_stream_and_astream(name: str) -> None:
    llm = FakeStreamingListLLM(responses=['[{"a": 1}, {"b": [2, 3]}]'], chunking="char")
    streamed = list(llm.pipe(_sample(name)).stream("hi"))
    astreamed = [item async for item in llm.pipe(_sample(name)).astream("hi")]
    assert streamed == astreamed
    assert streamed[-1] == ([{"a": 1}, {"b": [2, 3]}] if name == "partial_json" else {"b": [2, 3]})


@pytest.mark.parametrize("name", [*PRESERVING, "partial_json", "json_items"])
async def test_every_operator_through_astream_events(name: str) -> None:
    """The operator is a step of the pipeline's run tree; its output is the chain's."""
    reply = '[{"a": 1}, {"b": [2, 3]}]' if name in ("partial_json", "json_items") else REPLY
    piped = FakeStreamingListLLM(responses=[reply], chunking="char").pipe(_sample(name))
    events = [event async for event in piped.astream_events("hi")]
    root = events[0]["run_id"]
    step = [e for e in events if e["name"] == name and e["event"] == "on_chain_start"]
    assert len(step) == 1
    assert step[0]["tags"] == ["seq:step:2"]
    assert step[0]["parent_ids"] == [root]
    outputs = [e["data"]["chunk"] for e in events if e["event"] == "on_chain_stream"
               and e["name"] == name]  # fmt: skip
    chain = [e["data"]["chunk"] for e in events if e["event"] == "on_chain_stream"
             and e["run_id"] == root]  # fmt: skip
    assert outputs
    assert outputs == chain
    assert events[-1]["event"] == "on_chain_end"
    assert events[-1]["data"]["output"] == await piped.ainvoke("hi")
