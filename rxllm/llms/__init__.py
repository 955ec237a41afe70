"""Models: the base classes providers subclass, and the providers themselves."""

from ._anthropic import ChatAnthropic
from ._base import BaseChatModel, BaseLanguageModel, BaseLLM
from ._fake import CallLog, FakeListChatModel, FakeListLLM, FakeStreamingListLLM
from ._llamacpp import ChatLlamaCpp, LlamaCpp
from ._ollama import ChatOllama, Ollama
from ._openai import ChatOpenAI, OpenAI

__all__ = [
    "BaseChatModel",
    "BaseLLM",
    "BaseLanguageModel",
    "CallLog",
    "ChatAnthropic",
    "ChatLlamaCpp",
    "ChatOllama",
    "ChatOpenAI",
    "FakeListChatModel",
    "FakeListLLM",
    "FakeStreamingListLLM",
    "LlamaCpp",
    "Ollama",
    "OpenAI",
]
