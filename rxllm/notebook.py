"""Jupyter helpers: a live display of a stream, and a timeline (marble) plot of its runs.

``display_stream(source, input)`` shows a stream's text in the cell output as Markdown,
updating one display in place as chunks arrive, with a footer of figures (time to first
token, tokens/s, usage) and a Stop button that cancels the call. ``timeline(events)``
draws the events of one or more calls as a marble diagram with matplotlib.

Both need ``pip install 'rxllm[notebook]'`` (IPython, ipywidgets, matplotlib), imported
only when used.

How ``display_stream`` runs: in a notebook cell an event loop is running (the kernel's),
so the stream is subscribed on that loop and returns at once; the display then updates
while the cell's code goes on, and the returned ``LiveStream`` can be awaited for the
final text (``text = await display_stream(llm, prompt)``). The Stop button works while
the cell awaits it (ipykernel dispatches widget messages during an awaiting cell) and
after the cell has finished. Without a running loop (a script, a terminal), it blocks
until the stream ends, printing the text as it comes, and returns the finished
``LiveStream``; ``.text`` holds the final text.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import importlib
import io
import itertools
import json
import threading
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from reactivex import Observable, Observer
from reactivex.subject import Subject

from ._runtime import Consumer
from .errors import InvalidInputError
from .operators import Metrics, Snapshot, StreamMetrics
from .runnable import Runnable
from .schema import text_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["MISSING_EXTRA", "LiveStream", "display_stream", "timeline"]

#: What a missing IPython, ipywidgets or matplotlib says.
MISSING_EXTRA = "rxllm.notebook needs `pip install 'rxllm[notebook]'`"

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_SPIN_INTERVAL = 0.25


def _require(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"{MISSING_EXTRA} ({exc})") from exc


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# -- display_stream ---------------------------------------------------------------------


class _Content:
    """What the stream has shown so far: text pieces add up, snapshots and objects replace."""

    __slots__ = ("pieces", "obj")

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.obj: Any = None

    def add(self, item: Any) -> bool:
        """Take one item; whether it was text."""
        if isinstance(item, Snapshot):  # accumulate(): the whole text so far
            self.pieces = [str(item)]
            return True
        try:
            piece = text_of(item)
        except InvalidInputError:  # a parsed object (partial_json): show the latest
            self.obj = item
            return False
        self.pieces.append(piece)
        return True

    @property
    def text(self) -> str:
        if self.obj is not None and not self.pieces:
            return _object_text(self.obj)
        return "".join(self.pieces)

    def markdown(self) -> str:
        if self.obj is not None and not self.pieces:
            return f"```json\n{_object_text(self.obj)}\n```"
        return "".join(self.pieces)


def _object_text(obj: Any) -> str:
    dump = getattr(obj, "model_dump_json", None)
    if callable(dump):
        return str(dump(indent=2))
    return json.dumps(obj, indent=2, default=str, ensure_ascii=False)


def _footer(figures: StreamMetrics | None, state: str) -> str:
    parts: list[str] = []
    if figures is not None:
        if figures.time_to_first_token is not None:
            parts.append(f"first token {figures.time_to_first_token:.2f} s")
        rate = _tokens_per_second(figures)
        if rate is not None:
            parts.append(f"{rate:.1f} tokens/s")
        parts.append(f"{figures.chunks} chunks in {figures.elapsed:.2f} s")
        if figures.usage is not None:
            usage = figures.usage
            parts.append(
                f"usage {usage.input_tokens} in + {usage.output_tokens} out"
                f" = {usage.total_tokens} tokens"
            )
    if state:
        parts.append(state)
    return " · ".join(parts)


def _tokens_per_second(figures: StreamMetrics) -> float | None:
    """Output tokens per second of streaming, from usage when reported, else chunks."""
    usage, first = figures.usage, figures.time_to_first_token
    if usage is not None and usage.output_tokens and first is not None:
        streaming = figures.elapsed - first
        if streaming > 0:
            return usage.output_tokens / streaming
    return figures.chunks_per_second


class _View:
    """Where a ``LiveStream`` shows itself."""

    def show(self, live: LiveStream) -> None:
        raise NotImplementedError

    def finish(self, live: LiveStream) -> None:
        self.show(live)


class _CellView(_View):
    """One Markdown display updated in place (by display id), and a Stop button."""

    def __init__(self, live: LiveStream) -> None:
        display = _require("IPython.display")
        self.handle = display.display(live.bundle(), raw=True, display_id=True)
        self.display_id: str = self.handle.display_id
        widgets = _require("ipywidgets")
        self.button: Any = widgets.Button(
            description="Stop", icon="stop", tooltip="Cancel the call; keep the text so far"
        )
        self.button.on_click(lambda _: live.stop())
        self._button_handle = display.display(self.button, display_id=True)

    def show(self, live: LiveStream) -> None:
        self.handle.update(live.bundle(), raw=True)

    def finish(self, live: LiveStream) -> None:
        self.show(live)
        # Replace the button by nothing, so a saved notebook shows no dead widget.
        self._button_handle.update({"text/plain": ""}, raw=True)
        self.button.close()


class _PrintView(_View):
    """Outside a kernel (a script, a terminal): the text printed as it grows, then the footer."""

    def __init__(self) -> None:
        self.printed = ""

    def show(self, live: LiveStream) -> None:
        text = live.text
        if live.content.obj is None and text.startswith(self.printed):  # text only grew
            print(text[len(self.printed) :], end="", flush=True)
            self.printed = text

    def finish(self, live: LiveStream) -> None:
        if live.content.obj is not None:
            print(live.text, end="")
        else:
            self.show(live)
        print(f"\n-- {live.footer()}", flush=True)


class LiveStream:
    """A stream shown live in a cell; made by ``display_stream``.

    Await it for the final text (``text = await live``), or read ``text`` at any time.
    ``stop()`` (the Stop button) cancels the call and keeps the text so far; awaiting a
    stopped stream returns that text. A failed stream shows its error under the text it
    had received, and awaiting it raises the error (which carries ``.partial``).
    """

    def __init__(
        self,
        observable: Observable[Any],
        throttle: float,
        consumer: Consumer,
        view: Callable[[LiveStream], _View],
    ) -> None:
        self.throttle = throttle
        #: How many times the display was redrawn (the first drawing not counted).
        self.updates = 0
        #: The error the stream failed with, if it failed.
        self.error: Exception | None = None
        #: Whether ``stop()`` ended the stream early.
        self.stopped = False
        self.content = _Content()
        self._consumer = consumer
        self._loop = consumer.loop
        # Measured on the side: ``metrics()`` takes text items only, and a display also
        # shows parsed objects (which are counted as chunks without text).
        self._meter = Metrics()
        self._measured: Subject[Any] = Subject()
        self._measuring = self._measured.pipe(self._meter).subscribe(on_error=lambda _: None)
        self._observable = observable
        self._started = time.monotonic()
        self._spin = itertools.cycle(_SPINNER)
        self._state = "running"
        self._last_draw = 0.0
        self._pending: asyncio.TimerHandle | None = None
        self._spinner: asyncio.TimerHandle | None = None
        self._settling: asyncio.Task[None] | None = None
        self._result: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._result.add_done_callback(self._on_result_done)
        self._view = view(self)

    # -- what is shown ----------------------------------------------------------------

    @property
    def text(self) -> str:
        """The text received so far (the final text once the stream has ended)."""
        return self.content.text

    @property
    def done(self) -> bool:
        """Whether the stream has ended: completed, failed or stopped."""
        return self._state != "running"

    @property
    def metrics(self) -> StreamMetrics | None:
        """The stream's figures so far (``rxllm.operators.StreamMetrics``)."""
        return self._meter.current

    @property
    def display_id(self) -> str | None:
        """The id of the one display this stream updates (``None`` outside IPython)."""
        view = self._view
        return view.display_id if isinstance(view, _CellView) else None

    @property
    def button(self) -> Any:
        """The Stop button (an ``ipywidgets.Button``), or ``None`` where there is none."""
        view = self._view
        return view.button if isinstance(view, _CellView) else None

    def footer(self) -> str:
        """The figures line shown under the text."""
        state = {
            "running": "",
            "completed": "",
            "stopped": "⏹ stopped",
            "failed": "⚠ failed",
        }[self._state]
        return _footer(self.metrics, state)

    def markdown(self) -> str:
        """The Markdown the display shows now."""
        body = self.content.markdown()
        if not self.done and not body and not self.content.pieces:
            waited = time.monotonic() - self._started
            return f"{next(self._spin)} *waiting for the first token… {waited:.1f} s*"
        parts = [body] if body else []
        if self.error is not None:
            parts.append(f"**⚠ {type(self.error).__name__}:** {self.error}")
        footer = self.footer()
        if footer:
            parts.append(f"---\n*{footer}*")
        return "\n\n".join(parts)

    def bundle(self) -> dict[str, str]:
        """The MIME bundle displayed: Markdown, and plain text for other frontends."""
        plain = self.text
        if self.error is not None:
            plain += f"\n\n{type(self.error).__name__}: {self.error}"
        return {"text/markdown": self.markdown(), "text/plain": plain}

    # -- control ----------------------------------------------------------------------

    def stop(self) -> None:
        """Cancel the call (dispose the subscription); the text so far is kept."""
        if threading.get_ident() == self._loop_thread:
            self._stop()
        else:
            self._loop.call_soon_threadsafe(self._stop)

    def result(self, timeout: float | None = None) -> str:
        """Wait for the final text, from a thread other than the stream's loop.

        Raises:
            RuntimeError: when called on the loop the stream runs on before it has
                ended (it could never end): ``await`` the ``LiveStream`` instead.
        """
        if not self._result.done() and threading.get_ident() == self._loop_thread:
            raise RuntimeError("this stream runs on this thread's loop: await it instead")
        return self._result.result(timeout)

    def __await__(self) -> Generator[Any, None, str]:
        return asyncio.wrap_future(self._result).__await__()

    def _ipython_display_(self) -> None:
        """Nothing: the stream is already on display (a cell ending in one shows it once)."""

    def __repr__(self) -> str:
        return f"<LiveStream {self._state}, {len(self.text)} characters>"

    # -- machinery (all on the loop's thread) ---------------------------------------

    def _start(self) -> None:
        self._loop_thread = threading.get_ident()
        observer = Observer(self._on_next, self._on_error, self._on_completed)
        self._consumer.subscribe(self._observable, observer)
        if not self.done and not self.content.pieces and self.content.obj is None:
            self._spinner = self._loop.call_later(_SPIN_INTERVAL, self._spin_once)

    def _on_next(self, item: Any) -> None:
        if threading.get_ident() != self._loop_thread:  # a source emitting from its thread
            self._loop.call_soon_threadsafe(self._on_next, item)
            return
        if self.done:
            return
        self._measured.on_next(item if self.content.add(item) else "")
        self._changed()

    def _on_error(self, error: Exception) -> None:
        if threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self._on_error, error)
            return
        if not self.done:
            self.error = error
            self._measured.on_error(error)
            self._end("failed")

    def _on_completed(self) -> None:
        if threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self._on_completed)
            return
        if not self.done:
            self._measured.on_completed()
            self._end("completed")

    def _stop(self) -> None:
        if self.done:
            return
        self.stopped = True
        self._consumer.dispose()
        self._measuring.dispose()
        self._end("stopped")

    def _changed(self) -> None:
        """Redraw now, or once ``throttle`` has passed since the last redraw."""
        if self._spinner is not None:  # the first token is here: no more spinning
            self._spinner.cancel()
            self._spinner = None
        if self._pending is not None:
            return  # a redraw is already due, and will show this too
        wait = self._last_draw + self.throttle - time.monotonic()
        if wait <= 0:
            self._draw()
        else:
            self._pending = self._loop.call_later(wait, self._draw_pending)

    def _spin_once(self) -> None:
        self._spinner = None
        if self.done or self.content.pieces or self.content.obj is not None:
            return
        self._draw()
        self._spinner = self._loop.call_later(_SPIN_INTERVAL, self._spin_once)

    def _draw_pending(self) -> None:
        self._pending = None
        if not self.done:
            self._draw()

    def _draw(self) -> None:
        self._last_draw = time.monotonic()
        self.updates += 1
        self._view.show(self)

    def _end(self, state: str) -> None:
        self._state = state
        for timer in (self._pending, self._spinner):
            if timer is not None:
                timer.cancel()
        self._pending = self._spinner = None
        try:
            self.updates += 1
            self._view.finish(self)
        finally:
            # Resolve once the source tasks have finished their cleanup, so that
            # awaiting a stopped stream means its provider call is over.
            self._settling = self._loop.create_task(self._settle())  # kept: not collected

    async def _settle(self) -> None:
        await self._consumer.close()
        if self._result.done():
            return
        if self.error is not None:
            self._result.set_exception(self.error)
        else:
            self._result.set_result(self.text)

    def _on_result_done(self, result: concurrent.futures.Future[str]) -> None:
        if result.cancelled():  # the awaiting cell was interrupted: stop the stream too
            self.stop()

    _loop_thread: int | None = None


