"""The transport's twins, ``stream_call`` (``httpx.Client``) and ``astream_call``
(``httpx.AsyncClient``), against a real server: every behaviour is checked for both.

The calls read a toy wire format (one item per line, ``END`` last), so what is tested is
the transport itself: sending, retrying, reading, mapping failures, scrubbing and closing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from rxllm._constants import MAX_ERROR_BODY_BYTES
from rxllm._http import _transport
from rxllm._http._transport import StreamPolicy, WireTranslator, astream_call, stream_call
from rxllm.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    RxLLMError,
    StreamInterruptedError,
)
from rxllm.operators._retry import backoff, retryable
from tests.conftest import wait_until
from tests.llms.conftest import fast_retries
from tests.servers.scripted import Pause, Reply, ScriptedServer, Until, free_port

__all__ = ["fast_retries"]  # the provider tests' autouse fixture: retries in milliseconds

TWINS = ["sync", "async"]
CANARY = "sk-canary-0123456789abcdef0123456789abcdef"
MIB = 1024 * 1024


@pytest.fixture(params=TWINS)
def twin(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class LineDecoder:
    """The toy format's decoder: a frame a line."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, read: bytes) -> list[str]:
        *lines, self.buffer = (self.buffer + read).split(b"\n")
        return [line.decode() for line in lines]

    def flush(self) -> list[str]:
        return []


class LineTranslator(WireTranslator[str, str]):
    """The toy format: an item a line, ``END`` last; ``BAD ...`` is refused by the
    translator itself, ``ODD ...`` is a frame it cannot read (a shape error)."""

    terminal = "END"

    def frame(self, frame: str) -> str | None:
        if frame == "END":
            self.finished = True
            return None
        if frame.startswith("BAD "):  # a malformed line, quoted by the error
            raise ProtocolError("a bad line", line=frame)
        if frame.startswith("ODD "):
            raise TypeError("not a line this translator knows")
        return frame


def wire(response: httpx.Response) -> tuple[LineDecoder, LineTranslator]:
    return LineDecoder(), LineTranslator()


def lines(*items: str, end: bool = True) -> list[bytes | Pause | Until]:
    body: list[bytes | Pause | Until] = [f"{item}\n".encode() for item in items]
    return [*body, b"END\n"] if end else body


def status(
    code: int, body: bytes = b'{"error": {"message": "try later"}}', /, **headers: str
) -> Reply:
    return Reply(code, [body], headers=headers, content_type="application/json")


@dataclass
class Outcome:
    items: list[str] = field(default_factory=list)
    error: BaseException | None = None
    #: Connections the client's pool still had checked out when the call returned.
    busy: int = 0


def busy(pool: Any) -> int:
    return sum(1 for c in pool.connections if not c.is_idle() and not c.is_closed())


def call(
    twin: str,
    url: str,
    *,
    max_retries: int = 2,
    secrets: tuple[str, ...] = (),
    timeout: float = 5.0,
    limit: int | None = None,
    text_of: Callable[[str], str] | None = None,
) -> Outcome:
    """One call through the twin, with a client made and closed for it."""
    policy = StreamPolicy(retryable, backoff, max_retries, secrets)
    outcome = Outcome()
    if twin == "sync":
        with httpx.Client(timeout=timeout) as client:
            build = lambda: client.build_request("POST", url)  # noqa: E731
            chunks = stream_call(client, build, wire, policy, text_of)
            try:
                for item in chunks:
                    outcome.items.append(item)
                    if limit is not None and len(outcome.items) >= limit:
                        break
            except RxLLMError as exc:
                outcome.error = exc
            finally:
                chunks.close()
            transport = client._transport
            assert isinstance(transport, httpx.HTTPTransport)
            outcome.busy = busy(transport._pool)
        return outcome

    async def run() -> None:
        async with httpx.AsyncClient(timeout=timeout) as client:
            build = lambda: client.build_request("POST", url)  # noqa: E731
            chunks = astream_call(client, build, wire, policy, text_of)
            try:
                async for item in chunks:
                    outcome.items.append(item)
                    if limit is not None and len(outcome.items) >= limit:
                        break
            except RxLLMError as exc:
                outcome.error = exc
            finally:
                await chunks.aclose()
            transport = client._transport
            assert isinstance(transport, httpx.AsyncHTTPTransport)
            outcome.busy = busy(transport._pool)

    asyncio.run(run())
    return outcome


def closed(server: ScriptedServer) -> None:
    """The server saw every connection closed (the clients are closed by ``call``)."""
    wait_until(lambda: server.open_connections == 0)


def test_the_twins_take_the_same_arguments() -> None:
    import inspect

    sync = inspect.signature(stream_call)
    async_ = inspect.signature(astream_call)
    assert list(sync.parameters) == list(async_.parameters)


