"""End-to-end streaming cost of rxllm's OpenAI providers beside httpx, httpx-sse, the openai
SDK, langchain-openai and litellm, against one local OpenAI-compatible server.

What it measures: every client streams the same responses from ``_server.py`` (a bare
asyncio server in its own process that writes pre-rendered SSE bytes, so it costs next to
nothing), and each run counts the chunks that carry text, as a user printing the tokens
would. Four workloads:

- ``1 chunk``: calls whose reply is one token, so the cost is the per-request overhead
  (µs per call);
- ``100`` and ``2,000``: streams of that many tokens (µs per chunk);
- ``200 × 200``: 200 concurrent streams of 200 tokens each, with ``asyncio.gather``
  (async clients only; µs per chunk, all chunks of all streams).

The reference is raw httpx with a hand-written SSE loop that JSON-parses every event, the
practical limit for a Python client; each client is compared with the reference of its
kind (sync with ``httpx.Client``, async with ``httpx.AsyncClient``; the same endpoint).
``httpx, bytes only`` reads the response without parsing it: it shows what the server and
the HTTP layer cost, and checks that the server is not the bottleneck.

How: every candidate runs once to warm up, then all candidates of a workload run in turn
(A B C … A B C …) for ``--rounds`` rounds, so the noise of a shared machine hits them
alike. A candidate's ratio is the median over rounds of its time divided by its
reference's time in the same round (lower is better). For the 2,000-token streams the
table also gives µs/chunk, chunks/s, the time to the first text chunk and the peak of
Python memory allocated during one stream (``tracemalloc``, measured in a separate pass,
since tracing slows everything down). A run that takes over ``--timeout`` seconds dumps
every thread's stack and exits with status 1.

Run from the repository root::

    pip install -e . -r bench/requirements.txt
    python bench/providers.py              # 7 rounds (a few minutes)
    python bench/providers.py --quick      # smoke test: 2 rounds, fewer calls

The table is printed and written, as markdown with the versions and the command, to
``bench/results/providers.md`` (``--output`` to change). ``--only rxllm`` (a substring of
the client's name, repeatable) keeps the references and the matching clients.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
import warnings
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

# litellm fetches its model cost map from GitHub at import unless told to use its copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx  # noqa: E402
import httpx_sse  # noqa: E402
import langchain_openai  # noqa: E402
import openai  # noqa: E402
from _common import fmt, markdown_table, publish, versions, watchdog  # noqa: E402
from reactivex import operators as ops  # noqa: E402

import rxllm  # noqa: E402

try:
    import litellm
except ImportError:  # optional: the table leaves it out
    litellm = None

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "providers.md"
PROMPT = "Say hi"
MESSAGES = [{"role": "user", "content": PROMPT}]
MODEL = "bench"
KEY = "sk-bench"  # the local server ignores it; the SDKs insist on one

Kind = Literal["sync", "async"]
Endpoint = Literal["chat", "completions"]
Result = tuple[int, float]  # (text chunks received, seconds to the first one)


# --------------------------------------------------------------------------------------
# The server, in its own process.


@contextmanager
def local_server() -> Iterator[str]:
    """Start ``_server.py`` and yield its base URL (``http://127.0.0.1:PORT/v1``)."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "_server.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"the bench server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[-1])}/v1"
    finally:
        process.terminate()
        process.wait(10)


# --------------------------------------------------------------------------------------
# Consuming a stream: count the chunks with text, note when the first one came.


def drain(items: Iterable[Any], text_of: Callable[[Any], Any], start: float) -> Result:
    count = 0
    first = 0.0
    for item in items:
        if text_of(item):
            if not count:
                first = time.perf_counter() - start
            count += 1
    return count, first


async def adrain(items: AsyncIterable[Any], text_of: Callable[[Any], Any], start: float) -> Result:
    count = 0
    first = 0.0
    async for item in items:
        if text_of(item):
            if not count:
                first = time.perf_counter() - start
            count += 1
    return count, first


def chat_text(chunk: Any) -> Any:
    """The text of an openai SDK / litellm chat chunk (the usage chunk has no choices)."""
    return chunk.choices and chunk.choices[0].delta.content


def completion_text(chunk: Any) -> Any:
    return chunk.choices and chunk.choices[0].text


def event_text(event: dict[str, Any]) -> Any:
    """A chat model's stream event's text; other events count as nothing."""
    return event["event"] == "on_chat_model_stream" and event["data"]["chunk"].content


def message_text(chunk: Any) -> Any:
    return chunk.content


def same(text: str) -> str:
    return text


# --------------------------------------------------------------------------------------
# The reference: raw httpx and the shortest correct SSE loop over its bytes.


def payload_of(endpoint: Endpoint, n: int) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "max_tokens": n, "stream": True}
    if endpoint == "chat":
        body["messages"] = MESSAGES
    else:
        body["prompt"] = PROMPT
    return body


