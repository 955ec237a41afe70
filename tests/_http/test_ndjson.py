"""Tests of the incremental NDJSON decoder."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxllm._constants import MAX_EVENT_BYTES
from rxllm._http._ndjson import NDJSONDecoder
from rxllm.errors import EventTooLargeError, ProtocolError


def decode(*chunks: bytes, limit: int = MAX_EVENT_BYTES) -> list[Any]:
    """Feed ``chunks`` to a fresh decoder, then flush it."""
    decoder = NDJSONDecoder(limit)
    values: list[Any] = []
    for chunk in chunks:
        values += decoder.feed(chunk)
    values += decoder.flush()
    return values


OLLAMA = (
    b'{"model":"llama3","created_at":"2025-01-01T00:00:00Z","response":"Hel","done":false}\n'
    b'{"model":"llama3","created_at":"2025-01-01T00:00:01Z","response":"lo","done":false}\n'
    b'{"model":"llama3","created_at":"2025-01-01T00:00:02Z","response":"","done":true,'
    b'"eval_count":2}\n'
)


def test_lines_are_decoded_as_they_complete() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a": 1}\n{"b":') == [{"a": 1}]
    assert decoder.feed(b" 2}") == []
    assert decoder.feed(b"\n[3]\n") == [{"b": 2}, [3]]
    assert decoder.flush() == []


def test_split_at_every_position() -> None:
    expected = [json.loads(line) for line in OLLAMA.splitlines()]
    assert [value["response"] for value in expected] == ["Hel", "lo", ""]
    for i in range(len(OLLAMA) + 1):
        assert decode(OLLAMA[:i], OLLAMA[i:]) == expected, i
    assert decode(*[OLLAMA[i : i + 1] for i in range(len(OLLAMA))]) == expected


def test_crlf_is_tolerated() -> None:
    stream = OLLAMA.replace(b"\n", b"\r\n")
    expected = [json.loads(line) for line in OLLAMA.splitlines()]
    assert decode(stream) == expected
    # The CR and the LF in different reads.
    assert decode(*[stream[i : i + 1] for i in range(len(stream))]) == expected


def test_blank_lines_are_skipped() -> None:
    assert decode(b'\n\n{"a": 1}\n\r\n  \n\t\r\n{"b": 2}\n\n') == [{"a": 1}, {"b": 2}]
    assert decode(b"\n") == []
    assert decode(b"") == []
    assert decode(b" ") == []


def test_scalar_values() -> None:
    assert decode(b'1\n"x"\nnull\ntrue\n-0.5\n') == [1, "x", None, True, -0.5]


def test_final_line_without_newline_is_flushed() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a": 1}\n{"done": true}') == [{"a": 1}]
    assert decoder.flush() == [{"done": True}]
    assert decoder.flush() == []  # and only once
    assert decode(b'{"done": true}\r') == [{"done": True}]


def test_decoder_is_reusable_after_flush() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b"[1") == []
    with pytest.raises(ProtocolError):
        decoder.flush()
    assert decoder.feed(b"[2]\n") == [[2]]


@pytest.mark.parametrize(
    "line", ["{", "{} {}", "data: {}", "[DONE]", "nul", '{"a": 1},', "\ufeff{}", "\u00a0"]
)
def test_malformed_json_raises_protocol_error(line: str) -> None:
    with pytest.raises(ProtocolError, match="malformed JSON line") as info:
        decode(b'{"ok": 1}\n' + line.encode() + b"\r\n{}\n")
    assert info.value.line == line


def test_malformed_final_line_raises_on_flush() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"ok": 1}\n{"cut') == [{"ok": 1}]
    with pytest.raises(ProtocolError) as info:
        decoder.flush()
    assert info.value.line == '{"cut'


def test_long_malformed_line_is_quoted_truncated() -> None:
    line = '{"x": "' + "y" * 10_000
    with pytest.raises(ProtocolError) as info:
        decode(line.encode() + b"\n")
    assert info.value.line == line[:500]


def test_hostile_nesting_raises_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode(b"[" * 100_000 + b"]" * 100_000 + b"\n")


def test_invalid_utf8_raises() -> None:
    with pytest.raises(ProtocolError, match="invalid UTF-8") as info:
        decode(b'{"a": 1}\n{"b": "\xff"}\n{"c": 3}\n')
    assert info.value.line == '{"b": "\ufffd"}'


def test_truncated_character_at_eof_raises() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'"\xed\x95') == []
    with pytest.raises(ProtocolError):
        decoder.flush()


def test_utf16_is_not_guessed() -> None:
    # json.loads(bytes) would sniff this as UTF-16; the wire format is UTF-8.
    with pytest.raises(ProtocolError):
        decode('"x"'.encode("utf-16-le") + b"\n")


@pytest.mark.parametrize("char", ["é", "한", "😀"])
def test_multibyte_character_split_at_every_byte(char: str) -> None:
    stream = json.dumps({char: char * 3}, ensure_ascii=False).encode() + b"\n"
    for i in range(len(stream) + 1):
        assert decode(stream[:i], stream[i:]) == [{char: char * 3}], i


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1e"])
def test_unicode_line_separators_are_not_line_breaks(char: str) -> None:
    # Raw inside a string, as some servers write them.
    value = {"text": f"a{char}b"}
    stream = ('{"text": "a' + char + 'b"}\n').encode()
    if ord(char) >= 0x20:  # JSON forbids raw C0 controls in strings
        assert decode(stream) == [value]
    else:
        with pytest.raises(ProtocolError) as info:
            decode(stream)
        assert info.value.line == stream[:-1].decode()


def test_ten_mebibyte_line_in_small_pieces() -> None:
    text = ("0123456789abcdé😀" * (10 * 1024 * 1024 // 20))[: 10 * 1024 * 1024]
    stream = json.dumps({"response": text}, ensure_ascii=False).encode() + b"\n[1]\n"
    chunks = [stream[i : i + 4096] for i in range(0, len(stream), 4096)]
    assert decode(*chunks) == [{"response": text}, [1]]


# Size limit

LIMIT = 1000


def cut(stream: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted(cuts)
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


def refused_after(decoder: NDJSONDecoder, read: bytes) -> tuple[int, EventTooLargeError]:
    """Feed ``read`` until the decoder refuses: the bytes it took, and the error."""
    fed = 0
    while fed < 100 * 1024 * 1024:
        fed += len(read)
        try:
            decoder.feed(read)
        except EventTooLargeError as error:
            return fed, error
    raise AssertionError("never refused")


def line_of(size: int) -> bytes:
    """A JSON line of exactly ``size`` bytes (at least 2)."""
    return json.dumps("x" * (size - 2)).encode()


@pytest.mark.parametrize("before", [b"", b"[1]\n"])
def test_a_line_at_the_limit_passes_when_its_crlf_is_cut_between_cr_and_lf(
    before: bytes,
) -> None:
    # The CR is the line's ending, not part of it: found by the property test below.
    assert decode(before + line_of(LIMIT) + b"\r", b"\n", limit=LIMIT)[-1] == "x" * (LIMIT - 2)
    with pytest.raises(EventTooLargeError):
        decode(before + line_of(LIMIT + 1) + b"\r", b"\n", limit=LIMIT)


@settings(database=None, max_examples=100)
@given(
    sizes=st.lists(st.integers(2, LIMIT), min_size=1, max_size=5),
    crlf=st.booleans(),
    data=st.data(),
)
def test_lines_within_the_limit_pass_however_they_are_cut(
    sizes: list[int], crlf: bool, data: st.DataObject
) -> None:
    stream = b"".join(line_of(n) + (b"\r\n" if crlf else b"\n") for n in sizes)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20), label="cuts")
    assert decode(*cut(stream, cuts), limit=LIMIT) == ["x" * (n - 2) for n in sizes]


@settings(database=None, max_examples=100)
@given(
    size=st.integers(LIMIT + 1, 3 * LIMIT),
    before=st.integers(0, 3),
    newline=st.booleans(),
    data=st.data(),
)
def test_a_line_past_the_limit_fails_however_it_is_cut(
    size: int, before: int, newline: bool, data: st.DataObject
) -> None:
    stream = b"[1]\n" * before + line_of(size) + (b"\n[2]\n" if newline else b"")
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20), label="cuts")
    with pytest.raises(EventTooLargeError) as info:
        decode(*cut(stream, cuts), limit=LIMIT)
    assert isinstance(info.value, ProtocolError)
    assert info.value.limit == LIMIT
    assert f"{LIMIT:,} bytes" in str(info.value)
    assert (info.value.line or "").startswith('"x')


def test_an_endless_line_fails_once_past_the_limit_not_at_its_end() -> None:
    fed, error = refused_after(NDJSONDecoder(10_000), b"7" * 1000)
    assert fed == 11_000  # memory held: the limit, plus at most one read
    assert error.line == "7" * 500  # quoted, shortened


def test_the_default_limit_is_the_constant() -> None:
    fed, error = refused_after(NDJSONDecoder(), b"v" * 1024 * 1024)
    assert fed == MAX_EVENT_BYTES + 1024 * 1024
    assert error.limit == MAX_EVENT_BYTES == 64 * 1024 * 1024


def test_decode_takes_the_limit() -> None:
    stream = [b"[", b"1" * 600, b"]\n"]
    assert decode(*stream, limit=602) == [[int("1" * 600)]]
    with pytest.raises(EventTooLargeError):
        decode(*stream, limit=601)


def test_feed_then_flush() -> None:
    assert decode(b'{"a":', b" 1}\n\n[", b"2]") == [{"a": 1}, [2]]


def test_decode_raises_on_bad_json() -> None:
    with pytest.raises(ProtocolError):
        decode(b"[1]\n", b"oops\n")


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(database=None, max_examples=200)
@given(
    values=st.lists(_json, max_size=8),
    crlf=st.booleans(),
    final_newline=st.booleans(),
    ensure_ascii=st.booleans(),
    data=st.data(),
)
def test_split_anywhere_gives_the_same_values(
    values: list[Any], crlf: bool, final_newline: bool, ensure_ascii: bool, data: st.DataObject
) -> None:
    eol = "\r\n" if crlf else "\n"
    text = eol.join(json.dumps(value, ensure_ascii=ensure_ascii) for value in values)
    if final_newline and values:
        text += eol
    stream = text.encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12), label="cuts"))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert decode(stream) == values
    assert decode(*chunks) == values


_CORNERS = [
    '"\\ud800"',  # a lone surrogate: jiter refuses it, json takes it
    "[" * 300 + "]" * 300,  # deeper than jiter goes
    "[" * 100_000,
    "1" * 4300,
    "1" * 4301,  # past the digit limit of both
    "NaN",
    "-Infinity",
    "-0.0",
    "1e400",
    '{"a": 1, "a": 2}',
    '"\\u0000"',
    "\ufeff{}",
    " 1 ",
    "1 2",
    "",
    " \t\r",
    "\u00a0",
]


@settings(database=None, max_examples=300)
@given(
    lines=st.lists(
        st.one_of(
            st.sampled_from(_CORNERS),
            _json.map(json.dumps),
            st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=8),
        ),
        max_size=6,
    )
)
def test_values_are_what_json_loads_makes_of_each_line(lines: list[str]) -> None:
    # The decoder parses with jiter and lets json decide what jiter refuses: the result
    # is json's, line for line, errors included.
    stream = "".join(line + "\n" for line in lines).encode()
    expected: list[Any] = []
    for line in lines:
        try:
            expected.append(json.loads(line))
        except (ValueError, RecursionError):
            if line.strip(" \t\r"):
                with pytest.raises(ProtocolError, match="malformed JSON line"):
                    decode(stream)
                return
    assert repr(decode(stream)) == repr(expected)  # repr: NaN, -0.0 and 1 vs 1.0 told apart
