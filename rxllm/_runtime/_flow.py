"""Flow control and teardown shared between a bridge and the sources it consumes.

Observables push; a consumer iterating in plain code pulls. When the consumer is slower
than the provider, something has to give. rxllm's policy: a bridge buffers at most
``BUFFER_HIGH_WATER`` undelivered items; past that, the sources feeding it stop pulling
from the provider (an HTTP response simply is not read, so TCP pushes back on the
server) until the consumer has drained the buffer to ``BUFFER_LOW_WATER``. Nothing is
dropped and order is kept.

A bridge opens a ``FlowScope`` and subscribes in a context where it is current
(``context_with``); sources read it from there at subscribe time. asyncio copies
context into every task and callback, so sources subscribed later in the same chain
(the next step of a pipeline, the next input of a batch) join the same scope. A source
subscribed from a foreign thread sees no scope: it is then neither paced nor awaited on
close.

The scope also tracks the source tasks, so closing a bridge can wait until every
provider call has really finished (its HTTP response closed) before returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading

from .._constants import BUFFER_HIGH_WATER, BUFFER_LOW_WATER, CLOSE_TIMEOUT

__all__ = ["FlowScope", "context_with", "current_scope"]


class FlowScope:
    """One consumer's subscription: its buffer level and the source tasks feeding it."""

    __slots__ = ("produced", "consumed", "high", "low", "tasks", "consumer_waiting",
                 "_waiters", "_handovers", "_lock")  # fmt: skip

    def __init__(self, high: int = BUFFER_HIGH_WATER, low: int = BUFFER_LOW_WATER) -> None:
        #: Items the bridge buffered; written only by the producing thread.
        self.produced = 0
        #: Items the consumer took; written only by the consuming thread.
        self.consumed = 0
        self.high = high
        self.low = low
        self.tasks: set[asyncio.Task[None]] = set()
        #: Set by a consumer on another thread while it blocks for the next item
        #: (see ``hand_over``).
        self.consumer_waiting = False
        self._waiters: list[asyncio.Future[None]] = []
        self._handovers: list[asyncio.Future[None]] = []
        self._lock = threading.Lock()

    def full(self) -> bool:
        """Whether sources should stop pulling until the consumer catches up."""
        return self.produced - self.consumed >= self.high

    async def room(self) -> None:
        """Wait until the consumer has drained the buffer to the low-water mark."""
        if not self.full():
            return
        waiter = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiters.append(waiter)
        # Checked again now that the waiter is visible: the consumer may have drained
        # everything between the first check and the append, looking for a waiter each
        # time and finding none. If the buffer is still full, the consumer has at least
        # ``high - low`` items left to take, and one of those takes will see the waiter.
        if not self.full():
            with self._lock, contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            return
        await waiter

    async def hand_over(self) -> None:
        """Wait until a consumer blocked on another thread has taken an item.

        That consumer needs the GIL to run, and the loop thread would keep it until it
        blocks or the interpreter's switch interval (5 ms) has passed: the first chunk
        would reach a sync consumer milliseconds after an async one. Waiting here
        blocks the loop thread, so the consumer runs now. Returns at once if the
        consumer is not waiting for items.
        """
        if not self.consumer_waiting:
            return
        waiter = asyncio.get_running_loop().create_future()
        with self._lock:
            self._handovers.append(waiter)
        # As in ``room``: once the waiter is visible, an item still buffered is one the
        # consumer will take, seeing the waiter; with none left, nothing would wake it.
        if self.produced - self.consumed <= 0:
            with self._lock, contextlib.suppress(ValueError):
                self._handovers.remove(waiter)
            return
        await waiter

    def took_one(self) -> None:
        """Called by the consumer for every item it takes off the buffer."""
        self.consumed += 1
        if self._handovers:
            with self._lock:
                handovers, self._handovers = self._handovers, []
            _resolve_all(handovers)
        if self._waiters and self.produced - self.consumed <= self.low:
            with self._lock:
                waiters, self._waiters = self._waiters, []
            _resolve_all(waiters)

    def track(self, task: asyncio.Task[None]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def settle(self) -> None:
        """Wait (at most ``CLOSE_TIMEOUT`` seconds) for the tracked source tasks to end."""
        pending = [task for task in self.tasks if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=CLOSE_TIMEOUT)


def _resolve_all(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        waiter.get_loop().call_soon_threadsafe(_resolve, waiter)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


_current: contextvars.ContextVar[FlowScope | None] = contextvars.ContextVar(
    "rxllm_flow_scope", default=None
)


def current_scope() -> FlowScope | None:
    """The scope of the bridge subscribing right now, if any."""
    return _current.get()


def context_with(scope: FlowScope) -> contextvars.Context:
    """A copy of the current context in which ``scope`` is the current scope."""
    context = contextvars.copy_context()
    context.run(_current.set, scope)
    return context
