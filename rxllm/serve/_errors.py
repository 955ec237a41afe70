"""What a client is told about an error: an HTTP status, a kind, a message.

One mapping for every format and both moments: before the first byte the status is the
response's (an upstream 429 is a 429 to the client, with its ``Retry-After``); after it,
each format writes the same kind and message in its own in-band error shape. rxllm's
errors are made to be shown (their text never holds a key); any other exception is a
bug in user code, and the client gets no more than "internal server error".
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RxLLMError,
)

__all__ = ["ClientError", "client_error"]


@dataclass(frozen=True, slots=True)
class ClientError:
    """An error as a client sees it.

    ``kind`` uses OpenAI's error types (``invalid_request_error``,
    ``authentication_error``, ``permission_error``, ``not_found_error``,
    ``rate_limit_error``, ``timeout_error``, ``api_error``, ``overloaded_error``...);
    each format maps it to its own words where they differ.
    """

    status: int
    kind: str
    message: str
    #: Seconds for a ``Retry-After`` header (the server's own concurrency limit sets it).
    retry_after: int | None = None


_KINDS: list[tuple[type[Exception], int, str]] = [
    (InvalidInputError, 400, "invalid_request_error"),
    (BadRequestError, 400, "invalid_request_error"),
    (AuthenticationError, 401, "authentication_error"),
    (PermissionDeniedError, 403, "permission_error"),
    (NotFoundError, 404, "not_found_error"),
    (RateLimitError, 429, "rate_limit_error"),
    (APITimeoutError, 504, "timeout_error"),
    (APIConnectionError, 502, "api_connection_error"),
]


def client_error(error: BaseException) -> ClientError:
    """The status, kind and message to give a client for ``error``."""
    if not isinstance(error, RxLLMError):
        return ClientError(500, "api_error", "internal server error")
    message = str(error)
    for cls, status, kind in _KINDS:
        if isinstance(error, cls):
            return ClientError(status, kind, message)
    if isinstance(error, APIError) and error.status_code == 529:
        return ClientError(529, "overloaded_error", message)
    if isinstance(error, APIError) and error.status_code is not None and error.status_code >= 500:
        return ClientError(error.status_code, "api_error", message)
    return ClientError(502, "api_error", message)
