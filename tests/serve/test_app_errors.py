"""Bad input, refused keys, limits and upstream errors: a 4xx (or the upstream's status)
in the route's own error shape, never a 500 or a hang, and the next request is served."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from rxllm.llms import ChatOpenAI, FakeListChatModel
from rxllm.serve import create_app
from tests.conftest import wait_until
from tests.servers.asgi import Served
from tests.servers.scripted import Pause, Reply, ScriptedServer
from tests.servers.wire import openai_chat

NAME = "served"
USER = [{"role": "user", "content": "hi"}]
LIMIT = 10_000
UI_USER = [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]

#: A good request for each route, and which error shape the route answers in.
GOOD = {
    "/v1/chat/completions": {"model": NAME, "messages": USER},
    "/v1/completions": {"model": NAME, "prompt": "hi"},
    "/v1/responses": {"model": NAME, "input": "hi"},
    "/v1/messages": {"model": NAME, "messages": USER, "max_tokens": 16},
    "/api/chat": {"id": "c", "messages": UI_USER},
}


def assert_error(response: httpx.Response, status: int, path: str) -> str:
    """The response is ``status`` with the route's error JSON; returns the message."""
    assert response.status_code == status, response.text
    body = response.json()
    if path.startswith("/v1/messages"):
        assert body["type"] == "error"
        assert set(body["error"]) == {"type", "message"}
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}
    message: str = body["error"]["message"]
    return message


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    model = FakeListChatModel(responses=["fine"])
    app = create_app(model, model_name=NAME, max_body_bytes=LIMIT, api_key="sekret-key")
    with Served(app) as running:
        yield running


KEY = {"Authorization": "Bearer sekret-key"}


def post(served: Served, path: str, **kwargs: Any) -> httpx.Response:
    headers = {**KEY, **kwargs.pop("headers", {})}
    return httpx.post(served.url + path, headers=headers, timeout=10, **kwargs)


def assert_still_serving(served: Served, path: str) -> None:
    response = post(served, path, json=GOOD[path])
    assert response.status_code == 200, response.text


