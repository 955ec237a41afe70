"""``iterate_in_thread``: a blocking iterator stepped on the worker pool, closed once."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from rxllm._runtime._pump import iterate_in_thread


class Recorder:
    """A blocking generator that notes what happens to it, and on which thread."""

    def __init__(self, step_delay: float = 0.0) -> None:
        self.events: list[str] = []
        self.threads: set[str] = set()
        self.step_delay = step_delay
        self.stepping = threading.Event()

    def make(self) -> Iterator[int]:
        try:
            for i in range(1000):
                self.stepping.set()
                if self.step_delay:
                    threading.Event().wait(self.step_delay)
                self.events.append(f"step {i}")
                yield i
        finally:
            self.events.append("closed")
            self.threads.add(threading.current_thread().name)


async def test_items_come_in_order_and_the_iterator_is_closed_at_the_end() -> None:
    recorder = Recorder()
    got = []
    async with contextlib.aclosing(iterate_in_thread(recorder.make)) as items:
        async for item in items:
            got.append(item)
            if item == 2:
                break
    assert got == [0, 1, 2]
    assert recorder.events == ["step 0", "step 1", "step 2", "closed"]


async def test_leaving_during_a_step_closes_right_after_it_on_the_worker() -> None:
    recorder = Recorder(step_delay=0.2)
    items = iterate_in_thread(recorder.make)
    assert await anext(items) == 0
    recorder.stepping.clear()
    pending = asyncio.ensure_future(anext(items))
    await asyncio.to_thread(recorder.stepping.wait, 5)  # the next step is under way
    pending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pending
    await items.aclose()
    # Never closed under the running step (a generator closed while another thread
    # runs it fails): the worker finishes its step, then closes it.
    for _ in range(200):
        if "closed" in recorder.events:
            break
        await asyncio.sleep(0.01)
    assert recorder.events == ["step 0", "step 1", "closed"]
    assert all(name.startswith("rxllm-worker") for name in recorder.threads)
