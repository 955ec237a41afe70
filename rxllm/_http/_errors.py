"""Typed errors from what a server said, with the caller's secrets taken out.

An HTTP error status becomes its ``APIError`` subclass (with status, decoded body, read
up to 1 MiB, and request id); an in-band error event (a ``{"error": ...}`` data line,
Anthropic's ``event: error``) becomes the subclass its error type names. API keys never
reach an error message or a log line: messages never include request headers, text a
server echoes back is scrubbed of the secrets the provider names, and httpx's log line
for a request hides its query string (see ``query_redacted_in_logs``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import AsyncGenerator, Iterator, Mapping
from typing import cast

import httpx

from .._constants import MAX_ERROR_BODY_BYTES
from ..errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    RxLLMError,
)
from ._quote import MAX_QUOTE

__all__ = [
    "aread_error_body",
    "error_from_payload",
    "error_from_response",
    "query_redacted_in_logs",
    "read_error_body",
    "request_id_of",
    "scrub",
]


_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
}

# Error ``type`` strings of in-band errors (Anthropic's documented error types,
# OpenAI's, and the class names vLLM-style OpenAI-compatible servers send).
_TYPE_ERRORS: dict[str, type[APIError]] = {
    "invalid_request_error": BadRequestError,
    "request_too_large": BadRequestError,
    "BadRequestError": BadRequestError,
    "authentication_error": AuthenticationError,
    "AuthenticationError": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "PermissionDeniedError": PermissionDeniedError,
    "not_found_error": NotFoundError,
    "NotFoundError": NotFoundError,
    "rate_limit_error": RateLimitError,
    "rate_limit_exceeded": RateLimitError,
    "insufficient_quota": RateLimitError,
    "RateLimitError": RateLimitError,
    "api_error": InternalServerError,
    "overloaded_error": InternalServerError,
    "server_error": InternalServerError,
    "internal_error": InternalServerError,
    "InternalServerError": InternalServerError,
}


def _status_class(status: int) -> type[APIError]:
    if status in _STATUS_ERRORS:
        return _STATUS_ERRORS[status]
    return InternalServerError if status >= 500 else APIError


def request_id_of(response: httpx.Response) -> str | None:
    """The provider's request id (OpenAI: ``x-request-id``, Anthropic: ``request-id``)."""
    request_id: str | None = response.headers.get("x-request-id") or response.headers.get(
        "request-id"
    )
    return request_id


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[REDACTED]")
    return text


def scrub(error: RxLLMError, secrets: tuple[str, ...]) -> None:
    """Redact secrets a server echoed into an error's text (a malformed line quoting the
    request, say): message, args and the offending ``line`` all reach logs and tracebacks."""
    if not secrets:
        return
    error.message = _redact(error.message, secrets)
    error.args = tuple(_redact(a, secrets) if isinstance(a, str) else a for a in error.args)
    if isinstance(error, ProtocolError) and error.line is not None:
        error.line = _redact(error.line, secrets)


def _redact_query(record: logging.LogRecord) -> bool:
    """httpx logs every request's full URL at INFO; a query string may carry a key."""
    if isinstance(record.args, tuple):
        record.args = tuple(
            arg.copy_with(query=b"[REDACTED]") if isinstance(arg, httpx.URL) and arg.query else arg
            for arg in record.args
        )
    return True


_HTTPX_LOGGER = logging.getLogger("httpx")
_filter_lock = threading.Lock()
_filter_users = 0


@contextlib.contextmanager
def query_redacted_in_logs(url: httpx.URL) -> Iterator[None]:
    """While open, httpx's log lines show ``url``'s query string as ``[REDACTED]``.

    httpx logs a request's URL when its response headers arrive, inside
    ``client.send``; a query string there may carry a key (``?key=...``). The filter is
    on httpx's logger only while one of our requests with a query is being sent, so
    importing rxllm changes no logging, and a request without a query costs nothing.
    """
    global _filter_users
    if not url.query:
        yield
        return
    with _filter_lock:
        if not _filter_users:
            _HTTPX_LOGGER.addFilter(_redact_query)
        _filter_users += 1
    try:
        yield
    finally:
        with _filter_lock:
            _filter_users -= 1
            if not _filter_users:
                _HTTPX_LOGGER.removeFilter(_redact_query)