BAD: dict[str, list[tuple[str, dict[str, Any] | bytes]]] = {
    "/v1/chat/completions": [
        ("missing", {"model": NAME}),
        ("wrong type", {"model": NAME, "messages": "hi"}),
        ("wrong type", {"model": NAME, "messages": USER, "max_tokens": "many"}),
        ("wrong type", {"model": NAME, "messages": USER, "temperature": "hot"}),
        ("bad role", {"model": NAME, "messages": [{"role": "wizard", "content": "hi"}]}),
        ("image", {"model": NAME, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://x"}}]}]}),
        ("blank", {"model": NAME, "messages": [{"role": "user", "content": "  "}]}),
        ("n", {"model": NAME, "messages": USER, "n": 2}),
    ],
    "/v1/completions": [("missing", {"model": NAME}), ("wrong type", {"prompt": 3})],
    "/v1/responses": [("missing", {"model": NAME}), ("wrong type", {"input": {"a": 1}}),
                      ("item", {"input": [{"type": "function_call_output"}]})],
    "/v1/messages": [
        ("missing", {"model": NAME, "messages": USER}),
        ("wrong type", {"model": NAME, "messages": USER, "max_tokens": 0}),
        ("block", {"model": NAME, "max_tokens": 5, "messages": [
            {"role": "user", "content": [{"type": "image", "source": {}}]}]}),
    ],
    "/api/chat": [("missing", {"id": "c"}), ("wrong type", {"messages": [{"role": "user"}]})],
}  # fmt: skip

CASES = [(path, why, body) for path, cases in BAD.items() for why, body in cases] + [
    (path, why, body)
    for path in GOOD
    for why, body in [("not JSON", b"{nope"), ("not an object", b"[1, 2]"), ("empty", b"")]
]


@pytest.mark.parametrize(("path", "why", "body"), CASES)
def test_bad_requests_are_400_in_the_routes_shape(
    served: Served, path: str, why: str, body: dict[str, Any] | bytes
) -> None:
    for stream in (False, True):
        if isinstance(body, bytes):
            response = post(served, path, content=body)
        else:
            response = post(served, path, json={**body, "stream": stream} if stream else body)
        message = assert_error(response, 400, path)
        assert message
        assert "sekret" not in response.text
    assert_still_serving(served, path)


@pytest.mark.parametrize("path", list(GOOD))
def test_an_oversized_body_is_413_while_it_is_read(served: Served, path: str) -> None:
    big = {**GOOD[path], "padding": "x" * LIMIT}
    too_large = post(served, path, json=big)
    assert_error(too_large, 413, path)
    if path == "/v1/messages":
        assert too_large.json()["error"]["type"] == "request_too_large"  # Anthropic's word

    # No Content-Length: the limit is met while reading, and the rest is never read.
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekret-key\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")  # fmt: skip
    piece = b"x" * 4096
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"1\r\n{\r\n")
        for _ in range(LIMIT // len(piece) + 1):
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        answer = b""
        # The server closes the connection after its answer (a reset, with data unread).
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"larger than 10000 bytes" in answer
    assert_still_serving(served, path)


@pytest.mark.parametrize("path", list(GOOD))
def test_an_unknown_model_is_404(served: Served, path: str) -> None:
    message = assert_error(post(served, path, json={**GOOD[path], "model": "gpt-9"}), 404, path)
    assert "'gpt-9'" in message
    assert NAME in message
    assert_still_serving(served, path)


def test_unknown_routes_and_methods(served: Served) -> None:
    assert_error(post(served, "/v1/nothing", json={}), 404, "/v1/nothing")
    assert_error(httpx.get(f"{served.url}/v1/chat/completions"), 405, "/v1/chat/completions")
    assert_error(httpx.get(f"{served.url}/v1/messages"), 405, "/v1/messages")
    assert_still_serving(served, "/v1/chat/completions")


@pytest.mark.parametrize("path", list(GOOD))
def test_the_api_key_is_required_where_set(served: Served, path: str) -> None:
    refused = [
        {"Authorization": ""},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic sekret-key"},
        {"x-api-key": "sekret-keyX"},
    ]
    for headers in refused:
        response = httpx.post(served.url + path, json=GOOD[path], headers=headers)
        assert_error(response, 401, path)
        assert "sekret" not in response.text
    response = httpx.post(served.url + path, json=GOOD[path], headers={"x-api-key": "sekret-key"})
    assert response.status_code == 200
    assert_still_serving(served, path)


def test_health_and_the_page_need_no_key_the_rest_do(served: Served) -> None:
    assert httpx.get(f"{served.url}/health").status_code == 200
    assert httpx.get(f"{served.url}/").status_code == 200
    assert_error(httpx.get(f"{served.url}/v1/models"), 401, "/v1/models")
    assert_error(httpx.get(f"{served.url}/v1/streams/x"), 401, "/v1/streams/x")
    server = served.server.config.app.state.server
    assert "sekret" not in repr(server.api_key)
    assert "sekret" not in repr(vars(server))


def test_the_sdks_send_the_key_as_the_server_reads_it(served: Served) -> None:
    with openai.OpenAI(base_url=f"{served.url}/v1", api_key="sekret-key") as client:
        reply = client.chat.completions.create(model=NAME, messages=USER)  # type: ignore[arg-type]
        assert reply.choices[0].message.content == "fine"
    with anthropic.Anthropic(base_url=served.url, api_key="sekret-key") as claude:
        message = claude.messages.create(model=NAME, max_tokens=5, messages=USER)  # type: ignore[arg-type]
        assert message.content[0].type == "text"
        assert message.content[0].text == "fine"
    with (
        openai.OpenAI(base_url=f"{served.url}/v1", api_key="wrong", max_retries=0) as client,
        pytest.raises(openai.AuthenticationError),
    ):
        client.chat.completions.create(model=NAME, messages=USER)  # type: ignore[arg-type]


# -- upstream errors --------------------------------------------------------------------


@pytest.fixture
def upstream() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def consume(client: openai.OpenAI, stream: bool, texts: list[str] | None = None) -> None:
    """Make one chat request, reading its stream to the end (texts into ``texts``)."""
    reply: Any = client.chat.completions.create(model=NAME, messages=USER, stream=stream)  # type: ignore[arg-type]
    for chunk in reply if stream else ():
        (texts if texts is not None else []).append(chunk.choices[0].delta.content or "")


def _error_reply(status: int) -> Reply:
    body = json.dumps({"error": {"message": f"upstream says {status}", "type": "x"}})
    return Reply(status, [body.encode()], content_type="application/json")


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, openai.RateLimitError), (401, openai.AuthenticationError),
     (503, openai.InternalServerError), (500, openai.InternalServerError)],
)  # fmt: skip
def test_upstream_errors_before_the_first_byte_keep_their_status(
    upstream: ScriptedServer, status: int, error: type[openai.APIStatusError]
) -> None:
    model = ChatOpenAI(base_url=f"{upstream.url}/v1", api_key="k", model="m", max_retries=0)
    with (
        Served(create_app(model, model_name=NAME)) as served,
        openai.OpenAI(base_url=f"{served.url}/v1", api_key="x", max_retries=0) as client,
    ):
        for stream in (True, False):
            upstream.script(_error_reply(status))
            with pytest.raises(error) as raised:
                consume(client, stream)
            assert raised.value.status_code == status
            assert f"upstream says {status}" in raised.value.message
        upstream.script(Reply(body=openai_chat(["back"])))
        assert (
            client.chat.completions.create(model=NAME, messages=USER).choices[0].message.content
            == "back"
        )  # type: ignore[arg-type]  # noqa: E501


