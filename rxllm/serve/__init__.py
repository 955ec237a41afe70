"""Serving rxllm streams to the clients that read them: SSE in their own formats.

``to_sse`` turns any stream of chunks (an Observable, a runnable's ``observe``, an async
iterable) into server-sent events in a format a real client already reads: the OpenAI
SDK (``openai-chat``, ``openai-completions``, ``openai-responses``), the Anthropic SDK
(``anthropic``), the AI SDK's ``useChat`` (``vercel-ui``), or the ``astream_events``
dicts (``events``). ``SSEResponse`` streams it from a Starlette or FastAPI route and
cancels the upstream call when the client goes away; ``create_app`` serves any runnable
as OpenAI-, Anthropic- and AI-SDK-compatible endpoints with a chat page.

``to_sse`` needs nothing beyond rxllm; ``SSEResponse`` and ``create_app`` need
``pip install 'rxllm[serve]'`` (Starlette and uvicorn), imported when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._stream import FORMATS, to_sse

if TYPE_CHECKING:
    from ._app import create_app
    from ._response import SSEResponse

__all__ = ["FORMATS", "SSEResponse", "create_app", "to_sse"]

#: The names that need Starlette, and the private module each lives in.
_LAZY = {"SSEResponse": "._response", "create_app": "._app"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module, __name__), name)
    except ImportError as exc:
        if exc.name not in ("starlette", "uvicorn") and not str(exc.name).startswith("starlette."):
            raise
        raise ImportError(
            f"rxllm.serve.{name} needs `pip install 'rxllm[serve]'` (Starlette and uvicorn)"
        ) from exc
    globals()[name] = value
    return value
