"""Failures, through ``stream`` and ``astream``, for every wire format.

Each test also checks that nothing is left open: no connection checked out of the pool
when the call returns, and, once the model is closed, none open on the server side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from rxllm.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    FirstTokenTimeoutError,
    InternalServerError,
    ProtocolError,
    RateLimitError,
    StallTimeoutError,
    StreamInterruptedError,
    TotalTimeoutError,
)
from rxllm.llms import ChatAnthropic, ChatOllama, ChatOpenAI, OpenAI
from rxllm.llms._http_model import HTTPModel
from tests.conftest import wait_until
from tests.servers.scripted import Pause, Reply, ScriptedServer, free_port
from tests.servers.wire import PING, anthropic_text, ollama_chat, openai_chat

from .conftest import MODES, assert_all_closed, consume


@dataclass
class Wire:
    """One provider's wire format, as the fault tests need it."""

    make: Callable[..., HTTPModel]
    #: A complete stream of these texts.
    ok: Callable[[list[str]], list[bytes]]
    #: The chunks of these texts, without the terminal marker.
    partial: Callable[[list[str]], list[bytes]]
    #: Something a server sends to keep the connection alive; not a chunk.
    keepalive: bytes
    malformed: bytes
    #: Valid JSON in a shape the API does not document (a string where an object goes).
    misshapen: bytes
    content_type: str = "text/event-stream"

    def reply(self, body: list[bytes | Pause], **kwargs: Any) -> Reply:
        return Reply(body=body, content_type=self.content_type, **kwargs)


WIRES = {
    "openai": Wire(
        make=lambda url, **kw: ChatOpenAI(base_url=f"{url}/v1", **kw),
        ok=lambda texts: openai_chat(texts),
        partial=lambda texts: openai_chat(texts, usage=False, done=False)[:-1],
        keepalive=b": keep-alive\n\n",
        malformed=b"data: {not json\n\n",
        misshapen=b'data: {"choices": ["x"]}\n\n',
    ),
    "anthropic": Wire(
        make=lambda url, **kw: ChatAnthropic(model="claude-test", base_url=url, **kw),
        ok=lambda texts: anthropic_text(texts),
        partial=lambda texts: anthropic_text(texts, stop=False),
        keepalive=PING,
        malformed=b"event: content_block_delta\ndata: {not json\n\n",
        misshapen=b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": 1}'
        b"\n\n",
    ),
    "ollama": Wire(
        make=lambda url, **kw: ChatOllama(model="llama3.2", base_url=url, **kw),
        ok=lambda texts: ollama_chat(texts),
        partial=lambda texts: ollama_chat(texts, done=False),
        keepalive=b"\n",
        malformed=b"{not json\n",
        misshapen=b'{"message": "x", "done": false}\n',
        content_type="application/x-ndjson",
    ),
}

FIVE = ["one ", "two ", "three ", "four ", "five "]


@pytest.fixture(params=list(WIRES))
def wire(request: pytest.FixtureRequest) -> Wire:
    return WIRES[request.param]


@pytest.mark.parametrize("mode", MODES)
def test_disconnect_after_five_chunks(server: ScriptedServer, wire: Wire, mode: str) -> None:
    server.script(wire.reply(wire.partial(FIVE), end="drop"), wire.reply(wire.ok(["again"])))
    model = wire.make(server.url)
    outcome = consume(model, "Count", mode)
    assert isinstance(outcome.error, StreamInterruptedError)
    assert [i.content for i in outcome.items] == FIVE
    assert outcome.error.partial == "".join(FIVE)
    assert len(server.requests) == 1  # never retried once a chunk is out
    assert outcome.busy == 0
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_stream_without_terminal_marker(server: ScriptedServer, wire: Wire, mode: str) -> None:
    server.script(wire.reply(wire.partial(["a", "b"])))
    model = wire.make(server.url)
    outcome = consume(model, "x", mode)
    assert isinstance(outcome.error, StreamInterruptedError)
    assert "terminal" in str(outcome.error)
    assert outcome.error.partial == "ab"
    assert len(server.requests) == 1
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_empty_stream_is_retried(server: ScriptedServer, wire: Wire, mode: str) -> None:
    server.script(wire.reply([]), wire.reply(wire.ok(["fine"])))
    model = wire.make(server.url)
    outcome = consume(model, "x", mode)
    assert outcome.error is None
    assert outcome.text == "fine"
    assert len(server.requests) == 2
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_malformed_json(server: ScriptedServer, wire: Wire, mode: str) -> None:
    server.script(wire.reply([*wire.partial(["a"]), wire.malformed, *wire.ok(["b"])]))
    model = wire.make(server.url)
    outcome = consume(model, "x", mode)
    assert isinstance(outcome.error, ProtocolError)
    assert outcome.error.line == "{not json"
    assert outcome.error.partial == "a"
    assert outcome.busy == 0
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_json_of_the_wrong_shape(server: ScriptedServer, wire: Wire, mode: str) -> None:
    server.script(wire.reply([*wire.partial(["a"]), wire.misshapen, *wire.ok(["b"])]))
    model = wire.make(server.url)
    outcome = consume(model, "x", mode)
    assert isinstance(outcome.error, ProtocolError)
    assert "not shaped as" in str(outcome.error)
    assert outcome.error.line is not None
    assert '"x"' in outcome.error.line or '"delta": 1' in outcome.error.line
    assert outcome.error.partial == "a"
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_first_token_timeout(server: ScriptedServer, wire: Wire, mode: str) -> None:
    server.script(wire.reply([wire.keepalive, Pause(0.1), wire.keepalive], end="hang"))
    model = wire.make(server.url, first_token_timeout=0.3)
    started = time.monotonic()
    outcome = consume(model, "x", mode)
    assert isinstance(outcome.error, FirstTokenTimeoutError)
    assert isinstance(outcome.error, TimeoutError)
    assert time.monotonic() - started > 0.25  # a lower bound: load can only lengthen it
    assert len(server.requests) == 1
    wait_until(lambda: server.aborted == 1)  # the server saw the client leave
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_stall_timeout_is_not_reset_by_keepalives(
    server: ScriptedServer, wire: Wire, mode: str
) -> None:
    # Keep-alives for ten minutes: if they reset the stall timer, only the total
    # timeout (30 s) would end the call, and the error type would say so.
    keepalives: list[bytes | Pause] = [wire.keepalive, Pause(0.05)] * 12_000
    server.script(wire.reply([*wire.partial(["a", "b"]), *keepalives], end="hang"))
    model = wire.make(server.url, stall_timeout=0.3, first_token_timeout=5, total_timeout=30)
    outcome = consume(model, "x", mode)
    assert type(outcome.error) is StallTimeoutError
    assert outcome.error.partial == "ab"
    wait_until(lambda: server.aborted == 1)
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_total_timeout(server: ScriptedServer, wire: Wire, mode: str) -> None:
    body: list[bytes | Pause] = []
    for piece in wire.partial(["x"] * 40):
        body += [piece, Pause(0.02)]
    server.script(wire.reply(body, end="hang"))
    model = wire.make(server.url, total_timeout=0.4, stall_timeout=5)
    outcome = consume(model, "x", mode)
    assert isinstance(outcome.error, TotalTimeoutError)
    assert outcome.error.partial
    assert outcome.error.partial == outcome.text
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_httpx_read_timeout_is_retried(server: ScriptedServer, mode: str) -> None:
    wire = WIRES["openai"]
    server.script(wire.reply([], end="hang"), wire.reply(wire.ok(["ok"])))
    model = wire.make(server.url, timeout=0.3)
    outcome = consume(model, "x", mode)
    assert outcome.error is None
    assert outcome.text == "ok"
    assert len(server.requests) == 2
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_httpx_read_timeout(server: ScriptedServer, mode: str) -> None:
    wire = WIRES["openai"]
    server.script(wire.reply([], end="hang"))
    model = wire.make(server.url, timeout=0.2, max_retries=0)
    outcome = consume(model, "x", mode)
    assert type(outcome.error) is APITimeoutError
    assert_all_closed(model, server)


