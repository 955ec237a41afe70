"""Mapping: text out of chunks, text transformed in place, the running total."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc

from ..errors import InvalidInputError
from ..schema import AIMessageChunk
from ._check import check_callable
from ._operator import Operator, named
from ._text import text_of, with_text

__all__ = ["Snapshot", "accumulate", "map_text", "text"]


def _mapping(func: Callable[[Any], Any]) -> Operator:
    # ``ops.map`` wraps every call in a try/except and a selector lookup; this is the
    # same contract (an exception in ``func`` ends the stream with it) in less time.
    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            emit = observer.on_next

            def on_next(item: Any) -> None:
                try:
                    result = func(item)
                except Exception as error:
                    observer.on_error(error)
                    return
                emit(result)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


@named
def text() -> Operator:
    """The text of each item: a chunk's text or message content; a ``str`` as is.

    .. code-block:: text

        text():  -GenerationChunk("he")-AIMessageChunk("llo")-|
                 -"he"------------------"llo"-----------------|

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> from rxllm.schema import GenerationChunk
        >>> reactivex.of(GenerationChunk(text="he"), GenerationChunk(text="llo")).pipe(
        ...     text(), ops.to_list()).run()
        ['he', 'llo']
    """
    return _mapping(text_of)


@named
def map_text(func: Callable[[str], str]) -> Operator:
    """Apply ``func`` to the text of each item, keeping its kind and everything else.

    A chunk keeps its metadata, usage and tool-call pieces; only its text changes.
    ``func`` sees one chunk at a time: to transform whole words or lines, put a
    segmenter (``words()``, ``lines()``) before it.

    .. code-block:: text

        map_text(str.upper):  -"he"-"llo"-|
                              -"HE"-"LLO"-|

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> reactivex.of("he", "llo").pipe(map_text(str.upper), ops.to_list()).run()
        ['HE', 'LLO']
    """
    check_callable("map_text", "func", func)

    def apply(item: Any) -> Any:
        if type(item) is str:
            return func(item)
        return with_text(item, func(text_of(item)))

    return _mapping(apply)


class Snapshot(str):
    """The whole text so far, as ``accumulate()`` emits it.

    A ``str`` in every way, except that it is a snapshot rather than a piece: the
    final output of a stream of snapshots is the last one, not their concatenation,
    and ``invoke`` (which joins plain ``str`` pieces) returns the last one for it.
    """

    __slots__ = ()


@named
def accumulate() -> Operator:
    """The running total: after each item, everything so far.

    Text (``str`` or ``GenerationChunk``) accumulates into a ``Snapshot``, a ``str``;
    message chunks into the ``AIMessage`` so far (with the tool calls that parse so
    far), as ``invoke`` would return it if the stream stopped there. Either way the
    last item is the final output, and ``invoke`` returns it. Each item is a copy of
    everything so far, so its cost grows with the length of the text.

    .. code-block:: text

        accumulate():  -"he"-"llo"-"!"------|
                       -"he"-"hello"-"hello!"|

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> reactivex.of("he", "llo", "!").pipe(accumulate(), ops.to_list()).run()
        ['he', 'hello', 'hello!']
    """

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            total = ""
            message: AIMessageChunk | None = None
            emit = observer.on_next

            def on_next(item: Any) -> None:
                nonlocal total, message
                if type(item) is str:
                    piece = item
                elif isinstance(item, AIMessageChunk):
                    message = item if message is None else message + item
                    observer.on_next(message.to_message())
                    return
                else:
                    try:
                        piece = text_of(item)
                    except InvalidInputError as error:
                        observer.on_error(error)
                        return
                # Taken out of the closure first, the text so far has one reference, so
                # CPython appends to it in place: the Snapshot is the one copy per item.
                so_far, total = total, ""
                so_far += piece
                total = so_far
                emit(Snapshot(so_far))

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator
