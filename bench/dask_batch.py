"""``rxllm.distributed`` beside one process: throughput, CPU-heavy pipelines, chunk latency.

Four measurements, each against a local scripted chat server running in a process of
its own (so it never shares an interpreter with the runner it serves):

1. I/O-bound calls: ``--calls`` calls, each answered after ``--latency`` seconds with
   ``--chunks`` content events, by the local ``abatch`` and ``rxllm.distributed.abatch``
   on a ``LocalCluster`` of 1, 2 and 4 worker processes (calls/s), and the chunks/s of
   ``distributed.observe_batch`` beside a local merge of the same calls.
2. CPU-heavy pipelines: ``llm.pipe(partial_json())`` over a streamed JSON document and
   ``llm.pipe(words())`` over a streamed text, answered at once, run by one process and
   by 1 and 2 workers (calls/s, and the speed-up over one process).
3. Chunk latency added by the cluster: a model wrapped so that each chunk carries the
   worker's clock when the model emitted it; the client notes when it receives the
   chunk from ``observe_batch``. Median and 90th percentile, calls paced by the server.
4. Transport: pushing pickled chunk groups from 2 workers to the client through
   ``Worker.log_event`` (what ``rxllm.distributed`` uses) or a ``distributed.Queue``,
   as fast as each goes (groups/s, median latency).

On a 2-core machine the workers, the server and the client share the cores: speed-ups
there say how well the work spreads over processes, not what more machines gain.

Run from the repository root::

    python bench/dask_batch.py [--quick] [--only io cpu latency transport]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import pickle
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import distributed  # noqa: E402
import reactivex  # noqa: E402
from distributed import LocalCluster  # noqa: E402
from reactivex import Observable  # noqa: E402
from reactivex import operators as ops  # noqa: E402

import rxllm  # noqa: E402
from bench._common import fmt, markdown_table, watchdog  # noqa: E402
from rxllm import distributed as on_dask  # noqa: E402
from rxllm.config import RunConfig  # noqa: E402
from rxllm.operators import partial_json, words  # noqa: E402
from rxllm.runnable import Runnable  # noqa: E402
from tests.servers.scripted import Pause, Recorded, Reply, ScriptedServer  # noqa: E402
from tests.servers.wire import openai_chat  # noqa: E402

#: A JSON document streamed in small pieces, as a model writes structured output.
JSON_PIECES = ['{"items": ['] + [f'{{"id": {i}, "name": "item {i}"}}, ' for i in range(150)]
JSON_PIECES[-1] = JSON_PIECES[-1].rstrip(", ") + "]}"
TEXT_PIECES = [f"word{i} " if i % 3 else f"wo{i}" for i in range(300)]


class Stamped(Runnable[Any, Any, Any]):
    """A model whose chunks come out as ``(time.time(), chunk)``: the clock of the
    process that runs it, when the chunk left the model."""

    def __init__(self, model: Runnable[Any, Any, Any]) -> None:
        self.model = model

    def _observe(self, input: Any, config: RunConfig, **kwargs: Any) -> Observable[Any]:
        return self.model.observe(input, config, **kwargs).pipe(
            ops.map(lambda chunk: (time.time(), chunk))
        )


def _serve(pipe: Any, latency: float, pace: float, chunks: int) -> None:
    """Serve chat streams until told to stop; the prompt's first word picks the reply."""
    io_body = openai_chat([f" w{i}" for i in range(chunks)])
    # Written in one piece, so the server's cost per call is small beside the client's.
    json_body = [b"".join(openai_chat(JSON_PIECES))]
    text_body = [b"".join(openai_chat(TEXT_PIECES))]
    paced_body: list[bytes | Pause] = []
    for event in openai_chat([f" w{i}" for i in range(chunks)]):
        paced_body += [event, Pause(pace)]

    def respond(request: Recorded) -> Reply:
        kind = request.json()["messages"][-1]["content"].split()[0]
        if kind == "json":
            return Reply(body=list(json_body))
        if kind == "text":
            return Reply(body=list(text_body))
        if kind == "paced":
            return Reply(body=list(paced_body))
        return Reply(body=[Pause(latency), *io_body])

    with ScriptedServer() as server:
        server.record = False
        server.respond = respond
        pipe.send(server.url)
        pipe.recv()


def cluster(workers: int) -> LocalCluster:
    return LocalCluster(
        n_workers=workers, threads_per_worker=1, dashboard_address="127.0.0.1:0", host="127.0.0.1"
    )


def timed(run: Any) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


# -- 1. I/O-bound calls ----------------------------------------------------------------


async def local_chunks(llm: rxllm.ChatOpenAI, inputs: list[str], limit: int) -> int:
    calls = reactivex.from_iterable([llm.observe(x) for x in inputs])
    count = 0
    async for group in rxllm.aiterate_batches(calls.pipe(ops.merge(max_concurrent=limit))):
        count += len(group)
    return count


