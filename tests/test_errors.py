"""The exception tree is the one errors.py draws."""

from __future__ import annotations

import pytest

from rxllm import errors


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (errors.InvalidInputError, errors.RxLLMError),
        (errors.InvalidInputError, ValueError),
        (errors.APIError, errors.RxLLMError),
        (errors.BadRequestError, errors.APIError),
        (errors.AuthenticationError, errors.APIError),
        (errors.PermissionDeniedError, errors.APIError),
        (errors.NotFoundError, errors.APIError),
        (errors.RateLimitError, errors.APIError),
        (errors.InternalServerError, errors.APIError),
        (errors.APIConnectionError, errors.RxLLMError),
        (errors.APITimeoutError, errors.APIConnectionError),
        (errors.APITimeoutError, TimeoutError),
        (errors.FirstTokenTimeoutError, errors.APITimeoutError),
        (errors.StallTimeoutError, errors.APITimeoutError),
        (errors.TotalTimeoutError, errors.APITimeoutError),
        (errors.StreamInterruptedError, errors.RxLLMError),
        (errors.ProtocolError, errors.RxLLMError),
        (errors.EventTooLargeError, errors.ProtocolError),
    ],
)
def test_tree(child: type[Exception], parent: type[Exception]) -> None:
    assert issubclass(child, parent)


def test_every_error_is_drawn_in_the_module_docstring() -> None:
    for name in errors.__all__:
        if isinstance(getattr(errors, name), type):
            assert name in (errors.__doc__ or "")


def test_api_error_carries_its_context() -> None:
    error = errors.RateLimitError(
        "slow down", status_code=429, body={"error": "x"}, request_id="req-1", partial="ab"
    )
    assert (error.status_code, error.body, error.request_id, error.partial) == (
        429,
        {"error": "x"},
        "req-1",
        "ab",
    )
    assert str(error) == "slow down"


def test_protocol_error_keeps_the_line() -> None:
    assert errors.ProtocolError("bad", line="data: {").line == "data: {"


def test_event_too_large_error_keeps_the_limit_the_line_and_the_partial() -> None:
    error = errors.EventTooLargeError("too big", limit=1024, line="data: xx", partial="ab")
    assert (error.limit, error.line, error.partial) == (1024, "data: xx", "ab")
    assert str(error) == "too big"


def test_attach_partial() -> None:
    plain = ValueError("x")
    errors.attach_partial(plain, "so far")
    assert plain.partial == "so far"  # type: ignore[attr-defined]
    kept = errors.StreamInterruptedError("x", partial="inner")
    errors.attach_partial(kept, "outer")
    assert kept.partial == "inner"
