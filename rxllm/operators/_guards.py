"""Content guards: client-side stop sequences, length limits, loop detection.

A guard that ends the stream early (a stop sequence, the length limit, a loop)
completes it and disposes the upstream subscription at once, which cancels the provider
call. The time guards (deadlines) are in ``_deadlines``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import SingleAssignmentDisposable

from .._internals import longest_match
from ._check import check_count, refuse
from ._operator import Operator, named
from ._segment import _WORD
from ._text import EXTEND, Rechunker, text_of

__all__ = ["detect_repetition", "max_chars", "stop_on"]


def _stopping(make_cut: Callable[[], Callable[[str, bool], tuple[str, bool]]]) -> Operator:
    """An operator that lets text through until ``cut`` says to stop.

    ``cut(text, final)`` takes the next text (``final``: the stream has ended) and
    returns what may be emitted now and whether to stop after it. Text it holds back
    comes out in a later piece.
    """

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            cut = make_cut()
            rechunk = Rechunker()
            upstream = SingleAssignmentDisposable()
            done = False
            held = False  # text is held back: items can no longer pass through as they are

            def emit(text: str) -> None:
                if text:
                    observer.on_next(rechunk.make(text))

            def stop() -> None:
                nonlocal done
                done = True
                upstream.dispose()  # cancels the provider call
                leftover = rechunk.leftover()
                if leftover is not None:
                    observer.on_next(leftover)
                observer.on_completed()

            def on_next(item: Any) -> None:
                nonlocal held
                if done:
                    return
                if type(item) is str:
                    text = item
                    rechunk.kind = str
                else:
                    text = text_of(item)
                    if not text and not held:
                        observer.on_next(item)
                        return
                out, stopping = cut(text, False)
                if out is text and not held and not stopping:
                    observer.on_next(item)
                else:
                    if type(item) is not str:
                        rechunk.feed(item)
                    held = len(out) != len(text) or held
                    emit(out)
                if stopping:
                    stop()

            def on_error(error: Exception) -> None:
                if done:
                    return
                emit(cut("", True)[0])
                observer.on_error(error)

            def on_completed() -> None:
                if done:
                    return
                emit(cut("", True)[0])
                stop()

            upstream.disposable = source.subscribe(
                on_next, on_error, on_completed, scheduler=scheduler
            )
            return upstream

        return Observable(subscribe)

    return operator


def _proper_prefixes(stop: str) -> str:
    """A pattern matching any non-empty proper prefix of ``stop``: ``a(?:b(?:c)?)?``."""
    pattern = ""
    for char in reversed(stop[1:-1] if len(stop) > 1 else ""):
        pattern = f"(?:{re.escape(char)}{pattern})?"
    return re.escape(stop[0]) + pattern


def _string_stops(stops: list[str]) -> Callable[[], Callable[[str, bool], tuple[str, bool]]]:
    finder = re.compile("|".join(re.escape(s) for s in sorted(stops, key=len, reverse=True)))
    # The earliest place where the text ends with the beginning of a stop string.
    partial = re.compile(
        "(?:" + "|".join(_proper_prefixes(s) for s in stops if len(s) > 1) + r")\Z"
        if any(len(s) > 1 for s in stops)
        else r"(?!)"
    )
    longest = max(len(s) for s in stops) - 1
    # The characters a beginning of a stop string can end with: text ending otherwise
    # holds nothing back, which settles most chunks without the search.
    ends = frozenset("".join(s[:-1] for s in stops))

    def make() -> Callable[[str, bool], tuple[str, bool]]:
        held = ""

        def cut(text: str, final: bool) -> tuple[str, bool]:
            nonlocal held
            buffer = held + text if held else text
            size = len(buffer)
            found = finder.search(buffer)
            hold = size
            if not final and buffer[-1:] in ends:
                started = partial.search(buffer, max(size - longest, 0))
                if started is not None:
                    hold = started.start()
            if found is not None and found.start() < hold:
                held = ""
                return buffer[: found.start()], True
            held = buffer[hold:]
            return (text if hold == size and buffer is text else buffer[:hold]), False

        return cut

    return make


def _regex_stop(
    pattern: re.Pattern[str], window: int | None
) -> Callable[[], Callable[[str, bool], tuple[str, bool]]]:
    if not isinstance(pattern.pattern, str) or pattern.search("") is not None:
        raise refuse("stop_on", "stop", "a str pattern that cannot match empty text", pattern)
    if window is None:
        window = longest_match(pattern)
        if window is None:
            raise refuse(
                "stop_on",
                "window",
                "an int >= 1 (the longest text a match may span) for an unbounded "
                f"pattern like {pattern.pattern!r}",
                window,
            )
    span = max(window, 1)

    def make() -> Callable[[str, bool], tuple[str, bool]]:
        held = ""

        def cut(text: str, final: bool) -> tuple[str, bool]:
            nonlocal held
            buffer = held + text
            # Positions before ``safe`` have all the text a match starting there could
            # span, so whether one starts there is already certain.
            safe = len(buffer) if final else max(len(buffer) - span + 1, 0)
            found = pattern.search(buffer)
            if found is not None and found.start() <= safe:
                held = ""
                return buffer[: found.start()], True
            held = buffer[safe:]
            return buffer[:safe], False

        return cut

    return make


@named
def stop_on(stop: str | Iterable[str] | re.Pattern[str], *, window: int | None = None) -> Operator:
    """End the stream just before the first stop sequence, which is not emitted.

    The cut is exact even when a stop sequence spans chunks: text that could be the
    start of one is held back until the next chunk settles it, and nothing else is
    delayed. On a match the stream completes and the upstream is disposed, cancelling
    the provider call (a provider's own ``stop`` parameter saves the tokens too; this
    works with any provider, and with patterns).

    Args:
        stop: a stop string, several, or a compiled regular expression.
        window: for a pattern with no bounded length (``r"\\n{2,}"``), the longest text
            a match may span; text is held back that far.

    Raises:
        InvalidInputError: for no stop strings, an empty one or one not a ``str``, a
            pattern matching empty text, or a pattern of unbounded length without
            ``window``.

    .. code-block:: text

        stop_on("END"):  -"ab E"-"ND cd"-"ef"-|
                         -"ab "--|

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> reactivex.of("The answer: 4", "2\\n\\nHu", "man: ok").pipe(
        ...     stop_on("\\n\\nHuman:"), ops.to_list()).run()
        ['The answer: 4', '2']
    """
    if window is not None:
        window = check_count("stop_on", "window", window)
    if isinstance(stop, re.Pattern):
        return _stopping(_regex_stop(stop, window))
    expected = "a non-empty str, an iterable of them, or a compiled pattern"
    if isinstance(stop, str):
        stops = [stop]
    elif isinstance(stop, Iterable):
        stops = list(stop)
    else:
        raise refuse("stop_on", "stop", expected, stop)
    if not stops or not all(isinstance(s, str) and s for s in stops):
        raise refuse("stop_on", "stop", expected, stop)
    return _stopping(_string_stops(stops))


_EXTENDS = re.compile(f"[{EXTEND}]")


@named
def max_chars(limit: int) -> Operator:
    """Let at most ``limit`` characters through, then complete and cancel the call.

    The cut never splits a character from the combining marks or emoji modifiers
    after it: those still come through, so a limit reached mid-cluster lets the few
    code points completing it pass.

    .. code-block:: text

        max_chars(4):  -"ab"-"cde"-"f"-|
                       -"ab"-"cd"|

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> reactivex.of("ab", "cde", "f").pipe(max_chars(4), ops.to_list()).run()
        ['ab', 'cd']
    """
    limit = check_count("max_chars", "limit", limit, minimum=0)

    def make() -> Callable[[str, bool], tuple[str, bool]]:
        seen = 0
        previous = ""

        def cut(text: str, final: bool) -> tuple[str, bool]:
            nonlocal seen, previous
            if final:
                return "", False
            if seen + len(text) <= limit:
                seen += len(text)
                if text:
                    previous = text[-1]
                return text, False
            at = max(limit - seen, 0)
            before = text[at - 1] if at else previous
            while at < len(text) and (_EXTENDS.match(text, at) is not None or before == "\u200d"):
                before = text[at]
                at += 1
            seen += len(text)
            if text:
                previous = text[-1]
            if at == len(text):  # still inside the last cluster: the next text decides
                return text, False
            return text[:at], True

        return cut

    return _stopping(make)


@named
def detect_repetition(count: int, *, max_period: int = 64) -> Operator:
    """End a degenerate loop: stop once a run of words has repeated ``count`` times.

    The repetitions must be back to back. Words are compared without their trailing
    whitespace. The stream completes right after the ``count``-th repetition (so the
    loop shows, but only that many times) and the upstream is disposed, cancelling the
    call.

    Args:
        count: how many back-to-back repetitions make a loop (at least 2).
        max_period: the longest run of words checked for repetition.

    .. code-block:: text

        detect_repetition(3):  -"la "-"la "-"la "-"la "-"la"-|
                               -"la "-"la "-"la "-|

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> reactivex.of("I am. I am. ", "I am. I am. I am.").pipe(
        ...     detect_repetition(3), ops.to_list()).run()
        ['I am. I am. ', 'I am. ']
    """
    count = check_count("detect_repetition", "count", count, minimum=2)
    max_period = check_count("detect_repetition", "max_period", max_period)
    window = max_period + 1  # a word and the ``max_period`` words before it
    need = count - 1

    def make() -> Callable[[str, bool], tuple[str, bool]]:
        # Word ``i`` "matches at period p" when it equals word ``i - p``: a loop of period
        # ``p`` has just ended when the last ``(count - 1) * p`` words all match at ``p``.
        # A word matches at the distances to its earlier occurrences, so a word seen
        # lately walks back through those (at most ``max_period`` words) and extends,
        # for each, the streak of consecutive matches at that period. A word not seen
        # lately costs two dict operations; no word is ever compared with another again.
        tail = ""  # the last segment, which the next text may still extend
        latest: dict[str, int] = {}  # each word's last index
        # earlier[i % window]: the previous index of word i, if that is within
        # ``max_period`` words; otherwise an index too far back to follow.
        earlier = [-window] * window
        matched = [-1] * window  # matched[p]: the last index that matched at period p
        streak = [0] * window  # streak[p]: how many indices in a row, up to matched[p]
        index = -1

        def cut(text: str, final: bool) -> tuple[str, bool]:
            nonlocal tail, index
            if final:
                return "", False
            buffer = tail + text if tail else text
            if index >= 0 and buffer.isascii():
                # Once a word has ended, the buffer starts the next one; ``_WORD``'s
                # segments of ASCII text that starts a word are the runs between
                # whitespace, each with the whitespace after it, and ``split`` finds
                # them in a fraction of the time.
                words = buffer.split()
                if len(words) < 2:
                    tail = buffer
                    return text, False
                tail = buffer[buffer.rfind(words.pop()) :]
            else:
                segments = _WORD.findall(buffer)
                tail = segments.pop() if segments else ""
                words = [segment.rstrip() for segment in segments]
            before = index  # the index of the word before this text's first
            for word in words:
                index += 1
                previous = latest.get(word, -window)
                latest[word] = index
                if index - previous > max_period:
                    continue
                earlier[index % window] = previous
                while index - previous <= max_period:
                    period = index - previous
                    run = streak[period] + 1 if matched[period] == index - 1 else 1
                    if run >= need * period:
                        # The cut falls after this word's segment; the buffer's first
                        # ``len(buffer) - len(text)`` characters were let through already.
                        end = len("".join(_WORD.findall(buffer)[: index - before]))
                        return text[: end - len(buffer) + len(text)], True
                    matched[period] = index
                    streak[period] = run
                    previous = earlier[previous % window]
            return text, False

        return cut

    return _stopping(make)
