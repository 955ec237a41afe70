"""A canary key never shows: not in reprs, logs, exception text, tracebacks or events."""

from __future__ import annotations

import logging
import traceback

import pytest

from rxllm.llms import ChatAnthropic, ChatOllama, ChatOpenAI, OpenAI
from rxllm.llms._http_model import HTTPModel
from tests.servers.scripted import Reply, ScriptedServer, free_port
from tests.servers.wire import anthropic_text, openai_chat, sse

from .conftest import MODES, assert_all_closed, consume

CANARY = "sk-canary-5f1e2d3c4b5a69788796a5b4c3d2e1f0"


def models(url: str) -> list[HTTPModel]:
    return [
        OpenAI(base_url=f"{url}/v1", api_key=CANARY),
        ChatOpenAI(base_url=f"{url}/v1", api_key=CANARY),
        ChatAnthropic(model="m", base_url=url, api_key=CANARY),
        ChatOllama(model="m", base_url=url, api_key=CANARY),
    ]


def everything_about(error: BaseException) -> str:
    parts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    parts += [repr(v) for v in vars(error).values()]
    return "\n".join(parts)


@pytest.fixture(autouse=True)
def capture_everything(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # httpx, httpcore and rxllm at their chattiest
    return caplog


def assert_no_canary_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    assert caplog.records
    for record in caplog.records:
        assert CANARY not in record.getMessage()
        assert CANARY not in repr(record.args)
    assert CANARY not in caplog.text


def test_reprs_and_dumps(server: ScriptedServer) -> None:
    for model in models(server.url):
        for text in (repr(model), str(model), model.model_dump_json(), repr(model.model_dump())):
            assert CANARY not in text
        assert model.api_key is not None
        assert model.api_key.get_secret_value() == CANARY  # and yet it is there


@pytest.mark.parametrize("mode", MODES)
def test_key_echoed_in_an_error_body(
    server: ScriptedServer, mode: str, capture_everything: pytest.LogCaptureFixture
) -> None:
    body = f'{{"error": {{"message": "Incorrect API key provided: {CANARY}", "type": "x"}}}}'
    server.script(Reply(401, [body.encode()], content_type="application/json"))
    model = ChatOpenAI(base_url=f"{server.url}/v1", api_key=CANARY)
    outcome = consume(model, "hi", mode)
    assert outcome.error is not None
    assert "Incorrect API key provided" in str(outcome.error)
    assert CANARY not in everything_about(outcome.error)
    assert server.requests[0].headers["authorization"] == f"Bearer {CANARY}"
    assert_no_canary_in_logs(capture_everything)
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_key_echoed_in_an_in_band_error(
    server: ScriptedServer, mode: str, capture_everything: pytest.LogCaptureFixture
) -> None:
    error = {"type": "error", "error": {"type": "api_error", "message": f"bad {CANARY}"}}
    server.script(
        Reply(body=[*anthropic_text(["a"], stop=False), sse(error, "error")]),
    )
    model = ChatAnthropic(model="m", base_url=server.url, api_key=CANARY)
    outcome = consume(model, "hi", mode)
    assert outcome.error is not None
    assert CANARY not in everything_about(outcome.error)
    assert_no_canary_in_logs(capture_everything)
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_retries_and_connection_errors(
    server: ScriptedServer, mode: str, capture_everything: pytest.LogCaptureFixture
) -> None:
    server.script(
        Reply(503, [b"{}"], content_type="application/json"), Reply(body=openai_chat(["ok"]))
    )
    model = ChatOpenAI(base_url=f"{server.url}/v1", api_key=CANARY)
    assert consume(model, "hi", mode).text == "ok"
    assert_all_closed(model, server)
    refused = ChatOpenAI(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key=CANARY)
    outcome = consume(refused, "hi", mode)
    assert outcome.error is not None
    assert CANARY not in everything_about(outcome.error)
    refused.close()
    assert_no_canary_in_logs(capture_everything)


def test_events(server: ScriptedServer) -> None:
    server.script(Reply(body=openai_chat(["ok"])))
    model = ChatOpenAI(base_url=f"{server.url}/v1", api_key=CANARY)
    events = list(model.stream_events("hi"))
    assert events
    assert CANARY not in repr(events)
    assert_all_closed(model, server)


@pytest.mark.parametrize("mode", MODES)
def test_a_key_in_the_query_is_hidden_from_httpx_log_while_our_request_runs(
    server: ScriptedServer, mode: str, capture_everything: pytest.LogCaptureFixture
) -> None:
    httpx_logger = logging.getLogger("httpx")
    assert not httpx_logger.filters  # importing rxllm changed no logging
    server.script(Reply(body=openai_chat(["ok"])))
    model = ChatOpenAI(base_url=f"{server.url}/v1?key={CANARY}")
    assert consume(model, "hi", mode).text == "ok"
    logged = [r.getMessage() for r in capture_everything.records if r.name == "httpx"]
    assert any("?[REDACTED]" in line for line in logged)
    assert_no_canary_in_logs(capture_everything)
    assert not httpx_logger.filters  # taken off again once the request was sent
    assert_all_closed(model, server)
