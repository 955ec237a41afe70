"""rxllm.distributed on a real LocalCluster: two worker processes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import threading
from typing import Any

import pytest
from reactivex import operators as ops

distributed = pytest.importorskip("distributed")

import rxllm  # noqa: E402
from rxllm import distributed as rxd  # noqa: E402
from rxllm import operators  # noqa: E402
from rxllm.errors import (  # noqa: E402
    APIConnectionError,
    APIError,
    EventTooLargeError,
    InternalServerError,
    InvalidInputError,
    ProtocolError,
)
from tests.conftest import await_until, wait_until  # noqa: E402
from tests.servers.scripted import Pause, Recorded, Reply, ScriptedServer, Until, free_port  # noqa: E402
from tests.servers.wire import openai_chat  # noqa: E402

CANARY = "sk-CANARY-d1f2e3"


def echo(request: Recorded) -> Reply:
    """Reply with the prompt's words; a prompt starting with 'fail' gets a 500."""
    prompt = request.json()["messages"][-1]["content"]
    if prompt.startswith("fail"):
        return Reply(status=500, body=[b'{"error": {"message": "no"}}'])
    return Reply(body=openai_chat(prompt.split()))


def model(server: ScriptedServer) -> rxllm.ChatOpenAI:
    return rxllm.ChatOpenAI(base_url=f"{server.url}/v1", api_key=CANARY, model="m", max_retries=0)


def test_batch_equals_the_local_batch(client: Any, server: ScriptedServer) -> None:
    server.respond = echo
    llm = model(server)
    inputs = [f"hello number {i}" for i in range(7)]
    remote = rxd.batch(llm, inputs, client=client)
    assert [m.content for m in remote] == [m.content for m in llm.batch(inputs)]
    assert remote[3].content == "hellonumber3"


async def test_abatch_by_address_keeps_errors_in_place(client: Any, server: ScriptedServer) -> None:
    server.respond = echo
    inputs = ["a b", "fail here", "c d", "fail too"]
    out = await rxd.abatch(
        model(server), inputs, client=client.scheduler.address, return_exceptions=True
    )
    assert [type(o) for o in out] == [rxllm.AIMessage, InternalServerError] * 2
    assert out[2].content == "cd"
    assert out[1].status_code == 500


def test_a_failure_without_return_exceptions_raises_its_rxllm_type(
    client: Any, server: ScriptedServer
) -> None:
    server.respond = echo
    with pytest.raises(InternalServerError) as raised:
        rxd.batch(model(server), ["a", "fail", "b"], client=client)
    assert CANARY not in str(raised.value)


def test_observe_batch_streams_chunks_in_order_per_input(
    client: Any, server: ScriptedServer
) -> None:
    server.respond = echo
    pairs = list(rxllm.iterate(rxd.observe_batch(model(server), ["x y z", "u v"], client=client)))
    texts: dict[int, str] = {}
    for index, chunk in pairs:
        texts[index] = texts.get(index, "") + chunk.content
    assert texts == {0: "xyz", 1: "uv"}


def test_batch_as_completed_yields_every_index(client: Any, server: ScriptedServer) -> None:
    server.respond = echo
    pairs = rxd.batch_as_completed(model(server), ["a", "b", "c"], client=client)
    assert sorted((i, m.content) for i, m in pairs) == [(0, "a"), (1, "b"), (2, "c")]


def test_max_concurrency_holds_over_the_cluster(client: Any, server: ScriptedServer) -> None:
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def counted(request: Recorded) -> Reply:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])

        def leave() -> bool:
            with lock:
                state["now"] -= 1
            return True

        return Reply(
            body=[*openai_chat(["a"])[:1], Pause(0.05), Until(leave), *openai_chat(["a"])[1:]]
        )

    server.respond = counted
    out = rxd.batch(model(server), ["q"] * 12, {"max_concurrency": 3}, client=client)
    assert len(out) == 12
    assert 1 <= state["peak"] <= 3


