"""Tests of the incremental SSE decoder against WHATWG HTML 9.2.6."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxllm._constants import MAX_EVENT_BYTES
from rxllm._http._sse import ServerSentEvent, SSEDecoder
from rxllm.errors import EventTooLargeError, ProtocolError

E = ServerSentEvent


def decode(*chunks: bytes, limit: int = MAX_EVENT_BYTES) -> list[ServerSentEvent]:
    """Feed ``chunks`` to a fresh decoder, then flush it."""
    decoder = SSEDecoder(limit)
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.flush()
    return events


def bytewise(stream: bytes) -> list[bytes]:
    return [stream[i : i + 1] for i in range(len(stream))]


# Line endings


@pytest.mark.parametrize("eol", ["\n", "\r", "\r\n"])
def test_each_line_ending(eol: str) -> None:
    stream = f"event: a{eol}data: 1{eol}data: 2{eol}{eol}data: 3{eol}{eol}".encode()
    expected = [E("a", "1\n2"), E("message", "3")]
    assert decode(stream) == expected
    assert decode(*bytewise(stream)) == expected


def test_mixed_line_endings() -> None:
    assert decode(b"data: 1\rdata: 2\ndata: 3\r\n\r\rdata: 4\n\r\n") == [
        E(data="1\n2\n3"),
        E(data="4"),
    ]


def test_cr_then_lf_in_next_feed_is_one_line_ending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # Were this LF a second line ending, the blank line would dispatch "a" alone.
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n\r") == [E(data="a\nb")]
    assert decoder.feed(b"\n") == []  # the LF of that last CRLF, not a blank line
    assert decoder.feed(b"data: c\n\n") == [E(data="c")]


def test_pending_cr_survives_empty_feeds() -> None:
    assert decode(b"data: a\r", b"", b"", b"\n", b"data: b\n\n") == [E(data="a\nb")]


def test_cr_at_end_of_feed_then_ordinary_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"data: b\r") == []
    assert decoder.feed(b"\r") == [E(data="a\nb")]


def test_cr_cr_across_feeds_is_a_blank_line() -> None:
    assert decode(b"data: a\r", b"\rdata: b\r\r") == [E(data="a"), E(data="b")]


def test_lone_lf_after_cr_lf_is_a_blank_line() -> None:
    assert decode(b"data: a\r\n", b"\n") == [E(data="a")]


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1e"])
def test_unicode_line_separators_are_not_line_breaks(char: str) -> None:
    data = f'{{"text": "a{char}b"}}'
    stream = f"data: {data}\n\n".encode()
    events = decode(stream)
    assert events == [E(data=data)]
    if ord(char) >= 0x20:  # JSON forbids raw C0 controls in strings
        assert events[0].json() == {"text": f"a{char}b"}
    assert decode(*bytewise(stream)) == events


# Fields


def test_multiline_data_is_joined_with_lf() -> None:
    assert decode(b"data: first\ndata:\ndata: third\n\n") == [E(data="first\n\nthird")]


def test_only_one_space_after_the_colon_is_removed() -> None:
    assert decode(b"data:  two\n\ndata:none\n\ndata:\ttab\n\ndata: a: b\n\n") == [
        E(data=" two"),
        E(data="none"),
        E(data="\ttab"),
        E(data="a: b"),
    ]


def test_field_without_colon_has_empty_value() -> None:
    assert decode(b"data\n\n") == [E(data="")]
    assert decode(b"data\ndata\n\n") == [E(data="\n")]
    assert decode(b"event\ndata: x\n\n") == [E("message", "x")]


def test_field_name_is_exact() -> None:
    # "data " and "Data" are unknown fields, so nothing is ever dispatched.
    assert decode(b"data : x\n\nData: x\n\n") == []


def test_comments_are_dropped() -> None:
    stream = b": ping - 2025-01-01 00:00:00.000000+00:00\n\ndata: a\n:\n: mid\ndata: b\n\n"
    assert decode(stream) == [E(data="a\nb")]


def test_event_id_and_retry() -> None:
    decoder = SSEDecoder()
    first = decoder.feed(b"event: delta\nid: 7\nretry: 1500\ndata: x\n\n")
    assert first == [E(event="delta", data="x", id="7", retry=1500)]
    # The type and retry belong to one event; the id persists.
    assert decoder.feed(b"data: y\n\n") == [E(event="message", data="y", id="7", retry=None)]
    assert decoder.last_event_id == "7"
    assert decoder.retry == 1500
    assert decoder.feed(b"id: 8\ndata: z\n\n") == [E(data="z", id="8")]
    assert decoder.feed(b"id\ndata: w\n\n") == [E(data="w", id="")]


def test_id_is_none_until_sent() -> None:
    assert decode(b"data: x\n\n") == [E(data="x", id=None)]


def test_id_with_nul_is_ignored() -> None:
    assert decode(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n") == [
        E(data="a", id="1"),
        E(data="b", id="1"),
    ]


def test_id_set_by_undispatched_block_persists() -> None:
    assert decode(b"id: 5\n\ndata: a\n\n") == [E(data="a", id="5")]


@pytest.mark.parametrize(
    "value", ["10a", "-5", "+5", " 5", "5.0", "", "\u0661\u0662", "\u00b2", "1" * 5000]
)
def test_retry_that_is_not_ascii_digits_is_ignored(value: str) -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"retry: 100\n\n") == []
    events = decoder.feed(f"retry: {value}\ndata: x\n\n".encode())
    assert events == [E(data="x", retry=None)]
    assert decoder.retry == 100


def test_retry_leading_zeros() -> None:
    assert decode(b"retry: 0042\ndata: x\n\n") == [E(data="x", retry=42)]


def test_unknown_fields_are_ignored() -> None:
    assert decode(b"foo: bar\ndata: x\nbaz\n\n") == [E(data="x")]


def test_empty_event_type_means_message() -> None:
    assert decode(b"event:\ndata: x\n\n") == [E("message", "x")]


def test_last_event_type_wins() -> None:
    assert decode(b"event: a\nevent: b\ndata: x\n\n") == [E("b", "x")]


def test_event_without_data_is_not_dispatched() -> None:
    # The type of the discarded block must not leak into the next event.
    assert decode(b"event: ping\n\n\n\ndata: x\n\n") == [E("message", "x")]


# UTF-8


@pytest.mark.parametrize("char", ["é", "한", "😀"])
def test_multibyte_character_split_at_every_byte(char: str) -> None:
    stream = f"event: {char}\ndata: {char}x{char}\n\n".encode()
    expected = [E(char, f"{char}x{char}")]
    for i in range(len(stream) + 1):
        assert decode(stream[:i], stream[i:]) == expected, i
    assert decode(*bytewise(stream)) == expected


def test_bom_is_stripped() -> None:
    stream = b"\xef\xbb\xbfdata: x\n\n"
    assert decode(stream) == [E(data="x")]
    assert decode(*bytewise(stream)) == [E(data="x")]
    assert decode(b"\xef", b"", b"\xbb\xbf", b"data: x\n\n") == [E(data="x")]


def test_only_one_bom_at_stream_start_is_stripped() -> None:
    # The second BOM makes the field name "\ufeffdata", an unknown field.
    assert decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n") == []
    assert decode(b"data: x\n\n\xef\xbb\xbfdata: y\n\n") == [E(data="x")]
    assert decode(b"data: \xef\xbb\xbfx\n\n") == [E(data="\ufeffx")]


def test_short_stream_that_looks_like_a_bom() -> None:
    assert decode(b"\xef\xbb\xbf") == []
    assert decode(b"\n") == []
    with pytest.raises(ProtocolError):
        decode(b"\xef\xbb")


def test_invalid_utf8_raises() -> None:
    with pytest.raises(ProtocolError, match="invalid UTF-8") as info:
        decode(b"data: ok\n\ndata: bad \xff here\ndata: after\n\n")
    assert info.value.line == "data: bad \ufffd here"


def test_invalid_utf8_in_long_line_is_quoted_truncated() -> None:
    with pytest.raises(ProtocolError) as info:
        decode(b"data: " + b"x" * 10_000 + b"\xc3(\n\n")
    assert info.value.line == "data: " + "x" * 494


def test_truncated_character_at_eof_raises() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: \xc3") == []
    with pytest.raises(ProtocolError):
        decoder.flush()


# End of stream


def test_unterminated_event_at_eof_is_discarded() -> None:
    assert decode(b"data: x") == []
    assert decode(b"data: x\n") == []
    assert decode(b"data: x\r") == []
    assert decode(b"data: x\n\ndata: y\n") == [E(data="x")]


def test_terminated_event_at_eof_is_kept() -> None:
    assert decode(b"data: x\n\n") == [E(data="x")]
    assert decode(b"data: x\r\r") == [E(data="x")]


def test_final_line_without_line_ending_is_processed() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\n\nid: 9\nretry: 20") == [E(data="x")]
    assert decoder.flush() == []
    assert decoder.last_event_id == "9"
    assert decoder.retry == 20


def test_decoder_is_reusable_after_flush() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 1\ndata: lost") == []
    assert decoder.flush() == []
    # A new stream: the half line and pending data are gone, the id is kept.
    assert decoder.feed(b"\xef\xbb\xbfdata: y\n\n") == [E(data="y", id="1")]


# Scale


def test_ten_mebibyte_event_in_small_pieces() -> None:
    data = ("0123456789abcdé😀" * (10 * 1024 * 1024 // 20))[: 10 * 1024 * 1024]
    stream = f"event: big\ndata: {data}\ndata: tail\n\n".encode()
    chunks = [stream[i : i + 4096] for i in range(0, len(stream), 4096)]
    assert decode(*chunks) == [E("big", data + "\ntail")]


def test_many_small_events_in_one_feed() -> None:
    stream = b"".join(b'data: {"i": %d}\n\n' % i for i in range(1000))
    events = decode(stream)
    assert [event.json() for event in events] == [{"i": i} for i in range(1000)]


# Size limit


def cut(stream: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted(cuts)
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


LIMIT = 1000
PREFIX = len("data: ")  # counted with each line's data


def refused_after(decoder: SSEDecoder, read: bytes) -> tuple[int, EventTooLargeError]:
    """Feed ``read`` until the decoder refuses: the bytes it took, and the error."""
    fed = 0
    while fed < 100 * 1024 * 1024:
        fed += len(read)
        try:
            decoder.feed(read)
        except EventTooLargeError as error:
            return fed, error
    raise AssertionError("never refused")


@settings(database=None, max_examples=100)
@given(
    sizes=st.lists(st.integers(0, LIMIT - PREFIX), min_size=1, max_size=3).filter(
        lambda sizes: sum(sizes) + PREFIX * len(sizes) <= LIMIT
    ),
    events=st.integers(1, 4),
    data=st.data(),
)
def test_events_within_the_limit_pass_however_they_are_cut(
    sizes: list[int], events: int, data: st.DataObject
) -> None:
    lines = "".join(f"data: {'x' * n}\n" for n in sizes)
    stream = (lines + "\n").encode() * events
    expected = [E(data="\n".join("x" * n for n in sizes))] * events
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20), label="cuts")
    assert decode(*cut(stream, cuts), limit=LIMIT) == expected


@settings(database=None, max_examples=100)
@given(
    sizes=st.lists(st.integers(0, 2 * LIMIT), min_size=1, max_size=4).filter(
        lambda sizes: sum(sizes) + PREFIX * len(sizes) > LIMIT
    ),
    before=st.booleans(),
    data=st.data(),
)
def test_an_event_past_the_limit_fails_however_it_is_cut(
    sizes: list[int], before: bool, data: st.DataObject
) -> None:
    head = b"data: small\n\n" if before else b""
    stream = head + "".join(f"data: {'y' * n}\n" for n in sizes).encode() + b"\n"
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20), label="cuts")
    with pytest.raises(EventTooLargeError) as info:
        decode(*cut(stream, cuts), limit=LIMIT)
    assert isinstance(info.value, ProtocolError)
    assert info.value.limit == LIMIT
    assert f"{LIMIT:,} bytes" in str(info.value)
    assert set(info.value.line or "y") <= set("data: y")


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_the_limit_is_exact_whole_or_byte_by_byte(eol: str) -> None:
    fits = f"data: {'x' * (LIMIT - PREFIX)}{eol}{eol}".encode()
    assert decode(fits, limit=LIMIT) == decode(*bytewise(fits), limit=LIMIT) != []
    over = f"data: {'x' * (LIMIT - PREFIX + 1)}{eol}{eol}".encode()
    with pytest.raises(EventTooLargeError):
        decode(over, limit=LIMIT)
    with pytest.raises(EventTooLargeError):
        decode(*bytewise(over), limit=LIMIT)


def test_an_endless_line_fails_once_past_the_limit_not_at_its_end() -> None:
    decoder = SSEDecoder(10_000)
    decoder.feed(b"data: ")
    fed, error = refused_after(decoder, b"z" * 1000)
    assert 10_000 < 6 + fed <= 11_000  # memory held: the limit, plus at most one read
    assert error.line == "data: " + "z" * 494  # quoted, shortened


def test_endless_data_lines_without_a_blank_line_fail_once_past_the_limit() -> None:
    fed, _ = refused_after(SSEDecoder(10_000), b"data: 123456789\n" * 10)
    held = fed // 16 * 15  # "data: 123456789" a line
    assert 10_000 < held <= 10_150  # the limit, plus at most one read


def test_comments_and_dispatched_events_do_not_count() -> None:
    stream = b": ping\n" * 300 + b"data: " + b"w" * 900 + b"\n\n"
    assert decode(stream * 20, limit=LIMIT) == [E(data="w" * 900)] * 20


def test_the_default_limit_is_the_constant() -> None:
    assert MAX_EVENT_BYTES == 64 * 1024 * 1024
    decoder = SSEDecoder()
    decoder.feed(b"data: ")
    fed, error = refused_after(decoder, b"v" * 1024 * 1024)
    assert fed == MAX_EVENT_BYTES
    assert error.limit == MAX_EVENT_BYTES


def test_decode_takes_the_limit() -> None:
    stream = [b"data: ", b"q" * 600, b"\n\n"]
    assert decode(*stream, limit=700) == [E(data="q" * 600)]
    with pytest.raises(EventTooLargeError):
        decode(*stream, limit=500)


# The record


def test_record_defaults_and_immutability() -> None:
    event = E(data="x")
    assert (event.event, event.data, event.id, event.retry) == ("message", "x", None, None)
    with pytest.raises(AttributeError):
        event.data = "y"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    assert E("e", "d", "i", 3) == E(event="e", data="d", id="i", retry=3)
    assert E(data="x") != E(data="y")


def test_decoded_record_equals_constructed_one() -> None:
    [event] = decode(b"event: e\nid: i\nretry: 3\ndata: d\n\n")
    built = E("e", "d", "i", 3)
    assert event == built
    assert hash(event) == hash(built)
    assert repr(event) == repr(built)
    assert type(event) is ServerSentEvent


def test_json() -> None:
    assert E(data='{"a": [1, 2]}').json() == {"a": [1, 2]}
    assert E(data="null").json() is None


@pytest.mark.parametrize("data", ["{", "", "[DONE]", "{} {}", "[" * 100_000])
def test_malformed_json_raises_protocol_error(data: str) -> None:
    with pytest.raises(ProtocolError, match="malformed JSON in SSE data") as info:
        E(data=data).json()
    assert info.value.line == data[:500]


# A whole stream


def test_feed_then_flush() -> None:
    chunks = [b"data: a\r", b"\ndata: b\r\n\r\nevent: x\ndata: ", b"c\n\ndata: lost"]
    assert decode(*chunks) == [E(data="a\nb"), E("x", "c")]


def test_decode_raises_on_bad_utf8() -> None:
    with pytest.raises(ProtocolError):
        decode(b"data: \xff\n\n")


# Property: cutting the stream anywhere changes nothing

_line_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20)
_id_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=10)
_event = st.tuples(
    st.one_of(st.none(), _line_text),  # event type
    st.one_of(st.none(), _id_text),  # id
    st.lists(_line_text, min_size=1, max_size=4),  # data lines
    st.booleans(),  # a comment line inside the block
)


def encode(
    events: Iterable[tuple[str | None, str | None, list[str], bool]], eol: str, bom: bool
) -> tuple[bytes, list[ServerSentEvent]]:
    """Serialise events, returning the stream and what a decoder must produce."""
    lines: list[str] = []
    expected: list[ServerSentEvent] = []
    last_id: str | None = None
    for event_type, event_id, data, comment in events:
        if event_type is not None:
            lines.append(f"event: {event_type}")
        if event_id is not None:
            lines.append(f"id: {event_id}")
            last_id = event_id
        for i, line in enumerate(data):
            if comment and i == 1:
                lines.append(": keep-alive")
            lines.append(f"data: {line}")
        lines.append("")
        expected.append(E(event_type or "message", "\n".join(data), last_id))
    text = "".join(line + eol for line in lines)
    return ("\ufeff" if bom else "").encode() + text.encode(), expected


@settings(database=None, max_examples=200)
@given(
    events=st.lists(_event, max_size=6),
    eol=st.sampled_from(["\n", "\r", "\r\n"]),
    bom=st.booleans(),
    data=st.data(),
)
def test_split_anywhere_gives_the_same_events(
    events: list[tuple[str | None, str | None, list[str], bool]],
    eol: str,
    bom: bool,
    data: st.DataObject,
) -> None:
    stream, expected = encode(events, eol, bom)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12), label="cuts"))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert b"".join(chunks) == stream
    assert decode(stream) == expected
    assert decode(*chunks) == expected


@pytest.mark.parametrize("data", ["[" * 300 + "]" * 300, '"\\ud800"', '{"a": 1, "a": 2}', "NaN"])
def test_json_agrees_with_the_json_module_in_the_corners(data: str) -> None:
    import json
    import math

    decoded = ServerSentEvent(data=data).json()
    expected = json.loads(data)
    assert decoded == expected or (math.isnan(decoded) and math.isnan(expected))


# The direct route for plain events (SSEDecoder._blocks) against the line-by-line one


class LineByLine(SSEDecoder):
    """The decoder with every complete line interpreted by ``_lines``, as the spec
    reads: the reference the direct route for plain events must agree with."""

    __slots__ = ()

    def _blocks(self, text: str) -> list[ServerSentEvent]:
        return self._lines(text[:-1].split("\n"))


class Counting(SSEDecoder):
    """The decoder, counting the lines that take the line-by-line route."""

    __slots__ = ("general",)

    def __init__(self) -> None:
        super().__init__()
        self.general = 0

    def _lines(self, lines: list[str]) -> list[ServerSentEvent]:
        self.general += len(lines)
        return super()._lines(lines)


def outcome(decoder: SSEDecoder, reads: list[bytes]) -> list[object]:
    """Every read's events, or the error that ended the stream, then the decoder's state."""
    seen: list[object] = []
    try:
        for read in [*reads, None]:
            seen.append(decoder.flush() if read is None else decoder.feed(read))
    except ProtocolError as error:
        seen.append((type(error), str(error), error.line, getattr(error, "limit", None)))
    seen.append((decoder.last_event_id, decoder.retry))
    return seen


_PIECES = [
    b'data: {"a": 1}\n\n',
    b"data: [DONE]\n\n",
    b"data: x\n",
    b"data: y\n\n",
    b"data:nospace\n\n",
    b"data\n\n",
    b"data: \n\n",
    b"data:  two spaces\n\n",
    b": comment\n",
    b": comment\n\n",
    b"event: error\n",
    b"event: delta\ndata: e\n\n",
    b"id: 7\n",
    b"id\n",
    b"retry: 10\n",
    b"retry: 1x\n",
    b"foo: bar\n",
    b"d\n",
    b":\n",
    b"\n",
    b"\r",
    b"\r\n",
    b"data: cr\r\n\r\n",
    b"data: cr\r\r",
    b"data: \xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\n\n",
    b"data: bad \xff\n\n",
    b"data: " + b"z" * 40 + b"\n\n",
    b"\xef\xbb\xbf",
]


@settings(database=None, max_examples=1000)
@given(
    pieces=st.lists(st.one_of(st.sampled_from(_PIECES), st.binary(max_size=6)), max_size=14),
    bom=st.booleans(),
    limit=st.sampled_from([5, 8, 12, 30, 46, MAX_EVENT_BYTES]),
    data=st.data(),
)
def test_plain_events_decode_as_line_by_line(
    pieces: list[bytes], bom: bool, limit: int, data: st.DataObject
) -> None:
    stream = b"\xef\xbb\xbf" * bom + b"".join(pieces)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8), label="cuts"))
    reads = cut(stream, cuts)
    assert outcome(SSEDecoder(limit), reads) == outcome(LineByLine(limit), reads)


def test_plain_events_take_the_direct_route() -> None:
    stream = [b'data: {"i": %d}\n\n' % i for i in range(100)] + [b"data: [DONE]\n\n"]
    # Whole events, and events cut in the middle of their line, as the network cuts them.
    reads = [
        stream[0] + stream[1],
        *stream[2:50],
        *(half for event in stream[50:] for half in (event[:9], event[9:])),
    ]
    decoder = Counting()
    events = [event for read in reads for event in decoder.feed(read)]
    assert events == [E(data=f'{{"i": {i}}}') for i in range(100)] + [E(data="[DONE]")]
    assert decoder.general == 0
    # Anything else in a block sends that block, and only it, line by line.
    assert decoder.feed(b"event: e\ndata: a\n\ndata: b\n\n") == [E("e", "a"), E(data="b")]
    assert decoder.general == 3


def test_a_read_is_let_go_of_as_it_is_decoded() -> None:
    # 64 KiB of OpenAI-shaped events, decoded in one read: the read, its text, its
    # blocks and its events would be four copies at once; the text and each block
    # are dropped once used, so the peak stays under four times the read.
    event = b'data: {"choices":[{"delta":{"content":" token"}}]}\n\n'
    read = event * (65536 // len(event))
    decoder = SSEDecoder()
    gc.collect()
    tracemalloc.start()
    try:
        events = decoder.feed(read)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(events) == 65536 // len(event)
    assert peak < 4 * len(read), f"{peak / len(read):.1f} times the read"