def test_a_stream(server: ScriptedServer, twin: str) -> None:
    server.script(Reply(body=lines("a", "b", "c"), split=3))
    outcome = call(twin, f"{server.url}/x")
    assert outcome.error is None
    assert outcome.items == ["a", "b", "c"]
    assert [r.path for r in server.requests] == ["/x"]
    assert outcome.busy == 0
    closed(server)


def test_nothing_is_sent_before_iteration(server: ScriptedServer) -> None:
    policy = StreamPolicy(retryable, backoff)
    with httpx.Client() as client:
        chunks = stream_call(client, lambda: client.build_request("POST", server.url), wire, policy)
        chunks.close()
    assert server.requests == []


# Retries


def test_503_twice_then_success(server: ScriptedServer, twin: str) -> None:
    server.script(status(503), status(502), Reply(body=lines("fine")))
    outcome = call(twin, server.url)
    assert outcome.items == ["fine"]
    assert len(server.requests) == 3
    assert outcome.busy == 0
    closed(server)


@pytest.mark.parametrize(
    ("headers", "logged"),
    [({"retry-after": "0.3"}, "in 0.30 s"), ({"retry-after-ms": "250"}, "in 0.25 s")],
)
def test_retry_after(
    server: ScriptedServer,
    twin: str,
    caplog: pytest.LogCaptureFixture,
    headers: dict[str, str],
    logged: str,
) -> None:
    caplog.set_level(logging.INFO, logger="rxllm")
    server.script(status(429, **headers), Reply(body=lines("ok")))
    started = time.monotonic()
    outcome = call(twin, f"{server.url}/v1/x?key={CANARY}")
    assert outcome.items == ["ok"]
    assert time.monotonic() - started >= 0.25  # a lower bound: load only lengthens it
    [record] = [r for r in caplog.records if r.name == "rxllm"]
    assert record.getMessage() == (
        f"retrying POST {server.url}/v1/x {logged} after RateLimitError (retry 1 of 2)"
    )
    closed(server)


def test_the_retries_run_out(server: ScriptedServer, twin: str) -> None:
    server.script(*[status(503, **{"x-request-id": f"req_{i}"}) for i in range(3)])
    outcome = call(twin, server.url, max_retries=2)
    error = outcome.error
    assert isinstance(error, InternalServerError)
    assert error.status_code == 503
    assert error.request_id == "req_2"  # the last attempt's
    assert error.body == {"error": {"message": "try later"}}
    assert len(server.requests) == 3
    assert outcome.busy == 0
    closed(server)


def test_an_empty_stream_is_retried(server: ScriptedServer, twin: str) -> None:
    server.script(Reply(body=[]), Reply(body=lines("again")))
    outcome = call(twin, server.url)
    assert outcome.items == ["again"]
    assert len(server.requests) == 2
    closed(server)


# Errors


@pytest.mark.parametrize(
    ("code", "cls"),
    [(400, BadRequestError), (401, AuthenticationError), (403, PermissionDeniedError),
     (404, NotFoundError), (422, BadRequestError), (429, RateLimitError),
     (500, InternalServerError), (418, APIError)],
)  # fmt: skip
def test_each_status_maps_to_its_error(
    server: ScriptedServer, twin: str, code: int, cls: type[APIError]
) -> None:
    server.script(status(code, b'{"error": {"message": "no"}}', **{"request-id": "req_1"}))
    outcome = call(twin, f"{server.url}/v1/x", max_retries=0)
    error = outcome.error
    assert type(error) is cls
    assert error.status_code == code
    assert error.request_id == "req_1"
    assert error.body == {"error": {"message": "no"}}
    assert str(error) == f"HTTP {code} from POST {server.url}/v1/x: no"
    assert outcome.busy == 0
    closed(server)


def test_a_401_is_not_retried(server: ScriptedServer, twin: str) -> None:
    server.script(status(401), status(401))
    outcome = call(twin, server.url, max_retries=2)
    assert isinstance(outcome.error, AuthenticationError)
    assert len(server.requests) == 1
    closed(server)


def test_an_error_body_is_read_up_to_a_mebibyte(server: ScriptedServer, twin: str) -> None:
    server.script(status(400, b"x" * (2 * MIB)))
    outcome = call(twin, server.url)
    error = outcome.error
    assert isinstance(error, BadRequestError)
    assert error.body == "x" * MAX_ERROR_BODY_BYTES
    assert outcome.busy == 0
    closed(server)


def test_connection_refused(twin: str) -> None:
    outcome = call(twin, f"http://127.0.0.1:{free_port()}/v1/x?key={CANARY}", max_retries=1)
    error = outcome.error
    assert type(error) is APIConnectionError
    assert str(error).startswith("cannot reach http://127.0.0.1:")
    assert "/v1/x: ConnectError" in str(error)
    assert CANARY not in str(error)
    assert isinstance(error.__cause__, httpx.ConnectError)


