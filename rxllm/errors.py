"""The exceptions rxllm raises.

Every error a call, its input, its stream or its server can cause is an
``RxLLMError``; the tree below is the whole of it::

    RxLLMError
    ├── InvalidInputError        bad prompt, config or argument; raised before any call
    ├── APIError                 the server answered with an error (status, body, request id)
    │   ├── BadRequestError          400, 422
    │   ├── AuthenticationError      401
    │   ├── PermissionDeniedError    403
    │   ├── NotFoundError            404
    │   ├── RateLimitError           429
    │   └── InternalServerError      5xx
    ├── APIConnectionError       the server could not be reached
    │   └── APITimeoutError          (also a ``TimeoutError``)
    │       ├── FirstTokenTimeoutError   no first token in time
    │       ├── StallTimeoutError        no chunk for too long mid-stream
    │       └── TotalTimeoutError        the whole call took too long
    ├── StreamInterruptedError   the stream broke off, or ended without its terminal marker
    └── ProtocolError            the server sent malformed SSE/JSON (``.line`` has it)
        └── EventTooLargeError       one event is larger than ``max_event_bytes``

Any error raised after the first chunk carries ``.partial``: the text received so far,
so a failed stream never loses what it already had.

Outside the tree, on purpose (each a mistake in the program, not in what it was given
or what a server sent, or Python's own protocol):

- Constructing a model with bad arguments raises pydantic's ``ValidationError``, a
  ``ValueError`` like ``InvalidInputError``, as LangChain's models and every pydantic
  model do; for the HTTP models it never holds the values given, which may be keys.
- ``ImportError``: an optional extra (``rxllm[serve]``, ``[langchain]``, ``[dask]``,
  ``[otel]``, ``[notebook]``, ``[local]``) is not installed; the message names it.
- ``RuntimeError``: a blocking call where it would deadlock, as ``asyncio.run`` inside a
  running loop is one: ``stream``/``invoke``/``batch`` on rxllm's own loop thread (from a
  subscription callback), a main-thread stream iterated from another thread or from
  inside another stream's callback, ``LiveStream.result()`` on its own loop.
- ``TypeError``: a ``BaseLLM``/``BaseChatModel`` subclass that implements none of the
  hooks (when the class is defined), or whose ``_call``/``_stream`` returns something
  that is not text or a message; ``NotImplementedError`` from an abstract hook.
- Python's protocols: adding chunks of different kinds (``GenerationChunk +
  AIMessageChunk``) is a ``TypeError``, an unknown key of ``Usage`` a ``KeyError``.
- ``rxllm.testing.LeakError`` is an ``AssertionError``: a failed test.
"""

from __future__ import annotations

import contextlib

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "EventTooLargeError",
    "FirstTokenTimeoutError",
    "InternalServerError",
    "InvalidInputError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "RxLLMError",
    "StallTimeoutError",
    "StreamInterruptedError",
    "TotalTimeoutError",
    "attach_partial",
]


class RxLLMError(Exception):
    """Base class of every error rxllm raises.

    Args:
        message: what went wrong, for people.
        partial: the text received before the failure, if any chunk arrived.
    """

    def __init__(self, message: str, *, partial: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.partial = partial


class InvalidInputError(RxLLMError, ValueError):
    """A prompt, config or argument is not acceptable; nothing was sent."""


class APIError(RxLLMError):
    """The provider answered with an error, by HTTP status or in-band.

    Args:
        message: what went wrong.
        status_code: the HTTP status (200 for an in-band error event).
        body: the decoded error body, if any.
        request_id: the provider's request id header, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: object = None,
        request_id: str | None = None,
        partial: str | None = None,
    ) -> None:
        super().__init__(message, partial=partial)
        self.status_code = status_code
        self.body = body
        self.request_id = request_id


class BadRequestError(APIError):
    """400 or 422: the provider rejected the request."""


class AuthenticationError(APIError):
    """401: the API key is missing or wrong."""


class PermissionDeniedError(APIError):
    """403: the key may not use this model or endpoint."""


class NotFoundError(APIError):
    """404: no such model or endpoint."""


class RateLimitError(APIError):
    """429: too many requests; retried before the first chunk."""


class InternalServerError(APIError):
    """5xx: the provider failed; retried before the first chunk."""


class APIConnectionError(RxLLMError):
    """The provider could not be reached, or the connection failed."""


class APITimeoutError(APIConnectionError, TimeoutError):
    """A network or stream deadline passed."""


class FirstTokenTimeoutError(APITimeoutError):
    """No token (text, reasoning or a tool call) within ``first_token_timeout`` seconds."""


class StallTimeoutError(APITimeoutError):
    """No chunk arrived for ``stall_timeout`` seconds in the middle of a stream."""


class TotalTimeoutError(APITimeoutError):
    """The whole call took longer than ``total_timeout`` seconds."""


class StreamInterruptedError(RxLLMError):
    """The stream broke off mid-way, or ended without its terminal marker."""


class ProtocolError(RxLLMError):
    """The server sent something that is not valid SSE, NDJSON or JSON.

    Args:
        line: the offending line (or a prefix of it, if it is very long).
    """

    def __init__(
        self, message: str, *, line: str | None = None, partial: str | None = None
    ) -> None:
        super().__init__(message, partial=partial)
        self.line = line


class EventTooLargeError(ProtocolError):
    """One event (an SSE event's data, an NDJSON line) passed the size limit.

    The stream is abandoned instead of buffered without bound; raise the model's
    ``max_event_bytes`` if the server's events really are that large.

    Args:
        limit: the limit that was passed, in bytes.
        line: the start of the oversized event.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: int,
        line: str | None = None,
        partial: str | None = None,
    ) -> None:
        super().__init__(message, line=line, partial=partial)
        self.limit = limit


def attach_partial(exc: BaseException, partial: str) -> None:
    """Record on ``exc`` the text a stream had produced before it failed.

    An ``RxLLMError`` keeps a ``partial`` it already has (the innermost stream knows
    best). Other exception types get the attribute too, so user code raising, say,
    ``ValueError`` mid-stream still reaches the consumer as a ``ValueError`` that
    carries the partial text.
    """
    if getattr(exc, "partial", None) is not None:
        return
    # A built-in exception with __slots__ has nowhere to keep it.
    with contextlib.suppress(AttributeError):
        exc.partial = partial  # type: ignore[attr-defined]
