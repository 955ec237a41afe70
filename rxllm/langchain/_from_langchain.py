"""``from_langchain``: any LangChain ``Runnable`` as an rxllm ``Runnable``.

The Observable is cold and iterates the LangChain runnable's ``astream`` once per
subscription; disposing it closes that async generator, which cancels LangChain's call
(and closes its HTTP response). Message chunks are converted to rxllm's schema, so
rxllm's operators (``words()``, ``stop_on(...)``, ``metrics()``) read them as they read
rxllm's own. A chat model or LLM becomes an rxllm model of the same kind, reported as
such in rxllm's events (``on_chat_model_*``/``on_llm_*``, with LangChain's ``ls_*``
metadata); any other runnable becomes a chain.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any, ClassVar

from langchain_core import messages as lc
from langchain_core.language_models import BaseChatModel as LCBaseChatModel
from langchain_core.language_models import BaseLLM as LCBaseLLM
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable as LCRunnable
from pydantic import BaseModel
from reactivex import Observable

from ..errors import InvalidInputError
from ..llms import BaseChatModel, BaseLLM
from ..runnable import Config, Runnable, RunnableLambda
from ..schema import AIMessageChunk, BaseMessage, GenerationChunk
from ._convert import (
    chunk_from_langchain,
    input_to_langchain,
    message_from_langchain,
    message_to_langchain,
    messages_from_langchain,
)

__all__ = ["LangChainChatModel", "LangChainLLM", "LangChainRunnable", "from_langchain"]


def _rxllm_input(value: Any) -> Any:
    """An input given in LangChain's shapes (a prompt value, LangChain messages) in
    rxllm's, so the rxllm model's own checks apply to it."""
    if isinstance(value, PromptValue):
        return messages_from_langchain(value.to_messages())
    if isinstance(value, lc.BaseMessage):
        return message_from_langchain(value)
    if isinstance(value, list) and any(isinstance(item, lc.BaseMessage) for item in value):
        return [_rxllm_input(item) for item in value]
    return value


def _call(stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**kwargs, "stop": stop} if stop is not None else dict(kwargs)


class _Wrapping(BaseModel):
    """What both models made from LangChain's share: the model they call, whose name
    and ``ls_*`` metadata they report."""

    name: str | None = None
    runnable: Any
    _model_only: ClassVar[frozenset[str]] = frozenset({"name", "runnable"})

    def get_name(self) -> str:
        return self.name or str(self.runnable.get_name())

    def _ls_params(self) -> dict[str, Any]:
        return dict(self.runnable._get_ls_params())


class LangChainChatModel(_Wrapping, BaseChatModel):
    """A LangChain chat model as an rxllm chat model; made by ``from_langchain``."""

    def observe(
        self, input: Any, config: Config = None, **kwargs: Any
    ) -> Observable[AIMessageChunk]:
        return super().observe(_rxllm_input(input), config, **kwargs)

    async def _astream(
        self, prompt: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        messages = [message_to_langchain(message) for message in prompt]
        async with aclosing(self.runnable.astream(messages, **_call(stop, kwargs))) as chunks:
            async for chunk in chunks:
                yield chunk_from_langchain(chunk)


class LangChainLLM(_Wrapping, BaseLLM):
    """A LangChain LLM as an rxllm LLM; made by ``from_langchain``."""

    def observe(
        self, input: Any, config: Config = None, **kwargs: Any
    ) -> Observable[GenerationChunk]:
        if isinstance(input, PromptValue):
            input = input.to_string()
        return super().observe(_rxllm_input(input), config, **kwargs)

    async def _astream(
        self, prompt: str, stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[GenerationChunk]:
        async with aclosing(self.runnable.astream(prompt, **_call(stop, kwargs))) as texts:
            async for text in texts:
                yield GenerationChunk(text=text)


class LangChainRunnable(RunnableLambda):
    """Any other LangChain runnable (a chain, a graph) as an rxllm chain; made by
    ``from_langchain``. Its input is given as it is (rxllm messages converted)."""

    def __init__(self, runnable: LCRunnable[Any, Any], name: str | None = None) -> None:
        async def run(input: Any) -> AsyncIterator[Any]:
            async with aclosing(runnable.astream(input_to_langchain(input))) as chunks:  # type: ignore[type-var]
                async for chunk in chunks:
                    yield (
                        chunk_from_langchain(chunk)
                        if isinstance(chunk, lc.AIMessageChunk)
                        else chunk
                    )

        super().__init__(run, name=name or runnable.get_name())
        self.runnable = runnable

    def __repr__(self) -> str:
        return f"from_langchain({self.runnable!r})"


def from_langchain(runnable: LCRunnable[Any, Any]) -> Runnable[Any, Any, Any]:
    """Any LangChain ``Runnable`` as an rxllm ``Runnable``.

    Examples:
        >>> from langchain_core.runnables import RunnableLambda as LCLambda
        >>> shout = from_langchain(LCLambda(lambda text: text.upper()))
        >>> shout.invoke("hi")
        'HI'

    Raises:
        InvalidInputError: for anything but a LangChain runnable.
    """
    if isinstance(runnable, LCBaseChatModel):
        return LangChainChatModel(runnable=runnable)
    if isinstance(runnable, LCBaseLLM):
        return LangChainLLM(runnable=runnable)
    if isinstance(runnable, LCRunnable):
        return LangChainRunnable(runnable)
    raise InvalidInputError(
        f"from_langchain takes a LangChain Runnable, not {type(runnable).__name__}"
    )
