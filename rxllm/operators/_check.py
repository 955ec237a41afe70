"""Argument checks: every operator refuses a bad argument when it is made, alike.

An operator checks its arguments before it returns, so a mistake surfaces at the line
that made it, not at the first subscription (or, worse, as a silently different
result: ``buffer_tokens(2.5)`` grouping by three). Each check raises
``InvalidInputError`` with one message shape, naming the operator and the argument,
what it must be and what it got::

    buffer_tokens: count must be an int >= 1, got '3' (str)

A number's check returns it as the plain ``int`` or ``float`` the operator computes with.
"""

from __future__ import annotations

import math
import numbers

from reactivex import abc

from ..errors import InvalidInputError

__all__ = ["check_callable", "check_count", "check_scheduler", "check_seconds", "refuse"]


def refuse(operator: str, argument: str, expected: str, got: object) -> InvalidInputError:
    """The error for ``operator``'s ``argument``: it must be ``expected``, and is ``got``."""
    shown = repr(got)
    if len(shown) > 80:  # a long string or list: its start identifies it
        shown = shown[:77] + "..."
    return InvalidInputError(
        f"{operator}: {argument} must be {expected}, got {shown} ({type(got).__name__})"
    )


def check_count(operator: str, argument: str, value: object, minimum: int = 1) -> int:
    """An int at least ``minimum``; never a bool, a float or a numeric string."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise refuse(operator, argument, f"an int >= {minimum}", value)
    return int(value)


def check_seconds(operator: str, argument: str, value: object, *, zero: bool = False) -> float:
    """A finite number of seconds, above 0 (or at least 0, when ``zero`` means something)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero)
    ):
        bound = ">= 0" if zero else "> 0"
        raise refuse(operator, argument, f"a finite number of seconds {bound}", value)
    return float(value)


def check_callable(operator: str, argument: str, value: object, *, optional: bool = False) -> None:
    """A function (or ``None``, where ``optional``)."""
    if not (callable(value) or (optional and value is None)):
        raise refuse(operator, argument, "callable" + (" or None" if optional else ""), value)


def check_scheduler(operator: str, value: object) -> None:
    """A reactivex scheduler, or ``None`` for the one given at subscription."""
    if value is not None and not isinstance(value, abc.SchedulerBase):
        raise refuse(operator, "scheduler", "a reactivex scheduler or None", value)
