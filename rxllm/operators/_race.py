"""Racing: hedged requests. Ask several models, keep the first to answer."""

from __future__ import annotations

import threading
from typing import Any, TypeVar, overload

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SingleAssignmentDisposable

from ..config import RunConfig
from ..runnable import Runnable
from ._check import refuse
from ._text import is_token

__all__ = ["Race", "race"]

T = TypeVar("T")


def _race(sources: list[Observable[Any]]) -> Observable[Any]:
    def subscribe(
        observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        lock = threading.Lock()
        subscriptions = [SingleAssignmentDisposable() for _ in sources]
        # Items before the first content (a role-only chunk) wait for the outcome.
        waiting: list[list[Any]] = [[] for _ in sources]
        winner: int | None = None
        ended: list[tuple[int, Exception | None]] = []  # who ended without content, how

        def win(index: int) -> list[Any]:
            nonlocal winner
            winner = index
            held = waiting[index]
            for other, subscription in enumerate(subscriptions):
                waiting[other] = []
                if other != index:
                    subscription.dispose()  # cancels the losers' calls
            return held

        def end_without_content(index: int, error: Exception | None) -> None:
            with lock:
                if winner is not None:
                    return
                ended.append((index, error))
                if len(ended) < len(sources):
                    return
                # Nobody produced content: the first to complete speaks (an empty
                # reply is a reply); if all failed, the first failure does.
                completed = [i for i, failure in ended if failure is None]
                held = win(completed[0] if completed else ended[0][0])
            for item in held:
                observer.on_next(item)
            if completed:
                observer.on_completed()
            else:
                first_error = ended[0][1]
                assert first_error is not None
                observer.on_error(first_error)

        def observer_for(index: int) -> tuple[Any, Any, Any]:
            def on_next(item: Any) -> None:
                if winner == index:
                    observer.on_next(item)
                    return
                with lock:
                    if winner is not None:
                        return
                    if not is_token(item):
                        waiting[index].append(item)
                        return
                    held = win(index)
                for earlier in held:
                    observer.on_next(earlier)
                observer.on_next(item)

            def on_error(error: Exception) -> None:
                if winner == index:
                    observer.on_error(error)
                else:
                    end_without_content(index, error)

            def on_completed() -> None:
                if winner == index:
                    observer.on_completed()
                else:
                    end_without_content(index, None)

            return on_next, on_error, on_completed

        for index, source in enumerate(sources):
            if winner is not None and winner != index:
                break  # a synchronous source already won: don't start the others
            on_next, on_error, on_completed = observer_for(index)
            subscriptions[index].disposable = source.subscribe(
                on_next, on_error, on_completed, scheduler=scheduler
            )
        return CompositeDisposable(subscriptions)

    return Observable(subscribe)


class Race(Runnable[Any, Any, Any]):
    """Runnables (and Observables) raced on each input; made by ``race``.

    ``observe(input)`` starts every candidate at once; the first to emit content wins
    and the others are cancelled. ``stream`` and ``invoke`` present and sum the
    winner's chunks by their kind, as they would for the winner alone.
    """

    def __init__(self, candidates: tuple[Runnable[Any, Any, Any] | Observable[Any], ...]) -> None:
        self.candidates = candidates

    def get_name(self) -> str:
        return "Race"

    def _observe(self, input: Any, config: RunConfig, **kwargs: Any) -> Observable[Any]:
        # As a pipeline's steps do, the candidates run as children of this run, which
        # holds the caller's tags, metadata and run name.
        child_config = RunConfig()
        return _race(
            [
                candidate.observe(input, child_config, **kwargs)
                if isinstance(candidate, Runnable)
                else candidate
                for candidate in self.candidates
            ]
        )

    def __repr__(self) -> str:
        return f"Race({', '.join(map(repr, self.candidates))})"


@overload
def race(*candidates: Observable[T]) -> Observable[T]: ...  # type: ignore[overload-overlap]


@overload
def race(*candidates: Runnable[Any, Any, Any] | Observable[Any]) -> Race: ...


def race(*candidates: Runnable[Any, Any, Any] | Observable[Any]) -> Race | Observable[Any]:
    """Start all candidates at once; the first to emit content wins, the rest are cancelled.

    A hedged request: send the same prompt to two providers (or twice to one) and
    stream whichever answers first. Items without text that come before the first
    content (a chat model's role-only chunk) don't decide the race; they wait and go
    out with the winner's content. A candidate failing before any content drops out;
    if every candidate ends without content, the first to complete gives the result,
    else the first error is raised. Unlike ``reactivex.amb``, where the first
    notification of any kind wins, an early error or an empty chunk doesn't.

    Args:
        candidates: Runnables (raced on the input given to ``observe``/``stream``/
            ``invoke``) or Observables (raced as they are).

    Returns:
        An Observable if every candidate is an Observable, else a ``Race`` runnable.

    .. code-block:: text

        a:           ----x-y-|
        b:           --p-q-r-s-|
        race(a, b):  --p-q-r-s-|     a is disposed at 2

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> from rxllm.llms import FakeListLLM
        >>> race(FakeListLLM(responses=["fast"])).invoke("hi")
        'fast'
        >>> race(reactivex.never(), reactivex.of("a", "b")).pipe(ops.to_list()).run()
        ['a', 'b']
    """
    if not candidates:
        raise refuse("race", "candidates", "one Runnable or Observable or more", candidates)
    for candidate in candidates:
        if not isinstance(candidate, Runnable | Observable):
            raise refuse("race", "candidates", "Runnables or Observables", candidate)
    if all(isinstance(candidate, Observable) for candidate in candidates):
        return _race(list(candidates))  # type: ignore[arg-type]
    return Race(candidates)
