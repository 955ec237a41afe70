"""A streamed call's slot is given back on the server's event loop, where it was taken."""

from __future__ import annotations

import threading

import httpx

from rxllm.llms import FakeListChatModel
from rxllm.serve import create_app
from tests.conftest import wait_until
from tests.servers.asgi import Served


def test_a_streamed_calls_slot_is_given_back_on_the_loop_that_took_it() -> None:
    app = create_app(FakeListChatModel(responses=["hello there"]), model_name="m")
    slots = app.state.server.slots
    threads: dict[str, threading.Thread] = {}
    take, give_back = slots.take, slots.give_back

    def taking() -> None:
        threads["take"] = threading.current_thread()
        take()

    def giving_back() -> None:
        threads["give_back"] = threading.current_thread()
        give_back()

    slots.take, slots.give_back = taking, giving_back
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with Served(app) as served, httpx.Client(timeout=10) as client:
        response = client.post(f"{served.url}/v1/chat/completions", json=request)
        assert response.status_code == 200
        assert response.text.endswith("data: [DONE]\n\n")
        wait_until(lambda: slots.used == 0)
    assert threads["give_back"] is threads["take"]
