"""Tapping: look at a stream without changing it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import abc

from ._check import check_callable
from ._operator import Operator, named
from ._skeleton import Hooks, tapping
from ._text import is_token

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
    hooks = Hooks(on_next, on_error, on_completed, on_dispose)

    def start(_: abc.SchedulerBase | None) -> Hooks:
        if on_subscribe is not None:
            on_subscribe()
        return hooks

    return tapping(start)


@named
def on_first_token(func: Callable[[Any], None]) -> Operator:
    """Call ``func`` with the first token, once per subscription.

    A token is an item with text, reasoning or a tool call (or a parsed object), as for
    ``first_token_timeout``: a chat model's opening role-only chunk does not count, a
    reasoning model's first thought does. Items pass through unchanged.

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

    def start(_: abc.SchedulerBase | None) -> Hooks:
        waiting = True

        def watch(item: Any) -> None:
            nonlocal waiting
            if waiting and is_token(item):
                waiting = False
                func(item)

        return Hooks(on_next=watch)

    return tapping(start)
