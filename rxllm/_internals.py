"""Every place rxllm reads a dependency's private internals, and nowhere else.

Each is here because the public API has no way to say it, or costs too much on a hot
path. ``tests/test_internals.py`` checks each against the installed dependency, so an
upgrade that changes one fails there, naming the dependency, rather than somewhere
downstream; the dependency has an upper bound on its next major version in
``setup.cfg`` for as long as its internal is read.

- pydantic (``<3``): a model's four instance slots, set directly (``unchecked``).
- Python's ``re``: the longest text a pattern can match is known only to ``re._parser``
  (``sre_parse``, its public alias, warns as deprecated) (``longest_match``).
- reactivex (``<7``): an ``AsyncIOScheduler`` keeps its loop in ``_loop``, with no
  accessor (``scheduler_loop``); a curried operator's wrapped function is only in its
  closure (``curried_name``).

An extension that reads its own dependency's internals keeps them in its package, in
one place, under a test: ``rxllm.distributed`` reads two of Dask's to leave nothing
behind a batch, and its thousand-input test fails if they change.
"""

from __future__ import annotations

import asyncio
import importlib
import re
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from reactivex import abc
from reactivex.scheduler.eventloop import AsyncIOScheduler

__all__ = ["curried_name", "longest_match", "scheduler_loop", "unchecked"]

_Model = TypeVar("_Model", bound=BaseModel)
# The setters of pydantic's four instance slots, taken once: calling a slot's own setter
# costs half what ``object.__setattr__(model, name, value)`` does, which looks the name
# up on the type each time (0.40 against 0.82 µs for the four and the instance, timeit).
_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def unchecked(cls: type[_Model], values: dict[str, Any], fields_set: set[str]) -> _Model:
    """An instance of ``cls`` made of values already known to be valid, without validation.

    What pydantic's ``model_construct`` does, minus its per-call work (in pydantic 2.14 it
    inspects every ``default_factory``'s signature on each call, so it is slower than
    validating). Sets pydantic's four instance slots directly. ``values`` must hold every
    field, in declaration order (the order ``repr`` shows), with fresh mutable defaults;
    ``cls`` must allow extra fields or have none.
    """
    model = _new(cls)
    _set_dict(model, values)
    _set_fields_set(model, fields_set)
    _set_extra(model, {})
    _set_private(model, None)
    return model


def scheduler_loop(scheduler: abc.SchedulerBase | None) -> asyncio.AbstractEventLoop | None:
    """The event loop an ``AsyncIOScheduler`` (or a subclass) schedules on, else ``None``.

    reactivex keeps it in ``_loop`` and has no public accessor; rxllm needs it to run
    work on the subscriber's loop rather than guess which loop that is.
    """
    if isinstance(scheduler, AsyncIOScheduler):
        loop: asyncio.AbstractEventLoop = scheduler._loop
        return loop
    return None


def curried_name(operator: Callable[..., Any]) -> str | None:
    """The name of the reactivex operator a curried one wraps (``map_`` for
    ``ops.map(f)``), found in its closure; ``None`` if ``operator`` is not one.

    Every curried reactivex operator is a function named ``_wrap_curried``; the function
    it wraps is the only callable with a trailing underscore in its closure.
    """
    if getattr(operator, "__name__", None) != "_wrap_curried":
        return None
    for cell in getattr(operator, "__closure__", None) or ():
        wrapped = cell.cell_contents
        name = getattr(wrapped, "__name__", "")
        if callable(wrapped) and name.endswith("_"):
            return str(name)
    return None


def longest_match(pattern: re.Pattern[str]) -> int | None:
    """The most characters one match of ``pattern`` can span; ``None`` if unbounded
    (``stop_on`` holds back that much text, as a match may span chunks)."""
    parser: Any = importlib.import_module("re._parser")
    width: int = parser.parse(pattern.pattern, pattern.flags).getwidth()[1]
    return None if width >= parser.MAXREPEAT else width
