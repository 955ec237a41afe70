"""Run a runnable over many inputs on a Dask cluster, with ``batch``'s semantics.

``batch``, ``abatch``, ``batch_as_completed``, ``abatch_as_completed`` and
``observe_batch`` take the runnable, the inputs, a config and ``client`` (a
``distributed.Client`` or a scheduler address) and behave as the runnable's own
methods do: outputs in input order, per-input ``return_exceptions``,
``max_concurrency`` as a limit on calls in flight over the whole cluster, errors of
their rxllm type with their ``.partial``, and cancellation that stops the calls
running on the workers. ``observe_batch`` streams ``(index, chunk)`` pairs.

Needs the ``dask`` extra: ``pip install 'rxllm[dask]'``.
"""

from __future__ import annotations

try:
    import distributed as _distributed  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "rxllm.distributed needs Dask's distributed package: pip install 'rxllm[dask]'"
    ) from error

from ._batch import abatch, abatch_as_completed, batch, batch_as_completed, observe_batch

__all__ = ["abatch", "abatch_as_completed", "batch", "batch_as_completed", "observe_batch"]
