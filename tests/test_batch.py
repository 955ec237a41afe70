"""batch, abatch and their as-completed twins: concurrency limit, order, exceptions."""

from __future__ import annotations

import pytest

from rxllm import InvalidInputError
from rxllm.llms import FakeListLLM, FakeStreamingListLLM

from .conftest import Resources


def numbered(count: int, delay: float | None = 0.01) -> FakeStreamingListLLM:
    return FakeStreamingListLLM(responses=[f"reply {i}" for i in range(count)], delay=delay)


@pytest.mark.parametrize("limit", [1, 3, 8])
def test_batch_respects_max_concurrency_and_keeps_order(limit: int) -> None:
    llm = numbered(20)
    results = llm.batch([f"q{i}" for i in range(20)], {"max_concurrency": limit})
    assert llm.calls.started == 20
    assert llm.calls.max_in_flight <= limit
    assert llm.calls.max_in_flight == limit  # the limit is also reached: real parallelism
    assert sorted(results) == sorted(f"reply {i}" for i in range(20))
    # each input's own reply, in input order (replies are handed out in call order)
    assert [llm.calls.inputs.index(f"q{i}") for i in range(20)] == [
        int(str(r).split()[1]) for r in results
    ]


@pytest.mark.parametrize("limit", [1, 4])
async def test_abatch_respects_max_concurrency(limit: int) -> None:
    llm = numbered(12)
    results = await llm.abatch([f"q{i}" for i in range(12)], {"max_concurrency": limit})
    assert llm.calls.max_in_flight == limit
    assert len(results) == 12


def test_batch_without_limit_runs_all_at_once() -> None:
    llm = numbered(10, delay=0.02)
    llm.batch([f"q{i}" for i in range(10)])
    assert llm.calls.max_in_flight == 10


def test_non_streaming_model_batches_on_the_worker_pool() -> None:
    llm = FakeListLLM(responses=["r"], delay=0.02)
    assert llm.batch(["a", "b", "c", "d"], {"max_concurrency": 2}) == ["r"] * 4
    assert llm.calls.max_in_flight == 2


class Picky(FakeStreamingListLLM):
    """Fails on the input "bad", answers everything else."""

    async def _astream(self, prompt, stop=None, **kwargs):  # type: ignore[no-untyped-def]
        if prompt == "bad":
            raise ValueError("bad input")
        async for chunk in super()._astream(prompt, stop, **kwargs):
            yield chunk


def test_return_exceptions_loses_no_result() -> None:
    llm = Picky(responses=["ok"])
    results = llm.batch(["a", "bad", "c"], return_exceptions=True)
    assert results[0] == "ok"
    assert isinstance(results[1], ValueError)
    assert results[2] == "ok"


def test_without_return_exceptions_the_first_failure_raises_and_cancels_the_rest() -> None:
    llm = Picky(responses=["ok " * 50], delay=0.01)
    with pytest.raises(ValueError, match="bad input"):
        llm.batch(["a", "bad", "c"])
    assert llm.calls.started >= 1
    assert llm.calls.cancelled == llm.calls.started  # the failing input is not tracked
    assert llm.calls.completed == 0


async def test_abatch_return_exceptions() -> None:
    results = await Picky(responses=["ok"]).abatch(["bad", "x"], return_exceptions=True)
    assert isinstance(results[0], ValueError)
    assert results[1] == "ok"


def test_batch_as_completed_yields_index_output_pairs_as_they_finish() -> None:
    class Slow(FakeStreamingListLLM):
        async def _astream(self, prompt, stop=None, **kwargs):  # type: ignore[no-untyped-def]
            import asyncio

            await asyncio.sleep(0.2 if prompt == "slow" else 0)
            async for chunk in super()._astream(prompt, stop, **kwargs):
                yield chunk

    pairs = list(Slow(responses=["r"]).batch_as_completed(["slow", "fast"]))
    assert pairs == [(1, "r"), (0, "r")]


async def test_abatch_as_completed() -> None:
    llm = numbered(3, delay=None)
    pairs = [pair async for pair in llm.abatch_as_completed(["a", "b", "c"])]
    assert sorted(index for index, _ in pairs) == [0, 1, 2]


def test_per_input_configs_must_match_inputs() -> None:
    with pytest.raises(InvalidInputError, match="2 configs for 3 inputs"):
        numbered(1).batch(["a", "b", "c"], [{}, {}])


def test_a_bad_input_fails_the_batch_before_any_call() -> None:
    llm = numbered(1)
    with pytest.raises(InvalidInputError):
        llm.batch(["fine", 42])  # type: ignore[list-item]
    assert llm.calls.started == 0


def test_with_return_exceptions_a_bad_input_takes_its_place_and_makes_no_call() -> None:
    llm = numbered(2, delay=None)
    results = llm.batch(["a", 42, " \n", "b"], return_exceptions=True)  # type: ignore[list-item]
    assert [type(r) for r in results] == [str, InvalidInputError, InvalidInputError, str]
    assert "empty or blank" in str(results[2])
    assert llm.calls.started == 2


def test_empty_batch() -> None:
    assert numbered(1).batch([]) == []


def test_batch_leaves_nothing_behind(resources: Resources) -> None:
    llm = numbered(50, delay=None)
    for _ in range(5):
        llm.batch([f"q{i}" for i in range(50)], {"max_concurrency": 10})
    assert llm.calls.in_flight == 0
    assert resources.new_threads() <= {f"rxllm-worker_{i}" for i in range(16)}
