"""Fixtures for the provider tests: local servers, fast retries, and one way to consume.

``consume`` runs a call through ``stream`` (sync, on the main thread, which steps a
loop of its own) or ``astream`` (async, on the test's running loop), so every scenario
is checked both ways, and reports how many connections the client pool still had busy
when the call returned.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from rxllm._http._transport import Decoder, StreamPolicy, stream_call
from rxllm.llms._http_model import HTTPModel
from rxllm.operators import _retry
from tests.conftest import wait_until
from tests.servers.scripted import ScriptedServer


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_retry, "RETRY_INITIAL_DELAY", 0.01)
    monkeypatch.setattr(_retry, "RETRY_MAX_DELAY", 0.05)


MODES = ["stream", "astream"]


@dataclass
class Outcome:
    """What one call produced."""

    items: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    #: Connections still checked out of the pool (a response left open) after the call.
    busy: int = 0

    @property
    def text(self) -> str:
        return "".join(i if isinstance(i, str) else i.content for i in self.items)


def pool_connections(client: httpx.AsyncClient | httpx.Client) -> list[Any]:
    transport = client._transport
    assert isinstance(transport, httpx.AsyncHTTPTransport | httpx.HTTPTransport)
    return list(transport._pool.connections)


def busy_connections(model: HTTPModel) -> int:
    """Connections of the model's clients, async and blocking, still carrying a response."""
    clients: list[httpx.AsyncClient | httpx.Client] = (
        [model.http_async_client] if model.http_async_client else [*model._clients.values()]
    )
    blocking = model.http_client or model._sync_clients._client
    if blocking is not None:
        clients.append(blocking)
    return sum(
        1
        for client in clients
        for conn in pool_connections(client)
        if not conn.is_idle() and not conn.is_closed()
    )


def consume(
    model: HTTPModel, input: Any, mode: str, *, limit: int | None = None, **kwargs: Any
) -> Outcome:
    """Run one call through ``stream`` or ``astream``; stop after ``limit`` items."""
    outcome = Outcome()
    if mode == "stream":
        stream = model.stream(input, **kwargs)  # type: ignore[attr-defined]
        try:
            for item in stream:
                outcome.items.append(item)
                if limit is not None and len(outcome.items) >= limit:
                    break
        except Exception as exc:
            outcome.error = exc
        finally:
            stream.close()
        outcome.busy = busy_connections(model)
        return outcome

    async def run() -> None:
        try:
            stream = model.astream(input, **kwargs)  # type: ignore[attr-defined]
            try:
                async for item in stream:
                    outcome.items.append(item)
                    if limit is not None and len(outcome.items) >= limit:
                        break
            except Exception as exc:
                outcome.error = exc
            finally:
                await stream.aclose()
            outcome.busy = busy_connections(model)
        finally:
            # This loop ends with the call: its client must be closed on it.
            await model.aclose()

    asyncio.run(run())
    return outcome


def assert_all_closed(model: HTTPModel, server: ScriptedServer) -> None:
    """After ``close()``, the server sees every connection the model opened closed."""
    model.close()
    wait_until(lambda: server.open_connections == 0)


def translated(reads: list[bytes], decoder: Decoder[Any], translator: Any) -> list[Any]:
    """The chunks the transport's read loop makes of a 200 response arriving in
    ``reads``, without a server: a unit test of a decoder and translator."""

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter(reads))

    policy = StreamPolicy(retryable=lambda _: False, backoff=lambda _: 0.0, max_retries=0)
    with httpx.Client(transport=httpx.MockTransport(respond)) as client:
        build = lambda: client.build_request("POST", "http://wire.test/")  # noqa: E731
        return list(stream_call(client, build, lambda _: (decoder, translator), policy))
