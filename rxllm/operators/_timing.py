"""The scheduler a time-based operator uses, and the clock it reads."""

from __future__ import annotations

from datetime import datetime

from reactivex import abc
from reactivex.scheduler import TimeoutScheduler

__all__ = ["pick_scheduler", "seconds_between"]


def pick_scheduler(
    given: abc.SchedulerBase | None, at_subscribe: abc.SchedulerBase | None
) -> abc.SchedulerBase:
    """The operator's own scheduler, else the subscriber's, else timer threads.

    The bridges subscribe with the event loop's scheduler, so under ``stream`` and
    ``astream`` timers are loop callbacks, never threads; a ``TestScheduler`` given at
    subscription puts the operator in virtual time.
    """
    return given or at_subscribe or TimeoutScheduler.singleton()


def seconds_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()
