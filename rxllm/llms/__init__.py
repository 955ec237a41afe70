"""Models: the base classes providers subclass, and the providers themselves."""

from ._base import BaseChatModel, BaseLanguageModel, BaseLLM
from ._fake import FakeListChatModel, FakeListLLM, FakeStreamingListLLM

__all__ = [
    "BaseChatModel",
    "BaseLLM",
    "BaseLanguageModel",
    "FakeListChatModel",
    "FakeListLLM",
    "FakeStreamingListLLM",
]
