"""Per-chunk cost of rxllm's stream bridges, beside langchain-core's equivalent fakes.

What it measures: the time to consume one fake stream of ``--chunks`` one-character
chunks (20,000 by default), divided by the number of chunks, in µs/chunk:

1. a plain Python generator of one-character strings (the floor: neither library)
2. LLM ``stream`` and 3. ``astream``: rxllm ``FakeStreamingListLLM(chunking="char")``
   | ``langchain_core.language_models.fake.FakeStreamingListLLM`` (one char per chunk)
4. chat model ``stream`` and 5. ``astream``: rxllm ``FakeListChatModel(chunking="char")``
   | ``langchain_core.language_models.fake_chat_models.FakeListChatModel`` (which streams
   one ``AIMessageChunk`` per character, so ``GenericFakeChatModel`` is not needed)
6. prompt | llm | parser chain ``astream`` and 7. ``stream``: rxllm
   ``RunnableLambda(prompt).pipe(llm, ops.map(lambda c: c.text))`` | LangChain
   ``PromptTemplate | FakeStreamingListLLM | StrOutputParser``
8. rxllm only: the LLM piped through three operators (map, filter, map, all identities)
   and consumed with ``stream``; its added cost is row 8 minus row 2 (the median of
   the per-round differences)
9. rxllm only: ``observe(...).subscribe(...)`` with no bridge, waiting on a
   ``threading.Event`` for completion
8t. rxllm only: row 8 with ``rxllm.tracing.instrument()`` on, as in row 9t: a span for
   the pipeline, the model call and each operator step; its added cost is row 8t minus
   row 8
9t. rxllm only: row 2 with ``rxllm.tracing.instrument()`` on (an SDK tracer provider,
   the default no-op meter); its added cost is row 9t minus row 2
9m. rxllm only: row 9t with an SDK meter provider too (an in-memory reader), so every
   chunk after the first is one ``Histogram.record`` of
   ``gen_ai.client.operation.time_per_output_chunk``, as the GenAI conventions define it
9h. the floor of row 9m: the SDK's ``Histogram.record`` alone, once per chunk, with the
   attributes row 9m records (neither rxllm nor LangChain)

and, on a one-chunk stream (``responses=["x"]``), the per-call overhead of the LLM's
``invoke`` and ``stream`` in µs/call, over ``--calls`` calls (500 by default).

How: every candidate runs once to warm up, then all candidates run in turn (A B C …
A B C …) for ``--rounds`` rounds, so the noise of a shared machine hits them alike; the
table shows each candidate's median over the rounds, and the ratio rxllm / LangChain
(lower is better; the target is ≤ 1.0). Each run checks the number of chunks it got, and
a run that takes over ``--timeout`` seconds (a stuck stream) dumps every thread's stack
and exits with status 1 rather than hanging.

Run from the repository root::

    pip install -e . -r bench/requirements.txt
    python bench/bridges.py                 # 7 rounds of 20,000 chunks
    python bench/bridges.py --quick         # smoke test: 2 rounds, 2,000 chunks, 50 calls

The table is printed and also written, as markdown with the versions and the command,
to ``bench/results/bridges.md`` (``--output`` to change).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import statistics
import sys
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from _common import fmt, markdown_table, publish, watchdog
from langchain_core.language_models import fake as lc_fake
from langchain_core.language_models import fake_chat_models as lc_fake_chat
from langchain_core.language_models.llms import LLM as LangChainLLM
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import GenerationChunk as LangChainGenerationChunk
from langchain_core.prompts import PromptTemplate
from reactivex import operators as ops

from rxllm import RunnableLambda
from rxllm import llms as rx

RESULTS = Path(__file__).resolve().parent / "results" / "bridges.md"
PROMPT = "Say hi"
TOPIC = {"topic": "hi"}

# --------------------------------------------------------------------------------------
# Ways to consume a stream. Each returns how many items it got, to check the stream.


def drain(items: Iterable[Any]) -> int:
    count = 0
    for _ in items:
        count += 1
    return count


async def adrain(items: AsyncIterator[Any]) -> int:
    count = 0
    async for _ in items:
        count += 1
    return count


def chars(n: int) -> Iterator[str]:
    """The floor: a plain generator of ``n`` one-character strings."""
    for _ in range(n):
        yield "x"


def observe_raw(llm: rx.FakeStreamingListLLM) -> int:
    """Subscribe to ``llm.observe`` directly and block until it completes."""
    done = threading.Event()
    count = 0
    errors: list[Exception] = []

    def on_next(_: Any) -> None:
        nonlocal count
        count += 1

    def on_error(error: Exception) -> None:
        errors.append(error)
        done.set()

    llm.observe(PROMPT).subscribe(on_next, on_error, done.set)
    done.wait()
    if errors:
        raise errors[0]
    return count


def calls(n: int, call: Callable[[], Any]) -> int:
    """Make ``n`` calls; the unit of a per-call candidate is one call."""
    for _ in range(n):
        call()
    return n


# --------------------------------------------------------------------------------------
# The candidates: a row of the table pairs an rxllm run with LangChain's, where one exists.


@dataclass(frozen=True)
class Row:
    name: str
    rxllm: Callable[[], int]  # in row 1, the plain generator
    langchain: Callable[[], int] | None = None
    note: str = ""


@dataclass
class Candidate:
    """One thing to time: ``run()`` does ``units`` units of work and returns the count."""

    row: str
    side: str  # "rxllm" or "LangChain"
    run: Callable[[], int]
    units: int
    seconds: list[float] = field(default_factory=list)

    def time_once(self) -> None:
        gc.collect()
        start = time.perf_counter()
        got = self.run()
        elapsed = time.perf_counter() - start
        if got != self.units:
            raise AssertionError(f"{self.row} ({self.side}): got {got} items, not {self.units}")
        self.seconds.append(elapsed)

    def median_us(self) -> float:
        """Median µs per unit (chunk or call) over the timed rounds."""
        return statistics.median(self.seconds) * 1e6 / self.units


class ProviderPathLLM(LangChainLLM):
    """LangChain's side of a streaming provider: ``_stream``/``_astream`` yield chunks and
    report each token to the run manager, as langchain-openai and the others do. Its
    fakes skip that path (``FakeStreamingListLLM.stream`` calls ``invoke`` and yields the
    characters), so they are not what a real LangChain stream costs."""

    text: str

    @property
    def _llm_type(self) -> str:
        return "provider-path"

    def _call(self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any) -> str:
        return self.text

    def _stream(
        self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[LangChainGenerationChunk]:
        for piece in self.text:
            chunk = LangChainGenerationChunk(text=piece)
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk

    async def _astream(
        self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> AsyncIterator[LangChainGenerationChunk]:
        for piece in self.text:
            chunk = LangChainGenerationChunk(text=piece)
            if run_manager:
                await run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk


def per_chunk_rows(n: int, arun: Callable[[Any], int]) -> list[Row]:
    """The streams of ``n`` chunks; ``arun`` runs a coroutine to completion."""
    text = "x" * n
    rx_llm = rx.FakeStreamingListLLM(responses=[text], chunking="char")
    rx_chat = rx.FakeListChatModel(responses=[text], chunking="char")
    rx_chain = RunnableLambda(lambda d: f"Say {d['topic']}").pipe(rx_llm, ops.map(lambda c: c.text))
    rx_piped = rx_llm.pipe(ops.map(lambda c: c), ops.filter(lambda c: True), ops.map(lambda c: c))

    lc_fake_llm = lc_fake.FakeStreamingListLLM(responses=[text])
    lc_llm = ProviderPathLLM(text=text)
    lc_chat = lc_fake_chat.FakeListChatModel(responses=[text])
    lc_chain = PromptTemplate.from_template("Say {topic}") | lc_llm | StrOutputParser()

    return [
        Row(
            "1. plain generator (floor)",
            lambda: drain(chars(n)),
            note="plain Python generator, neither library",
        ),
        Row(
            "2. LLM stream",
            lambda: drain(rx_llm.stream(PROMPT)),
            lambda: drain(lc_llm.stream(PROMPT)),
            note="LangChain: an LLM streaming through _stream, as its providers do",
        ),
        Row(
            "3. LLM astream",
            lambda: arun(adrain(rx_llm.astream(PROMPT))),
            lambda: arun(adrain(lc_llm.astream(PROMPT))),
        ),
        Row(
            "2f. LLM stream, LangChain's fake",
            lambda: drain(rx_llm.stream(PROMPT)),
            lambda: drain(lc_fake_llm.stream(PROMPT)),
            note="LangChain's FakeStreamingListLLM skips streaming: invoke, then yield chars",
        ),
        Row(
            "3f. LLM astream, LangChain's fake",
            lambda: arun(adrain(rx_llm.astream(PROMPT))),
            lambda: arun(adrain(lc_fake_llm.astream(PROMPT))),
        ),
        Row(
            "4. chat stream",
            lambda: drain(rx_chat.stream(PROMPT)),
            lambda: drain(lc_chat.stream(PROMPT)),
            note="LangChain: FakeListChatModel, one char per chunk",
        ),
        Row(
            "5. chat astream",
            lambda: arun(adrain(rx_chat.astream(PROMPT))),
            lambda: arun(adrain(lc_chat.astream(PROMPT))),
        ),
        Row(
            "6. chain prompt→llm→parser astream",
            lambda: arun(adrain(rx_chain.astream(TOPIC))),
            lambda: arun(adrain(lc_chain.astream(TOPIC))),
            note="LangChain: StrOutputParser parses each chunk on a thread pool",
        ),
        Row(
            "7. chain prompt→llm→parser stream",
            lambda: drain(rx_chain.stream(TOPIC)),
            lambda: drain(lc_chain.stream(TOPIC)),
        ),
        Row("8. LLM + map, filter, map: stream", lambda: drain(rx_piped.stream(PROMPT))),
        Row(
            "8t. row 8, tracing on",
            lambda: traced(lambda: drain(rx_piped.stream(PROMPT))),
        ),
        Row("9. LLM observe().subscribe, no bridge", lambda: observe_raw(rx_llm)),
        Row("9t. LLM stream, tracing on", lambda: traced(lambda: drain(rx_llm.stream(PROMPT)))),
        Row(
            "9m. LLM stream, tracing + SDK meter",
            lambda: traced(lambda: drain(rx_llm.stream(PROMPT)), metered=True),
        ),
        Row("9h. SDK Histogram.record alone", lambda: histogram_records(n)),
    ]


def traced(run: Callable[[], int], metered: bool = False) -> int:
    """``run()`` with ``rxllm.tracing`` on: spans to an SDK provider that exports nowhere,
    so the figure is rxllm's cost, not an exporter's; with ``metered``, metrics to an SDK
    meter provider whose reader is never collected."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    from rxllm import tracing

    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()]) if metered else None
    tracing.instrument(TracerProvider(), meter_provider)
    try:
        return run()
    finally:
        tracing.uninstrument()
        if meter_provider is not None:
            meter_provider.shutdown()


