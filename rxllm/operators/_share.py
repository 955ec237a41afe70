"""Fan-out: one provider call, any number of subscribers."""

from __future__ import annotations

import threading
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable

from .._runtime import FlowScope, context_with, current_scope
from ._check import refuse
from ._operator import Operator, named

__all__ = ["share_stream"]


class _Shared:
    """The one upstream subscription of a shared stream, and what it has emitted."""

    def __init__(self, source: Observable[Any], replay: bool) -> None:
        self.source = source
        self.replay = replay
        # Held while items are replayed to a newcomer, so none is missed or doubled.
        self.lock = threading.RLock()
        self.items: list[Any] = []
        self.observers: list[abc.ObserverBase[Any]] = []
        self.upstream: SingleAssignmentDisposable | None = None
        self.error: Exception | None = None
        self.completed = False
        #: The call's own flow scope, which tracks the tasks that make it.
        self.flow = FlowScope()
        #: Each subscriber's flow scope (its bridge's), if it has one.
        self.scopes: dict[int, FlowScope | None] = {}

    def subscribe(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        with self.lock:
            for item in self.items:
                observer.on_next(item)
            if self.error is not None:
                observer.on_error(self.error)
                return Disposable()
            if self.completed:
                observer.on_completed()
                return Disposable()
            self.observers.append(observer)
            self.scopes[id(observer)] = current_scope()
            upstream = None
            if self.upstream is None:
                upstream = self.upstream = SingleAssignmentDisposable()
        if upstream is not None:
            # The call belongs to no one subscriber: subscribed in a flow scope of its
            # own, it is neither paced by the first subscriber's buffer nor awaited when
            # that subscriber closes early while others still listen.
            upstream.disposable = context_with(self.flow).run(
                self.source.subscribe,
                self.on_next,
                self.on_error,
                self.on_completed,
                scheduler=scheduler,
            )
        return Disposable(lambda: self.leave(observer))

    def leave(self, observer: abc.ObserverBase[Any]) -> None:
        with self.lock:
            if observer not in self.observers:
                return
            self.observers.remove(observer)
            scope = self.scopes.pop(id(observer), None)
            if self.observers or self.error is not None or self.completed:
                return
            # The last subscriber left mid-stream: cancel the call. A later subscriber
            # starts a new one rather than receiving half a reply.
            upstream, self.upstream = self.upstream, None
            self.items = []
            if scope is not None:
                # Its bridge, closing, waits for the call's cleanup as for its own.
                for task in tuple(self.flow.tasks):
                    scope.track(task)
        if upstream is not None:
            upstream.dispose()

    def on_next(self, item: Any) -> None:
        with self.lock:
            if self.replay:
                self.items.append(item)
            for observer in tuple(self.observers):
                observer.on_next(item)

    def on_error(self, error: Exception) -> None:
        with self.lock:
            self.error = error
            observers, self.observers = self.observers, []
            for observer in observers:
                observer.on_error(error)

    def on_completed(self) -> None:
        with self.lock:
            self.completed = True
            observers, self.observers = self.observers, []
            for observer in observers:
                observer.on_completed()


@named
def share_stream(replay: bool = True) -> Operator:
    """Share one subscription (one provider call) among all subscribers.

    The first subscriber starts the call. With ``replay``, a subscriber arriving later
    first receives everything emitted so far, then the rest live, and one arriving
    after the end receives the whole stream without a new call. If every subscriber
    leaves before the end, the call is cancelled, and the next subscriber starts anew.

    The call is nobody's in particular: a slow subscriber does not slow the provider
    down (what it has not taken yet waits in its own bridge), and one leaving early
    does not wait for the call to end; the last one leaving cancels it and, as with an
    unshared stream, its bridge returns once the call has finished its cleanup.

    Unlike ``ops.share()`` (no replay) or ``ops.replay()`` with ``ops.ref_count()``
    (which subscribes again, making a second call, for a subscriber arriving after the
    end), this never makes more than one call per stream it completes.

    .. code-block:: text

        source:            -a-b-c-|
        share_stream():    -a-b-c-|         first subscriber
                           ----(ab)-c-|     subscribes at 4: a, b replayed at once

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> calls = []
        >>> source = reactivex.defer(lambda _: calls.append(1) or reactivex.of("a", "b"))
        >>> shared = source.pipe(share_stream())
        >>> shared.pipe(ops.to_list()).run(), shared.pipe(ops.to_list()).run(), len(calls)
        (['a', 'b'], ['a', 'b'], 1)
    """
    if not isinstance(replay, bool):
        raise refuse("share_stream", "replay", "a bool", replay)

    def operator(source: Observable[Any]) -> Observable[Any]:
        return Observable(_Shared(source, replay).subscribe)

    return operator
