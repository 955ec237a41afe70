"""``ChatRxLLM`` and ``RxLLM``: rxllm models as native ``langchain_core`` models.

LangChain's hooks (``_stream``/``_astream``/``_generate``/``_agenerate``) are bridges over
the rxllm model's ``observe``, so a LangChain consumer that stops early disposes the
subscription and the HTTP response is closed at once, inside ``stream``, ``astream``,
``astream_events``, ``batch``, ``with_retry`` and ``with_fallbacks`` alike. LangChain's
callbacks see the chunks as LangChain's own models report them.
"""

from __future__ import annotations

from collections.abc import (
    AsyncIterator,
    Callable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import aclosing, closing
from operator import itemgetter
from typing import Any, ClassVar, Literal, cast

import reactivex
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel as LCBaseChatModel
from langchain_core.language_models import BaseLLM as LCBaseLLM
from langchain_core.language_models import LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage as LCAIMessage
from langchain_core.messages import BaseMessage as LCBaseMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    ChatResult,
    Generation,
    LLMResult,
)
from langchain_core.outputs import GenerationChunk as LCGenerationChunk
from langchain_core.runnables import Runnable as LCRunnable
from langchain_core.runnables import RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from reactivex import Observable
from reactivex import operators as ops

from .. import aiterate, iterate
from ..errors import InvalidInputError
from ..llms import (
    BaseChatModel,
    BaseLanguageModel,
    BaseLLM,
    ChatAnthropic,
    ChatLlamaCpp,
    ChatOllama,
    ChatOpenAI,
    LlamaCpp,
    Ollama,
    OpenAI,
)
from ..schema import (
    AIMessageChunk,
    GenerationChunk,
    merge_generation_chunks,
    merge_message_chunks,
)
from ._convert import (
    chunk_to_langchain,
    generation_to_langchain,
    message_to_langchain,
    messages_from_langchain,
)

__all__ = ["PROVIDERS", "ChatRxLLM", "RxLLM", "to_langchain"]

PROVIDERS = ("openai", "anthropic", "ollama", "llamacpp")
"""The ``provider`` names an adapter built from parameters takes (default ``llamacpp``,
the embedded model)."""

_CHAT_CLASSES: dict[str, type[BaseChatModel]] = {
    "openai": ChatOpenAI,
    "anthropic": ChatAnthropic,
    "ollama": ChatOllama,
    "llamacpp": ChatLlamaCpp,
}
_LLM_CLASSES: dict[str, type[BaseLLM]] = {"openai": OpenAI, "ollama": Ollama, "llamacpp": LlamaCpp}

#: The parameters LangChain gives any model; the embedded model makes no connection, so
#: the last four do not apply to it and are not passed on.
_PARAMS = (
    "provider",
    "model",
    "temperature",
    "max_tokens",
    "stop",
    "model_kwargs",
    "timeout",
    "max_retries",
    "api_key",
    "base_url",
)
_NETWORK = frozenset({"timeout", "max_retries", "api_key", "base_url"})


