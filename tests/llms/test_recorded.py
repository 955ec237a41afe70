"""The recorded provider streams are well formed, complete and accounted for.

The conformance tests trust these files to be what a provider sends; this checks that
rxllm's own decoders read each one into JSON objects, that each stream ends the way its
provider ends a stream, and that SOURCES.md names every file.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from rxllm._http._ndjson import NDJSONDecoder
from rxllm._http._sse import ServerSentEvent, SSEDecoder

from .recorded import RECORDED, recorded, recorded_names, recorded_path

PROVIDERS = ("anthropic", "ollama", "openai", "openai_responses")
ALL = [(provider, name) for provider in PROVIDERS for name in recorded_names(provider)]
SOURCES = (RECORDED / "SOURCES.md").read_text(encoding="utf-8")
#: The Responses API streams have a SOURCES.md of their own, beside them.
RESPONSES_SOURCES = (RECORDED / "openai_responses" / "SOURCES.md").read_text(encoding="utf-8")


def sse_events(body: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return decoder.feed(body) + decoder.flush()


def ndjson_values(body: bytes) -> list[Any]:
    decoder = NDJSONDecoder()
    return decoder.feed(body) + decoder.flush()


def test_every_provider_has_recordings() -> None:
    assert {path.name for path in RECORDED.iterdir() if path.is_dir()} == set(PROVIDERS)
    for provider in PROVIDERS:
        assert recorded_names(provider), provider


@pytest.mark.parametrize("name", recorded_names("openai"))
def test_openai_streams_are_json_chunks_then_done(name: str) -> None:
    events = sse_events(recorded("openai", name))
    assert [event.data for event in events].count("[DONE]") == 1
    assert events[-1].data == "[DONE]"
    kind = "text_completion" if name.startswith("completions_") else "chat.completion.chunk"
    for event in events[:-1]:
        assert event.event == "message"
        chunk = event.json()
        assert isinstance(chunk, dict)
        assert chunk["object"] == kind
        assert isinstance(chunk["choices"], list)


@pytest.mark.parametrize("name", recorded_names("anthropic"))
def test_anthropic_streams_are_typed_events_to_message_stop(name: str) -> None:
    events = sse_events(recorded("anthropic", name))
    types = []
    for event in events:
        data = event.json()
        assert isinstance(data, dict)
        assert data["type"] == event.event  # the SSE event name repeats the data's type
        types.append(event.event)
    assert types[0] == "message_start"
    # A stream ends with message_stop, or with the in-band error the API sends instead.
    assert types[-1] == ("error" if name == "error" else "message_stop")
    assert types.count(types[-1]) == 1


@pytest.mark.parametrize("name", recorded_names("openai_responses"))
def test_responses_streams_are_typed_events_to_a_terminal_one(name: str) -> None:
    types = []
    for event in sse_events(recorded("openai_responses", name)):
        data = event.json()
        assert isinstance(data, dict)
        assert data["type"] == event.event
        types.append(event.event)
    assert types[0] == "response.created"
    terminal = {"response.completed", "response.incomplete", "response.failed", "error"}
    assert types[-1] in terminal
    assert sum(t in terminal for t in types) == 1


@pytest.mark.parametrize("name", recorded_names("ollama"))
def test_ollama_streams_are_json_lines_to_done(name: str) -> None:
    body = recorded("ollama", name)
    assert body.endswith(b"}\n")
    assert b"\n\n" not in body
    values = ndjson_values(body)
    assert len(values) == body.count(b"\n")
    assert all(isinstance(value, dict) for value in values)
    *rest, last = values
    # A stream ends with its done record, or with the in-band error Ollama sends instead.
    if name.endswith("_error"):
        assert set(last) == {"error"}
    else:
        assert last["done"] is True
    assert all(value["done"] is False for value in rest)


@pytest.mark.parametrize(("provider", "name"), ALL)
def test_every_file_is_listed_in_sources(provider: str, name: str) -> None:
    if provider == "openai_responses":
        assert f"`{recorded_path(provider, name).name}`" in RESPONSES_SOURCES
    else:
        assert f"`{provider}/{recorded_path(provider, name).name}`" in SOURCES


def test_sources_lists_no_missing_file() -> None:
    listed = set(re.findall(r"`((?:anthropic|ollama|openai)/[\w.]+\.(?:sse|ndjson))`", SOURCES))
    assert listed
    for entry in listed:
        assert (RECORDED / entry).is_file(), entry


@pytest.mark.parametrize(
    ("provider", "name"), [("mistral", "chat"), ("openai", "nonexistent"), ("openai", "../x")]
)
def test_unknown_recording_is_a_lookup_error(provider: str, name: str) -> None:
    with pytest.raises(LookupError, match="known"):
        recorded(provider, name)
