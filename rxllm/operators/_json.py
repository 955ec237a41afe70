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
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

from pydantic import BaseModel, PydanticUserError, TypeAdapter
from reactivex import Observable, abc

from ..errors import attach_partial
from ._check import refuse
from ._jsonparse import ArraySplitter, PartialParser, json_error
from ._operator import Operator, named
from ._text import text_of

__all__ = ["json_items", "partial_json"]

M = TypeVar("M", bound=BaseModel)


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


Push: TypeAlias = Callable[[str, bool], bool]
"""Parses the next text (``final``: the stream has ended), emits what that completes, and
says whether the JSON value is now whole."""


def _parsing(
    what: str, start: Callable[[abc.ObserverBase[Any]], tuple[Push, Callable[[], str]]]
) -> Operator:
    """An operator feeding the text of each item to a parser made per subscription.

    ``start(observer)`` returns the subscription's ``push`` and a function giving the
    text so far. A ``ValueError`` from ``push`` (``JSONDecodeError``, pydantic's
    ``ValidationError``) fails the stream with the text so far as ``.partial``, and so
    does the end of the stream before the JSON ``what`` ends; text after it is ignored.
    """

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            push, text = start(observer)
            whole = failed = False

            def fail(error: Exception) -> None:
                nonlocal failed
                failed = True
                attach_partial(error, text())
                observer.on_error(error)

            def on_next(item: Any, final: bool = False) -> None:
                nonlocal whole
                if whole or failed:
                    return
                try:
                    whole = push(item if type(item) is str else text_of(item), final)
                except ValueError as error:
                    fail(error)

            def on_completed() -> None:
                on_next("", True)
                if whole and not failed:
                    observer.on_completed()
                elif not failed:
                    so_far, ended = text(), f"the stream ended before the JSON {what} did"
                    fail(json_error(ended, so_far, len(so_far)))

            def on_error(error: Exception) -> None:
                if not failed:
                    observer.on_error(error)

            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return operator


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
    if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise refuse("partial_json", "model", "a pydantic model class or None", model)

    def start(observer: abc.ObserverBase[Any]) -> tuple[Push, Callable[[], str]]:
        parser = PartialParser()
        feed = parser.feed
        builder = _PartialModel(model) if model is not None else None
        last: Any = None
        fields = 0  # the complete top-level members the builder has seen

        def push_values(text: str, final: bool) -> bool:
            """Emit the value so far if the text changed it."""
            nonlocal last
            feed(text, final)
            if parser.changed:
                recheck = parser.recheck
                value = parser.snapshot()
                if not recheck or value != last:
                    last = value
                    observer.on_next(value)
            return parser.complete

        def push_models(text: str, final: bool) -> bool:
            """Emit a partial model if the text completed a field."""
            nonlocal fields
            assert builder is not None
            feed(text, final)
            if parser.complete:
                observer.on_next(builder.model.model_validate(parser.value))
            elif parser.fields != fields:
                fields = parser.fields
                top = parser.stack[0].members
                partial = builder.build(top) if type(top) is dict else None
                if partial is not None:
                    observer.on_next(partial)
            return parser.complete

        return (push_values if builder is None else push_models), parser.text

    return _parsing("value", start)


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
    adapter: TypeAdapter[Any] | None = None
    expected = "a type pydantic validates (a model class, int, list[str]...) or None"
    if isinstance(model, str):  # a forward reference, resolved only when first used
        raise refuse("json_items", "model", expected, model)
    if model is not None:
        try:
            adapter = TypeAdapter(model)
        except PydanticUserError as error:
            raise refuse("json_items", "model", expected, model) from error

    def start(observer: abc.ObserverBase[Any]) -> tuple[Push, Callable[[], str]]:
        splitter = ArraySplitter()

        def push(text: str, final: bool) -> bool:
            """Emit each element the text completed."""
            for element in splitter.push(text):
                try:
                    value = json.loads(element)
                except RecursionError:  # json.loads recurses once per level
                    raise json_error("an element is nested too deeply", element, 0) from None
                observer.on_next(adapter.validate_python(value) if adapter else value)
            return splitter.closed

        return push, splitter.text

    return _parsing("array", start)
