"""``SSEResponse`` in a user's own Starlette route, under uvicorn: its headers, errors
before the first byte as HTTP statuses, and a slow client holding the source back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rxllm import AIMessageChunk, InvalidInputError, RateLimitError
from rxllm.llms import FakeStreamingListLLM
from rxllm.serve import SSEResponse
from tests.conftest import wait_until
from tests.servers.asgi import Served

PIECE = "x" * 4096
MANY = 10_000  # 40 MB of text: more than any socket buffers between client and server
pulled: list[int] = [0]


async def failing(error: Exception) -> AsyncIterator[AIMessageChunk]:
    raise error
    yield AIMessageChunk()  # an async generator, never reached


async def plenty() -> AsyncIterator[str]:
    for _ in range(MANY):
        pulled[0] += 1
        yield PIECE


async def route(request: Request) -> Response:
    kind = request.path_params["kind"]
    source: Any
    format = request.query_params.get("format", "openai-chat")
    if kind == "text":
        source = FakeStreamingListLLM(responses=["one two"]).observe("x")
    elif kind == "rate":
        source = failing(RateLimitError("slow down", status_code=429))
    elif kind == "invalid":
        source = failing(InvalidInputError("no such thing"))
    elif kind == "bug":
        source = failing(KeyError("internal detail"))
    else:
        pulled[0] = 0
        source = plenty()
    return SSEResponse(source, format=format, headers={"X-Mine": "1"})


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    app = Starlette(routes=[Route("/{kind}", route)])
    with Served(app) as running:
        yield running


def test_headers_and_body(served: Served) -> None:
    response = httpx.get(f"{served.url}/text")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["x-mine"] == "1"
    assert response.text.endswith("data: [DONE]\n\n")
    ui = httpx.get(f"{served.url}/text", params={"format": "vercel-ui"})
    assert ui.headers["x-vercel-ai-ui-message-stream"] == "v1"


@pytest.mark.parametrize(
    ("kind", "format", "status", "body"),
    [
        ("rate", "openai-chat", 429, {"error": {"message": "slow down",
                                                "type": "rate_limit_error", "param": None,
                                                "code": None}}),
        ("rate", "anthropic", 429, {"type": "error", "error": {"type": "rate_limit_error",
                                                               "message": "slow down"}}),
        ("invalid", "openai-responses", 400, {"error": {"message": "no such thing",
                                                        "type": "invalid_request_error",
                                                        "param": None, "code": None}}),
        ("bug", "openai-chat", 500, {"error": {"message": "internal server error",
                                               "type": "api_error", "param": None,
                                               "code": None}}),
    ],
)  # fmt: skip
def test_an_error_before_the_first_byte_is_an_http_error(
    served: Served,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    format: str,
    status: int,
    body: dict[str, Any],
) -> None:
    with caplog.at_level(logging.ERROR, logger="rxllm.serve"):
        response = httpx.get(f"{served.url}/{kind}", params={"format": format})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == body
    assert "internal detail" not in response.text
    if kind == "bug":  # a bug in the route's source is logged, not shown
        wait_until(lambda: any("KeyError" in (r.exc_text or "") for r in caplog.records))


def test_the_format_and_source_are_checked_when_made() -> None:
    with pytest.raises(InvalidInputError, match="unknown format"):
        SSEResponse(plenty(), format="sse")
    with pytest.raises(InvalidInputError, match="not list"):
        SSEResponse([], format="openai-chat")  # type: ignore[arg-type]


async def test_a_slow_client_holds_the_source_back_and_misses_nothing(served: Served) -> None:
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream("GET", f"{served.url}/plenty") as response,
    ):
        stream = response.aiter_raw()
        received = len(await anext(stream))
        # The client reads nothing more for a while: the source must stop, far short
        # of its end, once the socket buffers and the bridge's bounded buffer are full.
        deadline = time.monotonic() + 0.5
        before = -1
        while time.monotonic() < deadline or pulled[0] != before:
            before = pulled[0]
            await asyncio.sleep(0.1)
        held_at = pulled[0]
        assert held_at < MANY / 2
        async for piece in stream:
            received += len(piece)
    assert pulled[0] == MANY
    assert received > MANY * len(PIECE)  # every piece arrived, in its envelope
