"""Incremental JSON parsing, the machinery of ``partial_json`` and ``json_items``.

``PartialParser`` reads a JSON document as its text streams in and gives the value so
far after each piece; ``ArraySplitter`` cuts a streamed array into the texts of its
elements. Both read each character once, in the piece it comes in, so a document costs
time in proportion to its length however it is cut. Neither knows about streams: the
operators feed them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

__all__ = ["ArraySplitter", "PartialParser", "json_error"]

_SPACE = re.compile(r"[ \t\n\r]*")
_WHITESPACE = " \t\n\r"
# ``[0-9]``, not ``\d``, which also matches digits of other scripts.
# A fraction or an exponent (group 1 or 2) makes it a float, as ``json.loads`` does.
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_NUMBER_PREFIX = re.compile(r"-?[0-9]*(?:\.[0-9]*)?(?:[eE][-+]?[0-9]*)?")
_NUMBER_START = frozenset("-0123456789")
# The characters and escapes of a string, and what may end a chunk inside one: an escape
# cut short, or a high surrogate escape and what has come of the escape after it. That
# one is not decoded yet: alone, without the low half that may follow, it would be half a
# character.
_CUT_SHORT = r"\\(?:u[0-9a-fA-F]{0,3})?"
_HIGH_HALF = r"[dD][89abAB][0-9a-fA-F]{2}"
_STRING_BODY = re.compile(
    r'(?:[^"\\\x00-\x1f]++|\\(?:["\\/bfnrt]'
    rf"|u(?!{_HIGH_HALF}(?:{_CUT_SHORT})?\Z)[0-9a-fA-F]{{4}}))*+"
)
# What ends a run of plain string characters: a quote, an escape, or a character JSON
# forbids in a string.
_STRING_END = re.compile(r'["\\\x00-\x1f]')
# The C decoder behind ``json.loads`` (or its Python twin where there is no C), without
# the wrapper around it: a fifth of the time for a short run of string characters.
_DECODE: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_UNFINISHED_ESCAPE = re.compile(rf"(?:{_CUT_SHORT}|\\u{_HIGH_HALF}(?:{_CUT_SHORT})?)\Z")
_LITERALS = (("true", True), ("false", False), ("null", None))
_START = re.compile(r"[\[{]")

# What an open container expects next.
_FIRST = 0  # just opened: a member, or the closing bracket
_KEY = 1  # after a comma in an object
_COLON = 2  # after a key
_VALUE = 3  # after a colon, or after a comma in an array
_NEXT = 4  # after a member: a comma, or the closing bracket


def json_error(message: str, text: str, at: int) -> json.JSONDecodeError:
    return json.JSONDecodeError(message, text, at)


class _Open:
    """A container still open: its complete members, and what it expects next."""

    __slots__ = ("members", "key", "expect")

    def __init__(self, members: dict[str, Any] | list[Any]) -> None:
        self.members = members
        self.key = ""  # in an object, the key whose value is being read
        self.expect = _FIRST


class _Reader:
    """What both readers keep: every piece of text given, for errors and ``.partial``."""

    __slots__ = ("texts",)

    def __init__(self) -> None:
        self.texts: list[str] = []

    def text(self) -> str:
        return "".join(self.texts)

    def fail(self, message: str, text: str, at: int) -> json.JSONDecodeError:
        """The error at ``at`` in ``text``, the last piece given."""
        whole = self.text()
        return json_error(message, whole, len(whole) - len(text) + at)


class PartialParser(_Reader):
    """Parses one JSON text as it is fed, chunk by chunk, reading each character once.

    Consumed text is dropped: all the parser keeps between chunks is the open containers
    (with their complete members), the string being read (decoded so far) and the few
    characters of a token cut short (a number, a literal or an escape), which are read
    again with the next chunk. ``scanned`` counts the characters read.
    """

    __slots__ = ("buffer", "stack", "in_string", "string", "in_key", "value", "complete",
                 "changed", "recheck", "fields", "scanned")  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.buffer = ""  # the token cut short at the end of the last chunk
        self.stack: list[_Open] = []  # the open containers, outermost first
        self.in_string = False
        self.string = ""  # the string being read, decoded so far
        self.in_key = False  # that string is a key
        self.value: Any = None  # the whole value, once complete
        self.complete = False
        self.changed = False  # the value so far changed since the last ``snapshot``
        #: A repeated key's value began: it may equal the one it replaces.
        self.recheck = False
        self.fields = 0  # how many top-level members are complete
        self.scanned = 0

    def feed(self, text: str, final: bool = False) -> None:
        """Parse ``text``, the next part of the document; ``final``: nothing follows.

        Raises:
            json.JSONDecodeError: if the text so far cannot begin a JSON value.
        """
        self.texts.append(text)
        if self.complete:
            return
        if self.buffer:
            text, self.buffer = self.buffer + text, ""
        self.scanned += len(text)
        if self.in_string and text and _STRING_END.search(text) is None:
            # The most common chunk: one that only extends the string being read.
            self.string += text
            if not self.in_key:
                self.changed = True
            return
        at = 0
        if not self.stack:
            found = _START.search(text)
            if found is None:
                return
            self.stack.append(_Open({} if found.group() == "{" else []))
            self.changed = True
            at = found.end()
        size, stack = len(text), self.stack
        while at < size:
            if self.in_string:
                if text[at] == '"':
                    end = at
                else:
                    stop = _STRING_END.search(text, at)
                    end = size if stop is None else stop.start()
                    if end < size and text[end] == "\\":  # a run with escapes, decoded in one call
                        end = _STRING_BODY.match(text, at).end()  # type: ignore[union-attr]
                        piece = _DECODE(text[at:end] + '"', 0)[0] if end > at else ""
                    else:
                        piece = text[at:end]
                    if piece:
                        self.string += piece
                        if not self.in_key:
                            self.changed = True
                    if end == size:
                        return
                if text[end] != '"':
                    if _UNFINISHED_ESCAPE.match(text, end) is None:
                        raise self.fail("Invalid character in string", text, end)
                    self.buffer = text[end:]
                    return
                self.in_string = False
                if self.in_key:
                    frame = stack[-1]
                    frame.key, frame.expect = self.string, _COLON
                else:
                    self._member(self.string)
                at = end + 1
                continue
            char = text[at]
            if char in _WHITESPACE:
                at += 1  # most tokens begin with one space: that takes no regex
                if at < size and text[at] in _WHITESPACE:
                    at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
                if at >= size:
                    break
                char = text[at]
            frame = stack[-1]
            members, expect = frame.members, frame.expect
            if expect == _NEXT:
                if char == ",":
                    frame.expect = _KEY if type(members) is dict else _VALUE
                elif char == ("}" if type(members) is dict else "]"):
                    if self._close():
                        return
                else:
                    raise self.fail("Expecting ',' delimiter", text, at)
                at += 1
                continue
            if type(members) is dict and expect != _VALUE:
                if expect == _COLON:
                    if char != ":":
                        raise self.fail("Expecting ':' delimiter", text, at)
                    frame.expect = _VALUE
                elif char == "}" and expect == _FIRST:
                    if self._close():
                        return
                elif char == '"':
                    self.in_string, self.string, self.in_key = True, "", True
                else:
                    raise self.fail("Expecting property name enclosed in double quotes", text, at)
                at += 1
                continue
            # A value: after a colon, or as an array's element.
            if char == "]" and expect == _FIRST:
                if self._close():
                    return
                at += 1
            elif char == "{" or char == "[" or char == '"':
                self._begin(frame)
                if char == '"':
                    self.in_string, self.string, self.in_key = True, "", False
                else:
                    stack.append(_Open({} if char == "{" else []))
                at += 1
            elif char in _NUMBER_START:
                # What could still grow into a number ("-", "1.", "2e") is not one yet.
                end = _NUMBER_PREFIX.match(text, at).end()  # type: ignore[union-attr]
                if end >= size and not final:
                    self.buffer = text[at:]
                    return
                number = _NUMBER.match(text, at)
                if number is None or number.end() != end:
                    raise self.fail("Invalid number", text, at)
                digits = number.group()
                self._begin(frame)
                self._member(int(digits) if number.lastindex is None else float(digits))
                at = end
            else:
                for word, meaning in _LITERALS:
                    if text.startswith(word, at):
                        self._begin(frame)
                        self._member(meaning)
                        at += len(word)
                        break
                    if word.startswith(text[at : at + len(word)]) and not final:
                        self.buffer = text[at:]
                        return
                else:
                    raise self.fail("Expecting value", text, at)

    def _begin(self, frame: _Open) -> None:
        """A member of ``frame`` begins: the value so far changes."""
        self.changed = True
        if type(frame.members) is dict and frame.key in frame.members:
            self.recheck = True

    def _member(self, value: Any) -> None:
        """``value``, complete, is the next member of the innermost open container."""
        frame = self.stack[-1]
        if isinstance(frame.members, dict):
            frame.members[frame.key] = value
        else:
            frame.members.append(value)
        frame.expect = _NEXT
        if len(self.stack) == 1:
            self.fields += 1

    def _close(self) -> bool:
        """Close the innermost container; whether that completes the whole value."""
        value = self.stack.pop().members
        if self.stack:
            self._member(value)
            return False
        self.value, self.complete = value, True
        return True

    def snapshot(self) -> Any:
        """The value so far, a copy that later chunks do not change; ``None`` before it.

        Members complete so far are shared with earlier snapshots (nothing changes them
        any more); the containers still open are copied, with the member being read.
        """
        self.changed = self.recheck = False
        if self.complete or not self.stack:
            return self.value  # ``None`` before the first bracket
        stack = self.stack
        child: Any
        if self.in_string and not self.in_key:
            child, outer = self.string, stack
        else:
            child, outer = stack[-1].members.copy(), stack[:-1]
        for frame in reversed(outer):
            members = frame.members.copy()
            if isinstance(members, dict):
                members[frame.key] = child
            else:
                members.append(child)
            child = members
        return child


_SCALAR_END = re.compile(r'[ \t\n\r"{}\[\],]')
_NESTED = re.compile(r'["{}\[\]]')
_IN_STRING = re.compile(r'["\\]')
_NOT_SPACE = re.compile(r"[^ \t\n\r]")

# What the array has open at its own level.
_BETWEEN = 0  # no element: whitespace, then an element, a comma or the bracket
_SCALAR = 1  # a number or literal, which whitespace, a comma or the bracket ends
_NESTING = 2  # a string or container, which its own closing character ends

# What the array expects next, between elements.
_ELEMENT_OR_END = 0  # just opened: an element, or the closing bracket
_ELEMENT = 1  # after a comma
_COMMA_OR_END = 2  # after an element


class ArraySplitter(_Reader):
    """Cuts a streamed JSON array into the texts of its elements, in one pass.

    Only the characters that give JSON its structure are looked at (quotes, brackets,
    commas, backslashes in strings), each once, in the chunk it comes in. The text of the
    element being read is kept in pieces and joined once, when it is whole, and then
    parsed once: linear in the length of the text. A container or string element is whole
    at its closing character; a number or literal at the space, comma or bracket after it.
    """

    __slots__ = ("opened", "closed", "reading", "expect", "pieces", "depth", "in_string",
                 "escaped")  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.opened = False
        self.closed = False
        self.reading = _BETWEEN
        self.expect = _ELEMENT_OR_END
        self.pieces: list[str] = []  # the element's text in the chunks before this one
        self.depth = 0  # brackets open in the element
        self.in_string = False
        self.escaped = False  # the last chunk ended with a backslash in a string

    def push(self, text: str) -> list[str]:
        """The elements that ``text``, the next chunk, completes.

        Raises:
            json.JSONDecodeError: if the text so far is not the beginning of an array.
        """
        self.texts.append(text)
        found: list[str] = []
        if self.closed:
            return found
        at = 0
        if not self.opened:
            at = text.find("[") + 1
            if at == 0:
                return found
            self.opened = True
        elif self.escaped and text:
            at, self.escaped = 1, False
        start, size = 0, len(text)  # where the element being read begins in ``text``
        while at < size:
            if self.in_string:
                mark = _IN_STRING.search(text, at)
                if mark is None:
                    break
                at = mark.end()
                if mark.group() == "\\":
                    at += 1  # past the escaped character, even if it is still to come
                    self.escaped = at > size
                elif self.depth == 0:
                    self.in_string = False
                    found.append(self._element(text, start, at))
                else:
                    self.in_string = False
                continue
            if self.reading == _NESTING:
                mark = _NESTED.search(text, at)
                if mark is None:
                    break
                char, at = mark.group(), mark.end()
                if char == '"':
                    self.in_string = True
                elif char == "{" or char == "[":
                    self.depth += 1
                else:
                    self.depth -= 1
                    if self.depth == 0:
                        found.append(self._element(text, start, at))
                continue
            if self.reading == _SCALAR:
                mark = _SCALAR_END.search(text, at)
                if mark is None:
                    break
                at = mark.start()
                if mark.group() in '"{}[':
                    raise self.fail("Expecting ',' delimiter", text, at)
                found.append(self._element(text, start, at))
                continue
            mark = _NOT_SPACE.search(text, at)
            if mark is None:
                break
            char, at = mark.group(), mark.start()
            if char == "," and self.expect == _COMMA_OR_END:
                self.expect = _ELEMENT
            elif char == "]" and self.expect != _ELEMENT:
                self.closed = True
                return found
            elif char in ",]}":
                raise self.fail("Expecting value", text, at)
            elif self.expect == _COMMA_OR_END:
                raise self.fail("Expecting ',' delimiter", text, at)
            else:
                start = at
                if char == '"':
                    self.reading, self.in_string = _NESTING, True
                elif char == "{" or char == "[":
                    self.reading, self.depth = _NESTING, 1
                else:
                    self.reading = _SCALAR
            at += 1
        if self.reading != _BETWEEN:
            self.pieces.append(text[start:])
        return found

    def _element(self, text: str, start: int, end: int) -> str:
        """The element that ends at ``end`` in ``text`` (and began at ``start``, if in it)."""
        element = text[start:end]
        if self.pieces:
            self.pieces.append(element)
            element = "".join(self.pieces)
            self.pieces.clear()
        self.reading, self.expect = _BETWEEN, _COMMA_OR_END
        return element