async def dask_chunks(llm: rxllm.ChatOpenAI, inputs: list[str], limit: int, address: str) -> int:
    pairs = on_dask.observe_batch(llm, inputs, {"max_concurrency": limit}, client=address)
    count = 0
    async for group in rxllm.aiterate_batches(pairs):
        count += len(group)
    return count


def io_bound(llm: rxllm.ChatOpenAI, args: argparse.Namespace) -> str:
    inputs = [f"io {i}" for i in range(args.calls)]
    config = {"max_concurrency": args.limit}
    rows: list[list[str]] = []
    start = time.perf_counter()
    asyncio.run(llm.abatch(inputs, config))
    calls = time.perf_counter() - start
    start = time.perf_counter()
    chunks = asyncio.run(local_chunks(llm, inputs, args.limit))
    streamed = time.perf_counter() - start
    rows.append(["one process", fmt(args.calls / calls), fmt(chunks / streamed)])
    for workers in args.workers:
        with cluster(workers) as local:
            address = local.scheduler_address
            asyncio.run(on_dask.abatch(llm, inputs[:workers], client=address))  # warm-up
            start = time.perf_counter()
            asyncio.run(on_dask.abatch(llm, inputs, config, client=address))
            calls = time.perf_counter() - start
            start = time.perf_counter()
            chunks = asyncio.run(dask_chunks(llm, inputs, args.limit, address))
            streamed = time.perf_counter() - start
        rows.append([f"Dask, {workers} workers", fmt(args.calls / calls), fmt(chunks / streamed)])
    head = (
        f"I/O-bound: {args.calls} calls × {args.chunks} chunks, {args.latency} s latency, "
        f"max_concurrency {args.limit}\n\n"
    )
    return head + markdown_table(["runner", "calls/s (abatch)", "chunks/s (observe_batch)"], rows)


# -- 2. CPU-heavy pipelines ------------------------------------------------------------


def cpu_heavy(llm: rxllm.ChatOpenAI, args: argparse.Namespace) -> str:
    pipelines = {
        "partial_json()": (llm.pipe(partial_json()), "json"),
        "words()": (llm.pipe(words()), "text"),
    }
    config = {"max_concurrency": args.cpu_limit}
    times: dict[tuple[str, str], list[float]] = {}
    with cluster(1) as one, cluster(2) as two:
        runners = {
            "one process": None,
            "Dask, 1 worker": one.scheduler_address,
            "Dask, 2 workers": two.scheduler_address,
        }
        # Rounds interleave the runners, so a burst of load elsewhere hits them alike.
        for _ in range(args.rounds):
            for name, (pipeline, kind) in pipelines.items():
                inputs = [f"{kind} {i}" for i in range(args.cpu_calls)]
                for runner, address in runners.items():
                    if address is None:
                        batch = pipeline.abatch(inputs, config)
                    else:
                        batch = on_dask.abatch(pipeline, inputs, config, client=address)
                    start = time.perf_counter()
                    asyncio.run(batch)
                    times.setdefault((name, runner), []).append(time.perf_counter() - start)
        # A batch's own cost: one call of a function, no model, no server.
        nothing = rxllm.RunnableLambda(str)
        fixed = {
            runner: min(
                timed(lambda a=address: asyncio.run(on_dask.abatch(nothing, [""], client=a)))
                for _ in range(args.rounds)
            )
            for runner, address in runners.items()
            if address is not None
        }
    rows = []
    for runner in runners:
        row = [runner]
        for name in pipelines:
            rate = args.cpu_calls / min(times[name, runner])
            base = args.cpu_calls / min(times[name, "one process"])
            row.append(f"{fmt(rate)} ({rate / base:.2f}×)")
        row.append(f"{1000 * fixed[runner]:.0f}" if runner in fixed else "")
        rows.append(row)
    head = (
        f"CPU-heavy: {args.cpu_calls} calls answered at once, max_concurrency "
        f"{args.cpu_limit}; partial_json over {len(JSON_PIECES)} JSON pieces, words over "
        f"{len(TEXT_PIECES)} text pieces; best of {args.rounds} interleaved rounds\n\n"
    )
    header = ["runner", *(f"calls/s, {n}" for n in pipelines), "ms, a 1-call batch"]
    return head + markdown_table(header, rows)


# -- 3. Chunk latency --------------------------------------------------------------------


async def latencies(source: Observable[Any], index: bool) -> list[float]:
    seen: list[float] = []
    async for item in rxllm.aiterate(source):
        stamp, _ = item[1] if index else item
        seen.append(time.time() - stamp)
    return seen


