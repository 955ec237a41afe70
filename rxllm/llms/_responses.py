"""OpenAI's Responses API (``POST /v1/responses``), for ``ChatOpenAI(use_responses_api=True)``.

The stream is a sequence of typed events, the type in each event's data:
``response.created`` (the response's id and model), then for each output item a
``response.output_item.added`` and the deltas of its kind
(``response.output_text.delta``, ``response.refusal.delta``,
``response.reasoning_summary_text.delta``, ``response.function_call_arguments.delta``...),
and one terminal event: ``response.completed``, ``response.incomplete`` or
``response.failed``. An ``error`` event may come instead, on an HTTP 200 response.
Event types this module does not know (web search progress, code interpreter deltas,
image generation...) are skipped, as the official SDK's accumulator skips them.

``ResponsesTranslator`` turns one event into at most one chunk, without HTTP:

- text deltas become ``content``; reasoning summary deltas (and the raw
  ``reasoning_text`` deltas of open-weight models served behind this API) become
  ``reasoning``, the summary's parts separated by a blank line;
- a ``function_call`` item becomes ``tool_call_chunks``: its name and ``call_id`` when
  it is added, then its arguments piece by piece, all with the item's ``output_index``
  as ``index``, so ``AIMessageChunk.to_message()`` assembles them into ``tool_calls``;
- refusal deltas go in ``response_metadata["refusal"]``, and the logprobs of text
  deltas (when asked for with ``include=["message.output_text.logprobs"]``) in
  ``response_metadata["logprobs"]``, a list, both joined as chunks add up;
- the terminal event makes the last chunk: ``usage_metadata`` (with LangChain's
  ``input_token_details.cache_read`` and ``output_token_details.reasoning``) and, in
  ``response_metadata``, the response's ``id``, ``model_name``, ``status`` and a
  ``finish_reason`` in the chat API's words: ``stop``, ``tool_calls``, ``length``
  (``max_output_tokens``), ``content_filter``.

``response.incomplete`` is not an error, as neither the official SDK nor LangChain
makes it one: the reply ends normally and says why in ``finish_reason`` and
``incomplete_details``, as a chat reply cut at ``max_tokens`` does. A reply cut by the
content filter also carries a warning in ``response_metadata["warnings"]``, since its
text may look whole. ``response.failed`` and ``error`` raise the ``APIError`` subclass
their error code names; a stream that ends without a terminal event raises
``StreamInterruptedError``. Either way the text received so far is the error's
``.partial``.

The request: messages become ``input`` items (system messages as ``developer``
messages, in place; an assistant's tool calls as ``function_call`` items; tool results
as ``function_call_output`` items); ``max_tokens`` is sent as ``max_output_tokens``.
The API has no ``stop`` and no ``n``: both are refused before anything is sent.
"""

from __future__ import annotations

import json
from typing import Any

from .._http._sse import ServerSentEvent
from ..errors import APIError, InvalidInputError, StreamInterruptedError
from ..schema import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ToolCallChunk,
    ToolMessage,
    Usage,
    _content_chunk,
)
from ._http_model import HTTPChatModel, WireTranslator, json_object

__all__ = [
    "RESPONSES_PATH",
    "ResponsesTranslator",
    "check_no_stop",
    "messages_to_responses",
    "responses_payload",
]

#: The endpoint, relative to ``base_url``.
RESPONSES_PATH = "/responses"

#: Error codes of a failed response (the official SDK's ``ResponseError.code``) that do
#: not already name an error type: what the request was, or what OpenAI could not do.
#: ``server_error`` and ``rate_limit_exceeded`` need no translation.
_CODE_TYPES = {
    "vector_store_timeout": "server_error",
    **dict.fromkeys(
        (
            "invalid_prompt",
            "data_residency_mismatch",
            "bio_policy",
            "invalid_image",
            "invalid_image_format",
            "invalid_base64_image",
            "invalid_image_url",
            "image_too_large",
            "image_too_small",
            "image_parse_error",
            "image_content_policy_violation",
            "invalid_image_mode",
            "image_file_too_large",
            "unsupported_image_media_type",
            "empty_image_file",
            "failed_to_download_image",
            "image_file_not_found",
        ),
        "invalid_request_error",
    ),
}

#: ``incomplete_details.reason`` in the chat API's ``finish_reason`` words.
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}

_TERMINAL_EVENTS = "event (response.completed, response.incomplete or response.failed)"

