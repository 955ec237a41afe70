"""``Runnable``: one primitive, ``observe``, and every LangChain-style method derived from it.

``observe(input)`` returns a cold Observable: nothing happens until subscription, and
each subscription makes one call. ``invoke``, ``stream``, ``batch`` and their async
twins are bridges over it (``rxllm._runtime``), so they all share its behaviour: cancellation,
errors carrying partial text, bounded buffering.

``pipe(*steps)`` composes: a step is any Observable operator (``reactivex.operators``
or ``rxllm.operators``), applied to the stream as it flows, or another Runnable, which
receives the previous step's final output (``RunnableLambda(make_prompt).pipe(llm)``).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import aclosing
from typing import Any, ClassVar, Concatenate, Generic, ParamSpec, TypeAlias, TypeVar, cast

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.scheduler import ImmediateScheduler

from ._runs import EventFilter, StreamEvent, current_parent, observe_events, traced
from ._runtime import aiterate, from_callables, iterate
from ._steps import as_step, operator_name, operator_step
from .config import RunConfig, ensure_config, ensure_configs
from .errors import InvalidInputError
from .schema import GenerationChunk, _Aggregate

__all__ = ["Config", "Operator", "Pipeline", "Runnable", "RunnableLambda", "aggregate", "present"]

In = TypeVar("In", contravariant=True)
Chunk = TypeVar("Chunk", covariant=True)
Out = TypeVar("Out", covariant=True)
T = TypeVar("T")
R = TypeVar("R")
_P = ParamSpec("_P")
_S = TypeVar("_S")

_IMMEDIATE = ImmediateScheduler()
_CHILD_CONFIG = RunConfig()

Config: TypeAlias = RunConfig | Mapping[str, Any] | None
"""A ``RunConfig``, a dict with its keys, or ``None``."""

Operator: TypeAlias = Callable[[Observable[Any]], Observable[Any]]
"""Anything ``Observable.pipe`` accepts: a function from Observable to Observable."""


def _over(
    observe: Callable[Concatenate[_S, _P], Observable[StreamEvent]],
    bridge: Callable[[Observable[StreamEvent]], R],
    name: str,
    doc: str,
) -> Callable[Concatenate[_S, _P], R]:
    """A method named ``name`` taking ``observe``'s arguments and handing its Observable
    to ``bridge``: the iterator twins of ``observe_events``, parameters spelled once.
    It calls the instance's own ``observe`` method, so a subclass that overrides it is
    what its twins iterate."""
    own = observe.__name__

    def method(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> R:
        return bridge(getattr(self, own)(*args, **kwargs))

    method.__name__ = name
    method.__qualname__ = f"Runnable.{name}"
    method.__doc__ = doc
    signature = inspect.signature(observe).replace(return_annotation=inspect.Signature.empty)
    method.__signature__ = signature  # type: ignore[attr-defined]  # for help() and IDEs
    return method


_aiterate_events: Callable[[Observable[StreamEvent]], AsyncIterator[StreamEvent]] = aiterate
_iterate_events: Callable[[Observable[StreamEvent]], Iterator[StreamEvent]] = iterate


def present(item: Any) -> Any:
    """What ``stream`` yields for an item: a text chunk as its text, else the item."""
    return item.text if type(item) is GenerationChunk else item


def aggregate(items: Sequence[Any]) -> Any:
    """What ``invoke`` returns for a stream of items: their sum, where a sum makes sense.

    Strings and text chunks join into a string, message chunks merge into an
    ``AIMessage``, lists concatenate; for anything else (parsed objects, snapshots) the
    last item is the final output. An empty stream has no output: ``None``.
    """
    total = _Aggregate()
    for item in items:
        total.add(item)
    return total.result()


class Runnable(ABC, Generic[In, Chunk, Out]):
    """Something that turns an input into a stream of chunks, and the ways to consume it.

    Subclasses implement ``observe``; ``_presenter`` and ``_aggregate`` say how a chunk
    is shown by ``stream`` and how chunks add up to what ``invoke`` returns.
    """

    #: What events call a run of this runnable: ``on_<type>_start`` and so on.
    _run_type: ClassVar[str] = "chain"

    def observe(self, input: In, config: Config = None, **kwargs: Any) -> Observable[Chunk]:
        """A cold Observable of this runnable's chunks for ``input``.

        Nothing is sent until subscription; every subscription is one call, and
        disposing it cancels the call.

        Raises:
            InvalidInputError: at once, for an input or config this runnable can't take.
        """
        checked = ensure_config(config)
        return traced(self, input, checked, self._observe(input, checked, **kwargs))

    @abstractmethod
    def _observe(self, input: In, config: RunConfig, **kwargs: Any) -> Observable[Chunk]:
        """The chunks for ``input``; ``observe`` adds the run's events around them."""

    def _ls_params(self) -> dict[str, Any]:
        """The ``ls_*`` metadata a model adds to its events (none for other runnables)."""
        return {}

    def get_name(self) -> str:
        """The name this runnable reports (in events, errors, reprs)."""
        return type(self).__name__

    def _presenter(self) -> Callable[[Any], Out] | None:
        """What ``stream`` applies to each chunk before yielding it (``None``: nothing)."""
        return present

    def _aggregate(self, chunks: Sequence[Any]) -> Out:
        """What ``invoke`` returns for all the chunks of one call."""
        return cast(Out, aggregate(chunks))

    # -- single input -------------------------------------------------------------

    def invoke(self, input: In, config: Config = None, **kwargs: Any) -> Out:
        """Run once and return the final output."""
        return self._aggregate(list(iterate(self.observe(input, config, **kwargs))))

    async def ainvoke(self, input: In, config: Config = None, **kwargs: Any) -> Out:
        """Run once on the running loop and return the final output."""
        chunks = aiterate(self.observe(input, config, **kwargs))
        async with aclosing(chunks):
            return self._aggregate([chunk async for chunk in chunks])

    def stream(self, input: In, config: Config = None, **kwargs: Any) -> Iterator[Out]:
        """Yield the output as it is produced. Works inside a running event loop too.

        Leaving the loop early cancels the call.
        """
        observable = self.observe(input, config, **kwargs)  # validates now, not on next()
        return iterate(observable, self._presenter())

    def astream(self, input: In, config: Config = None, **kwargs: Any) -> AsyncIterator[Out]:
        """Yield the output as it is produced, on the running loop.

        Closing the iterator (``contextlib.aclosing``, or garbage collection after a
        ``break``) or cancelling the consuming task cancels the call.
        """
        observable = self.observe(input, config, **kwargs)
        return aiterate(observable, self._presenter())

    # -- events -------------------------------------------------------------------

    def observe_events(
        self,
        /,
        input: In,
        config: Config = None,
        *,
        version: str = "v2",
        include_names: Sequence[str] | None = None,
        include_types: Sequence[str] | None = None,
        include_tags: Sequence[str] | None = None,
        exclude_names: Sequence[str] | None = None,
        exclude_types: Sequence[str] | None = None,
        exclude_tags: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Observable[StreamEvent]:
        """A cold Observable of the events of one call, in LangChain's format.

        One subscription is one call; the events of every run it makes (this runnable,
        pipeline steps, nested calls) arrive in order, then completion, or the call's
        error after the events produced before it.

        Args:
            version: ``"v2"`` (LangChain's default) or ``"v1"``.
            include_names, include_types, include_tags: keep only the runs matching any.
            exclude_names, exclude_types, exclude_tags: drop the runs matching any.
        """
        event_filter = EventFilter(
            include_names=include_names,
            include_types=include_types,
            include_tags=include_tags,
            exclude_names=exclude_names,
            exclude_types=exclude_types,
            exclude_tags=exclude_tags,
        )
        return observe_events(self.observe(input, config, **kwargs), version, event_filter)

    astream_events = _over(
        observe_events,
        _aiterate_events,
        "astream_events",
        "Yield the events of one call on the running loop (see ``observe_events``).",
    )
    stream_events = _over(
        observe_events,
        _iterate_events,
        "stream_events",
        "Yield the events of one call, from sync code (see ``observe_events``).",
    )

    # -- many inputs --------------------------------------------------------------

    def observe_batch(
        self,
        inputs: Iterable[In],
        config: Config | Sequence[Config] = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> Observable[tuple[int, Out | Exception]]:
        """A cold Observable of ``(index, output)`` pairs, in completion order.

        At most ``max_concurrency`` calls are in flight at once. Without
        ``return_exceptions`` the first failure ends the whole batch (and cancels the
        calls in flight); with it, a failed input yields its exception in place of
        an output and the others carry on.

        Raises:
            InvalidInputError: at once, before any call is made, for the first input
                this runnable can't take, unless ``return_exceptions`` is set: then that
                input's error takes its place and the others run.
        """
        inputs = list(inputs)
        configs = ensure_configs(config, len(inputs))
        sources = [
            self._observe_one(item, cfg, return_exceptions, kwargs)
            for item, cfg in zip(inputs, configs, strict=True)
        ]
        limit = configs[0].max_concurrency if configs else None
        aggregate_chunks = self._aggregate

        def one(index: int) -> Observable[tuple[int, Out | Exception]]:
            def final(chunks: list[Any]) -> tuple[int, Out | Exception]:
                return index, aggregate_chunks(chunks)

            result: Observable[tuple[int, Out | Exception]] = sources[index].pipe(
                ops.to_list(), ops.map(final)
            )
            if return_exceptions:
                result = result.pipe(ops.catch(lambda error, _: reactivex.just((index, error))))
            return result

        # ``merge(max_concurrent=None)`` would merge nothing: unlimited is ``merge_all``.
        merge = ops.merge_all() if limit is None else ops.merge(max_concurrent=limit)
        indexes = reactivex.from_iterable(range(len(sources)), scheduler=_IMMEDIATE)
        return indexes.pipe(ops.map(one), merge)

    def _observe_one(
        self, input: In, config: RunConfig, return_exceptions: bool, kwargs: dict[str, Any]
    ) -> Observable[Chunk]:
        """One input's Observable in a batch; with ``return_exceptions``, an input that
        is refused fails its own Observable only."""
        try:
            return self.observe(input, config, **kwargs)
        except InvalidInputError as error:
            if not return_exceptions:
                raise
            return reactivex.throw(error)

    def batch(
        self,
        inputs: Iterable[In],
        config: Config | Sequence[Config] = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Out | Exception]:
        """Run on many inputs concurrently; outputs keep the order of the inputs."""
        pairs = self.observe_batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        return _in_order(iterate(pairs))

    async def abatch(
        self,
        inputs: Iterable[In],
        config: Config | Sequence[Config] = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Out | Exception]:
        """Run on many inputs concurrently on the running loop; outputs keep input order."""
        pairs = aiterate(
            self.observe_batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        )
        async with aclosing(pairs):
            return _in_order([pair async for pair in pairs])

    def batch_as_completed(
        self,
        inputs: Iterable[In],
        config: Config | Sequence[Config] = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> Iterator[tuple[int, Out | Exception]]:
        """Run on many inputs concurrently, yielding ``(index, output)`` as each finishes."""
        return iterate(
            self.observe_batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        )

    def abatch_as_completed(
        self,
        inputs: Iterable[In],
        config: Config | Sequence[Config] = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> AsyncIterator[tuple[int, Out | Exception]]:
        """Async twin of ``batch_as_completed``."""
        return aiterate(
            self.observe_batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        )

    # -- composition --------------------------------------------------------------

    def pipe(self, *steps: Operator | Runnable[Any, Any, Any]) -> Pipeline:
        """A new Runnable: this one followed by ``steps``.

        Examples:
            >>> from reactivex import operators as ops
            >>> from rxllm.llms import FakeStreamingListLLM
            >>> shout = FakeStreamingListLLM(responses=["hi there"]).pipe(
            ...     ops.map(lambda chunk: chunk.text.upper()))
            >>> shout.invoke("greet me")
            'HI THERE'
        """
        return Pipeline(self, *steps)

    def __or__(self, other: Operator | Runnable[Any, Any, Any]) -> Pipeline:
        return self.pipe(other)


def _in_order(pairs: Iterable[tuple[int, T]]) -> list[T]:
    collected = dict(pairs)
    return [collected[index] for index in range(len(collected))]


class Pipeline(Runnable[Any, Any, Any]):
    """A runnable followed by operators and other runnables; made by ``Runnable.pipe``.

    Operators transform the stream as it flows, chunk by chunk. A Runnable step waits
    for the stream before it to finish, then runs on that stream's final output, as a
    step of a LangChain sequence does. ``stream`` yields the last step's items (text
    chunks as their text) and ``invoke`` returns their ``aggregate``.
    """

    def __init__(
        self,
        first: Runnable[Any, Any, Any],
        *steps: Operator | Runnable[Any, Any, Any],
        name: str | None = None,
    ) -> None:
        if isinstance(first, Pipeline):  # flatten, as LangChain does for sequences
            steps = first.steps + steps
            first = first.first
        for step in steps:
            if not (isinstance(step, Runnable) or callable(step)):
                raise InvalidInputError(
                    f"a pipe step must be an operator or a Runnable, not {type(step).__name__}"
                )
        self.first: Runnable[Any, Any, Any] = first
        self.steps: tuple[Operator | Runnable[Any, Any, Any], ...] = steps
        self.name = name

    def get_name(self) -> str:
        return self.name or "RunnableSequence"

    def _observe(self, input: Any, config: RunConfig, **kwargs: Any) -> Observable[Any]:
        # The steps' tags and metadata come from this run, as the children of its events.
        child_config = _CHILD_CONFIG
        first = self.first.observe(input, child_config, **kwargs)
        steps = self.steps

        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            parent = current_parent()  # this pipeline's run, if events are listened to
            stream = as_step(first, parent, 1)
            final: Callable[[Sequence[Any]], Any] = self.first._aggregate
            for index, step in enumerate(steps, start=2):
                if isinstance(step, Runnable):
                    stream = stream.pipe(
                        ops.to_list(),
                        ops.flat_map(_then(step, final, child_config, parent, index)),
                    )
                    final = step._aggregate
                else:
                    stream = operator_step(step, stream, parent, index, child_config)
                    final = aggregate
            return stream.subscribe(observer, scheduler=scheduler)

        return Observable(subscribe)

    def __repr__(self) -> str:
        parts = [repr(self.first), *(_describe(step) for step in self.steps)]
        return f"Pipeline({', '.join(parts)})"


def _then(
    step: Runnable[Any, Any, Any],
    final: Callable[[Sequence[Any]], Any],
    config: RunConfig,
    parent: Any,
    index: int,
) -> Callable[[list[Any]], Observable[Any]]:
    def run(items: list[Any]) -> Observable[Any]:
        return as_step(step.observe(final(items), config), parent, index)

    return run


def _describe(step: Operator | Runnable[Any, Any, Any]) -> str:
    return repr(step) if isinstance(step, Runnable) else operator_name(step)


class RunnableLambda(Runnable[Any, Any, Any]):
    """A Python function as a Runnable, so it can be a step of a pipeline.

    ``func`` may be a plain function (run on the worker pool, so it may block; on the
    calling thread when a blocking consumer calls it alone), a coroutine function (run
    on the loop), or a sync or async generator function, which then streams one chunk
    per value it yields.

    Examples:
        >>> RunnableLambda(lambda topic: f"Tell me about {topic}").invoke("bees")
        'Tell me about bees'
    """

    def __init__(self, func: Callable[[Any], Any], name: str | None = None) -> None:
        if not callable(func):
            raise InvalidInputError(f"RunnableLambda needs a callable, not {type(func).__name__}")
        self.func = func
        self.name = name

    def get_name(self) -> str:
        name = self.name or str(getattr(self.func, "__name__", "<lambda>"))
        return "RunnableLambda" if name == "<lambda>" else name

    def _observe(self, input: Any, config: RunConfig, **kwargs: Any) -> Observable[Any]:
        func = self.func
        if inspect.isasyncgenfunction(func):
            return from_callables(astream=lambda: func(input))
        if inspect.iscoroutinefunction(func):
            return from_callables(acall=lambda: cast(Awaitable[Any], func(input)))
        if inspect.isgeneratorfunction(func):
            return from_callables(stream=lambda: func(input))
        return from_callables(call=lambda: func(input))

    def __repr__(self) -> str:
        return f"RunnableLambda({self.get_name()})"
