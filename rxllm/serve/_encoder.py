"""The shape every wire format's encoder has: items in, server-sent events out.

An encoder is sans-I/O, like the providers' translators it mirrors: ``feed`` takes one
item of the served stream and returns the events it becomes, ``close`` the events that
end a stream that completed, ``fail`` those that end one that failed after its first
byte (the format's own in-band error). Each instance encodes one stream.
"""

from __future__ import annotations

import json
import time
import uuid
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from ._errors import ClientError
from ._sse import Event

__all__ = ["Encoder", "dumps", "new_id"]


def dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept as it is (the stream is UTF-8), as the APIs send it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def new_id(prefix: str) -> str:
    """A fresh id in the style of the format's own ids (``chatcmpl-...``, ``msg_...``)."""
    return prefix + uuid.uuid4().hex[:24]


class Encoder(ABC):
    """One stream in one wire format.

    Args:
        model: the model name the events report; when ``None``, the name a chunk's
            metadata gives (``model_name``), else ``"rxllm"``.
    """

    #: Headers the format's clients look for, beside ``Content-Type: text/event-stream``.
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, model: str | None = None) -> None:
        self.model = model
        self.created = int(time.time())

    def model_from(self, metadata: Any) -> str:
        """The model name to report, learnt from the first chunk that names one."""
        if self.model is None:
            named = metadata.get("model_name") or metadata.get("model")
            if isinstance(named, str) and named:
                self.model = named
        return self.model or "rxllm"

    @abstractmethod
    def feed(self, item: Any) -> list[Event]:
        """The events one item of the stream becomes (the first also opens the stream)."""

    @abstractmethod
    def close(self) -> list[Event]:
        """The events that end a stream that completed."""

    @abstractmethod
    def fail(self, error: ClientError) -> list[Event]:
        """The events that end a stream that failed after its first byte."""
