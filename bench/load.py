"""Load figures: 1,000 concurrent streams and a soak of 10,000 sequential ones.

Both run against the scripted local server (``tests/servers/scripted.py``, real sockets
on 127.0.0.1, in this process), replaying OpenAI's chat wire format, 20 chunks a
stream; every text is checked. Reported: the time, the resident memory per open stream
at the peak (client and server together: an upper bound for the client), Python's
allocations along the soak (``tracemalloc``, after a warm-up), and anything left open
(``rxllm.testing.LeakTracker``: sockets, descriptors, threads, tasks).

The same code, at a bounded size, is the CI test ``tests/reliability/test_load.py``.

Run from the repository root::

    pip install -e '.[test]'
    python bench/load.py                       # 1,000 concurrent, 10,000 sequential
    python bench/load.py --concurrent 1000 --sequential 0 --models 1
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.reliability.load import Figures, concurrent_streams, sequential_streams  # noqa: E402


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def report_concurrent(figures: Figures, models: int) -> None:
    print(f"{figures.streams:,} concurrent astream calls over {models} model(s):")
    print(f"  completed          {figures.completed:,} / {figures.streams:,}")
    print(f"  open at once       {figures.peak_connections:,} connections")
    print(f"  total time         {figures.seconds:.1f} s")
    print(
        f"  resident memory    {_mib(figures.rss_before)} before, {_mib(figures.rss_peak)} "
        f"at the peak, {_mib(figures.rss_after)} after"
    )
    print(f"  per open stream    {figures.per_stream / 1024:.0f} KiB (client and server)")
    print(f"  left open          {figures.leaked or 'nothing'}")


def report_sequential(figures: Figures) -> None:
    print(f"{figures.streams:,} sequential stream calls on one model:")
    print(f"  completed          {figures.completed:,} / {figures.streams:,}")
    print(f"  connections        {figures.peak_connections} (kept alive and reused)")
    print(
        f"  total time         {figures.seconds:.1f} s "
        f"({1000 * figures.seconds / figures.streams:.2f} ms a call)"
    )
    if figures.traced:
        series = ", ".join(f"{done:,}: {size / 1024:.0f} KiB" for done, size in figures.traced)
        # The second half: the first fills bounded caches (pydantic-core's strings).
        first, last = figures.traced[len(figures.traced) // 2], figures.traced[-1]
        per_call = (last[1] - first[1]) / max(1, last[0] - first[0])
        print(f"  Python allocations {series}")
        print(f"  growth             {per_call:.1f} B a call over the second half")
    print(
        f"  resident memory    {_mib(figures.rss_before)} before, {_mib(figures.rss_after)} after"
    )
    print(f"  left open          {figures.leaked or 'nothing'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrent", type=int, default=1000)
    parser.add_argument(
        "--models",
        type=int,
        default=10,
        help="spread the concurrent calls over this many models (1: one client)",
    )
    parser.add_argument("--sequential", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1000)
    args = parser.parse_args()
    print(
        f"Python {platform.python_version()}, {platform.machine()}, "
        f"command: python bench/load.py {' '.join(sys.argv[1:])}".rstrip()
    )
    ok = True
    if args.concurrent:
        figures = asyncio.run(concurrent_streams(args.concurrent, models=args.models))
        report_concurrent(figures, args.models)
        ok &= figures.completed == figures.streams and not figures.leaked
    if args.sequential:
        figures = sequential_streams(args.sequential, warmup=min(args.warmup, args.sequential // 2))
        report_sequential(figures)
        ok &= figures.completed == figures.streams and not figures.leaked
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
