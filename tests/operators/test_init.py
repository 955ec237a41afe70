"""The public face of rxllm.operators: exports, docstrings, names, composition."""

from __future__ import annotations

import inspect
import re
from typing import Any

import reactivex
from reactivex import operators as ops

import rxllm.events
import rxllm.operators as operators
from rxllm.llms import FakeStreamingListLLM

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
        "map_text": (str.upper,), "on_first_token": (print,), "first_token_timeout": (5,),
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
