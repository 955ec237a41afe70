"""The transport's pure parts: retry delays (_transport.py) and error mapping (_errors.py)."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from rxllm._http._errors import error_from_payload, error_from_response
from rxllm._http._transport import retry_delay
from rxllm.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from rxllm.operators import _retry
from rxllm.operators._retry import backoff


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    for attempt in range(6):
        full = min(_retry.RETRY_INITIAL_DELAY * 2**attempt, _retry.RETRY_MAX_DELAY)
        delay = retry_delay(attempt, None, backoff)
        assert 0.75 * full <= delay <= full


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "3600"}, None),  # too long: back off instead
        ({"retry-after": "soon"}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    delay = retry_delay(0, httpx.Headers(headers), backoff)
    if expected is None:
        assert delay <= _retry.RETRY_INITIAL_DELAY
    else:
        assert delay == expected


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3 < retry_delay(0, httpx.Headers({"retry-after": when}), backoff) <= 5


@pytest.mark.parametrize(
    ("payload", "cls"),
    [
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "m"}},
            InternalServerError,
        ),
        ({"type": "error", "error": {"type": "rate_limit_error", "message": "m"}}, RateLimitError),
        (
            {"type": "error", "error": {"type": "invalid_request_error", "message": "m"}},
            BadRequestError,
        ),
        (
            {"type": "error", "error": {"type": "authentication_error", "message": "m"}},
            AuthenticationError,
        ),
        (
            {"type": "error", "error": {"type": "permission_error", "message": "m"}},
            PermissionDeniedError,
        ),
        ({"type": "error", "error": {"type": "not_found_error", "message": "m"}}, NotFoundError),
        ({"error": {"message": "m", "type": "server_error"}}, InternalServerError),
        ({"error": {"message": "m", "type": "whatever", "code": 429}}, RateLimitError),
        ({"error": {"message": "m", "code": "context_length_exceeded"}}, APIError),
        ({"error": "m"}, APIError),
    ],
)
def test_in_band_errors_map_by_type(payload: dict[str, object], cls: type[APIError]) -> None:
    error = error_from_payload(payload, request_id="r")
    assert type(error) is cls
    assert error.status_code == 200
    assert error.request_id == "r"
    assert error.body == payload
    assert "m" in error.message


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, BadRequestError), (422, BadRequestError), (401, AuthenticationError),
     (403, PermissionDeniedError), (404, NotFoundError), (429, RateLimitError),
     (500, InternalServerError), (503, InternalServerError), (529, InternalServerError),
     (418, APIError)],
)  # fmt: skip
def test_status_errors(status: int, cls: type[APIError]) -> None:
    request = httpx.Request("POST", "http://h/v1/x?key=secret", headers={"authorization": "k"})
    response = httpx.Response(status, request=request, headers={"request-id": "req_1"})
    error = error_from_response(response, b"plain text failure")
    assert type(error) is cls
    assert error.status_code == status
    assert error.body == "plain text failure"
    assert error.request_id == "req_1"
    assert str(error) == f"HTTP {status} from POST http://h/v1/x: plain text failure"
