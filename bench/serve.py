"""What rxllm's server adds to a stream as a proxy, beside the same stream read directly and
through LiteLLM's proxy.

What it measures: one client (raw httpx with a hand-written SSE loop that JSON-parses every
event, the reference client of ``providers.py``) streams ``POST /v1/chat/completions``
from three places, all serving the same 2,000-token streams of ``_server.py`` (a bare
asyncio server in its own process that writes pre-rendered SSE bytes):

- ``direct``: ``_server.py`` itself;
- ``rxllm serve``: ``create_app(ChatOpenAI(base_url=<_server.py>))`` under uvicorn, in a
  process of its own, as ``rxllm serve --base-url`` runs it: rxllm decodes each upstream
  event into a chunk and encodes it again as ``openai-chat``;
- ``litellm proxy``: LiteLLM's proxy (``litellm --config``) routing the model to
  ``_server.py``, where ``litellm[proxy]`` is installed and starts; the report says why
  when it is not.

Both proxies require a key (LiteLLM's proxy refuses to start without one), so the client
sends one everywhere. Two workloads: 2,000-token streams (µs per chunk) and 1-token
streams (the per-request cost). Every target runs once to warm up, then the targets run
in turn (A B C A B C ...) for ``--rounds`` rounds, so a shared machine's noise hits them
alike; a ratio is the median over rounds of a target's time over ``direct``'s in the same
round (lower is better), and ``rxllm / litellm`` is the median of the two proxies' ratio.

Run from the repository root::

    pip install -e . -r bench/requirements.txt
    python bench/serve.py              # 7 rounds (about a minute; LiteLLM is the slow one)
    python bench/serve.py --quick      # smoke test: 2 rounds
    python bench/serve.py --profile bench/results/serve.html   # pyinstrument, rxllm's side
    python bench/serve.py --encoders   # each format's encoder alone, in this process

``--encoders`` measures no server: each chunk format's encoder (``rxllm.serve.FORMATS``)
alone, fed the same items in this process, formats in turn for ``--rounds`` rounds; CPU µs
per item, the best round (a shared machine's noise only adds to it), for plain text chunks (the per-chunk fast path) and for a mix
of reasoning, text and tool-call pieces (part changes). The table is only printed.

The table is printed and written, as markdown with the versions, the command, the date
and the machine's load, to ``bench/results/serve.md`` (``--output`` to change).
``--profile PATH`` also runs rxllm's server under pyinstrument (so its ratio is not a
measurement then) and writes the profile of the timed rounds as HTML.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
from _common import fmt, markdown_table, publish, versions, watchdog

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "serve.md"
MODEL = "bench"
UPSTREAM_KEY = "sk-bench"  # _server.py ignores it
Result = tuple[int, float]  # (text chunks received, seconds to the first one)


# --------------------------------------------------------------------------------------
# The servers, each in a process of its own.


@contextmanager
def process(command: list[str], name: str) -> Iterator[int]:
    """Start a server that prints ``listening on PORT`` first; yield the port."""
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"{name} did not start: {line!r}")
        yield int(line.split()[-1])
    finally:
        child.terminate()
        child.wait(30)


def serve_rxllm(upstream: str, key: str, profile: Path | None) -> None:
    """The ``--rxllm-server`` mode: ``create_app`` over ``ChatOpenAI`` under uvicorn."""
    import uvicorn

    from rxllm import ChatOpenAI
    from rxllm.cli import listen
    from rxllm.serve import create_app

    model = ChatOpenAI(base_url=upstream, api_key=UPSTREAM_KEY, model=MODEL, max_retries=0)
    config = uvicorn.Config(
        create_app(model, api_key=key), log_level="warning", access_log=False, ws="none"
    )
    server = uvicorn.Server(config)
    # As `rxllm serve` listens (rxllm.cli.listen: TCP_NODELAY on every connection).
    sock = listen("127.0.0.1", 0, socket.AF_INET)
    print(f"listening on {sock.getsockname()[1]}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    if profile is None:
        server.run(sockets=[sock])
        return
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="disabled")
    profiler.start()
    try:
        server.run(sockets=[sock])
    finally:
        profiler.stop()
        profile.parent.mkdir(parents=True, exist_ok=True)
        profile.write_text(profiler.output_html(), encoding="utf-8")
        print(profiler.output_text(unicode=True, show_all=False), file=sys.stderr)


@contextmanager
def rxllm_server(upstream: str, key: str, profile: Path | None) -> Iterator[str]:
    command = [sys.executable, __file__, "--rxllm-server", upstream, "--key", key]
    if profile is not None:
        command += ["--profile", str(profile)]
    with process(command, "rxllm's server") as port:
        yield f"http://127.0.0.1:{port}/v1"


def litellm_command() -> str | None:
    """The ``litellm`` CLI of this environment (beside this Python, else on the PATH)."""
    beside = Path(sys.executable).with_name("litellm")
    return str(beside) if beside.is_file() else shutil.which("litellm")


def litellm_missing() -> str | None:
    """Why LiteLLM's proxy cannot run here, or ``None``."""
    if importlib.util.find_spec("litellm") is None:
        return "litellm is not installed (`pip install 'litellm[proxy]'`)"
    if importlib.util.find_spec("fastapi") is None or litellm_command() is None:
        return "litellm's proxy is not installed (`pip install 'litellm[proxy]'`)"
    return None


