"""``BaseLLM`` and ``BaseChatModel``: what a provider subclasses.

A provider implements any of four hooks and gets every Runnable method:

- ``_call(prompt, stop=None, **kwargs) -> str`` (blocking, run on the worker pool)
- ``_acall(...)``, its async twin
- ``_stream(prompt, stop=None, **kwargs) -> Iterator[GenerationChunk]``
- ``_astream(...) -> AsyncIterator[GenerationChunk]``

Chat models take a list of messages instead of a prompt and produce ``AIMessage`` /
``AIMessageChunk``. A provider with only ``_call``/``_acall`` still streams: one chunk,
the final output (the default streaming implementation), so any model can stand in for
any other. Constructor parameters are pydantic fields; unknown ones are rejected.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from operator import attrgetter
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from reactivex import Observable

from .._runtime import from_callables
from ..config import RunConfig
from ..errors import InvalidInputError
from ..runnable import Runnable
from ..schema import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    GenerationChunk,
    coerce_messages,
    coerce_prompt,
    merge_generation_chunks,
    merge_message_chunks,
)
from ._tools import ToolStyle, in_style

__all__ = ["BaseChatModel", "BaseLLM", "BaseLanguageModel"]

P = TypeVar("P")  # what the hooks take: a prompt or a list of messages
C = TypeVar("C", GenerationChunk, AIMessageChunk)
O = TypeVar("O")  # noqa: E741

_HOOKS = ("_astream", "_stream", "_acall", "_call")


class BaseLanguageModel(BaseModel, Runnable[Any, C, O], Generic[P, C, O]):
    """What ``BaseLLM`` and ``BaseChatModel`` share: input checks and the four hooks."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    #: The name events and reprs report; defaults to the class name.
    name: str | None = None

    #: The chunk attribute holding its text, kept so a failed stream has ``.partial``.
    _text_field: ClassVar[str]
    _run_type: ClassVar[str]
    #: The provider events name (``ls_provider``); the class name in lower case if unset.
    _ls_provider: ClassVar[str | None] = None
    #: Fields that set the model up (its client, its loading, its name) rather than one
    #: call: refused as keyword arguments of a call, where they would do nothing.
    _model_only: ClassVar[frozenset[str]] = frozenset({"name"})

    def get_name(self) -> str:
        return self.name or type(self).__name__

    def _ls_params(self) -> dict[str, Any]:
        """LangChain's ``ls_*`` metadata for events, from the fields this model has
        (unset ones left out), as LangChain reports it."""
        params: dict[str, Any] = {
            "ls_provider": self._ls_provider or type(self).__name__.lower(),
            "ls_model_type": "chat" if self._run_type == "chat_model" else "llm",
        }
        name = self._ls_model_name()
        if name is not None:
            params["ls_model_name"] = name
        for key, field in (("ls_temperature", "temperature"), ("ls_max_tokens", "max_tokens")):
            value = getattr(self, field, None)
            if value is not None:
                params[key] = value
        stop = getattr(self, "stop", None)
        if stop:
            params["ls_stop"] = list(stop)
        return params

    def _ls_model_name(self) -> str | None:
        """The model's name in events: its ``model`` field, if it has one."""
        name: str | None = getattr(self, "model", None)
        return name

    def _coerce(self, input: Any) -> P:
        raise NotImplementedError

    def _chunk_from_result(self, result: Any) -> C:
        raise NotImplementedError

    @classmethod
    @functools.cache
    def _implemented_hooks(cls) -> frozenset[str]:
        """The hooks this class overrides (the base versions only raise)."""
        implemented = frozenset(
            hook for hook in _HOOKS if getattr(cls, hook) is not getattr(BaseLanguageModel, hook)
        )
        if not implemented:
            raise TypeError(f"{cls.__name__} must implement at least one of {', '.join(_HOOKS)}")
        return implemented

    def _observe(self, input: Any, config: RunConfig, **kwargs: Any) -> Observable[C]:
        prepared = self._coerce(input)
        stop = kwargs.pop("stop", None)
        if stop is not None and (
            isinstance(stop, str)
            or not isinstance(stop, Sequence)
            or not all(isinstance(s, str) for s in stop)
        ):
            raise InvalidInputError(f"stop must be a list of strings, not {stop!r}")
        checked = self._check_call_kwargs(kwargs)
        return self._observe_prepared(prepared, list(stop) if stop is not None else None, checked)

    def _call_arguments(self) -> type[BaseModel] | None:
        """The keyword arguments a call takes besides this model's fields, as a model.

        ``None`` (the default): any, handed to the hooks as they are (an HTTP model puts
        them in the request's body; a custom model's ``_call`` gets them). A model that
        has nowhere to pass unknown ones returns a pydantic model of those it takes,
        whose rules they must obey; others are refused.
        """
        return None

    def _check_call_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of one call, checked before any work is done.

        A constructor field given per call (``max_tokens=...``) obeys the field's own
        rules and is passed on as validated; a model-only setting is refused; so is an
        argument the model does not take (see ``_call_arguments``).

        Raises:
            InvalidInputError: for any of those, naming the argument.
        """
        if not kwargs:
            return kwargs
        fields = type(self).model_fields
        arguments = self._call_arguments()
        if arguments is not None:
            unknown = [n for n in kwargs if n not in fields and n not in arguments.model_fields]
            if unknown:
                accepted = (set(fields) - self._model_only) | set(arguments.model_fields)
                raise InvalidInputError(
                    f"{self.get_name()} does not take {', '.join(map(repr, unknown))} in a "
                    f"call; it takes {', '.join(sorted(accepted))}"
                )
        checked = dict(kwargs)
        scratch: BaseModel | None = None
        for name, value in kwargs.items():
            if name in self._model_only:
                raise InvalidInputError(
                    f"{name} is a setting of the model, not of one call: give it to "
                    f"{type(self).__name__}(...)"
                )
            if name in fields:
                if scratch is None:
                    scratch = self.model_copy()
                try:
                    self.__pydantic_validator__.validate_assignment(scratch, name, value)
                except ValidationError as exc:
                    raise _invalid(name, value, exc) from None
                checked[name] = getattr(scratch, name)
        if arguments is not None:
            others = {n: v for n, v in kwargs.items() if n not in fields}
            try:
                arguments.model_validate(others)
            except ValidationError as exc:
                name = str(exc.errors()[0]["loc"][0])
                raise _invalid(name, others[name], exc) from None
        return checked

    def _observe_prepared(
        self, prepared: P, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Observable[C]:
        """The Observable for an already checked input; a hook for special models."""
        hooks = self._implemented_hooks()
        to_chunk = self._chunk_from_result

        async def acall() -> C:
            return to_chunk(await self._acall(prepared, stop, **kwargs))

        return from_callables(
            astream=(lambda: self._astream(prepared, stop, **kwargs))
            if "_astream" in hooks
            else None,
            stream=(lambda: self._stream(prepared, stop, **kwargs)) if "_stream" in hooks else None,
            acall=acall if "_acall" in hooks else None,
            call=(lambda: to_chunk(self._call(prepared, stop, **kwargs)))
            if "_call" in hooks
            else None,
            text_of=attrgetter(self._text_field),
        )

    # The hooks. Subclasses override any of them; these versions are never called.

    def _call(self, prompt: P, stop: list[str] | None = None, **kwargs: Any) -> Any:
        raise NotImplementedError

    def _acall(self, prompt: P, stop: list[str] | None = None, **kwargs: Any) -> Awaitable[Any]:
        raise NotImplementedError

    def _stream(self, prompt: P, stop: list[str] | None = None, **kwargs: Any) -> Iterator[C]:
        raise NotImplementedError

    def _astream(self, prompt: P, stop: list[str] | None = None, **kwargs: Any) -> AsyncIterator[C]:
        raise NotImplementedError


def _invalid(name: str, value: Any, error: ValidationError) -> InvalidInputError:
    """A call's argument refused by pydantic, said on one line."""
    problems = "; ".join(e["msg"] for e in error.errors(include_url=False))
    return InvalidInputError(f"invalid {name}={value!r}: {problems}")


