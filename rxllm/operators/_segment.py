"""Segmentation: re-chunk streamed text at word, line, sentence or block boundaries.

Each segmenter holds the incomplete tail of the text, emits every segment as soon as it
is certain to be whole, and flushes the tail when the stream ends (or fails, just before
the error). A segment is certain only once a character after it has arrived: ``"the"``
may still become ``"then"``. Because that decision looks at nothing but the text, the
segments are the same however the text was split into chunks, and they always join back
into the input.

Segments keep their separators: a word carries its trailing whitespace, a line its
``"\\n"``, a block its blank lines, so ``"".join(segments)`` is the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

from reactivex import abc

from ._check import refuse
from ._operator import Operator, named
from ._skeleton import NextAndFlush, Pacer, flushing
from ._text import EXTEND, Rechunker

__all__ = ["lines", "markdown_blocks", "sentences", "split_on", "words"]


class Cutter(Protocol):
    """Cuts one stream's text into segments; one per subscription."""

    def push(self, text: str) -> list[str]:
        """Take more text; return the segments it completed."""

    def flush(self) -> str:
        """The incomplete tail, taken at the end of the stream."""


def segmenting(make_cutter: Callable[[], Cutter]) -> Operator:
    """An operator emitting each segment a fresh ``make_cutter()`` finds, as its own item."""

    def start(observer: abc.ObserverBase[Any], _: Pacer) -> NextAndFlush:
        cutter = make_cutter()
        push = cutter.push
        rechunk = Rechunker()
        emit = observer.on_next

        def on_next(item: Any) -> None:
            text = item if type(item) is str else rechunk.feed(item)
            if not text:
                return
            segments = push(text)
            if not segments:
                return
            if rechunk.kind is str:
                for segment in segments:
                    emit(segment)
            else:
                for segment in segments:
                    emit(rechunk.make(segment))

        def flush() -> None:
            last = rechunk.leftover(cutter.flush())
            if last is not None:
                emit(last)

        return on_next, flush

    return flushing(start)


class RegexCutter:
    """Segments are the successive matches of ``pattern``; the last one is the tail.

    ``pattern`` must tile any text: match at every position, never empty, with greedy
    runs, so that matches cover the text back to back and only the last, which reaches
    the end of the text so far, could still grow. One ``findall`` per chunk, in C.
    """

    __slots__ = ("findall", "tail")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        if pattern.groups:
            self.findall: Callable[[str], list[str]] = lambda text: [
                found.group() for found in pattern.finditer(text)
            ]
        else:
            self.findall = pattern.findall
        self.tail = ""

    def push(self, text: str) -> list[str]:
        parts = self.findall(self.tail + text if self.tail else text)
        self.tail = parts.pop() if parts else ""
        return parts

    def flush(self) -> str:
        tail, self.tail = self.tail, ""
        return tail