@contextmanager
def litellm_proxy(upstream: str, key: str, timeout: float) -> Iterator[str]:
    """LiteLLM's proxy on a free port, routing ``MODEL`` to ``upstream``."""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.yaml"
        config.write_text(
            "model_list:\n"
            f"  - model_name: {MODEL}\n"
            "    litellm_params:\n"
            f"      model: openai/{MODEL}\n"
            f"      api_base: {upstream}\n"
            f"      api_key: {UPSTREAM_KEY}\n"
            "litellm_settings:\n"
            "  telemetry: false\n",
            encoding="utf-8",
        )
        log = Path(folder) / "litellm.log"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {
            **os.environ,
            "LITELLM_MASTER_KEY": key,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no cost map fetched from the network
        }
        command = [litellm_command() or "litellm", "--config", str(config)]
        command += ["--host", "127.0.0.1", "--port", str(port)]
        with log.open("w") as output:
            child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while True:
                if child.poll() is not None:
                    tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                    raise RuntimeError("LiteLLM's proxy exited: " + " / ".join(tail))
                if time.monotonic() > deadline:
                    raise RuntimeError(f"LiteLLM's proxy did not answer within {timeout:.0f} s")
                try:
                    if httpx.get(f"{url}/health/liveliness", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            yield f"{url}/v1"
        finally:
            child.terminate()
            child.wait(30)


# --------------------------------------------------------------------------------------
# The client: raw httpx and the shortest correct SSE loop over its bytes.


class DataLines:
    """The payloads of ``data:`` lines (LF-ended, as every target here writes them)."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, read: bytes) -> list[bytes]:
        self.buffer += read
        *lines, self.buffer = self.buffer.split(b"\n")
        return [line[6:] for line in lines if line.startswith(b"data: ")]


def stream(client: httpx.Client, url: str, tokens: int) -> Result:
    """Stream one reply of ``tokens`` tokens; its text chunks and time to the first."""
    import json

    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hi"}],
        "max_tokens": tokens,
        "stream": True,
    }
    start = time.perf_counter()
    count, first, done = 0, 0.0, False
    with client.stream("POST", f"{url}/chat/completions", json=body) as response:
        response.raise_for_status()
        lines = DataLines()
        for read in response.iter_bytes():
            for data in lines.feed(read):
                if data == b"[DONE]":
                    done = True
                    continue
                choices = json.loads(data).get("choices")
                if choices and choices[0]["delta"].get("content"):
                    if not count:
                        first = time.perf_counter() - start
                    count += 1
    if not done:
        raise RuntimeError(f"no [DONE] from {url}")
    return count, first


# --------------------------------------------------------------------------------------
# Timing and the report.


@dataclass(frozen=True)
class Workload:
    label: str
    tokens: int  # per stream
    streams: int  # per timed run, one after another


@dataclass
class Target:
    name: str
    url: str
    client: httpx.Client
    seconds: dict[str, list[float]] = field(default_factory=dict)
    firsts: dict[str, list[float]] = field(default_factory=dict)

    def run(self, workload: Workload) -> None:
        """One timed run; checks that every stream brought all its text chunks."""
        start = time.perf_counter()
        results = [stream(self.client, self.url, workload.tokens) for _ in range(workload.streams)]
        elapsed = time.perf_counter() - start
        for count, first in results:
            if count != workload.tokens:
                raise AssertionError(f"{self.name}: {count} text chunks, not {workload.tokens}")
            self.firsts.setdefault(workload.label, []).append(first)
        self.seconds.setdefault(workload.label, []).append(elapsed)

    def per_stream_ms(self, workload: Workload) -> float:
        return statistics.median(self.seconds[workload.label]) * 1e3 / workload.streams


def ratio(ours: Target, theirs: Target, workload: Workload) -> float:
    """The median over rounds of ``ours``' time over ``theirs``' in the same round."""
    pairs = zip(ours.seconds[workload.label], theirs.seconds[workload.label], strict=True)
    return statistics.median(a / b for a, b in pairs)


def measure(targets: list[Target], workloads: list[Workload], rounds: int, limit: float) -> None:
    for workload in workloads:
        print(f"{workload.label}:", file=sys.stderr, flush=True)
        for target in targets:  # warm-up: connections, imports, caches
            with watchdog(limit):
                target.run(workload)
            del target.seconds[workload.label], target.firsts[workload.label]
        for round_ in range(1, rounds + 1):
            print(f"  round {round_}/{rounds}", file=sys.stderr, flush=True)
            for target in targets:
                with watchdog(limit):
                    target.run(workload)


def load() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def report(
    targets: list[Target], workloads: list[Workload], args: argparse.Namespace, notes: list[str]
) -> str:
    direct = targets[0]
    by_name = {t.name: t for t in targets}
    header = ["target"]
    for w in workloads:
        header += [f"{w.label}: ms/stream", "× direct"]
    header += ["µs/chunk (2,000)", "first chunk ms (2,000)"]
    big = workloads[0]
    body = []
    for target in targets:
        row = [target.name]
        for w in workloads:
            row += [fmt(target.per_stream_ms(w)), f"{ratio(target, direct, w):.2f}"]
        row.append(fmt(target.per_stream_ms(big) * 1e3 / big.tokens))
        row.append(fmt(statistics.median(target.firsts[big.label]) * 1e3))
        body.append(row)
    rx, lite = by_name.get("rxllm serve"), by_name.get("litellm proxy")
    if rx is not None and lite is not None:
        row = ["rxllm serve / litellm proxy"]
        for w in workloads:
            row += ["", f"{ratio(rx, lite, w):.2f}"]
        body.append([*row, "", ""])
    command = " ".join(["python", "bench/serve.py", *sys.argv[1:]])
    lines = [
        "# rxllm serve as a proxy: against the direct stream and LiteLLM's proxy",
        "",
        f"- date: {args.started}; load average (1/5/15 min) {args.load_before} before, "
        f"{load()} after",
        f"- Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs",
        f"- {versions(_PACKAGES)}",
        f"- command: `{command}`",
        f"- upstream: bench/_server.py in its own process; each proxy in its own process; "
        f"{', '.join(f'{w.streams} streams of {w.tokens:,} token(s)' for w in workloads)} "
        "per timed run, one after another",
        f"- ratios: median of {args.rounds} interleaved rounds after a warm-up; lower is better",
        *(f"- {note}" for note in notes),
        "",
        markdown_table(header, body),
    ]
    return "\n".join(lines) + "\n"


def encoders(rounds: int, items: int) -> None:
    """The ``--encoders`` mode: µs per item of each chunk format's encoder."""
    from rxllm.schema import AIMessageChunk, ToolCallChunk
    from rxllm.serve import FORMATS

    text = [AIMessageChunk(content=f"tok{i} ") for i in range(items)]
    kinds = [
        lambda i: AIMessageChunk(reasoning=f"think{i} "),
        lambda i: AIMessageChunk(content=f"tok{i} "),
        lambda i: AIMessageChunk(tool_call_chunks=[ToolCallChunk(args=f'"{i}', index=i % 2)]),
    ]
    mixed = [kinds[(i // 5) % 3](i) for i in range(items)]
    workloads = {"text": text, "mixed": mixed}
    names = [name for name in FORMATS if name != "events"]
    seconds: dict[tuple[str, str], list[float]] = {}
    for round_ in range(rounds + 1):  # the first round warms up
        for label, chunks in workloads.items():
            for name in names:
                start = time.process_time()
                encoder = FORMATS[name](None)
                for chunk in chunks:
                    encoder.feed(chunk)
                encoder.close()
                if round_:
                    seconds.setdefault((label, name), []).append(time.process_time() - start)
    header = ["items", *names]
    body = [
        [label] + [fmt(min(seconds[label, n]) * 1e6 / items) for n in names] for label in workloads
    ]
    print(f"CPU µs per item, the best of {rounds} rounds of {items:,} items\n")
    print(markdown_table(header, body))


_PACKAGES = ["rxllm", "starlette", "uvicorn", "uvloop", "httptools", "httpx", "litellm"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default: 7)")
    parser.add_argument("--streams", type=int, default=3, help="2,000-token streams per run")
    parser.add_argument("--calls", type=int, default=50, help="1-token streams per run")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 rounds")
    parser.add_argument("--no-litellm", action="store_true", help="leave LiteLLM's proxy out")
    parser.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one run may take")
    parser.add_argument("--profile", type=Path, help="profile rxllm's server to this HTML")
    parser.add_argument("--encoders", action="store_true", help="the encoders alone")
    parser.add_argument("--items", type=int, default=20_000, help="items per --encoders run")
    parser.add_argument("--rxllm-server", metavar="UPSTREAM", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rxllm_server:
        serve_rxllm(args.rxllm_server, args.key, args.profile)
        return
    if args.quick:
        args.rounds, args.calls = 2, 20
    if args.encoders:
        encoders(args.rounds, args.items)
        return
    args.started = datetime.now().astimezone().isoformat(timespec="seconds")
    args.load_before = load()
    workloads = [Workload("2,000", 2_000, args.streams), Workload("1 token", 1, args.calls)]
    key = "sk-" + secrets.token_hex(16)
    notes = []
    if args.profile is not None:
        notes.append(f"rxllm's server ran under pyinstrument ({args.profile}): not a measurement")
    why_not = "left out (--no-litellm)" if args.no_litellm else litellm_missing()
    with ExitStack() as stack:
        upstream_port = stack.enter_context(
            process([sys.executable, str(HERE / "_server.py"), "--port", "0"], "_server.py")
        )
        upstream = f"http://127.0.0.1:{upstream_port}/v1"
        urls = {
            "direct": upstream,
            "rxllm serve": stack.enter_context(rxllm_server(upstream, key, args.profile)),
        }
        if why_not is None:
            try:
                urls["litellm proxy"] = stack.enter_context(litellm_proxy(upstream, key, 180))
            except RuntimeError as error:
                why_not = str(error)
        if why_not is not None:
            notes.append(f"LiteLLM's proxy: {why_not}")
            print(f"LiteLLM's proxy is not measured: {why_not}", file=sys.stderr)
        headers = {"Authorization": f"Bearer {key}"}
        targets = [
            Target(name, url, stack.enter_context(httpx.Client(headers=headers, timeout=60)))
            for name, url in urls.items()
        ]
        measure(targets, workloads, args.rounds, args.timeout)
    text = report(targets, workloads, args, notes)
    publish(text, args.output)


if __name__ == "__main__":
    main()
