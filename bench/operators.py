"""Per-chunk cost of each ``rxllm.operators`` operator, beside a plain ``ops.map``.

What it measures, in µs per input chunk, on a stream of ``--chunks`` word-sized text
chunks (20,000 by default; an LLM's tokens as ``FakeStreamingListLLM`` splits them):

1. the source alone: ``reactivex.from_iterable(chunks)`` subscribed with a counter, and
   ``ops.map(identity)`` on it, the baseline every operator is compared with: "× map" is
   an operator's time over ``ops.map(identity)``'s on the same chunks in the same round
   (median over the rounds), which says what the operator costs whatever the load on
   the machine; ``tap(identity)``, an rxllm operator that does nothing, is the floor of
   any operator of ours;
2. every operator subscribed directly, ``from_iterable(chunks).pipe(op)``: once with
   ``str`` chunks and once with ``GenerationChunk`` chunks (an LLM's ``observe``), where
   re-chunking operators build new chunk models. The target is under 1 µs/chunk for the
   operators that are not time-based, on ``str`` chunks;
3. RxPY's peers where there is one: ``ops.buffer_with_count(5)`` beside
   ``buffer_tokens(5)``, and ``ops.scan`` summing strings beside ``accumulate()``. Both
   copy the whole text so far for every item, so their cost per chunk is proportional to
   the length of the text (65 KB by the end of 20,000 chunks): they also run on the
   first ``--reply-chunks`` chunks (2,000 by default, a typical reply);
4. through a model: ``FakeStreamingListLLM(...).pipe(op).stream(prompt)`` against the
   same model's plain ``stream``, so "added" is what the operator costs in a real
   pipeline;
5. ``partial_json``'s parser alone on the JSON chunks, with and without taking the
   value so far after each chunk that changes it: the difference is what the copies of
   the containers still open cost, which the operator makes so that every value it
   emits stays as it was.

Time-based operators (``buffer_time``, ``smooth``, ``throttle_text``, the deadlines,
``metrics``) are subscribed with an ``AsyncIOScheduler`` on an event loop that is not
running, with intervals long enough that no timer fires during the burst: their rows
measure the per-chunk bookkeeping, not the pacing. The structured-output operators run
on a JSON array of small objects cut into ``--json-chunks`` word-sized chunks (20,000 by
default), where ``partial_json`` copies the long array for every value it emits (a
third of the chunks change the value). ``partial_json`` runs also on a JSON object of
about as many chunks, the shape of a structured-output reply: a long string field, then
a list of nested objects with string fields, so nearly every chunk extends a string and
a value goes out for it. Each is compared with ``ops.map`` on the same chunks.

How: each candidate runs once to warm up, then all candidates run in turn for
``--rounds`` rounds, with the garbage collector off during each run; the table shows
each candidate's median. Each run checks that the operator emitted something.

Run from the repository root::

    python bench/operators.py            # 9 rounds of 20,000 chunks
    python bench/operators.py --quick    # smoke test: 2 rounds of 2,000 chunks (200 short)

The table is printed and also written, as markdown with the versions, the command and
the load average, to ``bench/results/operators.md`` (``--output`` to change).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.scheduler import ImmediateScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from rxllm import operators as rx  # noqa: E402
from rxllm.llms import FakeStreamingListLLM  # noqa: E402
from rxllm.llms._fake import split_text  # noqa: E402
from rxllm.operators._jsonparse import PartialParser  # noqa: E402
from rxllm.schema import GenerationChunk  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "operators.md"
Operator = Callable[[Observable[Any]], Observable[Any]]

PARAGRAPH = (
    "The quick brown fox jumps over the lazy dog. Is it quick? It is! "
    "Streams of tokens arrive, one by one, and an operator re-cuts them.\n"
    "```py\nprint('code, too')\n```\n\n"
)


def text_of_chunks(count: int) -> list[str]:
    """``count`` word-sized chunks of prose with sentences, lines and code blocks."""
    tokens = split_text(PARAGRAPH, "token")
    repeats = count // len(tokens) + 1
    return (tokens * repeats)[:count]


def json_chunks(count: int) -> list[str]:
    """A JSON array of small objects, cut into at least ``count`` word-sized chunks."""
    size = len(split_text(json.dumps([{"id": 0, "name": "item 0", "tags": ["a", "b"]}]), "token"))
    items = [{"id": i, "name": f"item {i}", "tags": ["a", "b"]} for i in range(count // size + 1)]
    return split_text(json.dumps(items), "token")


def json_object_chunks(count: int) -> list[str]:
    """A structured-output reply as one JSON object, cut into about ``count`` chunks.

    A ``summary`` string of ``count // 10`` words, then ``sections``: objects with a
    heading, a 300-word ``body`` and a ``meta`` object, as many as make up the count.
    """
    words = split_text(PARAGRAPH, "token")

    def prose(length: int) -> str:
        return "".join((words * (length // len(words) + 1))[:length]).strip()

    sections: list[dict[str, Any]] = []
    reply = {"title": "Streams", "summary": prose(count // 10), "sections": sections}
    size = len(split_text(json.dumps(reply), "token"))
    while size < count:
        meta = {"id": len(sections), "score": 0.5, "tags": ["a", "b"]}
        section = {"heading": f"Part {len(sections)}", "body": prose(300), "meta": meta}
        sections.append(section)
        size += len(split_text(json.dumps(section), "token")) + 1
    reply["done"] = True
    return split_text(json.dumps(reply), "token")


def identity(item: Any) -> Any:
    return item


@dataclass
class Candidate:
    name: str
    family: str
    make: Callable[[], Operator] | None  # None: the source alone
    timed: bool = False
    source: str = "text"  # which input: a key of ``inputs`` in ``main``

    def row(self, reply_chunks: int) -> str:
        """The name in the table, with the input when it is not the usual one."""
        on = {"reply": f" on the first {reply_chunks:,} chunks", "object": " on the object"}
        return f"`{self.name}`{on.get(self.source, '')}"

    strs_only: bool = False  # RxPY's peers: they know nothing of chunks


CANDIDATES = [
    Candidate("from_iterable (source alone)", "baseline", None),
    Candidate("ops.map(identity)", "baseline", lambda: ops.map(identity)),
    Candidate("text()", "mapping", rx.text),
    Candidate("map_text(str.upper)", "mapping", lambda: rx.map_text(str.upper)),
    Candidate("accumulate()", "mapping", rx.accumulate),
    Candidate(
        "ops.scan(str.__add__) (RxPY)",
        "mapping",
        lambda: ops.scan(str.__add__, ""),
        strs_only=True,
    ),
    Candidate("accumulate()", "mapping", rx.accumulate, source="reply"),
    Candidate(
        "ops.scan(str.__add__) (RxPY)",
        "mapping",
        lambda: ops.scan(str.__add__, ""),
        source="reply",
        strs_only=True,
    ),
    Candidate("buffer_tokens(5)", "buffering", lambda: rx.buffer_tokens(5)),
    Candidate(
        "ops.buffer_with_count(5) (RxPY)",
        "buffering",
        lambda: ops.buffer_with_count(5),
        strs_only=True,
    ),
    Candidate("buffer_time(60)", "buffering", lambda: rx.buffer_time(60), timed=True),
    Candidate(
        "buffer_time_or_count(60, 5)",
        "buffering",
        lambda: rx.buffer_time_or_count(60, 5),
        timed=True,
    ),
    Candidate("words()", "segmentation", rx.words),
    Candidate("lines()", "segmentation", rx.lines),
    Candidate("sentences()", "segmentation", rx.sentences),
    Candidate('split_on(", ")', "segmentation", lambda: rx.split_on(", ")),
    Candidate("markdown_blocks()", "segmentation", rx.markdown_blocks),
    Candidate("smooth(0.01)", "pacing", lambda: rx.smooth(0.01, max_lag=60), timed=True),
    Candidate("throttle_text(60)", "pacing", lambda: rx.throttle_text(60), timed=True),
    Candidate("tap(identity)", "tapping", lambda: rx.tap(identity)),
    Candidate("on_first_token(identity)", "tapping", lambda: rx.on_first_token(identity)),
    Candidate("metrics()", "metrics", rx.metrics, timed=True),
    Candidate("first_token_timeout(60)", "guards", lambda: rx.first_token_timeout(60), timed=True),
    Candidate("stall_timeout(60)", "guards", lambda: rx.stall_timeout(60), timed=True),
    Candidate("total_timeout(60)", "guards", lambda: rx.total_timeout(60), timed=True),
    Candidate('stop_on("NEVER SEEN")', "guards", lambda: rx.stop_on("NEVER SEEN")),
    Candidate("max_chars(10**9)", "guards", lambda: rx.max_chars(10**9)),
    # The bench text repeats a 40-word paragraph: keep loops shorter than that in view.
    Candidate(
        "detect_repetition(3, max_period=8)",
        "guards",
        lambda: rx.detect_repetition(3, max_period=8),
    ),
    Candidate("share_stream()", "fan-out", rx.share_stream),
    Candidate("race(source)", "racing", lambda: lambda source: rx.race(source)),
    Candidate("retry(3)", "retrying", lambda: rx.retry(3)),
    Candidate("json_items()", "structured", rx.json_items, source="json"),
    Candidate("partial_json()", "structured", rx.partial_json, source="json"),
    Candidate("partial_json()", "structured", rx.partial_json, source="object"),
]


def run_once(candidate: Candidate, chunks: list[Any], loop: asyncio.AbstractEventLoop) -> float:
    """Seconds to push ``chunks`` through the candidate once."""
    count = 0

    def on_next(_: Any) -> None:
        nonlocal count
        count += 1

    source = reactivex.from_iterable(chunks, scheduler=ImmediateScheduler())
    stream = source if candidate.make is None else source.pipe(candidate.make())
    scheduler = AsyncIOScheduler(loop) if candidate.timed else None
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        subscription = stream.subscribe(on_next, scheduler=scheduler)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    subscription.dispose()
    if count == 0:
        raise SystemExit(f"{candidate.name} emitted nothing")
    return elapsed


def drain(items: Iterator[Any]) -> int:
    count = 0
    for _ in items:
        count += 1
    return count


PIPELINES: list[tuple[str, Callable[[], Operator] | None]] = [
    ("llm.stream (no operator)", None),
    ("llm.pipe(ops.map(identity)).stream", lambda: ops.map(identity)),
    ("llm.pipe(words()).stream", rx.words),
    ('llm.pipe(stop_on("NEVER SEEN")).stream', lambda: rx.stop_on("NEVER SEEN")),
    ("llm.pipe(smooth(0.0001)).stream", lambda: rx.smooth(0.0001, max_lag=0.0001)),
]


def run_pipeline(make: Callable[[], Operator] | None, text: str, chunks: int) -> float:
    llm = FakeStreamingListLLM(responses=[text])
    runnable = llm if make is None else llm.pipe(make())
    gc.collect()
    start = time.perf_counter()
    got = drain(runnable.stream("bench"))
    elapsed = time.perf_counter() - start
    if got == 0:
        raise SystemExit("the pipeline emitted nothing")
    return elapsed


def run_parser(chunks: list[str], copies: bool) -> float:
    """Seconds for ``partial_json``'s parser alone to read ``chunks``.

    With ``copies``, it also takes the value so far after each chunk that changed it, as
    the operator does for every value it emits: a copy of the containers still open.
    """
    parser = PartialParser()
    feed, snapshot = parser.feed, parser.snapshot
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for chunk in chunks:
            feed(chunk)
            if copies and parser.changed:
                snapshot()
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    if not parser.complete:
        raise SystemExit("the parser did not finish the document")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--json-chunks", type=int, default=20_000)
    parser.add_argument("--reply-chunks", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2,000 chunks")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.chunks, args.json_chunks, args.reply_chunks, args.rounds = 2_000, 2_000, 200, 2
    load_before = os.getloadavg()

    texts = text_of_chunks(args.chunks)
    generations = [GenerationChunk(text=t) for t in texts]
    jsons = json_chunks(args.json_chunks)
    structured = json_object_chunks(args.json_chunks)
    loop = asyncio.new_event_loop()

    inputs: dict[str, tuple[list[Any], list[Any]]] = {
        "text": (texts, generations),
        "reply": (texts[: args.reply_chunks], generations[: args.reply_chunks]),
        "json": (jsons, [GenerationChunk(text=t) for t in jsons]),
        "object": (structured, [GenerationChunk(text=t) for t in structured]),
    }
    baseline = Candidate("ops.map(identity)", "baseline", lambda: ops.map(identity))
    timings: dict[tuple[str, str], list[float]] = {}
    ratios: dict[tuple[str, str], list[float]] = {}
    for warm in (True, False):
        for _ in range(1 if warm else args.rounds):
            # ops.map on each input, every round: the yardstick of that round's rows.
            base: dict[tuple[str, str], float] = {}
            for source, (as_str, as_chunks) in inputs.items():
                for kind, chunks in (("str", as_str), ("chunk", as_chunks)):
                    base[source, kind] = run_once(baseline, chunks, loop) / len(chunks) * 1e6
            for candidate in CANDIDATES:
                source = candidate.source
                as_str, as_chunks = inputs[source]
                for kind, chunks in (("str", as_str), ("chunk", as_chunks)):
                    if kind == "chunk" and candidate.strs_only:
                        continue
                    seconds = run_once(candidate, chunks, loop)
                    if not warm:
                        per_chunk = seconds / len(chunks) * 1e6
                        key = (candidate.name, source, kind)
                        timings.setdefault(key, []).append(per_chunk)
                        ratios.setdefault(key, []).append(per_chunk / base[source, kind])
    loop.close()

    pipeline_text = "".join(texts)
    pipeline_chunks = len(split_text(pipeline_text, "token"))
    pipeline_timings: dict[str, list[float]] = {}
    for warm in (True, False):
        for _ in range(1 if warm else args.rounds):
            for name, make in PIPELINES:
                seconds = run_pipeline(make, pipeline_text, pipeline_chunks)
                if not warm:
                    per_chunk = seconds / pipeline_chunks * 1e6
                    pipeline_timings.setdefault(name, []).append(per_chunk)
    documents = {"the array": jsons, "the object": structured}
    parser_timings: dict[tuple[str, bool], list[float]] = {}
    for warm in (True, False):
        for _ in range(1 if warm else args.rounds):
            for name, chunks in documents.items():
                for copies in (False, True):
                    seconds = run_parser(chunks, copies)
                    if not warm:
                        per_chunk = seconds / len(chunks) * 1e6
                        parser_timings.setdefault((name, copies), []).append(per_chunk)
    load_after = os.getloadavg()

    def cell(values: list[float] | None, unit: str = "") -> str:
        return f"{statistics.median(values):.2f}{unit}" if values else "n/a"

    lines = [
        f"Operators on a stream of {args.chunks:,} word-sized chunks "
        f"(or the first {len(inputs['reply'][0]):,}, a typical reply, where the row says so; "
        f"JSON rows: an array of small objects in {len(jsons):,} chunks, or the object: a "
        f"structured-output reply, one object in {len(structured):,} chunks); median of "
        f"{args.rounds} rounds, µs per chunk, and × map: the time over `ops.map(identity)`'s "
        "on the same chunks in the same round.",
        "",
        "| operator | family | str: µs/chunk | str: × map | GenerationChunk: µs/chunk "
        "| GenerationChunk: × map | time-based |",
        "|---|---|---:|---:|---:|---:|:---:|",
    ]
    for candidate in CANDIDATES:
        on_str = (candidate.name, candidate.source, "str")
        on_chunk = (candidate.name, candidate.source, "chunk")
        lines.append(
            f"| {candidate.row(len(inputs['reply'][0]))} | {candidate.family} "
            f"| {cell(timings.get(on_str))} "
            f"| {cell(ratios.get(on_str), '×')} | {cell(timings.get(on_chunk))} "
            f"| {cell(ratios.get(on_chunk), '×')} | {'yes' if candidate.timed else ''} |"
        )
    lines += [
        "",
        f"Through a model: `FakeStreamingListLLM` streaming {pipeline_chunks:,} chunks, "
        "consumed with `stream`; median µs per chunk.",
        "",
        "| pipeline | µs/chunk | added by the operator |",
        "|---|---:|---:|",
    ]
    plain = statistics.median(pipeline_timings["llm.stream (no operator)"])
    for name, _ in PIPELINES:
        value = statistics.median(pipeline_timings[name])
        added = "–" if name.startswith("llm.stream ") else f"{value - plain:.2f}"
        lines.append(f"| `{name}` | {value:.2f} | {added} |")
    lines += [
        "",
        "`partial_json`'s parser alone, without an Observable, on the JSON rows' chunks; "
        "median µs per chunk.",
        "",
        "| document | parsing | parsing and copying the value for each change | the copies |",
        "|---|---:|---:|---:|",
    ]
    for name in documents:
        bare = statistics.median(parser_timings[name, False])
        copied = statistics.median(parser_timings[name, True])
        lines.append(f"| {name} | {bare:.2f} | {copied:.2f} | {copied - bare:.2f} |")
    load = " / ".join(f"{a:.2f}" for a in load_before[:1] + load_after[:1])
    lines += ["", f"Load average (1 min) before / after: {load} on {os.cpu_count()} CPUs."]
    table = "\n".join(lines)
    print(table)

    command = "python bench/operators.py " + " ".join(sys.argv[1:])
    header = (
        f"# rxllm operators benchmark\n\n{datetime.now():%Y-%m-%d %H:%M}; Python "
        f"{platform.python_version()} on {platform.platform()}; reactivex "
        f"{version('reactivex')}, pydantic {version('pydantic')}.\n\n"
        f"Command: `{command.strip()}`\n\n"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(header + table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