def test_a_read_timeout(server: ScriptedServer, twin: str) -> None:
    server.script(Reply(body=[], end="hang"))
    outcome = call(twin, server.url, max_retries=0, timeout=0.2)
    error = outcome.error
    assert type(error) is APITimeoutError
    assert str(error) == "ReadTimeout while reading the response"
    assert isinstance(error.__cause__, httpx.ReadTimeout)
    assert outcome.busy == 0
    wait_until(lambda: server.aborted == 1)
    closed(server)


def test_a_read_timeout_is_retried(server: ScriptedServer, twin: str) -> None:
    server.script(Reply(body=[], end="hang"), Reply(body=lines("ok")))
    outcome = call(twin, server.url, timeout=0.2)
    assert outcome.items == ["ok"]
    assert len(server.requests) == 2
    closed(server)


def test_a_stream_cut_midway(server: ScriptedServer, twin: str) -> None:
    server.script(Reply(body=lines("one", "two", end=False), end="drop"), Reply(body=lines("x")))
    outcome = call(twin, server.url)
    error = outcome.error
    assert type(error) is StreamInterruptedError
    assert str(error).startswith("the connection was lost mid-stream: RemoteProtocolError")
    assert isinstance(error.__cause__, httpx.RemoteProtocolError)
    assert outcome.items == ["one", "two"]
    assert len(server.requests) == 1  # never retried once an item is out
    assert outcome.busy == 0
    closed(server)


@pytest.mark.parametrize("end", ["drop", "no END"])
def test_with_text_of_an_error_after_a_chunk_carries_the_text_so_far(
    server: ScriptedServer, twin: str, end: str
) -> None:
    # What lets a bridge hand the call's own generator to its consumer (Iteration).
    server.script(
        Reply(body=lines("one", "two", end=False), end="drop" if end == "drop" else "complete")
    )
    outcome = call(twin, server.url, text_of=str.upper)
    assert isinstance(outcome.error, StreamInterruptedError)
    assert outcome.error.partial == "ONETWO"
    server.script(status(503), Reply(body=lines("one", end=False)))
    retried = call(twin, server.url, text_of=str.upper)
    assert getattr(retried.error, "partial", None) == "ONE"  # only the attempt that emitted
    server.script(Reply(body=lines("one", end=False)))
    assert getattr(call(twin, server.url).error, "partial", None) is None  # no text_of
    server.script(status(400))
    refused = call(twin, server.url, text_of=str.upper)
    assert isinstance(refused.error, BadRequestError)
    assert refused.error.partial is None  # nothing was emitted
    closed(server)


def test_a_stream_without_its_end(server: ScriptedServer, twin: str) -> None:
    server.script(Reply(body=lines("one", end=False)))
    outcome = call(twin, server.url)
    assert type(outcome.error) is StreamInterruptedError
    assert str(outcome.error) == "the stream ended without its terminal END"
    assert outcome.error.__cause__ is None
    assert len(server.requests) == 1
    closed(server)


def test_secrets_are_scrubbed(server: ScriptedServer, twin: str) -> None:
    echo = f'{{"error": {{"message": "bad key {CANARY}"}}}}'.encode()
    server.script(
        status(401, echo), Reply(body=[*lines("a", end=False), f"BAD {CANARY}\n".encode()])
    )
    error = call(twin, server.url, secrets=(CANARY,)).error
    assert isinstance(error, AuthenticationError)
    assert str(error).endswith("bad key [REDACTED]")
    assert CANARY not in repr(error.body)
    bad = call(twin, server.url, secrets=(CANARY,)).error
    assert isinstance(bad, ProtocolError)
    assert bad.line == "BAD [REDACTED]"
    assert CANARY not in str(bad)
    closed(server)


# Closing


SLOW = lines(*[f"tick {i}" for i in range(200)])


def slow_reply() -> Reply:
    body: list[bytes | Pause | Until] = []
    for piece in SLOW:
        body += [piece, Pause(0.02)]
    return Reply(body=body)


def test_breaking_out_of_a_sync_for_closes_the_response_at_once(server: ScriptedServer) -> None:
    server.script(slow_reply(), Reply(body=lines("next")))
    policy = StreamPolicy(retryable, backoff)
    with httpx.Client() as client:
        for item in stream_call(
            client, lambda: client.build_request("POST", server.url), wire, policy
        ):
            assert item == "tick 0"
            break
        # Still inside the client's lifetime: the response alone was closed.
        wait_until(lambda: server.aborted == 1)
        assert len(server.requests) == 1
        transport = client._transport
        assert isinstance(transport, httpx.HTTPTransport)
        assert busy(transport._pool) == 0
    closed(server)


