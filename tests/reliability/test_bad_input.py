"""Bad input fails with a clear typed error, before anything is sent.

Every provider, every way of calling it: the server never sees a connection. Calls raise
``InvalidInputError``; constructors raise pydantic's ``ValidationError`` (a ``ValueError``,
as LangChain's models do), which never echoes the values given (``test_secrets.py``).
Bad bytes from a server (not UTF-8) are in the fault matrix (``test_fault_matrix.py``),
oversized ones in ``test_limits.py``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import pytest
from pydantic import ValidationError
from reactivex import operators as ops

from rxllm.errors import InvalidInputError
from rxllm.llms import ChatAnthropic, ChatOllama, ChatOpenAI, Ollama, OpenAI
from rxllm.llms._http_model import HTTPModel
from tests.servers.scripted import Reply, ScriptedServer
from tests.servers.wire import openai_chat

from .harness import ALL_MODES, run

PROVIDERS: dict[str, Callable[..., HTTPModel]] = {
    "OpenAI": lambda url, **kw: OpenAI(base_url=f"{url}/v1", **kw),
    "ChatOpenAI": lambda url, **kw: ChatOpenAI(base_url=f"{url}/v1", **kw),
    "ChatAnthropic": lambda url, **kw: ChatAnthropic(model="m", base_url=url, **kw),
    "Ollama": lambda url, **kw: Ollama(model="m", base_url=url, **kw),
    "ChatOllama": lambda url, **kw: ChatOllama(model="m", base_url=url, **kw),
}

BAD_PROMPTS = {
    "int": (42, "must be a str"),
    "None": (None, "must be a str"),
    "bytes": (b"hi", "got bytes"),
    "dict without a role": ({"content": "hi"}, "needs 'role' and 'content'"),
    "list of ints": ([1, 2], "got int"),
    "empty str": ("", "empty"),
    "blank str": (" \n\t ", "empty or blank"),
    "empty list": ([], "empty"),
    "only an empty message": ([("human", "")], "empty"),
    "only blank messages": ([("system", " "), ("human", "\n")], "empty or blank"),
}


def failure(model: HTTPModel, input: Any, mode: str) -> BaseException | None:
    """The error a call ends with, however it surfaces in this mode."""
    try:
        return run(model, input, mode).error
    except Exception as exc:
        return exc


@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize("mode", ALL_MODES)
def test_bad_prompts(server: ScriptedServer, provider: str, mode: str) -> None:
    model = PROVIDERS[provider](server.url)
    for name, (prompt, message) in BAD_PROMPTS.items():
        error = failure(model, prompt, mode)
        assert isinstance(error, InvalidInputError), (name, error)
        assert message in str(error), name
    assert server.opened == 0  # not even a connection
    model.close()


BATCHES: dict[str, Callable[..., Any]] = {
    "batch": lambda model, inputs, **kw: model.batch(inputs, **kw),
    "abatch": lambda model, inputs, **kw: asyncio.run(_closing(model, model.abatch(inputs, **kw))),
    "batch_as_completed": lambda model, inputs, **kw: _by_index(
        model.batch_as_completed(inputs, **kw)
    ),
    "abatch_as_completed": lambda model, inputs, **kw: asyncio.run(
        _closing(model, _collect(model.abatch_as_completed(inputs, **kw)))
    ),
    "observe_batch": lambda model, inputs, **kw: _by_index(
        model.observe_batch(inputs, **kw).pipe(ops.to_list()).run()
    ),
}


def _by_index(pairs: Iterable[tuple[int, Any]]) -> list[Any]:
    return [result for _, result in sorted(pairs, key=lambda pair: pair[0])]


async def _collect(pairs: AsyncIterator[tuple[int, Any]]) -> list[Any]:
    return _by_index([pair async for pair in pairs])


async def _closing(model: HTTPModel, results: Awaitable[list[Any]]) -> list[Any]:
    """The results, with the connections this loop's client opened closed before it ends."""
    try:
        return await results
    finally:
        await model.aclose()


@pytest.mark.parametrize("way", list(BATCHES))
def test_a_bad_input_in_a_batch_takes_its_place_with_return_exceptions(
    server: ScriptedServer, way: str
) -> None:
    server.script(*(Reply(body=openai_chat(["fine"])) for _ in range(2)))
    model = PROVIDERS["ChatOpenAI"](server.url)
    results = BATCHES[way](model, ["hi", 5, "   ", "there"], return_exceptions=True)
    assert [getattr(r, "content", None) for r in results] == ["fine", None, None, "fine"]
    assert isinstance(results[1], InvalidInputError)
    assert "must be a str" in str(results[1])
    assert isinstance(results[2], InvalidInputError)
    assert "empty or blank" in str(results[2])
    assert len(server.requests) == 2  # the good inputs ran, the bad ones sent nothing
    model.close()


