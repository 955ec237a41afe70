"""The seed document's three examples in LangChain's own classes, with the model swapped
for ``to_langchain(rxllm model)``: the embedded SmolLM2, offline.

What they print has the seed's shape: tokens separated by ``|``, and v1 events from
``on_llm_start`` through ``on_llm_stream`` (a ``str`` chunk each) to ``on_llm_end``.
"""

from __future__ import annotations

import pytest
from langchain_core._api.deprecation import LangChainDeprecationWarning
from langchain_core.language_models import BaseLLM

from rxllm.langchain import RxLLM, to_langchain
from rxllm.llms import LlamaCpp

SONG = "Write me a 1 verse song about sparkling water."


@pytest.fixture(scope="module")
def llm() -> RxLLM:
    model = to_langchain(LlamaCpp(temperature=0, max_tokens=16, seed=7))
    assert isinstance(model, RxLLM)
    return model


def test_stream(llm: BaseLLM, capsys: pytest.CaptureFixture[str]) -> None:
    for chunk in llm.stream(SONG):
        print(chunk, end="|", flush=True)
    printed = capsys.readouterr().out
    assert printed.count("|") > 3  # token by token, not one final chunk
    assert printed.replace("|", "") == llm.invoke(SONG)


async def test_astream(llm: BaseLLM, capsys: pytest.CaptureFixture[str]) -> None:
    async for chunk in llm.astream(SONG):
        print(chunk, end="|", flush=True)
    printed = capsys.readouterr().out
    assert printed.count("|") > 3
    assert printed.replace("|", "") == await llm.ainvoke(SONG)


async def test_astream_events_v1(llm: BaseLLM) -> None:
    # The seed's v1: LangChain 1.x still runs it, with a deprecation warning.
    with pytest.warns(LangChainDeprecationWarning, match="version='v1' is deprecated"):
        events = [e async for e in llm.astream_events(SONG, version="v1")]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "on_llm_start"
    assert kinds[-1] == "on_llm_end"
    assert set(kinds[1:-1]) == {"on_llm_stream"}
    assert len({e["run_id"] for e in events}) == 1
    assert all(isinstance(e["data"]["chunk"], str) for e in events[1:-1])
    assert "".join(e["data"]["chunk"] for e in events[1:-1]) == events[-1]["data"]["output"]
