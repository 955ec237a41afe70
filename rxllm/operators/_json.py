"""Structured output: JSON values parsed as their text streams in.

The parser is tolerant of an unfinished document, never of a wrong one: the value so
far has every member that has begun (a string cut mid-way appears as the prefix
received, an object as the members received). A number or ``true``/``false``/``null``
appears only once it is certainly whole (``12`` may become ``123``). Text before the
first ``{`` or ``[`` (a preamble, a ```` ```json ```` fence) is skipped, and so is text
after the value.

Neither operator reads text again at each chunk: ``partial_json`` reads each character
once, ``json_items`` twice (to split the array, then to parse the element), so parsing a
document costs time in proportion to its length however it is cut into chunks.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter
from reactivex import Observable, abc

from ..errors import attach_partial
from ._operator import Operator, named
from ._text import text_of

__all__ = ["json_items", "partial_json"]

M = TypeVar("M", bound=BaseModel)

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
_UNFINISHED_ESCAPE = re.compile(rf"(?:{_CUT_SHORT}|\\u{_HIGH_HALF}(?:{_CUT_SHORT})?)\Z")
_LITERALS = (("true", True), ("false", False), ("null", None))
_START = re.compile(r"[\[{]")

# What an open container expects next.
_FIRST = 0  # just opened: a member, or the closing bracket
_KEY = 1  # after a comma in an object
_COLON = 2  # after a key
_VALUE = 3  # after a colon, or after a comma in an array
_NEXT = 4  # after a member: a comma, or the closing bracket

_NOTHING: Any = object()


def _fail(message: str, text: str, at: int) -> json.JSONDecodeError:
    return json.JSONDecodeError(message, text, at)


class _Open:
    """A container still open: its complete members, and what it expects next."""

    __slots__ = ("members", "key", "expect")

    def __init__(self, members: dict[str, Any] | list[Any]) -> None:
        self.members = members
        self.key = ""  # in an object, the key whose value is being read
        self.expect = _FIRST


class _PartialParser:
    """Parses one JSON text as it is fed, chunk by chunk, reading each character once.

    Consumed text is dropped: all the parser keeps between chunks is the open containers
    (with their complete members), the string being read (decoded so far) and the few
    characters of a token cut short (a number, a literal or an escape), which are read
    again with the next chunk. ``scanned`` counts the characters read.
    """

    __slots__ = ("texts", "buffer", "stack", "in_string", "string", "in_key",
                 "value", "complete", "changed", "recheck", "fields", "scanned")  # fmt: skip

    def __init__(self) -> None:
        self.texts: list[str] = []  # everything fed, for errors and ``.partial``
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

    def text(self) -> str:
        return "".join(self.texts)

    def fail(self, message: str, text: str, at: int) -> json.JSONDecodeError:
        """The error at ``at`` in ``text``, the end of the text fed so far."""
        whole = self.text()
        return _fail(message, whole, len(whole) - len(text) + at)

    def feed(self, text: str, final: bool = False) -> None:
        """Parse ``text``, the next part of the document; ``final``: nothing follows.

        Raises:
            json.JSONDecodeError: if the text so far cannot begin a JSON value.
        """
        self.texts.append(text)
        if self.complete:
            return
        buffer = self.buffer + text if self.buffer else text
        if not self.stack:
            found = _START.search(buffer)
            self.scanned += len(buffer) if found is None else found.end()
            if found is None:
                return
            self.stack.append(_Open({} if found.group() == "{" else []))
            self.changed = True
            buffer = buffer[found.end() :]
        self.scanned += len(buffer)
        self.buffer = buffer[self._consume(buffer, final) :]

    def _consume(self, text: str, final: bool) -> int:
        """Parse ``text`` as far as it goes; return where the unfinished token begins."""
        size, at, stack = len(text), 0, self.stack
        while at < size:
            if self.in_string:
                at, closed = self._string(text, at)
                if not closed:
                    return at
                continue
            char = text[at]
            if char in _WHITESPACE:
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
                    self._close()
                    if self.complete:
                        return at + 1
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
                    self._close()
                    if self.complete:
                        return at + 1
                elif char == '"':
                    self.in_string, self.string, self.in_key = True, "", True
                else:
                    raise self.fail("Expecting property name enclosed in double quotes", text, at)
                at += 1
                continue
            # A value: after a colon, or as an array's element.
            if char == "]" and expect == _FIRST:
                self._close()
                if self.complete:
                    return at + 1
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
                    return at
                number = _NUMBER.match(text, at)
                if number is None or number.end() != end:
                    raise self.fail("Invalid number", text, at)
                found = number.group()
                self._begin(frame)
                self._member(int(found) if number.lastindex is None else float(found))
                at = end
            else:
                for word, meaning in _LITERALS:
                    if text.startswith(word, at):
                        self._begin(frame)
                        self._member(meaning)
                        at += len(word)
                        break
                    if word.startswith(text[at : at + len(word)]) and not final:
                        return at
                else:
                    raise self.fail("Expecting value", text, at)
        return at

    def _string(self, text: str, at: int) -> tuple[int, bool]:
        """Read on in the string from ``at``: where reading stopped, and whether it ended."""
        if text[at] == '"':
            end = at
        else:
            end = _STRING_BODY.match(text, at).end()  # type: ignore[union-attr]
            piece = text[at:end]
            if "\\" in piece:
                piece = json.loads(f'"{piece}"')
            if piece:
                self.string += piece
                if not self.in_key:
                    self.changed = True
        if end == len(text):
            return end, False
        if text[end] != '"':
            if _UNFINISHED_ESCAPE.match(text, end) is None:
                raise self.fail("Invalid character in string", text, end)
            return end, False
        self.in_string = False
        frame = self.stack[-1]
        if self.in_key:
            frame.key, frame.expect = self.string, _COLON
        else:
            self._member(self.string)
        return end + 1, True

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

    def _close(self) -> None:
        value = self.stack.pop().members
        if self.stack:
            self._member(value)
        else:
            self.value, self.complete = value, True

    def snapshot(self) -> Any:
        """The value so far, a copy that later chunks do not change; ``None`` before it.

        Members complete so far are shared with earlier snapshots (nothing changes them
        any more); the containers still open are copied, with the member being read.
        """
        self.changed = self.recheck = False
        if self.complete:
            return self.value
        child = self.string if self.in_string and not self.in_key else _NOTHING
        for frame in reversed(self.stack):
            members = frame.members.copy()
            if child is not _NOTHING:
                if isinstance(members, dict):
                    members[frame.key] = child
                else:
                    members.append(child)
            child = members
        return None if child is _NOTHING else child


class _PartialModel:
    """Builds partial models of one class, validating each complete field once."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model
        self.names = {
            (field.validation_alias if isinstance(field.validation_alias, str) else None)
            or field.alias
            or name: name
            for name, field in model.model_fields.items()
        }
        self.validated: dict[str, Any] = {}

    def build(self, fields: dict[str, Any]) -> BaseModel | None:
        """A partial model with the complete ``fields`` so far; ``None`` if none is new."""
        new = [key for key in fields if key in self.names and self.names[key] not in self.validated]
        if not new:
            return None
        for key in new:
            # Assignment validation runs the field's own validators, on this field alone.
            name, holder = self.names[key], self.model.model_construct()
            self.model.__pydantic_validator__.validate_assignment(holder, name, fields[key])
            self.validated[name] = getattr(holder, name)
        return self.model.model_construct(_fields_set=set(self.validated), **self.validated)


