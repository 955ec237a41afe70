"""``create_app``: any rxllm runnable served as the OpenAI, Anthropic and AI SDK APIs.

Every model route does the same steps, each of which can answer at once with a 4xx in
the route's own error shape (and the server goes on serving): check the API key, read
the body up to ``max_body_bytes`` (checked while reading, so an endless body is cut
off), parse it with the API's request model, check the model name, take one of
``max_concurrency`` slots (else 429 with ``Retry-After``), and make the call. A
streaming request is answered by ``SSEResponse`` in the route's format; any other with
the API's JSON object, built from the same chunks. A client that goes away cancels the
call, streaming or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .. import aiterate
from ..errors import InvalidInputError, RxLLMError
from ..llms import BaseLanguageModel, BaseLLM
from ..runnable import Pipeline, Runnable
from ..schema import coerce_prompt
from ._errors import ClientError, client_error
from ._replies import Reply, reply_json
from ._requests import Call, parse
from ._response import SSEResponse, error_response, unless_disconnected
from ._resume import DEFAULT_MAX_EVENTS, ResumeStore, parse_last_event_id
from ._stream import encoded, encoder_for

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_CONCURRENCY", "create_app"]

#: The largest request body read, in bytes (a long conversation fits many times over).
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024

#: Calls running at once; past it a request is answered 429 with ``Retry-After``.
DEFAULT_MAX_CONCURRENCY = 64

#: Seconds a client refused for the concurrency limit is told to wait.
RETRY_AFTER = 1

#: The header that tells a client where to resume a stream (with resumption on).
RESUME_HEADER = "X-Resume-URL"

_FALLBACK_PAGE = "<!doctype html><title>rxllm</title><p>rxllm is serving.</p>"

_OPENAI_FORMATS = ("openai-chat", "openai-completions")


def _page() -> str:
    page = resources.files("rxllm.serve").joinpath("page.html")
    return page.read_text(encoding="utf-8") if page.is_file() else _FALLBACK_PAGE


def _target(runnable: Runnable[Any, Any, Any]) -> Runnable[Any, Any, Any]:
    """The runnable a call's parameters reach: a pipeline passes them to its first step."""
    return runnable.first if isinstance(runnable, Pipeline) else runnable


class _Refused(Exception):
    """A request answered with an error before any call is made."""

    def __init__(self, status: int, kind: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.error = ClientError(status, kind, message, retry_after)


class _Slots:
    """At most ``limit`` calls at once (the app runs on one event loop)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self) -> None:
        if self.used >= self.limit:
            raise _Refused(429, "rate_limit_error", f"the server is running {self.limit} calls, "
                           "its limit; retry shortly", RETRY_AFTER)  # fmt: skip
        self.used += 1

    def give_back(self) -> None:
        self.used -= 1

    async def agive_back(self) -> None:
        """``give_back`` as a response's background task, which runs it on the loop (a
        plain function would run in a worker thread: 65 µs of CPU a request for the hop,
        measured in process, and a ``-=`` racing ``take``)."""
        self.give_back()


@dataclass
class _Server:
    """What the routes share: the runnable, the limits, the key, the resumable streams."""

    runnable: Runnable[Any, Any, Any]
    api_key: SecretStr | None
    model_name: str
    max_body_bytes: int
    slots: _Slots
    resume: ResumeStore | None

    def __post_init__(self) -> None:
        target = _target(self.runnable)
        self.takes_params = isinstance(target, BaseLanguageModel)
        self.renders_prompt = isinstance(target, BaseLLM)

    # -- checks ------------------------------------------------------------------

    def check_key(self, request: Request) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("x-api-key")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if given is None and scheme.lower() == "bearer":
            given = token.strip()
        expected = self.api_key.get_secret_value().encode()
        if given is None or not hmac.compare_digest(given.encode(), expected):
            raise _Refused(401, "authentication_error", "a valid API key is required "
                           "(Authorization: Bearer KEY, or x-api-key: KEY)")  # fmt: skip

    async def read_body(self, request: Request) -> bytes:
        limit = self.max_body_bytes
        too_large = _Refused(413, "invalid_request_error",
                             f"the request body is larger than {limit} bytes")  # fmt: skip
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        pieces, size = [], 0
        try:
            async for piece in request.stream():
                size += len(piece)
                if size > limit:
                    raise too_large
                pieces.append(piece)
        except ClientDisconnect:  # no one to answer: nothing to log either
            raise _Refused(400, "invalid_request_error", "the client left mid-body") from None
        return b"".join(pieces)

    def check_model(self, call: Call) -> None:
        if call.model is not None and call.model != self.model_name:
            raise _Refused(404, "not_found_error", f"the model {call.model!r} is not served "
                           f"here; this server serves {self.model_name!r}")  # fmt: skip

    # -- the call ----------------------------------------------------------------

    def observe(self, call: Call) -> Any:
        """The call's Observable: the runnable on the input it takes."""
        if call.prompt is not None:
            input: Any = call.prompt
        elif self.renders_prompt:
            input = coerce_prompt(call.messages)
        else:
            input = call.messages
        if call.params and not self.takes_params:
            raise InvalidInputError(
                f"the served runnable ({self.runnable.get_name()}) takes no call parameters; "
                f"remove {', '.join(sorted(call.params))}"
            )
        # Tools come in the request's API's shape; the model sends its own API's.
        return self.runnable.observe(input, **call.params)

    def options(self, format: str, call: Call) -> dict[str, Any]:
        return {"include_usage": call.include_usage} if format in _OPENAI_FORMATS else {}

    def stream(self, format: str, call: Call, source: Any) -> Response:
        """The call's stream; the response gives the call's slot back when it ends."""
        response = SSEResponse(
            source, format=format, model=self.model_name, **self.options(format, call)
        )
        response.background = BackgroundTask(self.slots.agive_back)
        return response

    async def resumable(self, format: str, call: Call, source: Any) -> Response:
        """The call's stream, resumable; the stream gives the call's slot back when it ends."""
        store = self.resume
        assert store is not None
        encoder = encoder_for(format, self.model_name, **self.options(format, call))
        key = call.chat_id or secrets.token_urlsafe(16)
        stream = store.start(key, format, encoded(source, encoder), encoder, self.slots.give_back)
        await asyncio.wait([stream.started])
        if stream.started.cancelled():  # a newer request for the same chat replaced it
            return error_response(format, ClientError(409, "invalid_request_error",
                                  "a newer request for this chat replaced this one"))  # fmt: skip
        error = stream.started.exception()
        if error is not None:
            store.forget(stream)
            if not isinstance(error, RxLLMError):
                raise error
            return error_response(format, client_error(error))
        headers = {**encoder.headers, RESUME_HEADER: f"/v1/streams/{key}"}
        return SSEResponse.of_bytes(store.reader(stream, None), format=format, headers=headers)

    async def whole(self, format: str, call: Call, request: Request) -> Response:
        reply = Reply(self.model_name)

        async def gather() -> None:
            item: Any
            async for item in aiterate(self.observe(call)):
                reply.feed(item)

        try:
            if not await unless_disconnected(gather(), request.receive):
                raise _Refused(499, "invalid_request_error", "the client closed the request")
        finally:
            self.slots.give_back()
        return JSONResponse(reply_json(format, reply))


