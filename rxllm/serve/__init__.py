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

from ._stream import FORMATS, to_sse

__all__ = ["FORMATS", "to_sse"]
