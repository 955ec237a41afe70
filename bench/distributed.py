"""Throughput of ``rxllm.distributed`` beside a single process, against a slow local server.

What it measures: ``--calls`` chat calls, each answered by a local scripted server after
a fixed ``--latency`` with ``--chunks`` content events (so the work is I/O-bound, as with
real providers), run by the local ``abatch`` and by ``rxllm.distributed.abatch`` on a
``LocalCluster`` of 1, 2 and 4 worker processes; then the chunks/s of
``distributed.observe_batch`` beside the local ``observe_batch`` of the same calls. It
reports calls/s and chunks/s. On a 2-core machine the workers, the server and the
client share the cores, so more workers cannot show a speed-up there; the numbers say
what the cluster costs, not what a real multi-machine cluster gains.

Run from the repository root::

    python bench/distributed.py [--calls 400] [--chunks 50] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

# The repository root instead of bench/, whose name would hide the distributed package.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import reactivex  # noqa: E402
from distributed import LocalCluster  # noqa: E402
from reactivex import operators as ops  # noqa: E402

import rxllm  # noqa: E402
from bench._common import fmt, markdown_table, watchdog  # noqa: E402
from rxllm import distributed as on_dask  # noqa: E402
from tests.servers.scripted import Pause, Recorded, Reply, ScriptedServer  # noqa: E402
from tests.servers.wire import openai_chat  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--limit", type=int, default=200, help="max_concurrency")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    body = openai_chat([f" w{i}" for i in range(args.chunks)])

    def respond(request: Recorded) -> Reply:
        return Reply(body=[Pause(args.latency), *body])

    inputs = [f"prompt {i}" for i in range(args.calls)]
    rows: list[list[str]] = []
    with ScriptedServer() as server, watchdog(600):
        server.record = False
        server.respond = respond
        llm = rxllm.ChatOpenAI(base_url=f"{server.url}/v1", api_key="sk-bench", model="m")
        config = {"max_concurrency": args.limit}

        start = time.perf_counter()
        asyncio.run(llm.abatch(inputs, config))
        calls = time.perf_counter() - start
        start = time.perf_counter()
        chunks = asyncio.run(local_chunks(llm, inputs, args.limit))
        streamed = time.perf_counter() - start
        rows.append(["local", fmt(args.calls / calls), fmt(chunks / streamed)])

        for workers in args.workers:
            with LocalCluster(
                n_workers=workers, threads_per_worker=1, dashboard_address=None, host="127.0.0.1"
            ) as cluster:
                address = cluster.scheduler_address
                asyncio.run(on_dask.abatch(llm, inputs[:workers], client=address))  # warm-up
                start = time.perf_counter()
                asyncio.run(on_dask.abatch(llm, inputs, config, client=address))
                calls = time.perf_counter() - start
                start = time.perf_counter()
                chunks = asyncio.run(dask_chunks(llm, inputs, args.limit, address))
                streamed = time.perf_counter() - start
            rows.append(
                [f"dask, {workers} workers", fmt(args.calls / calls), fmt(chunks / streamed)]
            )
    print(
        f"{args.calls} calls × {args.chunks} chunks, {args.latency} s latency, "
        f"max_concurrency {args.limit}\n"
    )
    print(markdown_table(["runner", "calls/s (abatch)", "chunks/s (observe_batch)"], rows))


if __name__ == "__main__":
    main()
