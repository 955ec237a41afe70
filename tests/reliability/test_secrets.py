"""Canary secrets never show, whatever goes wrong, for every provider.

Three canaries: a key in ``api_key``, another in ``default_headers``, a third in a
``base_url`` query string. ``tests/llms/test_secrets.py`` checks reprs, echoed error
bodies and in-band errors; here the canaries go through every server fault of the
matrix, every provider's events, constructor and per-call validation errors, and a
Jupyter kernel, and the check covers the error, its attributes, its traceback, every log
record (httpx and httpcore at DEBUG included), every event and every notebook output.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rxllm.errors import APIConnectionError, InvalidInputError
from rxllm.llms import ChatAnthropic, ChatOllama, ChatOpenAI, Ollama, OpenAI
from rxllm.llms._http_model import HTTPModel
from tests.llms.test_faults import WIRES
from tests.servers.scripted import Reply, ScriptedServer, free_port
from tests.servers.wire import anthropic_text, ollama_chat, ollama_generate, openai_chat
from tests.servers.wire import openai_completion as completion

from .harness import ALL_MODES, run
from .test_fault_matrix import FAULTS

CANARY = "sk-canary-0d1c2b3a49586776a5b4c3d2e1f0"
HEADER_CANARY = "gw-canary-5f4e3d2c1b0a99887766"
QUERY_CANARY = "qk-canary-a1b2c3d4e5f60718293a"
CANARIES = (CANARY, HEADER_CANARY, QUERY_CANARY)
SECRET_HEADERS = {"X-Gateway-Key": HEADER_CANARY}


def leaked(text: str) -> list[str]:
    """The canaries found in ``text``, and the recognisable middle of each."""
    return [c for c in CANARIES if c in text or c.split("-")[-1] in text]


def everything_about(error: BaseException) -> str:
    """The error's text, repr, traceback (causes included) and attributes."""
    parts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    parts += [repr(value) for value in vars(error).values()]
    if isinstance(error, ValidationError):
        parts += [error.json(), repr(error.errors())]
    return "\n".join(parts)


@pytest.fixture(autouse=True)
def chatty_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_not_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    assert caplog.records  # httpx and httpcore did log the calls
    for record in caplog.records:
        assert not leaked(record.getMessage())
        assert not leaked(repr(record.args))
    assert not leaked(caplog.text)


def sent_the_secrets(server: ScriptedServer) -> bool:
    """The secrets really went out, so their absence everywhere else means something."""
    return any(
        CANARY in " ".join(r.headers.values())
        and r.headers.get("x-gateway-key") == HEADER_CANARY
        and QUERY_CANARY in r.path
        for r in server.requests
    )


#: Each wire format's chat model, by its ``base_url`` and settings.
CHATS: dict[str, Callable[..., HTTPModel]] = {
    "openai": lambda url, **kw: ChatOpenAI(base_url=f"{url}/v1?key={QUERY_CANARY}", **kw),
    "anthropic": lambda url, **kw: ChatAnthropic(
        model="claude-test", base_url=f"{url}?key={QUERY_CANARY}", **kw
    ),
    "ollama": lambda url, **kw: ChatOllama(
        model="llama3.2", base_url=f"{url}?key={QUERY_CANARY}", **kw
    ),
}


def with_canaries(wire_name: str, url: str, **settings: Any) -> HTTPModel:
    return CHATS[wire_name](url, api_key=CANARY, default_headers=SECRET_HEADERS, **settings)


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
    model = with_canaries(wire_name, server.url, **fault.settings)
    result = run(model, "hi", mode)
    assert result.error is not None
    assert not leaked(everything_about(result.error))
    assert sent_the_secrets(server)
    assert_not_in_logs(chatty_logs)
    model.close()


