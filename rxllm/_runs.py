"""Runs and their events: the machinery behind ``rxllm.events`` (private).

Every subscription of a runnable is a *run*. When someone is listening (an
``observe_events`` subscription, or a ``tap_events`` operator upstream), each run reports
``on_<type>_start``, one ``on_<type>_stream`` per chunk and ``on_<type>_end``.

How the run tree is known: the listener puts a root into a context variable for the time
of its ``subscribe`` call; each run reads its parent from it when subscribed and puts
itself there while subscribing its own sources. asyncio copies context into tasks and
callbacks, and rxllm's worker threads run in a copy of it, so a provider call, a lambda
and everything they start find their run. When nobody listens, a run costs one context
lookup per subscription and nothing per chunk.
"""

from __future__ import annotations

import contextvars
import threading
import uuid
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Sequence
from time import time as _now
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict

from reactivex import Observable, abc

from ._internals import scheduler_loop
from ._payloads import Payloads, payloads_for
from ._runtime import Source, direct_of
from .errors import InvalidInputError, attach_partial

if TYPE_CHECKING:
    from .config import RunConfig
    from .runnable import Runnable

__all__ = [
    "EventFilter",
    "RunHook",
    "StreamEvent",
    "Parent",
    "Report",
    "Run",
    "current_parent",
    "dispatch_custom_event",
    "observe_events",
    "parent_run",
    "run_hook",
    "step_tag",
    "subscribe_run",
    "tap_events",
    "traced",
]

Version = Literal["v1", "v2"]


class StreamEvent(TypedDict, total=False):
    """One event, with the keys of LangChain's ``StreamEvent``."""

    event: str
    name: str
    run_id: str
    tags: list[str]
    metadata: dict[str, Any]
    data: dict[str, Any]
    parent_ids: list[str]
    #: When the event happened (``time.time()``); not in LangChain's events, added so
    #: that timelines can be drawn from a list of events alone.
    time: float


class EventFilter:
    """Which runs' events to keep.

    The ``include_*`` criteria are OR-ed (no criterion: everything is included); any
    ``exclude_*`` match wins. Each tests the event's own run: its name, its type
    (``llm``, ``chat_model``, ``chain``, ``parser``, ...) or one of its tags.
    """

    __slots__ = ("include_names", "include_types", "include_tags", "exclude_names",
                 "exclude_types", "exclude_tags")  # fmt: skip

    def __init__(
        self,
        *,
        include_names: Sequence[str] | None = None,
        include_types: Sequence[str] | None = None,
        include_tags: Sequence[str] | None = None,
        exclude_names: Sequence[str] | None = None,
        exclude_types: Sequence[str] | None = None,
        exclude_tags: Sequence[str] | None = None,
    ) -> None:
        for label, value in (
            ("include_names", include_names),
            ("include_types", include_types),
            ("include_tags", include_tags),
            ("exclude_names", exclude_names),
            ("exclude_types", exclude_types),
            ("exclude_tags", exclude_tags),
        ):
            if value is not None and (
                isinstance(value, str)
                or not isinstance(value, Iterable)
                or not all(isinstance(v, str) for v in value)
            ):
                raise InvalidInputError(f"{label} must be a list of strings, not {value!r}")
        self.include_names = frozenset(include_names or ())
        self.include_types = frozenset(include_types or ())
        self.include_tags = frozenset(include_tags or ())
        self.exclude_names = frozenset(exclude_names or ())
        self.exclude_types = frozenset(exclude_types or ())
        self.exclude_tags = frozenset(exclude_tags or ())

    @classmethod
    def of(cls, filters: dict[str, Any]) -> EventFilter:
        """The filter keyword arguments a caller gave, a misspelled one refused by name
        (rather than with Python's ``TypeError`` from inside)."""
        unknown = sorted(set(filters) - set(cls.__slots__))
        if unknown:
            raise InvalidInputError(
                f"unknown event filter {', '.join(unknown)}; the filters are "
                f"{', '.join(cls.__slots__)}"
            )
        return cls(**filters)

    def keeps(self, name: str, run_type: str, tags: Sequence[str]) -> bool:
        if name in self.exclude_names or run_type in self.exclude_types:
            return False
        if self.exclude_tags.intersection(tags):
            return False
        if not (self.include_names or self.include_types or self.include_tags):
            return True
        return (
            name in self.include_names
            or run_type in self.include_types
            or bool(self.include_tags.intersection(tags))
        )


