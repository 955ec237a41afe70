"""``OpenAI`` (``/v1/completions``) and ``ChatOpenAI`` (``/v1/chat/completions``), over SSE.

They work with any OpenAI-compatible server (llama.cpp, vLLM, Ollama's ``/v1``...):
give ``base_url`` or set ``OPENAI_BASE_URL``. A key (``api_key`` or ``OPENAI_API_KEY``)
is required for ``api.openai.com`` only; local servers usually need none, and without
one no ``Authorization`` header is sent.

Wire format: one ``data:`` line of JSON per event, ending with ``data: [DONE]``; an
``{"error": {...}}`` object in a data line is an in-band error. The translators below
turn one decoded event into at most one chunk (``rxllm._http._transport.stream_call`` and
its async twin drive them); they know nothing of HTTP, so they are tested on their own.

What each delta becomes, as LangChain and the official SDK assemble it: ``content`` is
the content; ``refusal`` pieces and the chunk's ``logprobs`` go in
``response_metadata`` under those names and are joined when chunks add up; the
``reasoning_content`` (llama.cpp, DeepSeek) or ``reasoning`` (vLLM, OpenRouter) deltas
of OpenAI-compatible servers are the chunk's ``reasoning``. One reply per call: ``n``
above 1 is refused before sending, and a stream that holds a second choice anyway is a
``ProtocolError``, never a mix of two replies.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, TypeVar

import httpx
from pydantic import PrivateAttr
from reactivex import Observable

from .._http._ndjson import NDJSONDecoder
from .._http._quote import MAX_QUOTE
from .._http._sse import ServerSentEvent, SSEDecoder
from ..errors import InvalidInputError, ProtocolError
from ..schema import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    GenerationChunk,
    ToolCallChunk,
    ToolMessage,
    Usage,
    _content_chunk,
    _text_chunk,
)
from ._http_model import HTTPLLM, HTTPChatModel, WireTranslator, json_object
from ._responses import RESPONSES_PATH, ResponsesTranslator, check_no_stop, responses_payload
from ._tools import ToolStyle

__all__ = ["ChatCompletionTranslator", "ChatOpenAI", "CompletionTranslator", "OpenAI"]

C = TypeVar("C", GenerationChunk, AIMessageChunk)

_OPENAI_API = "https://api.openai.com/v1"


def _usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=usage.get("total_tokens") or prompt + completion,
    )


def _only_choice(choices: list[Any]) -> dict[str, Any]:
    """The one choice of an event, refusing a second one (``n`` > 1) rather than mixing
    two replies into one text."""
    choice = choices[0]
    if len(choices) > 1 or not isinstance(choice, dict) or choice.get("index"):
        raise ProtocolError(
            "the stream holds more than one choice (n > 1); rxllm streams one reply per "
            "call: make n calls instead (batch)",
            line=json.dumps(choices)[:MAX_QUOTE],
        )
    return choice


def _check_n(payload: dict[str, Any]) -> None:
    """Refuse ``n`` > 1 before sending: each call streams one reply."""
    n = payload.get("n")
    if n is not None and n != 1:
        raise InvalidInputError(
            f"n={n!r}: rxllm streams one reply per call; for several replies to one "
            "prompt, batch the prompt n times"
        )


class _OpenAITranslator(WireTranslator[ServerSentEvent, C]):
    """What both OpenAI streams share: JSON events up to ``data: [DONE]``, and in-band
    errors as ``{"error": {...}}`` events."""

    terminal = "data: [DONE]"

    def frame(self, frame: ServerSentEvent) -> C | None:
        if frame.data == "[DONE]":
            self.finished = True
            return None
        payload = frame.json()
        if type(payload) is not dict:  # json_object, inlined: this runs for every token
            payload = json_object(frame)
        if payload.get("error") is not None or frame.event == "error":
            raise self.in_band_error(payload)
        return self.feed(payload)

    def feed(self, payload: dict[str, Any]) -> C | None:
        """The chunk one event's JSON stands for, or ``None`` if it carries nothing."""
        raise NotImplementedError


