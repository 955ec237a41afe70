"""Bounded load, run by CI: 1,000 concurrent streams, and a soak of sequential ones.

``python bench/load.py`` runs the same code at full size (10,000 sequential streams)
and prints the figures the README quotes.
"""

from __future__ import annotations

import pytest

from .load import concurrent_streams, sequential_streams

pytestmark = pytest.mark.load


async def test_a_thousand_concurrent_streams_all_complete_and_leave_nothing() -> None:
    figures = await concurrent_streams(1000)
    assert figures.completed == 1000  # every text arrived whole, in order
    assert figures.peak_connections == 1000  # all of them open at the same moment
    assert figures.leaked == ""
    assert 0 < figures.per_stream < 512 * 1024
    print(
        f"\n1,000 concurrent streams: {figures.seconds:.1f} s, "
        f"{figures.per_stream / 1024:.0f} KiB resident per open stream (client and server)"
    )


def test_sequential_streams_keep_memory_flat() -> None:
    # The same texts every call: pydantic-core's string cache (bounded, ~1 MiB) would
    # otherwise still be filling up; bench/load.py runs past it with new texts.
    figures = sequential_streams(600, warmup=200, samples=4, unique=False)
    assert figures.completed == 600
    assert figures.peak_connections == 1  # one keep-alive connection, reused
    assert figures.leaked == ""
    first, last = figures.traced[0][1], figures.traced[-1][1]
    # Anything kept per call (a chunk, a task, a response) is a kilobyte or more: 400
    # calls would add 400 KiB. What remains is allocator noise of a few bytes a call.
    assert last - first < 64 * 1024, figures.traced