def display_stream(
    source: Runnable[Any, Any, Any] | Observable[Any],
    input: Any = None,
    *,
    throttle: float = 0.05,
) -> LiveStream:
    """Show a stream's text live in the cell output, with its figures and a Stop button.

    One Markdown display is updated in place, at most once per ``throttle`` seconds
    (never once per token); a spinner shows until the first token, and a footer gives
    the time to first token, tokens/s (from the reported usage when there is one, else
    one chunk per token) and usage when the provider reports it. Stop disposes the
    subscription, which cancels the provider call. An error is shown under the text
    received so far. Text chunks add up; ``accumulate()`` snapshots and parsed objects
    (``partial_json``) replace what is shown.

    Args:
        source: a runnable (called with ``input``) or an Observable of chunks.
        input: the runnable's input; must be ``None`` for an Observable.
        throttle: the least time between two redraws, in seconds.

    Returns:
        A ``LiveStream``. In a notebook cell (where the kernel's loop is running) it
        returns at once and streams on that loop: ``text = await display_stream(...)``
        waits for the final text. With no running loop it returns when the stream has
        ended; its ``.text`` is the final text.

    Raises:
        ImportError: without IPython and ipywidgets (``pip install 'rxllm[notebook]'``).
        InvalidInputError: for a bad ``source``, ``input`` or ``throttle``.

    Examples:
        >>> from rxllm.llms import FakeStreamingListLLM
        >>> llm = FakeStreamingListLLM(responses=["Hello there"])
        >>> live = display_stream(llm, "hi")  # doctest: +ELLIPSIS
        Hello there
        -- first token ... 2 chunks in ... s
        >>> live.text
        'Hello there'
    """
    if throttle < 0:
        raise InvalidInputError(f"throttle must be >= 0, not {throttle!r}")
    if isinstance(source, Runnable):
        observable = source.observe(input)
    elif isinstance(source, Observable):
        if input is not None:
            raise InvalidInputError("an Observable takes no input; pass input=None")
        observable = source
    else:
        raise InvalidInputError(
            f"display_stream needs a Runnable or an Observable, not {type(source).__name__}"
        )
    ipython = _require("IPython")
    shell = ipython.get_ipython()
    in_kernel = shell is not None and getattr(shell, "kernel", None) is not None
    if in_kernel:
        _require("ipywidgets")

    def view(live: LiveStream) -> _View:
        # A terminal IPython has a shell but no frontend to update a display in place.
        return _CellView(live) if in_kernel else _PrintView()

    live = LiveStream(observable, throttle, Consumer(), view)
    if _running_loop() is not None:  # a notebook cell: stream on the kernel's loop
        live._start()
        return live
    # No running loop: stream on rxllm's loop thread and wait here.
    live._loop.call_soon_threadsafe(live._start)
    try:
        live._result.exception()  # wait, without raising
    except BaseException:  # KeyboardInterrupt: stop the call, wait for its cleanup
        live.stop()
        live._result.exception()
        raise
    return live


