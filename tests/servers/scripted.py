"""A scripted HTTP/1.1 server on 127.0.0.1 that replays wire formats byte for byte.

Each request takes the next ``Reply`` from the script (or, once the script is used up,
the one ``respond(request)`` makes, if set): a status, headers, and a body given as
pieces of bytes and pauses, written with chunked transfer-encoding the way streaming
servers do. A reply can write every piece in several TCP writes (``split``), or in
writes of at most ``write_size`` bytes (1: byte by byte) with ``drip`` seconds between
them, end normally, drop the connection mid-body (``end="drop"``) or keep it open
without sending anything more (``end="hang"``). The server records every request and
watches every connection, so a test can check what was sent and that the client closed
what it opened (``open_connections``, ``peak_connections``, ``aborted``: responses the
client walked away from, ``body_bytes``: body bytes written so far).

It runs its own event loop on a thread, so sync and async tests use it alike.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Pause", "Recorded", "Reply", "ScriptedServer", "Until", "free_port"]


@dataclass(frozen=True)
class Pause:
    """Wait this many seconds before writing the next piece."""

    seconds: float


@dataclass(frozen=True)
class Until:
    """Wait until ``condition()`` holds (checked ``every`` seconds), at most ``timeout``.

    For load tests: ``Until(lambda: server.open_connections >= 1000, every=0.1)`` holds
    every reply until all the calls are open at once.
    """

    condition: Callable[[], bool]
    timeout: float = 30.0
    every: float = 0.01


@dataclass
class Reply:
    """One scripted response."""

    status: int = 200
    body: list[bytes | Pause | Until] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/event-stream"
    #: Write every piece of bytes in this many TCP writes (with a flush between).
    split: int = 1
    #: Write every piece of bytes in writes of at most this many bytes (1: byte by byte).
    write_size: int | None = None
    #: Seconds to wait between two writes of ``split`` or ``write_size`` (a slow drip).
    drip: float = 0.0
    #: "complete": end the body properly; "drop": close the socket mid-body;
    #: "hang": send nothing more and wait for the client to leave.
    end: Literal["complete", "drop", "hang"] = "complete"


@dataclass
class Recorded:
    """A request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def free_port() -> int:
    """A port nothing listens on (as far as anyone can tell right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    529: "Overloaded",
}


class ScriptedServer:
    """Serve scripted replies; ``with ScriptedServer() as server: ...``."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self._writers: set[asyncio.StreamWriter] = set()
        self.requests: list[Recorded] = []
        #: Keep every request in ``requests`` (off for long soaks; ``served`` still counts).
        self.record = True
        #: Requests served since the server started.
        self.served = 0
        self.opened = 0
        self.closed = 0
        #: Responses the client closed before the server had finished writing them.
        self.aborted = 0
        #: The most connections open at once.
        self.peak_connections = 0
        #: Body bytes written (chunk framing excluded), over all replies.
        self.body_bytes = 0
        #: Makes the reply to a request when the script is used up (``None``: a 500).
        self.respond: Callable[[Recorded], Reply] | None = None
        self.port = 0

    # Lifetime.

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self) -> None:
        # A deep backlog: a load test opens a thousand connections at once, and a refused
        # SYN is only retried a second later.
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # Scripting and inspection (from any thread).

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, replacing what was left."""
        with self._lock:
            self._script = deque(replies)
            self.requests.clear()
            self.aborted = 0

    @property
    def open_connections(self) -> int:
        return self.opened - self.closed

    @property
    def unused_replies(self) -> int:
        with self._lock:
            return len(self._script)

    # Serving.

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        self.peak_connections = max(self.peak_connections, self.opened - self.closed)
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                with self._lock:
                    self.served += 1
                    if self.record:
                        self.requests.append(request)
                    respond = self.respond
                    if self._script:
                        reply = self._script.popleft()
                    else:
                        reply = _unscripted() if respond is None else respond(request)
                if not await self._reply(reply, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
            self.closed += 1

    async def _reply(
        self, reply: Reply, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Write one reply; whether the connection can serve another request."""
        head = [
            f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}",
            f"content-type: {reply.content_type}",
            "transfer-encoding: chunked",
            "cache-control: no-cache",
        ]
        head += [f"{name}: {value}" for name, value in reply.headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        # The client speaks only after reading the whole response, so anything it
        # sends now is the end of the connection: it walked away.
        gone = asyncio.ensure_future(reader.read(1))
        try:
            for piece in reply.body:
                if gone.done():
                    self.aborted += 1
                    return False
                if isinstance(piece, Pause):
                    await asyncio.wait([gone], timeout=piece.seconds)
                    continue
                if isinstance(piece, Until):
                    deadline = self._loop.time() + piece.timeout
                    while not piece.condition() and self._loop.time() < deadline:
                        await asyncio.wait([gone], timeout=piece.every)
                        if gone.done():
                            break
                    continue
                if reply.write_size is not None:
                    parts = _sized(piece, reply.write_size)
                else:
                    parts = _split(piece, reply.split)
                for part in parts:
                    if gone.done():
                        self.aborted += 1
                        return False
                    writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                    await writer.drain()
                    self.body_bytes += len(part)
                    if reply.drip:
                        await asyncio.sleep(reply.drip)
                    elif reply.split > 1:
                        await asyncio.sleep(0.002)  # separate TCP segments
                    elif reply.write_size is not None:
                        await asyncio.sleep(0)  # let the loop flush each write alone
            if reply.end == "drop":
                return False
            if reply.end == "hang":
                await gone
                self.aborted += 1
                return False
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        except ConnectionError:
            self.aborted += 1
            return False
        finally:
            if not gone.done():
                gone.cancel()
                # Reading resumes with the next request; a cancelled read loses nothing.
                await asyncio.gather(gone, return_exceptions=True)


def _split(piece: bytes, parts: int) -> Iterable[bytes]:
    if parts <= 1 or len(piece) <= 1:
        return [piece]
    size = max(1, -(-len(piece) // parts))
    return [piece[i : i + size] for i in range(0, len(piece), size)]


def _sized(piece: bytes, size: int) -> Iterable[bytes]:
    return [piece[i : i + size] for i in range(0, len(piece), max(1, size))]


def _unscripted() -> Reply:
    return Reply(
        500, [b'{"error": "no reply scripted for this request"}'], content_type="application/json"
    )


async def _read_request(reader: asyncio.StreamReader) -> Recorded | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    return Recorded(method, path, headers, body)
