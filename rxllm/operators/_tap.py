"""Tapping: look at a stream without changing it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ._check import check_callable
from ._operator import Operator, named
from ._text import text_of

__all__ = ["on_first_token", "tap"]


@named
def tap(
    on_next: Callable[[Any], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
    on_completed: Callable[[], None] | None = None,
    *,
    on_subscribe: Callable[[], None] | None = None,
    on_dispose: Callable[[], None] | None = None,
) -> Operator:
    """Call functions on a stream's notifications, and on its subscription and disposal.

    Items pass through unchanged. An exception raised by ``on_next`` ends the stream
    with that exception, as it would in ``ops.do_action``; ``on_dispose`` runs however
    the subscription ends (completion, error or the consumer leaving early).

    .. code-block:: text

        tap(print):  -a-b-|
                     -a-b-|   (prints a, then b)

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> seen = []
        >>> reactivex.of("a", "b").pipe(tap(seen.append), ops.to_list()).run()
        ['a', 'b']
        >>> seen
        ['a', 'b']
    """
    for argument, function in (
        ("on_next", on_next),
        ("on_error", on_error),
        ("on_completed", on_completed),
        ("on_subscribe", on_subscribe),
        ("on_dispose", on_dispose),
    ):
        check_callable("tap", argument, function, optional=True)

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            if on_subscribe is not None:
                on_subscribe()

            def next_(item: Any) -> None:
                if on_next is not None:
                    try:
                        on_next(item)
                    except Exception as error:
                        observer.on_error(error)
                        return
                observer.on_next(item)

            def error_(error: Exception) -> None:
                if on_error is not None:
                    try:
                        on_error(error)
                    except Exception as raised:
                        observer.on_error(raised)
                        return
                observer.on_error(error)

            def completed_() -> None:
                if on_completed is not None:
                    try:
                        on_completed()
                    except Exception as raised:
                        observer.on_error(raised)
                        return
                observer.on_completed()

            upstream = source.subscribe(next_, error_, completed_, scheduler=scheduler)
            if on_dispose is None:
                return upstream

            def dispose() -> None:
                upstream.dispose()
                on_dispose()

            return Disposable(dispose)

        return Observable(subscribe)

    return operator


@named
def on_first_token(func: Callable[[Any], None]) -> Operator:
    """Call ``func`` with the first item that has text, once per subscription.

    A chat model's opening role-only chunk has no text and does not count. Items pass
    through unchanged.

    .. code-block:: text

        on_first_token(f):  -""-"he"-"llo"-|
                            -""-"he"-"llo"-|   (f("he") before "he" goes on)

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> first = []
        >>> reactivex.of("", "he", "llo").pipe(on_first_token(first.append), ops.count()).run()
        3
        >>> first
        ['he']
    """
    check_callable("on_first_token", "func", func)

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            waiting = True
            emit = observer.on_next

            def on_next(item: Any) -> None:
                nonlocal waiting
                if waiting and text_of(item):
                    waiting = False
                    try:
                        func(item)
                    except Exception as error:
                        observer.on_error(error)
                        return
                emit(item)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator
