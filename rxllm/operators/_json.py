"""Structured output: JSON values parsed as their text streams in.

The parser is tolerant of an unfinished document, never of a wrong one: it returns the
value so far, with every member that has begun (a string cut mid-way appears as the
prefix received, an object as the members received) and says which members are
complete. A number or ``true``/``false``/``null`` appears only once it is certainly
whole (``12`` may become ``123``). Text before the first ``{`` or ``[`` (a preamble, a
```` ```json ```` fence) is skipped, and so is text after the value.
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
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_NUMBER_PREFIX = re.compile(r"-?\d*(?:\.\d*)?(?:[eE][-+]?\d*)?")
_NUMBER_START = frozenset("-0123456789")
_STRING_BODY = re.compile(r'(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*')
_PARTIAL_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{0,3})?\Z")
_LITERALS = (("true", True), ("false", False), ("null", None))
_START = re.compile(r"[\[{]")


class _Missing(Exception):
    """The text ends before any usable part of a value."""


def _fail(message: str, text: str, at: int) -> json.JSONDecodeError:
    return json.JSONDecodeError(message, text, at)


#: Where the parse of a container can resume: after the comma that followed its last
#: complete member, with the members so far (and the top level's complete keys).
Progress = dict[int, tuple[int, Any, frozenset[str]]]


class _Parser:
    """One parse of a buffer; ``final`` once no more text will come.

    With a ``progress`` kept from the parses of earlier, shorter versions of the same
    text, containers resume after their last complete member instead of starting over,
    so a parse costs about the length of the unfinished members rather than the text.
    """

    __slots__ = ("text", "size", "final", "done", "progress")

    def __init__(self, text: str, final: bool, progress: Progress | None = None) -> None:
        self.text = text
        self.size = len(text)
        self.final = final
        #: Keys of the top-level object whose values are complete.
        self.done: set[str] = set()
        self.progress: Progress = {} if progress is None else progress

    def skip(self, at: int) -> int:
        return _SPACE.match(self.text, at).end()  # type: ignore[union-attr]

    def value(self, at: int, top: bool = False) -> tuple[Any, int, bool]:
        """The value at ``at``, where it ends, and whether it is complete."""
        text, size = self.text, self.size
        at = self.skip(at)
        if at >= size:
            raise _Missing
        char = text[at]
        if char == "{":
            return self.object(at, top)
        if char == "[":
            return self.array(at)
        if char == '"':
            return self.string(at)
        if char in _NUMBER_START:
            # What could still grow into a number ("-", "1.", "2e") is not one yet.
            end = _NUMBER_PREFIX.match(text, at).end()  # type: ignore[union-attr]
            if end >= size and not self.final:
                raise _Missing
            number = _NUMBER.match(text, at)
            if number is None or number.end() != end:
                raise _fail("Invalid number", text, at)
            return json.loads(number.group()), end, True
        for word, meaning in _LITERALS:
            if text.startswith(word, at):
                return meaning, at + len(word), True
            if word.startswith(text[at:]) and not self.final:
                raise _Missing
        raise _fail("Expecting value", text, at)

    def string(self, at: int) -> tuple[str, int, bool]:
        text, size = self.text, self.size
        end = _STRING_BODY.match(text, at + 1).end()  # type: ignore[union-attr]
        if end < size and text[end] == '"':
            return json.loads(text[at : end + 1]), end + 1, True
        if end == size or _PARTIAL_ESCAPE.match(text, end):
            return json.loads(text[at:end] + '"'), size, False
        raise _fail("Invalid character in string", text, end)

    def object(self, at: int, top: bool) -> tuple[dict[str, Any], int, bool]:
        text, size, begin = self.text, self.size, at
        saved = self.progress.get(begin)
        result: dict[str, Any]
        if saved is not None:
            # Copies: the values emitted before must not change under their consumers.
            at, result = saved[0], dict(saved[1])
            if top:
                self.done = set(saved[2])
        else:
            result = {}
            at = self.skip(at + 1)
            if at < size and text[at] == "}":
                return result, at + 1, True
        while True:
            at = self.skip(at)
            if at >= size:
                return result, size, False
            if text[at] != '"':
                raise _fail("Expecting property name enclosed in double quotes", text, at)
            key, at, complete = self.string(at)
            at = self.skip(at)
            if not complete or at >= size:
                return result, size, False
            if text[at] != ":":
                raise _fail("Expecting ':' delimiter", text, at)
            try:
                item, at, complete = self.value(at + 1)
            except _Missing:
                return result, size, False
            result[key] = item
            if not complete:
                return result, size, False
            if top:
                self.done.add(key)
            at = self.skip(at)
            if at >= size:
                return result, size, False
            if text[at] == "}":
                return result, at + 1, True
            if text[at] != ",":
                raise _fail("Expecting ',' delimiter", text, at)
            at += 1
            self.progress[begin] = (at, dict(result), frozenset(self.done if top else ()))

    def array(self, at: int) -> tuple[list[Any], int, bool]:
        text, size, begin = self.text, self.size, at
        saved = self.progress.get(begin)
        result: list[Any]
        if saved is not None:
            at, result = saved[0], list(saved[1])
        else:
            result = []
            at = self.skip(at + 1)
            if at < size and text[at] == "]":
                return result, at + 1, True
        while True:
            try:
                item, at, complete = self.value(at)
            except _Missing:
                return result, size, False
            result.append(item)
            if not complete:
                return result, size, False
            at = self.skip(at)
            if at >= size:
                return result, size, False
            if text[at] == "]":
                return result, at + 1, True
            if text[at] != ",":
                raise _fail("Expecting ',' delimiter", text, at)
            at += 1
            self.progress[begin] = (at, list(result), frozenset())


def parse_partial(
    text: str, final: bool = False, start: int = 0, progress: Progress | None = None
) -> tuple[Any, bool, set[str]]:
    """The JSON value beginning at ``start``, whether it is complete, and the complete
    keys of a top-level object.

    Args:
        progress: kept between calls on successive versions of one growing text, so
            each call resumes its containers where the last one's left off.

    Raises:
        json.JSONDecodeError: if ``text`` cannot be the beginning of a JSON value.
    """
    parser = _Parser(text, final, progress)
    try:
        value, _, complete = parser.value(start, top=True)
    except _Missing:
        return None, False, set()
    return value, complete, parser.done


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

    def build(self, value: dict[str, Any], done: set[str]) -> BaseModel | None:
        """A partial model with the fields completed so far; ``None`` if none is new."""
        new = [key for key in done if key in self.names and self.names[key] not in self.validated]
        if not new:
            return None
        for key in new:
            # Assignment validation runs the field's own validators, on this field alone.
            name, holder = self.names[key], self.model.model_construct()
            self.model.__pydantic_validator__.validate_assignment(holder, name, value[key])
            self.validated[name] = getattr(holder, name)
        return self.model.model_construct(_fields_set=set(self.validated), **self.validated)


@named
def partial_json(model: type[M] | None = None) -> Operator:
    """Parse streamed JSON text into progressively complete values.

    Without ``model``, emits a new ``dict`` (or ``list``) each time a chunk changes the
    value so far: strings grow as they stream, members appear as they begin. With a
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
            texts: list[str] = []
            start: int | None = None
            finished = False
            last: Any = None
            builder = _PartialModel(model) if model is not None else None
            progress: Progress = {}

            def fail(error: Exception) -> None:
                nonlocal finished
                finished = True
                attach_partial(error, "".join(texts))
                observer.on_error(error)

            def step(final: bool) -> bool:
                """Parse what has come; emit if it changed. True once the value is whole."""
                nonlocal start, last
                buffer = "".join(texts)
                if start is None:
                    found = _START.search(buffer)
                    if found is None:
                        return False
                    start = found.start()
                value, complete, done = parse_partial(buffer, final, start, progress)
                if value is None:
                    return False
                if builder is None:
                    if value != last:
                        last = value
                        observer.on_next(value)
                    return complete
                if complete:
                    observer.on_next(builder.model.model_validate(value))
                    return True
                if isinstance(value, dict):
                    partial = builder.build(value, done)
                    if partial is not None:
                        observer.on_next(partial)
                return False

            def on_next(item: Any) -> None:
                nonlocal finished
                if finished:
                    return
                texts.append(text_of(item))
                try:
                    finished = step(False)
                except ValueError as error:  # JSONDecodeError and ValidationError
                    fail(error)

            def on_completed() -> None:
                if finished:
                    observer.on_completed()
                    return
                try:
                    if step(True):
                        observer.on_completed()
                        return
                except ValueError as error:
                    fail(error)
                    return
                buffer = "".join(texts)
                fail(_fail("the stream ended before the JSON value did", buffer, len(buffer)))

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
        json.JSONDecodeError: the text is not a JSON array, or ends before it does.
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
                    value = json.loads(element)
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