def _model_route(server: _Server, format: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        taken = False
        try:
            server.check_key(request)
            call = parse(format, await server.read_body(request))
            server.check_model(call)
            server.slots.take()
            taken = True
            if not call.stream:
                taken = False  # ``whole`` gives it back
                return await server.whole(format, call, request)
            source = server.observe(call)
            taken = False  # from here the response, or the stream, gives it back
            if server.resume is not None:
                return await server.resumable(format, call, source)
            return server.stream(format, call, source)
        except _Refused as refused:
            response = error_response(format, refused.error)
            if refused.error.status == 413:
                # The rest of the body is never read: the connection can't be reused.
                response.headers["Connection"] = "close"
            return response
        except RxLLMError as exc:
            return error_response(format, client_error(exc))
        finally:
            if taken:
                server.slots.give_back()

    return endpoint


def _resume_route(server: _Server, *, ai_sdk: bool) -> Callable[[Request], Awaitable[Response]]:
    """``GET /v1/streams/{key}`` (and the AI SDK's ``GET /api/chat/{key}/stream``)."""

    async def endpoint(request: Request) -> Response:
        format = "vercel-ui" if ai_sdk else "openai-chat"
        try:
            server.check_key(request)
            store = server.resume
            stream = None if store is None else store.get(request.path_params["key"])
            if stream is None or store is None:
                if ai_sdk:  # useChat's resume: no stream running for this chat
                    return Response(status_code=204)
                raise _Refused(404, "not_found_error", "no such stream (it ended more than "
                               "the resume window ago, or resumption is off)")  # fmt: skip
            format = stream.format
            try:
                after = parse_last_event_id(request.headers.get("last-event-id"))
            except ValueError:
                raise _Refused(400, "invalid_request_error", "Last-Event-ID must be the "
                               "id of an event of this stream") from None  # fmt: skip
            if after is not None and after + 1 < stream.first_kept:
                raise _Refused(410, "invalid_request_error", "the events after that id are "
                               "no longer kept; start the request again")  # fmt: skip
            headers = {**stream.encoder.headers, RESUME_HEADER: request.url.path}
            return SSEResponse.of_bytes(store.reader(stream, after), format=format,
                                        headers=headers)  # fmt: skip
        except _Refused as refused:
            return error_response(format, refused.error)

    return endpoint


def create_app(
    runnable: Runnable[Any, Any, Any],
    *,
    api_key: str | SecretStr | None = None,
    model_name: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    resume_window: float | None = None,
    resume_max_events: int = DEFAULT_MAX_EVENTS,
) -> Starlette:
    """A Starlette app serving ``runnable`` as OpenAI, Anthropic and AI SDK endpoints.

    Routes: ``/v1/models``, ``/v1/chat/completions``, ``/v1/completions``,
    ``/v1/responses``, ``/v1/messages`` (Anthropic), ``/api/chat`` (the AI SDK's
    ``useChat``), ``/health`` and ``/`` (a chat page). A chat model is called with the
    conversation, a text LLM with it rendered as a prompt (``/v1/completions``: the
    prompt), any other runnable with the list of messages; ``temperature``, the
    token limit, ``stop`` and ``tools`` are passed to a model (or a ``pipe`` that starts
    with one) as call arguments; function tools are converted to the model's API's shape
    (OpenAI chat, Responses or Anthropic).

    Args:
        runnable: what to serve: a model, a ``pipe(...)``, a ``RunnableLambda`` chain.
        api_key: when set, every route but ``/health`` and ``/`` requires it, as
            ``Authorization: Bearer KEY`` or ``x-api-key: KEY`` (what the OpenAI and
            Anthropic SDKs send); compared in constant time, never shown.
        model_name: the model name requests may give and replies report (default: the
            model's ``model`` field, else the runnable's name).
        max_body_bytes: the largest request body; past it, 413.
        max_concurrency: calls running at once; past it, 429 with ``Retry-After``.
        resume_window: seconds a stream outlives its client, to be resumed with
            ``Last-Event-ID`` (see ``rxllm.serve._resume``); ``None``: a client that
            leaves cancels the call at once.
        resume_max_events: events kept per resumable stream.

    When the server stops, it cancels the streams still running and closes the served
    model's connections, which belong to the server's event loop (the model stays
    usable).

    Raises:
        InvalidInputError: for a runnable that is not one, or a limit that is not a
            positive number.
    """
    if not isinstance(runnable, Runnable):
        raise InvalidInputError(f"create_app serves a Runnable, not {type(runnable).__name__}")
    for name, value in (("max_body_bytes", max_body_bytes), ("max_concurrency", max_concurrency),
                        ("resume_max_events", resume_max_events)):  # fmt: skip
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidInputError(f"{name} must be a whole number of at least 1, not {value!r}")
    if resume_window is not None and not (
        isinstance(resume_window, int | float) and 0 < resume_window < float("inf")
    ):
        raise InvalidInputError(f"resume_window must be seconds above 0, not {resume_window!r}")
    if api_key is not None and not isinstance(api_key, SecretStr):
        if not isinstance(api_key, str):
            raise InvalidInputError("api_key must be a str or a SecretStr")
        api_key = SecretStr(api_key)
    if api_key is not None and not api_key.get_secret_value():
        raise InvalidInputError("api_key is empty")
    name = model_name or getattr(_target(runnable), "model", None) or runnable.get_name()
    store = None if resume_window is None else ResumeStore(resume_window, resume_max_events)
    server = _Server(runnable, api_key, str(name), max_body_bytes, _Slots(max_concurrency), store)
    page = _page()

    async def models(request: Request) -> Response:
        try:
            server.check_key(request)
        except _Refused as refused:
            return error_response("openai-chat", refused.error)
        # One list both SDKs read: OpenAI's fields and Anthropic's side by side.
        name = server.model_name
        model = {
            "id": name,
            "object": "model",
            "created": 0,
            "owned_by": "rxllm",
            "type": "model",
            "display_name": name,
            "created_at": "1970-01-01T00:00:00Z",
        }
        listing = {"object": "list", "data": [model], "has_more": False}
        return JSONResponse({**listing, "first_id": name, "last_id": name})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def home(request: Request) -> Response:
        return HTMLResponse(page)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        format = "anthropic" if request.url.path.startswith("/v1/messages") else "openai-chat"
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return error_response(format, ClientError(exc.status_code, kind, message))

    async def server_error(request: Request, exc: Exception) -> Response:
        format = "anthropic" if request.url.path.startswith("/v1/messages") else "openai-chat"
        return error_response(format, client_error(exc))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if store is not None:
            await store.aclose()
        # Its connections belong to this loop, which ends with the server; the model
        # stays usable (a later call opens new ones).
        close = getattr(_target(runnable), "aclose", None)
        if close is not None:
            await close()

    routes = [
        Route("/", home),
        Route("/health", health),
        Route("/v1/models", models),
        Route("/v1/chat/completions", _model_route(server, "openai-chat"), methods=["POST"]),
        Route("/v1/completions", _model_route(server, "openai-completions"), methods=["POST"]),
        Route("/v1/responses", _model_route(server, "openai-responses"), methods=["POST"]),
        Route("/v1/messages", _model_route(server, "anthropic"), methods=["POST"]),
        Route("/api/chat", _model_route(server, "vercel-ui"), methods=["POST"]),
        Route("/v1/streams/{key}", _resume_route(server, ai_sdk=False)),
        Route("/api/chat/{key}/stream", _resume_route(server, ai_sdk=True)),
    ]
    handlers = {HTTPException: http_error, Exception: server_error}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.state.server = server
    return app
