"""Segmentation: words, lines, sentences, split_on, markdown_blocks."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.testing import TestScheduler

from rxllm.errors import InvalidInputError
from rxllm.llms import FakeListChatModel, FakeStreamingListLLM
from rxllm.operators import lines, markdown_blocks, sentences, split_on, words
from rxllm.operators._segment import _SENTENCE, _WORD, RegexCutter, _SentenceCutter, segmenting
from rxllm.schema import AIMessageChunk, GenerationChunk, ToolCallChunk, Usage

from .helpers import (
    Operator,
    on_completed,
    on_error,
    on_next,
    run,
    split_at,
    split_texts,
    subscribe,
    texts,
)

SEGMENTERS = {
    "words": words,
    "lines": lines,
    "sentences": sentences,
    "split_on": lambda: split_on(", "),
    "split_on_regex": lambda: split_on(re.compile(r"[;,]\s*")),
    "markdown_blocks": markdown_blocks,
}


# -- marbles -------------------------------------------------------------------------


def test_words_marble_emits_each_word_once_the_next_begins() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "he"), on_next(20, "llo wo"), on_next(30, "rld"), on_completed(40)
    )
    results = scheduler.start(lambda: xs.pipe(words()))
    assert results.messages == [
        on_next(220, "hello "),
        on_next(240, "world"),
        on_completed(240),
    ]
    assert xs.subscriptions == [subscribe(200, 240)]


def test_lines_marble_and_disposal_with_the_consumer() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "a\nb"), on_next(20, "c"), on_next(30, "\nd\ne\n"), on_next(40, "f")
    )
    results = scheduler.start(lambda: xs.pipe(lines()), disposed=235)
    assert results.messages == [
        on_next(210, "a\n"),
        on_next(230, "bc\n"),
        on_next(230, "d\n"),
        on_next(230, "e\n"),
    ]
    assert xs.subscriptions == [subscribe(200, 235)]


def test_sentences_marble_flushes_the_tail_before_an_error() -> None:
    scheduler = TestScheduler()
    boom = RuntimeError("boom")
    xs = scheduler.create_cold_observable(
        on_next(10, "Hi. Ho"), on_next(20, "w are you? I"), on_next(30, "'m"), on_error(40, boom)
    )
    results = scheduler.start(lambda: xs.pipe(sentences()))
    assert results.messages == [
        on_next(210, "Hi. "),
        on_next(220, "How are you? "),
        on_next(240, "I'm"),
        on_error(240, boom),
    ]
    assert xs.subscriptions == [subscribe(200, 240)]


def test_split_on_marble() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "a;b"), on_next(20, "c;"), on_next(30, "d"), on_completed(40)
    )
    results = scheduler.start(lambda: xs.pipe(split_on(";")))
    assert results.messages == [
        on_next(210, "a;"),
        on_next(220, "bc;"),
        on_next(240, "d"),
        on_completed(240),
    ]


def test_markdown_blocks_marble_keeps_a_code_block_whole() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "Intro.\n\n``"),
        on_next(20, "`py\nx = 1\n\n"),
        on_next(30, "y = 2\n```\nE"),
        on_next(40, "nd."),
        on_completed(50),
    )
    results = scheduler.start(lambda: xs.pipe(markdown_blocks()))
    assert results.messages == [
        on_next(210, "Intro.\n\n"),
        on_next(230, "```py\nx = 1\n\ny = 2\n```\n"),
        on_next(250, "End."),
        on_completed(250),
    ]


# -- semantics -----------------------------------------------------------------------


def test_words_on_cjk_emoji_and_combining_marks() -> None:
    assert run(words(), ["你好，", "世界。Hi 👍🏽 cafe", "\u0301 ok"]) == [
        "你", "好，", "世", "界。", "Hi ", "👍🏽 ", "cafe\u0301 ", "ok",
    ]  # fmt: skip
    # An opening bracket goes with the word it opens.
    assert run(words(), ["ab「你", "好」「hi」 x"]) == ["ab", "「你", "好」", "「hi」 ", "x"]
    # A combining mark arriving in the next chunk stays with its ideograph.
    assert run(words(), ["字", "\u0301字"]) == ["字\u0301", "字"]


def test_sentences_on_cjk_quotes_and_newlines() -> None:
    assert run(sentences(), ['他说：「好。」然后', '走了！ "Yes!" she said.\nNext']) == [
        "他说：「好。」", "然后走了！ ", '"Yes!" ', "she said.\n", "Next",
    ]  # fmt: skip
    assert run(sentences(), ["3.14 is pi. e.g", ". this"]) == ["3.14 is pi. ", "e.g. ", "this"]


def test_lines_keep_crlf_together() -> None:
    assert run(lines(), ["a\r", "\nb\r\n", "c"]) == ["a\r\n", "b\r\n", "c"]


def test_markdown_headings_and_fences_interrupt_paragraphs() -> None:
    text = "# Title\nPara one\nstill one\n~~~\ncode\n\n```\nstill code\n~~~\nAfter\n\n\nLast"
    assert run(markdown_blocks(), [text]) == [
        "# Title\n",
        "Para one\nstill one\n",
        "~~~\ncode\n\n```\nstill code\n~~~\n",
        "After\n\n\n",
        "Last",
    ]


def test_split_on_rejects_a_pattern_matching_empty_text() -> None:
    with pytest.raises(InvalidInputError):
        split_on(re.compile(r"x*"))


def test_generation_chunks_keep_their_kind_and_metadata() -> None:
    chunks = [
        GenerationChunk(text="he"),
        GenerationChunk(text="llo wo", generation_info={"logprobs": 1}),
        GenerationChunk(text="rld", generation_info={"finish_reason": "stop"}),
    ]
    out = run(words(), chunks)
    assert out == [
        GenerationChunk(text="hello ", generation_info={"logprobs": 1}),
        GenerationChunk(text="world", generation_info={"finish_reason": "stop"}),
    ]
    assert sum(out[1:], out[0]).generation_info == {"logprobs": 1, "finish_reason": "stop"}


def test_message_chunks_keep_id_usage_and_tool_call_pieces() -> None:
    usage = Usage(input_tokens=3, output_tokens=2, total_tokens=5)
    tool = ToolCallChunk(name="f", args="{}", id="t1", index=0)
    chunks = [
        AIMessageChunk(content="one tw", id="m1"),
        AIMessageChunk(content="", id="m1", tool_call_chunks=[tool]),
        AIMessageChunk(content="o", id="m1", usage_metadata=usage),
    ]
    out = run(words(), chunks)
    assert [c.content for c in out] == ["one ", "two"]
    assert all(type(c) is AIMessageChunk and c.id == "m1" for c in out)
    total = sum(out[1:], out[0])
    assert total.usage_metadata == usage
    assert total.tool_call_chunks == [tool]


def test_metadata_without_a_tail_still_comes_out() -> None:
    chunks = [GenerationChunk(text="a\n"), GenerationChunk(text="", generation_info={"x": 1})]
    assert run(lines(), chunks) == [
        GenerationChunk(text="a\n"),
        GenerationChunk(text="", generation_info={"x": 1}),
    ]


# -- properties ----------------------------------------------------------------------


def _whole(pattern: re.Pattern[str], segment: str) -> bool:
    found = pattern.match(segment)
    return found is not None and found.end() == len(segment)


@pytest.mark.parametrize("name", sorted(SEGMENTERS))
@settings(max_examples=300, deadline=None)
@given(case=split_texts())
def test_segments_join_back_and_do_not_depend_on_the_split(
    name: str, case: tuple[str, list[str]]
) -> None:
    text, chunks = case
    make: type[Operator] | object = SEGMENTERS[name]
    assert callable(make)
    segments = run(make(), chunks)
    assert "".join(segments) == text
    assert all(segments)
    # The same segments as for the text in one piece: every segment emitted before the
    # end was whole, not an artefact of where a chunk happened to end.
    assert segments == run(make(), [text])


@settings(max_examples=300, deadline=None)
@given(case=split_texts())
def test_each_word_but_the_tail_is_a_whole_word(case: tuple[str, list[str]]) -> None:
    _, chunks = case
    segments = run(words(), chunks)
    for segment in segments[:-1]:
        assert _whole(_WORD, segment)
        assert segment.strip(), "a word has a non-space character"


@settings(max_examples=300, deadline=None)
@given(case=split_texts())
def test_each_line_but_the_tail_ends_with_its_only_newline(case: tuple[str, list[str]]) -> None:
    _, chunks = case
    segments = run(lines(), chunks)
    for segment in segments[:-1]:
        assert segment.endswith("\n")
        assert segment.count("\n") == 1
    if segments:
        assert segments[-1].count("\n") <= 1


@settings(max_examples=300, deadline=None)
@given(case=split_texts())
def test_each_sentence_but_the_tail_ends_at_a_boundary(case: tuple[str, list[str]]) -> None:
    _, chunks = case
    segments = run(sentences(), chunks)
    ends = re.compile(r"([.!?\u2026]+[\"')\]]*\s+|[。！？]+[」』）\"']*\s*|\n\s*)\Z")
    for segment in segments[:-1]:
        assert _whole(_SENTENCE, segment)
        assert ends.search(segment), segment


sentence_texts = st.lists(
    st.sampled_from(
        [*"ab .!?\u2026\u203c\"')]\u201d\u00bb\n\t\u3002\uff01\u300d\uff09", "  ", "\u0301"]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(case=split_texts(sentence_texts))
def test_sentences_are_the_matches_of_the_sentence_pattern(case: tuple[str, list[str]]) -> None:
    # sentences() reads each character once; _SENTENCE, matched again over the
    # unfinished sentence at every chunk, is the definition it must agree with.
    _, chunks = case
    reference = segmenting(lambda: RegexCutter(_SENTENCE))
    assert run(sentences(), chunks) == run(reference, chunks)


def test_sentences_do_not_read_an_unfinished_sentence_again() -> None:
    cutter = _SentenceCutter()
    for _ in range(1000):
        assert cutter.push("word, ") == []
    # The next chunk's search starts at its own text: the 6,000 characters before it
    # are known to hold no end of a sentence.
    assert cutter.checked == len(cutter.tail) == 6000
    assert cutter.push("end.") == []
    assert cutter.checked == 6003  # the "." may end the sentence, if a space follows
    assert cutter.push(' "Next') == ["word, " * 1000 + "end. "]
    assert (cutter.tail, cutter.checked) == ('"Next', 5)


markdown = st.lists(
    st.sampled_from(
        ["Para text", "more", "", "```py", "```", "~~~", "# Head", "  ", "x = 1", "- item"]
    ),
    max_size=15,
).map(lambda parts: "\n".join(parts))


@settings(max_examples=300, deadline=None)
@given(case=split_texts(markdown))
def test_each_block_but_the_tail_is_whole(case: tuple[str, list[str]]) -> None:
    _, chunks = case
    blocks = run(markdown_blocks(), chunks)
    for block in blocks[:-1]:
        assert block.endswith("\n")
        # A fence opened in a block is closed in it: no code block is split.
        opened: str | None = None
        for line in block.splitlines():
            if opened is None and line.strip()[:3] in ("```", "~~~"):
                opened = line.strip()[:3]
            elif opened is not None and line.strip() == opened:
                opened = None
        assert opened is None, block


def test_split_helper_covers_the_text() -> None:
    assert split_at("abcdef", [4, 2, 2, 9]) == ["ab", "cd", "ef"]


@given(text=texts)
def test_one_chunk_per_character_gives_the_same_words(text: str) -> None:
    assert run(words(), list(text)) == run(words(), [text])


# -- through a real pipeline -----------------------------------------------------------


def test_words_through_llm_stream() -> None:
    llm = FakeStreamingListLLM(responses=["Hello there, world"], chunking="char")
    assert list(llm.pipe(words()).stream("hi")) == ["Hello ", "there, ", "world"]
    assert llm.pipe(words()).invoke("hi") == "Hello there, world"


async def test_sentences_through_chat_astream() -> None:
    chat = FakeListChatModel(responses=["Hi there. How are you? Fine."], chunking="char")
    out = [chunk async for chunk in chat.pipe(sentences()).astream("hi")]
    assert [chunk.content for chunk in out] == ["Hi there. ", "How are you? ", "Fine."]
    assert (await chat.pipe(sentences()).ainvoke("hi")).content == "Hi there. How are you? Fine."


@pytest.mark.parametrize("name", sorted(SEGMENTERS))
def test_every_segmenter_through_stream(name: str) -> None:
    text = "Line one, two.\n\nLine; three! 你好。\n```\ncode\n```\nend"
    llm = FakeStreamingListLLM(responses=[text])
    make = SEGMENTERS[name]
    assert callable(make)
    streamed = list(llm.pipe(make()).stream("hi"))
    assert "".join(streamed) == text
    assert streamed == run(make(), [text])
