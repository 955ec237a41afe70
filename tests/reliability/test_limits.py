"""Oversized server data: a typed error, the text so far, and memory that stays bounded.

The fault matrix (``test_fault_matrix.py``) sends an event past a 1 MiB
``max_event_bytes`` through every mode; here the default limit (64 MiB) meets a server
that never ends its event, and an error body larger than rxllm reads.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator

import pytest

from rxllm._constants import MAX_ERROR_BODY_BYTES, MAX_EVENT_BYTES
from rxllm.errors import BadRequestError, EventTooLargeError
from rxllm.testing import LeakTracker
from tests.conftest import wait_until
from tests.llms.test_faults import WIRES
from tests.servers.scripted import Reply, ScriptedServer

from .harness import run
from .test_fault_matrix import AB, OVERSIZED

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def collected() -> Iterator[None]:
    """Collect these tests' large garbage now, not in the middle of a later ``ast.parse``:
    CPython 3.11.7 then fails with "AST constructor recursion depth mismatch", at random."""
    yield
    gc.collect()


@pytest.mark.parametrize("wire_name", list(WIRES))
def test_an_endless_event_fails_at_the_default_limit_not_at_its_end(
    server: ScriptedServer, leaks: LeakTracker, wire_name: str
) -> None:
    wire = WIRES[wire_name]
    # 200 MiB if the client read it all; the event never ends.
    endless = [OVERSIZED[wire_name][: -len(b"y" * 2 * MIB)], *[b"y" * MIB] * 200]
    server.script(wire.reply([*wire.partial(AB), *endless], end="hang"))
    # Were the limit not enforced, the stall timeout would end the test instead of a hang.
    model = wire.make(server.url, stall_timeout=60)
    result = run(model, "hi", "stream")
    assert type(result.error) is EventTooLargeError
    assert result.error.limit == MAX_EVENT_BYTES
    assert result.error.partial == result.text == "ab"
    assert (result.error.line or "").endswith("y" * 100)  # the start of the event, quoted
    assert len(result.error.line or "") <= 500
    # The client stopped at the limit (the rest is what the sockets' buffers held).
    assert server.body_bytes < MAX_EVENT_BYTES + 32 * MIB
    wait_until(lambda: server.aborted == 1)
    assert len(server.requests) == 1  # not retried: the same server would send it again
    model.close()
    wait_until(lambda: server.open_connections == 0)
    leaks.check()


@pytest.mark.parametrize("wire_name", list(WIRES))
def test_an_error_body_is_read_up_to_a_mebibyte(
    server: ScriptedServer, leaks: LeakTracker, wire_name: str
) -> None:
    wire = WIRES[wire_name]
    message = json.dumps({"error": {"message": "no", "type": "invalid_request_error"}})
    body = [message.encode()[:-2], b' "pad": "', *[b"p" * MIB] * 64, b'"}}']
    server.script(Reply(400, body, content_type="application/json"))
    model = wire.make(server.url)
    result = run(model, "hi", "stream")
    error = result.error
    assert type(error) is BadRequestError
    assert error.status_code == 400
    # Cut off, so no longer JSON: kept as text, its start intact.
    assert isinstance(error.body, str)
    assert error.body.startswith('{"error": {"message": "no"')
    assert len(error.body) == MAX_ERROR_BODY_BYTES
    assert len(str(error)) < 1000
    wait_until(lambda: server.aborted == 1)
    assert server.body_bytes < 32 * MIB  # of 64 MiB
    model.close()
    wait_until(lambda: server.open_connections == 0)
    leaks.check()


def test_a_small_error_body_is_still_decoded(server: ScriptedServer) -> None:
    wire = WIRES["openai"]
    body = json.dumps({"error": {"message": "bad model", "type": "invalid_request_error"}})
    server.script(Reply(400, [body.encode()], content_type="application/json"))
    model = wire.make(server.url)
    error = run(model, "hi", "stream").error
    assert isinstance(error, BadRequestError)
    assert error.body == json.loads(body)
    assert "bad model" in str(error)
    model.close()


def test_max_event_bytes_is_checked_and_used_per_model(server: ScriptedServer) -> None:
    wire = WIRES["openai"]
    server.script(wire.reply(wire.ok(["x" * 5000])), wire.reply(wire.ok(["x" * 5000])))
    roomy = wire.make(server.url, max_event_bytes=6000)
    tight = wire.make(server.url, max_event_bytes=4000)
    assert run(roomy, "hi", "stream").text == "x" * 5000
    error = run(tight, "hi", "stream").error
    assert isinstance(error, EventTooLargeError)
    assert error.limit == 4000
    with pytest.raises(ValueError, match="max_event_bytes"):
        wire.make(server.url, max_event_bytes=0)
    roomy.close()
    tight.close()