def latency(llm: rxllm.ChatOpenAI, args: argparse.Namespace) -> str:
    from bench.dask_batch import Stamped  # by its importable name, for the workers

    stamped = Stamped(llm)
    inputs = [f"paced {i}" for i in range(args.paced_calls)]
    merged = reactivex.from_iterable([stamped.observe(x) for x in inputs]).pipe(ops.merge_all())
    rows = []
    local = asyncio.run(latencies(merged, False))
    with cluster(2) as two:
        address = two.scheduler_address
        asyncio.run(on_dask.abatch(rxllm.RunnableLambda(str), ["warm"], client=address))
        remote = asyncio.run(
            latencies(on_dask.observe_batch(stamped, inputs, client=address), True)
        )
    for runner, seen in (("one process", local), ("Dask, 2 workers", remote)):
        ms = sorted(1000 * s for s in seen)
        rows.append([runner, str(len(ms)), fmt(statistics.median(ms)), fmt(ms[int(0.9 * len(ms))])])
    head = (
        f"Chunk latency: {args.paced_calls} concurrent calls of {args.chunks} chunks, one "
        f"every {args.pace * 1000:.0f} ms; from the chunk leaving the model to its receipt\n\n"
    )
    return head + markdown_table(["runner", "chunks", "median ms", "p90 ms"], rows)


# -- 4. Transport ------------------------------------------------------------------------


async def push_log_event(topic: str, groups: int, size: int) -> None:
    worker = distributed.get_worker()
    for i in range(groups):
        worker.log_event(topic, pickle.dumps((time.time(), [f"chunk{i}"] * size)))
        if i % 20 == 0:
            await asyncio.sleep(0)


async def push_queue(name: str, groups: int, size: int) -> None:
    queue = distributed.Queue(name)
    for i in range(groups):
        await queue.put(pickle.dumps((time.time(), [f"chunk{i}"] * size)))


async def transport_run(address: str, how: str, groups: int, size: int) -> tuple[float, float]:
    async with distributed.Client(address, asynchronous=True) as client:
        workers = sorted(await client.nthreads())
        total = groups * len(workers)
        seen: list[float] = []
        start = time.perf_counter()
        if how == "log_event":
            topic, done = f"bench-{uuid.uuid4().hex}", asyncio.Event()

            def on_event(event: tuple[float, bytes]) -> None:
                seen.append(time.time() - pickle.loads(event[1])[0])
                if len(seen) == total:
                    done.set()

            client.subscribe_topic(topic, on_event)
            futures = [
                client.submit(push_log_event, topic, groups, size, workers=[w], pure=False)
                for w in workers
            ]
            await done.wait()
        else:
            name = f"bench-{uuid.uuid4().hex}"
            queue = await distributed.Queue(name, client=client)
            futures = [
                client.submit(push_queue, name, groups, size, workers=[w], pure=False)
                for w in workers
            ]
            while len(seen) < total:
                for item in [await queue.get(), *await queue.get(batch=True)]:
                    seen.append(time.time() - pickle.loads(item)[0])
        elapsed = time.perf_counter() - start
        await client.gather(futures)
        return total / elapsed, 1000 * statistics.median(seen)


def transport(args: argparse.Namespace) -> str:
    rows = []
    with cluster(2) as two:
        for how in ("log_event", "Queue"):
            best = max(
                asyncio.run(transport_run(two.scheduler_address, how, args.groups, 10))
                for _ in range(args.rounds)
            )
            rows.append([how, fmt(best[0]), fmt(best[0] * 10), fmt(best[1])])
    head = (
        f"Transport: 2 workers each push {args.groups} pickled groups of 10 chunks as fast "
        f"as they can; best of {args.rounds}\n\n"
    )
    return head + markdown_table(
        ["channel", "groups/s", "chunks/s", "median latency ms (flooded)"], rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--limit", type=int, default=200, help="max_concurrency")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--cpu-calls", type=int, default=200)
    parser.add_argument("--cpu-limit", type=int, default=50, help="max_concurrency, CPU-heavy")
    parser.add_argument("--paced-calls", type=int, default=20)
    parser.add_argument("--pace", type=float, default=0.02, help="seconds between chunks")
    parser.add_argument("--groups", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument(
        "--only", nargs="+", default=["io", "cpu", "latency", "transport"],
        choices=["io", "cpu", "latency", "transport"],
    )  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.calls, args.cpu_calls, args.paced_calls, args.groups = 40, 20, 4, 200
        args.workers, args.rounds = [1, 2], 1
    load = os.getloadavg()
    here, there = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(there, args.latency, args.pace, args.chunks), daemon=True
    )
    server.start()
    url = here.recv()
    sections = []
    try:
        with watchdog(1800):
            llm = rxllm.ChatOpenAI(base_url=f"{url}/v1", api_key="sk-bench", model="m")
            if "io" in args.only:
                sections.append(io_bound(llm, args))
            if "cpu" in args.only:
                sections.append(cpu_heavy(llm, args))
            if "latency" in args.only:
                sections.append(latency(llm, args))
            if "transport" in args.only:
                sections.append(transport(args))
    finally:
        here.send("stop")
        server.join(10)
    print("\n\n".join(sections))
    print(f"\n{os.cpu_count()} cores; load average before: {load}, after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