class _Adapter(BaseModel):
    """The fields and the construction both adapters share."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    #: The rxllm model every call goes through.
    rxllm_model: Any = Field(default=None, exclude=True)
    #: Which rxllm provider to build when no ``rxllm_model`` is given: one of ``PROVIDERS``.
    provider: str | None = None
    #: The provider's model name (for ``llamacpp``: the GGUF file; default: embedded).
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    #: Seconds; rxllm's httpx connect/read timeout.
    timeout: float | None = None
    max_retries: int | None = None
    api_key: SecretStr | None = None
    base_url: str | None = None
    #: Passed to the provider's ``model_kwargs`` (request fields; llama.cpp's ``seed``).
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    #: LangChain's switch: with ``True``, ``invoke`` streams (and callbacks see tokens).
    streaming: bool = False

    _classes: ClassVar[Mapping[str, type[BaseLanguageModel[Any, Any, Any]]]]
    _kind: ClassVar[str]

    @model_validator(mode="after")
    def _build(self) -> _Adapter:
        given = [name for name in _PARAMS if name in self.model_fields_set]
        if self.rxllm_model is not None:
            base = BaseChatModel if self._kind == "chat" else BaseLLM
            if not isinstance(self.rxllm_model, base):
                raise ValueError(
                    f"rxllm_model must be an rxllm {base.__name__}, "
                    f"not {type(self.rxllm_model).__name__}"
                )
            if given:
                raise ValueError(
                    f"give rxllm_model or parameters ({', '.join(given)}) to build one, not both"
                )
            return self
        provider = self.provider or "llamacpp"
        if provider not in self._classes:
            raise ValueError(
                f"unknown provider {provider!r}; expected one of {', '.join(self._classes)}"
            )
        params: dict[str, Any] = {
            name: getattr(self, name)
            for name in ("temperature", "max_tokens", "stop", "model_kwargs", *_NETWORK)
            if getattr(self, name) not in (None, [], {})
        }
        if self.model is not None:
            params["model_path" if provider == "llamacpp" else "model"] = self.model
        if provider == "llamacpp":
            params = {name: value for name, value in params.items() if name not in _NETWORK}
        self.rxllm_model = self._classes[provider](**params)
        return self

    @property
    def _rxllm(self) -> BaseLanguageModel[Any, Any, Any]:
        return cast(BaseLanguageModel[Any, Any, Any], self.rxllm_model)

    @property
    def _llm_type(self) -> str:
        return f"rxllm-{self._rxllm._ls_params().get('ls_provider', 'custom')}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        params = self._rxllm._ls_params()
        return {"provider": params.get("ls_provider"), "model_name": params.get("ls_model_name")}

    def _ls_params_for(
        self, model_type: Literal["chat", "llm"], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> LangSmithParams:
        """LangChain's ``ls_*`` tracing parameters: the rxllm model's, with a call's
        overrides (``model``, ``temperature``, ``max_tokens``, ``stop``) winning."""
        base = self._rxllm._ls_params()
        params = LangSmithParams(ls_provider=base.get("ls_provider", "rxllm"))
        params["ls_model_type"] = model_type
        name = kwargs.get("model") or base.get("ls_model_name")
        if name is not None:
            params["ls_model_name"] = str(name)
        temperature = kwargs.get("temperature", base.get("ls_temperature"))
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", base.get("ls_max_tokens"))
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        stop_sequences = stop or base.get("ls_stop")
        if stop_sequences:
            params["ls_stop"] = list(stop_sequences)
        return params

    def _observe(
        self, input: Any, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Observable[Any]:
        """The rxllm model's Observable for one call; LangChain's ``stop`` only when given,
        so the model's own applies otherwise."""
        call = dict(kwargs)  # tools in OpenAI's shape: each model sends its API's
        if stop is not None:
            call["stop"] = stop
        return self._rxllm.observe(input, **call)


