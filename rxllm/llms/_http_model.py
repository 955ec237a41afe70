"""What every HTTP provider shares: its parameters, its clients, its call policy.

A provider subclasses ``HTTPLLM`` or ``HTTPChatModel`` and writes two things: the
request (``_request``) and the translation of the response into chunks (``_parse``).
It implements only ``_astream``, so sync consumers run the call on a loop rxllm runs for
them (see ``rxllm._runtime``) and async consumers on their own loop, from one
implementation. Each loop gets its own ``httpx.AsyncClient`` (see ``rxllm._runtime.PerLoop``),
unless the user injected ``http_async_client``: then that one is used everywhere and
never closed by rxllm.

There is deliberately no sync ``http_client`` parameter: all I/O is async, so a sync
``httpx.Client`` would never be used.

Bad constructor arguments raise pydantic's ``ValidationError`` (a ``ValueError``), as
LangChain's models do; its text, ``errors()`` and ``json()`` never hold the values given,
which may be keys (``api_key=["sk-..."]``, a ``base_url`` with ``?key=``).
"""

from __future__ import annotations

import functools
import json
import os
import re
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from operator import attrgetter
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar
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
from .._http._errors import error_from_payload, request_id_of
from .._http._ndjson import NDJSONDecoder
from .._http._quote import MAX_QUOTE, SHAPE_ERRORS, misshapen
from .._http._sse import ServerSentEvent, SSEDecoder
from .._http._transport import StreamPolicy, stream_call
from .._runtime import PerLoop
from ..errors import APIError, InvalidInputError, ProtocolError, StreamInterruptedError
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
    "wire_chunks",
]

C = TypeVar("C")
F = TypeVar("F")

#: Fields that set up the model's client and policy, not the request: refused per call,
#: where they would otherwise be sent in the request's body (a key included) and ignored.
_MODEL_ONLY = frozenset(
    {
        "name",
        "api_key",
        "base_url",
        "default_headers",
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


def _new_client(timeout: float | None, max_connections: int) -> httpx.AsyncClient:
    connect = _MAX_CONNECT_TIMEOUT if timeout is None else min(timeout, _MAX_CONNECT_TIMEOUT)
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=min(max_connections, _MAX_KEEPALIVE),
    )
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=connect), limits=limits)


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


class WireTranslator(Generic[F, C]):
    """Turns one provider's decoded frames into chunks, one at a time, without HTTP.

    A provider writes ``frame`` (and ``end`` if its stream needs a last word);
    ``wire_chunks`` drives it, the same loop for every provider.

    Args:
        secrets: strings to scrub from in-band error text.
        request_id: the response's request id, for errors.
    """

    #: What a complete stream ends with, named when a stream ends without it.
    terminal: ClassVar[str]

    def __init__(self, secrets: tuple[str, ...] = (), request_id: str | None = None) -> None:
        self.secrets = secrets
        self.request_id = request_id
        #: Whether the terminal frame has arrived; frames after it are drained unread.
        self.finished = False

    def frame(self, frame: F) -> C | None:
        """The chunk one decoded frame (an SSE event, an NDJSON value) stands for.

        Raises:
            APIError: for an in-band error.
            ProtocolError: for a frame that is not what the API documents.
        """
        raise NotImplementedError

    def end(self) -> C | None:
        """A last chunk once the stream has ended with its terminal frame, if any."""
        return None

    def in_band_error(self, payload: object) -> APIError:
        """The typed error an in-band error event stands for, secrets scrubbed."""
        return error_from_payload(payload, request_id=self.request_id, secrets=self.secrets)


class _Decoder(Protocol[F]):
    def feed(self, chunk: bytes) -> list[F]: ...
    def flush(self) -> list[F]: ...


def json_object(event: ServerSentEvent) -> dict[str, Any]:
    """An SSE event's data as the JSON object the APIs send in each event."""
    payload = event.json()
    if not isinstance(payload, dict):
        raise ProtocolError("an event's data is not a JSON object", line=event.data[:MAX_QUOTE])
    return payload


