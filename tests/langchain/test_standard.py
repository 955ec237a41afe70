"""LangChain's own standard tests (``langchain-tests``) for ``ChatRxLLM``.

The unit tests run on adapters built from parameters; the integration tests run on the
embedded model (SmolLM2-135M, in-process) and on a real llama.cpp OpenAI-compatible
server. What SmolLM2-135M can't do is switched off through the suite's own capability
properties, each with its reason; tool calling and structured output run in
``test_standard_tools.py`` against recorded tool-call streams.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from rxllm.langchain import ChatRxLLM


class TestOpenAIUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatRxLLM]:
        return ChatRxLLM

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"provider": "openai", "model": "gpt-4o-mini", "base_url": "http://127.0.0.1:9/v1"}


class TestEmbeddedUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatRxLLM]:
        return ChatRxLLM

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"provider": "llamacpp"}


class _SmolLM2:
    """What SmolLM2-135M can't do, however it is served. Replies are held to 32 tokens
    (the suite asks for 100) to keep the suite fast; no test needs more."""

    @property
    def chat_model_class(self) -> type[ChatRxLLM]:
        return ChatRxLLM

    @property
    def has_tool_calling(self) -> bool:
        return False  # a 135M model does not call tools: see test_standard_tools.py

    @property
    def has_structured_output(self) -> bool:
        return False  # made with a tool call or a JSON schema: see test_standard_tools.py

    @property
    def supports_model_override(self) -> bool:
        return False  # one model file is loaded; another name can't select another model


class TestEmbeddedIntegration(_SmolLM2, ChatModelIntegrationTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"provider": "llamacpp", "max_tokens": 32, "model_kwargs": {"seed": 7}}

    @property
    def returns_usage_metadata(self) -> bool:
        return False  # llama.cpp's in-process chat stream reports no token counts


class TestLlamaServerIntegration(_SmolLM2, ChatModelIntegrationTests):
    @pytest.fixture(autouse=True)
    def _base_url(self, llama_base_url: str) -> None:
        self.base_url = llama_base_url

    @pytest.fixture
    async def model(self, request: pytest.FixtureRequest) -> AsyncIterator[ChatRxLLM]:
        """The suite's model, closed on the test's loop (an async test's loop is closed
        before the model is collected, which would leave its connections open)."""
        extra = getattr(request, "param", None) or {}
        params = {**self.standard_chat_model_params, **self.chat_model_params, **extra}
        chat = self.chat_model_class(**params)
        yield chat
        await chat.rxllm_model.aclose()

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "provider": "openai",
            "base_url": self.base_url,
            "max_tokens": 32,
            "model_kwargs": {"seed": 7},
        }

    @property
    def returns_usage_metadata(self) -> bool:
        return False  # llama.cpp's server ignores stream_options.include_usage
