"""The chunk encoders' direct route (a plain text item straight to the bytes of its event)
writes what the general route (``read``'s ``Piece``, an ``Event``, ``frame``) writes, and
``dumps`` writes what ``json.dumps`` writes."""

from __future__ import annotations

import copy
import itertools
import json
import math
import uuid
from contextlib import ExitStack
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rxllm.schema import AIMessageChunk, GenerationChunk
from rxllm.serve import FORMATS
from rxllm.serve._encoder import ChunkEncoder, dumps
from rxllm.serve._sse import Outgoing, frame
from rxllm.serve._stream import encoder_for

from .conftest import Expected, encode, objects, replies

CHUNK_FORMATS = sorted(set(FORMATS) - {"events"})

#: Text with what JSON escapes (quotes, backslashes, control characters, CR and LF), what
#: it keeps (non-ASCII, U+2028, NEL) and a lone surrogate, drawn often.
_TEXT = st.text(
    st.sampled_from(
        ['"', "\\", "\n", "\r", "\0", "\x1f", "\x7f", "\u2028", "\x85", "é", "😀", "\ud800"]
    )
    | st.characters(),
    max_size=8,
)
_ID = st.none() | st.text(max_size=6)


@st.composite
def _plain(draw: st.DrawFn) -> Any:
    """An item that is text alone: a string, a chat chunk (with an id or not), a text chunk."""
    text = draw(_TEXT)
    kind = draw(st.sampled_from(["str", "chat", "generation"]))
    if kind == "str":
        return text
    if kind == "chat":
        return AIMessageChunk(content=text, id=draw(_ID))
    return GenerationChunk(text=text)


def _text(item: Any) -> str:
    if isinstance(item, AIMessageChunk):
        return item.content
    return item.text if isinstance(item, GenerationChunk) else str(item)


def _both(format: str, model: str | None, items: list[Any]) -> list[list[Outgoing]]:
    """The events of ``items`` on the direct route and with it closed, one list a route,
    from two encoders alike (the same time, the same ids in turn)."""
    routes: list[list[Outgoing]] = []
    first = encoder_for(format, model)
    for closed in (False, True):
        encoder = copy.deepcopy(first)
        assert isinstance(encoder, ChunkEncoder)
        ids = (f"{i:032x}" for i in itertools.count())
        with ExitStack() as patches:
            patches.enter_context(patch.object(uuid, "uuid4", side_effect=map(uuid.UUID, ids)))
            if closed:
                patches.enter_context(patch("rxllm.serve._encoder.plain_text", return_value=""))
            events = [event for item in items for event in encoder.feed(item)]
            routes.append([*events, *encoder.close()])
    return routes


def _check(format: str, model: str | None, items: list[Any]) -> list[Outgoing]:
    direct, general = _both(format, model, items)
    assert not any(isinstance(event, bytes) for event in general)
    assert [frame(event) for event in direct] == [frame(event) for event in general]
    # With ids (a resumable stream's framing) as well.
    with_ids = [frame(event, str(i)) for i, event in enumerate(direct)]
    assert with_ids == [frame(event, str(i)) for i, event in enumerate(general)]
    return direct


@example(format="openai-chat", model="\0", items=["a", "b"])  # the model's JSON is the text's
@example(format="anthropic", model=None, items=["", 'say "hi"\\\r\n', "\u2028"])
@given(st.sampled_from(CHUNK_FORMATS), _ID, st.lists(_plain(), max_size=6))
def test_plain_items_direct_route_writes_what_the_general_route_writes(
    format: str, model: str | None, items: list[Any]
) -> None:
    direct = _check(format, model, items)
    texts = [bool(_text(item)) for item in items]
    if format in ("openai-chat", "openai-completions"):
        expected = sum(texts[1:])  # the route opens with the stream, on the first item
    else:
        expected = max(sum(texts) - 1, 0)  # it opens with the text part, on the first text
    assert sum(isinstance(event, bytes) for event in direct) == expected


@given(st.sampled_from(CHUNK_FORMATS), replies(), st.lists(st.tuples(st.integers(0, 12), _TEXT)))
def test_mixed_streams_direct_route_writes_what_the_general_route_writes(
    format: str, reply: Expected, inserts: list[tuple[int, str]]
) -> None:
    """Plain text among reasoning, tool calls and usage: parts open and close around it."""
    items: list[Any] = list(reply.chunks)
    for place, text in inserts:
        items.insert(min(place, len(items)), text)
    _check(format, None, items)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(st.characters()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@example(value=[math.nan, math.inf, -math.inf, 1e300, -0.0, 0.1])
@example(
    value={"a\ud800": "\udfff é \u2028 \x00"}
)  # lone surrogates, kept as json.dumps keeps them
@given(_JSON)
def test_dumps_writes_what_json_dumps_writes(value: Any) -> None:
    assert dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("format", CHUNK_FORMATS)
def test_a_lone_surrogate_is_written_as_its_json_escape(format: str) -> None:
    """UTF-8 has no bytes for it (``json.loads('"\\ud800"')`` makes one): a client's
    JSON reader gets it back from the escape, on either route."""
    items = [
        "a\ud800",  # opens the stream, or the text part: the general route
        AIMessageChunk(content="\udfffb"),  # the direct route
        AIMessageChunk(content="c", reasoning="\udbff"),  # the general route
    ]
    body = encode(items, format)
    text = json.dumps(objects(body), ensure_ascii=False)
    assert "a\ud800" in text
    assert "\udfffb" in text
    assert ("\udbff" in text) is (format != "openai-completions")  # which writes no reasoning
