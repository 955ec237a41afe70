"""``Ollama`` (``POST /api/generate``) and ``ChatOllama`` (``POST /api/chat``), over NDJSON.

Ollama streams one JSON object a line (with ``think`` on, its ``thinking`` pieces are the
chunks' ``reasoning``); the last has ``"done": true`` and the call's
timings (nanoseconds) and counts: ``total_duration``, ``load_duration``,
``prompt_eval_count``, ``prompt_eval_duration``, ``eval_count``, ``eval_duration``,
with ``done_reason``. They land in the last chunk's ``generation_info`` (``Ollama``) or
``response_metadata`` (``ChatOllama``, whose counts are also its ``usage_metadata``).
An ``{"error": "..."}`` line is an in-band error. The server is found at ``base_url``,
else ``OLLAMA_HOST`` (``host:port`` or a URL), else ``http://127.0.0.1:11434``; it
needs no key (an ``api_key`` given is sent as a bearer token, for proxies).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from .._http._ndjson import NDJSONDecoder
from .._http._quote import MAX_QUOTE
from ..errors import ProtocolError
from ..schema import AIMessage, AIMessageChunk, BaseMessage, GenerationChunk, ToolCall, ToolMessage
from ._http_model import HTTPLLM, HTTPChatModel, HTTPModel, WireTranslator

__all__ = ["ChatOllama", "GenerateTranslator", "Ollama", "OllamaChatTranslator"]

C = TypeVar("C", GenerationChunk, AIMessageChunk)

_DEFAULT_PORT = 11434
_FINAL_FIELDS = ("response", "message", "done")


def _final_info(record: dict[str, Any]) -> dict[str, Any]:
    """What the ``done`` record says about the call: model, reason, timings, counts."""
    return {key: value for key, value in record.items() if key not in _FINAL_FIELDS}


class _RecordTranslator(WireTranslator[Any, C]):
    """What both Ollama streams share: JSON objects up to ``"done": true``, and in-band
    errors as ``{"error": "..."}`` records."""

    terminal = '"done": true'

    def frame(self, frame: Any) -> C | None:
        if not isinstance(frame, dict):
            raise ProtocolError(
                "an NDJSON line is not a JSON object", line=json.dumps(frame)[:MAX_QUOTE]
            )
        if "error" in frame:
            raise self.in_band_error(frame)
        return self.feed(frame)

    def feed(self, record: dict[str, Any]) -> C | None:
        """The chunk one record stands for, or ``None`` if it carries nothing."""
        raise NotImplementedError


class GenerateTranslator(_RecordTranslator[GenerationChunk]):
    """Turns ``/api/generate`` records into ``GenerationChunk``s."""

    def feed(self, record: dict[str, Any]) -> GenerationChunk | None:
        text = record.get("response") or ""
        reasoning = record.get("thinking") or ""
        if record.get("done"):
            self.finished = True
            return GenerationChunk(
                text=text, reasoning=reasoning, generation_info=_final_info(record)
            )
        if not text and not reasoning:
            return None
        return GenerationChunk(text=text, reasoning=reasoning)


class OllamaChatTranslator(_RecordTranslator[AIMessageChunk]):
    """Turns ``/api/chat`` records into ``AIMessageChunk``s.

    Ollama sends each tool call whole, with its arguments already an object, so they
    become ``tool_calls`` at once rather than ``tool_call_chunks``.
    """

    def feed(self, record: dict[str, Any]) -> AIMessageChunk | None:
        message = record.get("message") or {}
        fields: dict[str, Any] = {"content": message.get("content") or ""}
        if message.get("thinking"):
            fields["reasoning"] = message["thinking"]
        calls = message.get("tool_calls") or ()
        if calls:
            fields["tool_calls"] = [
                ToolCall(
                    name=(call.get("function") or {}).get("name") or "",
                    args=(call.get("function") or {}).get("arguments") or {},
                    id=call.get("id"),
                )
                for call in calls
            ]
        if record.get("done"):
            self.finished = True
            info = _final_info(record)
            if "model" in info:
                info["model_name"] = info["model"]
            prompt = record.get("prompt_eval_count") or 0
            output = record.get("eval_count") or 0
            fields["usage_metadata"] = {
                "input_tokens": prompt,
                "output_tokens": output,
                "total_tokens": prompt + output,
            }
            fields["response_metadata"] = info
        elif not fields["content"] and len(fields) == 1:
            return None
        return AIMessageChunk(**fields)


def message_to_ollama(message: BaseMessage) -> dict[str, Any]:
    """One message in the shape ``/api/chat`` takes."""
    if isinstance(message, ToolMessage):
        out: dict[str, Any] = {"role": "tool", "content": message.content}
        if message.name:
            out["tool_name"] = message.name
        return out
    role = {"human": "user", "system": "system"}.get(message.type, "assistant")
    out = {"role": role, "content": message.content}
    if isinstance(message, AIMessage) and message.reasoning:
        out["thinking"] = message.reasoning
    if isinstance(message, AIMessage) and message.tool_calls:
        out["tool_calls"] = [
            {"function": {"name": call.name, "arguments": call.args}} for call in message.tool_calls
        ]
    return out


class _OllamaBase(HTTPModel):
    """What the two Ollama models share."""

    _ls_provider: ClassVar[str | None] = "ollama"
    _default_base_url: ClassVar[str] = f"http://127.0.0.1:{_DEFAULT_PORT}"
    _base_url_env: ClassVar[str | None] = "OLLAMA_HOST"
    _decoder = NDJSONDecoder

    @classmethod
    def _normalize_base_url(cls, url: str) -> str:
        # OLLAMA_HOST is often "host:port" or just "host", with no scheme: that means
        # plain HTTP on Ollama's port. A URL with a scheme is taken as it is.
        url = url.rstrip("/")
        if "://" not in url:
            parts = urlsplit(f"http://{url}")
            port = parts.port or _DEFAULT_PORT
            url = f"http://{parts.hostname}:{port}{parts.path}"
        return url

    def _headers(self) -> dict[str, str]:
        if self.api_key is None:
            return {}
        return {"Authorization": f"Bearer {self.api_key.get_secret_value()}"}

    def _ollama_payload(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        # Per-call values of these fields go where the model's own go: in the options
        # (Ollama ignores a top-level "max_tokens").
        kwargs = dict(kwargs)
        temperature = kwargs.pop("temperature", self.temperature)
        max_tokens = kwargs.pop("max_tokens", self.max_tokens)
        options: dict[str, Any] = {}
        if temperature is not None:
            options["temperature"] = temperature
        if max_tokens is not None:
            options["num_predict"] = max_tokens
        if stop:
            options["stop"] = stop
        payload: dict[str, Any] = {"model": self.model}
        for extra in (self.model_kwargs, kwargs):
            options.update(extra.get("options") or {})
            payload.update((k, v) for k, v in extra.items() if k != "options")
        if options:
            payload["options"] = options
        payload["stream"] = True
        return payload


class Ollama(_OllamaBase, HTTPLLM):
    """Ollama's completion API (``POST /api/generate``), streamed.

    ``format``, ``system``, ``raw``, ``keep_alive``, ``think`` and ``options`` (merged
    with those made from ``temperature``, ``max_tokens`` and ``stop``) go in
    ``model_kwargs`` or as keyword arguments of a call.
    """

    _path: ClassVar[str] = "/api/generate"

    def _payload(
        self, prompt: Any, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        payload = self._ollama_payload(stop, kwargs)
        payload["prompt"] = prompt
        return payload

    def _translator(self, request_id: str | None) -> GenerateTranslator:
        return GenerateTranslator(self._secrets(), request_id)


class ChatOllama(_OllamaBase, HTTPChatModel):
    """Ollama's chat API (``POST /api/chat``), streamed.

    ``tools``, ``format``, ``keep_alive``, ``think`` and ``options`` go in
    ``model_kwargs`` or as keyword arguments of a call.
    """

    _path: ClassVar[str] = "/api/chat"

    def _payload(
        self, prompt: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        payload = self._ollama_payload(stop, kwargs)
        payload["messages"] = [message_to_ollama(m) for m in prompt]
        return payload

    def _translator(self, request_id: str | None) -> OllamaChatTranslator:
        return OllamaChatTranslator(self._secrets(), request_id)
