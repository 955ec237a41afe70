"""Regressions found by the reliability suite: secrets in echoed lines and URLs, per-call values."""

from __future__ import annotations

import logging

import pytest

from rxllm.errors import InvalidInputError, ProtocolError
from rxllm.llms import ChatOpenAI
from tests.servers.scripted import Reply, ScriptedServer
from tests.servers.wire import openai_chat

from .test_secrets import CANARY, everything_about


def test_a_key_echoed_in_a_malformed_line_is_scrubbed(server: ScriptedServer) -> None:
    body = [*openai_chat(["a"], usage=False, done=False)[:2], f"data: {{{CANARY}\n\n".encode()]
    server.script(Reply(body=body))
    model = ChatOpenAI(base_url=f"{server.url}/v1", api_key=CANARY)
    with pytest.raises(ProtocolError) as caught:
        model.invoke("hi")
    model.close()
    assert caught.value.line is not None
    assert "[REDACTED]" in caught.value.line
    assert CANARY not in everything_about(caught.value)


def test_a_base_url_with_a_query_keeps_the_endpoint_path(server: ScriptedServer) -> None:
    server.script(Reply(body=openai_chat(["ok"])))
    model = ChatOpenAI(base_url=f"{server.url}/v1?key={CANARY}")
    model.invoke("hi")
    model.close()
    assert server.requests[0].path == f"/v1/chat/completions?key={CANARY}"


def test_a_key_in_the_base_url_query_is_not_in_the_repr() -> None:
    assert CANARY not in repr(ChatOpenAI(base_url=f"http://127.0.0.1:1/v1?key={CANARY}"))


def test_a_key_in_the_base_url_query_is_not_logged(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(Reply(body=openai_chat(["ok"])))
    model = ChatOpenAI(base_url=f"{server.url}/v1?key={CANARY}")
    model.invoke("hi")
    model.close()
    assert CANARY not in caplog.text


def test_a_negative_max_tokens_at_call_time_is_refused(server: ScriptedServer) -> None:
    model = ChatOpenAI(base_url=f"{server.url}/v1")
    with pytest.raises(InvalidInputError):
        model.invoke("hi", max_tokens=-1)
    model.close()
    assert server.opened == 0
