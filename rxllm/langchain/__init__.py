"""LangChain interop, both ways (``pip install 'rxllm[langchain]'``).

``to_langchain(model)`` makes an rxllm model a native ``langchain_core`` model
(``ChatRxLLM`` for a chat model, ``RxLLM`` for a text-completion model): LangChain
chains, agents, callbacks, ``astream_events``, ``batch``, ``with_retry`` and
``with_fallbacks`` use it as they use any model, while its streaming, cancellation and
timeouts stay rxllm's. The adapters can also be built from parameters, the way
LangChain's own code and standard tests build a model:
``ChatRxLLM(provider="openai", model="gpt-4o-mini", temperature=0)``.

``from_langchain(runnable)`` goes the other way: any LangChain ``Runnable`` as an rxllm
``Runnable``, a cold Observable over its ``astream``, so rxllm's operators, bridges and
events apply to it.

Messages convert both ways with nothing lost: content, tool calls, ``usage_metadata``,
``response_metadata`` and reasoning, which LangChain keeps in
``additional_kwargs["reasoning_content"]`` (its ``content_blocks`` then show a
``reasoning`` block) and rxllm in ``reasoning``.
"""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(f"rxllm.langchain needs `pip install 'rxllm[langchain]'` ({exc})") from exc

from ._adapters import PROVIDERS, ChatRxLLM, RxLLM, to_langchain
from ._convert import (
    chunk_from_langchain,
    chunk_to_langchain,
    message_from_langchain,
    message_to_langchain,
    messages_from_langchain,
)
from ._from_langchain import from_langchain

__all__ = [
    "PROVIDERS",
    "ChatRxLLM",
    "RxLLM",
    "chunk_from_langchain",
    "chunk_to_langchain",
    "from_langchain",
    "message_from_langchain",
    "message_to_langchain",
    "messages_from_langchain",
    "to_langchain",
]