def histogram_records(n: int) -> int:
    """``n`` records into an SDK histogram made as rxllm.tracing makes its own, with the
    attributes row 9m's records carry, in a sampled span's context (as rxllm's are)."""
    from opentelemetry import trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    from rxllm import tracing

    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    histogram = meter_provider.get_meter("bench").create_histogram(
        "gen_ai.client.operation.time_per_output_chunk",
        unit="s",
        explicit_bucket_boundaries_advisory=tracing.DURATION_BUCKETS,
    )
    span = TracerProvider().get_tracer("bench").start_span("chunks")
    context = trace.set_span_in_context(span)
    attributes = {
        "gen_ai.operation.name": "text_completion",
        "gen_ai.provider.name": "fakestreaminglistllm",
    }
    record = histogram.record
    for _ in range(n):
        record(1e-6, attributes, context)
    span.end()
    meter_provider.shutdown()
    return n


def event_rows(n: int, arun: Callable[[Any], int]) -> list[Row]:
    """``astream_events`` over streams of ``n`` chunks; the unit is one model chunk."""
    text = "x" * n
    rx_llm = rx.FakeStreamingListLLM(responses=[text], chunking="char")
    rx_chat = rx.FakeListChatModel(responses=[text], chunking="char")
    rx_chain = RunnableLambda(lambda d: f"Say {d['topic']}").pipe(rx_llm, ops.map(lambda c: c.text))
    lc_llm = ProviderPathLLM(text=text)
    lc_chat = lc_fake_chat.FakeListChatModel(responses=[text])
    lc_chain = PromptTemplate.from_template("Say {topic}") | lc_llm | StrOutputParser()

    def events(runnable: Any, value: Any, version: str) -> Callable[[], int]:
        def run() -> int:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # LangChain deprecates v1
                return arun(count_streams(runnable.astream_events(value, version=version)))

        return run

    return [
        Row(
            "10. LLM astream_events v2",
            events(rx_llm, PROMPT, "v2"),
            events(lc_llm, PROMPT, "v2"),
        ),
        Row(
            "11. chat astream_events v2",
            events(rx_chat, PROMPT, "v2"),
            events(lc_chat, PROMPT, "v2"),
        ),
        Row(
            "12. chain astream_events v2",
            events(rx_chain, TOPIC, "v2"),
            events(lc_chain, TOPIC, "v2"),
            note="one model chunk makes three stream events: model, parser, chain",
        ),
        Row(
            "13. LLM astream_events v1",
            events(rx_llm, PROMPT, "v1"),
            events(lc_llm, PROMPT, "v1"),
        ),
    ]