class BaseLLM(BaseLanguageModel[str, GenerationChunk, str]):
    """A text-completion model: a prompt in, ``GenerationChunk``s out.

    ``stream``/``astream`` yield ``str`` and ``invoke`` returns ``str``; ``observe``
    emits the chunks themselves, with their ``generation_info``.

    Examples:
        >>> from collections.abc import Iterator
        >>> from rxllm.schema import GenerationChunk
        >>> class Echo(BaseLLM):
        ...     def _stream(self, prompt, stop=None, **kwargs) -> Iterator[GenerationChunk]:
        ...         for word in prompt.split():
        ...             yield GenerationChunk(text=word + " ")
        >>> list(Echo().stream("one two"))
        ['one ', 'two ']
    """

    _text_field = "text"
    _run_type = "llm"

    def _coerce(self, input: Any) -> str:
        return coerce_prompt(input)

    def _chunk_from_result(self, result: Any) -> GenerationChunk:
        if isinstance(result, GenerationChunk):
            return result
        if not isinstance(result, str):
            raise TypeError(
                f"{type(self).__name__}._call must return a str, not {type(result).__name__}"
            )
        return GenerationChunk(text=result)

    def _presenter(self) -> Callable[[Any], str]:
        return attrgetter("text")

    def _aggregate(self, chunks: Sequence[GenerationChunk]) -> str:
        return merge_generation_chunks(chunks).text


class BaseChatModel(BaseLanguageModel[list[BaseMessage], AIMessageChunk, AIMessage]):
    """A chat model: messages in, ``AIMessageChunk``s out; ``invoke`` returns an ``AIMessage``.

    Input may be a string (one human message), messages, ``(role, content)`` tuples or
    ``{"role", "content"}`` dicts.
    """

    _text_field = "content"
    _run_type = "chat_model"

    def _tool_style(self) -> ToolStyle:
        """The shape of ``tools``/``tool_choice`` this model takes: a call may give any
        API's (``rxllm.llms._tools``), and gets this one's."""
        return "chat"

    def _check_call_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        checked = super()._check_call_kwargs(kwargs)
        if "tools" in checked or "tool_choice" in checked:
            checked = dict(checked)
            in_style(checked, self._tool_style())
        return checked

    def _coerce(self, input: Any) -> list[BaseMessage]:
        return coerce_messages(input)

    def _chunk_from_result(self, result: Any) -> AIMessageChunk:
        if isinstance(result, AIMessageChunk):
            return result
        if isinstance(result, str):
            return AIMessageChunk(content=result)
        if isinstance(result, AIMessage):
            return AIMessageChunk(**result.model_dump(exclude={"type"}))
        raise TypeError(
            f"{type(self).__name__}._call must return an AIMessage or a str, "
            f"not {type(result).__name__}"
        )

    def _presenter(self) -> None:
        return None  # chat models stream the message chunks themselves

    def _aggregate(self, chunks: Sequence[AIMessageChunk]) -> AIMessage:
        return merge_message_chunks(chunks).to_message()
