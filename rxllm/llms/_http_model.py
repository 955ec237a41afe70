"""What every HTTP provider shares: its parameters, its clients, its call policy.

A provider subclasses ``HTTPLLM`` or ``HTTPChatModel`` and writes two things: the
request's body (``_payload``) and the translation of the response's frames into chunks
(``_translator``). Each call then has two twins over the same request, decoder and
translator: ``_astream`` over an ``httpx.AsyncClient`` (``astream_call``) and
``_stream`` over an ``httpx.Client`` (``stream_call``). A sync consumer that nobody
else listens to iterates the blocking twin on its own thread, with no event loop under
it (see ``rxllm._runtime.Source``); everything else runs the async twin on a loop.

Clients: each loop gets the model's own ``httpx.AsyncClient`` (see
``rxllm._runtime.PerLoop``) and all threads share its one ``httpx.Client`` (httpx
documents it as shareable between threads). A client the user injects
(``http_client``, ``http_async_client``) is never closed by rxllm, and where only one
is injected every call goes through it, so its settings (proxy, certificates,
transport) apply to every call: only ``http_async_client``, and sync calls run on a
loop too; only ``http_client``, and async calls run it on rxllm's worker threads.

Bad constructor arguments raise pydantic's ``ValidationError`` (a ``ValueError``), as
LangChain's models do; its text, ``errors()`` and ``json()`` never hold the values given,
which may be keys (``api_key=["sk-..."]``, a ``base_url`` with ``?key=``).
"""

from __future__ import annotations

import functools
import os
import re
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from operator import attrgetter
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar
from urllib.parse import parse_qsl, urlsplit

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails
from reactivex import Observable

from .._constants import MAX_EVENT_BYTES
from .._http._errors import request_id_of
from .._http._ndjson import NDJSONDecoder
from .._http._quote import MAX_QUOTE
from .._http._sse import ServerSentEvent, SSEDecoder
from .._http._transport import (
    Decoder,
    StreamPolicy,
    Wire,
    WireTranslator,
    astream_call,
    stream_call,
)
from .._runtime import PerLoop, from_callables
from ..errors import InvalidInputError, ProtocolError
from ..operators._deadlines import deadlines
from ..operators._retry import backoff, retryable
from ..schema import AIMessageChunk, BaseMessage, GenerationChunk
from ._base import BaseChatModel, BaseLLM
from ._tools import in_style

__all__ = [
    "HTTPChatModel",
    "HTTPLLM",
    "HTTPModel",
    "WireTranslator",
    "json_object",
]

C = TypeVar("C")

#: Fields that set up the model's client and policy, not the request: refused per call,
#: where they would otherwise be sent in the request's body (a key included) and ignored.
_MODEL_ONLY = frozenset(
    {
        "name",
        "api_key",
        "base_url",
        "default_headers",
        "http_client",
        "http_async_client",
        "max_connections",
        "max_event_bytes",
        "max_retries",
        "timeout",
        "first_token_timeout",
        "stall_timeout",
        "total_timeout",
        "model_kwargs",
    }
)


#: Connecting never waits longer than this, whatever ``timeout`` says: a host that does
#: not answer in that time is down, and a retry is more useful than more patience.
_MAX_CONNECT_TIMEOUT = 10.0


#: httpx keeps at most this many idle connections per client by default.
_MAX_KEEPALIVE = 20

# RFC 9110 5.1 and 5.5 (a token; visible ASCII, inner spaces and tabs), and what h11
# enforces when sending, whose error would quote the value: refused here instead.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?")
_KEY = re.compile(r"[\x21-\x7e]+")
#: httpx frames the body itself; a header saying otherwise would corrupt the request.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
#: Secrets at least this long are scrubbed from error text a server echoes back; shorter
#: ones are no credential (a placeholder key like "ollama"), and replacing every ``1``
#: or "ollama" would garble the message.
_MIN_SCRUBBED = 8


AnyClient = TypeVar("AnyClient", httpx.Client, httpx.AsyncClient)


