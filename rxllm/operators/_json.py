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
from typing import Any, TypeVar

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

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            parser = PartialParser()
            feed = parser.feed
            builder = _PartialModel(model) if model is not None else None
            finished = failed = False
            last: Any = None
            fields = 0  # the complete top-level members the builder has seen

            def fail(error: Exception) -> None:
                nonlocal finished, failed
                finished = failed = True
                attach_partial(error, parser.text())
                observer.on_error(error)

            def push_values(item: Any, final: bool = False) -> None:
                """Parse an item's text; emit the value so far if it changed."""
                nonlocal finished, last
                if finished:
                    return
                try:
                    feed(item if type(item) is str else text_of(item), final)
                    if parser.changed:
                        recheck = parser.recheck
                        value = parser.snapshot()
                        if not recheck or value != last:
                            last = value
                            observer.on_next(value)
                except ValueError as error:  # JSONDecodeError
                    fail(error)
                    return
                finished = parser.complete

            def push_models(item: Any, final: bool = False) -> None:
                """Parse an item's text; emit a partial model if a field completed."""
                nonlocal finished, fields
                assert builder is not None
                if finished:
                    return
                try:
                    feed(item if type(item) is str else text_of(item), final)
                    if parser.complete:
                        finished = True
                        observer.on_next(builder.model.model_validate(parser.value))
                    elif parser.fields != fields:
                        fields = parser.fields
                        top = parser.stack[0].members
                        partial = builder.build(top) if type(top) is dict else None
                        if partial is not None:
                            observer.on_next(partial)
                except ValueError as error:  # JSONDecodeError and ValidationError
                    fail(error)

            push = push_values if builder is None else push_models

            def on_completed() -> None:
                if not finished:
                    push("", True)
                if not finished:
                    text = parser.text()
                    fail(json_error("the stream ended before the JSON value did", text, len(text)))
                elif not failed:
                    observer.on_completed()

            def on_error(error: Exception) -> None:
                if not finished:
                    observer.on_error(error)

            return source.subscribe(push, on_error, on_completed, scheduler=scheduler)

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
    adapter: TypeAdapter[Any] | None = None
    expected = "a type pydantic validates (a model class, int, list[str]...) or None"
    if isinstance(model, str):  # a forward reference, resolved only when first used
        raise refuse("json_items", "model", expected, model)
    if model is not None:
        try:
            adapter = TypeAdapter(model)
        except PydanticUserError as error:
            raise refuse("json_items", "model", expected, model) from error

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            splitter = ArraySplitter()
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
                        raise json_error("an element is nested too deeply", element, 0) from None
                    observer.on_next(adapter.validate_python(value) if adapter else value)

            def on_next(item: Any) -> None:
                nonlocal closed
                if closed:
                    return
                try:
                    elements = splitter.push(item if type(item) is str else text_of(item))
                    if elements:
                        emit(elements)
                except ValueError as error:  # JSONDecodeError and ValidationError
                    fail(error)
                    return
                closed = splitter.closed

            def on_completed() -> None:
                if not closed:
                    text = splitter.text()
                    fail(json_error("the stream ended before the JSON array did", text, len(text)))
                    return
                observer.on_completed()

            def on_error(error: Exception) -> None:
                if not closed:
                    observer.on_error(error)

            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return operator