class CompletionTranslator(_OpenAITranslator[GenerationChunk]):
    """Turns ``/v1/completions`` stream events into ``GenerationChunk``s."""

    def feed(self, payload: dict[str, Any]) -> GenerationChunk | None:
        """The chunk one event stands for, or ``None`` if it carries nothing.

        Raises:
            ProtocolError: for an event of a second choice.
        """
        choices = payload.get("choices")
        if choices and not payload.get("usage"):
            # The common event, a piece of text and nothing else, is built unvalidated;
            # a second choice takes the general path, which refuses it.
            choice = choices[0]
            text = choice.get("text")
            if (
                type(text) is str
                and text
                and len(choices) == 1
                and not choice.get("index")
                and choice.get("finish_reason") is None
                and choice.get("logprobs") is None
            ):
                return _text_chunk(text)
        return self._feed(payload)

    def _feed(self, payload: dict[str, Any]) -> GenerationChunk | None:
        info: dict[str, Any] = {}
        text = ""
        choices = payload.get("choices") or ()
        if choices:
            choice = _only_choice(choices)
            text = choice.get("text") or ""
            if choice.get("finish_reason") is not None:
                info["finish_reason"] = choice["finish_reason"]
                info["model"] = payload.get("model")
                if payload.get("system_fingerprint") is not None:
                    info["system_fingerprint"] = payload["system_fingerprint"]
            if choice.get("logprobs") is not None:
                info["logprobs"] = choice["logprobs"]
        if payload.get("usage"):
            info["token_usage"] = payload["usage"]
        if not text and not info:
            return None
        return GenerationChunk(text=text, generation_info=info or None)


def _only_content(delta: dict[str, Any]) -> bool:
    """Whether a delta with more keys than ``content`` carries nothing but content (some
    servers send ``"role"`` or ``"reasoning_content": null`` beside it on every delta)."""
    return not (
        delta.get("tool_calls")
        or delta.get("refusal")
        or delta.get("reasoning_content")
        or delta.get("reasoning")
    )


class ChatCompletionTranslator(_OpenAITranslator[AIMessageChunk]):
    """Turns ``/v1/chat/completions`` stream events into ``AIMessageChunk``s.

    Tool-call deltas become ``tool_call_chunks`` (``AIMessageChunk.to_message()``
    assembles and parses them); the usage event that ``stream_options.include_usage``
    adds at the end becomes the last chunk's ``usage_metadata``.
    """

    def __init__(self, secrets: tuple[str, ...] = (), request_id: str | None = None) -> None:
        super().__init__(secrets, request_id)
        #: Whether a choice has said why it finished; a reply without a reason was
        #: probably cut short by the server (see ``end``).
        self.finish_reason_seen = False

    def feed(self, payload: dict[str, Any]) -> AIMessageChunk | None:
        """The chunk one event stands for, or ``None`` if it carries nothing.

        Raises:
            ProtocolError: for an event of a second choice.
        """
        choices = payload.get("choices")
        if choices and not payload.get("usage"):
            # The common event, a content delta and nothing else, is built unvalidated.
            # A second choice, or anything beside the content, takes the general path.
            choice = choices[0]
            delta = choice.get("delta") or {}
            content = delta.get("content")
            msg_id = payload.get("id")
            if (
                type(content) is str
                and content
                and (len(delta) == 1 or _only_content(delta))
                and len(choices) == 1
                and not choice.get("index")
                and (msg_id is None or type(msg_id) is str)
                and choice.get("finish_reason") is None
                and choice.get("logprobs") is None
            ):
                return _content_chunk(content, msg_id)
        return self._feed(payload)

    def end(self) -> AIMessageChunk | None:
        """A last chunk with a warning if no choice said why it finished.

        llama.cpp's server, for one, ends a request it interrupted with ``[DONE]`` and
        no finish reason: the reply looks complete but may have been cut.
        """
        if self.finish_reason_seen:
            return None
        warning = (
            "the stream ended without a finish reason: the server may have cut the reply "
            "short (llama.cpp's server does so under --interrupt_requests)"
        )
        return AIMessageChunk(response_metadata={"warnings": [warning]})

    def _feed(self, payload: dict[str, Any]) -> AIMessageChunk | None:
        content = ""
        reasoning = ""
        tool_call_chunks: list[ToolCallChunk] = []
        metadata: dict[str, Any] = {}
        choices = payload.get("choices") or ()
        if choices:
            choice = _only_choice(choices)
            delta = choice.get("delta") or {}
            content = delta.get("content") or ""
            reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
            for call in delta.get("tool_calls") or ():
                function = call.get("function") or {}
                tool_call_chunks.append(
                    ToolCallChunk(
                        name=function.get("name"),
                        args=function.get("arguments"),
                        id=call.get("id"),
                        index=call.get("index"),
                    )
                )
            if delta.get("refusal"):
                metadata["refusal"] = delta["refusal"]
            if choice.get("logprobs") is not None:
                metadata["logprobs"] = choice["logprobs"]
            if choice.get("finish_reason") is not None:
                self.finish_reason_seen = True
                metadata["finish_reason"] = choice["finish_reason"]
                metadata["model_name"] = payload.get("model")
                if payload.get("system_fingerprint") is not None:
                    metadata["system_fingerprint"] = payload["system_fingerprint"]
        usage = _usage(payload.get("usage"))
        if not (content or reasoning or tool_call_chunks or metadata or usage is not None):
            return None
        return AIMessageChunk(
            content=content,
            reasoning=reasoning,
            id=payload.get("id"),
            tool_call_chunks=tool_call_chunks,
            usage_metadata=usage,
            response_metadata=metadata,
        )


