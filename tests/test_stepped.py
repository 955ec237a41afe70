"""A sync consumer on the main thread steps its own loop: clock, nesting, hand-offs."""

from __future__ import annotations

import asyncio
import gc
import signal
import threading
import time

import pytest
from reactivex import operators as ops

from rxllm._runtime._loop import SteppedLoop, own_loop
from rxllm.errors import StallTimeoutError
from rxllm.llms import ChatOpenAI, FakeListLLM, FakeStreamingListLLM
from rxllm.operators import stall_timeout
from rxllm.schema import GenerationChunk
from tests.servers.scripted import Pause, Reply, ScriptedServer
from tests.servers.wire import openai_chat

from .conftest import SyncRunner, on_worker_thread


def test_only_the_main_thread_outside_a_running_loop_has_one() -> None:
    loop = own_loop()
    assert isinstance(loop, SteppedLoop)
    assert own_loop() is loop  # one for the process, reused
    assert on_worker_thread(own_loop) is None

    async def inside() -> SteppedLoop | None:
        return own_loop()

    assert asyncio.run(inside()) is None


def test_its_clock_stops_while_the_loop_does() -> None:
    loop = own_loop()
    assert loop is not None
    stopped = loop.time()
    time.sleep(0.05)
    assert loop.time() == stopped  # the consumer's own time is not the loop's
    loop.step_until(asyncio.sleep(0.01))
    assert loop.time() - stopped >= 0.009  # asyncio may fire a timer a clock tick early


def test_its_clock_never_runs_backwards_across_steps() -> None:
    loop = own_loop()
    assert loop is not None
    readings = []
    for _ in range(20):
        readings.append(loop.time())
        loop.step_until(asyncio.sleep(0))
        time.sleep(0.001)
    assert readings == sorted(readings)


@pytest.mark.parametrize("wait", ["read timeout", "stall_timeout"])
def test_a_consumer_slower_than_a_timeout_does_not_trip_it(
    server: ScriptedServer, sync_thread: SyncRunner, wait: str
) -> None:
    # A blocking read times out only while it waits; so does a stream, whatever the
    # consumer does between chunks. The server itself is quick here.
    words = [f"w{i} " for i in range(4)]
    server.script(Reply(body=openai_chat(words)))
    if wait == "read timeout":
        model = ChatOpenAI(base_url=f"{server.url}/v1", timeout=0.2)
        piped = model.pipe(ops.map(lambda chunk: chunk))
    else:
        model = ChatOpenAI(base_url=f"{server.url}/v1")
        piped = model.pipe(stall_timeout(0.2))

    def consume() -> list[str]:
        got = []
        for chunk in piped.stream("hi"):
            got.append(chunk.content)
            time.sleep(0.3)  # longer than the timeout
        return got

    assert "".join(sync_thread(consume)) == "".join(words)
    model.close()


def test_a_real_stall_still_times_out_with_the_text_so_far(server: ScriptedServer) -> None:
    server.script(Reply(body=[*openai_chat(["a", "b"])[:2], Pause(1.0)]))
    model = ChatOpenAI(base_url=f"{server.url}/v1")
    got = []
    with pytest.raises(StallTimeoutError) as caught:  # noqa: PT012 - fails mid-loop
        for chunk in model.pipe(stall_timeout(0.2)).stream("hi"):
            got.append(chunk.content)
    assert caught.value.partial == "".join(got) == "a"
    model.close()


def test_a_blocking_call_inside_an_operator_goes_to_the_library_loop() -> None:
    # The callback runs on the stepped loop, which is running: the nested call cannot
    # step it again, so it is fed by rxllm's loop thread instead, without deadlock.
    inner = FakeListLLM(responses=["inner"])
    threads: list[str] = []

    def nested(text: str) -> str:
        threads.append(threading.current_thread().name)
        return f"{text}:{inner.invoke('x')}"

    outer = FakeStreamingListLLM(responses=["a b"])
    assert list(outer.pipe(ops.map(nested)).stream("hi")) == ["a:inner", " b:inner"]
    assert threads == ["MainThread", "MainThread"]


