"""A canary key never shows, whatever goes wrong, for every provider.

``tests/llms/test_secrets.py`` checks reprs, echoed error bodies and in-band errors;
here the canary goes through every server fault of the matrix and every provider's
events, and the check covers the error, its attributes, its traceback, every log record
(httpx and httpcore at DEBUG included) and every event.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import pytest

from rxllm.errors import APIConnectionError
from rxllm.llms import ChatAnthropic, ChatOllama, ChatOpenAI, Ollama, OpenAI
from rxllm.llms._http_model import HTTPModel
from tests.llms.test_faults import WIRES
from tests.servers.scripted import Reply, ScriptedServer, free_port
from tests.servers.wire import anthropic_text, ollama_chat, ollama_generate, openai_chat
from tests.servers.wire import openai_completion as completion

from .harness import ALL_MODES, run
from .test_fault_matrix import FAULTS

CANARY = "sk-canary-0d1c2b3a49586776a5b4c3d2e1f0"


def everything_about(error: BaseException) -> str:
    """The error's text, repr, traceback (causes included) and attributes."""
    parts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    parts += [repr(value) for value in vars(error).values()]
    return "\n".join(parts)


@pytest.fixture(autouse=True)
def chatty_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_not_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    assert caplog.records  # httpx and httpcore did log the calls
    for record in caplog.records:
        assert CANARY not in record.getMessage()
        assert CANARY not in repr(record.args)
    assert CANARY not in caplog.text


def sent_the_key(server: ScriptedServer) -> bool:
    """The key really went out, so its absence everywhere else means something."""
    return any(CANARY in " ".join(r.headers.values()) for r in server.requests)


# The faults whose error could carry request details: each in a different mode.
SECRET_CASES = [
    pytest.param(fault, wire, ALL_MODES[i % len(ALL_MODES)], id=f"{fault}-{wire}")
    for i, (fault, wire) in enumerate(
        (fault, wire) for fault in FAULTS if FAULTS[fault].error is not None for wire in WIRES
    )
]


@pytest.mark.parametrize(("fault_name", "wire_name", "mode"), SECRET_CASES)
def test_no_canary_under_faults(
    server: ScriptedServer,
    chatty_logs: pytest.LogCaptureFixture,
    fault_name: str,
    wire_name: str,
    mode: str,
) -> None:
    fault, wire = FAULTS[fault_name], WIRES[wire_name]
    server.script(*fault.replies(wire, wire_name))
    model = wire.make(server.url, api_key=CANARY, **fault.settings)
    result = run(model, "hi", mode)
    assert result.error is not None
    assert CANARY not in everything_about(result.error)
    assert sent_the_key(server)
    assert_not_in_logs(chatty_logs)
    model.close()


def providers(url: str) -> list[tuple[HTTPModel, Reply]]:
    ndjson = "application/x-ndjson"
    return [
        (OpenAI(base_url=f"{url}/v1", api_key=CANARY), Reply(body=completion(["ok"]))),
        (ChatOpenAI(base_url=f"{url}/v1", api_key=CANARY), Reply(body=openai_chat(["ok"]))),
        (
            ChatAnthropic(model="m", base_url=url, api_key=CANARY),
            Reply(body=anthropic_text(["ok"])),
        ),
        (
            Ollama(model="m", base_url=url, api_key=CANARY),
            Reply(body=ollama_generate(["ok"]), content_type=ndjson),
        ),
        (
            ChatOllama(model="m", base_url=url, api_key=CANARY),
            Reply(body=ollama_chat(["ok"]), content_type=ndjson),
        ),
    ]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_no_canary_in_any_providers_events_reprs_or_dumps(
    server: ScriptedServer, chatty_logs: pytest.LogCaptureFixture, version: str
) -> None:
    for model, reply in providers(server.url):
        server.script(reply)
        events: list[dict[str, Any]] = list(model.stream_events("hi", version=version))  # type: ignore[attr-defined]
        assert [e["event"].rsplit("_", 1)[-1] for e in events][:: len(events) - 1] == [
            "start",
            "end",
        ]
        dumps = [repr(events), str(events), repr(model), str(model), model.model_dump_json()]
        assert all(CANARY not in text for text in dumps)
        assert sent_the_key(server)
        model.close()
    assert_not_in_logs(chatty_logs)


def test_no_canary_from_a_key_in_the_base_url_query_in_errors(
    chatty_logs: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1?key={CANARY}"
    model = ChatOpenAI(base_url=url, max_retries=1)
    error = run(model, "hi", "stream").error
    assert isinstance(error, APIConnectionError)
    assert "cannot reach http://127.0.0.1" in str(error)
    assert CANARY not in everything_about(error)
    model.close()
