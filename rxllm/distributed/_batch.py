"""Batches on a Dask cluster: the client's side and the workers' side.

The inputs are dealt out in shards, one per worker (fewer when ``max_concurrency`` is
smaller), and each shard is one Dask task: an ``async`` task that runs all its calls
concurrently on the worker's event loop, so a worker does not need a thread per call
and its model keeps one connection pool. ``max_concurrency`` is split among the
shards, so the calls in flight over the whole cluster never pass it.

Streamed chunks travel back grouped: each group is every chunk that was ready at once
on a worker (``rxllm.aiterate_batches``), sent as one ``Worker.log_event`` on a topic
of the batch's own, which the client subscribes to. A shard's result says how many
groups it sent, so the client finishes a shard only once they have all arrived.

If a worker dies, Dask runs its shard again on another worker. Each run of a shard
tags its groups with an id of its own, and the client counts the groups of the run
that finished: a re-run's inputs stream again from their start (``observe_batch``
then delivers their chunks a second time under the same indexes; ``batch`` keeps the
last output of each index).

Cancellation: each batch has a ``distributed.Event``; every shard watches it and
cancels its calls (closing their HTTP responses) when it is set. The client sets it
when the batch is disposed, cancelled or fails, and cancels the tasks too.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import distributed
import reactivex
from reactivex import Observable
from reactivex import operators as ops

import rxllm
from rxllm.config import RunConfig, ensure_config
from rxllm.errors import APIConnectionError, InvalidInputError
from rxllm.runnable import Config, Runnable

from ._seal import Sealed, seal

__all__ = ["abatch", "abatch_as_completed", "batch", "batch_as_completed", "observe_batch"]

ClientLike = distributed.Client | str

#: Seconds between a shard's looks at its batch's cancel Event.
CANCEL_POLL = 0.05
Mode = Literal["chunks", "outputs"]


@dataclass(frozen=True)
class _Shard:
    """What one task runs: the runnable, its share of the inputs and of the limit."""

    runnable: Sealed
    indexes: list[int]
    inputs: list[Any]
    configs: list[RunConfig]
    limit: int | None
    mode: Mode
    return_exceptions: bool
    topic: str
    cancel: str

    def __repr__(self) -> str:  # the inputs and configs stay out of Dask's reprs
        return f"<rxllm shard of {len(self.indexes)} inputs>"


# -- the workers' side --------------------------------------------------------------


async def _run_shard(shard: _Shard) -> tuple[str, int] | None:
    """Run a shard on the worker's loop until it ends or its batch is cancelled."""
    work = asyncio.ensure_future(_work(shard))
    watch = asyncio.ensure_future(_cancelled(shard.cancel))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work, watch):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    return work.result() if not work.cancelled() else None


async def _cancelled(name: str) -> None:
    """Return once the batch's cancel Event is set.

    Polled rather than awaited with ``Event.wait``: a wait cancelled when the shard
    ends is logged by the scheduler as an error, once per shard.
    """
    event = distributed.Event(name)
    while not await event.is_set():  # noqa: ASYNC110 (see above)
        await asyncio.sleep(CANCEL_POLL)


async def _work(shard: _Shard) -> tuple[str, int]:
    """Stream the shard's pairs back in groups; return this run's id and its count."""
    run = uuid.uuid4().hex
    runnable: Runnable[Any, Any, Any] = shard.runnable.open()
    source = _outputs(runnable, shard) if shard.mode == "outputs" else _chunks(runnable, shard)
    worker = distributed.get_worker()
    sent = 0
    async for group in rxllm.aiterate_batches(source):
        # log_event takes msgpack only; the chunks are rxllm's pydantic models.
        message = pickle.dumps((run, group), protocol=pickle.HIGHEST_PROTOCOL)
        worker.log_event(shard.topic, message)
        sent += 1
    return run, sent


def _outputs(runnable: Runnable[Any, Any, Any], shard: _Shard) -> Observable[tuple[int, Any]]:
    configs = [c.model_copy(update={"max_concurrency": shard.limit}) for c in shard.configs]
    indexes = shard.indexes
    return runnable.observe_batch(
        shard.inputs, configs, return_exceptions=shard.return_exceptions
    ).pipe(ops.map(lambda pair: (indexes[pair[0]], pair[1])))  # type: ignore[index]


