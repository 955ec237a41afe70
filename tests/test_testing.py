"""rxllm.testing: a marble-scripted model in virtual time; the module's own examples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler

from rxllm.testing import MarbleLLM

on_next, on_completed, on_error = (
    ReactiveTest.on_next,
    ReactiveTest.on_completed,
    ReactiveTest.on_error,
)


def test_marble_model_emits_on_the_virtual_clock() -> None:
    scheduler = TestScheduler()
    llm = MarbleLLM(marbles="-a-b--c|", values={"a": "Hel", "b": "lo", "c": "!"}, timespan=10)
    results = scheduler.start(lambda: llm.observe("hi").pipe(ops.map(lambda c: c.text)))
    assert results.messages == [
        on_next(210, "Hel"),
        on_next(230, "lo"),
        on_next(260, "!"),
        on_completed(270),
    ]
    assert (llm.calls.started, llm.calls.completed, llm.calls.inputs) == (1, 1, ["hi"])


def test_marble_model_errors_and_records_the_failure() -> None:
    scheduler = TestScheduler()
    boom = ValueError("boom")
    llm = MarbleLLM(marbles="-a#", error=boom, timespan=10)
    results = scheduler.start(lambda: llm.observe("hi").pipe(ops.map(lambda c: c.text)))
    assert results.messages == [on_next(210, "a"), on_error(220, boom)]
    assert llm.calls.failed == 1


def test_disposal_before_the_end_is_recorded_as_cancellation() -> None:
    scheduler = TestScheduler()
    llm = MarbleLLM(marbles="-a-b-c-d|", timespan=10)
    results = scheduler.start(
        lambda: llm.observe("hi").pipe(ops.map(lambda c: c.text)), disposed=235
    )
    assert [m.value.value for m in results.messages] == ["a", "b"]
    assert llm.calls.cancelled == 1


def test_take_in_virtual_time_cancels_the_call() -> None:
    scheduler = TestScheduler()
    llm = MarbleLLM(marbles="-a-b-c-d|", timespan=10)
    scheduler.start(lambda: llm.observe("hi").pipe(ops.take(2)))
    assert llm.calls.cancelled == 1
    assert llm.calls.completed == 0


def test_the_modules_examples_pass_when_run_alone() -> None:
    """Alone, ``assert_no_leaks``'s example runs the process's first sync stream, which
    makes the main thread's stepped loop: that loop is rxllm's, not a leak. In the full
    suite an earlier test has made it already, so only a run of its own shows this."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "rxllm/testing.py"],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
