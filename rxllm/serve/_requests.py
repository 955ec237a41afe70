"""What each served API's request says, checked and turned into one rxllm call.

One pydantic model per API (OpenAI chat, completions and Responses, Anthropic Messages,
the AI SDK's ``useChat``), each allowing the fields its API allows and this server does
not use, as the APIs themselves accept them. ``parse`` validates a request body and
returns a ``Call``: the conversation (or the prompt), the call's parameters in rxllm's
names, and how to answer. A body that does not fit is an ``InvalidInputError`` naming
the field, which the app answers with a 400 in the API's own error shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InvalidInputError
from ..schema import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolCall, ToolMessage

__all__ = ["Call", "parse"]


class _Loose(BaseModel):
    """A request object: fields the API has and the server does not use are allowed."""

    model_config = ConfigDict(extra="allow")


# -- OpenAI chat completions ---------------------------------------------------------


class _Part(_Loose):
    type: str
    text: str | None = None


class _Function(_Loose):
    name: str
    arguments: str = ""


class _ChatToolCall(_Loose):
    id: str | None = None
    type: str = "function"
    function: _Function


class _ChatMessage(_Loose):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[_Part] | None = None
    name: str | None = None
    tool_calls: list[_ChatToolCall] | None = None
    tool_call_id: str | None = None


class _StreamOptions(_Loose):
    include_usage: bool = False


class _Common(_Loose):
    model: str | None = None
    stream: bool = False
    temperature: float | None = Field(None, ge=0)
    tools: list[dict[str, Any]] | None = None


class ChatRequest(_Common):
    """``POST /v1/chat/completions``."""

    messages: list[_ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    n: int | None = Field(None, ge=1, le=1)
    stream_options: _StreamOptions | None = None


class CompletionRequest(_Common):
    """``POST /v1/completions``."""

    prompt: str | list[str]
    max_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    n: int | None = Field(None, ge=1, le=1)
    stream_options: _StreamOptions | None = None


# -- OpenAI Responses ----------------------------------------------------------------


class ResponsesRequest(_Common):
    """``POST /v1/responses``: ``input`` is a string or a list of input items."""

    input: str | list[dict[str, Any]]
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1)


# -- Anthropic Messages --------------------------------------------------------------


class _Block(_Loose):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: str | list[_Part] | None = None


class _AnthropicMessage(_Loose):
    role: Literal["user", "assistant"]
    content: str | list[_Block]


class MessagesRequest(_Common):
    """``POST /v1/messages``: ``max_tokens`` is required, as Anthropic's API has it."""

    messages: list[_AnthropicMessage] = Field(min_length=1)
    system: str | list[_Part] | None = None
    max_tokens: int = Field(ge=1)
    stop_sequences: list[str] | None = None


# -- AI SDK useChat ------------------------------------------------------------------


class _UIMessage(_Loose):
    id: str | None = None
    role: Literal["system", "user", "assistant"]
    parts: list[_Part]


class UIChatRequest(_Loose):
    """``POST /api/chat``: what ``useChat``'s default transport sends."""

    id: str | None = None
    messages: list[_UIMessage] = Field(min_length=1)
    model: str | None = None


# -- the call ------------------------------------------------------------------------


@dataclass
class Call:
    """One request, in rxllm's terms."""

    #: The conversation (chat APIs) or ``None``.
    messages: list[BaseMessage] | None
    #: The prompt (``/v1/completions``) or ``None``.
    prompt: str | None
    #: The call's parameters in rxllm's names (``temperature``, ``max_tokens``, ``stop``,
    #: ``tools``), only those the request gave.
    params: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    #: The model the request names, if it names one.
    model: str | None = None
    #: OpenAI's ``stream_options.include_usage``: a usage chunk ends the stream.
    include_usage: bool = False
    #: The AI SDK chat's id, under which its stream can be resumed.
    chat_id: str | None = None


def _text(content: str | list[_Part] | None, where: str) -> str:
    """The text of a message's content: a string, or text parts joined."""
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if part.type in ("text", "input_text", "output_text"):
            texts.append(part.text or "")
        else:
            raise InvalidInputError(
                f"{where}: only text content is served, not a {part.type!r} part"
            )
    return "".join(texts)


def _arguments(text: str, where: str) -> dict[str, Any]:
    try:
        args = json.loads(text) if text.strip() else {}
    except ValueError:
        raise InvalidInputError(f"{where}: tool call arguments are not JSON") from None
    if not isinstance(args, dict):
        raise InvalidInputError(f"{where}: tool call arguments must be a JSON object")
    return args


def _stop(stop: str | list[str] | None) -> list[str] | None:
    return [stop] if isinstance(stop, str) else stop


def _params(**given: Any) -> dict[str, Any]:
    return {name: value for name, value in given.items() if value is not None}


def _chat(body: ChatRequest) -> Call:
    messages: list[BaseMessage] = []
    for i, m in enumerate(body.messages):
        where = f"messages[{i}]"
        text = _text(m.content, where)
        if m.role in ("system", "developer"):
            messages.append(SystemMessage(content=text))
        elif m.role == "user":
            messages.append(HumanMessage(content=text, name=m.name))
        elif m.role == "assistant":
            calls = [
                ToolCall(
                    name=c.function.name, args=_arguments(c.function.arguments, where), id=c.id
                )
                for c in m.tool_calls or ()
            ]
            messages.append(AIMessage(content=text, tool_calls=calls))
        else:
            if m.tool_call_id is None:
                raise InvalidInputError(f"{where}: a tool message needs a tool_call_id")
            messages.append(ToolMessage(content=text, tool_call_id=m.tool_call_id))
    usage = body.stream_options is not None and body.stream_options.include_usage
    params = _params(
        temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        stop=_stop(body.stop),
        tools=body.tools,
    )
    return Call(messages, None, params, body.stream, body.model, usage)


