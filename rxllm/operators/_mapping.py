"""Mapping: text out of chunks, text transformed in place, the running total."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..schema import AIMessageChunk
from ._check import check_callable
from ._operator import Operator, named
from ._skeleton import mapping
from ._text import text_of, with_text

__all__ = ["Snapshot", "accumulate", "map_text", "text"]


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
    return mapping(lambda: text_of)


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

    return mapping(lambda: apply)


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

    def start() -> Callable[[Any], Any]:
        total = ""
        message: AIMessageChunk | None = None

        def step(item: Any) -> Any:
            nonlocal total, message
            if type(item) is str:
                piece = item
            elif isinstance(item, AIMessageChunk):
                message = item if message is None else message + item
                return message.to_message()
            else:
                piece = text_of(item)
            # Taken out of the closure first, the text so far has one reference, so
            # CPython appends to it in place: the Snapshot is the one copy per item.
            so_far, total = total, ""
            so_far += piece
            total = so_far
            return Snapshot(so_far)

        return step

    return mapping(start)