def test_closing_early_closes_the_response(server: ScriptedServer, twin: str) -> None:
    server.script(slow_reply())
    outcome = call(twin, server.url, limit=2)
    assert outcome.items == ["tick 0", "tick 1"]
    assert outcome.busy == 0
    wait_until(lambda: server.aborted == 1)
    closed(server)


def test_an_error_in_the_data_closes_the_response(server: ScriptedServer, twin: str) -> None:
    server.script(Reply(body=[*lines("a", end=False), b"BAD line\n"], end="hang"))
    outcome = call(twin, server.url)
    assert isinstance(outcome.error, ProtocolError)
    assert outcome.items == ["a"]
    assert outcome.busy == 0
    wait_until(lambda: server.aborted == 1)
    closed(server)


def test_a_frame_the_translator_cannot_read_is_a_protocol_error_quoting_it(
    server: ScriptedServer, twin: str
) -> None:
    # The translator's TypeError (or KeyError...) on a frame it cannot read is caught
    # around it by the read loop, never reaching the consumer as itself.
    server.script(Reply(body=[*lines("a", end=False), b"ODD frame\n", b"b\n"]))
    outcome = call(twin, server.url, text_of=str)
    assert type(outcome.error) is ProtocolError
    assert "not shaped as" in str(outcome.error)
    assert outcome.error.line == '"ODD frame"'
    assert outcome.error.partial == "a"
    assert outcome.items == ["a"]
    assert len(server.requests) == 1
    closed(server)


def test_frames_after_the_terminal_one_are_drained_unread(
    server: ScriptedServer, twin: str
) -> None:
    server.script(Reply(body=[*lines("a"), b"BAD after the end\n", b"b\n"]))
    outcome = call(twin, server.url)
    assert outcome.error is None
    assert outcome.items == ["a"]
    assert outcome.busy == 0
    closed(server)


def test_an_exception_in_the_consumer_closes_the_response(server: ScriptedServer) -> None:
    server.script(slow_reply())
    policy = StreamPolicy(retryable, backoff)
    with httpx.Client() as client:

        def consume() -> None:
            for _ in stream_call(
                client, lambda: client.build_request("POST", server.url), wire, policy
            ):
                raise KeyError("consumer")

        with pytest.raises(KeyError):
            consume()
        wait_until(lambda: server.aborted == 1)
    closed(server)


# The pure parts both twins call


def test_failures_on_send_map_to_their_errors() -> None:
    request = httpx.Request("POST", f"http://h/v1/x?key={CANARY}")
    timeout = _transport._send_failure(httpx.ConnectTimeout("slow"), request)
    assert type(timeout) is APITimeoutError
    assert str(timeout) == "ConnectTimeout on POST http://h/v1/x"
    refused = _transport._send_failure(httpx.ConnectError("refused"), request)
    assert type(refused) is APIConnectionError
    assert str(refused) == "cannot reach http://h/v1/x: ConnectError: refused"


def test_failures_while_reading_map_to_their_errors() -> None:
    assert type(_transport._read_failure(httpx.ReadTimeout("t"), ())) is APITimeoutError
    lost = _transport._read_failure(httpx.ReadError("reset"), ())
    assert type(lost) is StreamInterruptedError
    assert str(lost) == "the connection was lost mid-stream: ReadError: reset"
    ours = ProtocolError(f"bad {CANARY}", line=CANARY)
    assert _transport._read_failure(ours, (CANARY,)) is ours
    assert str(ours) == "bad [REDACTED]"
    assert ours.line == "[REDACTED]"


@pytest.mark.parametrize(
    ("emitted", "attempt", "failure", "retried"),
    [
        (False, 0, InternalServerError("x"), True),
        (True, 0, InternalServerError("x"), False),  # a chunk is out
        (False, 2, InternalServerError("x"), False),  # the retries are spent
        (False, 0, AuthenticationError("x"), False),  # not retryable
    ],
)
def test_the_retry_decision(
    emitted: bool, attempt: int, failure: RxLLMError, retried: bool
) -> None:
    policy = StreamPolicy(retryable, lambda attempt: 0.5, max_retries=2)
    request = httpx.Request("POST", "http://h/x")
    cause = httpx.ReadError("r")
    decide: Callable[[], float] = lambda: _transport._delay_before_retry(  # noqa: E731
        failure,
        cause,
        emitted=emitted,
        attempt=attempt,
        policy=policy,
        request=request,
        headers=None,
    )
    if retried:
        assert decide() == 0.5
    else:
        with pytest.raises(type(failure)) as raised:
            decide()
        assert raised.value is failure
        assert raised.value.__cause__ is cause
