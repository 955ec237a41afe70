"""Tools and tool_choice in any API's shape reach each API in its own."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from rxllm.errors import InvalidInputError
from rxllm.llms import ChatAnthropic, ChatOllama, ChatOpenAI, FakeListChatModel
from rxllm.llms._tools import in_style

SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}}
SHAPES: dict[Any, dict[str, Any]] = {
    "chat": {
        "type": "function",
        "function": {"name": "f", "description": "d", "parameters": SCHEMA},
    },
    "responses": {"type": "function", "name": "f", "description": "d", "parameters": SCHEMA},
    "anthropic": {"name": "f", "description": "d", "input_schema": SCHEMA},
}
CHOICES: dict[Any, dict[str, Any]] = {
    "chat": {"type": "function", "function": {"name": "f"}},
    "responses": {"type": "function", "name": "f"},
    "anthropic": {"type": "tool", "name": "f"},
}


@pytest.mark.parametrize("source", SHAPES)
@pytest.mark.parametrize("target", SHAPES)
def test_a_function_tool_and_its_choice_convert_between_the_three_shapes(
    source: Any, target: Any
) -> None:
    payload = {"tools": [SHAPES[source]], "tool_choice": CHOICES[source]}
    in_style(payload, target)
    assert payload == {"tools": [SHAPES[target]], "tool_choice": CHOICES[target]}


@pytest.mark.parametrize(
    ("given_", "chat", "anthropic"),
    [
        ("auto", "auto", {"type": "auto"}),
        ("none", "none", {"type": "none"}),
        ("required", "required", {"type": "any"}),
        ("any", "required", {"type": "any"}),
        ({"type": "any"}, "required", {"type": "any"}),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto",
         {"type": "auto", "disable_parallel_tool_use": True}),
    ],
)  # fmt: skip
def test_tool_choice_modes(given_: Any, chat: Any, anthropic: Any) -> None:
    for style, expected in (("chat", chat), ("responses", chat), ("anthropic", anthropic)):
        payload = {"tool_choice": given_}
        in_style(payload, style)  # type: ignore[arg-type]
        assert payload["tool_choice"] == expected


def test_a_providers_own_tool_and_an_unknown_choice_go_as_they_are() -> None:
    search = {"type": "web_search_20250305", "name": "web_search"}
    payload: dict[str, Any] = {"tools": [search], "tool_choice": {"type": "allowed_tools"}}
    in_style(payload, "anthropic")
    assert payload == {"tools": [search], "tool_choice": {"type": "allowed_tools"}}


def test_a_tool_without_parameters_takes_an_empty_object() -> None:
    payload: dict[str, Any] = {"tools": [{"type": "function", "function": {"name": "now"}}]}
    in_style(payload, "anthropic")
    assert payload["tools"] == [
        {"name": "now", "input_schema": {"type": "object", "properties": {}}}
    ]


def test_a_tool_in_the_apis_own_shape_goes_as_it_is() -> None:
    for style, tool in SHAPES.items():
        given_ = {**tool, "strict": True} if style != "chat" else {**tool, "extra": 1}
        payload: dict[str, Any] = {"tools": [given_]}
        in_style(payload, style)
        assert payload["tools"][0] is given_


@given(st.sampled_from(list(SHAPES)), st.sampled_from(list(SHAPES)))
def test_converting_twice_changes_nothing(source: Any, target: Any) -> None:
    once = {"tools": [SHAPES[source]], "tool_choice": CHOICES[source]}
    in_style(once, target)
    twice = {key: list(value) if isinstance(value, list) else value for key, value in once.items()}
    in_style(twice, target)
    assert twice == once


def test_bad_tools_are_refused_when_the_call_or_the_model_is_made() -> None:
    chat = ChatOpenAI(model="m", api_key="k")
    with pytest.raises(InvalidInputError, match="tools must be a list"):
        chat.observe("hi", tools={"name": "f"})
    with pytest.raises(InvalidInputError, match=r"tools\[0\] must be a dict"):
        chat.observe("hi", tools=["f"])
    with pytest.raises(ValidationError, match="tools must be a list"):  # as a bad field is
        ChatAnthropic(model="m", api_key="k", model_kwargs={"tools": "f"})


def test_each_chat_model_sends_its_apis_shape() -> None:
    tools = [SHAPES["chat"]]
    models: list[tuple[Any, str]] = [
        (ChatOpenAI(model="m", api_key="k"), "chat"),
        (ChatOpenAI(model="m", api_key="k", use_responses_api=True), "responses"),
        (ChatAnthropic(model="m", api_key="k"), "anthropic"),
        (ChatOllama(model="m"), "chat"),
        (FakeListChatModel(responses=["a"]), "chat"),
    ]
    for model, style in models:
        assert model._check_call_kwargs({"tools": tools})["tools"] == [SHAPES[style]]
    made = ChatAnthropic(model="m", api_key="k", model_kwargs={"tools": tools})
    assert made.model_kwargs["tools"] == [SHAPES["anthropic"]]
