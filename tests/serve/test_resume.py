"""Resumable streams: a client that leaves mid-stream and comes back with
``Last-Event-ID`` gets the rest, nothing repeated or lost, while the call ran on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rxllm._http._sse import ServerSentEvent, SSEDecoder
from rxllm.llms import ChatOpenAI, FakeListChatModel
from rxllm.serve import create_app
from tests.conftest import wait_until
from tests.servers.asgi import Served
from tests.servers.scripted import Pause, Reply, ScriptedServer
from tests.servers.wire import openai_chat

NAME = "served"
TEXTS = [f"w{i} " for i in range(30)]
REQUEST = {"model": NAME, "messages": [{"role": "user", "content": "hi"}], "stream": True}
UI_USER = {"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
UI_REQUEST = {"id": "chat-1", "messages": [UI_USER]}


def paced() -> Reply:
    body: list[bytes | Pause] = []
    for event in openai_chat(TEXTS):
        body += [event, Pause(0.02)]
    return Reply(body=body)


@pytest.fixture
def upstream() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        server.respond = lambda request: paced()
        yield server


def complete_events(received: bytes) -> list[ServerSentEvent]:
    """The events wholly received (a cut-off last one is left out)."""
    whole = received[: received.rfind(b"\n\n") + 2]
    decoder = SSEDecoder()
    return decoder.feed(whole) + decoder.flush()


def text_of(events: list[ServerSentEvent]) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for event in events
        if event.data.startswith("{")
        for choice in json.loads(event.data)["choices"]
    )


def leave_after(client: httpx.Client, url: str, body: dict[str, Any], n: int) -> Any:
    """POST, read ``n`` events, leave; the events and the response's headers."""
    received = b""
    with client.stream("POST", url, json=body) as response:
        assert response.status_code == 200
        for piece in response.iter_raw():
            received += piece
            if received.count(b"\n\n") >= n:
                break
    return complete_events(received), response.headers


def test_reconnecting_with_last_event_id_gets_the_rest(upstream: ScriptedServer) -> None:
    model = ChatOpenAI(base_url=f"{upstream.url}/v1", api_key="k", model="m", max_retries=0)
    uninterrupted = model.invoke("hi").content
    with (
        Served(create_app(model, model_name=NAME, resume_window=10)) as served,
        httpx.Client(base_url=served.url, timeout=10) as client,
    ):
        first, headers = leave_after(client, "/v1/chat/completions", REQUEST, 4)
        assert [e.id for e in first] == [str(i) for i in range(len(first))]
        where = headers["x-resume-url"]
        rest = client.get(where, headers={"Last-Event-ID": first[-1].id or ""})
        assert rest.status_code == 200
        assert rest.headers["content-type"].startswith("text/event-stream")
        second = complete_events(rest.content)
        ids = [int(e.id or "") for e in first + second]
        assert ids == list(range(len(ids)))  # nothing repeated, nothing lost
        assert second[-1].data == "[DONE]"
        assert text_of(first) + text_of(second) == uninterrupted
        # Without Last-Event-ID (the AI SDK's resume, a fresh EventSource): all of it.
        again = complete_events(client.get(where).content)
        assert text_of(again) == uninterrupted
    assert upstream.aborted == 0  # the call ran on while no one read it
    assert len(upstream.requests) == 2  # the invoke, and the served call: once
    model.close()


def test_a_stream_no_one_comes_back_for_is_cancelled_after_the_window(
    upstream: ScriptedServer,
) -> None:
    upstream.respond = lambda request: Reply(body=openai_chat(["x"], done=False), end="hang")
    model = ChatOpenAI(base_url=f"{upstream.url}/v1", api_key="k", model="m", max_retries=0)
    with (
        Served(create_app(model, model_name=NAME, resume_window=0.3)) as served,
        httpx.Client(base_url=served.url, timeout=10) as client,
    ):
        _, headers = leave_after(client, "/v1/chat/completions", REQUEST, 2)
        wait_until(lambda: upstream.aborted == 1)
        gone = client.get(headers["x-resume-url"], headers={"Last-Event-ID": "0"})
        assert gone.status_code == 404
        assert gone.json()["error"]["type"] == "not_found_error"
    model.close()


def test_the_ai_sdk_resumes_a_chat_by_its_id(upstream: ScriptedServer) -> None:
    model = ChatOpenAI(base_url=f"{upstream.url}/v1", api_key="k", model="m", max_retries=0)
    with (
        Served(create_app(model, model_name=NAME, resume_window=10)) as served,
        httpx.Client(base_url=served.url, timeout=10) as client,
    ):
        assert client.get("/api/chat/chat-1/stream").status_code == 204  # nothing running
        first, headers = leave_after(client, "/api/chat", UI_REQUEST, 3)
        assert headers["x-resume-url"] == "/v1/streams/chat-1"
        rest = client.get("/api/chat/chat-1/stream", headers={"Last-Event-ID": first[-1].id or ""})
        assert rest.headers["x-vercel-ai-ui-message-stream"] == "v1"
        second = complete_events(rest.content)
        ids = [int(e.id or "") for e in first + second]
        assert ids == list(range(len(ids)))
        deltas = [json.loads(e.data) for e in first + second if e.data.startswith("{")]
        text = "".join(d.get("delta", "") for d in deltas if d["type"] == "text-delta")
        assert text == "".join(TEXTS)
    model.close()


def test_events_past_the_buffer_are_gone_and_bad_ids_refused() -> None:
    model = FakeListChatModel(responses=["one two three four five six seven"])
    app = create_app(model, model_name=NAME, resume_window=10, resume_max_events=3)
    with Served(app) as served, httpx.Client(base_url=served.url, timeout=10) as client:
        whole = client.post("/v1/chat/completions", json=REQUEST)
        where = whole.headers["x-resume-url"]
        events = complete_events(whole.content)
        assert events[-1].data == "[DONE]"
        last = int(events[-1].id or "")
        assert client.get(where, headers={"Last-Event-ID": str(last - 1)}).status_code == 200
        gone = client.get(where, headers={"Last-Event-ID": "0"})
        assert gone.status_code == 410
        assert "no longer kept" in gone.json()["error"]["message"]
        assert client.get(where, headers={"Last-Event-ID": "x"}).status_code == 400


def test_without_resumption_there_are_no_ids_and_no_streams() -> None:
    app = create_app(FakeListChatModel(responses=["hi there"]), model_name=NAME)
    with Served(app) as served, httpx.Client(base_url=served.url, timeout=10) as client:
        response = client.post("/v1/chat/completions", json=REQUEST)
        assert "x-resume-url" not in response.headers
        assert all(e.id is None for e in complete_events(response.content))
        assert client.get("/v1/streams/anything").status_code == 404
