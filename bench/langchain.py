"""rxllm inside LangChain, and LangChain inside rxllm: what each direction costs per chunk.

Two comparisons, against ``_server.py`` (the local OpenAI-compatible server of
``providers.py``, in its own process, never the bottleneck):

1. **to_langchain**: one LangChain chain, ``prompt | model | StrOutputParser()``, with the
   model either ``langchain_openai.ChatOpenAI`` (the reference) or
   ``to_langchain(rxllm.ChatOpenAI)``, both pointed at the same server, consumed with
   LangChain's ``stream``, ``astream`` and ``astream_events`` (v2) over 2,000-chunk
   replies. LangChain's machinery around the model (the sequence, the parser, callbacks,
   the event stream) is the same in both; what differs is the provider.
2. **from_langchain**: ``langchain_openai.ChatOpenAI.astream`` alone (the reference)
   against ``from_langchain(it).astream`` and ``from_langchain(it).pipe(stop_on(...))
   .astream``: what rxllm's Observable, bridge and an operator add on top of LangChain's
   own stream.

How: each candidate runs once to warm up, then all of them run in turn (A B C … A B C …)
for ``--rounds`` rounds, so a shared machine's noise hits them alike. A ratio is the
median over rounds of the reference's time divided by the candidate's in the same round
for (1) (higher: rxllm faster) and of the candidate's over the reference's for (2)
(overhead: lower is better). µs/chunk is the median time over the chunks with text.

Run from the repository root::

    pip install -e '.[langchain]' -r bench/requirements.txt
    python bench/langchain.py            # 7 rounds (about a minute)
    python bench/langchain.py --quick    # smoke test: 2 rounds, 500 chunks

The table is printed and written, as markdown with the versions and the command, to
``bench/results/langchain.md`` (``--output`` to change).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import langchain_openai
from _common import fmt, markdown_table, versions, watchdog
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from providers import KEY, MODEL, local_server

import rxllm
from rxllm.langchain import from_langchain, to_langchain
from rxllm.operators import stop_on

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "langchain.md"
PROMPT = ChatPromptTemplate.from_messages([("human", "Say {word}")])
INPUT = {"word": "hi"}


def lc_model(url: str, n: int) -> Any:
    return langchain_openai.ChatOpenAI(
        base_url=url, api_key=KEY, model=MODEL, max_tokens=n, stream_usage=True
    )


def rx_model(url: str, n: int) -> Any:
    return to_langchain(rxllm.ChatOpenAI(base_url=url, api_key=KEY, model=MODEL, max_tokens=n))


def chain_of(model: Any) -> Any:
    return PROMPT | model | StrOutputParser()


def count_sync(items: Iterator[Any]) -> int:
    return sum(1 for item in items if item)


async def count_async(items: AsyncIterator[Any]) -> int:
    return sum([1 async for item in items if item])


async def count_events(chain: Any) -> int:
    count = 0
    async for event in chain.astream_events(INPUT, version="v2"):
        if event["event"] == "on_chat_model_stream" and event["data"]["chunk"].content:
            count += 1
    return count


def content(chunk: Any) -> Any:
    return chunk.content


@dataclass
class Candidate:
    """One way of consuming one stream; ``run()`` returns the chunks with text."""

    group: str
    name: str
    run: Callable[[], int]
    reference: bool = False
    seconds: list[float] = field(default_factory=list)

    def time_once(self, expected: int) -> None:
        gc.collect()
        start = time.perf_counter()
        count = self.run()
        self.seconds.append(time.perf_counter() - start)
        if count != expected:
            raise AssertionError(f"{self.group} / {self.name}: {count} chunks, not {expected}")


def candidates(url: str, n: int, loop: asyncio.AbstractEventLoop) -> list[Candidate]:
    run = loop.run_until_complete
    chains = {
        "langchain-openai (reference)": chain_of(lc_model(url, n)),
        "to_langchain": chain_of(rx_model(url, n)),
    }
    found: list[Candidate] = []
    for label, chain in chains.items():
        found.append(
            Candidate("chain `stream`", label, lambda c=chain: count_sync(c.stream(INPUT)))
        )
    for label, chain in chains.items():
        found.append(
            Candidate("chain `astream`", label, lambda c=chain: run(count_async(c.astream(INPUT))))
        )
    for label, chain in chains.items():
        found.append(
            Candidate("chain `astream_events` v2", label, lambda c=chain: run(count_events(c)))
        )
    for candidate in found:
        candidate.reference = candidate.name.endswith("(reference)")
    model = lc_model(url, n)
    wrapped = from_langchain(model)
    piped = wrapped.pipe(stop_on(["STOP"]))  # never matches, never holds text back

    async def lc_astream() -> int:
        return sum([1 async for chunk in model.astream("hi") if chunk.content])

    async def rx_astream(runnable: Any) -> int:
        return sum([1 async for chunk in runnable.astream("hi") if chunk.content])

    group = "`astream` of langchain-openai"
    found += [
        Candidate(group, "`x.astream` (reference)", lambda: run(lc_astream()), True),
        Candidate(group, "`from_langchain(x).astream`", lambda: run(rx_astream(wrapped))),
        Candidate(
            group, "`from_langchain(x).pipe(stop_on(...)).astream`", lambda: run(rx_astream(piped))
        ),
    ]
    return found


def report(found: list[Candidate], n: int) -> str:
    body = []
    for candidate in found:
        reference = next(c for c in found if c.group == candidate.group and c.reference)
        pairs = list(zip(candidate.seconds, reference.seconds, strict=True))
        if candidate.reference:
            compared = "—"
        elif candidate.group.startswith("chain"):
            compared = f"{fmt(statistics.median(r / c for c, r in pairs))}× faster"
        else:
            compared = f"{fmt(statistics.median(c / r for c, r in pairs))}× the time"
        us = statistics.median(candidate.seconds) * 1e6 / n
        body.append([candidate.group, candidate.name, fmt(us), compared])
    return markdown_table(["workload", "model / consumer", "µs/chunk", "vs reference"], body)


_PACKAGES = ["rxllm", "langchain-core", "langchain-openai", "openai", "httpx", "reactivex"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default: 7)")
    parser.add_argument("--chunks", type=int, default=2000, help="chunks per stream")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 rounds, 500 chunks")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per run before abort")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rounds, n = (2, 500) if args.quick else (args.rounds, args.chunks)
    loop = asyncio.new_event_loop()
    with local_server() as url:
        found = candidates(url, n, loop)
        for candidate in found:  # warm-up
            with watchdog(args.timeout):
                candidate.run()
        for round_ in range(1, rounds + 1):
            print(f"  round {round_}/{rounds}", file=sys.stderr, flush=True)
            for candidate in found:
                with watchdog(args.timeout):
                    candidate.time_once(n)
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    table = report(found, n)
    print(table)
    command = " ".join(["python", "bench/langchain.py", *(argv or sys.argv[1:])])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        f"# rxllm and LangChain, {n:,}-chunk streams, {rounds} rounds\n\n{table}\n\n"
        f"{datetime.now():%Y-%m-%d %H:%M}, Python {platform.python_version()}, {versions(_PACKAGES)}.\n"
        f"Command: `{command}`\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
