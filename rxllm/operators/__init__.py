"""Operators for LLM streams, to use in ``pipe(...)`` next to any ``reactivex.operators``.

Every operator here is a function returning ``Callable[[Observable[A]], Observable[B]]``.
Text operators take ``str``, ``GenerationChunk`` or ``AIMessageChunk`` items and emit
the kind they receive; when they re-chunk text, the metadata a chunk carried (usage,
``generation_info``, tool-call pieces) rides on the next chunk they emit, so the sum of
the output still carries it. Time-based operators use the scheduler given to them, else
the one given at subscription: under ``stream``/``astream`` that is the event loop's, so
their timers are loop callbacks (never threads), and under
``reactivex.testing.TestScheduler`` they run in virtual time.

Every operator checks its arguments when it is made, before any subscription, and
refuses a bad one with ``rxllm.errors.InvalidInputError`` naming the argument, what it
must be and what it got: ``buffer_tokens: count must be an int >= 1, got '3' (str)``.

Families (one private module each):

- mapping (``_mapping``): ``text``, ``map_text``, ``accumulate``
- buffering (``_buffer``): ``buffer_tokens``, ``buffer_time``, ``buffer_time_or_count``
- segmentation (``_segment``): ``words``, ``lines``, ``sentences``, ``split_on``,
  ``markdown_blocks``
- pacing (``_pacing``): ``smooth``, ``throttle_text``
- tapping (``_tap``) and metrics (``_metrics``): ``tap``, ``on_first_token``, ``metrics``;
  ``tap_events`` (the run's events, from ``rxllm.events``) is re-exported here too
- deadlines (``_deadlines``): ``first_token_timeout``, ``stall_timeout``, ``total_timeout``
- content guards (``_guards``): ``stop_on``, ``max_chars``, ``detect_repetition``
- structured output (``_json``): ``partial_json``, ``json_items``
- fan-out (``_share``): ``share_stream``
- racing (``_race``): ``race``
- retrying (``_retry``): ``retry``, which never repeats text already emitted

Examples:
    >>> from rxllm.llms import FakeStreamingListLLM
    >>> from rxllm.operators import stop_on, words
    >>> llm = FakeStreamingListLLM(responses=["Hello there. STOP and more"])
    >>> list(llm.pipe(stop_on("STOP"), words()).stream("hi"))
    ['Hello ', 'there. ']
"""

from ..events import tap_events
from ._buffer import buffer_time, buffer_time_or_count, buffer_tokens
from ._deadlines import first_token_timeout, stall_timeout, total_timeout
from ._guards import detect_repetition, max_chars, stop_on
from ._json import json_items, partial_json
from ._mapping import Snapshot, accumulate, map_text, text
from ._metrics import Metrics, StreamMetrics, metrics
from ._pacing import smooth, throttle_text
from ._race import Race, race
from ._retry import retry
from ._segment import lines, markdown_blocks, sentences, split_on, words
from ._share import share_stream
from ._tap import on_first_token, tap

__all__ = [
    "Metrics",
    "Race",
    "Snapshot",
    "StreamMetrics",
    "accumulate",
    "buffer_time",
    "buffer_time_or_count",
    "buffer_tokens",
    "detect_repetition",
    "first_token_timeout",
    "json_items",
    "lines",
    "map_text",
    "markdown_blocks",
    "max_chars",
    "metrics",
    "on_first_token",
    "partial_json",
    "race",
    "retry",
    "sentences",
    "share_stream",
    "smooth",
    "split_on",
    "stall_timeout",
    "stop_on",
    "tap",
    "tap_events",
    "text",
    "throttle_text",
    "total_timeout",
    "words",
]
