"""What every operator module shares: the operator type, and operators that know their name."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec

from reactivex import Observable

from ..runnable import Operator

__all__ = ["NamedOperator", "Operator", "named"]

P = ParamSpec("P")


class NamedOperator:
    """An operator made by a ``named`` factory: it knows its name and how it was made.

    Calling it applies the operator. Its ``__name__`` is the factory's, as a pipeline
    step's events and ``repr`` report it (``words`` rather than ``operator``). It pickles
    as the call that made it, so a pipeline of rxllm operators can be sent to another
    process (a Dask worker) and rebuilt there with state of its own, provided the
    arguments pickle too.
    """

    __slots__ = ("__name__", "_apply", "_args", "_factory", "_kwargs")

    def __init__(
        self,
        factory: Callable[..., Operator],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        apply: Operator,
    ) -> None:
        self.__name__: str = factory.__name__
        self._factory = factory
        self._args = args
        self._kwargs = kwargs
        self._apply = apply

    def __call__(self, source: Observable[Any]) -> Observable[Any]:
        return self._apply(source)

    def __reduce__(self) -> tuple[Any, ...]:
        return _remake, (self._factory, self._args, self._kwargs)

    def __repr__(self) -> str:
        return f"<operator {self.__name__}>"


def _remake(
    factory: Callable[..., Operator], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Operator:
    return factory(*args, **kwargs)


def named(factory: Callable[P, Operator]) -> Callable[P, Operator]:
    """Make ``factory``'s operators ``NamedOperator``\\ s: named after it, and picklable.

    ``factory`` must be a module-level function, so the pickled call can find it again.
    """

    @functools.wraps(factory)
    def make(*args: P.args, **kwargs: P.kwargs) -> Operator:
        return NamedOperator(make, args, kwargs, factory(*args, **kwargs))

    return make
