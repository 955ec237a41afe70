"""Servers for the LangChain tests: a real llama.cpp server of their own (the one in
tests/llms/conftest.py is that package's) and a scripted one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.scripted import ScriptedServer


@pytest.fixture(scope="session")
def llama_base_url() -> Iterator[str]:
    from tests.servers.llama import llama_server

    with llama_server() as base_url:
        yield base_url


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        yield scripted