# -- timeline ---------------------------------------------------------------------------

_MODEL_TYPES = ("llm", "chat_model")
_PNG_DPI = 72  # small enough for notebooks saved with their pictures


class _Lane:
    """One run's row in the timeline."""

    def __init__(self, label: str, run_type: str, depth: int) -> None:
        self.label = label
        self.run_type = run_type
        self.depth = depth
        self.start: float | None = None
        self.end: float | None = None
        self.chunks: list[float] = []
        self.custom: list[tuple[float, str]] = []

    @property
    def first_token(self) -> float | None:
        return self.chunks[0] if self.chunks else None


def _event_type(event: Mapping[str, Any]) -> tuple[str, str]:
    """``("llm", "stream")`` for ``on_llm_stream``, and so on."""
    name = str(event.get("event", ""))
    if name == "on_custom_event":
        return "custom", "custom"
    body = name.removeprefix("on_")
    run_type, _, kind = body.rpartition("_")
    return run_type, kind


def _lanes(events: Sequence[Mapping[str, Any]]) -> list[_Lane]:
    """The runs of one call in tree order (each run followed by its children), times from 0."""
    stamped = [event for event in events if "time" in event]
    if len(stamped) != len(events):
        raise InvalidInputError(
            "timeline needs events with a 'time' key, as rxllm's astream_events/"
            "stream_events/tap_events report them"
        )
    if not stamped:
        raise InvalidInputError("timeline got no events")
    origin = min(float(event["time"]) for event in stamped)
    lanes: dict[str, _Lane] = {}
    parent_of: dict[str, str | None] = {}
    for event in stamped:
        run_id = str(event.get("run_id"))
        run_type, kind = _event_type(event)
        at = float(event["time"]) - origin
        lane = lanes.get(run_id)
        if lane is None:
            parents = [str(p) for p in event.get("parent_ids") or []]  # root first
            parent_of[run_id] = parents[-1] if parents else None
            tags = [t for t in event.get("tags", ()) if str(t).startswith("seq:step:")]
            label = str(event.get("name", "?"))
            if tags:
                label += f" ({str(tags[0]).removeprefix('seq:')})"
            lane = lanes[run_id] = _Lane(label, run_type, len(parents))
            lane.start = at
        if kind == "start":
            lane.start = at
        elif kind == "stream":
            lane.chunks.append(at)
        elif kind == "end":
            lane.end = at
        elif kind == "custom":
            lane.custom.append((at, str(event.get("name", ""))))
    children: dict[str | None, list[str]] = {}
    for run_id, parent in parent_of.items():  # in the order the runs were first seen
        children.setdefault(parent if parent in lanes else None, []).append(run_id)
    ordered: list[_Lane] = []

    def visit(run_id: str | None) -> None:
        for child in children.get(run_id, []):
            ordered.append(lanes[child])
            visit(child)

    visit(None)
    return ordered


