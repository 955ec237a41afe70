"""``to_sse``: a stream of chunks as the bytes of server-sent events in a client's format.

The source is an Observable (subscribed through ``rxllm.aiterate``, so a slow client
holds the upstream back and closing the bytes disposes the subscription) or any async
iterable. Nothing is sent before the source's first item: an error before it is raised
to the caller, who can still answer with an HTTP status (``SSEResponse`` does); an error
after it is written in the format's own in-band error shape, and the stream ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from typing import Any

from reactivex import Observable

from .. import aiterate
from ..errors import InvalidInputError
from ._anthropic import AnthropicEncoder
from ._encoder import Encoder
from ._errors import client_error
from ._openai import OpenAIChatEncoder, OpenAICompletionsEncoder
from ._responses import OpenAIResponsesEncoder
from ._sse import Event, frame
from ._vercel import VercelUIEncoder

__all__ = ["FORMATS", "check_source", "encoded", "encoder_for", "to_sse"]

#: The wire formats, by the name ``to_sse`` takes, and what makes their encoders.
FORMATS: dict[str, Callable[..., Encoder]] = {
    "openai-chat": OpenAIChatEncoder,
    "openai-completions": OpenAICompletionsEncoder,
    "openai-responses": OpenAIResponsesEncoder,
    "anthropic": AnthropicEncoder,
    "vercel-ui": VercelUIEncoder,
}


def encoder_for(format: str, model: str | None = None, **options: Any) -> Encoder:
    """A new encoder of ``format``.

    Raises:
        InvalidInputError: for a format that is not in ``FORMATS``.
    """
    make = FORMATS.get(format) if isinstance(format, str) else None
    if make is None:
        raise InvalidInputError(
            f"unknown format {format!r}; the formats are {', '.join(sorted(FORMATS))}"
        )
    return make(model, **options)


def check_source(source: object) -> None:
    """Refuse, at once, a source that is neither an Observable nor an async iterable."""
    if not isinstance(source, Observable | AsyncIterable):
        raise InvalidInputError(
            f"a served source is an Observable or an async iterable, not {type(source).__name__}"
        )


def _items(source: Observable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    return aiterate(source) if isinstance(source, Observable) else aiter(source)


async def encoded(
    source: Observable[Any] | AsyncIterable[Any], encoder: Encoder
) -> AsyncGenerator[list[Event], None]:
    """The events of ``source`` in ``encoder``'s format, a list per source item.

    Raises whatever the source raises before its first item; later errors become the
    format's in-band error. Closing this generator closes the source.
    """
    items = _items(source)
    started = False
    try:
        async for item in items:
            events = encoder.feed(item)
            started = True
            if events:
                yield events
    except Exception as error:
        if not started:
            raise
        yield encoder.fail(client_error(error))
        return
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()
    yield encoder.close()


def to_sse(
    source: Observable[Any] | AsyncIterable[Any],
    *,
    format: str,
    model: str | None = None,
) -> AsyncIterator[bytes]:
    """The server-sent events of a stream of chunks, in a format real clients read.

    Args:
        source: an Observable (``runnable.observe(...)``, any ``pipe``) or async iterable
            of chat chunks, text chunks or strings; of event dicts for ``"events"``.
        format: one of ``FORMATS``: ``"openai-chat"``, ``"openai-completions"``,
            ``"openai-responses"``, ``"anthropic"``, ``"vercel-ui"``, ``"events"``.
        model: the model name the events report (default: the one the chunks name).

    Returns:
        An async iterator of bytes, one piece per source item; nothing is subscribed
        until it is iterated, and closing it cancels the source.

    Raises:
        InvalidInputError: at once, for an unknown format or source.
    """
    check_source(source)
    return _bytes(source, encoder_for(format, model))


async def _bytes(
    source: Observable[Any] | AsyncIterable[Any], encoder: Encoder
) -> AsyncIterator[bytes]:
    async with contextlib.aclosing(encoded(source, encoder)) as events:
        async for batch in events:
            yield b"".join(frame(event) for event in batch)
