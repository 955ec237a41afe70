"""Metrics: how a stream performed, while it runs and when it ends."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from reactivex import Observable, abc

from ..schema import AIMessageChunk, GenerationChunk, Usage
from ._check import check_callable, check_scheduler
from ._skeleton import Hooks, tapping
from ._text import text_if_any
from ._timing import pick_scheduler, seconds_between

__all__ = ["Metrics", "StreamMetrics", "metrics"]


class StreamMetrics(BaseModel):
    """A stream's timing and volume. Times are in seconds, on the scheduler's clock.

    Gaps are the times between consecutive chunks; rates are measured from the first
    chunk to the last, the streaming phase, so they do not depend on time to first
    token.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Chunks seen so far.
    chunks: int = 0
    #: Characters of text seen so far.
    characters: int = 0
    #: From subscription to the first chunk with text; ``None`` before it.
    time_to_first_token: float | None = None
    #: From subscription to the end of the stream (or to now, while it runs).
    elapsed: float = 0.0
    gap_mean: float | None = None
    gap_stdev: float | None = None
    gap_min: float | None = None
    gap_max: float | None = None
    #: Chunks per second after the first chunk; ``None`` until two chunks have come.
    chunks_per_second: float | None = None
    #: Characters per second after the first chunk.
    characters_per_second: float | None = None
    #: Token usage the provider reported, summed over the chunks that carried it.
    usage: Usage | None = None
    #: Whether the stream has ended (completed, failed or disposed).
    finished: bool = False
    #: The error the stream failed with, as ``"Type: message"``.
    error: str | None = None
    #: Why the provider ended its reply (``"stop"``, ``"length"``, ``"end_turn"``...),
    #: as a chunk's ``response_metadata`` or ``generation_info`` reported it.
    finish_reason: str | None = None
    #: What looked wrong about a stream that did not fail, in plain words.
    warnings: tuple[str, ...] = ()


#: Where providers put why the reply ended: OpenAI and llama.cpp ``finish_reason``,
#: Anthropic ``stop_reason``, Ollama ``done_reason``.
_REASON_KEYS = ("finish_reason", "stop_reason", "done_reason")

NO_FINISH_REASON = (
    "the stream completed but the provider never said why the reply ended (no finish "
    "reason): the reply may have been cut short, as llama.cpp's server does when it "
    "interrupts a request"
)


def _usage_in(info: dict[str, Any]) -> Usage | None:
    """The usage a ``generation_info`` reports, if it reports one."""
    reported = info.get("usage")
    if isinstance(reported, Usage):
        return reported
    if isinstance(reported, dict):
        try:
            return Usage.model_validate(reported)
        except ValueError:
            return None
    return None


class _Meter:
    """One subscription's running totals; Welford's algorithm for the gap statistics."""

    __slots__ = (
        "clock", "started", "first", "first_text", "last", "ended", "chunks", "characters",
        "first_characters", "gaps", "gap_mean", "gap_m2", "gap_min", "gap_max", "usage",
        "error", "from_model", "finish_reason", "completed",
    )  # fmt: skip

    def __init__(self, clock: abc.SchedulerBase) -> None:
        self.clock = clock
        self.started: datetime = clock.now
        self.first: datetime | None = None
        self.first_text: datetime | None = None
        self.last: datetime | None = None
        self.ended: datetime | None = None
        self.chunks = 0
        self.characters = 0
        self.first_characters = 0
        self.gaps = 0
        self.gap_mean = 0.0
        self.gap_m2 = 0.0
        self.gap_min = math.inf
        self.gap_max = 0.0
        self.usage: Usage | None = None
        self.error: str | None = None
        self.from_model = False  # a model's chunk came, which could carry a finish reason
        self.finish_reason: str | None = None
        self.completed = False

    def add(self, item: Any) -> None:
        now = self.clock.now
        # Items without text (parsed objects from partial_json) count as chunks, with no
        # characters: metrics measure any stream, not only text.
        size = len(text_if_any(item))
        if self.last is None:
            self.first = now
            self.first_characters = size
        else:
            gap = seconds_between(self.last, now)
            self.gaps += 1
            delta = gap - self.gap_mean
            self.gap_mean += delta / self.gaps
            self.gap_m2 += delta * (gap - self.gap_mean)
            self.gap_min = min(self.gap_min, gap)
            self.gap_max = max(self.gap_max, gap)
        if size and self.first_text is None:
            self.first_text = now
        self.last = now
        self.chunks += 1
        self.characters += size
        if type(item) is not str:
            self.read_metadata(item)

    def read_metadata(self, item: Any) -> None:
        """Usage and finish reason from a model's chunk; one without metadata costs a type check."""
        metadata: dict[str, Any] | None
        if isinstance(item, AIMessageChunk):
            usage, metadata = item.usage_metadata, item.response_metadata
        elif isinstance(item, GenerationChunk):
            metadata = item.generation_info
            usage = _usage_in(metadata) if metadata else None
        else:
            return
        self.from_model = True
        if usage is not None:
            self.usage = usage if self.usage is None else self.usage + usage
        if metadata:
            for key in _REASON_KEYS:
                reason = metadata.get(key)
                if reason is not None:
                    self.finish_reason = str(reason)

    def end(self, error: Exception | None = None, *, completed: bool = False) -> None:
        if self.ended is None:
            self.ended = self.clock.now
            self.completed = completed
            if error is not None:
                self.error = f"{type(error).__name__}: {error}"

    def snapshot(self) -> StreamMetrics:
        ended = self.ended
        now = ended or self.clock.now
        span = seconds_between(self.first, self.last) if self.first and self.last else 0.0
        gaps = self.gaps
        return StreamMetrics(
            chunks=self.chunks,
            characters=self.characters,
            time_to_first_token=seconds_between(self.started, self.first_text)
            if self.first_text
            else None,
            elapsed=seconds_between(self.started, now),
            gap_mean=self.gap_mean if gaps else None,
            gap_stdev=math.sqrt(self.gap_m2 / gaps) if gaps else None,
            gap_min=self.gap_min if gaps else None,
            gap_max=self.gap_max if gaps else None,
            chunks_per_second=gaps / span if span > 0 else None,
            characters_per_second=(self.characters - self.first_characters) / span
            if span > 0
            else None,
            usage=self.usage,
            finished=ended is not None,
            error=self.error,
            finish_reason=self.finish_reason,
            warnings=(NO_FINISH_REASON,)
            if self.completed and self.from_model and self.finish_reason is None
            else (),
        )


