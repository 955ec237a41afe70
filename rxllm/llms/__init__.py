"""Models: the base classes providers subclass, and the providers themselves."""

from ._anthropic import ChatAnthropic
from ._base import BaseChatModel, BaseLanguageModel, BaseLLM
from ._fake import FakeListChatModel, FakeListLLM, FakeStreamingListLLM
from ._ollama import ChatOllama, Ollama
from ._openai import ChatOpenAI, OpenAI

__all__ = [
    "BaseChatModel",
    "BaseLLM",
    "BaseLanguageModel",
    "ChatAnthropic",
    "ChatOllama",
    "ChatOpenAI",
    "FakeListChatModel",
    "FakeListLLM",
    "FakeStreamingListLLM",
    "Ollama",
    "OpenAI",
]
