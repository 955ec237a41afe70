"""``Ollama`` and ``ChatOllama`` on the scripted server replaying Ollama's NDJSON."""

from __future__ import annotations

import pytest
from reactivex import operators as ops

from rxllm.errors import APIError, NotFoundError
from rxllm.llms import ChatOllama, Ollama
from rxllm.schema import ToolCall, merge_message_chunks
from tests.servers.scripted import Reply, ScriptedServer
from tests.servers.wire import FINAL, ndjson, ollama_chat, ollama_generate

from .conftest import MODES, assert_all_closed, consume

NDJSON = "application/x-ndjson"


@pytest.mark.parametrize("split", [1, 5])
@pytest.mark.parametrize("mode", MODES)
def test_generate(server: ScriptedServer, mode: str, split: int) -> None:
    server.script(
        Reply(
            body=ollama_generate(["The", " sky", " is", " blue"]), content_type=NDJSON, split=split
        )
    )
    llm = Ollama(
        model="llama3.2",
        base_url=server.url,
        temperature=0,
        max_tokens=50,
        stop=["\n"],
        model_kwargs={"options": {"seed": 1}, "keep_alive": "5m"},
    )
    outcome = consume(llm, "Why is the sky blue?", mode)
    assert outcome.error is None
    assert outcome.items == ["The", " sky", " is", " blue", ""]
    assert server.requests[0].path == "/api/generate"
    assert server.requests[0].json() == {
        "model": "llama3.2",
        "prompt": "Why is the sky blue?",
        "options": {"temperature": 0, "num_predict": 50, "stop": ["\n"], "seed": 1},
        "keep_alive": "5m",
        "stream": True,
    }
    assert_all_closed(llm, server)


@pytest.mark.parametrize("chat", [False, True])
def test_per_call_temperature_and_max_tokens_go_in_the_options(
    server: ScriptedServer, chat: bool
) -> None:
    body = ollama_chat(["ok"]) if chat else ollama_generate(["ok"])
    server.script(Reply(body=body, content_type=NDJSON))
    cls = ChatOllama if chat else Ollama
    model = cls(model="llama3.2", base_url=server.url, temperature=0.9, max_tokens=50)
    model.invoke("hi", temperature=0.1, max_tokens=4)  # type: ignore[attr-defined]
    sent = server.requests[0].json()
    assert sent["options"] == {"temperature": 0.1, "num_predict": 4}
    assert "max_tokens" not in sent
    assert "temperature" not in sent
    assert (model.temperature, model.max_tokens) == (0.9, 50)
    model.close()


def test_generate_final_record_lands_in_generation_info(server: ScriptedServer) -> None:
    server.script(Reply(body=ollama_generate(["a"]), content_type=NDJSON))
    llm = Ollama(model="llama3.2", base_url=server.url)
    chunks = llm.observe("x").pipe(ops.to_list()).run()
    info = chunks[-1].generation_info
    assert info is not None
    assert {k: info[k] for k in FINAL} == FINAL
    assert info["model"] == "llama3.2"
    assert chunks[0].generation_info is None
    assert_all_closed(llm, server)


@pytest.mark.parametrize("mode", MODES)
def test_chat(server: ScriptedServer, mode: str) -> None:
    server.script(Reply(body=ollama_chat(["Hello", " there"]), content_type=NDJSON, split=4))
    chat = ChatOllama(model="llama3.2", base_url=server.url)
    outcome = consume(chat, [("system", "Be brief"), ("human", "Hi")], mode)
    assert outcome.error is None
    message = merge_message_chunks(outcome.items).to_message()
    assert message.content == "Hello there"
    assert message.usage_metadata is not None
    assert message.usage_metadata.model_dump() == {
        "input_tokens": 11,
        "output_tokens": 18,
        "total_tokens": 29,
    }
    assert message.response_metadata["eval_duration"] == FINAL["eval_duration"]
    assert message.response_metadata["done_reason"] == "stop"
    assert message.response_metadata["model_name"] == "llama3.2"
    assert server.requests[0].path == "/api/chat"
    assert server.requests[0].json()["messages"] == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Hi"},
    ]
    assert_all_closed(chat, server)


def test_chat_tool_calls(server: ScriptedServer) -> None:
    calls = [{"function": {"name": "get_weather", "arguments": {"city": "Toronto"}}}]
    server.script(Reply(body=ollama_chat([], tool_calls=calls), content_type=NDJSON))
    chat = ChatOllama(model="llama3.2", base_url=server.url)
    message = chat.invoke(
        "Weather?", tools=[{"type": "function", "function": {"name": "get_weather"}}]
    )
    assert message.tool_calls == [ToolCall(name="get_weather", args={"city": "Toronto"})]
    assert server.requests[0].json()["tools"][0]["function"]["name"] == "get_weather"
    assert_all_closed(chat, server)


@pytest.mark.parametrize("mode", MODES)
def test_in_band_error_line(server: ScriptedServer, mode: str) -> None:
    body = ollama_generate(["a", "b"], done=False) + ndjson({"error": "out of memory"})
    server.script(Reply(body=body, content_type=NDJSON))
    llm = Ollama(model="llama3.2", base_url=server.url)
    outcome = consume(llm, "x", mode)
    assert type(outcome.error) is APIError
    assert "out of memory" in str(outcome.error)
    assert outcome.error.partial == "ab"
    assert_all_closed(llm, server)


def test_model_not_found(server: ScriptedServer) -> None:
    body = b'{"error":"model \\"nope\\" not found, try pulling it first"}'
    server.script(Reply(404, [body], content_type="application/json"))
    chat = ChatOllama(model="nope", base_url=server.url)
    with pytest.raises(NotFoundError, match="try pulling it first") as caught:
        chat.invoke("Hi")
    assert caught.value.status_code == 404
    assert len(server.requests) == 1  # a 404 is not retried
    assert_all_closed(chat, server)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1:11500", "http://127.0.0.1:11500"),
        ("example.com", "http://example.com:11434"),
        ("https://ollama.example.com/", "https://ollama.example.com"),
        ("http://10.0.0.2:8080", "http://10.0.0.2:8080"),
    ],
)
def test_ollama_host(monkeypatch: pytest.MonkeyPatch, host: str, url: str) -> None:
    monkeypatch.setenv("OLLAMA_HOST", host)
    assert Ollama(model="m").base_url == url


def test_default_host_and_ls_params(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    chat = ChatOllama(model="llama3.2", temperature=0.1)
    assert chat.base_url == "http://127.0.0.1:11434"
    assert chat._ls_params() == {
        "ls_provider": "ollama",
        "ls_model_type": "chat",
        "ls_model_name": "llama3.2",
        "ls_temperature": 0.1,
    }
