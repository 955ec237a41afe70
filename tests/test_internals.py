"""Each private internal of a dependency that rxllm uses (``rxllm._internals``) still
behaves as rxllm assumes, on the installed version of that dependency."""

from __future__ import annotations

import asyncio
import copy
import pickle
import re

import pytest
from reactivex import operators as ops
from reactivex.scheduler import ImmediateScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler, AsyncIOThreadSafeScheduler

from rxllm._internals import curried_name, longest_match, scheduler_loop
from rxllm.schema import AIMessageChunk, GenerationChunk, ToolCall, _content_chunk, _text_chunk


def test_unvalidated_chunks_equal_validated_ones() -> None:
    for fast, slow in [
        (_text_chunk("hé"), GenerationChunk(text="hé", generation_info=None)),
        (
            _content_chunk("hé", "id-1"),
            AIMessageChunk(
                content="hé",
                id="id-1",
                tool_call_chunks=[],
                usage_metadata=None,
                response_metadata={},
            ),
        ),
    ]:
        assert fast == slow
        assert repr(fast) == repr(slow)
        assert fast.model_fields_set == slow.model_fields_set
        assert fast.model_dump_json() == slow.model_dump_json()
        assert fast.model_extra == slow.model_extra
        assert pickle.loads(pickle.dumps(fast)) == slow
        assert copy.deepcopy(fast) == slow
        assert fast.model_copy(update={"id": "id-2"}) == slow.model_copy(update={"id": "id-2"})
        assert type(slow).model_validate(fast.model_dump()) == slow
    first, second = _content_chunk("a", None), _content_chunk("b", None)
    first.tool_calls.append(ToolCall(name="f"))  # mutable defaults are not shared
    assert second.tool_calls == []


def test_the_scheduler_loop_an_asyncio_scheduler() -> None:
    loop = asyncio.new_event_loop()
    try:
        for kind in (AsyncIOScheduler, AsyncIOThreadSafeScheduler):
            assert scheduler_loop(kind(loop)) is loop, (
                "reactivex no longer keeps an AsyncIOScheduler's loop in `_loop`: "
                "update rxllm._internals.scheduler_loop and reactivex's bound in setup.cfg"
            )
        assert scheduler_loop(ImmediateScheduler()) is None
        assert scheduler_loop(None) is None
    finally:
        loop.close()


def test_the_name_of_a_curried_reactivex_operator() -> None:
    assert curried_name(ops.map(str)) == "map_"
    assert curried_name(ops.filter(bool)) == "filter_"
    assert curried_name(ops.take(3)) == "take_"
    assert curried_name(ops.scan(max)) == "scan_"
    assert curried_name(str.upper) is None


@pytest.mark.parametrize(
    ("pattern", "width"),
    [(r"abc", 3), (r"a{2,5}", 5), (r"(?:ab|c)d?", 3), (r"\n{2,}", None), (r"x+", None)],
)
def test_longest_match_reads_re_s_private_parser(pattern: str, width: int | None) -> None:
    # re._parser is private: if a Python release moves or changes it, this fails here,
    # not as a wrong hold-back window in stop_on.
    assert longest_match(re.compile(pattern)) == width
