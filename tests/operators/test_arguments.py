"""Every operator refuses a bad argument when it is made, with one message shape.

The table below has a bad value for every argument of every operator in
``rxllm.operators.__all__``; ``test_every_argument_of_every_operator_has_a_bad_case``
reads the operators' signatures, so an operator or argument added without a case here
fails it.
"""

from __future__ import annotations

import inspect
import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pytest
import reactivex
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel
from reactivex import operators as rx_ops
from reactivex.testing import TestScheduler

import rxllm.operators as ops
from rxllm.errors import InvalidInputError

from .helpers import on_completed, on_next


class Song(BaseModel):
    title: str


@dataclass(frozen=True)
class Case:
    """A call of ``operator`` with a bad ``argument``; the error must name it."""

    operator: str
    argument: str
    call: Callable[[], object]
    label: str
    uniform: bool = True  # the message has the shape ``operator: argument must be ...``

    def __str__(self) -> str:
        return f"{self.operator}-{self.argument}-{self.label}"


def case(operator: str, argument: str, *values: Any, uniform: bool = True) -> list[Case]:
    """One case per bad value: ``operator`` called with ``argument=value`` (by keyword)."""
    function = getattr(ops, operator)
    return [
        Case(operator, argument, lambda v=v: function(**{argument: v}), repr(v), uniform)
        for v in values
    ]


def calls(operator: str, argument: str, **bad: Callable[[], object]) -> list[Case]:
    """Cases written out as calls, for arguments that need others beside them."""
    return [Case(operator, argument, call, label) for label, call in bad.items()]


NAN, INF = math.nan, math.inf
NOT_SCHEDULERS = ("loop", 3, object())

CASES: list[Case] = [
    *case("buffer_tokens", "count", "3", 2.5, True, 0, -1, None),
    *case("buffer_time", "seconds", "1", 0, -1, NAN, INF, None, True),
    *calls("buffer_time", "scheduler", str=lambda: ops.buffer_time(1, scheduler="loop")),  # type: ignore[arg-type]
    *calls(
        "buffer_time_or_count",
        "seconds",
        zero=lambda: ops.buffer_time_or_count(0, 2),
        str=lambda: ops.buffer_time_or_count("1", 2),  # type: ignore[arg-type]
    ),
    *calls(
        "buffer_time_or_count",
        "count",
        float=lambda: ops.buffer_time_or_count(1, 1.5),  # type: ignore[arg-type]
        zero=lambda: ops.buffer_time_or_count(1, 0),
    ),
    *calls(
        "buffer_time_or_count",
        "scheduler",
        object=lambda: ops.buffer_time_or_count(1, 2, scheduler=object()),  # type: ignore[arg-type]
    ),
    *case("split_on", "pattern", None, "", 3, re.compile("x*"), re.compile(b";"), [";"]),
    *case("smooth", "delay", 0, -0.5, "fast", NAN, None),
    *calls(
        "smooth",
        "unit",
        plural=lambda: ops.smooth(0.1, "words"),  # type: ignore[arg-type]
        int=lambda: ops.smooth(0.1, 3),  # type: ignore[arg-type]
        list=lambda: ops.smooth(0.1, ["word"]),  # type: ignore[arg-type]
    ),
    *calls(
        "smooth",
        "max_lag",
        below_delay=lambda: ops.smooth(0.1, max_lag=0.01),
        str=lambda: ops.smooth(0.1, max_lag="1"),  # type: ignore[arg-type]
        inf=lambda: ops.smooth(0.1, max_lag=INF),
    ),
    *calls("smooth", "scheduler", int=lambda: ops.smooth(0.1, scheduler=1)),  # type: ignore[arg-type]
    *case("throttle_text", "interval", 0, -1, "0.1", INF),
    *calls("throttle_text", "scheduler", str=lambda: ops.throttle_text(1, scheduler="x")),  # type: ignore[arg-type]
    *case("map_text", "func", None, "upper", 3),
    *case("on_first_token", "func", None, "print"),
    *case("tap", "on_next", "print", 3),
    *case("tap", "on_error", "x"),
    *case("tap", "on_completed", 1),
    *case("tap", "on_subscribe", 1),
    *case("tap", "on_dispose", 1),
    *case("metrics", "on_complete", "x", 3),
    *case("metrics", "scheduler", *NOT_SCHEDULERS),
    *case("Metrics", "on_complete", [], 1.0),
    *case("Metrics", "scheduler", "x"),
    *case("first_token_timeout", "seconds", 0, "5", None, NAN, -3),
    *calls("first_token_timeout", "scheduler", int=lambda: ops.first_token_timeout(5, scheduler=5)),  # type: ignore[arg-type]
    *case("stall_timeout", "seconds", None, 0, INF),
    *calls("stall_timeout", "scheduler", str=lambda: ops.stall_timeout(5, scheduler="x")),  # type: ignore[arg-type]
    *case("total_timeout", "seconds", INF, False, "10"),
    *calls("total_timeout", "scheduler", list=lambda: ops.total_timeout(5, scheduler=[])),  # type: ignore[arg-type]
    *case(
        "stop_on",
        "stop",
        None,
        "",
        [],
        ["a", 3],
        ["a", ""],
        b"END",
        3,
        re.compile("x*"),
        re.compile(b"END"),
    ),
    *calls(
        "stop_on",
        "window",
        zero=lambda: ops.stop_on(re.compile("a+b"), window=0),
        float=lambda: ops.stop_on(re.compile("a+b"), window=2.5),  # type: ignore[arg-type]
        str=lambda: ops.stop_on("END", window="8"),  # type: ignore[arg-type]
        missing_for_unbounded=lambda: ops.stop_on(re.compile(r"\n{2,}")),
    ),
    *case("max_chars", "limit", -1, 1.5, "10", True, None),
    *case("detect_repetition", "count", 1, 2.0, "3", None),
    *calls(
        "detect_repetition",
        "max_period",
        zero=lambda: ops.detect_repetition(3, max_period=0),
        str=lambda: ops.detect_repetition(3, max_period="64"),  # type: ignore[arg-type]
    ),
    *case("partial_json", "model", "Song", dict, int, 3, Song(title="x"), list[Song]),
    *case("json_items", "model", "int", 3, object()),
    *case("share_stream", "replay", "yes", None, 1),
    *calls(
        "race",
        "candidates",
        none=lambda: ops.race(),
        prompt=lambda: ops.race("a prompt"),  # type: ignore[call-overload]
        second=lambda: ops.race(reactivex.of("a"), 3),  # type: ignore[call-overload]
    ),
    *case("retry", "attempts", 0, 1.5, "3", None, False),
    *case("retry", "delay", -1, NAN, INF, "1", None),
    *case("retry", "scheduler", *NOT_SCHEDULERS),
    # tap_events is rxllm.events'; its messages predate the shape used here.
    Case("tap_events", "version", lambda: ops.tap_events(print, version="v3"), "v3", False),
    Case("tap_events", "version", lambda: ops.tap_events(print, version=2), "2", False),  # type: ignore[arg-type]
    Case(
        "tap_events",
        "include_names",
        lambda: ops.tap_events(print, include_names="one"),  # type: ignore[arg-type]
        "str",
        uniform=False,
    ),
    Case("tap_events", "handler", lambda: ops.tap_events(None), "None"),  # type: ignore[arg-type]
    Case(
        "tap_events",
        "include_names",  # misspelled: the message lists the filters
        lambda: ops.tap_events(print, include_name=["llm"]),  # type: ignore[arg-type]
        "misspelled",
        uniform=False,
    ),
    Case(
        "tap_events",
        "include_names",
        lambda: ops.tap_events(print, include_names=5),  # type: ignore[arg-type]
        "5",
        uniform=False,
    ),
]