@named
def partial_json(model: type[M] | None = None) -> Operator:
    """Parse streamed JSON text into progressively complete values.

    Without ``model``, emits a new ``dict`` (or ``list``) each time a chunk changes the
    value so far: strings grow as they stream, members appear as they begin. Each is a
    value of its own, which later chunks leave as it was: the containers still open are
    copied for it (complete members are shared), so for a long array, where that copy
    grows with every element, ``json_items`` emits each element once instead. With a
    pydantic ``model``, emits a partial model each time a top-level field completes:
    complete fields are validated (a bad one fails the stream at once), incomplete ones
    are left out (``model_fields_set`` names the fields present), and the last item is
    the fully validated model.

    Raises (as the stream's error, with ``.partial`` holding the text):
        json.JSONDecodeError: the text is not JSON, or ends before the value does.
        pydantic.ValidationError: a complete field, or the whole value, is invalid.

    .. code-block:: text

        partial_json():  -'{"a": "x'------'y", "b": 1'-'}'-|
                         -{"a": "x"}------{"a": "xy"}-{"a": "xy", "b": 1}-|

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> chunks = ['{"name": "Al', 'ice", "age": 3', '0}']
        >>> reactivex.from_iterable(chunks).pipe(partial_json(), ops.to_list()).run()
        [{'name': 'Al'}, {'name': 'Alice'}, {'name': 'Alice', 'age': 30}]
    """

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            parser = _PartialParser()
            feed = parser.feed
            builder = _PartialModel(model) if model is not None else None
            finished = False
            last: Any = None
            fields = 0  # the complete top-level members the builder has seen

            def fail(error: Exception) -> None:
                nonlocal finished
                finished = True
                attach_partial(error, parser.text())
                observer.on_error(error)

            def step_values(text: str, final: bool) -> bool:
                """Parse ``text``; emit if the value changed. True once the value is whole."""
                nonlocal last
                feed(text, final)
                if parser.changed:
                    recheck = parser.recheck
                    value = parser.snapshot()
                    if not recheck or value != last:
                        last = value
                        observer.on_next(value)
                return parser.complete

            def step_models(text: str, final: bool) -> bool:
                """Parse ``text``; emit if a field completed. True once the value is whole."""
                nonlocal fields
                assert builder is not None
                feed(text, final)
                if parser.complete:
                    observer.on_next(builder.model.model_validate(parser.value))
                    return True
                if parser.fields != fields:
                    fields = parser.fields
                    top = parser.stack[0].members
                    if type(top) is dict:
                        partial = builder.build(top)
                        if partial is not None:
                            observer.on_next(partial)
                return False

            step = step_values if builder is None else step_models

            def on_next(item: Any) -> None:
                nonlocal finished
                if finished:
                    return
                text = text_of(item)
                try:
                    finished = step(text, False)
                except ValueError as error:  # JSONDecodeError and ValidationError
                    fail(error)

            def on_completed() -> None:
                if finished:
                    observer.on_completed()
                    return
                try:
                    if step("", True):
                        observer.on_completed()
                        return
                except ValueError as error:
                    fail(error)
                    return
                text = parser.text()
                fail(_fail("the stream ended before the JSON value did", text, len(text)))

            def on_error(error: Exception) -> None:
                if not finished:
                    observer.on_error(error)

            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return operator


