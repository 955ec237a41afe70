"""Client lifetime: one client per loop, injected clients, closing, cancellation."""

from __future__ import annotations

import asyncio
import gc
import threading

import httpx
import pytest
from reactivex import operators as ops

from rxllm.llms import ChatOpenAI
from tests.conftest import SyncRunner, await_until, wait_until
from tests.servers.scripted import Pause, Reply, ScriptedServer, Until
from tests.servers.wire import openai_chat

from .conftest import assert_all_closed

SLOW: list[bytes | Pause] = []
for _piece in openai_chat(["tick "] * 100):
    SLOW += [_piece, Pause(0.02)]


def chat_for(server: ScriptedServer, **kwargs: object) -> ChatOpenAI:
    return ChatOpenAI(base_url=f"{server.url}/v1", **kwargs)  # type: ignore[arg-type]


def test_sequential_calls_reuse_one_connection(server: ScriptedServer) -> None:
    server.script(*[Reply(body=openai_chat(["ok"])) for _ in range(3)])
    chat = chat_for(server)
    for _ in range(3):
        assert chat.invoke("x").content == "ok"
    assert server.opened == 1
    assert_all_closed(chat, server)


def test_calls_follow_base_url_when_it_changes(server: ScriptedServer) -> None:
    server.script(*[Reply(body=openai_chat(["ok"])) for _ in range(3)])
    chat = chat_for(server)
    chat.invoke("x")
    chat.invoke("x")  # the endpoint is made once, then reused
    chat.base_url = f"{server.url}/proxy/v1/"
    chat.invoke("x")
    assert [r.path for r in server.requests] == [
        "/v1/chat/completions",
        "/v1/chat/completions",
        "/proxy/v1/chat/completions",
    ]
    assert_all_closed(chat, server)


def test_one_client_per_loop_and_close_closes_all(server: ScriptedServer) -> None:
    server.script(
        Reply(body=openai_chat(["blocking"])),
        Reply(body=openai_chat(["library loop"])),
        Reply(body=openai_chat(["this loop"])),
    )
    chat = chat_for(server)
    # A sync consumer alone takes the blocking client; an Observable subscribed from
    # sync code runs on rxllm's loop, and async code on its own: one client per loop.
    assert chat.invoke("x").content == "blocking"
    chunks = chat.observe("x").pipe(ops.to_list()).run()
    assert "".join(str(c.content) for c in chunks) == "library loop"
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(chat.ainvoke("x")).content == "this loop"
        clients = chat._clients.values()
        assert len(clients) == 2  # the library loop's and this loop's
        blocking = chat._sync_clients._client
        assert blocking is not None
        chat.close()  # from sync code, each on its own loop
        assert all(client.is_closed for client in clients)
        assert blocking.is_closed
        wait_until(lambda: server.open_connections == 0)
    finally:
        loop.close()


async def test_async_context_manager(server: ScriptedServer) -> None:
    server.script(Reply(body=openai_chat(["a"])))
    async with chat_for(server) as chat:
        assert (await chat.ainvoke("x")).content == "a"
        client = chat._client()
    assert client.is_closed
    await await_until(lambda: server.open_connections == 0)


def test_sync_context_manager(server: ScriptedServer) -> None:
    server.script(Reply(body=openai_chat(["a"])))
    with chat_for(server) as chat:
        assert chat.invoke("x").content == "a"
    wait_until(lambda: server.open_connections == 0)
    assert not chat._clients.values()


async def test_injected_client_is_used_and_never_closed(server: ScriptedServer) -> None:
    server.script(Reply(body=openai_chat(["a"])), Reply(body=openai_chat(["b"])))
    async with httpx.AsyncClient(headers={"x-app": "demo"}) as client:
        chat = chat_for(server, http_async_client=client)
        assert "http_async_client" not in repr(chat)
        assert (await chat.ainvoke("x")).content == "a"
        assert server.requests[0].headers["x-app"] == "demo"
        await chat.aclose()
        assert not client.is_closed
        assert (await chat.ainvoke("x")).content == "b"
        assert not chat._clients.values()
    await await_until(lambda: server.open_connections == 0)


def test_a_dropped_model_closes_its_connections(
    server: ScriptedServer, sync_thread: SyncRunner
) -> None:
    server.script(Reply(body=openai_chat(["a"])))
    chat = chat_for(server)
    assert sync_thread(chat.invoke, "x").content == "a"
    assert server.open_connections == 1  # kept alive in the pool
    del chat
    gc.collect()
    wait_until(lambda: server.open_connections == 0)


async def test_cancelling_the_consumer_closes_the_response(server: ScriptedServer) -> None:
    server.script(Reply(body=SLOW))
    chat = chat_for(server)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in chat.astream("x"):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await await_until(lambda: server.aborted == 1)
    await chat.aclose()
    await await_until(lambda: server.open_connections == 0)


def test_disposing_a_subscription_closes_the_response(server: ScriptedServer) -> None:
    server.script(Reply(body=SLOW))
    chat = chat_for(server)
    got = threading.Event()
    subscription = chat.observe("x").subscribe(lambda _: got.set())
    assert got.wait(5)
    subscription.dispose()
    wait_until(lambda: server.aborted == 1)
    assert_all_closed(chat, server)


def test_nothing_is_sent_before_subscription(server: ScriptedServer) -> None:
    chat = chat_for(server)
    observable = chat.observe("x")
    stream = chat.stream("x")
    assert server.requests == []
    del observable, stream
    chat.close()


async def _hold_until_open(server: ScriptedServer, calls: int, max_connections: int) -> None:
    """``calls`` concurrent streams, each held until ``max_connections`` are open at once."""

    def respond(request: object) -> Reply:
        events = openai_chat(["held ", "open"])
        at_once = Until(lambda: server.open_connections >= max_connections, timeout=10)
        return Reply(body=[events[0], at_once, *events[1:]])

    server.respond = respond
    chat = chat_for(server, max_connections=max_connections)
    texts = await asyncio.gather(*(chat.ainvoke("x") for _ in range(calls)))
    assert [t.content for t in texts] == ["held open"] * calls
    await chat.aclose()
    await await_until(lambda: server.open_connections == 0)


async def test_max_connections_caps_the_connections_open_at_once(server: ScriptedServer) -> None:
    await _hold_until_open(server, 6, 3)
    assert server.peak_connections == 3  # the other three waited for a free connection


async def test_max_connections_past_httpx_default_of_100(server: ScriptedServer) -> None:
    await _hold_until_open(server, 150, 150)
    assert server.peak_connections == 150


def test_max_connections_must_be_positive(server: ScriptedServer) -> None:
    with pytest.raises(ValueError, match="max_connections"):
        chat_for(server, max_connections=0)
