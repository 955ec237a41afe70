"""Load on the scripted server: many streams at once, and many one after another.

Shared by the bounded CI test (``test_load.py``) and the figures script
(``bench/load.py``). ``concurrent_streams(n)`` holds ``n`` ``astream`` calls of one
``ChatOpenAI`` calls open at once (every reply waits until all ``n`` connections are
open), then lets them finish; ``sequential_streams(n)`` makes ``n`` sync ``stream`` calls one
after the other. Both check every text, and report time, memory and what was left open.

Memory is the process's resident set (``VmRSS``), client and server together, so the
per-stream figure is an upper bound for the client alone; ``traced`` is what Python
allocated (``tracemalloc``), when asked for.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
import tracemalloc
from dataclasses import dataclass, field

from rxllm.llms import ChatOpenAI
from rxllm.testing import LeakError, LeakTracker
from tests.servers.scripted import Recorded, Reply, ScriptedServer, Until
from tests.servers.wire import openai_chat

__all__ = ["Figures", "concurrent_streams", "rss", "sequential_streams"]

CHUNKS = 20


def rss() -> int:
    """The resident set size of this process, in bytes (0 where it is not known)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class Figures:
    """What one load run measured."""

    streams: int
    completed: int = 0
    seconds: float = 0.0
    #: Connections open at once on the server, at the peak.
    peak_connections: int = 0
    #: Resident memory before, at the peak (all streams open) and after the run.
    rss_before: int = 0
    rss_peak: int = 0
    rss_after: int = 0
    #: Python allocations (tracemalloc) sampled along the way: (streams done, bytes).
    traced: list[tuple[int, int]] = field(default_factory=list)
    leaked: str = ""

    @property
    def per_stream(self) -> float:
        """Resident bytes per open stream, at the peak."""
        return (self.rss_peak - self.rss_before) / max(1, self.streams)


def texts(prompt: str) -> list[str]:
    return [f"{prompt}.{i} " for i in range(CHUNKS)]


def expected(prompt: str) -> str:
    return "".join(texts(prompt))


def _prompt(request: Recorded) -> str:
    content: str = json.loads(request.body)["messages"][-1]["content"]
    return content


async def concurrent_streams(n: int, *, models: int = 10, hold: float = 60.0) -> Figures:
    """``n`` concurrent ``astream`` calls, all open at once, spread over ``models`` models.

    Ten models by default, so that each keeps its default ``max_connections`` (100);
    ``models=1`` runs them all through one model with ``max_connections=n``.
    """
    figures = Figures(n)
    gc.collect()
    tracker = LeakTracker(settle=10).start()
    figures.rss_before = rss()
    with ScriptedServer() as server:
        peak: list[int] = []

        def all_open() -> bool:
            if server.open_connections >= n:
                if not peak:
                    peak.append(rss())
                return True
            return False

        def respond(request: Recorded) -> Reply:
            events = openai_chat(texts(_prompt(request)))
            return Reply(body=[events[0], events[1], Until(all_open, hold, every=0.1), *events[2:]])

        server.respond = respond
        server.record = False
        url = f"{server.url}/v1"
        if models == 1:
            # httpx's default pool opens at most 100 connections; one model needs n.
            pool = [ChatOpenAI(base_url=url, max_connections=n, timeout=hold + 30)]
        else:
            pool = [ChatOpenAI(base_url=url) for _ in range(models)]

        async def one(index: int) -> bool:
            prompt = f"s{index}"
            model = pool[index % len(pool)]
            got = [chunk.content async for chunk in model.astream(prompt)]
            return "".join(got) == expected(prompt)

        started = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(n)))
        figures.seconds = time.perf_counter() - started
        figures.completed = sum(results)
        figures.peak_connections = server.peak_connections
        figures.rss_peak = peak[0] if peak else rss()
        for model in pool:
            await model.aclose()
        deadline = time.monotonic() + 10
        # A counter kept by the server's thread: there is no event to wait on.
        while server.open_connections and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        pool.clear()
    try:
        await tracker.acheck()
    except LeakError as error:
        figures.leaked = str(error)
    figures.rss_after = rss()
    return figures


def sequential_streams(
    n: int, *, warmup: int = 100, samples: int = 10, trace: bool = True, unique: bool = True
) -> Figures:
    """``n`` sync ``stream`` calls, one after another, on one model and connection.

    With ``trace``, Python's allocations are sampled ``samples`` times once ``warmup``
    calls have filled the caches: a flat series means nothing is kept per call. One
    cache fills slowly: pydantic-core's ``from_json`` keeps up to 16,384 short strings
    (about 1 MiB), so with ``unique`` texts (every chunk a new string, as a model's
    output is) the warm-up must be over ~820 calls of 20 chunks; ``unique=False``
    sends the same texts every time.
    """
    figures = Figures(n)
    gc.collect()
    tracker = LeakTracker(settle=10).start()
    figures.rss_before = rss()
    every = max(1, (n - warmup) // samples)
    with ScriptedServer() as server:

        def respond(request: Recorded) -> Reply:
            return Reply(body=openai_chat(texts(_prompt(request) if unique else "s")))

        server.respond = respond
        server.record = False  # the soak measures rxllm, not the server's log
        model = ChatOpenAI(base_url=f"{server.url}/v1")
        started = time.perf_counter()
        try:
            for index in range(n):
                if trace and index == warmup:
                    gc.collect()
                    tracemalloc.start()
                    figures.traced.append((index, tracemalloc.get_traced_memory()[0]))
                prompt = f"s{index}"
                text = "".join(c.content for c in model.stream(prompt))
                if text == expected(prompt if unique else "s"):
                    figures.completed += 1
                if trace and index >= warmup and (index + 1 - warmup) % every == 0:
                    gc.collect()
                    figures.traced.append((index + 1, tracemalloc.get_traced_memory()[0]))
                    figures.rss_peak = max(figures.rss_peak, rss())
        finally:
            if trace:
                tracemalloc.stop()
        figures.seconds = time.perf_counter() - started
        figures.peak_connections = server.peak_connections
        model.close()
        deadline = time.monotonic() + 10
        while server.open_connections and time.monotonic() < deadline:
            time.sleep(0.01)
    try:
        tracker.check()
    except LeakError as error:
        figures.leaked = str(error)
    figures.rss_after = rss()
    return figures
