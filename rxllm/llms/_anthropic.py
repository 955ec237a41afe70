"""``ChatAnthropic``: Anthropic's Messages API (``POST /v1/messages``), over SSE.

The stream is a sequence of typed events: ``message_start``; for each content block a
``content_block_start``, its ``content_block_delta``s (``text_delta``,
``input_json_delta`` for tool input, ``thinking_delta``, ``signature_delta``) and a
``content_block_stop``; ``message_delta`` (stop reason, cumulative usage);
``message_stop``, the terminal event. ``ping`` may come at any time, and an ``error``
event (``overloaded_error``, typically) may arrive on an HTTP 200 response. Unknown
event types are ignored, as Anthropic's versioning policy asks.

``AnthropicTranslator`` turns one event into at most one chunk, without HTTP (the
providers' one read loop, ``rxllm._http._transport.stream_call`` and its async twin, drive it):

- text deltas become ``content``; a tool-use block becomes ``tool_call_chunks``
  (its name and id when it starts, then its JSON input piece by piece), which
  ``AIMessageChunk.to_message()`` parses into ``tool_calls``;
- thinking deltas become chunks with empty content and the piece in ``.reasoning``;
- a server tool's use (``server_tool_use``: web search, code execution) and its result
  are not tool calls: Anthropic ran them. They, thinking blocks (with the signatures
  Anthropic needs to see again) and cited text are kept as the blocks they are, in the
  last chunk's ``response_metadata["content_blocks"]``, assembled as the Anthropic SDK
  assembles them; ``messages_to_anthropic`` sends them back as they are;
- the last chunk (emitted on ``message_stop``) carries the usage, once, as
  ``usage_metadata`` (cache reads and writes count as input, as LangChain counts them),
  and in ``response_metadata`` the stop reason, stop sequence and, for a refusal,
  ``stop_details`` (its category and explanation).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from pydantic_core import from_json

from .._http._quote import MAX_QUOTE
from .._http._sse import ServerSentEvent, SSEDecoder
from ..errors import InvalidInputError, ProtocolError
from ..schema import AIMessage, AIMessageChunk, BaseMessage, ToolCallChunk, ToolMessage, Usage
from ._http_model import HTTPChatModel, WireTranslator, json_object
from ._tools import ToolStyle

__all__ = ["AnthropicTranslator", "ChatAnthropic"]

_ANTHROPIC_VERSION = "2023-06-01"


#: Blocks whose input streams as ``input_json_delta`` pieces. Only a client ``tool_use``
#: is a tool call for the caller to run; a ``server_tool_use`` (web search, code
#: execution) was run by Anthropic, and its result follows as a block of its own.
_TOOL_INPUT_BLOCKS = frozenset({"tool_use", "server_tool_use"})
#: Blocks the reply is made of that rxllm's fields say whole: text and client tool calls.
#: Any other block (thinking, a server tool's use and result) makes the final chunk
#: carry the reply's blocks as they are, in ``response_metadata["content_blocks"]``.
_PLAIN_BLOCKS = frozenset({"text", "tool_use"})


class _Block:
    """One content block as it streams: how it started, and its pieces so far."""

    __slots__ = ("start", "pieces", "signature", "citations")

    def __init__(self, start: dict[str, Any]) -> None:
        self.start = start
        self.pieces: list[str] = []
        self.signature: str | None = None
        self.citations: list[Any] = []

    def whole(self) -> dict[str, Any]:
        """The block as the Anthropic SDK's ``accumulate_event`` assembles it."""
        block = dict(self.start)
        kind = block.get("type")
        if kind == "text":
            block["text"] = (block.get("text") or "") + "".join(self.pieces)
            if self.citations:
                block["citations"] = (block.get("citations") or []) + self.citations
        elif kind == "thinking":
            block["thinking"] = (block.get("thinking") or "") + "".join(self.pieces)
            if self.signature is not None:
                block["signature"] = self.signature
        elif kind in _TOOL_INPUT_BLOCKS and self.pieces:
            text = "".join(self.pieces)
            try:
                block["input"] = from_json(text, allow_partial=True)
            except ValueError:
                raise ProtocolError(
                    f"the input of a {kind} block is not JSON", line=text[:MAX_QUOTE]
                ) from None
        return block


