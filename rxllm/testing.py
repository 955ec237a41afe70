"""Tools for testing code that uses rxllm, as ``reactivex.testing`` is for RxPY.

``MarbleLLM`` is a model scripted from a marble string, so a stream's timing is part of
the test and runs in virtual time under ``reactivex.testing.TestScheduler``::

    scheduler = TestScheduler()
    llm = MarbleLLM(marbles="-a-b--c|", values={"a": "Hel", "b": "lo", "c": "!"})
    results = scheduler.start(lambda: llm.observe("hi"))

``CallLog`` is what the fakes in ``rxllm.llms`` record about their calls.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import reactivex
from pydantic import Field, PrivateAttr
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable

from .llms._base import BaseLLM
from .llms._fake import CallLog
from .schema import GenerationChunk

__all__ = ["CallLog", "MarbleLLM"]


class MarbleLLM(BaseLLM):
    """An LLM whose every call emits the chunks of a marble diagram, in scheduler time.

    Args:
        marbles: RxPY marble syntax: ``-`` one ``timespan`` passes, a letter or
            ``(a,b)`` group is a chunk, ``|`` completes, ``#`` fails with ``error``.
        values: the text of each marble; a marble without an entry is its own text.
        timespan: scheduler seconds per ``-``.
        error: what ``#`` raises.
    """

    marbles: str
    values: dict[str, str] = Field(default_factory=dict)
    timespan: float = Field(default=1.0, gt=0)
    error: Exception | None = None

    _calls: CallLog = PrivateAttr(default_factory=CallLog)

    @property
    def calls(self) -> CallLog:
        """Subscriptions so far: started, completed, failed, cancelled (disposed early)."""
        return self._calls

    def _call(self, prompt: str, stop: list[str] | None = None, **kwargs: Any) -> str:
        # Never used: ``_observe_prepared`` below replaces the provider hooks.
        raise NotImplementedError

    def _observe_prepared(
        self, prepared: str, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Observable[GenerationChunk]:
        chunks = reactivex.cold(
            self.marbles,
            timespan=self.timespan,
            lookup=cast(dict[str | float, Any], dict(self.values)) or None,
            error=self.error,
        ).pipe(ops.map(lambda text: GenerationChunk(text=str(text))))
        calls = self._calls

        def subscribe(
            observer: abc.ObserverBase[GenerationChunk],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            calls.begin(prepared)
            finished = False

            def finish(outcome: Literal["completed", "failed", "cancelled"]) -> None:
                nonlocal finished
                if not finished:
                    finished = True
                    calls.end(outcome)

            def on_error(error: Exception) -> None:
                finish("failed")
                observer.on_error(error)

            def on_completed() -> None:
                finish("completed")
                observer.on_completed()

            inner = chunks.subscribe(observer.on_next, on_error, on_completed, scheduler=scheduler)

            def dispose() -> None:
                inner.dispose()
                finish("cancelled")

            return Disposable(dispose)

        return Observable(subscribe)
