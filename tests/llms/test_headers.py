"""``default_headers``: sent on every request, over the provider's own, checked, never shown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from rxllm.llms import ChatAnthropic, ChatOllama, ChatOpenAI, Ollama, OpenAI
from rxllm.llms._http_model import HTTPModel
from tests.servers.scripted import Reply, ScriptedServer
from tests.servers.wire import anthropic_text, ollama_chat, ollama_generate, openai_chat
from tests.servers.wire import openai_completion as completion

NDJSON = "application/x-ndjson"

PROVIDERS: dict[str, tuple[Callable[..., HTTPModel], Reply]] = {
    "OpenAI": (
        lambda url, **kw: OpenAI(base_url=f"{url}/v1", **kw),
        Reply(body=completion(["ok"])),
    ),
    "ChatOpenAI": (
        lambda url, **kw: ChatOpenAI(base_url=f"{url}/v1", **kw),
        Reply(body=openai_chat(["ok"])),
    ),
    "ChatAnthropic": (
        lambda url, **kw: ChatAnthropic(model="m", base_url=url, **kw),
        Reply(body=anthropic_text(["ok"])),
    ),
    "Ollama": (
        lambda url, **kw: Ollama(model="m", base_url=url, **kw),
        Reply(body=ollama_generate(["ok"]), content_type=NDJSON),
    ),
    "ChatOllama": (
        lambda url, **kw: ChatOllama(model="m", base_url=url, **kw),
        Reply(body=ollama_chat(["ok"]), content_type=NDJSON),
    ),
}

HEADERS = {"X-Team": "blue", "X-Gateway-Key": "gw-0123456789"}


def text_of(output: Any) -> str:
    return output if isinstance(output, str) else output.content  # type: ignore[no-any-return]


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_every_request_carries_them_retries_included(server: ScriptedServer, provider: str) -> None:
    make, reply = PROVIDERS[provider]
    busy = Reply(503, [b'{"error": "busy"}'], content_type="application/json")
    server.script(busy, reply)
    model = make(server.url, default_headers=HEADERS, api_key="sk-own")
    assert text_of(model.invoke("hi")) == "ok"  # type: ignore[attr-defined]
    assert len(server.requests) == 2
    for request in server.requests:
        assert request.headers["x-team"] == "blue"
        assert request.headers["x-gateway-key"] == "gw-0123456789"
        assert "sk-own" in " ".join(request.headers.values())  # the provider's auth stays
        assert request.headers["content-type"] == "application/json"
    model.close()


def test_they_win_over_the_providers_own_headers(server: ScriptedServer) -> None:
    make, reply = PROVIDERS["ChatAnthropic"]
    server.script(reply)
    chat = make(
        server.url,
        api_key="sk-own",
        default_headers={"X-API-KEY": "gw-key-0123", "Anthropic-Version": "2099-01-01"},
    )
    assert chat.invoke("hi").content == "ok"  # type: ignore[attr-defined]
    sent = server.requests[0].headers
    assert sent["x-api-key"] == "gw-key-0123"
    assert sent["anthropic-version"] == "2099-01-01"
    # One header of each name, whatever the case they were given in.
    headers = chat._request_headers()
    assert headers.get_list("x-api-key") == ["gw-key-0123"]
    assert headers.get_list("anthropic-version") == ["2099-01-01"]
    chat.close()


def test_an_authorization_header_replaces_the_bearer_key(server: ScriptedServer) -> None:
    make, reply = PROVIDERS["ChatOpenAI"]
    server.script(reply)
    chat = make(server.url, api_key="sk-own", default_headers={"authorization": "Token gw"})
    chat.invoke("hi")  # type: ignore[attr-defined]
    assert server.requests[0].headers["authorization"] == "Token gw"
    assert chat._request_headers().get_list("Authorization") == ["Token gw"]
    chat.close()


async def test_they_are_sent_through_an_injected_client_too(server: ScriptedServer) -> None:
    make, reply = PROVIDERS["ChatOpenAI"]
    server.script(reply)
    async with httpx.AsyncClient(headers={"x-app": "demo", "x-team": "red"}) as client:
        chat = make(server.url, http_async_client=client, default_headers=HEADERS)
        assert (await chat.ainvoke("hi")).content == "ok"  # type: ignore[attr-defined]
    sent = server.requests[0].headers
    assert (sent["x-app"], sent["x-team"]) == ("demo", "blue")


def test_their_values_are_never_shown(server: ScriptedServer) -> None:
    model = PROVIDERS["ChatOpenAI"][0](server.url, default_headers=HEADERS)
    assert model.default_headers is not None
    assert model.default_headers["X-Gateway-Key"].get_secret_value() == "gw-0123456789"
    for text in (repr(model), str(model), model.model_dump_json(), repr(model.model_dump())):
        assert "gw-0123456789" not in text
        assert "blue" not in text
        assert "X-Gateway-Key" in text  # names are not secret
    model.close()


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X Team": "blue"}, "'X Team' is not a valid header name"),
        ({"": "blue"}, "'' is not a valid header name"),
        ({"X-Team:": "blue"}, "is not a valid header name"),
        ({"X-Tëam": "blue"}, "is not a valid header name"),
        ({"X-Key": "sk-canary\r\nX-Evil: 1"}, "must be printable ASCII, without line breaks"),
        ({"X-Key": "sk-canary\n"}, "must be printable ASCII"),
        ({"X-Key": " sk-canary"}, "spaces at either end"),
        ({"X-Key": "sk-canary\t"}, "spaces at either end"),
        ({"X-Key": "sk-canaryé"}, "must be printable ASCII"),
        ({"X-Key": "sk-\x00canary"}, "must be printable ASCII"),
        ({"Content-Length": "5"}, "Content-Length is set by httpx"),
        ({"transfer-encoding": "chunked"}, "set by httpx"),
        ({"X-Key": ["sk-canary"]}, "default_headers.X-Key"),
        ({"X-Key": 5}, "Input should be a valid string"),
        ("X-Key: sk-canary", "Input should be a valid dictionary"),
    ],
)
def test_bad_names_and_values_are_refused_at_construction_without_the_value(
    server: ScriptedServer, headers: Any, message: str
) -> None:
    with pytest.raises(ValidationError, match="default_headers") as caught:
        PROVIDERS["ChatOpenAI"][0](server.url, default_headers=headers)
    assert message in str(caught.value)
    for text in (str(caught.value), repr(caught.value), caught.value.json()):
        assert "canary" not in text
    assert "canary" not in repr(caught.value.errors())
    assert server.opened == 0


def test_spaces_inside_a_value_and_empty_values_are_fine(server: ScriptedServer) -> None:
    make, reply = PROVIDERS["ChatOpenAI"]
    server.script(reply)
    chat = make(server.url, default_headers={"X-Agent": "my app/1.0 (linux)", "X-Empty": ""})
    chat.invoke("hi")  # type: ignore[attr-defined]
    assert server.requests[0].headers["x-agent"] == "my app/1.0 (linux)"
    assert server.requests[0].headers["x-empty"] == ""
    chat.close()


@pytest.mark.parametrize("key", ["sk-canary\n", "sk-canary ", "sk canary", "sk-canaryé"])
def test_an_api_key_that_cannot_be_a_header_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    with pytest.raises(ValidationError, match="api_key must be printable ASCII") as caught:
        ChatOpenAI(api_key=key)  # type: ignore[arg-type]
    assert "canary" not in str(caught.value) + caught.value.json()
    # The same key from the environment (a file's trailing newline, typically).
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with pytest.raises(ValidationError, match="api_key must be printable ASCII") as caught:
        ChatOpenAI()
    assert "canary" not in str(caught.value) + caught.value.json()
