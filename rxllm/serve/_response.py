"""``SSEResponse``: a stream of chunks as a Starlette response, cancelled with its client.

The response pulls the source's first events before it sends anything, so an error
before the first byte is still an HTTP status (an upstream 429 is a 429 to the client,
an ``InvalidInputError`` a 400) with the format's own JSON error body; after it, the
error goes in-band. While it streams it also listens for ``http.disconnect``, whatever
the server's ASGI version, so a client that leaves while the model is still thinking
(no byte to write yet) cancels the upstream call at once, not at the next write. A slow
client holds the upstream back: the response awaits each write, and the bridge under
``to_sse`` pauses the source when its bounded buffer is full; nothing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Mapping
from typing import Any

from reactivex import Observable
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ..errors import RxLLMError
from ._errors import ClientError, client_error
from ._stream import _bytes, check_source, encoder_for

__all__ = ["SSE_HEADERS", "SSEResponse", "error_body", "error_response", "unless_disconnected"]

logger = logging.getLogger("rxllm.serve")

#: Sent with every stream: no caching, and no buffering by a proxy (nginx honours
#: ``X-Accel-Buffering``), so each event reaches the client when it is written.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

#: OpenAI's error types that Anthropic's API names otherwise.
_ANTHROPIC_KINDS = {"api_connection_error": "api_error"}


def error_body(format: str, error: ClientError) -> dict[str, Any]:
    """The JSON body of an error response in the API that ``format`` streams.

    Anthropic's clients read ``{"type": "error", "error": {"type", "message"}}``; every
    other format's clients (OpenAI's SDK, the AI SDK, which shows the body's text) read
    OpenAI's ``{"error": {"message", "type", "param", "code"}}``.
    """
    if format == "anthropic":
        kind = "request_too_large" if error.status == 413 else error.kind
        kind = _ANTHROPIC_KINDS.get(kind, kind)
        return {"type": "error", "error": {"type": kind, "message": error.message}}
    return {"error": {"message": error.message, "type": error.kind, "param": None, "code": None}}


def error_response(format: str, error: ClientError) -> Response:
    """An error as a JSON response: its status, the format's body, ``Retry-After``."""
    headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
    return JSONResponse(error_body(format, error), error.status, headers=headers)


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone (the body, if unread, is read and dropped)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(work: Awaitable[None], receive: Receive) -> bool:
    """Run ``work`` until it ends or the client leaves, whichever is first; cancel the
    other. Returns whether ``work`` ended (else the client left first).

    Raises:
        Whatever ``work`` raised.
    """
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        task.cancel()
        watch.cancel()
        await asyncio.gather(task, watch, return_exceptions=True)
    if task.cancelled():
        return False
    error = task.exception()
    if error is not None:
        raise error
    return True


class SSEResponse(Response):
    """Server-sent events of a stream of chunks, in a format real clients read.

    Use it from your own Starlette or FastAPI route::

        async def chat(request: Request) -> SSEResponse:
            prompt = (await request.json())["prompt"]
            return SSEResponse(model.observe(prompt), format="openai-chat")

    Args:
        source: an Observable (``runnable.observe(...)``, any ``pipe``) or an async
            iterable of chat chunks, text chunks or strings (event dicts for
            ``"events"``). Nothing is subscribed until the response is sent.
        format: one of ``rxllm.serve.FORMATS``.
        model: the model name the events report (default: the one the chunks name).
        headers: more response headers.
        **options: the format's own options (``include_usage=False`` for the OpenAI
            formats, as a client that did not ask for ``stream_options`` expects).

    Raises:
        InvalidInputError: at once, for an unknown format or source.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        source: Observable[Any] | AsyncIterable[Any],
        *,
        format: str,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        check_source(source)
        encoder = encoder_for(format, model, **options)
        self._setup(_bytes(source, encoder), format, {**encoder.headers, **(headers or {})})

    @classmethod
    def of_bytes(
        cls, body: AsyncIterator[bytes], *, format: str, headers: Mapping[str, str]
    ) -> SSEResponse:
        """A response sending ``body``, already encoded in ``format`` (resumed streams)."""
        response = cls.__new__(cls)
        response._setup(body, format, headers)
        return response

    def _setup(self, body: AsyncIterator[bytes], format: str, headers: Mapping[str, str]) -> None:
        self.body_iterator = body
        self.format = format
        self.status_code = 200
        self.background = None
        self.init_headers({**SSE_HEADERS, **headers})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # When the client leaves (or the server stops), closing the body disposes the
        # subscription, which cancels the upstream call and closes its response.
        try:
            await unless_disconnected(self._stream(scope, send), receive)
        finally:
            if self.background is not None:  # run however the response ended
                await self.background()

    async def _stream(self, scope: Scope, send: Send) -> None:
        async with contextlib.aclosing(self.body_iterator) as body:  # type: ignore[type-var]
            try:
                first = await anext(body, b"")
            except Exception as exc:
                if not isinstance(exc, RxLLMError):
                    logger.exception("a served stream failed before its first event")
                await error_response(self.format, client_error(exc))(scope, _no_receive, send)
                return
            await send(
                {"type": "http.response.start", "status": self.status_code,
                 "headers": self.raw_headers}
            )  # fmt: skip
            await send({"type": "http.response.body", "body": first, "more_body": True})
            async for piece in body:
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _no_receive() -> Any:
    raise RuntimeError("an error response does not read the request")
