"""What every operator module shares: the operator type, and operators that know their name."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeAlias

from reactivex import Observable

__all__ = ["Operator", "named"]

Operator: TypeAlias = Callable[[Observable[Any]], Observable[Any]]
"""A function from Observable to Observable: what ``pipe`` takes."""

P = ParamSpec("P")


def named(factory: Callable[P, Operator]) -> Callable[P, Operator]:
    """Give the operators ``factory`` makes its name, as a pipeline step's events and
    ``repr`` report it (``words`` rather than ``operator``)."""

    @functools.wraps(factory)
    def make(*args: P.args, **kwargs: P.kwargs) -> Operator:
        operator = factory(*args, **kwargs)
        operator.__name__ = operator.__qualname__ = factory.__name__
        return operator

    return make
