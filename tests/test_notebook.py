"""``rxllm.notebook``: ``timeline`` figures, and ``display_stream`` in-process and in a kernel.

The kernel tests run cells in a real ipykernel through nbclient and read the iopub
messages it received, so what they check is what a notebook frontend sees.
"""

from __future__ import annotations

import asyncio
import builtins
import json
from pathlib import Path
from typing import Any

import pytest
from reactivex import operators as ops

from rxllm import RunnableLambda, notebook
from rxllm.errors import InvalidInputError
from rxllm.llms import FakeStreamingListLLM
from rxllm.operators import StreamMetrics, words

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def _event(kind: str, run: str, name: str, at: float, parents: list[str] | None = None) -> Any:
    return {"event": kind, "run_id": run, "name": name, "tags": [], "metadata": {},
            "data": {}, "parent_ids": parents or [], "time": 1000.0 + at}  # fmt: skip


# -- timeline ---------------------------------------------------------------------------


def _marbles(axes: Any) -> list[list[float]]:
    """The x of each marble, one list per lane that has any (scatters, not lines)."""
    from matplotlib.collections import PathCollection

    return [[float(x) for x, _ in c.get_offsets()] for c in axes.collections
            if isinstance(c, PathCollection)]  # fmt: skip


def test_timeline_draws_one_lane_per_run_and_one_marble_per_chunk(tmp_path: Path) -> None:
    llm = FakeStreamingListLLM(responses=["one two three four"])
    chain = RunnableLambda(lambda topic: f"about {topic}").pipe(llm, words())
    events = list(chain.stream_events("water"))
    runs = {event["run_id"] for event in events}
    figure = notebook.timeline(events, title="a chain")
    axes = figure.axes[0]
    labels = [tick.get_text() for tick in axes.get_yticklabels()]
    assert len(labels) == len(runs) == 4  # the sequence, the lambda, the model, words
    assert labels[0] == "RunnableSequence"
    assert any("FakeStreamingListLLM" in label for label in labels)
    # One marble per *_stream event, in one scatter per lane that streamed.
    marbles = sum(len(lane) for lane in _marbles(axes))
    streamed = sum(event["event"].endswith("_stream") for event in events)
    assert marbles == streamed
    assert any("first token" in text.get_text() for text in axes.texts)
    path = tmp_path / "timeline.png"
    figure.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure._repr_png_()[:4] == b"\x89PNG"  # how a notebook shows it


def test_timeline_keeps_gaps_and_marks_time_to_first_token() -> None:
    events = [
        _event("on_llm_start", "m", "model", 0.0),
        _event("on_llm_stream", "m", "model", 0.5),
        _event("on_llm_stream", "m", "model", 0.6),
        _event("on_llm_stream", "m", "model", 2.0),  # a gap
        _event("on_llm_end", "m", "model", 2.1),
    ]
    axes = notebook.timeline(events).axes[0]
    (marbles,) = _marbles(axes)
    assert [round(x, 3) for x in marbles] == [0.5, 0.6, 2.0]
    assert "first token 0.50 s" in [text.get_text() for text in axes.texts]


def test_timeline_compares_calls_each_from_time_zero() -> None:
    fast = [_event("on_llm_start", "a", "fast", 0.0), _event("on_llm_stream", "a", "fast", 0.1)]
    slow = [_event("on_llm_start", "b", "slow", 5.0), _event("on_llm_stream", "b", "slow", 6.0)]
    axes = notebook.timeline({"fast": fast, "slow": slow}).axes[0]
    assert [tick.get_text() for tick in axes.get_yticklabels()] == ["fast · fast", "slow · slow"]
    assert [[round(x, 3) for x in lane] for lane in _marbles(axes)] == [[0.1], [1.0]]
    as_list = notebook.timeline([fast, slow]).axes[0]
    assert [t.get_text() for t in as_list.get_yticklabels()] == ["run 1 · fast", "run 2 · slow"]


