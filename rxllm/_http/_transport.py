"""One streamed call, as every HTTP provider makes it: send, retry, read, translate.

A provider describes a call with two functions, ``build`` (a fresh ``httpx.Request``
per attempt) and ``wire`` (for an open, successful ``httpx.Response``, the decoder that
cuts its bytes into frames and the ``WireTranslator`` that turns each frame into at most
one chunk), and ``astream_call`` (an ``httpx.AsyncClient``, async consumers) or its
blocking twin ``stream_call`` (an ``httpx.Client``, sync consumers) does the rest:

- sends the request with ``stream=True`` and closes the response on every path: normal
  end, error, and ``close()``/``aclose()``/cancellation by the consumer (the server sees
  the disconnect);
- reads the body, decodes it, translates each frame and drains what follows the
  terminal frame (so the connection can go back to the pool); a body that ends before
  it is ``StreamInterruptedError``;
- maps every failure to the tree in ``rxllm.errors``: an HTTP status with
  ``error_from_response`` (``rxllm._http._errors``), an ``httpx.ConnectError`` to
  ``APIConnectionError``, an httpx timeout to ``APITimeoutError``, a connection lost
  while reading the body to ``StreamInterruptedError``, a frame whose JSON is not shaped
  as its API documents to ``ProtocolError``; the translator raises the in-band errors
  itself, the decoders their ``ProtocolError``; every error's text is scrubbed of the
  policy's secrets;
- retries what the policy's ``retryable`` says may pass, after the policy's backoff or
  the server's ``retry-after-ms``/``Retry-After``, but only until the first chunk has
  been emitted, so a consumer never sees repeated text;
- keeps the text emitted so far, so that an error carries it on ``.partial``.

The read loop is the twins' own, not a generator of the response's chunks that they
re-yield: that generator cost 0.17-0.38 µs a chunk (three runs, each the best of 15
rounds of 2,000 chat chunks in 64 KiB reads, in process). The twins differ only in
their I/O (send, read, close, sleep): what a failure means, whether and when to retry,
the log line, a misshapen frame and the end of the body are functions both call.

The deadlines are the operators of the same names, which a model applies to the whole
call (see ``rxllm.llms._http_model``).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import httpx
from pydantic import ValidationError

from ..errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ProtocolError,
    RxLLMError,
    StreamInterruptedError,
    attach_partial,
)
from ._errors import (
    aread_error_body,
    error_from_payload,
    error_from_response,
    query_redacted_in_logs,
    read_error_body,
    scrub,
)
from ._quote import SHAPE_ERRORS, misshapen
from ._sse import ServerSentEvent

__all__ = [
    "Decoder",
    "StreamPolicy",
    "WireTranslator",
    "astream_call",
    "retry_delay",
    "stream_call",
]

T = TypeVar("T")
F = TypeVar("F")

logger = logging.getLogger("rxllm")

#: A ``Retry-After`` longer than this is not honoured (the backoff is used instead), as
#: in the OpenAI and Anthropic SDKs: a caller would rather get the error than hang.
RETRY_AFTER_MAX = 60.0


def _retry_after(headers: httpx.Headers | None) -> float | None:
    """The wait a server asked for, in seconds, if it asked for a sane one."""
    if headers is None:
        return None
    wait: float | None = None
    if "retry-after-ms" in headers:  # OpenAI's and Anthropic's precise variant
        try:
            wait = float(headers["retry-after-ms"]) / 1000
        except ValueError:
            wait = None
    if wait is None and "retry-after" in headers:
        value = headers["retry-after"]
        try:
            wait = float(value)
        except ValueError:
            try:
                wait = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError):  # neither seconds nor an HTTP date
                wait = None
    if wait is None or not 0 <= wait <= RETRY_AFTER_MAX:
        return None
    return wait


def retry_delay(
    attempt: int, headers: httpx.Headers | None, backoff: Callable[[int], float]
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date) win when present
    and at most a minute; otherwise ``backoff(attempt)``.
    """
    asked = _retry_after(headers)
    return backoff(attempt) if asked is None else asked


@dataclass(frozen=True, slots=True)
class StreamPolicy:
    """How one call is retried; the model gives the rules, as the ``retry`` operator
    uses them (``rxllm.operators._retry``), so the transport imports no policy.

    Attributes:
        retryable: whether a failure may pass if the request is sent again.
        backoff: seconds to wait before retry number ``attempt`` (0 for the first).
        max_retries: retries after the first attempt, before the first chunk only.
        secrets: strings (API keys) scrubbed from any error text a server echoes.
    """

    retryable: Callable[[BaseException], bool]
    backoff: Callable[[int], float]
    max_retries: int = 2
    secrets: tuple[str, ...] = ()


