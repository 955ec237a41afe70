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
when the batch is disposed, cancelled or fails, and cancels the tasks too. A shard
that cannot reach the Event (its scheduler gone) stops its calls the same way, and
the client, seeing its scheduler gone, fails the batch with ``APIConnectionError``
at once instead of waiting while Dask tries to reconnect.

Nothing outlives a batch: its models' connection pools are closed on the workers,
and its topics and Event are removed from the scheduler (which would otherwise keep
them, and a topic's latest chunk groups, until it stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import distributed
import reactivex
from reactivex import Observable
from reactivex import operators as ops

import rxllm
from rxllm._constants import CLOSE_TIMEOUT
from rxllm.config import RunConfig, ensure_configs
from rxllm.errors import APIConnectionError, InvalidInputError
from rxllm.runnable import Config, Runnable

from ._seal import Sealed, seal

__all__ = ["abatch", "abatch_as_completed", "batch", "batch_as_completed", "observe_batch"]

ClientLike = distributed.Client | str

#: Seconds between a shard's looks at its batch's cancel Event.
CANCEL_POLL = 0.05
#: Seconds between the client's looks at its connection to the scheduler.
SCHEDULER_POLL = 0.1
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
    runnable, models = shard.runnable.open()
    source = _outputs(runnable, shard) if shard.mode == "outputs" else _chunks(runnable, shard)
    worker = distributed.get_worker()
    sent = 0
    try:
        async for group in rxllm.aiterate_batches(source):
            # log_event takes msgpack only; the chunks are rxllm's pydantic models.
            message = pickle.dumps((run, group), protocol=pickle.HIGHEST_PROTOCOL)
            worker.log_event(shard.topic, message)
            sent += 1
    finally:
        # The models were made for this shard: their pooled connections go with it.
        for model in models:
            aclose = getattr(model, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
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
    where = dask.scheduler.address if dask.scheduler is not None else "?"
    batch_id = uuid.uuid4().hex
    topic, cancel = f"rxllm-chunks-{batch_id}", f"rxllm-cancel-{batch_id}"
    arrivals: asyncio.Queue[tuple[str, int, Any]] = asyncio.Queue()

    def receiver(number: int) -> Any:
        def on_event(event: tuple[float, bytes]) -> None:
            arrivals.put_nowait(("group", number, pickle.loads(event[1])))

        return on_event

    futures: list[distributed.Future[Any]] = []
    topics: list[str] = []
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
            topics.append(shard.topic)
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
            except asyncio.CancelledError:
                if not future.cancelled():  # this wait was cancelled, not the task
                    raise
                arrivals.put_nowait(("error", number, _cancelled_under_us()))
            except Exception as error:  # Dask's FutureCancelledError is one
                failure = _cancelled_under_us() if future.cancelled() else error
                arrivals.put_nowait(("error", number, failure))

        async def watch_scheduler() -> None:
            # A lost scheduler takes the batch's tasks with it: no use waiting while the
            # client tries to reconnect (for distributed.comm.timeouts.connect).
            while dask.status == "running":  # noqa: ASYNC110 (Dask has no event for it)
                await asyncio.sleep(SCHEDULER_POLL)
            lost = APIConnectionError(f"lost the Dask scheduler at {where} mid-batch")
            arrivals.put_nowait(("error", -1, lost))

        waiters = [asyncio.ensure_future(wait(n, f)) for n, f in enumerate(futures)]
        waiters.append(asyncio.ensure_future(watch_scheduler()))
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
        # Without its scheduler, the client could only wait for it: the workers, cut
        # off from the cancel Event too, stop their calls themselves.
        if dask.status == "running":
            if not finished:
                await _stop(dask, cancel, futures, waiters[: len(futures)])
            await _unsubscribe(dask, topics, finished)
        for waiter in waiters:
            waiter.cancel()
        if owned:
            await dask.close()


async def _stop(
    dask: distributed.Client,
    cancel: str,
    futures: list[distributed.Future[Any]],
    waiters: list[asyncio.Task[None]],
) -> None:
    """Stop a batch's shards on the workers.

    Dask does not stop a running coroutine when its task is cancelled, so the shards
    watch the batch's cancel Event. Once they have seen it and ended (or after
    ``CLOSE_TIMEOUT``), the Event is cleared, which deletes it: the scheduler would
    keep a set Event for ever.
    """
    event = distributed.Event(cancel, client=dask)
    with contextlib.suppress(Exception):
        await event.set()
        if waiters:
            await asyncio.wait(waiters, timeout=CLOSE_TIMEOUT)
        await event.clear()
    with contextlib.suppress(Exception):
        await dask.cancel(futures)


async def _unsubscribe(dask: distributed.Client, topics: list[str], finished: bool) -> None:
    """Stop listening to a batch's topics, and leave nothing of them behind.

    Dask would keep a lot: the scheduler keeps every topic it has seen, with its latest
    events (``distributed.admin.low-level-log-length`` of them), until it stops; and a
    client keeps the handler of a topic it has unsubscribed from. So the topics are
    dropped on the scheduler (their subscriptions with them) and their handlers here:
    all of them after a finished batch, whose groups have all arrived; after a
    cancelled one, groups may still be on their way, so the handlers stay, doing
    nothing (for an event with no handler, Dask logs an error).
    """
    try:
        await asyncio.wait_for(dask.run_on_scheduler(_forget_topics, topics), CLOSE_TIMEOUT)
    except Exception:  # such as a scheduler without rxllm: unsubscribe as usual
        for name in topics:
            with contextlib.suppress(Exception):
                dask.unsubscribe_topic(name)
    for name in topics:
        if finished:
            dask._event_handlers.pop(name, None)
        else:
            dask._event_handlers[name] = _ignore


def _cancelled_under_us() -> APIConnectionError:
    return APIConnectionError(
        "a shard's Dask task was cancelled: the scheduler went away, or another client cancelled it"
    )


def _forget_topics(topics: list[str], dask_scheduler: Any) -> None:
    """Drop topics, with their events and subscriptions, on the scheduler."""
    for name in topics:
        dask_scheduler._broker._topics.pop(name, None)


def _ignore(event: object) -> None:
    """The handler of a cancelled batch's topics, for groups still on their way."""


def _observe(
    runnable: Runnable[Any, Any, Any],
    inputs: Iterable[Any],
    config: Config | Sequence[Config],
    client: ClientLike,
    mode: Mode,
    return_exceptions: bool,
) -> Observable[tuple[int, Any]]:
    items = list(inputs)
    configs = ensure_configs(config, len(items))
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
    pairs = rxllm.aiterate(_observe(runnable, items, config, client, "outputs", return_exceptions))
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
