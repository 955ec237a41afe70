"""The three subscription shapes operators are written on: mapping, tapping, flushing."""

from __future__ import annotations

from typing import Any

from reactivex import abc
from reactivex.testing import TestScheduler

from rxllm.operators._skeleton import Hooks, NextAndFlush, Pacer, flushing, mapping, tapping

from .helpers import on_completed, on_error, on_next, run, subscribe


def counting() -> Any:
    seen = 0

    def step(item: Any) -> Any:
        nonlocal seen
        seen += 1
        return (seen, item)

    return step


def test_mapping_makes_a_step_per_subscription() -> None:
    operator = mapping(counting)
    assert run(operator, "ab") == [(1, "a"), (2, "b")]
    assert run(operator, "ab") == [(1, "a"), (2, "b")]  # not (3, "a"): nothing shared


def test_mapping_ends_the_stream_with_the_steps_exception() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, 1), on_next(20, 0), on_next(30, 2))
    results = scheduler.start(lambda: xs.pipe(mapping(lambda: lambda n: 1 // n)))
    assert results.messages[0] == on_next(210, 1)
    assert results.messages[1].time == 220
    assert isinstance(results.messages[1].value.exception, ZeroDivisionError)
    assert xs.subscriptions == [subscribe(200, 220)]


def test_tapping_a_hooks_exception_replaces_the_notification() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_completed(20))
    broken = RuntimeError("hook")

    def fail() -> None:
        raise broken

    results = scheduler.start(lambda: xs.pipe(tapping(lambda _: Hooks(on_completed=fail))))
    assert results.messages == [on_next(210, "a"), on_error(220, broken)]


def test_tapping_runs_on_dispose_after_the_upstream_is_disposed() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(on_next(210, "a"))
    given: list[abc.SchedulerBase | None] = []
    upstream_when_disposed: list[Any] = []

    def make(scheduler_: abc.SchedulerBase | None) -> Hooks:
        given.append(scheduler_)
        return Hooks(on_dispose=lambda: upstream_when_disposed.extend(xs.subscriptions))

    scheduler.start(lambda: xs.pipe(tapping(make)), disposed=300)
    assert given == [scheduler]
    assert upstream_when_disposed == [subscribe(200, 300)]


def delaying(fired: list[float]) -> Any:
    """Emits each item 100 ticks after it came; the end flushes whatever waits."""

    def start(observer: abc.ObserverBase[Any], pacer: Pacer) -> NextAndFlush:
        waiting: list[Any] = []

        def on_next(item: Any) -> None:
            with pacer.lock:
                waiting.append(item)
                pacer.after(100, on_time)

        def on_time(scheduler: abc.SchedulerBase, _: Any = None) -> None:
            fired.append(scheduler.to_seconds(scheduler.now))
            with pacer.lock:
                flush()

        def flush() -> None:
            for item in waiting:
                observer.on_next(item)
            waiting.clear()

        return on_next, flush

    return start


def test_flushing_flushes_before_the_end_and_disposes_the_timer() -> None:
    scheduler = TestScheduler()
    fired: list[float] = []
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(150, "b"), on_completed(160))
    results = scheduler.start(lambda: xs.pipe(flushing(delaying(fired))))
    assert results.messages == [on_next(310, "a"), on_next(360, "b"), on_completed(360)]
    assert fired == [310]  # the timer due at 450 was disposed with the end


def test_flushing_flushes_before_an_error_too() -> None:
    scheduler = TestScheduler()
    broken = ConnectionError("lost")
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_error(20, broken))
    results = scheduler.start(lambda: xs.pipe(flushing(delaying([]))))
    assert results.messages == [on_next(220, "a"), on_error(220, broken)]
