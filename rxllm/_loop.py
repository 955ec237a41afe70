"""The library's own event loop thread and worker threads.

Synchronous callers (``stream``, ``invoke``, a plain ``observe().subscribe``) need
somewhere to run async provider calls: one daemon thread runs one event loop for the
whole process, started on first use. Blocking work (llama.cpp, a provider's sync
``_call``/``_stream``, sync lambdas) runs on a bounded thread pool so it never blocks
any event loop. Both are recreated in a child process after ``fork``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from ._constants import MAX_WORKER_THREADS

__all__ = ["library_loop", "on_loop_thread", "worker_pool"]

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pool: ThreadPoolExecutor | None = None


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


def on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the calling thread is the one running ``loop``."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _forget_after_fork() -> None:
    # The child has neither the loop's thread nor the pool's: start afresh on next use.
    global _loop, _pool, _lock
    _loop, _pool, _lock = None, None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