def test_stepping_a_stream_from_inside_a_callback_of_another_is_refused() -> None:
    held = FakeStreamingListLLM(responses=["x y z"], delay=0.05).stream("hi")
    assert next(held) == "x"
    errors: list[RuntimeError] = []

    def step_the_other(text: str) -> str:
        try:
            next(held)
        except RuntimeError as error:
            errors.append(error)
        return text

    outer = FakeStreamingListLLM(responses=["a"])
    assert list(outer.pipe(ops.map(step_the_other)).stream("hi")) == ["a"]
    assert "inside a callback of another" in str(errors[0])
    assert list(outer.stream("again")) == ["a"]  # the loop is still usable


def test_two_streams_iterated_in_turn_on_one_thread() -> None:
    left = FakeStreamingListLLM(responses=["a b c"], delay=0.001)
    right = FakeStreamingListLLM(responses=["1 2 3"], delay=0.001)
    pairs = list(zip(left.stream("x"), right.stream("y"), strict=True))
    assert pairs == [("a", "1"), (" b", " 2"), (" c", " 3")]
    assert left.calls.completed == right.calls.completed == 1


def test_a_stream_begun_on_the_main_thread_is_refused_elsewhere() -> None:
    llm = FakeStreamingListLLM(responses=["a b c d"], delay=0.05)
    stream = llm.stream("hi")
    assert next(stream) == "a"
    with pytest.raises(RuntimeError, match="iterated on it to the end"):
        on_worker_thread(next, stream)
    # The error ended the generator there; its call is cancelled when the loop it runs
    # on, which only the main thread runs, next runs: here, at the next blocking call
    # that runs on it (an async provider's; a sync one is called on this thread alone).
    assert FakeStreamingListLLM(responses=["next"]).invoke("x") == "next"
    assert llm.calls.in_flight == 0
    assert llm.calls.cancelled == 1


def test_an_abandoned_stream_is_closed_when_collected() -> None:
    llm = FakeStreamingListLLM(responses=["a b c d"], delay=0.05)
    stream = llm.stream("hi")
    assert next(stream) == "a"
    del stream
    gc.collect()
    assert llm.calls.in_flight == 0  # closed by the collection itself
    assert llm.calls.cancelled == 1


def test_ctrl_c_inside_a_step_waits_for_the_callback_and_cancels_the_call() -> None:
    # Raised where it lands, a KeyboardInterrupt would cut a loop callback (a provider's
    # cleanup, a hand-off to a worker) in half; the loop defers it to the end of the step.
    llm = FakeStreamingListLLM(responses=["a b c d e f"], delay=0.01)
    finished: list[str] = []

    def interrupted_midway(chunk: GenerationChunk) -> GenerationChunk:
        if chunk.text == " b":
            signal.raise_signal(signal.SIGINT)
            finished.append(chunk.text)  # still runs: the interrupt waits for the step
        return chunk

    got = []
    with pytest.raises(KeyboardInterrupt):  # noqa: PT012 - the interrupt lands mid-loop
        for text in llm.pipe(ops.map(interrupted_midway)).stream("hi"):
            got.append(text)
    assert finished == [" b"]
    assert got == ["a"]
    assert llm.calls.in_flight == 0
    assert llm.calls.cancelled == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_in_the_consumers_own_code_is_raised_there_at_once() -> None:
    llm = FakeStreamingListLLM(responses=["a b c"], delay=0.01)
    reached: list[str] = []
    with pytest.raises(KeyboardInterrupt):  # noqa: PT012 - the interrupt lands mid-loop
        for text in llm.stream("hi"):
            signal.raise_signal(signal.SIGINT)
            reached.append(text)  # not reached: raised at once, as without rxllm
    assert reached == []
    assert llm.calls.cancelled == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_a_programs_own_ctrl_c_handler_is_left_alone() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        llm = FakeStreamingListLLM(responses=["a b"], delay=0.01)

        def interrupt(chunk: GenerationChunk) -> GenerationChunk:
            signal.raise_signal(signal.SIGINT)
            return chunk

        assert list(llm.pipe(ops.map(interrupt)).stream("hi")) == ["a", " b"]
        assert seen == [signal.SIGINT, signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)
