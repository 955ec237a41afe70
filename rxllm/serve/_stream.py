"""``to_sse``: a stream of chunks as the bytes of server-sent events in a client's format.

The source is an Observable (subscribed through ``rxllm.aiterate``, so a slow client
holds the upstream back and closing the bytes disposes the subscription) or any async
iterable. Nothing is sent before the source's first item: an error before it is raised
to the caller, who can still answer with an HTTP status (``SSEResponse`` does); an error
after it is written in the format's own in-band error shape, and the stream ends.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Sequence
from typing import Any

from reactivex import Observable

from .. import aiterate_batches
from ..errors import InvalidInputError, RxLLMError
from ._anthropic import AnthropicEncoder
from ._encoder import Encoder
from ._errors import client_error
from ._events import EventsEncoder
from ._openai import OpenAIChatEncoder, OpenAICompletionsEncoder
from ._responses import OpenAIResponsesEncoder
from ._sse import Outgoing, frames
from ._vercel import VercelUIEncoder

__all__ = ["FORMATS", "check_source", "encoded", "encoder_for", "to_sse"]

logger = logging.getLogger("rxllm.serve")

#: The wire formats, by the name ``to_sse`` takes, and what makes their encoders.
FORMATS: dict[str, Callable[..., Encoder]] = {
    "openai-chat": OpenAIChatEncoder,
    "openai-completions": OpenAICompletionsEncoder,
    "openai-responses": OpenAIResponsesEncoder,
    "anthropic": AnthropicEncoder,
    "vercel-ui": VercelUIEncoder,
    "events": EventsEncoder,
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


async def _one_by_one(source: AsyncIterable[Any]) -> AsyncGenerator[list[Any], None]:
    async with contextlib.aclosing(aiter(source)) as items:  # type: ignore[type-var]
        async for item in items:
            yield [item]


def _batches(source: Observable[Any] | AsyncIterable[Any]) -> AsyncGenerator[list[Any], None]:
    """The source's items, every batch of them that is ready at once (an Observable's
    come through ``aiterate_batches``: a network read's chunks make one write)."""
    if isinstance(source, Observable):
        return aiterate_batches(source)
    return _one_by_one(source)


async def encoded(
    source: Observable[Any] | AsyncIterable[Any], encoder: Encoder
) -> AsyncGenerator[Sequence[Outgoing], None]:
    """The events of ``source`` in ``encoder``'s format, a list per batch of items that
    were ready together (one item, for an async iterable).

    Raises whatever the source raises before its first item; later errors become the
    format's in-band error. Closing this generator closes the source.
    """
    started = False
    async with contextlib.aclosing(_batches(source)) as batches:
        try:
            async for batch in batches:
                events: list[Outgoing] = []
                failure: Exception | None = None
                for item in batch:
                    try:
                        events += encoder.feed(item)
                    except Exception as error:  # an item no format can carry
                        failure = error
                        break
                    started = True
                if events:
                    yield events
                if failure is not None:
                    raise failure
        except Exception as error:
            if not started:
                raise
            if not isinstance(error, RxLLMError):  # a bug: the client is told no more
                logger.exception("a served stream failed after its first event")
            yield encoder.fail(client_error(error))
            return
    yield encoder.close()


def to_sse(
    source: Observable[Any] | AsyncIterable[Any],
    *,
    format: str,
    model: str | None = None,
) -> AsyncIterator[bytes]:
    """The server-sent events of a stream of chunks, in a format real clients read.

    The formats, and where each puts what a chunk carries:

    - ``"openai-chat"``: ``chat.completion.chunk`` objects as ``POST
      /v1/chat/completions`` streams them: text in ``delta.content``, reasoning in
      ``delta.reasoning_content``, tool calls in ``delta.tool_calls``, then a chunk with
      the ``finish_reason``, a usage chunk, ``data: [DONE]``.
    - ``"openai-completions"``: ``text_completion`` objects (``POST /v1/completions``),
      text only, then the finish reason, usage and ``[DONE]``.
    - ``"openai-responses"``: the Responses API's typed events (``POST /v1/responses``):
      ``response.created``, a ``reasoning`` item (its summary), ``message`` items (text
      and refusal parts), ``function_call`` items, then ``response.completed`` with the
      output and usage, or ``response.incomplete`` for a reply cut by its length or the
      content filter.
    - ``"anthropic"``: the Messages API's events (``POST /v1/messages``):
      ``message_start``, ``thinking`` / ``text`` / ``tool_use`` content blocks, then
      ``message_delta`` with the stop reason in Anthropic's words and the usage, and
      ``message_stop``. Thinking blocks carry no signature.
    - ``"vercel-ui"``: the AI SDK's UI message stream protocol v1, what ``useChat``
      reads: ``start``, ``text-*``, ``reasoning-*`` and ``tool-input-*`` parts,
      ``finish`` with the ``finishReason`` and the usage in ``messageMetadata``, then
      ``[DONE]``; its clients look for the encoder's ``headers``
      (``x-vercel-ai-ui-message-stream: v1``).
    - ``"events"``: the event dicts of ``observe_events`` / ``astream_events``, one
      JSON object a ``data:`` line (chunks in pydantic's JSON mode), then ``[DONE]``.

    An error after the first byte is written in the format's own shape and ends the
    stream: an ``{"error": {...}}`` object (both OpenAI formats), ``response.failed``
    (Responses), an ``error`` event (Anthropic), an ``error`` part then ``[DONE]``
    (AI SDK), an ``{"event": "error", ...}`` object (events). A stream with no items is
    a valid empty reply in every format.

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
            yield frames(batch)