# Scripts written without spaces between words: every ideograph or kana is a word.
# Hangul is not here: Korean puts spaces between words.
_CJK = (
    "\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3031-\u3035\u3038-\u303c\u3040-\u30ff"
    "\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_CJK_OPEN = "\u3008\u300a\u300c\u300e\u3010\u3014\u3016\u3018\u301a\u301d\uff08\uff3b\uff5b\uff5f"
_CJK_CLOSE = (
    "\u3001-\u3003\u3009\u300b\u300d\u300f\u3011\u3015\u3017\u3019\u301b\u301e\u301f"
    "\uff01\uff09\uff0c\uff0e\uff1a\uff1b\uff1f\uff3d\uff5d\uff60\uff61\uff63\uff64"
    "!,.:;?)\\]"
)
# Alternatives in order of frequency: a run of ordinary letters first, as most text is.
_WORD = re.compile(
    rf"\s*(?:[^\s{_CJK}{_CJK_OPEN}]+"
    rf"|[{_CJK_OPEN}]*[{_CJK}][{EXTEND}]*(?:[{_CJK_CLOSE}][{EXTEND}]*)*"
    rf"|[{_CJK_OPEN}]+[^\s{_CJK}]*)\s*"
    r"|\s+"  # only whitespace so far
)
_LINE = re.compile(r"[^\n]*\n|[^\n]+")
_TERMINATORS = ".!?\u2026\u203c\u2047-\u2049\u3002\uff01\uff1f\uff61\n"
_SENTENCE_END = (
    r"[.!?\u2026\u203c\u2047-\u2049]+[\"'\u201d\u2019\u00bb)\]]*\s+"  # needs a space after
    r"|[\u3002\uff01\uff1f\uff61]+[\u300d\u300f\uff09\u3011\u3015\u300b\u3009\u201d\u2019\"']*\s*"
    r"|\n\s*"
)
# What a sentence is: the text up to the first end of a sentence, which is greedy (all
# the closing quotes and whitespace after it). ``_SentenceCutter`` finds the same
# segments without reading the unfinished sentence again at every chunk.
_SENTENCE = re.compile(
    rf"(?:[^{_TERMINATORS}]++|(?!{_SENTENCE_END})[{_TERMINATORS}])*+(?:{_SENTENCE_END})"
    r"|[\s\S]+"
)
# Where the current sentence ends, or may yet end: at a terminator run reaching the end
# of the text so far, which whitespace may still follow.
_SENTENCE_BOUNDARY = re.compile(
    rf"(?:{_SENTENCE_END})|[.!?\u2026\u203c\u2047-\u2049]+[\"'\u201d\u2019\u00bb)\]]*\Z"
)


class _SentenceCutter:
    """Sentences, each character read once (``_SENTENCE`` would read the tail again).

    A sentence ends at the first match of ``_SENTENCE_END``, whole once a character
    follows it. Text before ``checked`` holds no such match, nor the start of one.
    """

    __slots__ = ("tail", "checked")

    def __init__(self) -> None:
        self.tail = ""
        self.checked = 0

    def push(self, text: str) -> list[str]:
        buffer = self.tail + text if self.tail else text
        size, start, at = len(buffer), 0, self.checked
        segments: list[str] = []
        while (found := _SENTENCE_BOUNDARY.search(buffer, at)) is not None:
            end = found.end()
            if end == size:  # what follows decides where it ends
                at = found.start()
                break
            segments.append(buffer[start:end])
            start = at = end
        else:
            at = size
        self.tail, self.checked = buffer[start:], at - start
        return segments

    def flush(self) -> str:
        tail, self.tail, self.checked = self.tail, "", 0
        return tail


class _LiteralCutter:
    """Segments end with a literal separator, whole as soon as it has come."""

    __slots__ = ("separator", "single", "tail")

    def __init__(self, separator: str) -> None:
        self.separator = separator
        # One character cannot straddle two chunks: only the new text need be searched.
        self.single = len(separator) == 1
        self.tail = ""

    def push(self, text: str) -> list[str]:
        separator = self.separator
        buffer = self.tail + text
        if separator not in (text if self.single else buffer):
            self.tail = buffer
            return []
        parts = buffer.split(separator)
        self.tail = parts.pop()
        return [part + separator for part in parts]

    def flush(self) -> str:
        tail, self.tail = self.tail, ""
        return tail


@named
def words() -> Operator:
    """Re-chunk text into words, each with the whitespace that follows it.

    A CJK ideograph or kana is a word of its own (with the punctuation after it), and a
    combining mark or emoji modifier stays with the character it modifies.

    .. code-block:: text

        words():   -"he"-"llo wo"-"rld"-|
                   -------"hello "----"world"-|

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> reactivex.of("he", "llo wo", "rld").pipe(words(), ops.to_list()).run()
        ['hello ', 'world']
    """
    return segmenting(lambda: RegexCutter(_WORD))


@named
def lines() -> Operator:
    """Re-chunk text into lines, each ending with its ``"\\n"`` (so ``"\\r\\n"`` too).

    .. code-block:: text

        lines():   -"a\\nb"-"c"-"\\n"-"d"-|
                   -"a\\n"------"bc\\n"---"d"|

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> reactivex.of("one\\ntw", "o\\nthr", "ee").pipe(lines(), ops.to_list()).run()
        ['one\\n', 'two\\n', 'three']
    """
    return segmenting(lambda: _LiteralCutter("\n"))


@named
def sentences() -> Operator:
    """Re-chunk text into sentences, for text-to-speech or translation.

    A sentence ends at ``.``, ``!``, ``?`` or ``…`` (with any closing quotes or
    brackets) followed by whitespace, which it keeps; at ``。``, ``！`` or ``？`` with
    no space needed; or at a line break. Abbreviations (``"e.g. this"``) are not
    recognised: ``"e.g. "`` ends a sentence, as in most streaming TTS front ends.

    .. code-block:: text

        sentences():  -"Hi. Ho"-"w are"-" you?"-|
                      -"Hi. "---------------"How are you?"|

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> reactivex.of("Hi. Ho", "w are", " you? 好。", "是").pipe(
        ...     sentences(), ops.to_list()).run()
        ['Hi. ', 'How are you? ', '好。', '是']
    """
    return segmenting(_SentenceCutter)


@named
def split_on(pattern: str | re.Pattern[str]) -> Operator:
    """Re-chunk text after every match of ``pattern``; the match ends its segment.

    Args:
        pattern: a literal string, or a compiled regular expression. A match is taken
            once text follows it, so a greedy pattern (``r",\\s*"``) sees its whole run;
            a literal is taken at once.

    Raises:
        InvalidInputError: if ``pattern`` is empty, is not a ``str`` or a compiled
            ``str`` pattern, or can match the empty string.

    .. code-block:: text

        split_on(";"):  -"a;b"-"c;"-"d"-|
                        -"a;"--"bc;"----"d"|

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> reactivex.of("a;b", "c;", "d").pipe(split_on(";"), ops.to_list()).run()
        ['a;', 'bc;', 'd']
    """
    if isinstance(pattern, str) and pattern:
        return segmenting(lambda: _LiteralCutter(pattern))
    if (
        not isinstance(pattern, re.Pattern)
        or not isinstance(pattern.pattern, str)
        or pattern.search("") is not None
    ):
        raise refuse(
            "split_on",
            "pattern",
            "a non-empty str, or a compiled str pattern that cannot match empty text",
            pattern,
        )
    segment = re.compile(rf"[\s\S]*?(?:{pattern.pattern})|[\s\S]+", pattern.flags)
    return segmenting(lambda: RegexCutter(segment))


_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r" {0,3}#{1,6}(?:[ \t]|\r?\n)")