def _new_client(kind: type[AnyClient], timeout: float | None, max_connections: int) -> AnyClient:
    """One of the model's own clients: the same settings, sync or async."""
    connect = _MAX_CONNECT_TIMEOUT if timeout is None else min(timeout, _MAX_CONNECT_TIMEOUT)
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=min(max_connections, _MAX_KEEPALIVE),
    )
    return kind(timeout=httpx.Timeout(timeout, connect=connect), limits=limits)


class _OwnClient:
    """The model's own ``httpx.Client``: made on first use, made again after ``close()``.

    One, shared by every thread: httpx documents ``Client`` as shareable between
    threads, and httpcore's sync pool changes its state under a lock only.
    """

    def __init__(self, factory: Callable[[], httpx.Client]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None

    def get(self) -> httpx.Client:
        client = self._client
        if client is None or client.is_closed:
            with self._lock:
                client = self._client
                if client is None or client.is_closed:
                    client = self._client = self._factory()
        return client

    def close(self) -> None:
        """Close the client, if one was made; its connections with it."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _without_query(url: str) -> str:
    """``url`` with its query string, which may carry a key, replaced."""
    return url.split("?", 1)[0] + "?[REDACTED]" if "?" in url else url


def _check_key(key: str) -> None:
    if not _KEY.fullmatch(key):
        # Sent as it is, h11 would refuse it with an error quoting the whole header.
        raise ValueError(
            "api_key must be printable ASCII without spaces or line breaks "
            "(a trailing newline read from a file?)"
        )


def json_object(event: ServerSentEvent) -> dict[str, Any]:
    """An SSE event's data as the JSON object the APIs send in each event."""
    payload = event.json()
    if not isinstance(payload, dict):
        raise ProtocolError("an event's data is not a JSON object", line=event.data[:MAX_QUOTE])
    return payload


class HTTPModel(BaseModel):
    """Constructor parameters and plumbing common to the HTTP providers."""

    model_config = ConfigDict(
        extra="forbid",
        arbitrary_types_allowed=True,
        protected_namespaces=(),
        hide_input_in_errors=True,
    )

    _model_only: ClassVar[frozenset[str]] = _MODEL_ONLY

    # What each provider declares.
    _default_base_url: ClassVar[str]
    _base_url_env: ClassVar[str | None] = None
    _api_key_env: ClassVar[str | None] = None
    #: Hosts that need a key; any other base_url (a local server) may go without one.
    _key_required_for: ClassVar[frozenset[str]] = frozenset()
    #: The chunk attribute holding its text (``BaseLLM``'s or ``BaseChatModel``'s).
    _text_field: ClassVar[str]

    #: The model name the provider knows.
    model: str
    #: Sampling temperature; the server's default when ``None``.
    temperature: float | None = None
    #: The most tokens to generate; the server's default when ``None``.
    max_tokens: int | None = Field(default=None, ge=1)
    #: Stop sequences; a ``stop=`` given to a call replaces them.
    stop: list[str] | None = None
    #: The API root; from the environment variable, then the provider's default.
    base_url: str | None = None
    #: The API key; from the environment variable when not given. Never shown.
    api_key: SecretStr | None = None
    #: Retries before the first chunk (429, 5xx, connection errors), with backoff.
    max_retries: int = Field(default=2, ge=0)
    #: httpx read/write/pool timeout in seconds (``None``: none; connecting is capped at
    #: 10 s), for the clients rxllm makes; an injected client keeps its own. As in the
    #: OpenAI and Anthropic SDKs it is generous (a local model may think for minutes
    #: before its first byte); ``first_token_timeout``/``stall_timeout`` are the tight ones.
    timeout: float | None = Field(default=600.0, gt=0)
    #: Seconds from the start of a call to its first token (a chunk of text, reasoning
    #: or a tool call), retries included; the ``first_token_timeout`` operator.
    first_token_timeout: float | None = Field(default=None, gt=0)
    #: The longest gap between two chunks, in seconds; pings do not count as chunks.
    stall_timeout: float | None = Field(default=None, gt=0)
    #: Seconds for the whole call.
    total_timeout: float | None = Field(default=None, gt=0)
    #: Extra request fields, passed through to the payload as they are.
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    #: Headers sent with every request. They win over the provider's own (auth,
    #: ``anthropic-version``...), as in the OpenAI and Anthropic SDKs, so a gateway can
    #: take its own ``Authorization``. Values are secrets: never shown.
    default_headers: dict[str, SecretStr] | None = None
    #: The most connections the model's own client (one per event loop) opens at once,
    #: httpx's default; more concurrent calls wait for one, within ``timeout``. An
    #: injected client keeps its own limits.
    max_connections: int = Field(default=100, ge=1)
    #: The largest server event accepted (an SSE event's data, an NDJSON line), in
    #: bytes; a larger one fails the stream with ``EventTooLargeError``.
    max_event_bytes: int = Field(default=MAX_EVENT_BYTES, ge=1)
    #: A client to use instead of rxllm's own ``httpx.Client`` for sync calls, as in
    #: langchain-openai and the openai SDK; never closed by rxllm. Given alone, async
    #: calls go through it too (on rxllm's worker threads, at most 16 calls at once), so
    #: its settings apply to every call; give ``http_async_client`` as well for async
    #: calls on their loop.
    http_client: httpx.Client | None = Field(default=None, exclude=True, repr=False)
    #: A client to use instead of rxllm's own (one per event loop); never closed by
    #: rxllm. Given alone, sync calls go through it too (on a loop rxllm runs for them).
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True, repr=False)

    _clients: PerLoop[httpx.AsyncClient] = PrivateAttr()
    _sync_clients: _OwnClient = PrivateAttr()
    _endpoint_for: tuple[str | None, httpx.URL] | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _hide_inputs(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Re-raise a validation error without the inputs, which may be secrets.

        ``hide_input_in_errors`` keeps them out of the text only; ``errors()`` and
        ``json()``, which applications log or return, would still hold them.
        """
        try:
            return handler(data)
        except ValidationError as exc:
            details: list[InitErrorDetails] = [
                {"type": e["type"], "loc": e["loc"], "input": "[hidden]", "ctx": e.get("ctx", {})}
                for e in exc.errors(include_url=False, include_input=False)
            ]
            error = ValidationError.from_exception_data(exc.title, details, hide_input=True)
        raise error

    @field_serializer("base_url")
    def _dump_base_url(self, url: str | None) -> str | None:
        # A query string may carry a key (``?key=...``): dumps hide it, as they hide
        # ``api_key``, so a dumped model can be logged or shown in a notebook.
        return None if url is None else _without_query(url)

    @field_validator("api_key")
    @classmethod
    def _check_api_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None:
            _check_key(key.get_secret_value())
        return key

    @field_validator("default_headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, SecretStr] | None) -> dict[str, SecretStr] | None:
        for name, value in (headers or {}).items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in _FRAMING_HEADERS:
                raise ValueError(f"{name} is set by httpx from the body, not by default_headers")
            if not _HEADER_VALUE.fullmatch(value.get_secret_value()):
                raise ValueError(
                    f"the value of {name} must be printable ASCII, without line breaks "
                    "or spaces at either end"
                )
        return headers

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        if self.base_url is None:
            from_env = os.environ.get(self._base_url_env) if self._base_url_env else None
            self.base_url = self._normalize_base_url(from_env or self._default_base_url)
        else:
            self.base_url = self._normalize_base_url(self.base_url)
        parts = urlsplit(self.base_url)
        if "@" in parts.netloc:
            # Checked first: the next message shows the URL.
            raise ValueError(
                "base_url must not carry credentials (user:password@host): they would "
                "show wherever the URL does; give them as api_key, or as an "
                "Authorization header in default_headers"
            )
        if parts.scheme not in ("http", "https"):
            raise ValueError(
                "base_url must be an http:// or https:// URL, "
                f"not {_without_query(self.base_url)!r}"
            )
        if self.api_key is None and self._api_key_env:
            key = os.environ.get(self._api_key_env)
            if key:
                _check_key(key)
                self.api_key = SecretStr(key)
        # The factories must not refer to the model, or the finalizers would keep it alive.
        self._clients = PerLoop(
            functools.partial(_new_client, httpx.AsyncClient, self.timeout, self.max_connections),
            attrgetter("is_closed"),
            httpx.AsyncClient.aclose,
        )
        self._sync_clients = _OwnClient(
            functools.partial(_new_client, httpx.Client, self.timeout, self.max_connections)
        )
        # Dropping a model without close() still closes its connections.
        weakref.finalize(self, self._clients.close_soon)
        weakref.finalize(self, self._sync_clients.close)

    @classmethod
    def _normalize_base_url(cls, url: str) -> str:
        return url.rstrip("/")

    def _client(self) -> httpx.AsyncClient:
        """The async client for the running loop."""
        if self.http_async_client is not None:
            return self.http_async_client
        return self._clients.get()

    def _sync_client(self) -> httpx.Client:
        """The sync client, for any thread."""
        if self.http_client is not None:
            return self.http_client
        return self._sync_clients.get()

    def _check_ready(self) -> None:
        """Fail before any network call if the key this endpoint needs is missing."""
        host = urlsplit(self.base_url or "").hostname or ""
        if self.api_key is None and host in self._key_required_for:
            env = self._api_key_env
            where = f" or set the {env} environment variable" if env else ""
            raise InvalidInputError(
                f"{type(self).__name__} needs an API key for {host}: pass api_key=...{where}"
            )

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A query string in base_url may carry a key (``?key=...``): not in reprs.
        for name, value in super().__repr_args__():
            if name == "base_url" and isinstance(value, str):
                value = _without_query(value)
            yield name, value

    def _secrets(self) -> tuple[str, ...]:
        """What to scrub from error text a server echoes: the key, header values and
        ``base_url`` query values (``?key=...``)."""
        secrets = [self.api_key.get_secret_value()] if self.api_key is not None else []
        secrets += [v.get_secret_value() for v in (self.default_headers or {}).values()]
        secrets += [v for _, v in parse_qsl(urlsplit(self.base_url or "").query)]
        return tuple(s for s in secrets if len(s) >= _MIN_SCRUBBED)

    def _policy(self) -> StreamPolicy:
        return StreamPolicy(retryable, backoff, self.max_retries, self._secrets())

    def _within_deadlines(self, chunks: Observable[C]) -> Observable[C]:
        """``chunks`` under the model's deadlines: the operators of the same names, so
        the setting and the operator mean one thing (see ``rxllm.operators._deadlines``).
        They time the whole call, the transport's retries included."""
        first, stall, total = self.first_token_timeout, self.stall_timeout, self.total_timeout
        if first is None and stall is None and total is None:
            return chunks
        return chunks.pipe(deadlines(first, stall, total))

    def _stop_for(self, stop: list[str] | None) -> list[str] | None:
        return stop if stop is not None else self.stop

    # Lifetime: the clients rxllm made (an injected client is the user's to close).

    def close(self) -> None:
        """Close the connections of every client this model made: its sync client's and
        its async clients', each on its own loop.

        The model stays usable: a later call makes a new client.
        """
        self._sync_clients.close()
        self._clients.close()

    async def aclose(self) -> None:
        """Close the connections of every client this model made (see ``close``)."""
        self._sync_clients.close()  # closing sockets does not block
        await self._clients.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # What a provider writes.

    #: The endpoint, relative to ``base_url``.
    _path: ClassVar[str]

    def _payload(
        self, prompt: Any, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """The JSON body of one call."""
        raise NotImplementedError

    #: How the stream's bytes are cut into frames: ``SSEDecoder`` or ``NDJSONDecoder``.
    _decoder: ClassVar[type[SSEDecoder] | type[NDJSONDecoder]]

    def _translator(self, request_id: str | None) -> WireTranslator[Any, Any]:
        """A new translator for one response."""
        raise NotImplementedError

    def _wire(self, response: httpx.Response) -> Wire[Any]:
        """The decoder and the translator for a successful streamed response."""
        decoder: Decoder[Any] = self._decoder(self.max_event_bytes)
        return decoder, self._translator(request_id_of(response))

    def _headers(self) -> dict[str, str]:
        """The provider's headers for one request, built from the secret each time."""
        return {}

    def _endpoint(self) -> httpx.URL:
        """The URL calls are sent to, made once per ``base_url``: parsing a URL costs
        httpx about 30 µs, a few percent of a short call."""
        made = self._endpoint_for
        if made is None or made[0] != self.base_url:
            base = httpx.URL(self.base_url or "")
            made = (self.base_url, base.copy_with(path=base.path.rstrip("/") + self._path))
            self._endpoint_for = made
        return made[1]

    def _request_headers(self) -> httpx.Headers:
        """The provider's headers, with ``default_headers`` over them."""
        headers = httpx.Headers(self._headers())
        if self.default_headers:
            headers.update({k: v.get_secret_value() for k, v in self.default_headers.items()})
        return headers

    def _request_maker(
        self,
        client: httpx.Client | httpx.AsyncClient,
        prompt: Any,
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> Callable[[], httpx.Request]:
        """Makes one call's request, afresh for each attempt (the headers are built
        from the secrets each time); the payload is built once, now."""
        url = self._endpoint()
        payload = self._payload(prompt, self._stop_for(stop), kwargs)

        def build() -> httpx.Request:
            return client.build_request("POST", url, json=payload, headers=self._request_headers())

        return build

    def _call_stream(
        self, prompt: Any, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Generator[Any, None, None]:
        """The chunks of one call over the sync client; nothing is sent before the
        generator is iterated, and closing it closes the response.

        It returns ``stream_call``'s generator itself rather than re-yielding from it:
        every generator a chunk passes through costs about a tenth of a microsecond.
        """
        client = self._sync_client()
        build = self._request_maker(client, prompt, stop, kwargs)
        return stream_call(client, build, self._wire, self._policy(), attrgetter(self._text_field))

    def _acall_stream(
        self, prompt: Any, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> AsyncGenerator[Any, None]:
        """``_call_stream`` over the async client of the loop that will iterate it.

        Called by the pump task on that loop (whose client it picks); it too returns
        ``astream_call``'s generator itself.
        """
        client = self._client()
        build = self._request_maker(client, prompt, stop, kwargs)
        return astream_call(client, build, self._wire, self._policy(), attrgetter(self._text_field))

    def _observe_call(
        self, astream: Callable[[], AsyncIterator[C]], stream: Callable[[], Iterator[C]]
    ) -> Observable[C]:
        """The Observable of one call, under the model's deadlines.

        Made here, not by ``BaseLanguageModel._observe_prepared``, which offers every
        hook a class has: a model with only one client injected offers only that
        client's twin, so that every call goes through it. The transport keeps the
        call's text for ``.partial`` itself, so a bridge may hand the call's own
        iterator to its consumer (``rxllm._runtime.Iteration``).
        """
        self._check_ready()
        only_sync = self.http_client is not None and self.http_async_client is None
        only_async = self.http_async_client is not None and self.http_client is None
        chunks = from_callables(
            astream=None if only_sync else astream,
            stream=None if only_async else stream,
        )
        return self._within_deadlines(chunks)


class HTTPLLM(HTTPModel, BaseLLM):
    """A text-completion model served over HTTP."""

    def _observe_prepared(
        self, prepared: str, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Observable[GenerationChunk]:
        return self._observe_call(
            lambda: self._astream(prepared, stop, **kwargs),
            lambda: self._stream(prepared, stop, **kwargs),
        )

    def _stream(
        self, prompt: str, stop: list[str] | None = None, **kwargs: Any
    ) -> Iterator[GenerationChunk]:
        return self._call_stream(prompt, stop, kwargs)

    def _astream(
        self, prompt: str, stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[GenerationChunk]:
        return self._acall_stream(prompt, stop, kwargs)


class HTTPChatModel(HTTPModel, BaseChatModel):
    """A chat model served over HTTP; ``model_kwargs``' tools are converted to its API's
    shape when it is made, as a call's are when the call is."""

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        in_style(self.model_kwargs, self._tool_style())

    def _observe_prepared(
        self, prepared: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Observable[AIMessageChunk]:
        return self._observe_call(
            lambda: self._astream(prepared, stop, **kwargs),
            lambda: self._stream(prepared, stop, **kwargs),
        )

    def _stream(
        self, prompt: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> Iterator[AIMessageChunk]:
        return self._call_stream(prompt, stop, kwargs)

    def _astream(
        self, prompt: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        return self._acall_stream(prompt, stop, kwargs)
