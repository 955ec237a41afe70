"""LangChain's standard integration tests with tool calling and structured output on:
``ChatRxLLM`` over rxllm's ``ChatOpenAI`` against a scripted server that answers with
recorded OpenAI tool-call and text streams (see ``scripted_openai``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from rxllm.langchain import ChatRxLLM
from tests.servers.scripted import ScriptedServer

from .scripted_openai import reply_to


class TestRecordedToolCalls(ChatModelIntegrationTests):
    @pytest.fixture(autouse=True)
    def _server(self) -> Iterator[None]:
        with ScriptedServer() as server:
            server.respond = reply_to
            self.base_url = f"{server.url}/v1"
            yield

    @pytest.fixture
    async def model(self, request: pytest.FixtureRequest) -> AsyncIterator[ChatRxLLM]:
        extra = getattr(request, "param", None) or {}
        params = {**self.standard_chat_model_params, **self.chat_model_params, **extra}
        chat = self.chat_model_class(**params)
        yield chat
        await chat.rxllm_model.aclose()

    @property
    def chat_model_class(self) -> type[ChatRxLLM]:
        return ChatRxLLM

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"provider": "openai", "model": "gpt-4o", "base_url": self.base_url, "api_key": "k"}

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return False  # the recorded streams name the model they were recorded from
