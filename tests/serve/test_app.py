"""``create_app`` under real uvicorn, read by the official SDKs, in front of real providers.

The upstream of every test is an rxllm provider (``ChatOpenAI``, ``OpenAI``,
``ChatAnthropic``) talking to a ``ScriptedServer`` that replays its wire format; the
oracle is rxllm's own ``invoke`` on the same upstream. The clients are the official
``openai`` and ``anthropic`` SDKs, and plain httpx where a test needs to misbehave.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from rxllm.llms import ChatAnthropic, ChatOpenAI, FakeListChatModel, OpenAI
from rxllm.runnable import Runnable
from rxllm.serve import create_app
from tests.servers.asgi import Served
from tests.servers.scripted import Recorded, Reply, ScriptedServer
from tests.servers.wire import anthropic_text, openai_chat, openai_completion

TEXTS = ["Hel", "lo", ", wor", "ld", "!"]
NAME = "served"


def upstream_reply(request: Recorded) -> Reply:
    """Each provider's wire format, by the path the provider called."""
    if request.path.endswith("/chat/completions"):
        return Reply(body=openai_chat(TEXTS))
    if request.path.endswith("/completions"):
        return Reply(body=openai_completion(TEXTS))
    return Reply(body=anthropic_text(TEXTS))


@pytest.fixture
def upstream() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        server.respond = upstream_reply
        yield server


def chat_model(upstream: ScriptedServer) -> ChatOpenAI:
    return ChatOpenAI(base_url=f"{upstream.url}/v1", api_key="k", model="m", max_retries=0)


def serve(runnable: Runnable[Any, Any, Any], **options: Any) -> Served:
    return Served(create_app(runnable, model_name=NAME, **options))


@pytest.fixture
def chat(upstream: ScriptedServer) -> Iterator[tuple[ChatOpenAI, Served]]:
    model = chat_model(upstream)
    with serve(model) as served:
        yield model, served
    model.close()


def sdk(served: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)


# -- the official SDKs read what rxllm's invoke reads ---------------------------------


def test_openai_chat_streaming_and_not(chat: tuple[ChatOpenAI, Served]) -> None:
    model, served = chat
    expected = model.invoke("hi").content
    assert expected == "Hello, world!"
    with sdk(served) as client:
        messages: Any = [{"role": "user", "content": "hi"}]
        whole = client.chat.completions.create(model=NAME, messages=messages)
        assert whole.choices[0].message.content == expected
        assert whole.choices[0].finish_reason == "stop"
        assert whole.model == NAME
        with client.chat.completions.stream(model=NAME, messages=messages) as stream:
            final = stream.get_final_completion()
        assert final.choices[0].message.content == expected
        deltas = client.chat.completions.create(
            model=NAME, messages=messages, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(deltas)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == expected
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.total_tokens == 21  # the upstream's usage, passed on


def test_openai_completions_streaming_and_not(upstream: ScriptedServer) -> None:
    model = OpenAI(base_url=f"{upstream.url}/v1", api_key="k", model="m", max_retries=0)
    expected = model.invoke("hi")
    assert expected == "Hello, world!"
    with serve(model) as served, sdk(served) as client:
        whole = client.completions.create(model=NAME, prompt="hi")
        assert whole.choices[0].text == expected
        stream = client.completions.create(model=NAME, prompt="hi", stream=True)
        assert "".join(c.choices[0].text for c in stream if c.choices) == expected
    model.close()


def test_openai_responses_streaming_and_not(chat: tuple[ChatOpenAI, Served]) -> None:
    model, served = chat
    expected = model.invoke("hi").content
    with sdk(served) as client:
        whole = client.responses.create(model=NAME, input="hi")
        assert whole.output_text == expected
        assert whole.status == "completed"
        with client.responses.stream(model=NAME, input="hi") as stream:
            deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
            final = stream.get_final_response()
        assert "".join(deltas) == expected
        assert final.output_text == expected


def test_anthropic_messages_stream_and_create(upstream: ScriptedServer) -> None:
    model = ChatAnthropic(base_url=upstream.url, api_key="k", model="c", max_retries=0)
    expected = model.invoke("hi").content
    assert expected == "Hello, world!"
    with (
        serve(model) as served,
        anthropic.Anthropic(base_url=served.url, api_key="unused", max_retries=0) as client,
    ):
        messages: Any = [{"role": "user", "content": "hi"}]
        with client.messages.stream(model=NAME, max_tokens=64, messages=messages) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text == expected
        assert final.stop_reason == "end_turn"
        whole = client.messages.create(model=NAME, max_tokens=64, messages=messages)
        assert whole.content[0].type == "text"
        assert whole.content[0].text == expected
    model.close()


def test_a_pipeline_is_served_the_messages(chat: tuple[ChatOpenAI, Served]) -> None:
    from rxllm.operators import map_text

    model, _ = chat
    loud = model.pipe(map_text(str.upper))
    with serve(loud) as served, sdk(served) as client:
        stream = client.chat.completions.create(
            model=NAME, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream) == "HELLO, WORLD!"


def test_parameters_pass_through_to_the_model(
    upstream: ScriptedServer, chat: tuple[ChatOpenAI, Served]
) -> None:
    _, served = chat
    with sdk(served) as client:
        client.chat.completions.create(
            model=NAME,
            messages=[{"role": "system", "content": "be brief"},
                      {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            temperature=0.25,
            max_completion_tokens=7,
            stop=["\n"],
        )  # fmt: skip
    sent = upstream.requests[-1].json()
    assert sent["temperature"] == 0.25
    assert sent["max_tokens"] == 7
    assert sent["stop"] == ["\n"]
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]


def test_models_health_and_page(chat: tuple[ChatOpenAI, Served]) -> None:
    _, served = chat
    with sdk(served) as client:
        assert [m.id for m in client.models.list()] == [NAME]
    with anthropic.Anthropic(base_url=served.url, api_key="unused") as claude:
        assert [m.id for m in claude.models.list()] == [NAME]
    health = httpx.get(f"{served.url}/health")
    assert health.json() == {"status": "ok"}
    page = httpx.get(f"{served.url}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")


def test_a_chat_model_without_a_model_name_reports_its_own() -> None:
    app = create_app(FakeListChatModel(responses=["x"]))
    assert app.state.server.model_name == "FakeListChatModel"
    assert json.loads(json.dumps(app.state.server.model_name)) == "FakeListChatModel"


def test_the_ai_sdks_own_client_reads_api_chat(
    chat: tuple[ChatOpenAI, Served], ai_sdk: Any
) -> None:
    model, served = chat
    expected = model.invoke("hi").content
    user = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
    result = ai_sdk.chat(f"{served.url}/api/chat", {"messages": [user]})
    assert result["errors"] == []
    assert result["status"] == 200
    assert result["headers"]["x-vercel-ai-ui-message-stream"] == "v1"
    parts = result["message"]["parts"]
    assert "".join(p["text"] for p in parts if p["type"] == "text") == expected
    refused = ai_sdk.chat(f"{served.url}/api/chat", {"messages": []})
    assert refused["status"] == 400
    assert refused["errors"]  # the SDK reports the error response


def test_without_starlette_the_lazy_names_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    import rxllm.serve

    for name in ("rxllm.serve._app", "rxllm.serve._response", "starlette", "starlette.responses"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "starlette", None)
    for name in ("create_app", "SSEResponse"):
        monkeypatch.delitem(vars(rxllm.serve), name, raising=False)
        with pytest.raises(
            ImportError, match=rf"rxllm.serve.{name} needs `pip install 'rxllm\[serve\]'`"
        ):
            getattr(rxllm.serve, name)
    assert rxllm.serve.to_sse  # the encoders need nothing more
    with pytest.raises(AttributeError):
        rxllm.serve.nothing  # noqa: B018


WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}}