def _chunks(runnable: Runnable[Any, Any, Any], shard: _Shard) -> Observable[tuple[int, Any]]:
    def one(position: int) -> Observable[tuple[int, Any]]:
        index = shard.indexes[position]
        source: Observable[tuple[int, Any]] = runnable.observe(
            shard.inputs[position], shard.configs[position]
        ).pipe(ops.map(lambda chunk: (index, chunk)))
        if shard.return_exceptions:
            source = source.pipe(ops.catch(lambda error, _: reactivex.just((index, error))))
        return source

    merge = ops.merge_all() if shard.limit is None else ops.merge(max_concurrent=shard.limit)
    return reactivex.from_iterable(range(len(shard.indexes))).pipe(ops.map(one), merge)


# -- the client's side --------------------------------------------------------------


def _configs(config: Config | Sequence[Config], count: int) -> list[RunConfig]:
    if isinstance(config, list | tuple):
        if len(config) != count:
            raise InvalidInputError(
                f"got {len(config)} configs for {count} inputs; pass one config or one each"
            )
        return [ensure_config(c) for c in config]
    return [ensure_config(cast(Config, config))] * count


def _shares(count: int, workers: int, limit: int | None) -> list[tuple[list[int], int | None]]:
    """Deal ``count`` inputs into shards, and split ``limit`` among them."""
    shards = max(1, min(count, workers, limit or workers))
    limits: list[int | None] = [None] * shards
    if limit is not None:
        limits = [limit // shards + (1 if i < limit % shards else 0) for i in range(shards)]
    return [(list(range(i, count, shards)), limits[i]) for i in range(shards)]


async def _connect(client: ClientLike) -> tuple[distributed.Client, bool]:
    """A client on the running loop, and whether it is ours to close."""
    if isinstance(client, distributed.Client):
        if client.asynchronous:  # made by the caller, on this loop
            return client, False
        if client.scheduler is None:
            raise InvalidInputError("the distributed.Client given is not connected")
        address, security = client.scheduler.address, client.security
    elif isinstance(client, str):
        address, security = client, None
    else:
        raise InvalidInputError(
            f"client must be a distributed.Client or a scheduler address, not "
            f"{type(client).__name__}"
        )
    try:
        connected = await distributed.Client(
            address, asynchronous=True, security=security, set_as_default=False
        )
    except OSError as error:  # TimeoutError included: Dask retried until its timeout
        raise APIConnectionError(f"cannot reach the Dask scheduler at {address}: {error}") from None
    return connected, True


async def _run(
    sealed: Sealed,
    inputs: list[Any],
    configs: list[RunConfig],
    client: ClientLike,
    mode: Mode,
    return_exceptions: bool,
) -> AsyncGenerator[tuple[int, Any], None]:
    if not inputs:
        return
    dask, owned = await _connect(client)
    batch_id = uuid.uuid4().hex
    topic, cancel = f"rxllm-chunks-{batch_id}", f"rxllm-cancel-{batch_id}"
    arrivals: asyncio.Queue[tuple[str, int, Any]] = asyncio.Queue()

    def receiver(number: int) -> Any:
        def on_event(event: tuple[float, bytes]) -> None:
            arrivals.put_nowait(("group", number, pickle.loads(event[1])))

        return on_event

    futures: list[distributed.Future[Any]] = []
    waiters: list[asyncio.Task[None]] = []
    finished = False
    try:
        workers = sorted(await dask.nthreads())
        shares = _shares(len(inputs), len(workers), configs[0].max_concurrency)
        for number, (indexes, limit) in enumerate(shares):
            shard = _Shard(
                sealed,
                indexes,
                [inputs[i] for i in indexes],
                [configs[i] for i in indexes],
                limit,
                mode,
                return_exceptions,
                f"{topic}-{number}",
                cancel,
            )
            dask.subscribe_topic(shard.topic, receiver(number))
            futures.append(
                dask.submit(
                    _run_shard,
                    shard,
                    key=f"rxllm-shard-{batch_id}-{number}",
                    pure=False,
                    workers=[workers[number % len(workers)]] if workers else None,
                    allow_other_workers=True,
                )
            )

        async def wait(number: int, future: distributed.Future[Any]) -> None:
            try:
                arrivals.put_nowait(("done", number, await future))
            except Exception as error:
                arrivals.put_nowait(("error", number, error))
            except asyncio.CancelledError:
                if not future.cancelled():  # this wait was cancelled, not the task
                    raise
                lost = APIConnectionError(
                    "a shard's Dask task was cancelled: the scheduler went away, or "
                    "another client cancelled it"
                )
                arrivals.put_nowait(("error", number, lost))

        waiters = [asyncio.ensure_future(wait(n, f)) for n, f in enumerate(futures)]
        received: dict[tuple[int, str], int] = {}
        expected: list[tuple[str, int] | None] = [None] * len(futures)

        def unfinished() -> bool:
            return any(
                e is None or received.get((n, e[0]), 0) < e[1] for n, e in enumerate(expected)
            )

        while unfinished():
            kind, number, payload = await arrivals.get()
            if kind == "error":
                raise payload
            if kind == "done":
                expected[number] = payload
            else:
                run, group = payload
                received[number, run] = received.get((number, run), 0) + 1
                for pair in group:
                    yield pair
        finished = True
    finally:
        for waiter in waiters:
            waiter.cancel()
        if not finished:
            with contextlib.suppress(Exception):
                await distributed.Event(cancel, client=dask).set()
            with contextlib.suppress(Exception):
                await dask.cancel(futures)
        for number in range(len(futures)):
            dask.unsubscribe_topic(f"{topic}-{number}")
        if owned:
            await dask.close()


def _observe(
    runnable: Runnable[Any, Any, Any],
    inputs: Iterable[Any],
    config: Config | Sequence[Config],
    client: ClientLike,
    mode: Mode,
    return_exceptions: bool,
) -> Observable[tuple[int, Any]]:
    items = list(inputs)
    configs = _configs(config, len(items))
    if not isinstance(client, distributed.Client | str):
        raise InvalidInputError(
            f"client must be a distributed.Client or a scheduler address, not "
            f"{type(client).__name__}"
        )
    sealed = seal(runnable)

    async def run(_: object) -> AsyncIterator[tuple[int, Any]]:
        async for pair in _run(sealed, items, configs, client, mode, return_exceptions):
            yield pair

    return rxllm.RunnableLambda(run, name="distributed_batch").observe(None)


def _in_order(pairs: Iterable[tuple[int, Any]], count: int) -> list[Any]:
    collected = dict(pairs)
    return [collected[index] for index in range(count)]


def observe_batch(
    runnable: Runnable[Any, Any, Any],
    inputs: Iterable[Any],
    config: Config | Sequence[Config] = None,
    *,
    client: ClientLike,
    return_exceptions: bool = False,
) -> Observable[tuple[int, Any]]:
    """A cold Observable of ``(index, chunk)`` pairs, streamed from the workers.

    Chunks of one input arrive in order; inputs interleave. Without
    ``return_exceptions`` the first failure ends the batch (and stops every call on
    the cluster); with it, a failed input's exception arrives as ``(index, error)``
    after any chunks it produced, and the others carry on. Disposing the subscription
    stops the calls running on the workers.

    Raises:
        InvalidInputError: at once, for a runnable that cannot be pickled (naming it),
            a wrong number of configs or a ``client`` that is neither a Client nor an
            address.
    """
    return _observe(runnable, inputs, config, client, "chunks", return_exceptions)


def batch(
    runnable: Runnable[Any, Any, Any],
    inputs: Iterable[Any],
    config: Config | Sequence[Config] = None,
    *,
    client: ClientLike,
    return_exceptions: bool = False,
) -> list[Any]:
    """``runnable.batch(inputs, config)`` on the cluster: outputs in input order."""
    items = list(inputs)
    pairs = _observe(runnable, items, config, client, "outputs", return_exceptions)
    return _in_order(rxllm.iterate(pairs), len(items))


async def abatch(
    runnable: Runnable[Any, Any, Any],
    inputs: Iterable[Any],
    config: Config | Sequence[Config] = None,
    *,
    client: ClientLike,
    return_exceptions: bool = False,
) -> list[Any]:
    """Async twin of ``batch``; cancelling it stops the calls on the workers."""
    items = list(inputs)
    pairs: AsyncGenerator[tuple[int, Any], None] = rxllm.aiterate(
        _observe(runnable, items, config, client, "outputs", return_exceptions)
    )
    async with contextlib.aclosing(pairs):
        return _in_order([pair async for pair in pairs], len(items))


def batch_as_completed(
    runnable: Runnable[Any, Any, Any],
    inputs: Iterable[Any],
    config: Config | Sequence[Config] = None,
    *,
    client: ClientLike,
    return_exceptions: bool = False,
) -> Iterator[tuple[int, Any]]:
    """``runnable.batch_as_completed`` on the cluster: ``(index, output)`` as each ends."""
    return rxllm.iterate(_observe(runnable, inputs, config, client, "outputs", return_exceptions))


def abatch_as_completed(
    runnable: Runnable[Any, Any, Any],
    inputs: Iterable[Any],
    config: Config | Sequence[Config] = None,
    *,
    client: ClientLike,
    return_exceptions: bool = False,
) -> AsyncIterator[tuple[int, Any]]:
    """Async twin of ``batch_as_completed``."""
    return rxllm.aiterate(_observe(runnable, inputs, config, client, "outputs", return_exceptions))