#: Names in ``__all__`` that are not made from arguments, or that check elsewhere.
EXEMPT = {
    "Snapshot": "a str, made by accumulate()",
    "StreamMetrics": "a pydantic model: it validates its own fields",
    "Race": "made by race(), which checks the candidates",
}
#: A ``**kwargs`` parameter is covered by a case for one of the keywords it takes.
KEYWORDS = {("tap_events", "filters"): "include_names"}


def _case_of(entry: Any) -> Case:
    """The case in an entry of ``CASES`` (a ``pytest.param`` holds one, with its mark)."""
    return entry if isinstance(entry, Case) else entry.values[0]


@pytest.mark.parametrize("bad", CASES, ids=lambda c: str(_case_of(c)))
def test_a_bad_argument_is_refused_when_the_operator_is_made(bad: Case) -> None:
    with pytest.raises(InvalidInputError) as raised:
        bad.call()
    message = str(raised.value)
    assert bad.argument in message
    if bad.uniform:
        assert message.startswith(f"{bad.operator.lower()}: {bad.argument} must be "), message
        assert ", got " in message
    assert isinstance(raised.value, ValueError)  # what code catching ValueError relies on


def test_the_message_says_what_was_expected_and_what_was_given() -> None:
    with pytest.raises(InvalidInputError) as raised:
        ops.buffer_tokens("3")  # type: ignore[arg-type]
    assert str(raised.value) == "buffer_tokens: count must be an int >= 1, got '3' (str)"
    with pytest.raises(InvalidInputError) as raised:
        ops.stop_on(None)  # type: ignore[arg-type]
    assert str(raised.value) == (
        "stop_on: stop must be a non-empty str, an iterable of them, or a compiled pattern, "
        "got None (NoneType)"
    )
    with pytest.raises(InvalidInputError, match=r"got 'x{76}\.\.\. \(str\)$"):
        ops.buffer_tokens("x" * 500)  # type: ignore[arg-type]


def _operators() -> dict[str, Callable[..., Any]]:
    return {
        name: getattr(ops, name)
        for name in ops.__all__
        if name not in EXEMPT and callable(getattr(ops, name))
    }