class DataLines:
    """Splits SSE bytes into the payloads of their ``data:`` lines (LF-only, as the
    server sends; enough for a reference, not a conforming decoder)."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, read: bytes) -> list[bytes]:
        self.buffer += read
        *lines, self.buffer = self.buffer.split(b"\n")
        return [line[6:] for line in lines if line.startswith(b"data: ")]


def raw_text(endpoint: Endpoint) -> Callable[[dict[str, Any]], Any]:
    if endpoint == "chat":
        return lambda p: p["choices"] and p["choices"][0]["delta"].get("content")
    return lambda p: p["choices"] and p["choices"][0]["text"]


def raw_sync(client: httpx.Client, url: str, endpoint: Endpoint, parse: bool = True) -> Any:
    path = f"{url}/{'chat/completions' if endpoint == 'chat' else 'completions'}"
    text_of = raw_text(endpoint)

    def run(n: int) -> Result:
        start = time.perf_counter()
        count, first = 0, 0.0
        with client.stream("POST", path, json=payload_of(endpoint, n)) as response:
            response.raise_for_status()
            if not parse:  # bytes only: what the server and the HTTP layer cost
                for _ in response.iter_bytes():
                    pass
                return n, 0.0
            lines = DataLines()
            done = False
            for read in response.iter_bytes():
                if done:
                    continue  # read to the end, so the connection goes back to the pool
                for data in lines.feed(read):
                    if data == b"[DONE]":
                        done = True
                    elif text_of(json.loads(data)):
                        if not count:
                            first = time.perf_counter() - start
                        count += 1
        if not done:
            raise RuntimeError("no [DONE]")
        return count, first

    return run


def raw_async(client: httpx.AsyncClient, url: str, endpoint: Endpoint) -> Any:
    path = f"{url}/{'chat/completions' if endpoint == 'chat' else 'completions'}"
    text_of = raw_text(endpoint)

    async def run(n: int) -> Result:
        start = time.perf_counter()
        count, first = 0, 0.0
        async with client.stream("POST", path, json=payload_of(endpoint, n)) as response:
            response.raise_for_status()
            lines = DataLines()
            done = False
            async for read in response.aiter_bytes():
                if done:
                    continue  # read to the end, so the connection goes back to the pool
                for data in lines.feed(read):
                    if data == b"[DONE]":
                        done = True
                    elif text_of(json.loads(data)):
                        if not count:
                            first = time.perf_counter() - start
                        count += 1
        if not done:
            raise RuntimeError("no [DONE]")
        return count, first

    return run


# --------------------------------------------------------------------------------------
# The clients. Each factory returns ``run(n) -> Result`` (a coroutine function if async).


@dataclass(frozen=True)
class Client:
    name: str
    kind: Kind
    endpoint: Endpoint
    make: Callable[[str], Callable[[int], Any]]  # base URL -> run
    reference: bool = False
    note: str = ""


def httpx_sse_sync(url: str) -> Callable[[int], Result]:
    client = httpx.Client()

    def run(n: int) -> Result:
        start = time.perf_counter()
        path = f"{url}/chat/completions"
        with httpx_sse.connect_sse(client, "POST", path, json=payload_of("chat", n)) as source:
            return drain(
                (json.loads(e.data) for e in source.iter_sse() if e.data != "[DONE]"),
                raw_text("chat"),
                start,
            )

    return run


def httpx_sse_async(url: str) -> Callable[[int], Awaitable[Result]]:
    client = httpx.AsyncClient()

    async def run(n: int) -> Result:
        start = time.perf_counter()
        path = f"{url}/chat/completions"
        text_of = raw_text("chat")
        count, first = 0, 0.0
        async with httpx_sse.aconnect_sse(
            client, "POST", path, json=payload_of("chat", n)
        ) as source:
            async for event in source.aiter_sse():
                if event.data != "[DONE]" and text_of(json.loads(event.data)):
                    if not count:
                        first = time.perf_counter() - start
                    count += 1
        return count, first

    return run


def openai_completions(url: str) -> Callable[[int], Result]:
    client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0)

    def run(n: int) -> Result:
        start = time.perf_counter()
        stream = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=n, stream=True)
        return drain(stream, completion_text, start)

    return run


def openai_chat(url: str) -> Callable[[int], Result]:
    client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0)

    def run(n: int) -> Result:
        start = time.perf_counter()
        stream = client.chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=n, stream=True
        )
        return drain(stream, chat_text, start)

    return run


def openai_achat(url: str) -> Callable[[int], Awaitable[Result]]:
    client = openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0)

    async def run(n: int) -> Result:
        start = time.perf_counter()
        stream = await client.chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=n, stream=True
        )
        return await adrain(stream, chat_text, start)

    return run


def per_size(make: Callable[[int], Any]) -> Callable[[int], Any]:
    """One model per stream length (``max_tokens`` is a constructor parameter)."""
    models: dict[int, Any] = {}

    def model(n: int) -> Any:
        if n not in models:
            models[n] = make(n)
        return models[n]

    return model


def lc_llm_stream(url: str) -> Callable[[int], Result]:
    llm = per_size(
        lambda n: langchain_openai.OpenAI(
            model=MODEL, base_url=url, api_key=KEY, max_tokens=n, max_retries=0
        )
    )

    def run(n: int) -> Result:
        start = time.perf_counter()
        return drain(llm(n).stream(PROMPT), same, start)

    return run


def lc_chat(url: str) -> Callable[[int], Any]:
    return per_size(
        lambda n: langchain_openai.ChatOpenAI(
            model=MODEL, base_url=url, api_key=KEY, max_tokens=n, max_retries=0
        )
    )


def lc_chat_stream(url: str) -> Callable[[int], Result]:
    chat = lc_chat(url)

    def run(n: int) -> Result:
        start = time.perf_counter()
        return drain(chat(n).stream(PROMPT), message_text, start)

    return run


def lc_chat_astream(url: str) -> Callable[[int], Awaitable[Result]]:
    chat = lc_chat(url)

    async def run(n: int) -> Result:
        start = time.perf_counter()
        return await adrain(chat(n).astream(PROMPT), message_text, start)

    return run


def lc_chat_events(url: str) -> Callable[[int], Awaitable[Result]]:
    chat = lc_chat(url)

    async def run(n: int) -> Result:
        start = time.perf_counter()
        return await adrain(chat(n).astream_events(PROMPT, version="v2"), event_text, start)

    return run


LITELLM = {"model": f"openai/{MODEL}", "api_key": KEY}


def litellm_completions(url: str) -> Callable[[int], Result]:
    def run(n: int) -> Result:
        start = time.perf_counter()
        stream = litellm.text_completion(
            prompt=PROMPT, max_tokens=n, stream=True, api_base=url, **LITELLM
        )
        return drain(stream, completion_text, start)

    return run


def litellm_chat(url: str) -> Callable[[int], Result]:
    def run(n: int) -> Result:
        start = time.perf_counter()
        stream = litellm.completion(
            messages=MESSAGES, max_tokens=n, stream=True, api_base=url, **LITELLM
        )
        return drain(stream, chat_text, start)

    return run


def litellm_achat(url: str) -> Callable[[int], Awaitable[Result]]:
    async def run(n: int) -> Result:
        start = time.perf_counter()
        stream = await litellm.acompletion(
            messages=MESSAGES, max_tokens=n, stream=True, api_base=url, **LITELLM
        )
        return await adrain(stream, chat_text, start)

    return run


def rx_llm(url: str) -> Callable[[int], Any]:
    return per_size(
        lambda n: rxllm.llms.OpenAI(model=MODEL, base_url=url, api_key=KEY, max_tokens=n)
    )


def rx_chat(url: str) -> Callable[[int], Any]:
    return per_size(
        lambda n: rxllm.llms.ChatOpenAI(model=MODEL, base_url=url, api_key=KEY, max_tokens=n)
    )


def rx_llm_stream(url: str) -> Callable[[int], Result]:
    llm = rx_llm(url)

    def run(n: int) -> Result:
        start = time.perf_counter()
        return drain(llm(n).stream(PROMPT), same, start)

    return run


def rx_llm_astream(url: str) -> Callable[[int], Awaitable[Result]]:
    llm = rx_llm(url)

    async def run(n: int) -> Result:
        start = time.perf_counter()
        return await adrain(llm(n).astream(PROMPT), same, start)

    return run


def rx_chat_stream(url: str) -> Callable[[int], Result]:
    chat = rx_chat(url)

    def run(n: int) -> Result:
        start = time.perf_counter()
        return drain(chat(n).stream(PROMPT), message_text, start)

    return run


def rx_chat_astream(url: str) -> Callable[[int], Awaitable[Result]]:
    chat = rx_chat(url)

    async def run(n: int) -> Result:
        start = time.perf_counter()
        return await adrain(chat(n).astream(PROMPT), message_text, start)

    return run


def rx_chat_events(url: str) -> Callable[[int], Awaitable[Result]]:
    chat = rx_chat(url)

    async def run(n: int) -> Result:
        start = time.perf_counter()
        return await adrain(chat(n).astream_events(PROMPT, version="v2"), event_text, start)

    return run


def rx_chat_sync_events(url: str) -> Callable[[int], Result]:
    chat = rx_chat(url)

    def run(n: int) -> Result:
        start = time.perf_counter()
        return drain(chat(n).stream_events(PROMPT, version="v2"), event_text, start)

    return run


def rx_chat_pipe(url: str) -> Callable[[int], Result]:
    """Three identity operators between the model and ``stream``."""
    piped = per_size(
        lambda n: rx_chat(url)(n).pipe(
            ops.map(lambda c: c), ops.filter(lambda c: True), ops.map(lambda c: c)
        )
    )

    def run(n: int) -> Result:
        start = time.perf_counter()
        return drain(piped(n).stream(PROMPT), message_text, start)

    return run


def rx_chat_observe(url: str) -> Callable[[int], Result]:
    """``observe().subscribe`` with no bridge, waiting on a ``threading.Event``."""
    chat = rx_chat(url)

    def run(n: int) -> Result:
        start = time.perf_counter()
        done = threading.Event()
        count, first = 0, 0.0
        errors: list[Exception] = []

        def on_next(chunk: Any) -> None:
            nonlocal count, first
            if chunk.content:
                if not count:
                    first = time.perf_counter() - start
                count += 1

        def on_error(error: Exception) -> None:
            errors.append(error)
            done.set()

        chat(n).observe(PROMPT).subscribe(on_next, on_error, done.set)
        done.wait()
        if errors:
            raise errors[0]
        return count, first

    return run


def clients() -> list[Client]:
    found = [
        Client(
            "raw httpx (reference)",
            "sync",
            "completions",
            lambda u: raw_sync(httpx.Client(), u, "completions"),
            reference=True,
        ),
        Client(
            "raw httpx (reference)",
            "sync",
            "chat",
            lambda u: raw_sync(httpx.Client(), u, "chat"),
            reference=True,
        ),
        Client(
            "raw httpx (reference)",
            "async",
            "completions",
            lambda u: raw_async(httpx.AsyncClient(), u, "completions"),
            reference=True,
        ),
        Client(
            "raw httpx (reference)",
            "async",
            "chat",
            lambda u: raw_async(httpx.AsyncClient(), u, "chat"),
            reference=True,
        ),
        Client(
            "httpx, bytes only (server check)",
            "sync",
            "chat",
            lambda u: raw_sync(httpx.Client(), u, "chat", parse=False),
            note="no parsing: the server's and HTTP's share",
        ),
        Client("httpx-sse `iter_sse`", "sync", "chat", httpx_sse_sync),
        Client("httpx-sse `aiter_sse`", "async", "chat", httpx_sse_async),
        Client("openai `completions.create`", "sync", "completions", openai_completions),
        Client("openai `chat.completions.create`", "sync", "chat", openai_chat),
        Client("openai async `chat.completions.create`", "async", "chat", openai_achat),
        Client("langchain-openai `OpenAI.stream`", "sync", "completions", lc_llm_stream),
        Client("langchain-openai `ChatOpenAI.stream`", "sync", "chat", lc_chat_stream),
        Client("langchain-openai `ChatOpenAI.astream`", "async", "chat", lc_chat_astream),
        Client("langchain-openai `ChatOpenAI.astream_events` v2", "async", "chat", lc_chat_events),
    ]
    if litellm is not None:
        found += [
            Client("litellm `text_completion`", "sync", "completions", litellm_completions),
            Client("litellm `completion`", "sync", "chat", litellm_chat),
            Client("litellm `acompletion`", "async", "chat", litellm_achat),
        ]
    found += [
        Client("rxllm `OpenAI.stream`", "sync", "completions", rx_llm_stream),
        Client("rxllm `OpenAI.astream`", "async", "completions", rx_llm_astream),
        Client("rxllm `ChatOpenAI.stream`", "sync", "chat", rx_chat_stream),
        Client("rxllm `ChatOpenAI.astream`", "async", "chat", rx_chat_astream),
        Client("rxllm `ChatOpenAI.astream_events` v2", "async", "chat", rx_chat_events),
        Client("rxllm `ChatOpenAI.stream_events` v2", "sync", "chat", rx_chat_sync_events),
        Client("rxllm `ChatOpenAI.pipe(map, filter, map).stream`", "sync", "chat", rx_chat_pipe),
        Client(
            "rxllm `ChatOpenAI.observe().subscribe`",
            "sync",
            "chat",
            rx_chat_observe,
            note="no bridge",
        ),
    ]
    return found


# --------------------------------------------------------------------------------------
# Workloads, timing and the report.


@dataclass(frozen=True)
class Workload:
    label: str
    tokens: int  # per stream
    streams: int  # per timed run
    concurrent: bool  # all streams at once (async clients only), else one after another
    per_call: bool  # report µs per call instead of µs per chunk


@dataclass
class Candidate:
    client: Client
    workload: Workload
    run: Callable[[], tuple[list[Result], float]]  # results and elapsed seconds
    seconds: list[float] = field(default_factory=list)
    firsts: list[float] = field(default_factory=list)

    @property
    def units(self) -> int:
        w = self.workload
        return w.streams if w.per_call else w.streams * w.tokens

    def time_once(self) -> None:
        gc.collect()
        results, elapsed = self.run()
        for count, first in results:
            if count != self.workload.tokens:
                raise AssertionError(
                    f"{self.client.name} ({self.workload.label}): got {count} text chunks, "
                    f"not {self.workload.tokens}"
                )
            self.firsts.append(first)
        self.seconds.append(elapsed)

    def median_us(self) -> float:
        return statistics.median(self.seconds) * 1e6 / self.units


def timed(
    client: Client, run: Callable[[int], Any], workload: Workload, arun: Callable[[Any], Any]
) -> Callable[[], tuple[list[Result], float]]:
    """A timed run of ``workload``: its streams one after another, or all at once."""
    n, k = workload.tokens, workload.streams
    if client.kind == "sync":

        def sync_run() -> tuple[list[Result], float]:
            start = time.perf_counter()
            results = [run(n) for _ in range(k)]
            return results, time.perf_counter() - start

        return sync_run

    async def one_by_one() -> list[Result]:
        return [await run(n) for _ in range(k)]

    async def all_at_once() -> list[Result]:
        return list(await asyncio.gather(*(run(n) for _ in range(k))))

    def async_run() -> tuple[list[Result], float]:
        start = time.perf_counter()
        results = arun(all_at_once() if workload.concurrent else one_by_one())
        return results, time.perf_counter() - start

    return async_run


def measure(found: list[Candidate], rounds: int, timeout: float) -> None:
    for candidate in found:  # warm-up: imports, connections, loop threads, caches
        with watchdog(timeout):
            candidate.run()
    for round_ in range(1, rounds + 1):
        print(f"  round {round_}/{rounds}", file=sys.stderr, flush=True)
        for candidate in found:
            with watchdog(timeout):
                candidate.time_once()


def reference_of(candidate: Candidate, found: list[Candidate]) -> Candidate:
    for other in found:
        c = other.client
        if c.reference and (c.kind, c.endpoint) == (
            candidate.client.kind,
            candidate.client.endpoint,
        ):
            return other
    raise LookupError(candidate.client.name)


def ratio(candidate: Candidate, found: list[Candidate]) -> float:
    """The median over rounds of this candidate's time / its reference's, same round."""
    reference = reference_of(candidate, found)
    return statistics.median(
        ours / theirs for ours, theirs in zip(candidate.seconds, reference.seconds, strict=True)
    )


def peak_memory(run: Callable[[], Any]) -> float:
    """Peak Python memory allocated during ``run()``, in MiB (all threads)."""
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


_PACKAGES = ["rxllm", "httpx", "httpx-sse", "openai", "langchain-openai", "langchain-core",
             "litellm", "reactivex", "pydantic"]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default: 7)")
    parser.add_argument("--calls", type=int, default=100, help="calls per 1-chunk run")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 rounds, 20 calls")
    parser.add_argument("--only", action="append", default=[], help="keep clients matching")
    parser.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one run may take")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.calls = 2, 20
    workloads = [
        Workload("1 chunk", 1, args.calls, False, True),
        Workload("100", 100, 20, False, False),
        Workload("2,000", 2_000, 2, False, False),
        Workload("200 × 200", 200, 200, True, False),
    ]
    chosen = [
        c for c in clients() if c.reference or not args.only or any(o in c.name for o in args.only)
    ]
    big = workloads[2]

    warnings.simplefilter("ignore")  # the peers' deprecation warnings
    found: dict[str, list[Candidate]] = {}
    memory: dict[str, float] = {}
    with local_server() as url, asyncio.Runner() as runner:
        runs = {id(c): c.make(url) for c in chosen}
        for workload in workloads:
            print(f"{workload.label}:", file=sys.stderr, flush=True)
            found[workload.label] = [
                Candidate(c, workload, timed(c, runs[id(c)], workload, runner.run))
                for c in chosen
                if c.kind == "async" or not workload.concurrent
            ]
            measure(found[workload.label], args.rounds, args.timeout)
        print("peak memory:", file=sys.stderr, flush=True)
        for c in chosen:
            one = Workload("1 stream", big.tokens, 1, False, False)
            memory[c.name + c.kind + c.endpoint] = peak_memory(
                timed(c, runs[id(c)], one, runner.run)
            )

    text = report(chosen, workloads, found, memory, args)
    publish(text, args.output)


def report(
    chosen: list[Client],
    workloads: list[Workload],
    found: dict[str, list[Candidate]],
    memory: dict[str, float],
    args: argparse.Namespace,
) -> str:
    def candidate(client: Client, label: str) -> Candidate | None:
        return next((c for c in found[label] if c.client is client), None)

    big = "2,000"
    header = ["client", "kind", "endpoint"]
    header += [f"{w.label} ×" for w in workloads]
    header += [
        "µs/call (1 chunk)",
        "µs/chunk (2,000)",
        "chunks/s (2,000)",
        "first chunk ms (2,000)",
        "peak MiB (2,000)",
        "note",
    ]
    body = []
    for client in chosen:
        row = [client.name, client.kind, client.endpoint]
        for w in workloads:
            c = candidate(client, w.label)
            row.append("–" if c is None else f"{ratio(c, found[w.label]):.2f}")
        per_call = candidate(client, workloads[0].label)
        streamed = candidate(client, big)
        assert per_call is not None
        assert streamed is not None
        row += [
            fmt(per_call.median_us()),
            fmt(streamed.median_us()),
            f"{1e6 / streamed.median_us():,.0f}",
            fmt(statistics.median(streamed.firsts) * 1e3),
            fmt(memory[client.name + client.kind + client.endpoint]),
            client.note,
        ]
        body.append(row)

    # What three operators add to the bare ChatOpenAI.stream, as a ratio to the reference.
    notes = []
    for w in workloads:
        by_name = {c.client.name: c for c in found[w.label]}
        piped = by_name.get("rxllm `ChatOpenAI.pipe(map, filter, map).stream`")
        bare = by_name.get("rxllm `ChatOpenAI.stream`")
        if piped is None or bare is None:
            continue
        reference = reference_of(bare, found[w.label])
        added = statistics.median(
            (p - b) / r
            for p, b, r in zip(piped.seconds, bare.seconds, reference.seconds, strict=True)
        )
        notes.append(f"{w.label}: {added:+.2f}×")
    command = " ".join(["python", "bench/providers.py", *sys.argv[1:]])
    lines = [
        "# rxllm's OpenAI providers vs httpx, httpx-sse, openai, langchain-openai, litellm",
        "",
        f"- date: {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs",
        f"- {versions(_PACKAGES)}",
        f"- command: `{command}`",
        f"- server: bench/_server.py in its own process; {args.calls} calls per 1-chunk run, "
        "20 streams per 100-token run, 2 per 2,000-token run, 200 concurrent streams of 200 "
        "tokens",
        f"- ratios (×): time / raw httpx's of the same kind and endpoint in the same round, "
        f"median of {args.rounds} interleaved rounds after a warm-up; lower is better",
        f"- a 3-operator pipe adds (pipe − stream, × the reference): {', '.join(notes) or '–'}",
        "",
        markdown_table(header, body),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