@pytest.mark.parametrize("way", list(BATCHES))
def test_a_bad_input_in_a_batch_raises_before_any_call_without_return_exceptions(
    server: ScriptedServer, way: str
) -> None:
    model = PROVIDERS["ChatOpenAI"](server.url)
    with pytest.raises(InvalidInputError, match="must be a str"):
        BATCHES[way](model, ["hi", 5, "there"])
    assert server.opened == 0
    model.close()


@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"max_concurency": 2}, "max_concurency: Extra inputs are not permitted"),
        ({"max_concurrency": -1}, "max_concurrency: Input should be greater than 0"),
        ({"tags": "one"}, "tags: Input should be a valid list"),
        ({"metadata": ["x"]}, "metadata"),
        ("fast", "config"),
    ],
)
def test_bad_configs(server: ScriptedServer, provider: str, config: Any, message: str) -> None:
    model = PROVIDERS[provider](server.url)
    calls = [
        lambda: list(model.stream("hi", config)),  # type: ignore[attr-defined]
        lambda: model.invoke("hi", config),  # type: ignore[attr-defined]
        lambda: model.batch(["hi"], config),  # type: ignore[attr-defined]
        lambda: list(model.stream_events("hi", config)),  # type: ignore[attr-defined]
    ]
    for call in calls:
        with pytest.raises(InvalidInputError, match=message):
            call()
    assert server.opened == 0
    model.close()


@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": 0}, "timeout"),
        ({"stall_timeout": -1}, "stall_timeout"),
        ({"temprature": 0.5}, "temprature"),  # a typo fails loudly
        ({"api_key": 5}, "api_key"),
    ],
)
def test_bad_constructor_parameters(
    server: ScriptedServer, provider: str, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        PROVIDERS[provider](server.url, **settings)
    assert isinstance(caught.value, ValueError)
    assert server.opened == 0


@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize(
    "override",
    [
        {"api_key": "sk-per-call"},
        {"base_url": "http://elsewhere"},
        {"default_headers": {"X-A": "b"}},
        {"max_event_bytes": 10},
        {"stall_timeout": 1.0},
        {"max_retries": 0},
        {"model_kwargs": {"seed": 1}},
    ],
)
def test_model_settings_per_call_are_refused_not_sent(
    server: ScriptedServer, provider: str, override: dict[str, Any]
) -> None:
    # Taken as request fields, they would go out in the body (a key included) and do nothing.
    model = PROVIDERS[provider](server.url)
    [name] = override
    with pytest.raises(InvalidInputError, match=f"{name} is a setting of the model"):
        model.invoke("hi", **override)  # type: ignore[attr-defined]
    assert server.opened == 0
    model.close()


@pytest.mark.parametrize("url", ["ftp://example.com", "example.com/v1", "file:///etc/passwd"])
def test_base_url_must_be_http(url: str) -> None:
    with pytest.raises(ValidationError, match="must be an http:// or https:// URL"):
        ChatOpenAI(base_url=url)


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@pytest.mark.parametrize(
    "url", ["http://user:sk-canary-pass@127.0.0.1:1/v1", "ftp://sk-canary-pass@example.com"]
)
def test_base_url_with_credentials_is_refused_without_showing_them(
    monkeypatch: pytest.MonkeyPatch, provider: str, url: str
) -> None:
    # They would show in reprs and logs, where a query string or api_key is hidden.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    with pytest.raises(ValidationError, match="must not carry credentials") as caught:
        PROVIDERS[provider](url)
    assert "sk-canary-pass" not in f"{caught.value} {caught.value.errors()} {caught.value.json()}"


@pytest.mark.parametrize("stop", ["\n", [1], 5])
def test_bad_stop_at_call_time(server: ScriptedServer, stop: object) -> None:
    model = PROVIDERS["ChatOpenAI"](server.url)
    with pytest.raises(InvalidInputError, match="stop must be a list of strings"):
        model.invoke("hi", stop=stop)  # type: ignore[attr-defined]
    assert server.opened == 0
    model.close()


@pytest.mark.parametrize("spec", ["nope:x", "openai", "ollama:"])
def test_an_unknown_model_spec_in_the_cli_is_a_usage_error(spec: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rxllm", "stream", "x", "--model", spec],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""},
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "model" in done.stderr
    assert done.stdout == ""