def message_to_openai(message: BaseMessage) -> dict[str, Any]:
    """One message in the shape ``/v1/chat/completions`` takes."""
    if isinstance(message, ToolMessage):
        return {"role": "tool", "content": message.content, "tool_call_id": message.tool_call_id}
    role = {"human": "user", "system": "system"}.get(message.type, "assistant")
    if message.type not in ("human", "system", "ai", "AIMessageChunk"):
        role = message.type
    out: dict[str, Any] = {"role": role, "content": message.content}
    if message.name:
        out["name"] = message.name
    if isinstance(message, AIMessage) and message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.args)},
            }
            for call in message.tool_calls
        ]
        out["content"] = message.content or None
    return out


class _OpenAIBase:
    """What the two OpenAI models share (mixed into pydantic models)."""

    _decoder: ClassVar[type[SSEDecoder] | type[NDJSONDecoder]] = SSEDecoder
    _ls_provider: ClassVar[str | None] = "openai"
    _default_base_url: ClassVar[str] = _OPENAI_API
    _base_url_env: ClassVar[str | None] = "OPENAI_BASE_URL"
    _api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    _key_required_for: ClassVar[frozenset[str]] = frozenset({"api.openai.com"})

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)  # type: ignore[misc]
        _check_n(self.model_kwargs)  # type: ignore[attr-defined]

    def _check_call_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        _check_n(kwargs)  # when the call is made, not when its stream starts
        checked: dict[str, Any] = super()._check_call_kwargs(kwargs)  # type: ignore[misc]
        return checked


def _openai_headers(api_key: Any) -> dict[str, str]:
    headers = {"Accept": "text/event-stream"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key.get_secret_value()}"
    return headers


def _common_payload(
    model: HTTPLLM | HTTPChatModel, stop: list[str] | None, stream_usage: bool
) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": model.model}
    if model.temperature is not None:
        payload["temperature"] = model.temperature
    if model.max_tokens is not None:
        payload["max_tokens"] = model.max_tokens
    if stop:
        payload["stop"] = stop
    if stream_usage:
        payload["stream_options"] = {"include_usage": True}
    return payload