def test_timeline_draws_metrics_as_waiting_and_streaming_bars() -> None:
    figures = StreamMetrics(chunks=10, time_to_first_token=0.4, elapsed=1.5, finished=True)
    axes = notebook.timeline({"local": figures}).axes[0]
    assert [tick.get_text() for tick in axes.get_yticklabels()] == ["local"]
    assert len(axes.patches) == 2


def test_timeline_rejects_events_without_times() -> None:
    with pytest.raises(InvalidInputError, match="'time' key"):
        notebook.timeline([{"event": "on_llm_start", "run_id": "x"}])
    with pytest.raises(InvalidInputError, match="no events"):
        notebook.timeline({"empty": []})


def test_missing_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_ipython(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in ("IPython", "ipywidgets", "matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ipython)
    monkeypatch.setattr(notebook.importlib, "import_module", no_ipython)
    notebook._figure_class.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pip install 'rxllm\[notebook\]'"):
            notebook.display_stream(FakeStreamingListLLM(responses=["x"]), "hi")
        with pytest.raises(ImportError, match=r"pip install 'rxllm\[notebook\]'"):
            notebook.timeline([_event("on_llm_start", "m", "model", 0.0)])
    finally:
        notebook._figure_class.cache_clear()


# -- display_stream, outside a kernel ---------------------------------------------------


def test_display_stream_without_a_loop_prints_and_returns_the_final_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    live = notebook.display_stream(FakeStreamingListLLM(responses=["Hello there, you"]), "hi")
    assert live.done
    assert not live.stopped
    assert live.text == live.result() == "Hello there, you"
    out = capsys.readouterr().out
    assert out.startswith("Hello there, you\n-- first token ")
    assert "4 chunks" in out


def test_display_stream_in_a_terminal_ipython_prints_instead_of_redisplaying(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import IPython

    class TerminalShell:  # an IPython shell with no kernel behind it: no display to update
        kernel = None

    monkeypatch.setattr(IPython, "get_ipython", TerminalShell)
    live = notebook.display_stream(FakeStreamingListLLM(responses=["one two"]), "hi")
    assert live.display_id is None
    assert live.button is None
    assert capsys.readouterr().out.startswith("one two\n-- first token")


def test_display_stream_shows_an_error_under_the_partial_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    llm = FakeStreamingListLLM(responses=["one two three"], error_after=2)
    live = notebook.display_stream(llm, "hi")
    assert live.text == "one two"
    assert "one two" in live.markdown()
    assert "RuntimeError:** scripted failure" in live.markdown()
    with pytest.raises(RuntimeError, match="scripted failure") as raised:
        live.result()
    assert raised.value.partial == "one two"  # type: ignore[attr-defined]
    assert "⚠ failed" in capsys.readouterr().out


def test_display_stream_takes_an_observable_and_rejects_bad_arguments() -> None:
    source = FakeStreamingListLLM(responses=["a b c"]).observe("x").pipe(ops.take(2))
    assert notebook.display_stream(source).text == "a b"
    with pytest.raises(InvalidInputError, match="no input"):
        notebook.display_stream(source, "x")
    with pytest.raises(InvalidInputError, match="Runnable or an Observable"):
        notebook.display_stream("not a model")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="throttle"):
        notebook.display_stream(source, throttle=-1)


def test_display_stream_replaces_parsed_objects_instead_of_adding_them() -> None:
    from rxllm.operators import partial_json

    llm = FakeStreamingListLLM(responses=['{"name": "Ada", "age": 36}'], chunking="char")
    live = notebook.display_stream(llm.pipe(partial_json()), "x")
    assert json.loads(live.text) == {"name": "Ada", "age": 36}
    assert live.markdown().startswith("```json\n{")


async def test_display_stream_in_a_running_loop_returns_at_once_and_can_be_stopped() -> None:
    llm = FakeStreamingListLLM(responses=["word " * 200], delay=0.01)
    live = notebook.display_stream(llm, "hi", throttle=0.05)
    assert not live.done  # it streams on this loop while we go on
    await asyncio.sleep(0.3)
    live.stop()
    text = await live
    assert live.stopped
    assert text == live.text
    assert 0 < len(text) < 1000
    assert llm.calls.cancelled == 1
    assert llm.calls.in_flight == 0
    assert "⏹ stopped" in live.footer()


async def test_display_stream_in_a_running_loop_awaits_the_final_text() -> None:
    live = notebook.display_stream(FakeStreamingListLLM(responses=["all of it"]), "hi")
    assert await live == "all of it"
    assert live.result() == "all of it"  # done: no waiting, so no deadlock


# -- display_stream, in a real kernel ---------------------------------------------------

KERNEL_CELLS = {
    "setup": """
import asyncio, json
import reactivex
from rxllm import AIMessageChunk, Usage
from rxllm.llms import ChatLlamaCpp, FakeStreamingListLLM
from rxllm.notebook import display_stream
chat = ChatLlamaCpp(temperature=0, seed=1, max_tokens=64)
chat.load()

def report(live, **extra):
    figures = live.metrics
    print(json.dumps({"text": live.text, "chunks": figures.chunks, "updates": live.updates,
                      "elapsed": figures.elapsed, "first_token": figures.time_to_first_token,
                      "display_id": live.display_id, "stopped": live.stopped, **extra}))
""",
    "sync_source": """
live = display_stream(chat, "Write me a 1 verse song about sparkling water.", throttle=0.5)
text = await live
report(live, same=text == live.text)
""",
    "async_source": """
fake = FakeStreamingListLLM(responses=["word " * 80], delay=0.01)
live = display_stream(fake, "hi", throttle=0.2)
report(live, returned_at_once=not live.done, text_awaited=await live)
""",
    "usage": """
chunks = [AIMessageChunk(content="Hi"), AIMessageChunk(content=" there"),
          AIMessageChunk(content="", usage_metadata=Usage(input_tokens=3, output_tokens=2,
                                                          total_tokens=5))]
live = display_stream(reactivex.from_iterable(chunks))
report(live, text_awaited=await live)
""",
    "stop_sync_source": """
story = ChatLlamaCpp(temperature=0, seed=1, max_tokens=1500)
live = display_stream(story, "Tell me a very long story about a dragon.", throttle=0.2)
while live.metrics is None or live.metrics.chunks < 5:
    await asyncio.sleep(0.02)
live.button.click()
text = await live
report(live, idle=story.wait_idle(timeout=0.5), max_tokens=story.max_tokens,
       button_closed=live.button.comm is None)
""",
    "stop_async_source": """
slow = FakeStreamingListLLM(responses=["word " * 1000], delay=0.01)
live = display_stream(slow, "hi", throttle=0.2)
await asyncio.sleep(0.3)
live.button.click()
text = await live
report(live, cancelled=slow.calls.cancelled, in_flight=slow.calls.in_flight)
""",
}


@pytest.fixture(scope="module")
def kernel_run() -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Run ``KERNEL_CELLS`` in one kernel: each cell's report and its iopub messages."""
    import nbclient
    import nbformat

    messages: dict[int, list[dict[str, Any]]] = {}

    class RecordingClient(nbclient.NotebookClient):  # type: ignore[misc]
        def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
            messages.setdefault(cell_index, []).append(msg)
            return super().process_message(msg, cell, cell_index)

    cells = [nbformat.v4.new_code_cell(source.strip()) for source in KERNEL_CELLS.values()]
    notebook_node = nbformat.v4.new_notebook(cells=cells)
    RecordingClient(notebook_node, timeout=120, kernel_name="python3").execute()
    results = {}
    for index, name in enumerate(KERNEL_CELLS):
        # A display update can land between a print's text and its newline, so one
        # print may arrive as two stdout outputs: read the lines, not the outputs.
        printed = "".join(
            o["text"] for o in notebook_node.cells[index].outputs if o.get("name") == "stdout"
        )
        lines = [line for line in printed.splitlines() if line.strip()]
        report = json.loads(lines[-1]) if lines else {}
        results[name] = (report, messages.get(index, []))
    return results


def _displays(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The display_data and update_display_data messages that carry Markdown."""
    shown = [m for m in messages if m["msg_type"] == "display_data"
             and "text/markdown" in m["content"]["data"]]  # fmt: skip
    updated = [m for m in messages if m["msg_type"] == "update_display_data"
               and "text/markdown" in m["content"]["data"]]  # fmt: skip
    return shown, updated


@pytest.mark.parametrize("cell", ["sync_source", "async_source"])
def test_kernel_display_is_one_display_updated_in_place_far_less_than_per_token(
    kernel_run: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]], cell: str
) -> None:
    report, messages = kernel_run[cell]
    assert report["text"]
    shown, updated = _displays(messages)
    assert len(shown) == 1  # one display, updated in place
    display_id = shown[0]["content"]["transient"]["display_id"]
    assert display_id == report["display_id"]
    assert {m["content"]["transient"]["display_id"] for m in updated} == {display_id}
    assert len(updated) == report["updates"]
    # Throttled: at most one redraw per throttle interval once text flows, and far
    # fewer redraws than tokens. Before the first token, a spinner turns 4 times a second.
    spinning = [m for m in updated if m["content"]["data"]["text/markdown"][0] in SPINNER]
    flowing = len(updated) - len(spinning)
    throttle = 0.5 if cell == "sync_source" else 0.2
    assert len(spinning) <= report["first_token"] / 0.25 + 1
    assert 1 <= flowing <= (report["elapsed"] - report["first_token"]) / throttle + 2
    assert flowing <= report["chunks"] // 2
    final = updated[-1]["content"]["data"]
    assert final["text/plain"] == report["text"]
    assert final["text/markdown"].startswith(report["text"].strip()[:20])
    footer = final["text/markdown"].rsplit("---", 1)[1]
    assert "first token" in footer
    assert "tokens/s" in footer
    assert f"{report['chunks']} chunks in" in footer
    # The Stop button is shown below, then replaced by nothing when the stream ends.
    widgets = [m for m in messages if m["msg_type"] == "display_data"
               and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]]  # fmt: skip
    assert len(widgets) == 1
    button_id = widgets[0]["content"]["transient"]["display_id"]
    cleared = [m for m in messages if m["msg_type"] == "update_display_data"
               and m["content"]["transient"]["display_id"] == button_id]  # fmt: skip
    assert cleared[-1]["content"]["data"] == {"text/plain": ""}


def test_kernel_display_returns_at_once_and_awaits_to_the_final_text(
    kernel_run: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]],
) -> None:
    report, _ = kernel_run["async_source"]
    assert report["returned_at_once"] is True
    assert report["text_awaited"] == report["text"] == "word " * 80
    report, _ = kernel_run["sync_source"]
    assert report["same"] is True


def test_kernel_footer_carries_usage_when_the_provider_reports_it(
    kernel_run: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]],
) -> None:
    report, messages = kernel_run["usage"]
    assert report["text_awaited"] == "Hi there"
    _, updated = _displays(messages)
    assert "usage 3 in + 2 out = 5 tokens" in updated[-1]["content"]["data"]["text/markdown"]


def test_kernel_stop_button_cancels_a_blocking_provider_call(
    kernel_run: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]],
) -> None:
    report, messages = kernel_run["stop_sync_source"]
    assert report["stopped"] is True
    assert 5 <= report["chunks"] < report["max_tokens"] // 4
    assert report["idle"] is True  # llama.cpp's generation has ended: the model is free
    assert report["button_closed"] is True
    _, updated = _displays(messages)
    final = updated[-1]["content"]["data"]
    assert final["text/plain"] == report["text"]  # the partial text is kept
    assert "⏹ stopped" in final["text/markdown"]


def test_kernel_stop_button_cancels_an_async_provider_call(
    kernel_run: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]],
) -> None:
    report, _ = kernel_run["stop_async_source"]
    assert report["stopped"] is True
    assert report["cancelled"] == 1
    assert report["in_flight"] == 0
    assert 0 < len(report["text"]) < len("word " * 1000)
