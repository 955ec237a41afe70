"""A local OpenAI-compatible SSE server that is never the bottleneck (for bench/providers.py).

It answers ``POST .../completions`` and ``POST .../chat/completions`` with a stream of
``max_tokens`` content events (one word each), a finish event, a usage event when
``stream_options.include_usage`` asks for one, and ``data: [DONE]``, in OpenAI's exact
shapes. To cost as little as possible it is a bare ``asyncio.Protocol`` (HTTP/1.1,
keep-alive, no framework), renders each distinct response once and then writes the
cached bytes in a single ``write``, as one HTTP chunk. It runs in its own process, so
it has its own interpreter and core; ``providers.py`` checks that a client that only
reads the bytes is many times faster than any client that parses them.

Run::

    python bench/_server.py [--port 0]   # prints "listening on PORT", serves until killed
"""

from __future__ import annotations

import argparse
import asyncio
import json
from functools import lru_cache
from typing import Any

CREATED = 1_700_000_000
WORDS = ("Hello", " world", ",", " this", " is", " a", " token", " stream", ".", "\n")


def word(i: int) -> str:
    return WORDS[i % len(WORDS)]


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _chat_event(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "bench",
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _completion_event(text: str, finish: str | None) -> dict[str, Any]:
    return {
        "id": "cmpl-bench",
        "object": "text_completion",
        "created": CREATED,
        "model": "bench",
        "system_fingerprint": "fp_bench",
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
    }


@lru_cache(maxsize=64)
def body(chat: bool, chunks: int, usage: bool) -> bytes:
    """The whole SSE body of one streamed response, rendered once per shape."""
    events = []
    if chat:
        events.append(_event(_chat_event({"role": "assistant", "content": ""}, None)))
        events += [_event(_chat_event({"content": word(i)}, None)) for i in range(chunks)]
        events.append(_event(_chat_event({}, "length")))
    else:
        events += [_event(_completion_event(word(i), None)) for i in range(chunks)]
        events.append(_event(_completion_event("", "length")))
    if usage:
        counts = {"prompt_tokens": 5, "completion_tokens": chunks, "total_tokens": chunks + 5}
        last = _chat_event({}, None) if chat else _completion_event("", None)
        last["choices"] = []
        last["usage"] = counts
        events.append(_event(last))
    events.append(b"data: [DONE]\n\n")
    return b"".join(events)


@lru_cache(maxsize=64)
def response(chat: bool, chunks: int, usage: bool) -> bytes:
    """Status line, headers and the body as one HTTP chunk plus the last-chunk marker."""
    payload = body(chat, chunks, usage)
    head = (
        b"HTTP/1.1 200 OK\r\n"
        b"content-type: text/event-stream; charset=utf-8\r\n"
        b"cache-control: no-cache\r\n"
        b"x-request-id: req_bench\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    return head + b"%x\r\n" % len(payload) + payload + b"\r\n0\r\n\r\n"


NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
)


class OpenAIStreams(asyncio.Protocol):
    """One keep-alive connection: read a request, write its cached response, repeat."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            request = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.answer(head.split(" ", 2)[1], request)

    def answer(self, path: str, request: bytes) -> None:
        assert self.transport is not None
        if not path.endswith("/completions"):
            self.transport.write(NOT_FOUND)
            return
        fields = json.loads(request or b"{}")
        chunks = fields.get("max_tokens") or fields.get("max_completion_tokens") or 16
        usage = bool((fields.get("stream_options") or {}).get("include_usage"))
        self.transport.write(response(path.endswith("/chat/completions"), chunks, usage))


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(OpenAIStreams, "127.0.0.1", port, backlog=1024)
    print(f"listening on {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