class OpenAI(_OpenAIBase, HTTPLLM):
    """OpenAI's text-completion API (``POST /v1/completions``), streamed.

    Examples:
        >>> llm = OpenAI(model="gpt-3.5-turbo-instruct", temperature=0, max_tokens=512,
        ...              api_key="sk-...")
        >>> llm.model, llm.base_url
        ('gpt-3.5-turbo-instruct', 'https://api.openai.com/v1')
    """

    _path = "/completions"

    model: str = "gpt-3.5-turbo-instruct"
    #: Ask for a final usage event (``stream_options.include_usage``); its counts land
    #: in the last chunk's ``generation_info["token_usage"]``.
    stream_usage: bool = True

    def _headers(self) -> dict[str, str]:
        return _openai_headers(self.api_key)

    def _payload(
        self, prompt: Any, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        payload = _common_payload(self, stop, self.stream_usage)
        payload["prompt"] = prompt
        payload.update(self.model_kwargs)
        payload.update(kwargs)
        payload["stream"] = True
        return payload

    def _translator(self, request_id: str | None) -> CompletionTranslator:
        return CompletionTranslator(self._secrets(), request_id)


class ChatOpenAI(_OpenAIBase, HTTPChatModel):
    """OpenAI's chat API (``POST /v1/chat/completions``), streamed; or, with
    ``use_responses_api=True``, OpenAI's Responses API (``POST /v1/responses``).

    ``tools``, ``tool_choice``, ``response_format`` and any other request field go in
    ``model_kwargs`` or as keyword arguments of a call (``chat.invoke(msgs, tools=[...])``).
    ``max_tokens`` is sent as ``max_tokens``, which every OpenAI-compatible server
    understands; for OpenAI's reasoning models pass ``max_completion_tokens`` in
    ``model_kwargs`` instead.

    With ``use_responses_api=True`` (LangChain's name) the same chunks come from the
    Responses API's event stream: text as ``content``, reasoning summaries as
    ``reasoning``, function calls as ``tool_call_chunks``, a refusal in
    ``response_metadata["refusal"]``, usage on the last chunk. Request fields are the
    Responses API's (``tools`` in its flat format, ``reasoning={"summary": "auto"}``,
    ``text``...); ``max_tokens`` is sent as ``max_output_tokens``. That API has no stop
    sequences: a ``stop`` is refused before sending (cut the stream with the
    ``stop_on`` operator instead). See ``rxllm.llms._responses`` for the mapping.

    Examples:
        >>> chat = ChatOpenAI(model="gpt-5-mini", use_responses_api=True, api_key="sk-...")
        >>> str(chat._endpoint())
        'https://api.openai.com/v1/responses'
    """

    _path = "/chat/completions"
    #: The API is the model's: one call cannot switch it.
    _model_only: ClassVar[frozenset[str]] = HTTPChatModel._model_only | {"use_responses_api"}

    model: str = "gpt-4o-mini"
    #: Ask for a final usage event (``stream_options.include_usage``); its counts land
    #: in the last chunk's ``usage_metadata``. The Responses API always reports usage.
    stream_usage: bool = True
    #: Call OpenAI's Responses API (``POST {base_url}/responses``) instead of the chat
    #: completions API.
    use_responses_api: bool = False

    #: The Responses URL and the chat URL it was made from (see ``_endpoint``).
    _responses_url: tuple[httpx.URL, httpx.URL] | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        if self.use_responses_api:
            check_no_stop(self.stop)

    def _observe_prepared(
        self, prepared: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Observable[AIMessageChunk]:
        if self.use_responses_api:
            check_no_stop(self._stop_for(stop))
        return super()._observe_prepared(prepared, stop, kwargs)

    def _endpoint(self) -> httpx.URL:
        """The chat URL, or the Responses URL next to it, each made once per base_url:
        the chat URL is remade when base_url changes, and the Responses URL with it."""
        chat = super()._endpoint()
        if not self.use_responses_api:
            return chat
        made = self._responses_url
        if made is None or made[0] is not chat:
            path = chat.path.removesuffix(self._path) + RESPONSES_PATH
            made = (chat, chat.copy_with(path=path))
            self._responses_url = made
        return made[1]

    def _tool_style(self) -> ToolStyle:
        return "responses" if self.use_responses_api else "chat"

    def _headers(self) -> dict[str, str]:
        return _openai_headers(self.api_key)

    def _payload(
        self, prompt: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        if self.use_responses_api:
            return responses_payload(self, prompt, kwargs)
        call = dict(kwargs)
        payload = _common_payload(self, stop, call.pop("stream_usage", self.stream_usage))
        payload["messages"] = [message_to_openai(m) for m in prompt]
        payload.update(self.model_kwargs)
        payload.update(call)
        payload["stream"] = True
        return payload

    def _translator(self, request_id: str | None) -> ChatCompletionTranslator | ResponsesTranslator:
        if self.use_responses_api:
            return ResponsesTranslator(self._secrets(), request_id)
        return ChatCompletionTranslator(self._secrets(), request_id)
