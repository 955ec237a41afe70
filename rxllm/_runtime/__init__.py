"""The runtime: everything that depends on which event loop it runs on (private).

- ``_loop``: the library's loop thread, the stepped loop a sync consumer drives on its
  own thread, the worker pool for blocking calls;
- ``_flow``: flow control between a source and a slow consumer;
- ``_pump``: provider calls (async or sync iterators, coroutines, functions) as cold
  Observables, started by subscription and stopped by disposal;
- ``_bridge``: the one consumer, and the iterators over it (``iterate``, ``aiterate``,
  ``aiterate_batches``);
- ``_per_loop``: a resource (an HTTP client pool) held once per event loop.

Transport and providers receive what they need from here (a ``PerLoop`` of clients);
nothing in here knows a runnable, a provider or HTTP.
"""

from ._bridge import Consumer, aiterate, aiterate_batches, iterate
from ._flow import FlowScope, context_with, current_scope
from ._loop import library_loop, library_tasks, own_loop, pause, running_loop
from ._per_loop import PerLoop
from ._pump import Source, direct_of, from_callables

__all__ = [
    "Consumer",
    "FlowScope",
    "PerLoop",
    "Source",
    "aiterate",
    "aiterate_batches",
    "context_with",
    "current_scope",
    "direct_of",
    "from_callables",
    "iterate",
    "library_loop",
    "library_tasks",
    "own_loop",
    "pause",
    "running_loop",
]
