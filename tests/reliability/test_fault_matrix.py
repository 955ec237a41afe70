"""Server faults × every way of consuming a call, for every wire format.

The promise: under a fault, the consumer gets a typed error, the text it already had
(``.partial``, equal to what it saw), a retry only if no chunk had been emitted, and
nothing left open afterwards (connections, tasks, threads, file descriptors).

The deeper checks of single faults through ``stream``/``astream`` (timings, the server
seeing the client leave, pool state) are in ``tests/llms/test_faults.py``; the pairs it
covers are not repeated here (``Fault.skip``), every other pair is. Faults that the
decoders see (bytes, events, markers) run for every wire format; faults the shared
transport handles alike for all of them (statuses, timeouts, pacing) take the wire
formats in turn across the modes, so each still meets all three.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from rxllm.errors import (
    APIError,
    EventTooLargeError,
    FirstTokenTimeoutError,
    InternalServerError,
    ProtocolError,
    RateLimitError,
    StallTimeoutError,
    StreamInterruptedError,
)
from rxllm.testing import LeakTracker
from tests.conftest import wait_until
from tests.llms.test_faults import WIRES, Wire
from tests.servers.scripted import Pause, Reply, ScriptedServer
from tests.servers.wire import anthropic_error, ndjson, sse

from .harness import ALL_MODES, run

AB = ["a", "b"]
FIVE = ["one ", "two ", "three ", "four ", "five "]
BIG = "x" * (10 * 1024 * 1024)  # a 10 MiB event

#: An in-band error event, and the error class it stands for, per wire format.
IN_BAND: dict[str, tuple[bytes, type[APIError]]] = {
    "openai": (
        sse({"error": {"message": "overloaded", "type": "server_error"}}),
        InternalServerError,
    ),
    "anthropic": (anthropic_error(), InternalServerError),
    "ollama": (ndjson({"error": "out of memory"})[0], APIError),
}

#: A complete line that is not UTF-8.
NOT_UTF8 = {
    "openai": b'data: {"x": "\xff\xfe"}\n\n',
    "anthropic": b'event: content_block_delta\ndata: {"x": "\xff\xfe"}\n\n',
    "ollama": b'{"x": "\xff\xfe"}\n',
}


#: The start of a text event that never ends, past a 1 MiB ``max_event_bytes``.
HUGE = b"y" * (2 * 1024 * 1024)
OVERSIZED = {
    "openai": b'data: {"choices": [{"index": 0, "delta": {"content": "' + HUGE,
    "anthropic": b"event: content_block_delta\n"
    b'data: {"type": "content_block_delta", "index": 0, '
    b'"delta": {"type": "text_delta", "text": "' + HUGE,
    "ollama": b'{"message": {"role": "assistant", "content": "' + HUGE,
}


def status(code: int, **headers: str) -> Reply:
    body = b'{"error": {"message": "try later", "type": "x"}}'
    return Reply(code, [body], headers=headers, content_type="application/json")


def drip(pieces: list[bytes], every: float) -> list[bytes | Pause]:
    """The bytes of ``pieces`` one at a time, ``every`` seconds apart."""
    body: list[bytes | Pause] = []
    for byte in b"".join(pieces):
        body += [bytes([byte]), Pause(every)]
    return body


@dataclass
class Fault:
    """One server fault and what every consumer must see."""

    replies: Callable[[Wire, str], list[Reply]]
    #: The error class (per wire name if it differs), or ``None`` for success.
    error: type[BaseException] | dict[str, type[BaseException]] | None
    #: The text the consumer ends with: ``.partial`` on error, the output on success.
    text: str | None
    requests: int
    settings: dict[str, Any] = field(default_factory=dict)
    #: The shortest time the call may take (a ``Retry-After`` honoured).
    at_least: float = 0.0
    #: Modes ``tests/llms/test_faults.py`` already covers for every wire.
    skip: tuple[str, ...] = ()
    #: Whether the decoders see this fault (so every wire format is tried in every mode).
    per_wire: bool = True

    def error_for(self, wire: str) -> type[BaseException] | None:
        return self.error[wire] if isinstance(self.error, dict) else self.error


FAULTS: dict[str, Fault] = {
    "drop after 2 chunks": Fault(
        lambda w, _: [w.reply(w.partial(AB), end="drop"), w.reply(w.ok(["again"]))],
        StreamInterruptedError,
        "ab",
        1,
        skip=("stream", "astream"),
    ),
    "drop before the first chunk": Fault(
        lambda w, _: [w.reply([w.keepalive], end="drop"), w.reply(w.ok(["again"]))],
        None,
        "again",
        2,
        per_wire=False,
    ),
    "stall after 2 chunks, keep-alives flowing": Fault(
        lambda w, _: [w.reply([*w.partial(AB), *[w.keepalive, Pause(0.05)] * 40], end="hang")],
        StallTimeoutError,
        "ab",
        1,
        {"stall_timeout": 0.3},
        skip=("stream", "astream"),
        per_wire=False,
    ),
    "headers, then never a body": Fault(
        lambda w, _: [w.reply([], end="hang")],
        FirstTokenTimeoutError,
        "",
        1,
        {"first_token_timeout": 0.3},
        per_wire=False,
    ),
    "malformed JSON": Fault(
        lambda w, _: [w.reply([*w.partial(["a"]), w.malformed, *w.ok(["b"])])],
        ProtocolError,
        "a",
        1,
        skip=("stream", "astream"),
    ),
    "in-band error after 2 chunks": Fault(
        lambda w, name: [w.reply([*w.partial(AB), IN_BAND[name][0]]), w.reply(w.ok(["x"]))],
        {name: cls for name, (_, cls) in IN_BAND.items()},
        "ab",
        1,
    ),
    "end without the terminal marker": Fault(
        lambda w, _: [w.reply(w.partial(AB)), w.reply(w.ok(["again"]))],
        StreamInterruptedError,
        "ab",
        1,
        skip=("stream", "astream"),
    ),
    "429 with Retry-After, then a reply": Fault(
        lambda w, _: [status(429, **{"retry-after": "0.2"}), w.reply(w.ok(["fine"]))],
        None,
        "fine",
        2,
        at_least=0.2,
        per_wire=False,
    ),
    "429 with Retry-After, retries exhausted": Fault(
        lambda w, _: [status(429, **{"retry-after": "0.05"})] * 2,
        RateLimitError,
        "",
        2,
        {"max_retries": 1},
        at_least=0.05,
        per_wire=False,
    ),
    "503 with Retry-After, then a reply": Fault(
        lambda w, _: [status(503, **{"retry-after": "0.1"}), w.reply(w.ok(["fine"]))],
        None,
        "fine",
        2,
        at_least=0.1,
        per_wire=False,
    ),
    "every byte a write of its own": Fault(
        lambda w, _: [w.reply(w.ok(FIVE), write_size=1)],
        None,
        "".join(FIVE),
        1,
    ),
    "slow drip, 64 bytes every 2 ms": Fault(
        lambda w, _: [w.reply(w.ok(AB), write_size=64, drip=0.002)], None, "ab", 1, per_wire=False
    ),
    "slow drip inside a chunk longer than stall_timeout": Fault(
        # Bytes keep arriving, but no chunk completes: a stall all the same.
        lambda w, _: [w.reply([*w.partial(["a"]), *drip(w.partial(["b"])[-1:], 0.01)])],
        StallTimeoutError,
        "a",
        1,
        {"stall_timeout": 0.3},
        per_wire=False,
    ),
    "a 10 MiB event": Fault(
        lambda w, _: [w.reply(w.ok(["<", BIG, ">"]))],
        None,
        f"<{BIG}>",
        1,
    ),
    "an event past max_event_bytes after 2 chunks": Fault(
        lambda w, name: [w.reply([*w.partial(AB), OVERSIZED[name]], end="hang")],
        EventTooLargeError,
        "ab",
        1,
        {"max_event_bytes": 1024 * 1024},
    ),
    "a line that is not UTF-8": Fault(
        lambda w, name: [w.reply([*w.partial(["a"]), NOT_UTF8[name], *w.ok(["b"])])],
        ProtocolError,
        "a",
        1,
    ),
}


def _cases() -> list[Any]:
    cases = []
    wires = list(WIRES)
    for number, (name, fault) in enumerate(FAULTS.items()):
        modes = [m for m in ALL_MODES if m not in fault.skip]
        for index, mode in enumerate(modes):
            tried = wires if fault.per_wire else [wires[(number + index) % len(wires)]]
            for wire in tried:
                cases.append(pytest.param(name, wire, mode, id=f"{name}-{wire}-{mode}"))
    return cases


CASES = _cases()


@pytest.mark.parametrize(("fault_name", "wire_name", "mode"), CASES)
def test_fault(
    server: ScriptedServer, leaks: LeakTracker, fault_name: str, wire_name: str, mode: str
) -> None:
    fault, wire = FAULTS[fault_name], WIRES[wire_name]
    server.script(*fault.replies(wire, wire_name))
    model = wire.make(server.url, **fault.settings)
    started = time.monotonic()
    result = run(model, "Count", mode)
    elapsed = time.monotonic() - started
    expected = fault.error_for(wire_name)
    if expected is None:
        assert result.error is None
    else:
        assert type(result.error) is expected, repr(result.error)
        # What the consumer already had is kept, and is exactly what it saw.
        assert (result.error.partial or "") == fault.text  # type: ignore[attr-defined]
    assert result.text == fault.text
    assert len(server.requests) == fault.requests  # retried only before the first chunk
    assert elapsed >= fault.at_least
    model.close()
    wait_until(lambda: server.open_connections == 0)
    leaks.check()


def test_the_matrix_covers_every_mode_of_every_fault_and_every_wire() -> None:
    for name, fault in FAULTS.items():
        cases = [tuple(case.values[1:]) for case in CASES if case.values[0] == name]
        assert {mode for _, mode in cases} | set(fault.skip) == set(ALL_MODES)
        assert {wire for wire, _ in cases} == set(WIRES)