# Retries


def status(
    code: int, body: bytes = b'{"error": {"message": "try later"}}', **headers: str
) -> Reply:
    return Reply(code, [body], headers=headers, content_type="application/json")


@pytest.mark.parametrize("mode", MODES)
def test_429_honours_retry_after(server: ScriptedServer, mode: str) -> None:
    server.script(status(429, **{"retry-after": "0.3"}), Reply(body=openai_chat(["ok"])))
    model = WIRES["openai"].make(server.url)
    started = time.monotonic()
    outcome = consume(model, "x", mode)
    assert outcome.error is None
    assert outcome.text == "ok"
    assert time.monotonic() - started >= 0.3
    assert len(server.requests) == 2
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_retry_after_ms(server: ScriptedServer, mode: str) -> None:
    server.script(status(503, **{"retry-after-ms": "250"}), Reply(body=openai_chat(["ok"])))
    model = WIRES["openai"].make(server.url)
    started = time.monotonic()
    outcome = consume(model, "x", mode)
    assert outcome.text == "ok"
    assert time.monotonic() - started >= 0.25
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_503_three_times_exhausts_the_retries(server: ScriptedServer, mode: str) -> None:
    server.script(*[status(503, **{"x-request-id": f"req_{i}"}) for i in range(3)])
    model = OpenAI(base_url=f"{server.url}/v1", max_retries=2)
    outcome = consume(model, "x", mode)
    assert isinstance(outcome.error, InternalServerError)
    assert outcome.error.status_code == 503
    assert outcome.error.request_id == "req_2"
    assert outcome.error.body == {"error": {"message": "try later"}}
    assert outcome.error.partial is None
    assert len(server.requests) == 3
    assert outcome.busy == 0
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_503_twice_then_success(server: ScriptedServer, mode: str) -> None:
    server.script(status(503), status(502), Reply(body=openai_chat(["fine"])))
    model = WIRES["openai"].make(server.url)
    outcome = consume(model, "x", mode)
    assert outcome.text == "fine"
    assert len(server.requests) == 3
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_429_without_retries(server: ScriptedServer, mode: str) -> None:
    server.script(status(429))
    model = WIRES["openai"].make(server.url, max_retries=0)
    outcome = consume(model, "x", mode)
    assert isinstance(outcome.error, RateLimitError)
    assert len(server.requests) == 1
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_401_is_not_retried(server: ScriptedServer, mode: str) -> None:
    server.script(status(401, b'{"error": {"message": "bad key", "type": "invalid_api_key"}}'))
    model = WIRES["openai"].make(server.url)
    outcome = consume(model, "x", mode)
    assert isinstance(outcome.error, AuthenticationError)
    assert outcome.error.status_code == 401
    assert len(server.requests) == 1
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_connection_refused(mode: str) -> None:
    model = ChatOpenAI(base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=2)
    outcome = consume(model, "x", mode)
    assert type(outcome.error) is APIConnectionError
    assert "cannot reach" in str(outcome.error)
    assert outcome.busy == 0
    model.close()