class Metrics:
    """The ``metrics()`` operator; also where its numbers are read.

    Use it in ``pipe`` like any operator; read ``current`` at any time for the latest
    subscription's numbers so far, or pass ``on_complete`` to receive them when a
    stream ends.
    """

    def __init__(
        self,
        on_complete: Callable[[StreamMetrics], None] | None = None,
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        check_callable("metrics", "on_complete", on_complete, optional=True)
        check_scheduler("metrics", scheduler)
        self.on_complete = on_complete
        self.scheduler = scheduler
        self.__name__ = "metrics"  # what a pipeline step's events call it
        self._meter: _Meter | None = None
        self._lock = threading.Lock()

    @property
    def current(self) -> StreamMetrics | None:
        """The latest subscription's metrics so far; ``None`` before any subscription."""
        meter = self._meter
        return None if meter is None else meter.snapshot()

    def __call__(self, source: Observable[Any]) -> Observable[Any]:
        return tapping(self._start)(source)

    def _start(self, scheduler: abc.SchedulerBase | None) -> Hooks:
        meter = _Meter(pick_scheduler(self.scheduler, scheduler))
        with self._lock:
            self._meter = meter

        def finish(error: Exception | None = None) -> None:
            meter.end(error, completed=error is None)
            if self.on_complete is not None:
                self.on_complete(meter.snapshot())

        return Hooks(meter.add, finish, finish, meter.end)


def metrics(
    on_complete: Callable[[StreamMetrics], None] | None = None,
    *,
    scheduler: abc.SchedulerBase | None = None,
) -> Metrics:
    """Measure a stream: time to first token, gaps between chunks, rates, usage.

    Items pass through unchanged. The returned operator keeps the numbers of its latest
    subscription in ``.current`` (readable while the stream runs), and calls
    ``on_complete`` with the final ``StreamMetrics`` when a stream completes or fails.

    A model's stream that completes with no finish reason on any chunk (a server that
    ended it early without an error, as llama.cpp's does when it interrupts a request)
    is flagged in ``warnings``; ``finish_reason`` holds the one seen.

    Args:
        on_complete: called with the final metrics of each stream that ends.
        scheduler: whose clock to read; by default the one given at subscription, so
            under a ``TestScheduler`` the numbers are in virtual time.

    .. code-block:: text

        metrics():  --a-b---c-|
                    --a-b---c-|   (.current: chunks=3, time_to_first_token=2, gap_max=4)

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> meter = metrics()
        >>> reactivex.of("he", "llo").pipe(meter, ops.to_list()).run()
        ['he', 'llo']
        >>> meter.current.chunks, meter.current.characters, meter.current.finished
        (2, 5, True)
    """
    return Metrics(on_complete, scheduler)