async def count_streams(events: AsyncIterator[Any]) -> int:
    """How many model chunks the events report (``on_llm_stream``/``on_chat_model_stream``)."""
    count = 0
    async for event in events:
        if event["event"] in ("on_llm_stream", "on_chat_model_stream"):
            count += 1
    return count


def per_call_rows(n: int) -> list[Row]:
    """``n`` calls of an LLM whose reply is one chunk."""
    rx_llm = rx.FakeStreamingListLLM(responses=["x"], chunking="char")
    lc_llm = ProviderPathLLM(text="x")
    return [
        Row(
            "LLM invoke, 1 chunk",
            lambda: calls(n, lambda: rx_llm.invoke(PROMPT)),
            lambda: calls(n, lambda: lc_llm.invoke(PROMPT)),
        ),
        Row(
            "LLM stream, 1 chunk",
            lambda: calls(n, lambda: drain(rx_llm.stream(PROMPT))),
            lambda: calls(n, lambda: drain(lc_llm.stream(PROMPT))),
        ),
    ]


def candidates(rows: list[Row], units: int) -> list[Candidate]:
    found = []
    for row in rows:
        found.append(Candidate(row.name, "rxllm", row.rxllm, units))
        if row.langchain is not None:
            found.append(Candidate(row.name, "LangChain", row.langchain, units))
    return found