def _completion(body: CompletionRequest) -> Call:
    prompt = body.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise InvalidInputError("prompt: one prompt per request is served")
        prompt = prompt[0]
    usage = body.stream_options is not None and body.stream_options.include_usage
    params = _params(
        temperature=body.temperature, max_tokens=body.max_tokens, stop=_stop(body.stop)
    )
    return Call(None, prompt, params, body.stream, body.model, usage)


def _responses(body: ResponsesRequest) -> Call:
    messages: list[BaseMessage] = []
    if body.instructions:
        messages.append(SystemMessage(content=body.instructions))
    if isinstance(body.input, str):
        messages.append(HumanMessage(content=body.input))
    for i, item in enumerate(body.input if isinstance(body.input, list) else ()):
        where = f"input[{i}]"
        kind = item.get("type", "message")
        try:
            if kind == "message":
                message = _ChatMessage.model_validate(item)
                content = _text(message.content, where)
                role = message.role
                if role in ("system", "developer"):
                    messages.append(SystemMessage(content=content))
                elif role == "assistant":
                    messages.append(AIMessage(content=content))
                elif role == "user":
                    messages.append(HumanMessage(content=content))
                else:
                    raise InvalidInputError(f"{where}: a message's role is not {role!r}")
            elif kind == "function_call":
                call = ToolCall(
                    name=item["name"],
                    args=_arguments(item.get("arguments", ""), where),
                    id=item.get("call_id"),
                )
                messages.append(AIMessage(tool_calls=[call]))
            elif kind == "function_call_output":
                output = item["output"]
                text = output if isinstance(output, str) else json.dumps(output)
                messages.append(ToolMessage(content=text, tool_call_id=item["call_id"]))
            else:
                raise InvalidInputError(f"{where}: {kind!r} items are not served")
        except (KeyError, TypeError, ValidationError) as exc:
            raise InvalidInputError(f"{where}: not a valid {kind} item ({exc})") from None
    params = _params(
        temperature=body.temperature, max_tokens=body.max_output_tokens, tools=body.tools
    )
    return Call(messages, None, params, body.stream, body.model)


def _anthropic(body: MessagesRequest) -> Call:
    messages: list[BaseMessage] = []
    if body.system:
        messages.append(SystemMessage(content=_text(body.system, "system")))
    for i, m in enumerate(body.messages):
        where = f"messages[{i}]"
        content = m.content
        blocks = [_Block(type="text", text=content)] if isinstance(content, str) else content
        texts, calls = [], []
        for block in blocks:
            if block.type == "text":
                texts.append(block.text or "")
            elif block.type == "tool_use" and m.role == "assistant":
                calls.append(ToolCall(name=block.name or "", args=block.input or {}, id=block.id))
            elif block.type == "tool_result" and m.role == "user":
                if block.tool_use_id is None:
                    raise InvalidInputError(f"{where}: a tool_result needs a tool_use_id")
                messages.append(
                    ToolMessage(content=_text(block.content, where), tool_call_id=block.tool_use_id)
                )
            else:
                raise InvalidInputError(f"{where}: {block.type!r} blocks are not served")
        if m.role == "assistant":
            messages.append(AIMessage(content="".join(texts), tool_calls=calls))
        elif texts:
            messages.append(HumanMessage(content="".join(texts)))
    params = _params(
        temperature=body.temperature,
        max_tokens=body.max_tokens,
        stop=body.stop_sequences,
        tools=body.tools,
    )
    return Call(messages, None, params, body.stream, body.model)


#: UI message parts that say how a message was made, not what it says: left out.
_UI_STRUCTURE = ("step-start", "reasoning", "source-url", "source-document")


def _ui_chat(body: UIChatRequest) -> Call:
    messages: list[BaseMessage] = []
    for i, m in enumerate(body.messages):
        texts = []
        for part in m.parts:
            if part.type == "text":
                texts.append(part.text or "")
            elif part.type in _UI_STRUCTURE or part.type.startswith(("data-", "tool-")):
                continue
            else:
                raise InvalidInputError(
                    f"messages[{i}]: only text is served, not a {part.type!r} part"
                )
        text = "".join(texts)
        role = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}[m.role]
        messages.append(role(content=text))
    return Call(messages, None, stream=True, model=body.model, chat_id=body.id)


_PARSERS: dict[str, tuple[type[BaseModel], Callable[[Any], Call]]] = {
    "openai-chat": (ChatRequest, _chat),
    "openai-completions": (CompletionRequest, _completion),
    "openai-responses": (ResponsesRequest, _responses),
    "anthropic": (MessagesRequest, _anthropic),
    "vercel-ui": (UIChatRequest, _ui_chat),
}


def _problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def parse(format: str, body: bytes) -> Call:
    """The call a request body asks for, in the API that ``format`` serves.

    Raises:
        InvalidInputError: for a body that is not JSON, or not this API's request;
            the message names the first field at fault (never quoting its value).
    """
    model, convert = _PARSERS[format]
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InvalidInputError(f"the request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInputError("the request body must be a JSON object")
    try:
        request = model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(f"invalid request: {_problem(exc)}") from None
    return convert(request)
