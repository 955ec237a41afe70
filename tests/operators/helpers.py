"""What the operator tests share: marble shorthands, a synchronous runner, text strategies."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import Any

import reactivex
from hypothesis import strategies as st
from reactivex import Observable
from reactivex.testing import ReactiveTest

Operator = Callable[[Observable[Any]], Observable[Any]]

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe

LONG = " ".join(f"word{i}" for i in range(200))


def run(operator: Operator, chunks: Iterable[Any]) -> list[Any]:
    """The items ``operator`` emits for ``chunks``, synchronously; errors propagate."""
    items: list[Any] = []
    errors: list[Exception] = []
    reactivex.from_iterable(list(chunks)).pipe(operator).subscribe(items.append, errors.append)
    if errors:
        raise errors[0]
    return items


def split_at(text: str, cuts: Iterable[int]) -> list[str]:
    """``text`` cut at the given offsets (out-of-range and repeated ones are ignored)."""
    points = sorted({c for c in cuts if 0 < c < len(text)})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


#: Text an LLM might write: ASCII, CJK, emoji (with modifiers and joiners), combining
#: marks, punctuation and every kind of whitespace the segmenters care about.
ALPHABET = st.sampled_from(
    list("abcXYZ 019")
    + [" ", " ", "\n", "\n", "\t", "\r", ".", "!", "?", ",", "`", "#", "~", '"', "'", ")"]
    + list("你好世界。！？、「」")
    + ["\u0301", "\u0308", "\u200d", "\ufe0f", "\U0001f44d", "\U0001f3fd", "\U0001f469", "é"]
)
texts = st.lists(ALPHABET, max_size=60).map("".join)


@st.composite
def split_texts(draw: st.DrawFn, source: st.SearchStrategy[str] = texts) -> tuple[str, list[str]]:
    """A text, and the same text cut into chunks at arbitrary places."""
    text = draw(source)
    cuts = draw(st.lists(st.integers(min_value=1, max_value=max(len(text) - 1, 1)), max_size=20))
    return text, split_at(text, cuts)


class ThreadProbe:
    """Records, for each item it is called with, the thread and whether a loop runs there.

    A time-based operator under ``stream``/``astream`` must fire its timers as event
    loop callbacks: every call then happens on one thread, the one running the loop,
    and never on a ``threading.Timer`` thread (RxPY's fallback ``TimeoutScheduler``).
    """

    def __init__(self) -> None:
        self.seen: set[tuple[int | None, bool, bool]] = set()

    def __call__(self, _: object) -> None:
        thread = threading.current_thread()
        on_loop = asyncio._get_running_loop() is not None
        self.seen.add((thread.ident, on_loop, isinstance(thread, threading.Timer)))

    def all_on_one_loop_thread(self) -> bool:
        return len(self.seen) == 1 and all(on_loop and not timer for _, on_loop, timer in self.seen)