class Decoder(Protocol[F]):
    """Cuts a body's bytes into frames: ``SSEDecoder``, ``NDJSONDecoder``."""

    def feed(self, chunk: bytes) -> list[F]: ...
    def flush(self) -> list[F]: ...


class WireTranslator(Generic[F, T]):
    """Turns one provider's decoded frames into chunks, one at a time, without HTTP.

    A provider writes ``frame`` (and ``end`` if its stream needs a last word); the
    transport's read loop drives it, the same loop for every provider.

    Args:
        secrets: strings to scrub from in-band error text.
        request_id: the response's request id, for errors.
    """

    #: What a complete stream ends with, named when a stream ends without it.
    terminal: ClassVar[str]

    def __init__(self, secrets: tuple[str, ...] = (), request_id: str | None = None) -> None:
        self.secrets = secrets
        self.request_id = request_id
        #: Whether the terminal frame has arrived; frames after it are drained unread.
        self.finished = False

    def frame(self, frame: F) -> T | None:
        """The chunk one decoded frame (an SSE event, an NDJSON value) stands for.

        Raises:
            APIError: for an in-band error.
            ProtocolError: for a frame that is not what the API documents.
        """
        raise NotImplementedError

    def end(self) -> T | None:
        """A last chunk once the stream has ended with its terminal frame, if any."""
        return None

    def in_band_error(self, payload: object) -> APIError:
        """The typed error an in-band error event stands for, secrets scrubbed."""
        return error_from_payload(payload, request_id=self.request_id, secrets=self.secrets)


#: What a wire gives the read loop for one successful response.
Wire = tuple[Decoder[Any], WireTranslator[Any, T]]


def _misshapen(frame: object) -> ProtocolError:
    """The error for a frame whose JSON parsed but is not shaped as documented (a string
    where an object goes): caught around the translator rather than checked at every
    field."""
    data = frame.data if isinstance(frame, ServerSentEvent) else json.dumps(frame)
    return misshapen(data)


def _last_chunk(translator: WireTranslator[Any, T]) -> T | None:
    """The translator's last word, once the body has ended.

    Raises:
        StreamInterruptedError: the body ended before its terminal frame.
    """
    if not translator.finished:
        raise StreamInterruptedError(f"the stream ended without its terminal {translator.terminal}")
    return translator.end()


def _send_failure(exc: httpx.TransportError, request: httpx.Request) -> RxLLMError:
    """The typed error for a request that got no response."""
    url = request.url.copy_with(query=None)
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{type(exc).__name__} on {request.method} {url}")
    return APIConnectionError(f"cannot reach {url}: {type(exc).__name__}: {exc}")


def _read_failure(exc: RxLLMError | httpx.TransportError, secrets: tuple[str, ...]) -> RxLLMError:
    """The typed error for a response that failed: its status, its data, or the
    connection under it."""
    if isinstance(exc, RxLLMError):
        scrub(exc, secrets)
        return exc
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{type(exc).__name__} while reading the response")
    return StreamInterruptedError(
        f"the connection was lost mid-stream: {type(exc).__name__}: {exc}"
    )


def _delay_before_retry(
    failure: RxLLMError,
    cause: BaseException,
    *,
    emitted: bool,
    attempt: int,
    policy: StreamPolicy,
    request: httpx.Request,
    headers: httpx.Headers | None,
) -> float:
    """Seconds to wait before sending ``request`` again, or ``failure`` raised if it
    may not be: a chunk is out, the retries are spent, or the policy says no.

    ``attempt`` counts the retries made so far; the retry is logged at INFO.
    """
    if emitted or attempt >= policy.max_retries or not policy.retryable(failure):
        if failure is cause:
            raise failure
        raise failure from cause
    delay = retry_delay(attempt, headers, policy.backoff)
    logger.info(
        "retrying %s %s in %.2f s after %s (retry %d of %d)",
        request.method,
        request.url.copy_with(query=None),
        delay,
        type(failure).__name__,
        attempt + 1,
        policy.max_retries,
    )
    return delay