class ChatRxLLM(_Adapter, LCBaseChatModel):
    """An rxllm chat model as a LangChain chat model; made by ``to_langchain``.

    Built from parameters it makes its own rxllm model:
    ``ChatRxLLM(provider="openai", model="gpt-4o-mini", temperature=0, base_url=...)``;
    ``ChatRxLLM()`` is the embedded SmolLM2 model (``provider="llamacpp"``), for which
    ``timeout``, ``max_retries``, ``api_key`` and ``base_url`` do not apply and are not
    passed on. A setting these parameters do not cover goes on the rxllm model:
    ``to_langchain(ChatLlamaCpp(n_ctx=4096))``.

    Tools bound with ``bind_tools`` are sent in the provider's own format; structured
    output is made with a tool call (``method="function_calling"``, the default), a JSON
    schema response format (``"json_schema"``) or JSON mode (``"json_mode"``).
    """

    model_config = _Adapter.model_config  # LangChain's own would accept unknown fields

    _classes = _CHAT_CLASSES
    _kind = "chat"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return self._ls_params_for("chat", stop, kwargs)

    def _stream(
        self,
        messages: list[LCBaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        source = self._observe(messages_from_langchain(messages), stop, kwargs)
        with closing(iterate(source)) as chunks:
            for chunk in chunks:
                yield ChatGenerationChunk(message=chunk_to_langchain(chunk))

    async def _astream(
        self,
        messages: list[LCBaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        source = self._observe(messages_from_langchain(messages), stop, kwargs)
        async with aclosing(aiterate(source)) as chunks:
            async for chunk in chunks:
                yield ChatGenerationChunk(message=chunk_to_langchain(chunk))

    def _generate(
        self,
        messages: list[LCBaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        source = self._observe(messages_from_langchain(messages), stop, kwargs)
        return _chat_result(list(iterate(source)))

    async def _agenerate(
        self,
        messages: list[LCBaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        source = self._observe(messages_from_langchain(messages), stop, kwargs)
        async with aclosing(aiterate(source)) as chunks:
            return _chat_result([chunk async for chunk in chunks])

    def bind_tools(
        self,
        tools: Sequence[Mapping[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> LCRunnable[LanguageModelInput, LCAIMessage]:
        """This model with ``tools`` sent on every call.

        Args:
            tools: LangChain tools, pydantic classes, TypedDicts, functions or OpenAI
                tool dicts (anything ``convert_to_openai_tool`` takes).
            tool_choice: ``"auto"``, ``"none"``, ``"any"``/``"required"`` (some tool),
                a tool's name, ``True`` (the one tool given), or a provider's dict.
        """
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None and tool_choice is not False:
            kwargs["tool_choice"] = _openai_tool_choice(tool_choice, formatted)
        return self.bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: Mapping[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> LCRunnable[LanguageModelInput, Any]:
        """This model returning objects of ``schema`` (a pydantic class, a TypedDict or a
        JSON schema dict; the last two give dicts), parsed from its reply.

        Partial objects stream as the reply does with ``function_calling``.

        Args:
            include_raw: return ``{"raw": message, "parsed": ..., "parsing_error": ...}``
                instead of raising when the reply does not parse.
            method: ``"function_calling"`` (a forced tool call), ``"json_schema"`` (the
                OpenAI-compatible ``response_format``) or ``"json_mode"``.
            strict: ask the provider to follow the schema exactly.

        Raises:
            InvalidInputError: for an unknown method or argument, or a method the
                provider does not have.
        """
        if kwargs:
            raise InvalidInputError(f"with_structured_output does not take {sorted(kwargs)}")
        pydantic_schema = isinstance(schema, type) and _is_pydantic(schema)
        # Popped by LangChain before our hooks, and shown to callbacks (tracing).
        traced = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
        model: LCRunnable[LanguageModelInput, Any]
        parser: LCRunnable[Any, Any]
        if method == "function_calling":
            tool = convert_to_openai_tool(schema, strict=strict)
            name = tool["function"]["name"]
            model = self.bind_tools([tool], tool_choice=name, ls_structured_output_format=traced)
            parser = (
                PydanticToolsParser(tools=[cast(type, schema)], first_tool_only=True)
                if pydantic_schema
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        elif method in ("json_schema", "json_mode"):
            if isinstance(self.rxllm_model, ChatAnthropic):
                raise InvalidInputError(f"Anthropic has no {method}; use method='function_calling'")
            if method == "json_schema":
                function = convert_to_openai_tool(schema, strict=strict)["function"]
                json_schema = {"name": function["name"], "schema": function["parameters"]}
                if strict is not None:
                    json_schema["strict"] = strict
                response_format: dict[str, Any] = {
                    "type": "json_schema",
                    "json_schema": json_schema,
                }
            else:
                response_format = {"type": "json_object"}
            model = self.bind(response_format=response_format, ls_structured_output_format=traced)
            parser = (
                PydanticOutputParser(pydantic_object=cast(Any, schema))
                if pydantic_schema
                else JsonOutputParser()
            )
        else:
            raise InvalidInputError(
                f"unknown method {method!r}; expected function_calling, json_schema or json_mode"
            )
        if not include_raw:
            return model | parser
        parsed = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        unparsed = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=model) | parsed.with_fallbacks(
            [unparsed], exception_key="parsing_error"
        )


def _is_pydantic(schema: type) -> bool:
    """A pydantic class, v2 or v1 (LangChain's tests use both)."""
    try:
        from pydantic import v1
    except ImportError:  # pragma: no cover - pydantic 2 always has it
        return issubclass(schema, BaseModel)
    return issubclass(schema, BaseModel | v1.BaseModel)


def _chat_result(chunks: list[AIMessageChunk]) -> ChatResult:
    message = merge_message_chunks(chunks).to_message()
    return ChatResult(generations=[ChatGeneration(message=message_to_langchain(message))])


def _openai_tool_choice(
    choice: str | bool | Mapping[str, Any], tools: list[dict[str, Any]]
) -> str | dict[str, Any]:
    """``tool_choice`` in OpenAI's format, from any of the forms LangChain code gives."""
    if choice is True:
        if len(tools) != 1:
            raise InvalidInputError(f"tool_choice=True needs exactly one tool, got {len(tools)}")
        choice = str(tools[0]["function"]["name"])
    if isinstance(choice, Mapping):
        return dict(choice)
    if choice == "any":
        return "required"
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, str):
        names = [tool["function"]["name"] for tool in tools]
        if choice not in names:
            raise InvalidInputError(f"tool_choice {choice!r} is not one of the tools {names}")
        return {"type": "function", "function": {"name": choice}}
    raise InvalidInputError(f"tool_choice must be a str, a bool or a dict, not {choice!r}")


class RxLLM(_Adapter, LCBaseLLM):
    """An rxllm text-completion model as a LangChain LLM; made by ``to_langchain``.

    Built from parameters as ``ChatRxLLM`` is (providers ``openai``, ``ollama``,
    ``llamacpp``). Reasoning, where a model streams it, is in each generation's
    ``generation_info["reasoning_content"]``.
    """

    model_config = _Adapter.model_config

    _classes = _LLM_CLASSES
    _kind = "llm"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return self._ls_params_for("llm", stop, kwargs)

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[LCGenerationChunk]:
        with closing(iterate(self._observe(prompt, stop, kwargs))) as chunks:
            for chunk in chunks:
                converted = generation_to_langchain(chunk)
                if run_manager is not None:
                    run_manager.on_llm_new_token(converted.text, chunk=converted)
                yield converted

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[LCGenerationChunk]:
        async with aclosing(aiterate(self._observe(prompt, stop, kwargs))) as chunks:
            async for chunk in chunks:
                converted = generation_to_langchain(chunk)
                if run_manager is not None:
                    await run_manager.on_llm_new_token(converted.text, chunk=converted)
                yield converted

    def _all(
        self, prompts: list[str], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Observable[tuple[int, list[GenerationChunk]]]:
        """Every prompt's chunks, the calls made concurrently, as ``(index, chunks)``."""

        def numbered(
            index: int,
        ) -> Callable[[list[GenerationChunk]], tuple[int, list[GenerationChunk]]]:
            return lambda chunks: (index, chunks)

        calls = [
            self._observe(prompt, stop, kwargs).pipe(ops.to_list(), ops.map(numbered(index)))
            for index, prompt in enumerate(prompts)
        ]
        return reactivex.merge(*calls)

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        return _llm_result(dict(iterate(self._all(prompts, stop, kwargs))))

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        async with aclosing(aiterate(self._all(prompts, stop, kwargs))) as pairs:
            return _llm_result({index: chunks async for index, chunks in pairs})


def _llm_result(results: dict[int, list[GenerationChunk]]) -> LLMResult:
    generations: list[list[Generation]] = []
    for index in range(len(results)):
        total = generation_to_langchain(merge_generation_chunks(results[index]))
        generations.append([Generation(text=total.text, generation_info=total.generation_info)])
    return LLMResult(generations=generations)


def to_langchain(model: BaseLanguageModel[Any, Any, Any]) -> ChatRxLLM | RxLLM:
    """An rxllm model as a native LangChain model: ``ChatRxLLM`` for a chat model,
    ``RxLLM`` for a text-completion model.

    Examples:
        >>> from rxllm.llms import FakeListChatModel
        >>> chat = to_langchain(FakeListChatModel(responses=["hi there"]))
        >>> chat.invoke("hello").content
        'hi there'

    Raises:
        InvalidInputError: for anything but an rxllm chat model or LLM.
    """
    if isinstance(model, BaseChatModel):
        return ChatRxLLM(rxllm_model=model)
    if isinstance(model, BaseLLM):
        return RxLLM(rxllm_model=model)
    raise InvalidInputError(
        f"to_langchain takes an rxllm chat model or LLM, not {type(model).__name__}"
    )
