"""One value per event loop, made on first use on that loop and closed on it.

An ``httpx.AsyncClient``'s pool holds connections opened on one loop; using them from
another fails or hangs. A provider called from sync code (the stepped loop, rxllm's loop
thread) and from async code (the caller's loop) alike keeps one client per loop here.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from .._constants import CLOSE_TIMEOUT
from ._loop import SteppedLoop, on_loop_thread, running_loop

__all__ = ["PerLoop"]

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One ``T`` per event loop, made on first use on that loop; entries go with their loop.

    Args:
        factory: makes a new value; called on the loop that will use it.
        is_closed: whether a value can no longer be used (a new one is made instead).
        aclose: closes a value; run on the value's own loop.
    """

    def __init__(
        self,
        factory: Callable[[], T],
        is_closed: Callable[[T], bool],
        aclose: Callable[[T], Coroutine[Any, Any, None]],
    ) -> None:
        self._factory = factory
        self._is_closed = is_closed
        self._aclose = aclose
        self._lock = threading.Lock()
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T]
        self._values = weakref.WeakKeyDictionary()

    def get(self) -> T:
        """The value for the running loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            value = self._values.get(loop)
            if value is None or self._is_closed(value):
                value = self._values[loop] = self._factory()
        return value

    def values(self) -> list[T]:
        """The open values, on any loop (for tests and diagnostics)."""
        with self._lock:
            return [v for v in self._values.values() if not self._is_closed(v)]

    def _take_all(self) -> list[tuple[asyncio.AbstractEventLoop, T]]:
        with self._lock:
            items = [(loop, v) for loop, v in self._values.items() if not self._is_closed(v)]
            self._values.clear()
        return items

    def close(self) -> None:
        """Close every value, each on its own loop; waits for those on other threads."""
        for loop, value in self._take_all():
            if loop.is_closed():
                continue
            if on_loop_thread(loop):  # close() from async code: cannot block here
                self._spawn_close(value)
            elif isinstance(loop, SteppedLoop):
                self._close_on_stepped(loop, value)
            elif loop.is_running():
                future: Future[None] = asyncio.run_coroutine_threadsafe(self._aclose(value), loop)
                future.result(CLOSE_TIMEOUT)
            elif running_loop() is None:
                loop.run_until_complete(self._aclose(value))
            # else: a stopped loop we cannot run from inside another: nothing to do.

    def close_soon(self) -> None:
        """Start closing every value on its own loop, without waiting: a finalizer's way,
        so that an owner dropped without ``close()`` leaks no pooled connections."""
        for loop, value in self._take_all():
            if isinstance(loop, SteppedLoop):
                self._close_on_stepped(loop, value)
                continue
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._spawn_close, value)

    async def aclose(self) -> None:
        """Close every value, each on its own loop."""
        running = asyncio.get_running_loop()
        for loop, value in self._take_all():
            if loop.is_closed():
                continue
            if loop is running:
                await self._aclose(value)
            elif isinstance(loop, SteppedLoop):
                self._close_on_stepped(loop, value)
            elif loop.is_running():
                await asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(self._aclose(value), loop)
                )

    def _spawn_close(self, value: T) -> None:
        task = asyncio.get_running_loop().create_task(self._aclose(value))
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    def _close_on_stepped(self, loop: SteppedLoop, value: T) -> None:
        """Close a value of the main thread's stepped loop: now if this code may run the
        loop, else at its next step (the loop runs nowhere else)."""
        if loop.is_closed():
            return
        if loop.steppable():
            loop.step_until(self._aclose(value))
        else:
            loop.call_soon_threadsafe(self._spawn_close, value)


# Closing tasks started by finalizers, kept alive until they finish.
_closing: set[asyncio.Task[None]] = set()