def test_tools_reach_the_model_in_its_own_apis_shape(upstream: ScriptedServer) -> None:
    """An Anthropic client's tool, served by an OpenAI-chat model, and its call back."""
    call = ("call_1", "weather", ['{"city"', ': "Paris"}'])
    upstream.respond = lambda request: Reply(body=openai_chat([], tool_calls=[call]))
    model = chat_model(upstream)
    tool: Any = {"name": "weather", "description": "Now", "input_schema": WEATHER}
    with (
        serve(model) as served,
        anthropic.Anthropic(base_url=served.url, api_key="unused", max_retries=0) as client,
    ):
        messages: Any = [{"role": "user", "content": "Paris?"}]
        with client.messages.stream(
            model=NAME, max_tokens=64, messages=messages, tools=[tool]
        ) as stream:
            final = stream.get_final_message()
    sent = upstream.requests[-1].json()
    assert sent["tools"] == [
        {"type": "function",
         "function": {"name": "weather", "description": "Now", "parameters": WEATHER}}
    ]  # fmt: skip
    assert final.stop_reason == "tool_use"
    used = [block for block in final.content if block.type == "tool_use"]
    assert [(b.id, b.name, b.input) for b in used] == [("call_1", "weather", {"city": "Paris"})]
    model.close()


def test_each_runnable_gets_the_input_it_takes() -> None:
    """A chat model the messages, a text LLM them as a prompt, a lambda the messages."""
    from rxllm.llms import FakeStreamingListLLM
    from rxllm.runnable import RunnableLambda
    from rxllm.schema import HumanMessage, SystemMessage

    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]
    chat = FakeListChatModel(responses=["a"])
    llm = FakeStreamingListLLM(responses=["b"])
    seen: list[Any] = []
    echo = RunnableLambda(lambda given: seen.append(given) or "c")
    for runnable in (chat, llm, echo):
        with serve(runnable) as served, sdk(served) as client:
            reply = client.chat.completions.create(model=NAME, messages=messages)  # type: ignore[arg-type]
            assert reply.choices[0].message.content in ("a", "b", "c")
            text = client.completions.create(model=NAME, prompt="just text").choices[0].text
            assert text in ("a", "b", "c")
            if runnable is echo:
                with pytest.raises(openai.BadRequestError, match="takes no call parameters"):
                    client.chat.completions.create(model=NAME, messages=messages, temperature=0)  # type: ignore[arg-type]
    assert chat.calls.inputs[0] == [SystemMessage(content="sys"), HumanMessage(content="hi")]
    assert chat.calls.inputs[1] == [HumanMessage(content="just text")]
    assert llm.calls.inputs == ["System: sys\nHuman: hi", "just text"]
    assert seen == [[SystemMessage(content="sys"), HumanMessage(content="hi")], "just text"]