def _groups(
    events_or_metrics: Any,
) -> list[tuple[str, Sequence[Mapping[str, Any]] | StreamMetrics]]:
    """``(label, events or metrics)`` for each call to draw."""
    if isinstance(events_or_metrics, StreamMetrics):
        return [("", events_or_metrics)]
    if isinstance(events_or_metrics, Mapping):
        if "event" in events_or_metrics:  # one event dict on its own
            return [("", [events_or_metrics])]
        return [(str(k), _one(v)) for k, v in events_or_metrics.items()]
    items = list(events_or_metrics)
    if items and all(isinstance(item, Mapping) and "event" in item for item in items):
        return [("", items)]
    return [(f"run {index}", _one(item)) for index, item in enumerate(items, start=1)]


def _one(value: Any) -> Sequence[Mapping[str, Any]] | StreamMetrics:
    if isinstance(value, StreamMetrics):
        return value
    if isinstance(value, Iterable):
        return list(value)
    raise InvalidInputError(f"timeline can't draw a {type(value).__name__}")


def timeline(
    events_or_metrics: Any,
    *,
    title: str | None = None,
    width: float = 10.0,
) -> Figure:
    """A marble diagram of one or more calls: time on x, one lane per run.

    Each run a call made (the model, each operator stage, the pipeline) gets a lane,
    under the run that started it (``└``),
    drawn from its start to its end (``|``), with one marble per chunk at the time it
    was emitted, so gaps show as gaps; a model's time to first token is marked with a
    bracket and its value. Custom events are drawn as diamonds on their run's lane.

    Args:
        events_or_metrics: the events of one call (as collected from
            ``astream_events``/``stream_events``/``tap_events``, which stamp each
            with its ``time``); several calls to compare, as a list of event lists or
            a dict ``{label: events}`` (each call's time starts at 0); or a
            ``StreamMetrics`` (or several), drawn as a waiting bar and a streaming
            bar, since metrics hold no per-chunk times.
        title: the figure's title.
        width: the figure's width in inches.

    Returns:
        A ``matplotlib.figure.Figure`` (not registered with pyplot: nothing leaks, and
        a notebook shows it once, as a PNG, when it is the cell's value;
        ``fig.savefig(path)`` writes it out).

    Raises:
        ImportError: without matplotlib (``pip install 'rxllm[notebook]'``).
        InvalidInputError: for events without times, or nothing to draw.
    """
    groups = _groups(events_or_metrics)
    if not groups:
        raise InvalidInputError("timeline got nothing to draw")
    rows: list[tuple[str, int, _Lane | StreamMetrics]] = []
    for index, (label, data) in enumerate(groups):
        if isinstance(data, StreamMetrics):
            rows.append((label or "stream", index, data))
            continue
        for lane in _lanes(data):
            # Labels are right-aligned, so depth shows as marks before the name.
            name = "· " * (lane.depth - 1) + "└ " + lane.label if lane.depth else lane.label
            rows.append((f"{label} · {name}" if label else name, index, lane))
    height = 0.9 + 0.45 * len(rows)
    figure = _figure_class()(figsize=(width, height), layout="constrained")
    axes = figure.add_subplot()
    colors = [f"C{i % 10}" for i in range(len(groups))]
    for y, (_label, group, row) in enumerate(rows):
        color = colors[group]
        if y and group != rows[y - 1][1]:  # between two calls
            axes.axhline(y - 0.5, color="0.85", linewidth=0.8)
        if isinstance(row, StreamMetrics):
            _draw_metrics(axes, y, row, color)
        else:
            _draw_lane(axes, y, row, color)
    axes.set_yticks(range(len(rows)), [label for label, _, _ in rows])
    axes.set_ylim(len(rows) - 0.4, -0.6)
    axes.set_xlabel("seconds since the call started")
    axes.set_xlim(left=0)
    axes.grid(axis="x", alpha=0.3)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.tick_params(axis="y", length=0)
    if title:
        axes.set_title(title, loc="left")
    return figure


