"""200 clients streaming at once through ``create_app`` to a local upstream: every one
gets its whole reply, and nothing is left open afterwards."""

from __future__ import annotations

import asyncio
import json

import httpx

from rxllm.llms import ChatOpenAI
from rxllm.serve import create_app
from rxllm.testing import assert_no_leaks
from tests.servers.asgi import Served
from tests.servers.scripted import Recorded, Reply, ScriptedServer, Until
from tests.servers.wire import openai_chat

CLIENTS = 200
TEXTS = [f"token{i} " for i in range(20)]


async def stream_once(client: httpx.AsyncClient, url: str) -> str:
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    text = []
    async with client.stream("POST", url, json=request) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:])["choices"]:
                    text.append(choice["delta"].get("content") or "")
    return "".join(text)


async def test_200_concurrent_streams_complete_and_nothing_is_left_open() -> None:
    async with assert_no_leaks(settle=10):
        with ScriptedServer() as upstream:
            events = openai_chat(TEXTS)
            # Every reply waits until all the calls are open: they really run at once.
            hold = Until(lambda: upstream.open_connections >= CLIENTS, timeout=30, every=0.05)

            def respond(request: Recorded) -> Reply:
                return Reply(body=[events[0], hold, *events[1:]])

            upstream.respond = respond
            upstream.record = False
            model = ChatOpenAI(
                base_url=f"{upstream.url}/v1", api_key="k", model="m", max_connections=CLIENTS
            )
            app = create_app(model, model_name="m", max_concurrency=CLIENTS)
            with Served(app) as served:
                limits = httpx.Limits(max_connections=CLIENTS)
                async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                    url = f"{served.url}/v1/chat/completions"
                    texts = await asyncio.gather(
                        *(stream_once(client, url) for _ in range(CLIENTS))
                    )
            assert texts == ["".join(TEXTS)] * CLIENTS
            assert upstream.served == CLIENTS
            assert upstream.peak_connections >= CLIENTS
