"""What the format tests share: encoding without I/O, reading events back, and streams
of chunks drawn by hypothesis together with the reply they add up to."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from rxllm._http._sse import ServerSentEvent, SSEDecoder
from rxllm.schema import AIMessageChunk, ToolCallChunk, Usage
from rxllm.serve._errors import ClientError
from rxllm.serve._sse import frame
from rxllm.serve._stream import encoder_for


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in stream])


def encode(
    items: Iterable[Any], format: str, *, error: ClientError | None = None, **options: Any
) -> bytes:
    """The bytes ``to_sse`` writes for ``items``, straight from the encoder (sans-I/O):
    ending with ``error`` in-band if given, else completed."""
    encoder = encoder_for(format, **options)
    events = [event for item in items for event in encoder.feed(item)]
    events += encoder.close() if error is None else encoder.fail(error)
    return b"".join(frame(event) for event in events)


def events_of(body: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return decoder.feed(body) + decoder.flush()


def objects(body: bytes) -> list[Any]:
    """The JSON of every event's data but a final ``[DONE]``."""
    return [json.loads(event.data) for event in events_of(body) if event.data != "[DONE]"]


@dataclass
class Expected:
    """What a stream of chunks adds up to: the oracle a client's reading must match."""

    chunks: list[AIMessageChunk] = field(default_factory=list)
    text: str = ""
    reasoning: str = ""
    #: (id, name, arguments) of each call, in the order the calls began.
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    usage: Usage | None = None


def counts(usage: Any) -> tuple[int, int, int] | None:
    """The three token counts of a ``Usage`` (details left out), or ``None``."""
    if usage is None:
        return None
    return (usage.input_tokens, usage.output_tokens, usage.total_tokens)


_NONEMPTY = st.text(min_size=1, max_size=12)
_JSON = st.dictionaries(
    st.text(max_size=4),
    # Integers a JavaScript number holds exactly, for the AI SDK's client.
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=6),
    max_size=3,
)


@st.composite
def _pieces(draw: st.DrawFn) -> list[str]:
    """A tool call's JSON arguments, cut anywhere into pieces (the first may be empty)."""
    text = json.dumps(draw(_JSON), ensure_ascii=False)
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=4)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@st.composite
def replies(draw: st.DrawFn, *, usage: bool = True) -> Expected:
    """A stream of chat chunks: text, reasoning and tool-call pieces in any order
    (the argument pieces of one call interleaved with others'), maybe ending with usage.
    Every call's arguments are a JSON object once its pieces are joined."""
    reply = Expected()
    pending: dict[int, list[str]] = {}
    args: dict[int, str] = {}

    def call_piece(index: int) -> None:
        piece = pending[index].pop(0)
        args[index] += piece
        call = ToolCallChunk(index=index, args=piece)
        reply.chunks.append(AIMessageChunk(tool_call_chunks=[call]))

    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["text", "reasoning", "call", "args"]))
        waiting = sorted(i for i, rest in pending.items() if rest)
        if kind == "text":
            piece = draw(_NONEMPTY)
            reply.text += piece
            reply.chunks.append(AIMessageChunk(content=piece))
        elif kind == "reasoning":
            piece = draw(_NONEMPTY)
            reply.reasoning += piece
            reply.chunks.append(AIMessageChunk(reasoning=piece))
        elif kind == "call" or not waiting:
            index = len(args)
            first, *pending[index] = draw(_pieces())
            args[index] = first
            name = draw(st.from_regex(r"[a-z_]{1,8}", fullmatch=True))
            reply.calls.append((f"call_{index}", name, ""))
            call = ToolCallChunk(name=name, id=f"call_{index}", index=index, args=first)
            reply.chunks.append(AIMessageChunk(tool_call_chunks=[call]))
        else:
            call_piece(draw(st.sampled_from(waiting)))
    for index in sorted(pending):
        while pending[index]:
            call_piece(index)
    reply.calls = [(id, name, args[i]) for i, (id, name, _) in enumerate(reply.calls)]
    if usage and draw(st.booleans()):
        given, made = draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6))
        reply.usage = Usage(input_tokens=given, output_tokens=made, total_tokens=given + made)
        reply.chunks.append(AIMessageChunk(usage_metadata=reply.usage))
    return reply


NODE_DIR = Path(__file__).parent / "node"


class AISDK:
    """The AI SDK's own client (``DefaultChatTransport`` and ``readUIMessageStream``,
    as ``useChat`` runs them), in node: each call returns what it made of a stream,
    ``{"message": UIMessage, "chunks": [parts as validated], "errors": [...],
    "status": int, "headers": {...}}``."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.script = str(NODE_DIR / "read_ui_stream.mjs")

    def _run(self, *args: str, input: bytes) -> Any:
        done = subprocess.run(
            [self.node, self.script, *args],
            input=input,
            capture_output=True,
            cwd=NODE_DIR,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return json.loads(done.stdout)

    def read(self, body: bytes) -> dict[str, Any]:
        """What the client makes of the bytes of a response body."""
        result: dict[str, Any] = self._run(input=body)
        return result

    def read_many(self, bodies: list[bytes]) -> list[dict[str, Any]]:
        """``read`` of each body, in one node process (node starts in about 0.5 s)."""
        texts = [body.decode() for body in bodies]
        results: list[dict[str, Any]] = self._run("--batch", input=json.dumps(texts).encode())
        return results

    def chat(self, url: str, request: dict[str, Any]) -> dict[str, Any]:
        """What the client makes of ``POST url`` with ``request`` (``messages``, a list
        of UIMessages, and any other body fields), as ``useChat`` sends it."""
        result: dict[str, Any] = self._run(url, input=json.dumps(request).encode())
        return result


def _pinned_installed() -> bool:
    pinned = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["ai"]
    installed = NODE_DIR / "node_modules" / "ai" / "package.json"
    return installed.exists() and json.loads(installed.read_text())["version"] == pinned


@pytest.fixture(scope="session")
def ai_sdk() -> AISDK:
    """The AI SDK client, installed once per session with ``npm ci`` from the committed
    lock file (about 3 s; skipped when the pinned version is already installed)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run the AI SDK's own client")
    if not _pinned_installed():
        started = time.monotonic()
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci failed: {done.stderr.decode(errors='replace')[-2000:]}")
        print(f"npm ci of the AI SDK: {time.monotonic() - started:.1f} s")
    return AISDK(node)