async def test_cancelling_abatch_stops_the_calls_on_the_workers(
    client: Any, server: ScriptedServer
) -> None:
    server.respond = lambda request: Reply(body=openai_chat(["a"])[:2], end="hang")
    task = asyncio.ensure_future(rxd.abatch(model(server), ["q"] * 4, client=client))
    await await_until(lambda: server.served == 4 and server.open_connections == 4, within=30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await await_until(lambda: server.open_connections == 0 and server.aborted == 4, within=30)


def test_disposing_observe_batch_stops_the_calls_on_the_workers(
    client: Any, server: ScriptedServer
) -> None:
    server.respond = lambda request: Reply(body=openai_chat(["a"])[:2], end="hang")
    stream = rxllm.iterate(rxd.observe_batch(model(server), ["q"] * 3, client=client))
    next(stream)
    wait_until(lambda: server.served == 3 and server.open_connections == 3, timeout=30)
    stream.close()
    wait_until(lambda: server.open_connections == 0 and server.aborted == 3, timeout=30)


def test_the_key_stays_out_of_task_reprs_and_keys(client: Any, server: ScriptedServer) -> None:
    server.respond = lambda request: Reply(body=openai_chat(["a"])[:2], end="hang")
    stream = rxllm.iterate(rxd.observe_batch(model(server), ["q"], client=client))
    next(stream)
    tasks = client.run_on_scheduler(
        lambda dask_scheduler: [
            (str(key), repr(state.run_spec)) for key, state in dask_scheduler.tasks.items()
        ]
    )
    stream.close()
    assert tasks
    assert all(CANARY not in key and CANARY not in spec for key, spec in tasks)


def a_lambda_of_the_test(x: str) -> str:
    return x.upper()


def test_an_importable_function_runs_and_a_lambda_is_refused(client: Any) -> None:
    assert rxd.batch(rxllm.RunnableLambda(a_lambda_of_the_test), ["a", "b"], client=client) == [
        "A",
        "B",
    ]
    with pytest.raises(InvalidInputError, match="lambda"):
        rxd.batch(rxllm.RunnableLambda(lambda x: x), ["a"], client=client)


def test_a_pipeline_of_rxllm_operators_runs_on_the_workers(
    client: Any, server: ScriptedServer
) -> None:
    server.respond = echo
    piped = model(server).pipe(
        operators.stop_on("STOP"), operators.words(), operators.map_text(str.upper)
    )
    inputs = [f"one two STOP {i}" for i in range(5)] + ["fail", "a b c"]
    remote = rxd.batch(piped, inputs, client=client, return_exceptions=True)
    local = piped.batch(inputs, return_exceptions=True)
    assert [getattr(o, "content", type(o)) for o in remote] == [
        getattr(o, "content", type(o)) for o in local
    ]
    assert remote[0].content == "ONETWO"
    streamed = list(rxllm.iterate(rxd.observe_batch(piped, ["x y z"], client=client)))
    assert [(i, c.content) for i, c in streamed] == [(0, c.content) for c in piped.stream("x y z")]


@pytest.mark.parametrize(
    ("step", "named"),
    [
        (ops.map(lambda chunk: chunk), "the operator map"),
        (operators.map_text(lambda text: text), "the operator map_text"),
        (operators.metrics(), "the operator metrics"),
        (rxllm.RunnableLambda(lambda x: x), "RunnableLambda"),
    ],
)
def test_an_unpicklable_step_is_refused_naming_it(step: Any, named: str) -> None:
    llm = rxllm.ChatOpenAI(base_url="http://127.0.0.1:1/v1", api_key=CANARY, model="m")
    piped = llm.pipe(operators.words(), step)
    pattern = f"^step 3 of Pipeline.*, {named}.*, cannot be"
    with pytest.raises(InvalidInputError, match=pattern) as raised:
        rxd.batch(piped, ["a"], client="tcp://127.0.0.1:1")
    assert CANARY not in str(raised.value)


def test_a_client_that_is_not_one_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="int"):
        rxd.batch(rxllm.RunnableLambda(a_lambda_of_the_test), ["a"], client=42)


