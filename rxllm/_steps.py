"""Pipeline steps as runs: a step's tag, and an operator step's own run (private).

A pipeline subscribes each step under its own run, so the runs a step makes are its
children and carry its ``seq:step:N`` tag, as in a LangChain sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reactivex import Observable, abc

from . import _runs
from ._internals import curried_name
from ._payloads import Payloads
from ._runs import Parent, parent_run, step_tag, subscribe_run
from .schema import _Aggregate

if TYPE_CHECKING:
    from .config import RunConfig

__all__ = ["as_step", "operator_name", "operator_step"]


def as_step(observable: Observable[Any], parent: Parent | None, index: int) -> Observable[Any]:
    """``observable`` subscribed as step ``index`` of a pipeline run (``seq:step:N``)."""
    if parent is None:
        return observable

    def subscribe(
        observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        token = parent_run.set(parent)
        step = step_tag.set(f"seq:step:{index}")
        try:
            return observable.subscribe(observer, scheduler=scheduler)
        finally:
            step_tag.reset(step)
            parent_run.reset(token)

    return Observable(subscribe)


def operator_step(
    operator: Callable[[Observable[Any]], Observable[Any]],
    upstream: Observable[Any],
    parent: Parent | None,
    index: int,
    config: RunConfig,
) -> Observable[Any]:
    """An operator applied as step ``index`` of a pipeline run.

    The step is a ``chain`` run named after the operator; like a LangChain transform
    step it starts with its first item, and its end reports its whole input.
    """
    hook = _runs.run_hook
    if parent is None and hook is None:
        return operator(upstream)
    name = operator_name(operator)
    if hook is not None:
        operator = hook.step(operator, name)
    if parent is None:
        return operator(upstream)

    def subscribe(
        observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        run = parent.child(name, "chain", config, {}, f"seq:step:{index}")
        received = _Aggregate()
        formatter = Payloads(run, None)
        inner_parent = Parent(run.listener, run)

        def tapped(inner: abc.ObserverBase[Any], sched: abc.SchedulerBase | None) -> Any:
            def on_next(item: Any) -> None:
                received.add(item)
                # The operator's own code runs now: custom events belong to this step.
                token = parent_run.set(inner_parent)
                try:
                    inner.on_next(item)
                finally:
                    parent_run.reset(token)

            return upstream.subscribe(on_next, inner.on_error, inner.on_completed, scheduler=sched)

        def ended() -> None:
            formatter.input = received.result()

        transformed = operator(Observable(tapped))
        return subscribe_run(
            run,
            formatter,
            transformed.pipe(_before_completion(ended)),
            observer,
            scheduler,
            False,
        )

    return Observable(subscribe)


def operator_name(operator: Callable[..., Any]) -> str:
    """The name an operator step reports: its function's, or for a curried reactivex
    operator the operator it wraps (``ops.map(f)`` → ``map``)."""
    name = str(curried_name(operator) or getattr(operator, "__name__", "")).strip("_")
    return "operator" if not name or name.startswith("<") else name


def _before_completion(action: Callable[[], None]) -> Callable[[Observable[Any]], Observable[Any]]:
    def apply(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def on_completed() -> None:
                action()
                observer.on_completed()

            return source.subscribe(
                observer.on_next, observer.on_error, on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return apply