def stream_call(
    client: httpx.Client,
    build: Callable[[], httpx.Request],
    wire: Callable[[httpx.Response], Wire[T]],
    policy: StreamPolicy,
    text_of: Callable[[T], str] | None = None,
) -> Generator[T, None, None]:
    """Make one streamed call under ``policy``, yielding its chunks.

    The blocking twin of ``astream_call``, for sync consumers: the same policy, errors
    and retries, with ``time.sleep`` between attempts.

    Args:
        client: the client to send with (an ``httpx.Client`` may be shared by threads).
        build: a fresh request for each attempt.
        wire: the decoder and the translator for a successful response (status < 400),
            fresh for each.
        policy: the retry rules and the secrets to scrub.
        text_of: the text of a chunk; given, an error after the first chunk carries the
            text so far on ``.partial``, so the consumer can iterate this generator
            itself (``rxllm._runtime.Iteration``).

    Returns:
        A generator; nothing is sent before it is iterated. Closing it (a ``break`` out
        of a ``for`` loop) closes the response at once. Retries happen until a chunk
        has been emitted, never after.

    Raises:
        RxLLMError: the typed error of the last attempt.
    """
    attempt = 0
    emitted = False
    texts: list[str] = []  # for ``.partial``, with ``text_of``
    try:
        while True:
            request = build()
            headers: httpx.Headers | None = None
            try:
                with query_redacted_in_logs(request.url):
                    response = client.send(request, stream=True)
            except httpx.TransportError as exc:
                failure = _send_failure(exc, request)
                cause: BaseException = exc
            else:
                try:
                    if response.status_code >= 400:
                        headers = response.headers
                        content = read_error_body(response)
                        raise error_from_response(response, content, secrets=policy.secrets)
                    decoder, translator = wire(response)
                    reads = response.iter_bytes()
                    more = True
                    while more:
                        # The frames of each read, then those the decoder completes at
                        # the end.
                        read = next(reads, None)
                        frames = decoder.flush() if read is None else decoder.feed(read)
                        more = read is not None
                        for frame in frames:
                            if translator.finished:
                                continue  # drained, so the connection can be reused
                            try:
                                chunk = translator.frame(frame)
                            except (ValidationError, *SHAPE_ERRORS):
                                raise _misshapen(frame) from None
                            if chunk is not None:
                                emitted = True
                                if text_of is not None:
                                    texts.append(text_of(chunk))
                                yield chunk
                    last = _last_chunk(translator)
                    if last is not None:
                        yield last
                    return
                except (RxLLMError, httpx.TransportError) as exc:
                    failure, cause = _read_failure(exc, policy.secrets), exc
                finally:
                    response.close()
            delay = _delay_before_retry(
                failure,
                cause,
                emitted=emitted,
                attempt=attempt,
                policy=policy,
                request=request,
                headers=headers,
            )
            attempt += 1
            time.sleep(delay)
    except Exception as exc:
        if texts:
            attach_partial(exc, "".join(texts))
        raise


async def astream_call(
    client: httpx.AsyncClient,
    build: Callable[[], httpx.Request],
    wire: Callable[[httpx.Response], Wire[T]],
    policy: StreamPolicy,
    text_of: Callable[[T], str] | None = None,
) -> AsyncGenerator[T, None]:
    """Make one streamed call under ``policy``, yielding its chunks.

    Args:
        client: the client to send with (bound to the running loop).
        build: a fresh request for each attempt.
        wire: the decoder and the translator for a successful response (status < 400),
            fresh for each.
        policy: the retry rules and the secrets to scrub.
        text_of: as for ``stream_call``.

    Returns:
        An async generator; nothing is sent before it is iterated. Closing it, or
        cancelling the task iterating it, closes the response. Retries happen until a
        chunk has been emitted, never after.

    Raises:
        RxLLMError: the typed error of the last attempt.
    """
    attempt = 0
    emitted = False
    texts: list[str] = []  # for ``.partial``, with ``text_of``
    try:
        while True:
            request = build()
            headers: httpx.Headers | None = None
            try:
                with query_redacted_in_logs(request.url):
                    response = await client.send(request, stream=True)
            except httpx.TransportError as exc:
                failure = _send_failure(exc, request)
                cause: BaseException = exc
            else:
                try:
                    if response.status_code >= 400:
                        headers = response.headers
                        content = await aread_error_body(response)
                        raise error_from_response(response, content, secrets=policy.secrets)
                    decoder, translator = wire(response)
                    reads = response.aiter_bytes()
                    more = True
                    while more:
                        read = await anext(reads, None)
                        frames = decoder.flush() if read is None else decoder.feed(read)
                        more = read is not None
                        for frame in frames:
                            if translator.finished:
                                continue
                            try:
                                chunk = translator.frame(frame)
                            except (ValidationError, *SHAPE_ERRORS):
                                raise _misshapen(frame) from None
                            if chunk is not None:
                                emitted = True
                                if text_of is not None:
                                    texts.append(text_of(chunk))
                                yield chunk
                    last = _last_chunk(translator)
                    if last is not None:
                        yield last
                    return
                except (RxLLMError, httpx.TransportError) as exc:
                    failure, cause = _read_failure(exc, policy.secrets), exc
                finally:
                    await response.aclose()
            delay = _delay_before_retry(
                failure,
                cause,
                emitted=emitted,
                attempt=attempt,
                policy=policy,
                request=request,
                headers=headers,
            )
            attempt += 1
            await asyncio.sleep(delay)
    except Exception as exc:
        if texts:
            attach_partial(exc, "".join(texts))
        raise