def test_an_upstream_error_after_the_first_byte_is_in_band(upstream: ScriptedServer) -> None:
    upstream.script(Reply(body=openai_chat(["par", "tial"], usage=False, done=False), end="drop"))
    model = ChatOpenAI(base_url=f"{upstream.url}/v1", api_key="k", model="m", max_retries=0)
    with (
        Served(create_app(model, model_name=NAME)) as served,
        openai.OpenAI(base_url=f"{served.url}/v1", api_key="x", max_retries=0) as client,
    ):
        texts: list[str] = []
        with pytest.raises(openai.APIError) as raised:
            consume(client, True, texts)
        assert "".join(texts) == "partial"
        assert raised.value.message


def test_past_the_concurrency_limit_429_with_retry_after(upstream: ScriptedServer) -> None:
    body: list[bytes | Pause] = [*openai_chat(["x"], done=False), Pause(30)]
    upstream.script(Reply(body=body, end="hang"), Reply(body=openai_chat(["next"])))
    model = ChatOpenAI(base_url=f"{upstream.url}/v1", api_key="k", model="m", max_retries=0)
    path = "/v1/chat/completions"
    with Served(create_app(model, model_name=NAME, max_concurrency=1)) as served:
        request = {"model": NAME, "messages": USER, "stream": True}
        with httpx.Client(timeout=10) as client:
            with client.stream("POST", served.url + path, json=request) as first:
                assert first.status_code == 200
                raw = first.iter_raw()  # kept: a dropped generator closes the response
                assert next(raw).startswith(b"data: ")
                slots = served.server.config.app.state.server.slots
                assert slots.used == 1
                refused = client.post(served.url + path, json=request)
                assert_error(refused, 429, path)
                assert refused.headers["retry-after"] == "1"
                wait_until(lambda: len(upstream.requests) == 1)
            wait_until(lambda: upstream.aborted == 1)
            wait_until(lambda: slots.used == 0)
            served_next = client.post(served.url + path, json={**request, "stream": False})
            assert served_next.json()["choices"][0]["message"]["content"] == "next"
    model.close()


def test_a_client_that_leaves_mid_body_is_no_error(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    path = "/v1/chat/completions"
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekret-key\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")  # fmt: skip
    with (
        caplog.at_level(logging.ERROR),
        socket.create_connection(("127.0.0.1", served.port)) as sock,
    ):
        sock.sendall(head.encode() + b'{"messages": [')
    assert_still_serving(served, path)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