class AnthropicTranslator(WireTranslator[ServerSentEvent, AIMessageChunk]):
    """Turns Messages API stream events into ``AIMessageChunk``s (no HTTP involved).

    Args:
        secrets: strings to scrub from in-band error text.
        request_id: the response's request id, for errors.
    """

    terminal = "message_stop"

    def __init__(self, secrets: tuple[str, ...] = (), request_id: str | None = None) -> None:
        super().__init__(secrets, request_id)
        self.id: str | None = None
        self.model: str | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None
        self.stop_details: Any = None
        self.blocks: dict[int, _Block] = {}

    def frame(self, frame: ServerSentEvent) -> AIMessageChunk | None:
        return self.feed(frame.event, json_object(frame))

    def feed(self, event: str, payload: dict[str, Any]) -> AIMessageChunk | None:
        """The chunk one event stands for, or ``None``.

        Raises:
            APIError: for an ``error`` event, of the class its error type names.
        """
        kind = payload.get("type", event)
        if kind == "content_block_delta":
            return self._delta(payload.get("index"), payload.get("delta") or {})
        if kind == "content_block_start":
            return self._block_start(payload.get("index"), payload.get("content_block") or {})
        if kind == "message_start":
            message = payload.get("message") or {}
            self.id = message.get("id")
            self.model = message.get("model")
            self._count(message.get("usage"))
        elif kind == "message_delta":
            delta = payload.get("delta") or {}
            self.stop_reason = delta.get("stop_reason", self.stop_reason)
            self.stop_sequence = delta.get("stop_sequence", self.stop_sequence)
            if delta.get("stop_details") is not None:
                self.stop_details = delta["stop_details"]
            self._count(payload.get("usage"))
        elif kind == "message_stop":
            self.finished = True
            return self._final()
        elif kind == "error":
            raise self.in_band_error(payload)
        # ping, content_block_stop and event types added after this was written.
        return None

    def _count(self, usage: Any) -> None:
        # Counts in message_delta are cumulative, so the latest wins.
        if not isinstance(usage, dict):
            return
        if usage.get("input_tokens") is not None:
            self.input_tokens = (
                usage["input_tokens"]
                + (usage.get("cache_creation_input_tokens") or 0)
                + (usage.get("cache_read_input_tokens") or 0)
            )
        if usage.get("output_tokens") is not None:
            self.output_tokens = usage["output_tokens"]

    def _chunk(self, **fields: Any) -> AIMessageChunk:
        return AIMessageChunk(id=self.id, **fields)

    def _block_start(self, index: Any, start: dict[str, Any]) -> AIMessageChunk | None:
        if isinstance(index, int):
            self.blocks[index] = _Block(start)
        kind = start.get("type")
        if kind == "text" and start.get("text"):
            return self._chunk(content=start["text"])
        if kind == "tool_use":
            call = ToolCallChunk(name=start.get("name"), id=start.get("id"), index=index, args="")
            return self._chunk(tool_call_chunks=[call])
        if kind == "thinking" and start.get("thinking"):
            return self._chunk(reasoning=start["thinking"])
        return None

    def _delta(self, index: Any, delta: dict[str, Any]) -> AIMessageChunk | None:
        block = self.blocks.get(index) if isinstance(index, int) else None
        block_type = block.start.get("type") if block is not None else None
        kind = delta.get("type")
        if kind == "text_delta":
            piece = delta.get("text") or ""
            if block is not None:
                block.pieces.append(piece)
            return self._chunk(content=piece)
        if kind == "input_json_delta":
            piece = delta.get("partial_json") or ""
            if block is not None:
                block.pieces.append(piece)
            if block_type != "tool_use":
                return None  # a server tool's input: kept in the block, not a tool call
            return self._chunk(tool_call_chunks=[ToolCallChunk(args=piece, index=index)])
        if kind == "thinking_delta":
            piece = delta.get("thinking") or ""
            if block is not None:
                block.pieces.append(piece)
            return self._chunk(reasoning=piece)
        if block is None:
            return None
        if kind == "signature_delta":
            block.signature = delta.get("signature")
        elif kind == "citations_delta" and delta.get("citation") is not None:
            block.citations.append(delta["citation"])
        return None

    def _final(self) -> AIMessageChunk:
        metadata: dict[str, Any] = {
            "model_name": self.model,
            "stop_reason": self.stop_reason,
            "stop_sequence": self.stop_sequence,
        }
        if self.stop_details is not None:
            metadata["stop_details"] = self.stop_details
        blocks = [self.blocks[i] for i in sorted(self.blocks)]
        if any(b.start.get("type") not in _PLAIN_BLOCKS or b.citations for b in blocks):
            metadata["content_blocks"] = [b.whole() for b in blocks]
        usage = Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            total_tokens=self.input_tokens + self.output_tokens,
        )
        return self._chunk(content="", usage_metadata=usage, response_metadata=metadata)


