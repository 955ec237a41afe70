"""A client that leaves cancels the upstream call: the upstream server sees it go.

For every streaming route of ``create_app`` and for ``SSEResponse`` in a user's own
route: a client reads 3 events and closes, or closes before the first byte while the
model is still silent, and the ``ScriptedServer`` behind the provider sees the request
aborted and every connection closed, while its reply would have gone on for seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from rxllm.llms import ChatAnthropic, ChatOpenAI, OpenAI
from rxllm.llms._http_model import HTTPModel
from rxllm.serve import FORMATS, SSEResponse, create_app
from tests.conftest import wait_until
from tests.servers.asgi import Served
from tests.servers.scripted import Pause, Reply, ScriptedServer
from tests.servers.wire import anthropic_text, openai_chat, openai_completion

NAME = "served"
USER = [{"role": "user", "content": "hi"}]


def slow(events: list[bytes]) -> Reply:
    """Events 50 ms apart, then a connection kept open: seconds of reply, never ending."""
    body: list[bytes | Pause] = []
    for event in events:
        body += [event, Pause(0.05)]
    return Reply(body=body, end="hang")


@dataclass
class Route_:
    path: str
    body: dict[str, Any]
    make: Callable[[str], HTTPModel]
    reply: Callable[[], Reply]
    format: str


def _chat(url: str) -> HTTPModel:
    return ChatOpenAI(base_url=f"{url}/v1", api_key="k", model="m", max_retries=0)


ROUTES = {
    "chat": Route_("/v1/chat/completions", {"messages": USER}, _chat,
                   lambda: slow(openai_chat(["x"] * 100, done=False)), "openai-chat"),
    "completions": Route_(
        "/v1/completions", {"prompt": "hi"},
        lambda url: OpenAI(base_url=f"{url}/v1", api_key="k", model="m", max_retries=0),
        lambda: slow(openai_completion(["x"] * 100)[:-3]), "openai-completions"),
    "responses": Route_("/v1/responses", {"input": "hi"}, _chat,
                        lambda: slow(openai_chat(["x"] * 100, done=False)), "openai-responses"),
    "messages": Route_(
        "/v1/messages", {"messages": USER, "max_tokens": 64},
        lambda url: ChatAnthropic(base_url=url, api_key="k", model="c", max_retries=0),
        lambda: slow(anthropic_text(["x"] * 100, stop=False)), "anthropic"),
    "ai-sdk": Route_(
        "/api/chat",
        {"id": "chat1", "messages": [{"id": "u1", "role": "user",
                                      "parts": [{"type": "text", "text": "hi"}]}]},
        _chat, lambda: slow(openai_chat(["x"] * 100, done=False)), "vercel-ui"),
}  # fmt: skip


@pytest.fixture
def upstream() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def read_then_close(url: str, body: dict[str, Any], events: int) -> bytes:
    """POST ``body``, read ``events`` server-sent events, and close the connection."""
    received = b""
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", url, json={"stream": True, **body}) as response,
    ):
        assert response.status_code == 200, response.read()
        for piece in response.iter_raw():
            received += piece
            if received.count(b"\n\n") >= events:
                break
    return received


def assert_cancelled_upstream(upstream: ScriptedServer, model: HTTPModel) -> None:
    wait_until(lambda: upstream.aborted == 1)
    wait_until(lambda: upstream.open_connections == 0)
    assert len(upstream.requests) == 1  # one call, not retried
    model.close()


@pytest.mark.parametrize("name", list(ROUTES))
def test_a_client_that_leaves_after_3_events_cancels_the_call(
    upstream: ScriptedServer, name: str
) -> None:
    route = ROUTES[name]
    if route.format not in FORMATS:
        pytest.skip(f"the {route.format} format has not landed yet")
    upstream.script(route.reply())
    model = route.make(upstream.url)
    with Served(create_app(model, model_name=NAME)) as served:
        received = read_then_close(served.url + route.path, route.body, events=3)
        assert received.count(b"\n\n") >= 3
        assert_cancelled_upstream(upstream, model)


@pytest.mark.parametrize("name", list(ROUTES))
def test_a_client_that_leaves_before_the_first_byte_cancels_the_call(
    upstream: ScriptedServer, name: str
) -> None:
    """The model is silent: no write would fail, only ``http.disconnect`` tells."""
    route = ROUTES[name]
    if route.format not in FORMATS:
        pytest.skip(f"the {route.format} format has not landed yet")
    upstream.script(Reply(body=[], end="hang"))
    model = route.make(upstream.url)
    with Served(create_app(model, model_name=NAME)) as served:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(served.url + route.path, json={"stream": True, **route.body}, timeout=0.5)
        assert_cancelled_upstream(upstream, model)


def test_a_client_that_leaves_a_whole_reply_cancels_the_call(upstream: ScriptedServer) -> None:
    upstream.script(slow(openai_chat(["x"] * 100, done=False)))
    model = _chat(upstream.url)
    with Served(create_app(model, model_name=NAME)) as served:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{served.url}/v1/chat/completions", json={"messages": USER}, timeout=0.5)
        assert_cancelled_upstream(upstream, model)


def test_sse_response_in_your_own_route(upstream: ScriptedServer) -> None:
    upstream.script(slow(openai_chat(["x"] * 100, done=False)))
    model = _chat(upstream.url)

    async def chat(request: Request) -> SSEResponse:
        prompt = (await request.json())["prompt"]
        return SSEResponse(model.observe(prompt), format="openai-chat")

    app = Starlette(routes=[Route("/chat", chat, methods=["POST"])])
    with Served(app) as served:
        received = read_then_close(f"{served.url}/chat", {"prompt": "hi"}, events=3)
        assert received.startswith(b"data: {")
        assert_cancelled_upstream(upstream, model)