def test_every_argument_of_every_operator_has_a_bad_case() -> None:
    covered = {(c.operator, c.argument) for c in map(_case_of, CASES)}
    missing = []
    for name, factory in _operators().items():
        for parameter in inspect.signature(factory).parameters:
            if (name, KEYWORDS.get((name, parameter), parameter)) not in covered:
                missing.append(f"{name}({parameter})")
    assert missing == []
    assert set(ops.__all__) == set(_operators()) | set(EXEMPT)
    # Nothing in the table is stale: every case names a real operator and argument.
    for operator, argument in covered:
        parameters = inspect.signature(getattr(ops, operator)).parameters
        assert argument in parameters or (operator, argument) in {
            (o, k) for (o, _), k in KEYWORDS.items()
        }, (operator, argument)


def test_operators_without_arguments_are_the_segmenters_and_mappers() -> None:
    bare = sorted(name for name, f in _operators().items() if not inspect.signature(f).parameters)
    assert bare == ["accumulate", "lines", "markdown_blocks", "sentences", "text", "words"]


COUNTS: list[tuple[str, Callable[[Any], object], int]] = [
    ("buffer_tokens(count)", lambda v: ops.buffer_tokens(v), 1),
    ("buffer_time_or_count(count)", lambda v: ops.buffer_time_or_count(1, v), 1),
    ("max_chars(limit)", lambda v: ops.max_chars(v), 0),
    ("detect_repetition(count)", lambda v: ops.detect_repetition(v), 2),
    ("detect_repetition(max_period)", lambda v: ops.detect_repetition(3, max_period=v), 1),
    ("retry(attempts)", lambda v: ops.retry(v), 1),
    ("stop_on(window)", lambda v: ops.stop_on(re.compile("ab+c"), window=v), 1),
]

NOT_INTS = st.one_of(
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.fractions(),
    st.decimals(allow_nan=True),
    st.complex_numbers(),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.lists(st.integers(), max_size=3),
    st.tuples(st.integers()),
    st.builds(object),
)


@pytest.mark.parametrize(("name", "make", "minimum"), COUNTS, ids=[c[0] for c in COUNTS])
@given(value=NOT_INTS)
def test_a_count_refuses_anything_but_an_int(
    name: str, make: Callable[[Any], object], minimum: int, value: Any
) -> None:
    with pytest.raises(InvalidInputError, match=rf"must be an int >= {minimum}, got "):
        make(value)


@pytest.mark.parametrize(("name", "make", "minimum"), COUNTS, ids=[c[0] for c in COUNTS])
@given(data=st.data())
def test_a_count_takes_ints_from_its_minimum_and_refuses_below(
    name: str, make: Callable[[Any], object], minimum: int, data: st.DataObject
) -> None:
    assert callable(make(data.draw(st.integers(min_value=minimum, max_value=10**6))))
    with pytest.raises(InvalidInputError, match=rf"must be an int >= {minimum}, got -?\d+ \(int\)"):
        make(data.draw(st.integers(max_value=minimum - 1)))


DURATIONS: list[tuple[str, Callable[[Any], object]]] = [
    ("buffer_time", lambda v: ops.buffer_time(v)),
    ("buffer_time_or_count", lambda v: ops.buffer_time_or_count(v, 2)),
    ("smooth", lambda v: ops.smooth(v)),
    ("throttle_text", lambda v: ops.throttle_text(v)),
    ("first_token_timeout", lambda v: ops.first_token_timeout(v)),
    ("stall_timeout", lambda v: ops.stall_timeout(v)),
    ("total_timeout", lambda v: ops.total_timeout(v)),
]


def _a_duration(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


@pytest.mark.parametrize(("name", "make"), DURATIONS, ids=[d[0] for d in DURATIONS])
@given(value=st.one_of(NOT_INTS.filter(lambda v: not _a_duration(v)), st.integers(max_value=0)))
def test_a_duration_refuses_anything_but_a_finite_positive_number(
    name: str, make: Callable[[Any], object], value: Any
) -> None:
    with pytest.raises(InvalidInputError, match=r"must be a finite number of seconds > 0, got "):
        make(value)


def test_retry_delay_may_be_zero_and_nothing_below() -> None:
    assert callable(ops.retry(2, delay=0))
    with pytest.raises(InvalidInputError, match=r"retry: delay must be .* seconds >= 0, got"):
        ops.retry(2, delay=-0.001)


def test_accepted_edge_values_work() -> None:
    """What is accepted is used as given: the smallest counts, and exact fractions of seconds."""
    assert reactivex.of("a", "b").pipe(ops.buffer_tokens(1), rx_ops.to_list()).run() == ["a", "b"]
    assert reactivex.of("ab", "c").pipe(ops.max_chars(0), rx_ops.to_list()).run() == []
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(10, "a"), on_next(12, "b"), on_completed(30))
    results = scheduler.start(lambda: source.pipe(ops.buffer_time(Fraction(5))))
    assert results.messages == [on_next(215, "ab"), on_completed(230)]