@named
def json_items(model: type[Any] | None = None) -> Operator:
    """Emit each element of a streamed JSON array as soon as it is complete.

    Args:
        model: validate each element as this type (a pydantic model, ``int``,
            ``dict[str, str]``...); by default elements are emitted as parsed.

    Raises (as the stream's error, with ``.partial`` holding the text):
        json.JSONDecodeError: the text is not a JSON array, or ends before it does, or
            an element is nested too deeply for Python's ``json`` to parse.
        pydantic.ValidationError: an element is invalid for ``model``.

    .. code-block:: text

        json_items():  -'[{"a": 1}, {"a'-'": 2}]'-|
                       -{"a": 1}---------{"a": 2}-|

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> reactivex.of('[1, 2', '2, {"x": [3', ']}]').pipe(json_items(), ops.to_list()).run()
        [1, 22, {'x': [3]}]
    """
    adapter: TypeAdapter[Any] | None = TypeAdapter(model) if model is not None else None

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            splitter = _ArraySplitter()
            closed = False

            def fail(error: Exception) -> None:
                nonlocal closed
                closed = True
                attach_partial(error, splitter.text())
                observer.on_error(error)

            def emit(elements: list[str]) -> None:
                for element in elements:
                    try:
                        value = json.loads(element)
                    except RecursionError:  # json.loads recurses once per level
                        raise _fail("an element is nested too deeply", element, 0) from None
                    observer.on_next(adapter.validate_python(value) if adapter else value)

            def on_next(item: Any) -> None:
                nonlocal closed
                if closed:
                    return
                try:
                    emit(splitter.push(text_of(item)))
                except ValueError as error:  # JSONDecodeError and ValidationError
                    fail(error)
                    return
                closed = splitter.closed

            def on_completed() -> None:
                if not closed:
                    text = splitter.text()
                    fail(_fail("the stream ended before the JSON array did", text, len(text)))
                    return
                observer.on_completed()

            def on_error(error: Exception) -> None:
                if not closed:
                    observer.on_error(error)

            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return operator