def messages_to_anthropic(
    messages: list[BaseMessage],
) -> tuple[str | None, list[dict[str, Any]]]:
    """The ``system`` text and the ``messages`` list the Messages API takes.

    Raises:
        InvalidInputError: when there is no message besides system ones.
    """
    system = [m.content for m in messages if m.type == "system"]
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.type == "system":
            continue
        if isinstance(message, ToolMessage):
            block = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content,
            }
            out.append({"role": "user", "content": [block]})
        elif isinstance(message, AIMessage):
            if message.response_metadata.get("content_blocks"):
                out.append(
                    {"role": "assistant", "content": message.response_metadata["content_blocks"]}
                )
                continue
            if not message.tool_calls:
                out.append({"role": "assistant", "content": message.content})
                continue
            blocks: list[dict[str, Any]] = []
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            blocks += [
                {"type": "tool_use", "id": call.id, "name": call.name, "input": call.args}
                for call in message.tool_calls
            ]
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": "user", "content": message.content})
    if not out:
        raise InvalidInputError("the Messages API needs at least one non-system message")
    return ("\n\n".join(system) if system else None), out


class ChatAnthropic(HTTPChatModel):
    """Anthropic's Messages API (``POST /v1/messages``), streamed.

    The key comes from ``api_key`` or ``ANTHROPIC_API_KEY`` and is required for
    ``api.anthropic.com``; ``base_url`` (or ``ANTHROPIC_BASE_URL``) points elsewhere.
    ``tools``, ``tool_choice``, ``thinking``, ``top_k``, ``metadata`` and any other
    request field go in ``model_kwargs`` or as keyword arguments of a call; tools and
    ``tool_choice`` in OpenAI's shapes are sent in Anthropic's.

    Examples:
        >>> chat = ChatAnthropic(model="claude-sonnet-4-5", api_key="sk-ant-...")
        >>> chat.max_tokens, chat._ls_params()["ls_provider"]
        (1024, 'anthropic')
    """

    _ls_provider: ClassVar[str | None] = "anthropic"
    _default_base_url: ClassVar[str] = "https://api.anthropic.com"
    _base_url_env: ClassVar[str | None] = "ANTHROPIC_BASE_URL"
    _api_key_env: ClassVar[str | None] = "ANTHROPIC_API_KEY"
    _key_required_for: ClassVar[frozenset[str]] = frozenset({"api.anthropic.com"})
    _path: ClassVar[str] = "/v1/messages"
    _decoder = SSEDecoder

    #: The Messages API requires a limit.
    max_tokens: int | None = Field(default=1024, ge=1)

    def _tool_style(self) -> ToolStyle:
        return "anthropic"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "anthropic-version": _ANTHROPIC_VERSION}
        if self.api_key is not None:
            headers["x-api-key"] = self.api_key.get_secret_value()
        return headers

    def _payload(
        self, prompt: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        system, messages = messages_to_anthropic(prompt)
        payload: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens or 1024,
            "messages": messages,
        }
        if system is not None:
            payload["system"] = system
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        if stop:
            payload["stop_sequences"] = stop
        payload.update(self.model_kwargs)
        payload.update(kwargs)
        payload["stream"] = True
        return payload

    def _translator(self, request_id: str | None) -> AnthropicTranslator:
        return AnthropicTranslator(self._secrets(), request_id)
