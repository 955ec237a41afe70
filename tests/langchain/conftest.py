"""A scripted server for the LangChain tests (the llama.cpp server, ``llama_base_url``,
is the session's one, shared with tests/llms, from tests/conftest.py)."""

from __future__ import annotations