@functools.cache
def _figure_class() -> type[Figure]:
    _require("matplotlib")
    from matplotlib.figure import Figure

    class Timeline(Figure):
        """A figure that shows itself as a PNG in IPython, with or without pyplot."""

        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=_PNG_DPI)
            return buffer.getvalue()

    return Timeline


def _draw_lane(axes: Axes, y: int, lane: _Lane, color: str) -> None:
    start = lane.start or 0.0
    last = max([start, *lane.chunks, *(t for t, _ in lane.custom)])
    end = lane.end if lane.end is not None else last
    axes.hlines(y, start, end, color="0.6", linewidth=1, zorder=1)
    axes.plot([start], [y], marker="|", color="0.4", markersize=9, zorder=2)
    if lane.end is not None:
        axes.plot([lane.end], [y], marker="|", color="black", markersize=14, zorder=2)
    if lane.chunks:
        axes.scatter(
            lane.chunks, [y] * len(lane.chunks), s=28, color=color, edgecolors="white",
            linewidths=0.5, zorder=3,
        )  # fmt: skip
    for at, _name in lane.custom:
        axes.plot([at], [y], marker="D", color="C3", markersize=6, zorder=4)
    first = lane.first_token
    if lane.run_type in _MODEL_TYPES and first is not None:
        axes.annotate(
            "", xy=(first, y - 0.28), xytext=(start, y - 0.28),
            arrowprops={"arrowstyle": "|-|", "color": "C3", "shrinkA": 0, "shrinkB": 0,
                        "mutation_scale": 3},
        )  # fmt: skip
        axes.text(
            (start + first) / 2, y - 0.33, f"first token {first - start:.2f} s",
            ha="center", va="bottom", fontsize=8, color="C3",
        )  # fmt: skip


def _draw_metrics(axes: Axes, y: int, figures: StreamMetrics, color: str) -> None:
    first = figures.time_to_first_token or 0.0
    axes.barh(y, first, left=0, height=0.3, color="0.85", zorder=1)
    axes.barh(y, figures.elapsed - first, left=first, height=0.3, color=color, zorder=2)
    axes.text(
        figures.elapsed, y, f"  {figures.chunks} chunks", va="center", fontsize=8, color="0.3"
    )
    if figures.time_to_first_token is not None:
        axes.text(
            first / 2, y - 0.22, f"first token {first:.2f} s",
            ha="center", va="bottom", fontsize=8, color="C3",
        )  # fmt: skip
