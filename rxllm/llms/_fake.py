"""Fake models for tests, docs and benchmarks: scripted replies, no network.

Each fake keeps a ``CallLog`` (``model.calls``) of what happened to its calls (started,
completed, failed, cancelled, how many were in flight at once), so a test can prove
that a stream was cancelled or that a batch respected ``max_concurrency``.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing, contextmanager
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from ..schema import AIMessageChunk, BaseMessage, GenerationChunk
from ._base import BaseChatModel, BaseLLM

__all__ = ["CallLog", "FakeListChatModel", "FakeListLLM", "FakeStreamingListLLM"]

_TOKEN = re.compile(r"\s*\w+|\s*[^\w\s]|\s+")


def split_text(text: str, chunking: Literal["token", "char"]) -> list[str]:
    """Pieces of ``text`` that join back into it: word-like tokens, or characters."""
    if chunking == "char":
        return list(text)
    return _TOKEN.findall(text)


class CallLog:
    """Thread-safe counts of a fake's calls, and the inputs they were made with."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inputs: list[Any] = []
        self.started = 0
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def begin(self, input: Any) -> None:
        """Count a call that starts now."""
        with self._lock:
            self.inputs.append(input)
            self.started += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def end(self, outcome: Literal["completed", "failed", "cancelled"]) -> None:
        """Count the end of a call begun with ``begin``."""
        with self._lock:
            self.in_flight -= 1
            setattr(self, outcome, getattr(self, outcome) + 1)

    @contextmanager
    def track(self, input: Any) -> Iterator[None]:
        """Count one call around the block that makes it."""
        self.begin(input)
        outcome: Literal["completed", "failed", "cancelled"] = "completed"
        try:
            yield
        except (GeneratorExit, asyncio.CancelledError):
            outcome = "cancelled"
            raise
        except BaseException:
            outcome = "failed"
            raise
        finally:
            self.end(outcome)

    def __repr__(self) -> str:
        return (
            f"CallLog(started={self.started}, completed={self.completed}, "
            f"failed={self.failed}, cancelled={self.cancelled}, in_flight={self.in_flight})"
        )


class _Script(BaseModel):
    """Replies in turn from ``responses``, starting over at the end."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    responses: list[str] = Field(min_length=1)
    #: Seconds to wait before each chunk (or before the single reply).
    delay: float | None = Field(default=None, ge=0)
    #: Raise ``error`` after this many chunks (``0``: before the first).
    error_after: int | None = Field(default=None, ge=0)
    #: What to raise; a ``RuntimeError`` if not given.
    error: Exception | None = None
    #: How a streaming fake splits its reply.
    chunking: Literal["token", "char"] = "token"

    _next: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: CallLog = PrivateAttr(default_factory=CallLog)

    @property
    def calls(self) -> CallLog:
        """What happened to this model's calls so far."""
        return self._calls

    def _next_response(self) -> str:
        with self._lock:
            response = self.responses[self._next % len(self.responses)]
            self._next += 1
        return response

    def _failure(self) -> Exception:
        return self.error if self.error is not None else RuntimeError("scripted failure")

    async def _pieces(self, input: Any) -> AsyncGenerator[str, None]:
        with self.calls.track(input):
            for index, piece in enumerate(split_text(self._next_response(), self.chunking)):
                if index == self.error_after:
                    raise self._failure()
                if self.delay:
                    await asyncio.sleep(self.delay)
                yield piece
            if self.error_after is not None:  # at or past the end of the reply
                raise self._failure()


class FakeListLLM(_Script, BaseLLM):
    """A model without token streaming: ``stream`` yields one chunk, the whole reply.

    Examples:
        >>> llm = FakeListLLM(responses=["Sparkling water, oh so clear"])
        >>> list(llm.stream("Write me a song"))
        ['Sparkling water, oh so clear']
    """

    def _call(self, prompt: str, stop: list[str] | None = None, **kwargs: Any) -> str:
        with self.calls.track(prompt):
            if self.delay:
                time.sleep(self.delay)
            if self.error_after is not None:
                raise self._failure()
            return self._next_response()


class FakeStreamingListLLM(_Script, BaseLLM):
    """A streaming model: one chunk per token (or per character), optionally paced.

    Examples:
        >>> llm = FakeStreamingListLLM(responses=["Sparkling water, oh so clear"])
        >>> "|".join(llm.stream("Write me a song"))
        'Sparkling| water|,| oh| so| clear'
    """

    async def _astream(
        self, prompt: str, stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncGenerator[GenerationChunk, None]:
        async with aclosing(self._pieces(prompt)) as pieces:
            async for piece in pieces:
                yield GenerationChunk(text=piece, generation_info=None)


class FakeListChatModel(_Script, BaseChatModel):
    """A streaming chat model replying in turn from ``responses``.

    Examples:
        >>> chat = FakeListChatModel(responses=["Hello there"])
        >>> chat.invoke([("system", "Be brief"), ("human", "Hi")]).content
        'Hello there'
    """

    async def _astream(
        self, prompt: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncGenerator[AIMessageChunk, None]:
        message_id = f"fake-{uuid.uuid4()}"
        async with aclosing(self._pieces(prompt)) as pieces:
            async for piece in pieces:
                yield AIMessageChunk(content=piece, id=message_id)