class _Listener:
    """Where the events of one ``observe_events`` (or ``tap_events``) subscription go."""

    __slots__ = ("emit_to", "version", "filter", "thread", "loop", "deliver")

    def __init__(
        self,
        emit_to: Callable[[StreamEvent], None],
        version: Version,
        filter: EventFilter,
        scheduler: abc.SchedulerBase | None,
    ) -> None:
        self.emit_to = emit_to
        self.version = version
        self.filter = filter
        self.thread = threading.get_ident()
        self.loop = scheduler_loop(scheduler)
        #: Hands an event over. Events from a worker thread (a custom event in a sync
        #: lambda) go through the listener's loop, so the observer is never called from
        #: two threads at once; without a loop, straight to ``emit_to``.
        self.deliver: Callable[[StreamEvent], None] = (
            emit_to if self.loop is None else self._deliver_on_loop
        )

    def _deliver_on_loop(self, event: StreamEvent) -> None:
        if self.loop is not None and threading.get_ident() != self.thread:
            self.loop.call_soon_threadsafe(self.emit_to, event)
        else:
            self.emit_to(event)


class Run:
    """One run in the tree: what its events say about it."""

    __slots__ = (
        "listener",
        "run_id",
        "name",
        "run_type",
        "tags",
        "metadata",
        "parent_ids",
        "inherited_tags",
        "inherited_metadata",
        "is_root",
        "kept",
        "event_names",
    )

    def __init__(
        self,
        listener: _Listener,
        run_id: str,
        name: str,
        run_type: str,
        tags: list[str],
        metadata: dict[str, Any],
        parent_ids: list[str],
        inherited_tags: list[str],
        inherited_metadata: dict[str, Any],
        is_root: bool,
    ) -> None:
        self.listener = listener
        self.run_id = run_id
        self.name = name
        self.run_type = run_type
        self.tags = tags
        self.metadata = metadata
        self.parent_ids = parent_ids
        self.inherited_tags = inherited_tags
        self.inherited_metadata = inherited_metadata
        self.is_root = is_root
        self.kept = listener.filter.keeps(name, run_type, tags)
        # Named once, not once per chunk.
        self.event_names = {kind: f"on_{run_type}_{kind}" for kind in ("start", "stream", "end")}

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        if not self.kept:
            return
        self.emit_event(self.event_names[kind], data)

    def emit_event(self, event: str, data: Any, name: str | None = None) -> None:
        self.listener.deliver(
            {
                "event": event,
                "name": name or self.name,
                "run_id": self.run_id,
                "tags": self.tags,
                "metadata": self.metadata,
                "data": data,
                "parent_ids": self.parent_ids,
                "time": _now(),
            }
        )

    def emitter(self, kind: str) -> Callable[[dict[str, Any]], None] | None:
        """What ``emit(kind, data)`` does, for an event sent once per chunk: the fields
        that stay the same are laid out once and copied per event (0.2 µs less per chunk
        than building the dict, timeit). ``None`` when the run is not kept."""
        if not self.kept:
            return None
        fixed: StreamEvent = {
            "event": self.event_names[kind],
            "name": self.name,
            "run_id": self.run_id,
            "tags": self.tags,
            "metadata": self.metadata,
            "data": {},
            "parent_ids": self.parent_ids,
            "time": 0.0,
        }
        copy, deliver = fixed.copy, self.listener.deliver

        def emit(data: dict[str, Any]) -> None:
            event = copy()
            event["data"] = data
            event["time"] = _now()
            deliver(event)

        return emit


