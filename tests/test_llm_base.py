"""Custom providers: any one hook gives every method; the default streams one chunk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import Field, ValidationError
from reactivex import operators as ops

from rxllm import AIMessage, AIMessageChunk, GenerationChunk, HumanMessage, InvalidInputError
from rxllm.llms import BaseChatModel, BaseLLM
from rxllm.schema import BaseMessage


class CallOnly(BaseLLM):
    def _call(self, prompt: str, stop: list[str] | None = None, **kwargs: Any) -> str:
        return f"{prompt}|{stop}|{sorted(kwargs)}"


class ACallOnly(BaseLLM):
    async def _acall(self, prompt: str, stop: list[str] | None = None, **kwargs: Any) -> str:
        await asyncio.sleep(0)
        return prompt.upper()


class StreamOnly(BaseLLM):
    def _stream(
        self, prompt: str, stop: list[str] | None = None, **kwargs: Any
    ) -> Iterator[GenerationChunk]:
        for word in prompt.split():
            yield GenerationChunk(text=word)


class AStreamOnly(BaseLLM):
    async def _astream(
        self, prompt: str, stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[GenerationChunk]:
        for word in prompt.split():
            yield GenerationChunk(text=word)


def chunks(llm: BaseLLM, prompt: str) -> list[str]:
    return [c.text for c in llm.observe(prompt).pipe(ops.to_list()).run()]


def test_call_only_streams_one_chunk_through_every_bridge() -> None:
    llm = CallOnly()
    assert chunks(llm, "p") == ["p|None|[]"]
    assert list(llm.stream("p", stop=["x"], top_k=3)) == ["p|['x']|['top_k']"]
    assert llm.invoke("p") == "p|None|[]"


async def test_acall_only_streams_one_chunk() -> None:
    llm = ACallOnly()
    assert [c async for c in llm.astream("abc")] == ["ABC"]
    assert chunks(llm, "abc") == ["ABC"]
    assert list(llm.stream("abc")) == ["ABC"]


def test_stream_only_streams_each_chunk() -> None:
    assert list(StreamOnly().stream("a b c")) == ["a", "b", "c"]
    assert StreamOnly().invoke("a b") == "ab"


async def test_astream_only_streams_each_chunk() -> None:
    assert [c async for c in AStreamOnly().astream("a b c")] == ["a", "b", "c"]
    assert list(AStreamOnly().stream("a b c")) == ["a", "b", "c"]


def test_sync_stream_is_closed_when_the_consumer_stops() -> None:
    closed: list[bool] = []

    class Endless(BaseLLM):
        def _stream(
            self, prompt: str, stop: list[str] | None = None, **kwargs: Any
        ) -> Iterator[GenerationChunk]:
            try:
                while True:
                    yield GenerationChunk(text="x")
            finally:
                closed.append(True)

    for _ in Endless().stream("go"):
        break
    from .conftest import wait_until

    wait_until(lambda: closed == [True])


def test_a_model_without_any_hook_is_a_type_error() -> None:
    class Nothing(BaseLLM):
        pass

    with pytest.raises(TypeError, match="must implement at least one of"):
        Nothing().invoke("x")


def test_call_returning_the_wrong_type_is_a_type_error() -> None:
    class Wrong(BaseLLM):
        def _call(self, prompt: str, stop: list[str] | None = None, **kwargs: Any) -> str:
            return 42  # type: ignore[return-value]

    with pytest.raises(TypeError, match="must return a str"):
        Wrong().invoke("x")


@pytest.mark.parametrize("bad", [42, None, b"bytes", 3.5, {"no": "role"}, [1, 2], ""])
def test_bad_prompts_are_refused_before_any_call(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        CallOnly().observe(bad)


@pytest.mark.parametrize("stop", ["x", [1], 5])
def test_bad_stop_is_refused(stop: object) -> None:
    with pytest.raises(InvalidInputError, match="stop must be a list of strings"):
        CallOnly().stream("p", stop=stop)


def test_messages_become_a_prompt_for_an_llm() -> None:
    result = CallOnly().invoke([("system", "be brief"), ("human", "hi"), ("ai", "hello")])
    assert result.startswith("System: be brief\nHuman: hi\nAI: hello|")


def test_unknown_constructor_parameters_are_rejected() -> None:
    with pytest.raises(ValidationError):
        CallOnly(temprature=0.5)  # type: ignore[call-arg]


class EchoChat(BaseChatModel):
    def _call(self, prompt: list[BaseMessage], stop: list[str] | None = None, **kw: Any) -> Any:
        return AIMessage(content=" / ".join(m.content for m in prompt), id="m1")


class StreamingChat(BaseChatModel):
    async def _astream(
        self, prompt: list[BaseMessage], stop: list[str] | None = None, **kw: Any
    ) -> AsyncIterator[AIMessageChunk]:
        yield AIMessageChunk(content="Hel", id="m2")
        yield AIMessageChunk(content="lo", usage_metadata={"input_tokens": 3})


def test_chat_default_streaming_yields_one_message_chunk() -> None:
    stream = list(EchoChat().stream([HumanMessage(content="a"), ("ai", "b")]))
    assert len(stream) == 1
    assert isinstance(stream[0], AIMessageChunk)
    assert stream[0].content == "a / b"
    assert stream[0].id == "m1"


def test_chat_invoke_returns_the_merged_message() -> None:
    result = StreamingChat().invoke("hi")
    assert type(result) is AIMessage
    assert result.content == "Hello"
    assert result.id == "m2"
    assert result.usage_metadata is not None
    assert result.usage_metadata.input_tokens == 3


def test_chat_input_shapes() -> None:
    chat = EchoChat()
    assert chat.invoke("hi").content == "hi"
    assert chat.invoke({"role": "user", "content": "dict"}).content == "dict"
    assert chat.invoke([{"role": "system", "content": "s"}, "u"]).content == "s / u"
    with pytest.raises(InvalidInputError, match="unknown message role"):
        chat.invoke([("wizard", "x")])
    with pytest.raises(InvalidInputError, match="empty"):
        chat.invoke([])


def test_exiting_right_after_breaking_out_of_a_blocking_stream_is_clean(tmp_path: Any) -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "script.py"
    script.write_text(
        "import time\n"
        "from rxllm import GenerationChunk\n"
        "from rxllm.llms import BaseLLM\n"
        "class Slow(BaseLLM):\n"
        "    def _stream(self, prompt, stop=None, **kwargs):\n"
        "        for word in ['a', 'b', 'c', 'd']:\n"
        "            time.sleep(0.3)\n"
        "            yield GenerationChunk(text=word)\n"
        "for chunk in Slow().stream('go'):\n"
        "    print(chunk, flush=True)\n"
        "    break\n"
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=root,
        env={"PYTHONPATH": str(root), "PATH": ""},
    )  # fmt: skip
    assert result.stdout == "a\n"
    assert result.returncode == 0
    assert "Traceback" not in result.stderr


class Limited(BaseLLM):
    """A custom model with a field of its own, which a call may override."""

    max_tokens: int = Field(default=5, ge=1)

    def _call(self, prompt: str, stop: list[str] | None = None, **kwargs: Any) -> str:
        return repr(sorted(kwargs.items()))


def test_a_field_given_to_a_call_obeys_the_fields_rules() -> None:
    llm = Limited()
    for bad in (0, -5, "lots", None):
        with pytest.raises(InvalidInputError, match=f"invalid max_tokens={bad!r}"):
            llm.observe("p", max_tokens=bad)
    assert llm.invoke("p", max_tokens="7") == "[('max_tokens', 7)]"  # as validated
    assert llm.invoke("p", max_tokens=7, seed=1) == "[('max_tokens', 7), ('seed', 1)]"
    assert llm.max_tokens == 5  # the model itself is unchanged


@pytest.mark.parametrize("model", [Limited(), CallOnly(), EchoChat()])
def test_the_name_of_a_model_is_not_a_call_argument(model: Any) -> None:
    with pytest.raises(InvalidInputError, match="name is a setting of the model"):
        model.invoke("p", name="other")


def test_a_custom_model_gets_unknown_keyword_arguments_as_they_are() -> None:
    assert Limited().invoke("p", top_k=3, grammar=["x"]) == "[('grammar', ['x']), ('top_k', 3)]"
