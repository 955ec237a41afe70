"""The HTTP models' blocking twin (``_stream`` over an ``httpx.Client``) and its clients.

The twin must give what the async one gives, chunk for chunk, for every provider; it
runs on the model's own ``httpx.Client`` (one for all threads, closed by ``close()``
and by the finalizer) or on an injected ``http_client`` (never closed by rxllm). Where
only one client is injected, every call goes through it: with only ``http_client``,
``stream`` and ``astream`` both run the blocking twin, which these tests use to check
the bridges' side of it (``.partial``, retries, faults) from end to end.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from rxllm.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    InternalServerError,
    InvalidInputError,
    StreamInterruptedError,
)
from rxllm.llms import ChatAnthropic, ChatOllama, ChatOpenAI, Ollama, OpenAI
from rxllm.llms._http_model import HTTPModel
from tests.conftest import wait_until
from tests.servers.scripted import Pause, Reply, ScriptedServer, Until, free_port
from tests.servers.wire import (
    anthropic_text,
    anthropic_tool_use,
    ollama_chat,
    ollama_generate,
    openai_chat,
    openai_completion,
)

from .conftest import MODES, consume
from .test_faults import FIVE, WIRES

NDJSON = "application/x-ndjson"

#: Each provider, and a complete reply of its wire format.
PROVIDERS: dict[str, tuple[Callable[..., HTTPModel], Callable[[], Reply]]] = {
    "OpenAI": (
        lambda url, **kw: OpenAI(base_url=f"{url}/v1", **kw),
        lambda: Reply(body=openai_completion(["Hel", "lo"])),
    ),
    "ChatOpenAI": (
        lambda url, **kw: ChatOpenAI(base_url=f"{url}/v1", **kw),
        lambda: Reply(body=openai_chat(["Hel", "lo"])),
    ),
    "ChatAnthropic": (
        lambda url, **kw: ChatAnthropic(model="claude-test", base_url=url, **kw),
        lambda: Reply(body=anthropic_text(["Hel", "lo"])),
    ),
    "ChatAnthropic tools": (
        lambda url, **kw: ChatAnthropic(model="claude-test", base_url=url, **kw),
        lambda: Reply(body=anthropic_tool_use()),
    ),
    "Ollama": (
        lambda url, **kw: Ollama(model="llama3.2", base_url=url, **kw),
        lambda: Reply(body=ollama_generate(["Hel", "lo"]), content_type=NDJSON),
    ),
    "ChatOllama": (
        lambda url, **kw: ChatOllama(model="llama3.2", base_url=url, **kw),
        lambda: Reply(body=ollama_chat(["Hel", "lo"]), content_type=NDJSON),
    ),
}


def sync_chunks(model: Any, prompt: Any = "hi", **kwargs: Any) -> list[Any]:
    return list(model._stream(model._coerce(prompt), **kwargs))


def async_chunks(model: Any, prompt: Any = "hi", **kwargs: Any) -> list[Any]:
    async def run() -> list[Any]:
        try:
            return [c async for c in model._astream(model._coerce(prompt), **kwargs)]
        finally:
            await model.aclose()

    return asyncio.run(run())


def own_pool(model: HTTPModel) -> Any:
    client = model._sync_clients._client
    assert client is not None
    transport = client._transport
    assert isinstance(transport, httpx.HTTPTransport)
    return transport._pool


def busy(model: HTTPModel) -> int:
    return sum(1 for c in own_pool(model).connections if not c.is_idle() and not c.is_closed())


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_the_twins_give_the_same_chunks(server: ScriptedServer, provider: str) -> None:
    make, reply = PROVIDERS[provider]
    server.script(reply(), reply())
    model = make(server.url, api_key="sk-0123456789")
    blocking = sync_chunks(model, stop=["x"], temperature=0.5)
    assert blocking
    assert busy(model) == 0
    assert blocking == async_chunks(model, stop=["x"], temperature=0.5)
    first, second = server.requests
    assert (first.path, first.json(), first.headers["content-type"]) == (
        second.path,
        second.json(),
        second.headers["content-type"],
    )
    model.close()
    wait_until(lambda: server.open_connections == 0)


def test_nothing_is_sent_before_iteration(server: ScriptedServer) -> None:
    chat = ChatOpenAI(base_url=f"{server.url}/v1")
    chunks = chat._stream(chat._coerce("hi"))
    assert server.requests == []
    chunks.close()  # type: ignore[attr-defined]
    assert chat._sync_clients._client is not None  # picked, not used
    assert server.opened == 0
    chat.close()


def test_the_stream_hook_returns_the_transport_generator(server: ScriptedServer) -> None:
    # Not a generator re-yielding it: every layer a chunk passes costs time.
    chat = ChatOpenAI(base_url=f"{server.url}/v1")
    chunks = chat._stream(chat._coerce("hi"))
    assert getattr(chunks, "__qualname__", None) == "stream_call"
    chunks.close()  # type: ignore[attr-defined]
    chat.close()


def test_a_lone_stream_is_iterated_straight_from_the_transport(server: ScriptedServer) -> None:
    # The transport keeps the text for .partial, so the bridge adds no layer of its own.
    server.script(Reply(body=openai_chat(["a", "b"])), Reply(body=openai_chat(["c"])))
    chat = ChatOpenAI(base_url=f"{server.url}/v1")
    chunks = chat.stream("hi")
    assert getattr(iter(chunks), "__qualname__", None) == "stream_call"
    assert "".join(c.content for c in chunks) == "ab"

    async def consume() -> str:
        chunks = chat.astream("hi")
        assert getattr(aiter(chunks), "__qualname__", None) == "astream_call"
        try:
            return "".join([c.content async for c in chunks])
        finally:
            await chat.aclose()  # this loop's client too

    assert asyncio.run(consume()) == "c"


def test_sequential_calls_reuse_one_connection(server: ScriptedServer) -> None:
    server.script(*[Reply(body=openai_chat(["ok"])) for _ in range(3)])
    chat = ChatOpenAI(base_url=f"{server.url}/v1")
    for _ in range(3):
        assert [c.content for c in sync_chunks(chat) if c.content] == ["ok"]
    assert server.opened == 1
    chat.close()
    wait_until(lambda: server.open_connections == 0)


# Closing


SLOW: list[bytes | Pause | Until] = []
for _piece in openai_chat(["tick "] * 100):
    SLOW += [_piece, Pause(0.02)]


def test_breaking_out_of_a_for_closes_the_response_at_once(server: ScriptedServer) -> None:
    server.script(Reply(body=SLOW), Reply(body=openai_chat(["next"])))
    chat = ChatOpenAI(base_url=f"{server.url}/v1")
    for chunk in chat._stream(chat._coerce("hi")):
        if chunk.content:
            break
    wait_until(lambda: server.aborted == 1)  # while the client stays open
    assert busy(chat) == 0
    assert [c.content for c in sync_chunks(chat) if c.content] == ["next"]
    chat.close()
    wait_until(lambda: server.open_connections == 0)


def test_close_closes_the_sync_client_and_the_model_stays_usable(
    server: ScriptedServer,
) -> None:
    server.script(Reply(body=openai_chat(["a"])), Reply(body=openai_chat(["b"])))
    chat = ChatOpenAI(base_url=f"{server.url}/v1")
    sync_chunks(chat)
    client = chat._sync_clients._client
    assert client is not None
    assert server.open_connections == 1  # kept alive in the pool
    chat.close()
    assert client.is_closed
    wait_until(lambda: server.open_connections == 0)
    assert [c.content for c in sync_chunks(chat) if c.content] == ["b"]
    assert chat._sync_clients._client is not client  # a new one
    chat.close()
    wait_until(lambda: server.open_connections == 0)


async def test_aclose_closes_the_sync_client(server: ScriptedServer) -> None:
    server.script(Reply(body=openai_chat(["a"])))
    chat = ChatOpenAI(base_url=f"{server.url}/v1")
    await asyncio.to_thread(sync_chunks, chat)
    client = chat._sync_clients._client
    assert client is not None
    await chat.aclose()
    assert client.is_closed
    wait_until(lambda: server.open_connections == 0)


def test_a_dropped_model_closes_its_sync_client(server: ScriptedServer) -> None:
    server.script(Reply(body=openai_chat(["a"])))
    chat = ChatOpenAI(base_url=f"{server.url}/v1")
    sync_chunks(chat)
    assert server.open_connections == 1
    del chat
    gc.collect()
    wait_until(lambda: server.open_connections == 0)


def test_one_client_for_all_threads_within_max_connections(server: ScriptedServer) -> None:
    # Each reply is held until two connections are open: with max_connections=2 the
    # other two calls wait for a free one.
    def respond(request: object) -> Reply:
        events = openai_chat(["held ", "open"])
        at_once = Until(lambda: server.open_connections >= 2, timeout=10)
        return Reply(body=[events[0], at_once, *events[1:]])

    server.respond = respond
    chat = ChatOpenAI(base_url=f"{server.url}/v1", max_connections=2)
    texts: list[str] = []
    clients: set[int] = set()

    def call() -> None:
        clients.add(id(chat._sync_client()))
        texts.append("".join(c.content for c in sync_chunks(chat)))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert texts == ["held open"] * 4
    assert len(clients) == 1
    assert server.peak_connections == 2
    chat.close()
    wait_until(lambda: server.open_connections == 0)


def test_the_sync_client_has_the_async_ones_settings(server: ScriptedServer) -> None:
    chat = ChatOpenAI(base_url=f"{server.url}/v1", timeout=30, max_connections=7)
    client = chat._sync_client()
    assert client.timeout == httpx.Timeout(30, connect=10)
    pool = own_pool(chat)
    assert (pool._max_connections, pool._max_keepalive_connections) == (7, 7)
    chat.close()


# Failures, through the twin itself


@pytest.mark.parametrize("wire_name", list(WIRES))
def test_a_stream_cut_midway(server: ScriptedServer, wire_name: str) -> None:
    wire = WIRES[wire_name]
    server.script(wire.reply(wire.partial(FIVE), end="drop"), wire.reply(wire.ok(["again"])))
    model = wire.make(server.url)
    got: list[str] = []

    def read() -> None:
        for chunk in model._stream(model._coerce("x")):  # type: ignore[attr-defined]
            got.append(chunk.content)

    with pytest.raises(StreamInterruptedError, match="lost mid-stream"):
        read()
    assert "".join(got) == "".join(FIVE)
    assert len(server.requests) == 1
    assert busy(model) == 0
    model.close()
    wait_until(lambda: server.open_connections == 0)


def test_retries_then_success(server: ScriptedServer) -> None:
    failing = Reply(503, [b"{}"], content_type="application/json")
    server.script(failing, failing, Reply(body=openai_chat(["fine"])))
    chat = ChatOpenAI(base_url=f"{server.url}/v1")
    assert "".join(c.content for c in sync_chunks(chat)) == "fine"
    assert len(server.requests) == 3
    chat.close()


def test_errors_name_no_secret(server: ScriptedServer) -> None:
    key = "sk-canary-0123456789abcdef"
    body = f'{{"error": {{"message": "Incorrect API key provided: {key}"}}}}'
    server.script(Reply(401, [body.encode()], content_type="application/json"))
    chat = ChatOpenAI(base_url=f"{server.url}/v1", api_key=key)
    with pytest.raises(AuthenticationError) as raised:
        sync_chunks(chat)
    assert "Incorrect API key provided: [REDACTED]" in str(raised.value)
    assert key not in repr(raised.value.body)
    assert server.requests[0].headers["authorization"] == f"Bearer {key}"
    chat.close()


def test_connection_refused() -> None:
    chat = ChatOpenAI(base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=1)
    with pytest.raises(APIConnectionError, match="cannot reach"):
        sync_chunks(chat)
    chat.close()


def test_a_read_timeout(server: ScriptedServer) -> None:
    server.script(Reply(body=[], end="hang"))
    chat = ChatOpenAI(base_url=f"{server.url}/v1", timeout=0.2, max_retries=0)
    with pytest.raises(APITimeoutError):
        sync_chunks(chat)
    wait_until(lambda: server.aborted == 1)
    chat.close()


# Injected clients


@pytest.fixture
def sync_client() -> Iterator[httpx.Client]:
    with httpx.Client(headers={"x-client": "sync"}) as client:
        yield client


@pytest.fixture
def async_client() -> Iterator[httpx.AsyncClient]:
    # No connection kept alive: each is closed on the loop that opened it (the test's
    # or rxllm's), so the client can be closed on any loop afterwards.
    client = httpx.AsyncClient(
        headers={"x-client": "async"}, limits=httpx.Limits(max_keepalive_connections=0)
    )
    yield client
    asyncio.run(client.aclose())


def test_an_injected_sync_client_is_used_and_never_closed(
    server: ScriptedServer, sync_client: httpx.Client
) -> None:
    server.script(Reply(body=openai_chat(["a"])), Reply(body=openai_chat(["b"])))
    chat = ChatOpenAI(base_url=f"{server.url}/v1", http_client=sync_client)
    assert "http_client" not in repr(chat)
    assert "http_client" not in chat.model_dump()
    assert "".join(c.content for c in sync_chunks(chat)) == "a"
    chat.close()
    assert not sync_client.is_closed
    assert "".join(c.content for c in sync_chunks(chat)) == "b"
    assert [r.headers["x-client"] for r in server.requests] == ["sync", "sync"]
    assert chat._sync_clients._client is None  # no client of its own was made


@pytest.mark.parametrize("mode", MODES)
def test_only_an_injected_sync_client_carries_every_call(
    server: ScriptedServer, sync_client: httpx.Client, mode: str
) -> None:
    server.script(Reply(body=openai_chat(["a", "b"])))
    chat = ChatOpenAI(base_url=f"{server.url}/v1", http_client=sync_client)
    outcome = consume(chat, "x", mode)
    assert outcome.error is None
    assert outcome.text == "ab"
    assert server.requests[0].headers["x-client"] == "sync"
    assert not chat._clients.values()  # no async client was made, on any loop
    chat.close()
    assert not sync_client.is_closed


@pytest.mark.parametrize("mode", MODES)
def test_only_an_injected_async_client_carries_every_call(
    server: ScriptedServer, async_client: httpx.AsyncClient, mode: str
) -> None:
    server.script(Reply(body=openai_chat(["a", "b"])))
    chat = ChatOpenAI(base_url=f"{server.url}/v1", http_async_client=async_client)
    outcome = consume(chat, "x", mode)
    assert outcome.text == "ab"
    assert server.requests[0].headers["x-client"] == "async"
    assert chat._sync_clients._client is None  # no sync client was made
    chat.close()
    assert not async_client.is_closed


def test_with_both_injected_each_twin_uses_its_own(
    server: ScriptedServer, sync_client: httpx.Client, async_client: httpx.AsyncClient
) -> None:
    server.script(Reply(body=openai_chat(["a"])), Reply(body=openai_chat(["b"])))
    chat = ChatOpenAI(
        base_url=f"{server.url}/v1", http_client=sync_client, http_async_client=async_client
    )
    assert "".join(c.content for c in sync_chunks(chat)) == "a"

    async def run() -> str:
        return "".join([c.content async for c in chat._astream(chat._coerce("x"))])

    assert asyncio.run(run()) == "b"
    assert [r.headers["x-client"] for r in server.requests] == ["sync", "async"]
    chat.close()
    assert not sync_client.is_closed
    assert not async_client.is_closed


def test_http_client_is_a_setting_of_the_model(server: ScriptedServer) -> None:
    chat = ChatOpenAI(base_url=f"{server.url}/v1")
    with pytest.raises(InvalidInputError, match="http_client is a setting of the model"):
        chat.invoke("x", http_client=httpx.Client())
    with pytest.raises(ValueError, match="http_client"):
        ChatOpenAI(base_url=f"{server.url}/v1", http_client="not a client")
    chat.close()


# The bridges over the blocking twin (with only http_client, every mode runs it)


@pytest.fixture
def sync_only(sync_client: httpx.Client) -> Callable[..., HTTPModel]:
    def make(wire_make: Callable[..., HTTPModel], url: str, **kwargs: Any) -> HTTPModel:
        return wire_make(url, http_client=sync_client, **kwargs)

    return make


@pytest.mark.parametrize("mode", MODES)
def test_partial_text_on_a_cut_stream(
    server: ScriptedServer, sync_only: Callable[..., HTTPModel], mode: str
) -> None:
    wire = WIRES["openai"]
    server.script(wire.reply(wire.partial(FIVE), end="drop"))
    model = sync_only(wire.make, server.url)
    outcome = consume(model, "Count", mode)
    assert isinstance(outcome.error, StreamInterruptedError)
    assert outcome.error.partial == "".join(FIVE)
    assert outcome.text == "".join(FIVE)
    assert len(server.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_retries_exhausted_through_the_bridges(
    server: ScriptedServer, sync_only: Callable[..., HTTPModel], mode: str
) -> None:
    failing = Reply(503, [b"{}"], content_type="application/json")
    server.script(failing, failing)
    model = sync_only(WIRES["openai"].make, server.url, max_retries=1)
    outcome = consume(model, "x", mode)
    assert isinstance(outcome.error, InternalServerError)
    assert outcome.error.partial is None
    assert len(server.requests) == 2


@pytest.mark.parametrize("mode", MODES)
def test_stopping_early_through_the_bridges_closes_the_response(
    server: ScriptedServer, sync_only: Callable[..., HTTPModel], mode: str
) -> None:
    server.script(Reply(body=SLOW))
    model = sync_only(WIRES["openai"].make, server.url)
    outcome = consume(model, "x", mode, limit=2)
    assert outcome.error is None
    assert len(outcome.items) == 2
    wait_until(lambda: server.aborted == 1)