class Parent:
    """What a new run inherits: the listener, and its parent run if it has one."""

    __slots__ = ("listener", "run")

    def __init__(self, listener: _Listener, run: Run | None) -> None:
        self.listener = listener
        self.run = run

    def child(
        self,
        name: str,
        run_type: str,
        config: RunConfig,
        ls_params: dict[str, Any],
        step_tag: str | None,
    ) -> Run:
        listener, parent = self.listener, self.run
        v1 = listener.version == "v1"
        is_root = parent is None
        inherited_tags = (parent.inherited_tags if parent else []) + [
            tag for tag in config.tags if parent is None or tag not in parent.inherited_tags
        ]
        inherited_metadata = {**(parent.inherited_metadata if parent else {}), **config.metadata}
        tags = ([step_tag] if step_tag else []) + inherited_tags
        # LangChain's v1 leaves the provider's ls_* keys out of a root run's metadata.
        metadata = inherited_metadata if (v1 and is_root) else {**inherited_metadata, **ls_params}
        if parent is None or v1:
            parent_ids: list[str] = []
        else:
            parent_ids = [*parent.parent_ids, parent.run_id]
        return Run(
            listener,
            str(config.run_id or uuid.uuid4()),
            config.run_name or name,
            run_type,
            tags,
            metadata,
            parent_ids,
            inherited_tags,
            inherited_metadata,
            is_root,
        )


parent_run: contextvars.ContextVar[Parent | None] = contextvars.ContextVar(
    "rxllm_parent_run", default=None
)
step_tag: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "rxllm_step_tag", default=None
)


class RunHook(Protocol):
    """What ``rxllm.tracing`` installs to see every run, read once per subscription.

    ``None`` (no instrumentation) costs one global read per run.
    """

    def run(
        self,
        runnable: Runnable[Any, Any, Any],
        input: Any,
        config: RunConfig,
        source: Observable[Any],
    ) -> Observable[Any]:
        """The Observable to subscribe instead of ``source``, a run of ``runnable``."""

    def step(
        self, operator: Callable[[Observable[Any]], Observable[Any]], name: str
    ) -> Callable[[Observable[Any]], Observable[Any]]:
        """The operator to apply instead of ``operator``, the pipeline step ``name``."""


run_hook: RunHook | None = None


def traced(
    runnable: Runnable[Any, Any, Any],
    input: Any,
    config: RunConfig,
    source: Observable[Any],
) -> Observable[Any]:
    """``source`` as a run of ``runnable``: reporting events when someone listens."""
    return _Run(runnable, input, config, source)


