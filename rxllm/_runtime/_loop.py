"""Where async provider calls run for synchronous callers, and where blocking work runs.

Synchronous callers (``stream``, ``invoke``, a plain ``observe().subscribe``) need
somewhere to run async provider calls:

- On the main thread, outside a running loop (a script, the CLI), a sync consumer runs
  them itself: ``own_loop()`` is a ``SteppedLoop`` that the bridge runs only while the
  consumer waits for its next item. Nothing crosses a thread, so a chunk costs what it
  costs under ``astream``.
- Anywhere else (a worker thread, a Jupyter cell's running loop, a plain ``subscribe``),
  one daemon thread runs one event loop for the whole process, started on first use.
  Worker threads do not get a stepped loop of their own: Python has no hook for the end
  of a thread, so such a loop would outlive it with its pooled connections, and a pool
  per thread would cost a server that starts a thread per request a new connection
  (and TLS handshake) per request.

Blocking work (llama.cpp, a provider's sync ``_call``/``_stream``, sync lambdas) runs on
a bounded thread pool so it never blocks any event loop. All three are recreated in a
child process after ``fork``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Awaitable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .._constants import MAX_WORKER_THREADS

__all__ = [
    "SteppedLoop",
    "library_loop",
    "library_tasks",
    "on_library_thread",
    "on_loop_thread",
    "own_loop",
    "pause",
    "running_loop",
    "worker_pool",
]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pool: ThreadPoolExecutor | None = None
_stepped: SteppedLoop | None = None


class SteppedLoop(asyncio.SelectorEventLoop):
    """An event loop that runs only while its thread waits for something on it.

    Its clock stops while the loop does: time the consumer spends in its own code, between
    two items, counts toward no timeout (httpx's, or an operator's ``stall_timeout``) and
    no measured gap, as with a blocking read. Work scheduled while it is stopped (a
    finalizer closing a dropped model's connections) runs at its next step.

    While a stream is iterated on it (``deferring_interrupts``), Ctrl-C during a step
    stops the loop and raises ``KeyboardInterrupt`` once the step is over, as
    ``asyncio.run`` defers it: raised inside a callback, it would leave that code (a
    provider's cleanup, a hand-off to a worker thread) half done.
    """

    def __init__(self) -> None:
        super().__init__()
        self.owner = threading.get_ident()
        self._paused = 0.0
        self._stopped_at: float | None = time.monotonic()
        self._stepping = False
        self._interrupted = False
        self._deferrers = 0  # streams open with ``deferring_interrupts``
        self._handler = self._on_interrupt  # one bound method, so it can be recognised

    def time(self) -> float:
        stopped_at = self._stopped_at
        return (time.monotonic() if stopped_at is None else stopped_at) - self._paused

    def run_forever(self) -> None:
        if self.is_running():  # before the clock is touched: let asyncio raise as usual
            super().run_forever()
        stopped_at = self._stopped_at
        if stopped_at is not None:
            self._paused += time.monotonic() - stopped_at
            self._stopped_at = None
        try:
            super().run_forever()
        finally:
            self._stopped_at = time.monotonic()

    def steppable(self) -> bool:
        """Whether the calling code may run the loop now: on its thread, while idle."""
        return threading.get_ident() == self.owner and not self._stepping and running_loop() is None

    def step(self) -> None:
        """Run the loop until something stops it: the bridge, when an item has come."""
        self._begin()
        try:
            self.run_forever()
        finally:
            self._stepping = False
        self._raise_if_interrupted()

    def step_until(self, awaitable: Awaitable[T]) -> T:
        """Run the loop until ``awaitable`` is done; its result."""
        self._begin()
        try:
            result = self.run_until_complete(awaitable)
        except RuntimeError:
            if not self._interrupted:
                raise
            # "Event loop stopped before Future completed": the interrupt stopped it.
        finally:
            self._stepping = False
        self._raise_if_interrupted()
        return result

    @contextlib.contextmanager
    def deferring_interrupts(self) -> Iterator[None]:
        """While open (a stream being iterated), Ctrl-C during a step waits for its end.

        Outside a step, in the consumer's own code, Ctrl-C is raised at once as usual.
        Nothing changes where the program has its own SIGINT handler.
        """
        if self._deferrers == 0:
            if signal.getsignal(signal.SIGINT) not in (signal.default_int_handler, self._handler):
                yield
                return
            signal.signal(signal.SIGINT, self._handler)
        self._deferrers += 1
        try:
            yield
        finally:
            self._deferrers -= 1
            if (
                self._deferrers == 0
                and threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is self._handler
            ):
                signal.signal(signal.SIGINT, signal.default_int_handler)

    def _on_interrupt(self, signum: int, frame: object) -> None:
        if self._interrupted or not self.is_running():
            raise KeyboardInterrupt  # the consumer's own code, or a second Ctrl-C
        self._interrupted = True
        self.stop()
        self.call_soon_threadsafe(_nothing)  # wakes a select that would resume waiting

    def _raise_if_interrupted(self) -> None:
        if self._interrupted:
            self._interrupted = False
            raise KeyboardInterrupt

    def _begin(self) -> None:
        # The flag covers the moments before ``run_forever`` marks the loop running: a
        # finalizer that fires then sees the loop busy and leaves its work to this step.
        if threading.get_ident() != self.owner:
            raise RuntimeError(
                "a stream first iterated on the main thread must be iterated on it to the end"
            )
        if self._stepping or self.is_running():
            raise RuntimeError(
                "a sync stream of the main thread was iterated from inside a callback of "
                "another: iterate it after that callback returns"
            )
        self._stepping = True


def _nothing() -> None:
    pass


def library_loop() -> asyncio.AbstractEventLoop:
    """The process-wide loop that async sources run on when consumed from sync code."""
    global _loop
    if _loop is None:
        with _lock:
            if _loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="rxllm-loop", daemon=True)
                thread.start()
                _loop = loop
    return _loop


def worker_pool() -> ThreadPoolExecutor:
    """The bounded pool that blocking provider calls and sync functions run on."""
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(
                    max_workers=MAX_WORKER_THREADS, thread_name_prefix="rxllm-worker"
                )
    return _pool


def own_loop() -> SteppedLoop | None:
    """The loop a sync consumer on this thread steps itself; ``None`` where there is none.

    Only the main thread has one, and only outside a running loop.
    """
    global _stepped
    if threading.current_thread() is not threading.main_thread() or running_loop() is not None:
        return None
    if _stepped is None:
        _stepped = SteppedLoop()
    return _stepped


def library_tasks() -> int:
    """Tasks alive on rxllm's loops: its loop thread's, and the main thread's stepped loop
    (the caller's own task not counted). For ``rxllm.testing``'s leak checks."""
    stepped, loop = _stepped, library_loop()
    count = 0
    if stepped is not None and not stepped.is_closed():
        count = len(asyncio.all_tasks(stepped) - {asyncio.current_task(stepped)})
    if on_loop_thread(loop):
        return count + len(asyncio.all_tasks(loop)) - 1

    async def on_loop() -> int:
        return len(asyncio.all_tasks()) - 1

    return count + asyncio.run_coroutine_threadsafe(on_loop(), loop).result(5)


def pause(seconds: float) -> None:
    """Sleep, stepping the main thread's stepped loop meanwhile where it may be stepped
    (it runs only then): work queued on it, a finalizer's cleanup, gets done."""
    stepped = _stepped
    if stepped is not None and not stepped.is_closed() and stepped.steppable():
        stepped.step_until(asyncio.sleep(seconds))
    else:
        time.sleep(seconds)


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The loop running on the calling thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the calling thread is the one running ``loop``."""
    return running_loop() is loop


def on_library_thread() -> bool:
    """Whether the calling thread is rxllm's loop thread (without starting it)."""
    loop = _loop
    return loop is not None and running_loop() is loop


def _forget_after_fork() -> None:
    # The child has neither the loop's thread nor the pool's: start afresh on next use.
    global _loop, _pool, _lock, _stepped
    _loop, _pool, _lock, _stepped = None, None, threading.Lock(), None


os.register_at_fork(after_in_child=_forget_after_fork)
