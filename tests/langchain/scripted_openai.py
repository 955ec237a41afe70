"""An OpenAI-compatible chat endpoint for the scripted server, made of recorded streams.

``reply_to(request)`` answers a ``/v1/chat/completions`` request with the event shapes of
two real recordings (``tests/llms/recorded/openai``): ``chat_tool_call`` when the request
binds tools and the conversation does not end with a tool result, ``chat_text_usage``
otherwise. Every field of the recorded events is kept (ids, model, fingerprint, usage,
the way arguments arrive in pieces); what the request decides is put in: the tool it
names (or its first), arguments that fit the tool's JSON schema, and, for a
``response_format`` with a JSON schema, content that fits it. This is how LangChain's
standard tool-calling and structured-output tests run without a model that can do it.
"""

from __future__ import annotations

import json
from typing import Any

from tests.llms.recorded import recorded_path
from tests.servers.scripted import Recorded, Reply

__all__ = ["example", "reply_to", "sse"]

#: A string for every string argument: non-ASCII, as a model's may be.
TEXT = "你好啊集团 cats"


def _events(name: str) -> list[dict[str, Any]]:
    data = recorded_path("openai", name).read_text(encoding="utf-8")
    lines = [line[len("data: ") :] for line in data.splitlines() if line.startswith("data: ")]
    return [json.loads(line) for line in lines if line != "[DONE]"]


_TOOL_CALL = _events("chat_tool_call")
_TEXT = _events("chat_text_usage")


def example(schema: dict[str, Any], text: str = TEXT, defs: dict[str, Any] | None = None) -> Any:
    """A value that fits a JSON schema (every property given, first of any ``anyOf``),
    with ``text`` for its strings."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return example(defs[schema["$ref"].rsplit("/", 1)[-1]], text, defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return example(options[0], text, defs)
    kind = schema.get("type", "object")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: example(sub, text, defs) for name, sub in properties.items()}
    if kind == "array":
        return [example(schema.get("items", {}), text, defs)]
    return {"integer": 3, "number": 3.0, "boolean": True}.get(kind, text)


def _quoted(body: dict[str, Any]) -> str:
    """What the last message quotes ('...'), as a model would pass a name it was given."""
    content = (body.get("messages") or [{}])[-1].get("content")
    if isinstance(content, str) and content.count("'") >= 2:
        return content.split("'")[1]
    return TEXT


def _pieces(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _with_delta(template: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    event = json.loads(json.dumps(template))
    event["choices"][0]["delta"] = delta
    return event


def _tool_call(tool: dict[str, Any], text: str) -> list[dict[str, Any]]:
    first, piece, *_, finish, usage = _TOOL_CALL
    function = tool["function"]
    opening = json.loads(json.dumps(first))
    call = opening["choices"][0]["delta"]["tool_calls"][0]
    call["function"]["name"] = function["name"]
    arguments = json.dumps(example(function.get("parameters", {}), text), ensure_ascii=False)
    pieces = [
        _with_delta(piece, {"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
        for part in _pieces(arguments)
    ]
    return [opening, *pieces, finish, usage]


def _text(content: str | None) -> list[dict[str, Any]]:
    if content is None:
        return _TEXT
    opening, piece, *_, finish, usage = _TEXT
    return [
        opening,
        *(_with_delta(piece, {"content": part}) for part in _pieces(content)),
        finish,
        usage,
    ]


def _chosen(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    messages = body.get("messages") or [{}]
    if not tools or choice == "none" or messages[-1].get("role") == "tool":
        return None
    if isinstance(choice, dict):
        named = choice["function"]["name"]
        return next(tool for tool in tools if tool["function"]["name"] == named)
    return dict(tools[0])


def sse(events: list[dict[str, Any]]) -> list[bytes]:
    """Events as SSE bytes, one piece each, ending with ``[DONE]``."""
    return [f"data: {json.dumps(e, ensure_ascii=False)}\n\n".encode() for e in events] + [
        b"data: [DONE]\n\n"
    ]


def reply_to(request: Recorded) -> Reply:
    """The reply to one chat completions request (see the module)."""
    body = request.json()
    tool = _chosen(body)
    if tool is not None:
        return Reply(body=sse(_tool_call(tool, _quoted(body))))
    response_format = body.get("response_format") or {}
    content = None
    if response_format.get("type") == "json_schema":
        content = json.dumps(example(response_format["json_schema"]["schema"]), ensure_ascii=False)
    elif response_format.get("type") == "json_object":
        content = json.dumps({"setup": TEXT, "punchline": TEXT}, ensure_ascii=False)
    return Reply(body=sse(_text(content)))