_CONTENT_FILTER_WARNING = (
    "OpenAI's content filter stopped the reply: its text may end mid-way without looking cut"
)


def _mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one: a field that is missing,
    ``null`` or of another type gives nothing rather than an ``AttributeError``."""
    return value if isinstance(value, dict) else {}


def _usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    given = usage.get("input_tokens") or 0
    output = usage.get("output_tokens") or 0
    details: dict[str, Any] = {}
    cached = _mapping(usage.get("input_tokens_details")).get("cached_tokens")
    if cached is not None:
        details["input_token_details"] = {"cache_read": cached}
    reasoning = _mapping(usage.get("output_tokens_details")).get("reasoning_tokens")
    if reasoning is not None:
        details["output_token_details"] = {"reasoning": reasoning}
    return Usage(
        input_tokens=given,
        output_tokens=output,
        total_tokens=usage.get("total_tokens") or given + output,
        **details,
    )


class ResponsesTranslator(WireTranslator[ServerSentEvent, AIMessageChunk]):
    """Turns Responses API stream events into ``AIMessageChunk``s (no HTTP involved).

    Args:
        secrets: strings to scrub from in-band error text.
        request_id: the response's request id, for errors.
    """

    terminal = _TERMINAL_EVENTS

    def __init__(self, secrets: tuple[str, ...] = (), request_id: str | None = None) -> None:
        super().__init__(secrets, request_id)
        self.id: str | None = None
        self.model: str | None = None
        self.summary_parts = 0
        self.calls = 0

    def frame(self, frame: ServerSentEvent) -> AIMessageChunk | None:
        if frame.data == "[DONE]":
            # Some compatible servers end with it, after the terminal event; the
            # official SDK stops reading there, so the reply is cut.
            raise StreamInterruptedError(f"the stream ended without its terminal {self.terminal}")
        return self.feed(json_object(frame))

    def feed(self, payload: dict[str, Any]) -> AIMessageChunk | None:
        """The chunk one event stands for, or ``None``.

        Raises:
            APIError: for ``response.failed`` and ``error``, of the class the error's
                code or type names.
        """
        kind = payload.get("type")
        if kind == "response.output_text.delta":
            delta = payload.get("delta")
            logprobs = payload.get("logprobs")  # ``[]`` unless asked for with ``include``
            if type(delta) is str and not logprobs and (self.id is None or type(self.id) is str):
                # The common event, a piece of text, is built unvalidated.
                return _content_chunk(delta, self.id) if delta else None
            metadata = {"logprobs": logprobs} if logprobs else {}
            return self._chunk(content=delta, response_metadata=metadata)
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return self._chunk(reasoning=payload.get("delta")) if payload.get("delta") else None
        if kind == "response.function_call_arguments.delta":
            piece = ToolCallChunk(args=payload.get("delta"), index=payload.get("output_index"))
            return self._chunk(tool_call_chunks=[piece])
        if kind == "response.output_item.added":
            return self._item_added(payload.get("output_index"), _mapping(payload.get("item")))
        if kind == "response.reasoning_summary_part.added":
            self.summary_parts += 1
            return self._chunk(reasoning="\n\n") if self.summary_parts > 1 else None
        if kind == "response.refusal.delta":
            return self._chunk(response_metadata={"refusal": payload.get("delta")})
        if kind in ("response.created", "response.queued", "response.in_progress"):
            response = _mapping(payload.get("response"))
            self.id = response.get("id") or self.id
            self.model = response.get("model") or self.model
        elif kind in ("response.completed", "response.incomplete"):
            self.finished = True
            return self._final(_mapping(payload.get("response")))
        elif kind == "response.failed":
            self.finished = True
            error = _mapping(payload.get("response")).get("error")
            raise self._error(error, "the response failed without saying why")
        elif kind == "error":
            nested = payload.get("error")
            if isinstance(nested, dict):
                raise self._error(nested, "an error event without a message")
            flat = {k: v for k, v in payload.items() if k not in ("type", "sequence_number")}
            raise self._error(flat, "an error event without a message")
        # Events with nothing for a chunk, or of kinds added after this was written.
        return None

    def _chunk(self, **fields: Any) -> AIMessageChunk:
        return AIMessageChunk(id=self.id, **fields)

    def _item_added(self, index: Any, item: dict[str, Any]) -> AIMessageChunk | None:
        if item.get("type") != "function_call":
            return None
        self.calls += 1
        call = ToolCallChunk(
            name=item.get("name"),
            id=item.get("call_id"),
            args=item.get("arguments") or "",
            index=index,
        )
        return self._chunk(tool_call_chunks=[call])

    def _final(self, response: dict[str, Any]) -> AIMessageChunk:
        status = response.get("status")
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        if isinstance(reason, str):
            finish = _INCOMPLETE_REASONS.get(reason, reason)
        elif status == "incomplete":
            finish = "incomplete"
        else:
            finish = "tool_calls" if self.calls else "stop"
        metadata: dict[str, Any] = {
            "id": response.get("id") or self.id,
            "model_name": response.get("model") or self.model,
            "status": status,
            "finish_reason": finish,
        }
        if details:
            metadata["incomplete_details"] = details
        if finish == "content_filter":
            metadata["warnings"] = [_CONTENT_FILTER_WARNING]
        return self._chunk(usage_metadata=_usage(response.get("usage")), response_metadata=metadata)

    def _error(self, error: Any, fallback: str) -> APIError:
        """The typed error of a failed response or an ``error`` event.

        Both carry a ``code`` and a ``message`` (an ``error`` event may nest them, with a
        ``type``, under ``error``); the code becomes the error type the transport maps
        to a class, so ``server_error`` is an ``InternalServerError`` (retried before the
        first chunk) and ``invalid_prompt`` a ``BadRequestError``.
        """
        if not isinstance(error, dict):
            error = {"message": fallback}
        kind = error.get("type")
        if not isinstance(kind, str) or kind == "error":
            code = error.get("code")
            kind = _CODE_TYPES.get(code, code) if isinstance(code, str) else None
        body = {"error": {**error, "type": kind, "message": error.get("message") or fallback}}
        return self.in_band_error(body)


def check_no_stop(stop: list[str] | None) -> None:
    """Refuse stop sequences: the Responses API has no such parameter, and ignoring them
    would return text past the point the caller asked to stop at."""
    if stop:
        raise InvalidInputError(
            "the Responses API has no stop sequences (use_responses_api=True): cut the "
            "stream client-side with rxllm.operators.stop_on(...) instead"
        )


def messages_to_responses(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """The ``input`` items the Responses API takes for a conversation.

    A message's ``name`` has no place in this API and is not sent.

    Raises:
        InvalidInputError: for a message of a role the API does not have, or a tool
            call sent back without its id.
    """
    items: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, ToolMessage):
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.tool_call_id,
                    "output": message.content,
                }
            )
        elif message.type == "system":
            items.append({"role": "developer", "content": message.content})
        elif message.type == "human":
            items.append({"role": "user", "content": message.content})
        elif isinstance(message, AIMessage):
            if isinstance(message, AIMessageChunk):
                message = message.to_message()  # a summed stream, tool calls parsed
            if message.content or not message.tool_calls:
                items.append({"role": "assistant", "content": message.content})
            for call in message.tool_calls:
                if not call.id:
                    raise InvalidInputError(
                        f"the tool call {call.name!r} has no id: the Responses API needs "
                        "it to match the call with its result"
                    )
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call.id,
                        "name": call.name,
                        "arguments": json.dumps(call.args),
                    }
                )
        else:
            raise InvalidInputError(
                f"a {message.type!r} message has no role in the Responses API (it takes "
                "system, human, ai and tool messages)"
            )
    return items


def responses_payload(
    chat: HTTPChatModel, messages: list[BaseMessage], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The JSON body of one streamed Responses API call.

    ``model_kwargs`` and the call's keyword arguments (``tools`` in the Responses
    format, ``reasoning``, ``text``, ``include``...) are passed through as they are;
    ``max_tokens``, given either way, is sent as ``max_output_tokens``.

    Raises:
        InvalidInputError: for ``n`` or ``stop``, which the API does not have.
    """
    call = dict(kwargs)
    max_tokens = call.pop("max_tokens", chat.max_tokens)
    call.pop("stream_usage", None)  # usage always comes with the terminal event
    payload: dict[str, Any] = {"model": chat.model, "input": messages_to_responses(messages)}
    if chat.temperature is not None:
        payload["temperature"] = chat.temperature
    if max_tokens is not None:
        payload["max_output_tokens"] = max_tokens
    payload.update(chat.model_kwargs)
    payload.update(call)
    if "n" in payload:
        raise InvalidInputError(
            "the Responses API has no n: for several replies to one prompt, batch the "
            "prompt n times"
        )
    check_no_stop(payload.pop("stop", None))
    payload["stream"] = True
    return payload