def _redact_body(body: object, secrets: tuple[str, ...]) -> object:
    """``body`` with every secret replaced, in any string it contains."""
    if not any(secrets):
        return body
    text = json.dumps(body)
    if not any(secret in text for secret in secrets if secret):
        return body
    try:
        return json.loads(_redact(text, secrets))
    except ValueError:  # a secret whose redaction breaks the JSON: keep nothing of it
        return "[REDACTED]"


def _error_fields(body: object) -> tuple[str | None, str]:
    """The error type and the message an error body carries, in any common shape."""
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, str):  # Ollama: {"error": "model 'x' not found"}
            return None, error
        if isinstance(error, Mapping):
            kind = error.get("type")
            message = error.get("message") or error.get("detail") or json.dumps(error)
            return (kind if isinstance(kind, str) else None), str(message)
        return None, json.dumps(body)
    return None, str(body)


def error_from_payload(
    payload: object,
    *,
    status_code: int = 200,
    request_id: str | None = None,
    secrets: tuple[str, ...] = (),
) -> APIError:
    """The ``APIError`` an in-band error event stands for, by its error type.

    Handles Anthropic's ``{"type": "error", "error": {"type", "message"}}``, OpenAI's
    ``{"error": {"message", "type", "code"}}`` and Ollama's ``{"error": "..."}``.
    An unknown type falls back on a numeric ``code``, then on ``APIError`` itself.
    """
    body = _redact_body(payload, secrets)
    kind, message = _error_fields(body)
    cls: type[APIError] = APIError
    if kind in _TYPE_ERRORS:
        cls = _TYPE_ERRORS[kind]
    else:
        error = body.get("error") if isinstance(body, Mapping) else None
        code = error.get("code") if isinstance(error, Mapping) else None
        if isinstance(code, int) and 400 <= code <= 599:
            cls = _status_class(code)
    label = f"{kind}: " if kind else ""
    return cls(
        f"in-band error from the server: {label}{_redact(message, secrets)[:MAX_QUOTE]}",
        status_code=status_code,
        body=body,
        request_id=request_id,
    )


def error_from_response(
    response: httpx.Response, content: bytes, *, secrets: tuple[str, ...] = ()
) -> APIError:
    """The ``APIError`` an HTTP error status stands for, with its decoded body.

    The message names the method, URL, status and the server's own message; never a
    request header.
    """
    status = response.status_code
    body: object
    try:
        body = json.loads(content)
    except ValueError:
        body = content.decode("utf-8", "replace")
    body = _redact_body(body, secrets)
    kind, message = _error_fields(body)
    request = response.request
    url = request.url.copy_with(query=None)
    detail = _redact(message, secrets)[:MAX_QUOTE] or response.reason_phrase
    return _status_class(status)(
        f"HTTP {status} from {request.method} {url}: {detail}",
        status_code=status,
        body=body,
        request_id=request_id_of(response),
    )


class _ErrorBody:
    """An error response's body as its reads arrive, up to ``MAX_ERROR_BODY_BYTES``."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._size = 0

    def full_after(self, read: bytes) -> bool:
        """Keep ``read``; whether the body has reached the cap (read no more)."""
        self._pieces.append(read)
        self._size += len(read)
        return self._size >= MAX_ERROR_BODY_BYTES

    def content(self) -> bytes:
        return b"".join(self._pieces)[:MAX_ERROR_BODY_BYTES]


def read_error_body(response: httpx.Response) -> bytes:
    """An error response's body, up to ``MAX_ERROR_BODY_BYTES`` (the rest is not read)."""
    body = _ErrorBody()
    for read in response.iter_bytes():
        if body.full_after(read):
            break
    return body.content()


async def aread_error_body(response: httpx.Response) -> bytes:
    """``read_error_body`` of a response from an ``httpx.AsyncClient``."""
    body = _ErrorBody()
    # httpx declares an AsyncIterator; it is a generator, closed here rather than by
    # the garbage collector (which would start a task on the loop to do it).
    reads = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
    async with contextlib.aclosing(reads):
        async for read in reads:
            if body.full_after(read):
                break
    return body.content()