@pytest.mark.parametrize(
    "error",
    [
        APIError("boom", status_code=500, body={"e": 1}, request_id="r1", partial="so far"),
        ProtocolError("bad", line="data: {", partial="so"),
        EventTooLargeError("big", limit=10, line="data", partial="p"),
        InvalidInputError("no"),
    ],
)
def test_errors_pickle_with_their_context(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert vars(copy) == vars(error)
    assert str(copy) == str(error)
    json.dumps(str(copy))


def exit_soon() -> None:
    """Kill this worker's process a moment after replying (as a crash would)."""
    threading.Timer(0.2, os._exit, args=(1,)).start()


async def test_a_worker_killed_mid_batch_has_its_inputs_run_again(
    client: Any, server: ScriptedServer
) -> None:
    released = threading.Event()

    def gated(request: Recorded) -> Reply:
        words = request.json()["messages"][-1]["content"].split()
        events = openai_chat(words)
        return Reply(body=[*events[:2], Until(released.is_set), *events[2:]])

    server.respond = gated
    inputs = [f"w{i} x" for i in range(6)]
    task = asyncio.ensure_future(rxd.abatch(model(server), inputs, client=client))
    await await_until(lambda: server.open_connections == 6, within=30)
    victim = sorted(client.nthreads())[0]
    client.run(exit_soon, workers=[victim])
    await await_until(lambda: server.open_connections <= 3, within=30)
    released.set()
    outputs = await task
    assert [o.content for o in outputs] == [f"w{i}x" for i in range(6)]


def test_an_unreachable_scheduler_is_a_connection_error() -> None:
    import dask

    with (
        dask.config.set({"distributed.comm.timeouts.connect": "0.5s"}),
        pytest.raises(APIConnectionError, match="Dask scheduler"),
    ):
        rxd.batch(
            rxllm.RunnableLambda(a_lambda_of_the_test),
            ["a"],
            client=f"tcp://127.0.0.1:{free_port()}",
        )


def test_twins_take_the_same_parameters() -> None:
    import inspect

    def parameters(func: Any) -> list[inspect.Parameter]:
        return list(inspect.signature(func).parameters.values())

    assert parameters(rxd.batch) == parameters(rxd.abatch) == parameters(rxd.observe_batch)
    assert parameters(rxd.batch_as_completed) == parameters(rxd.abatch_as_completed)
    assert parameters(rxd.batch) == parameters(rxd.batch_as_completed)


async def test_the_scheduler_going_away_mid_batch_is_a_connection_error(
    server: ScriptedServer,
) -> None:
    import dask

    server.respond = lambda request: Reply(body=openai_chat(["a"])[:2], end="hang")
    cluster = await distributed.LocalCluster(
        n_workers=1,
        processes=False,
        asynchronous=True,
        protocol="tcp://",
        dashboard_address="127.0.0.1:0",  # a free port: 8787 may be taken
        host="127.0.0.1",
    )
    try:
        task = asyncio.ensure_future(
            rxd.abatch(model(server), ["q"] * 3, client=cluster.scheduler_address)
        )
        await await_until(lambda: server.open_connections == 3, within=30)
        await cluster.scheduler.close()
        with pytest.raises(APIConnectionError, match="scheduler"):
            await asyncio.wait_for(task, 20)  # Dask's client would try to reconnect for 30 s
        # The worker, cut off from its batch's cancel Event, stops the calls.
        await await_until(lambda: server.open_connections == 0, within=30)
    finally:
        # Closing tells the (dead) scheduler first, for as long as this allows.
        with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
            await cluster.close()


def _scheduler_leftovers(dask_scheduler: Any) -> dict[str, Any]:
    return {
        "tasks": [str(key) for key in dask_scheduler.tasks if "rxllm" in str(key)],
        "topics": [name for name in dask_scheduler._broker._topics if "rxllm" in name],
        "events": [name for name in dask_scheduler.extensions["events"]._events],
        "clients": len(dask_scheduler.clients),
    }


async def _worker_leftovers(dask_worker: Any) -> dict[str, Any]:
    # HTTP connections are counted by the server, which sees every one a worker opens.
    ours = ("rxllm", "httpx", "httpcore", "anyio")
    return {
        "tasks": [str(key) for key in dask_worker.state.tasks if "rxllm" in str(key)],
        "coroutines": [
            repr(task.get_coro())
            for task in asyncio.all_tasks()
            if any(name in repr(task.get_coro()) for name in ours)
        ],
    }


def test_a_thousand_inputs_leave_nothing_open(client: Any, server: ScriptedServer) -> None:
    server.respond = echo
    server.record = False
    llm = model(server)
    config = {"max_concurrency": 100}

    def leftovers() -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        handlers = [topic for topic in client._event_handlers if "rxllm" in topic]
        futures = [str(key) for key in client.futures if "rxllm" in str(key)]
        workers = client.run(_worker_leftovers)
        return client.run_on_scheduler(_scheduler_leftovers), workers, handlers + futures

    rxd.batch(llm, ["warm up"] * 10, config, client=client)
    wait_until(lambda: server.open_connections == 0, timeout=30)
    scheduler_before, _, _ = leftovers()
    threads = threading.active_count()

    inputs = [f"call {i}" for i in range(1000)]
    outputs = rxd.batch(llm, inputs, config, client=client)

    assert [o.content for o in outputs] == [f"call{i}" for i in range(1000)]
    assert server.served == 1010
    wait_until(lambda: server.open_connections == 0, timeout=30)
    scheduler, workers, on_client = leftovers()
    assert scheduler == {
        "tasks": [],
        "topics": [],
        "events": [],
        "clients": scheduler_before["clients"],
    }
    assert list(workers.values()) == [{"tasks": [], "coroutines": []}] * 2
    assert on_client == []
    assert threading.active_count() <= threads