# --------------------------------------------------------------------------------------
# Timing and the report.


def measure(found: list[Candidate], rounds: int, timeout: float) -> None:
    for candidate in found:  # warm-up: imports, the library's loop thread, caches
        with watchdog(timeout):
            candidate.run()
    for round_ in range(1, rounds + 1):
        print(f"round {round_}/{rounds}", file=sys.stderr, flush=True)
        for candidate in found:
            with watchdog(timeout):
                candidate.time_once()


def table(rows: list[Row], found: list[Candidate], unit: str) -> str:
    median = {(c.row, c.side): c.median_us() for c in found}
    body = []
    for row in rows:
        ours = median[row.name, "rxllm"]
        theirs = median.get((row.name, "LangChain"))
        body.append(
            [
                row.name,
                fmt(ours),
                "—" if theirs is None else fmt(theirs),
                "—" if theirs is None else f"{ours / theirs:.2f}",
                row.note,
            ]
        )
    header = ["case", f"rxllm µs/{unit}", f"LangChain µs/{unit}", "rxllm / LangChain", "note"]
    return markdown_table(header, body)


def report(
    sections: list[tuple[str, list[Row], list[Candidate], str]], args: argparse.Namespace
) -> str:
    command = " ".join(["python", "bench/bridges.py", *sys.argv[1:]])
    lines = [
        "# rxllm bridges vs langchain-core fakes",
        "",
        f"- date: {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs",
        f"- rxllm {version('rxllm')}, reactivex {version('reactivex')}, "
        f"langchain-core {version('langchain-core')}",
        f"- command: `{command}`",
        f"- medians of {args.rounds} interleaved rounds, after one warm-up run of each "
        "candidate; a ratio below 1.0 means rxllm is faster",
    ]
    for title, rows, found, unit in sections:
        lines += ["", f"## {title}", "", table(rows, found, unit)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default: 7)")
    parser.add_argument("--chunks", type=int, default=20_000, help="chunks per stream")
    parser.add_argument("--calls", type=int, default=500, help="calls per per-call run")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 rounds, 2,000 chunks")
    parser.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds one run may take before it fails"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.chunks, args.calls = 2, 2_000, 50

    with asyncio.Runner() as runner:
        chunk_rows = per_chunk_rows(args.chunks, runner.run)
        call_rows = per_call_rows(args.calls)
        event_rows_ = event_rows(args.chunks, runner.run)
        chunk_found = candidates(chunk_rows, args.chunks)
        call_found = candidates(call_rows, args.calls)
        event_found = candidates(event_rows_, args.chunks)
        measure(chunk_found + call_found + event_found, args.rounds, args.timeout)

    # Rows 8 and 8t-9m's notes: what the operators (tracing) add to the stream they extend, as the
    # median of the per-round differences (the two ran side by side in each round).
    rxllm_runs = {c.row.split(" ")[0]: c.seconds for c in chunk_found if c.side == "rxllm"}

    def added(row: str, base: str = "2.") -> str:
        return fmt(
            statistics.median(
                (more - bare) * 1e6 / args.chunks
                for more, bare in zip(rxllm_runs[row], rxllm_runs[base], strict=True)
            )
        )

    notes = {
        "8.": f"3 operators add {added('8.')} µs/chunk (row 8 - row 2)",
        "8t.": f"tracing adds {added('8t.', '8.')} µs/chunk (row 8t - row 8)",
        "9t.": f"tracing adds {added('9t.')} µs/chunk (row 9t - row 2)",
        "9m.": f"tracing adds {added('9m.')} µs/chunk (row 9m - row 2)",
        "9h.": "one record per chunk: the SDK's cost, the floor of row 9m",
    }
    chunk_rows = [
        replace(row, note=notes[row.name.split(" ")[0]]) if row.name.split(" ")[0] in notes else row
        for row in chunk_rows
    ]

    text = report(
        [
            (f"Per chunk: one stream of {args.chunks:,} chunks", chunk_rows, chunk_found, "chunk"),
            (f"Per call: {args.calls:,} calls, 1-chunk reply", call_rows, call_found, "call"),
            (
                f"Events: astream_events over {args.chunks:,} model chunks",
                event_rows_,
                event_found,
                "chunk",
            ),
        ],
        args,
    )
    publish(text, args.output)


if __name__ == "__main__":
    main()