_STRUCTURE = re.compile(r'["{}\[\],]')
_IN_STRING = re.compile(r'["\\]')


class _ArraySplitter:
    """Cuts a streamed JSON array into the texts of its elements, in one pass.

    Only the characters that give JSON its structure are looked at (quotes, brackets,
    commas, backslashes in strings), so each character is scanned once and each
    element parsed once, when it is whole: linear in the length of the text. A
    container or string element is whole at its closing character; a number or
    literal at the comma or bracket after it.
    """

    __slots__ = ("buffer", "done", "at", "start", "depth", "in_string", "opened", "closed",
                 "pending_comma", "after")  # fmt: skip

    def __init__(self) -> None:
        self.buffer = ""  # the text not yet split off
        self.done: list[str] = []  # text already split off, for ``.partial``
        self.at = 0  # where scanning resumes in ``buffer``
        self.start: int | None = None  # where the current element begins
        self.depth = 0
        self.in_string = False
        self.opened = False
        self.closed = False
        self.pending_comma = False  # a comma came, so an element must follow
        self.after = 0  # where the last element ended

    def text(self) -> str:
        return "".join(self.done) + self.buffer

    def push(self, text: str) -> list[str]:
        buffer = self.buffer = self.buffer + text
        found: list[str] = []
        if not self.opened:
            bracket = buffer.find("[")
            if bracket < 0:
                return found
            self.opened, self.at, self.start = True, bracket + 1, bracket + 1
        at, size = self.at, len(buffer)
        while at < size and not self.closed:
            if self.in_string:
                mark = _IN_STRING.search(buffer, at)
                if mark is None:
                    at = size
                elif mark.group() == "\\":
                    at = mark.end() + 1  # past the escaped character, even if still to come
                else:
                    self.in_string = False
                    at = mark.end()
                    if self.depth == 0:
                        self._element(mark.end(), found)
                continue
            mark = _STRUCTURE.search(buffer, at)
            if mark is None:
                at = size
                break
            char, at = mark.group(), mark.end()
            if char == '"':
                self.in_string = True
                if self.depth == 0:
                    self._begin(mark.start())
            elif char in "{[":
                if self.depth == 0:
                    self._begin(mark.start())
                self.depth += 1
            elif self.depth > 0 and char in "}]":
                self.depth -= 1
                if self.depth == 0:
                    self._element(at, found)
            elif self.depth > 0:
                continue  # a comma inside an element
            elif char == "}":
                raise _fail("Expecting value", buffer, mark.start())
            else:  # "," or "]" ending an element at the array's own level
                if self.start is None and buffer[self.after : mark.start()].strip():
                    raise _fail("Expecting ',' delimiter", buffer, self.after)
                empty = self.start is not None and not self._element(mark.start(), found)
                if empty and (char == "," or self.pending_comma):  # "[,", ",," or ",]"
                    raise _fail("Expecting value", buffer, mark.start())
                self.pending_comma = char == ","
                self.closed = char == "]"
                self.start = at
        self.at = at
        # Text already split off is never scanned again.
        if self.start is None and not self.closed and buffer[self.after : at].strip():
            raise _fail("Expecting ',' delimiter", buffer, self.after)
        cut = self.start if self.start is not None else at
        if cut > 0:
            self.done.append(buffer[:cut])
            self.buffer = buffer[cut:]
            self.at -= cut
            self.after = max(self.after - cut, 0)
            if self.start is not None:
                self.start = 0
        return found

    def _begin(self, position: int) -> None:
        if self.start is None or self.buffer[self.start : position].strip():
            raise _fail("Expecting ',' delimiter", self.buffer, position)
        self.start = position

    def _element(self, end: int, found: list[str]) -> bool:
        """Split off the element from ``start`` to ``end``; whether there was one."""
        assert self.start is not None
        element = self.buffer[self.start : end].strip()
        self.start = None
        if not element:
            return False
        found.append(element)
        self.after = end
        self.pending_comma = False
        return True