async def wire_chunks(
    response: httpx.Response, decoder: _Decoder[F], translator: WireTranslator[F, C]
) -> AsyncIterator[C]:
    """The chunks of a streamed response: its bytes, decoded into frames, translated.

    The one loop every provider's stream goes through. Its frames are whatever the
    decoder makes, a ``ServerSentEvent`` or an NDJSON value, whatever the event: the
    cheap case of plain ``data:`` events is the SSE decoder's own (``SSEDecoder._blocks``),
    so nothing here tells frames apart.

    Raises:
        StreamInterruptedError: the stream ended before its terminal frame.
        ProtocolError: bad data, or a frame not shaped as the API documents.
        APIError: an in-band error.
    """
    reads = response.aiter_bytes()
    more = True
    while more:
        # The frames of each read, then those the decoder completes at the end.
        read = await anext(reads, None)
        frames = decoder.flush() if read is None else decoder.feed(read)
        more = read is not None
        for frame in frames:
            if translator.finished:
                continue  # drained, so the connection can go back to the pool
            try:
                chunk = translator.frame(frame)
            except (ValidationError, *SHAPE_ERRORS):
                # JSON that parsed but is not shaped as documented (a string where an
                # object goes): caught here rather than checked at every field.
                data = frame.data if isinstance(frame, ServerSentEvent) else json.dumps(frame)
                raise misshapen(data) from None
            if chunk is not None:
                yield chunk
    if not translator.finished:
        raise StreamInterruptedError(f"the stream ended without its terminal {translator.terminal}")
    last = translator.end()
    if last is not None:
        yield last


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
    #: A client to use instead of rxllm's own (one per event loop); never closed by rxllm.
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True, repr=False)

    _clients: PerLoop[httpx.AsyncClient] = PrivateAttr()
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
        # The factory must not refer to the model, or the finalizer would keep it alive.
        self._clients = PerLoop(
            functools.partial(_new_client, self.timeout, self.max_connections),
            attrgetter("is_closed"),
            httpx.AsyncClient.aclose,
        )
        # Dropping a model without close() still closes its connections.
        weakref.finalize(self, self._clients.close_soon)

    @classmethod
    def _normalize_base_url(cls, url: str) -> str:
        return url.rstrip("/")

    def _client(self) -> httpx.AsyncClient:
        """The client for the running loop."""
        if self.http_async_client is not None:
            return self.http_async_client
        return self._clients.get()

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
        """Close the connections of every client this model made, on any loop.

        The model stays usable: a later call makes a new client.
        """
        self._clients.close()

    async def aclose(self) -> None:
        """Close the connections of every client this model made, on any loop."""
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

    def _parse(self, response: httpx.Response) -> AsyncIterator[Any]:
        """The chunks of a successful streamed response."""
        decoder: _Decoder[Any] = self._decoder(self.max_event_bytes)
        return wire_chunks(response, decoder, self._translator(request_id_of(response)))

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

    def _call_stream(
        self, prompt: Any, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> AsyncGenerator[Any, None]:
        """The chunks of one call; nothing is sent before the generator is iterated.

        Called by the pump task on the loop that will iterate it (whose client it picks),
        and it returns ``stream_call``'s generator itself rather than re-yielding from it:
        every generator a chunk passes through costs about a microsecond.
        """
        client = self._client()
        url = self._endpoint()
        payload = self._payload(prompt, self._stop_for(stop), kwargs)

        def build() -> httpx.Request:
            return client.build_request("POST", url, json=payload, headers=self._request_headers())

        return stream_call(client, build, self._parse, self._policy())


class HTTPLLM(HTTPModel, BaseLLM):
    """A text-completion model served over HTTP."""

    def _observe_prepared(
        self, prepared: str, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Observable[GenerationChunk]:
        self._check_ready()
        return self._within_deadlines(super()._observe_prepared(prepared, stop, kwargs))

    def _astream(
        self, prompt: str, stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[GenerationChunk]:
        return self._call_stream(prompt, stop, kwargs)


class HTTPChatModel(HTTPModel, BaseChatModel):
    """A chat model served over HTTP; ``model_kwargs``' tools are converted to its API's
    shape when it is made, as a call's are when the call is."""

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        in_style(self.model_kwargs, self._tool_style())

    def _observe_prepared(
        self, prepared: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Observable[AIMessageChunk]:
        self._check_ready()
        return self._within_deadlines(super()._observe_prepared(prepared, stop, kwargs))

    def _astream(
        self, prompt: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        return self._call_stream(prompt, stop, kwargs)
