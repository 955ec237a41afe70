"""Tools in the shape each API takes, whichever shape they were given in.

A function tool is a name, a description and a JSON schema of its parameters, written
three ways: OpenAI chat's ``{"type": "function", "function": {...}}``, the Responses
API's flat ``{"type": "function", "name": ...}`` and Anthropic's ``{"name": ...,
"input_schema": ...}``. ``tool_choice`` differs the same way. Every HTTP chat model takes
any of them in ``tools``/``tool_choice`` (in ``model_kwargs`` or a call's arguments) and
sends its own API's, so one list of tools works with every provider, as a model can
replace any other. A provider's own tools (Anthropic's web search, OpenAI's file search)
go to their API as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ..errors import InvalidInputError

__all__ = ["ToolStyle", "in_style"]

ToolStyle = Literal["chat", "responses", "anthropic"]

_CHOICES = {"auto": "auto", "none": "none", "required": "required", "any": "required"}
_ANTHROPIC_CHOICES = {"auto": "auto", "none": "none", "required": "any"}


def in_style(payload: dict[str, Any], style: ToolStyle) -> None:
    """Rewrite ``payload``'s ``tools`` and ``tool_choice``, if any, in ``style``."""
    tools = payload.get("tools")
    if tools is not None:
        if not isinstance(tools, list | tuple):
            raise InvalidInputError(f"tools must be a list, not {type(tools).__name__}")
        payload["tools"] = [_tool(tool, style, i) for i, tool in enumerate(tools)]
    choice = payload.get("tool_choice")
    if choice is not None:
        payload["tool_choice"] = _choice(choice, style)


def _function(tool: Mapping[str, Any]) -> tuple[ToolStyle, str, Any, Any] | None:
    """A function tool's shape, name, description and parameters; ``None`` for another
    tool."""
    nested = tool.get("function")
    if isinstance(nested, Mapping) and isinstance(nested.get("name"), str):
        return "chat", nested["name"], nested.get("description"), nested.get("parameters")
    if tool.get("type") == "function" and isinstance(tool.get("name"), str):
        return "responses", tool["name"], tool.get("description"), tool.get("parameters")
    if isinstance(tool.get("name"), str) and "input_schema" in tool:
        return "anthropic", tool["name"], tool.get("description"), tool["input_schema"]
    return None


def _tool(tool: Any, style: ToolStyle, index: int) -> Any:
    if not isinstance(tool, Mapping):
        raise InvalidInputError(f"tools[{index}] must be a dict, not {type(tool).__name__}")
    function = _function(tool)
    if function is None or function[0] == style:
        return tool  # the API's own shape, or a provider's own tool: as it is
    _, name, description, parameters = function
    # Anthropic requires an object schema; a tool without parameters takes none.
    body: dict[str, Any] = {"name": name}
    if description:
        body["description"] = description
    schema = parameters or {"type": "object", "properties": {}}
    if style == "anthropic":
        return {**body, "input_schema": schema}
    if style == "responses":
        return {"type": "function", **body, "parameters": schema}
    return {"type": "function", "function": {**body, "parameters": schema}}


def _choice(choice: Any, style: ToolStyle) -> Any:
    """``tool_choice`` in ``style``: a mode (auto, none, required/any) or one tool."""
    name: str | None = None
    mode: str | None = None
    if isinstance(choice, str):
        mode = _CHOICES.get(choice)
    elif isinstance(choice, Mapping):
        kind, nested = choice.get("type"), choice.get("function")
        if kind == "function" and isinstance(nested, Mapping):
            name = nested.get("name")
        elif kind in ("function", "tool"):
            name = choice.get("name")
        elif style == "anthropic":
            return choice  # Anthropic's own modes, with their options
        else:
            mode = _CHOICES.get(str(kind))
    if name is None and mode is None:
        return choice  # not one we know: the API says whether it takes it
    if style == "anthropic":
        return {"type": "tool", "name": name} if name else {"type": _ANTHROPIC_CHOICES[mode]}  # type: ignore[index]
    if name is None:
        return mode
    if style == "responses":
        return {"type": "function", "name": name}
    return {"type": "function", "function": {"name": name}}