class _BlockCutter:
    """Markdown blocks, line by line: paragraphs, headings, whole fenced code blocks."""

    __slots__ = ("block", "partial", "fence", "has_content", "ended")

    def __init__(self) -> None:
        self.block = ""  # whole lines of the current block
        self.partial = ""  # the line being written
        self.fence: str | None = None  # the open fence, inside a code block
        self.has_content = False  # the block has a non-blank line
        self.ended = False  # a blank line, closing fence or heading ended the block

    def push(self, text: str) -> list[str]:
        segments: list[str] = []
        if "\n" in text:
            buffer = self.partial + text
            start = 0
            while (newline := buffer.find("\n", start)) >= 0:
                self._line(buffer[start : newline + 1], segments)
                start = newline + 1
            self.partial = buffer[start:]
        else:
            self.partial += text
        # A non-blank line after a finished block starts the next one: no need to wait
        # for the end of that line to release the block.
        if self.ended and self.fence is None and self.partial.strip():
            segments.append(self.block)
            self.block, self.has_content, self.ended = "", False, False
        return segments

    def _line(self, line: str, segments: list[str]) -> None:
        if self.fence is not None:
            self.block += line
            closing = _FENCE.match(line)
            if (
                closing
                and closing.group(1)[0] == self.fence[0]
                and len(closing.group(1)) >= len(self.fence)
                and not line[closing.end() :].strip()
            ):
                self.fence = None
                self.ended = True
            return
        if not line.strip():
            self.block += line
            self.ended = self.ended or self.has_content
            return
        opening = _FENCE.match(line)
        heading = _HEADING.match(line)
        # A fence or a heading interrupts a paragraph (CommonMark 4.5, 4.2).
        if self.has_content and (self.ended or opening or heading):
            segments.append(self.block)
            self.block, self.ended = "", False
        self.block += line
        self.has_content = True
        if opening:
            self.fence = opening.group(1)
        elif heading:
            self.ended = True

    def flush(self) -> str:
        tail = self.block + self.partial
        self.block, self.partial, self.fence = "", "", None
        self.has_content = self.ended = False
        return tail


@named
def markdown_blocks() -> Operator:
    """Re-chunk Markdown into blocks: paragraphs, headings, whole fenced code blocks.

    A block keeps the blank lines after it. A fenced code block (```` ``` ```` or
    ``~~~``) is one block however many blank lines it holds, so it can be rendered,
    highlighted or skipped by text-to-speech as a whole.

    .. code-block:: text

        markdown_blocks():  -"Hi.\\n\\n``"-"`py\\nx\\n\\ny\\n"-"```\\nEnd"-|
                            -"Hi.\\n\\n"-------------------"```py\\nx\\n\\ny\\n```\\n"-"End"|

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> chunks = ["# Title\\nSome ", "text.\\n\\n```py\\nx = 1\\n\\ny", " = 2\\n```\\n"]
        >>> reactivex.from_iterable(chunks).pipe(markdown_blocks(), ops.to_list()).run()
        ['# Title\\n', 'Some text.\\n\\n', '```py\\nx = 1\\n\\ny = 2\\n```\\n']
    """
    return segmenting(_BlockCutter)