class _Run(Observable[Any]):
    """A run of a runnable, which is its source's call when nobody would see the run."""

    def __init__(
        self,
        runnable: Runnable[Any, Any, Any],
        input: Any,
        config: RunConfig,
        source: Observable[Any],
    ) -> None:
        super().__init__(self._on_subscribe)
        self.runnable = runnable
        self.input = input
        self.config = config
        self.source = source

    def _on_subscribe(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        hook = run_hook
        source = self.source
        if hook is not None:
            source = hook.run(self.runnable, self.input, self.config, source)
        parent = parent_run.get()
        if parent is None:
            return source.subscribe(observer, scheduler=scheduler)
        run = self.child_of(parent)
        return subscribe_run(run, payloads_for(run, self.input), source, observer, scheduler, True)

    def child_of(self, parent: Parent) -> Run:
        runnable = self.runnable
        return parent.child(
            runnable.get_name(),
            runnable._run_type,
            self.config,
            runnable._ls_params(),
            step_tag.get(),
        )

    def direct(self) -> Source[Any] | None:
        """The source's call, for a bridge to iterate (``rxllm._runtime.Source``), while
        there is no hook and no listener: then the run would report nothing."""
        if run_hook is None and parent_run.get() is None:
            return direct_of(self.source)
        return None


class Report:
    """What a run says as its items pass: its start (once), an event per item, its end."""

    __slots__ = ("run", "formatter", "started", "add", "emit_stream")

    def __init__(self, run: Run, formatter: Payloads, start_now: bool) -> None:
        self.run = run
        self.formatter = formatter
        self.started = start_now
        self.add = formatter.add
        self.emit_stream = run.emitter("stream")
        if start_now:
            run.emit("start", formatter.start())

    def item(self, item: Any) -> None:
        if not self.started:
            self.started = True
            self.run.emit("start", self.formatter.start())
        self.add(item)
        if self.emit_stream is not None:
            self.emit_stream({"chunk": self.formatter.chunk(item)})

    def completed(self) -> None:
        if not self.started:
            self.started = True
            self.run.emit("start", self.formatter.start())
        self.run.emit("end", self.formatter.end())


def subscribe_run(
    run: Run,
    formatter: Payloads,
    source: Observable[Any],
    observer: abc.ObserverBase[Any],
    scheduler: abc.SchedulerBase | None,
    start_now: bool,
) -> abc.DisposableBase:
    report = Report(run, formatter, start_now)
    reported, observer_on_next = report.item, observer.on_next

    def on_next(item: Any) -> None:
        reported(item)
        observer_on_next(item)

    def on_completed() -> None:
        report.completed()
        observer.on_completed()

    token = parent_run.set(Parent(run.listener, run))
    step = step_tag.set(None)  # a step tag names this run, not its children
    try:
        return source.subscribe(on_next, observer.on_error, on_completed, scheduler=scheduler)
    finally:
        step_tag.reset(step)
        parent_run.reset(token)


def current_parent() -> Parent | None:
    """The run whose code (or subscription) is running now, for pipelines to build on."""
    return parent_run.get()


def _check_filter(filter: object) -> EventFilter:
    if not isinstance(filter, EventFilter):
        raise InvalidInputError(f"filter must be an EventFilter, not {type(filter).__name__}")
    return filter


def _check_version(version: str) -> Version:
    if version not in ("v1", "v2"):
        raise InvalidInputError(f"version must be 'v1' or 'v2', not {version!r}")
    return version  # type: ignore[return-value]


def _listening(
    source: Observable[Any],
    emit_to: Callable[[StreamEvent], None],
    version: Version,
    filter: EventFilter,
    observer: abc.ObserverBase[Any],
    scheduler: abc.SchedulerBase | None,
    forward_items: bool,
) -> abc.DisposableBase:
    token = parent_run.set(Parent(_Listener(emit_to, version, filter, scheduler), None))
    try:
        return source.subscribe(
            observer.on_next if forward_items else None,
            observer.on_error,
            observer.on_completed,
            scheduler=scheduler,
        )
    finally:
        parent_run.reset(token)


def observe_events(
    source: Observable[Any], version: str = "v2", filter: EventFilter | None = None
) -> Observable[StreamEvent]:
    """An Observable of the events of every run ``source`` makes when subscribed.

    ``source`` is any Observable that makes runs: ``model.observe(prompt)``, with
    operators applied or not (``Runnable.observe_events`` is this over ``observe``).
    Disposing the subscription cancels the call, as it does for ``source``.

    Examples:
        >>> from rxllm.llms import FakeStreamingListLLM
        >>> from reactivex import operators as ops
        >>> from rxllm.operators import total_timeout
        >>> llm = FakeStreamingListLLM(responses=["hi there"])
        >>> events = observe_events(llm.observe("x").pipe(total_timeout(5)))
        >>> [e["event"] for e in events.pipe(ops.to_list()).run()]
        ['on_llm_start', 'on_llm_stream', 'on_llm_stream', 'on_llm_end']
    """
    checked = _check_version(version)
    event_filter = EventFilter() if filter is None else _check_filter(filter)
    return _Events(source, checked, event_filter)


class _Events(Observable[StreamEvent]):
    """The events of the runs of ``source`` (``observe_events``)."""

    def __init__(self, source: Observable[Any], version: Version, filter: EventFilter) -> None:
        super().__init__(self._on_subscribe)
        self.source = source
        self.version = version
        self.event_filter = filter

    def _on_subscribe(
        self, observer: abc.ObserverBase[StreamEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return _listening(
            self.source,
            observer.on_next,
            self.version,
            self.event_filter,
            observer,
            scheduler,
            False,
        )

    def direct(self) -> Source[StreamEvent] | None:
        """For a bridge: when ``source`` is one run of a provider call and nothing else
        (no operator, no hook, no enclosing run), the call iterated by the bridge, the
        run's events made as its items pass (``_events_of_lone``), rather than a task,
        two observers and an inbox between them. On a fake chat model (min of alternating
        runs) the events cost 1.6 µs a chunk over the call's own iterator this way, 2.5
        subscribed."""
        run = self.source
        if (
            not isinstance(run, _Run)
            or run_hook is not None
            or parent_run.get() is not None
            or step_tag.get() is not None
        ):
            return None
        call = direct_of(run.source)
        if call is None:
            return None
        make = call.make
        return Source(
            lambda: _aevents_of_lone(_Lone(self, run, call)),
            None if make is None else lambda: _events_of_lone(_Lone(self, run, call), make),
        )


class _Lone:
    """One run that nobody else sees, iterated by a bridge (``_Events.direct``): its
    events queue in ``pending`` as its items pass; its call's code runs under ``parent``
    (so what it starts, and its custom events, belong to the run)."""

    __slots__ = ("pending", "parent", "report", "texts", "call")

    def __init__(self, events: _Events, run: _Run, call: Source[Any]) -> None:
        self.pending: deque[StreamEvent] = deque()
        listener = _Listener(self.pending.append, events.version, events.event_filter, None)
        child = run.child_of(Parent(listener, None))
        self.parent = Parent(listener, child)
        self.report = Report(child, payloads_for(child, run.input), True)
        self.texts: list[str] = []
        self.call = call

    def failed(self, error: Exception) -> None:
        if self.texts:
            attach_partial(error, "".join(self.texts))


async def _aevents_of_lone(lone: _Lone) -> AsyncGenerator[StreamEvent, None]:
    """The events of ``lone``, its call's async iterator stepped on this task."""
    pending, parent, report, texts, text_of = (
        lone.pending, lone.parent, lone.report.item, lone.texts, lone.call.text_of
    )  # fmt: skip
    items: AsyncIterator[Any] | None = None
    try:
        token = parent_run.set(parent)
        try:
            items = lone.call.amake()
        finally:
            parent_run.reset(token)
        step = items.__anext__
        while True:
            while pending:
                yield pending.popleft()
            token = parent_run.set(parent)
            try:
                item = await step()
            except StopAsyncIteration:
                break
            finally:
                parent_run.reset(token)
            if text_of is not None:
                texts.append(text_of(item))
            report(item)
        lone.report.completed()
    except Exception as exc:
        lone.failed(exc)
        while pending:
            yield pending.popleft()
        raise
    finally:
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()
    while pending:
        yield pending.popleft()


def _events_of_lone(lone: _Lone, make: Callable[[], Iterator[Any]]) -> Iterator[StreamEvent]:
    """The events of ``lone``, its call's blocking iterator stepped on this thread."""
    pending, parent, report, texts, text_of = (
        lone.pending, lone.parent, lone.report.item, lone.texts, lone.call.text_of
    )  # fmt: skip
    items: Iterator[Any] | None = None
    try:
        token = parent_run.set(parent)
        try:
            items = make()
        finally:
            parent_run.reset(token)
        step = items.__next__
        while True:
            while pending:
                yield pending.popleft()
            token = parent_run.set(parent)
            try:
                item = step()
            except StopIteration:
                break
            finally:
                parent_run.reset(token)
            if text_of is not None:
                texts.append(text_of(item))
            report(item)
        lone.report.completed()
    except Exception as exc:
        lone.failed(exc)
        while pending:
            yield pending.popleft()
        raise
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()
    while pending:
        yield pending.popleft()


def tap_events(
    handler: Callable[[StreamEvent], Any], *, version: str = "v2", **filters: Sequence[str] | None
) -> Callable[[Observable[Any]], Observable[Any]]:
    """An operator that shows the upstream runs' events to ``handler``, chunks unchanged.

    The events come from the same subscription as the chunks: one provider call,
    whichever way it is consumed.

    Examples:
        >>> from rxllm.llms import FakeStreamingListLLM
        >>> seen = []
        >>> llm = FakeStreamingListLLM(responses=["hi there"])
        >>> list(llm.pipe(tap_events(lambda e: seen.append(e["event"]))).stream("x"))
        ['hi', ' there']
        >>> seen
        ['on_llm_start', 'on_llm_stream', 'on_llm_stream', 'on_llm_end']
    """
    if not callable(handler):
        raise InvalidInputError(
            f"tap_events: handler must be callable, got {handler!r} ({type(handler).__name__})"
        )
    checked = _check_version(version)
    event_filter = EventFilter.of(filters)

    def apply(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            return _listening(source, handler, checked, event_filter, observer, scheduler, True)

        return Observable(subscribe)

    apply.__name__ = "tap_events"
    return apply


def dispatch_custom_event(name: str, data: Any) -> None:
    """Report a custom event (``on_custom_event``, v2 only) from the run running now.

    Call it from a lambda, a provider, or an operator's function; it lands under the run
    whose code is running. Outside any listened-to run it does nothing, so the same code
    works with ``stream()`` and with ``astream_events()``.
    """
    parent = parent_run.get()
    if parent is None or parent.run is None or parent.listener.version != "v2":
        return
    run = parent.run
    if run.kept:
        run.emit_event("on_custom_event", data, name)