def providers(url: str) -> list[tuple[HTTPModel, Reply]]:
    ndjson = "application/x-ndjson"
    query = f"?key={QUERY_CANARY}"
    secrets: dict[str, Any] = {"api_key": CANARY, "default_headers": SECRET_HEADERS}
    return [
        (OpenAI(base_url=f"{url}/v1{query}", **secrets), Reply(body=completion(["ok"]))),
        (ChatOpenAI(base_url=f"{url}/v1{query}", **secrets), Reply(body=openai_chat(["ok"]))),
        (
            ChatAnthropic(model="m", base_url=url + query, **secrets),
            Reply(body=anthropic_text(["ok"])),
        ),
        (
            Ollama(model="m", base_url=url + query, **secrets),
            Reply(body=ollama_generate(["ok"]), content_type=ndjson),
        ),
        (
            ChatOllama(model="m", base_url=url + query, **secrets),
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
        dumps += [repr(model.model_dump()), json.dumps(events, default=repr)]
        assert not [leaked(text) for text in dumps if leaked(text)]
        assert sent_the_secrets(server)
        model.close()
    assert_not_in_logs(chatty_logs)


def test_no_canary_from_a_key_in_the_base_url_query_in_errors(
    chatty_logs: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1?key={QUERY_CANARY}"
    model = ChatOpenAI(base_url=url, max_retries=1, default_headers=SECRET_HEADERS)
    error = run(model, "hi", "stream").error
    assert isinstance(error, APIConnectionError)
    assert "cannot reach http://127.0.0.1" in str(error)
    assert not leaked(everything_about(error))
    model.close()


# Bad arguments: the error says what is wrong, never what was given.

BAD_ARGUMENTS: dict[str, dict[str, Any]] = {
    "a key of the wrong type": {"api_key": [CANARY]},
    "a key with a newline": {"api_key": CANARY + "\n"},
    "a base_url of the wrong type": {"base_url": [f"http://h/?key={QUERY_CANARY}"]},
    "a base_url that is not http": {"base_url": f"ftp://h/v1?key={QUERY_CANARY}"},
    "a header value of the wrong type": {"default_headers": {"X-Key": [HEADER_CANARY]}},
    "a header value with a line break": {"default_headers": {"X-Key": HEADER_CANARY + "\r\n"}},
    "headers of the wrong type": {"default_headers": [HEADER_CANARY]},
    "a bad header among good secrets": {
        "api_key": CANARY,
        "base_url": f"http://h/?key={QUERY_CANARY}",
        "default_headers": {**SECRET_HEADERS, "bad name": "x"},
    },
    "a typo among good secrets": {
        "api_key": CANARY,
        "default_headers": SECRET_HEADERS,
        "max_tokenz": 5,
    },
}


@pytest.mark.parametrize("wire_name", list(CHATS))
@pytest.mark.parametrize("case", list(BAD_ARGUMENTS))
def test_no_canary_in_constructor_errors(wire_name: str, case: str) -> None:
    chat = {"openai": ChatOpenAI, "anthropic": ChatAnthropic, "ollama": ChatOllama}[wire_name]
    arguments = {"model": "m", **BAD_ARGUMENTS[case]}
    with pytest.raises(ValidationError) as caught:
        chat(**arguments)
    assert isinstance(caught.value, ValueError)
    assert not leaked(everything_about(caught.value))
    with pytest.raises(ValidationError) as caught:
        chat.model_validate(arguments)
    assert not leaked(everything_about(caught.value))


@pytest.mark.parametrize(
    "overrides",
    [
        {"api_key": [CANARY]},
        {"api_key": CANARY},
        {"default_headers": {"X": [HEADER_CANARY]}},
        {"base_url": [CANARY]},
    ],
)
def test_no_canary_in_per_call_validation_errors(
    server: ScriptedServer, overrides: dict[str, Any]
) -> None:
    model = with_canaries("openai", server.url)
    with pytest.raises(InvalidInputError) as caught:
        model.invoke("hi", **overrides)  # type: ignore[attr-defined]
    assert not leaked(everything_about(caught.value))
    assert server.opened == 0
    model.close()


# A notebook: every output of every cell, and every message the kernel sent.

ROOT = Path(__file__).resolve().parents[2]

# The canaries reach the kernel through its environment, so that no cell's source holds
# them and the whole notebook, sources and all, can be searched.
KERNEL_CELLS = [
    """
import json, logging, os, sys
from rxllm.llms import ChatOpenAI
from rxllm.notebook import display_stream
from tests.servers.scripted import Reply, ScriptedServer, free_port
from tests.servers.wire import openai_chat
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, force=True)
KEY, HEADER, QUERY = os.environ.pop("RXLLM_TEST_CANARIES").split()
server = ScriptedServer().__enter__()
server.respond = lambda request: Reply(body=openai_chat(["all ", "good"]))
chat = ChatOpenAI(base_url=f"{server.url}/v1?key={QUERY}", api_key=KEY,
                  default_headers={"X-Gateway-Key": HEADER})
""",
    "chat",
    "chat.model_dump()",
    "chat.default_headers, chat.api_key",
    'chat.invoke("hi")',
    'list(chat.stream("hi"))',
    'print(list(chat.stream_events("hi")))',
    'await display_stream(chat, "hi")',
    # An error body that echoes every secret back.
    """
echo = json.dumps({"error": {"message": f"bad key {KEY} {HEADER} {QUERY}", "type": "x"}})
server.script(Reply(401, [echo.encode()], content_type="application/json"))
chat.invoke("hi")
""",
    """
server.script(Reply(body=[b'data: {"echo": "' + KEY.encode() + b'" oops\\n\\n']))
list(chat.stream("hi"))
""",
    'ChatOpenAI(base_url=f"http://127.0.0.1:{free_port()}/v1?key={QUERY}", max_retries=0,'
    ' default_headers={"X-Gateway-Key": HEADER}).invoke("hi")',
    "ChatOpenAI(api_key=[KEY])",
    'ChatOpenAI(base_url=f"ftp://host/v1?key={QUERY}", api_key=KEY)',
    'ChatOpenAI(default_headers={"X-Gateway-Key": HEADER + "\\n"})',
    'chat.invoke("hi", api_key=[KEY])',
    # Whether the secrets went out (so their absence from the outputs means something).
    """
sent = server.requests[0]
print(json.dumps({"sent": KEY in sent.headers["authorization"]
                  and sent.headers["x-gateway-key"] == HEADER and QUERY in sent.path}))
chat.close()
server.__exit__(None, None, None)
""",
]


def test_no_canary_in_any_notebook_output(monkeypatch: pytest.MonkeyPatch) -> None:
    import nbclient
    import nbformat

    messages: list[dict[str, Any]] = []

    class RecordingClient(nbclient.NotebookClient):  # type: ignore[misc]
        def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
            messages.append(msg)
            return super().process_message(msg, cell, cell_index)

    cells = [nbformat.v4.new_code_cell(source.strip()) for source in KERNEL_CELLS]
    notebook = nbformat.v4.new_notebook(cells=cells)
    monkeypatch.setenv("RXLLM_TEST_CANARIES", " ".join(CANARIES))
    RecordingClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(ROOT)}},
    ).execute()
    outputs = [cell.outputs for cell in notebook.cells]
    # The calls that should fail did, with rxllm's errors and pydantic's.
    errors = [o[-1]["ename"] for o in outputs if o and o[-1]["output_type"] == "error"]
    assert errors == [
        "AuthenticationError",
        "ProtocolError",
        "APIConnectionError",
        "ValidationError",
        "ValidationError",
        "ValidationError",
        "InvalidInputError",
    ]
    # The cell's printed line (log lines of httpcore, on stderr, may come before it).
    last = json.loads(next(o["text"] for o in outputs[-1] if o.get("name") == "stdout"))
    assert last["sent"] is True
    displayed = [o for o in outputs[7] if o["output_type"] == "execute_result"]
    assert displayed[0]["data"]["text/plain"] == "'all good'"  # display_stream's text
    logged = "".join(o["text"] for cell in outputs for o in cell if o.get("name") == "stderr")
    assert "HTTP Request: POST" in logged  # httpx did log every call
    everything = json.dumps([nbformat.writes(notebook), messages], default=repr)
    assert not leaked(everything)
