"""Tests of the HTTP providers (rxllm/llms/_openai.py, _anthropic.py, _ollama.py)."""
