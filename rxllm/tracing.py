"""OpenTelemetry spans and metrics for every run (extra ``rxllm[otel]``).

``instrument()`` makes each run (a model call, a pipeline, a step) an OpenTelemetry
span, nested as the run tree is, and records the GenAI client metrics; ``uninstrument()``
stops it. Names follow the OpenTelemetry GenAI semantic conventions as of
semantic-conventions v1.41.0 (``docs/gen-ai/gen-ai-spans.md`` and
``docs/gen-ai/gen-ai-metrics.md``; the conventions have since moved to the
``semantic-conventions-genai`` repository), all at status "Development".

A model call's span is named ``"{gen_ai.operation.name} {gen_ai.request.model}"``
(``"chat gpt-4o"``, ``"text_completion llama3"``), of kind CLIENT, with:

- ``gen_ai.operation.name``: ``chat`` (chat models) or ``text_completion`` (LLMs);
- ``gen_ai.provider.name``: ``openai``, ``anthropic``, ``ollama``, ``llamacpp``...;
- ``gen_ai.request.model``, ``gen_ai.request.temperature``, ``gen_ai.request.max_tokens``,
  ``gen_ai.request.stop_sequences``, ``gen_ai.request.stream`` (always true: every call
  streams): the model's settings;
- ``server.address`` / ``server.port``: the host and port of ``base_url`` (never its
  path or query, which may carry a key);
- ``gen_ai.response.model``, ``gen_ai.response.id``, ``gen_ai.response.finish_reasons``,
  ``gen_ai.usage.input_tokens`` / ``gen_ai.usage.output_tokens``,
  ``gen_ai.response.time_to_first_chunk``: what the provider's stream said.

Other runs get an INTERNAL span named after the run: pipelines, lambdas, and each
operator step of a pipe (``text``, ``map``...), under its pipeline beside the other steps;
a model call an operator makes (in ``flat_map``) is a child of that step. However a
run ends, its span ends: completion (status unset), error (status ERROR, ``error.type``
the exception's class name, the exception recorded as a span event), or cancellation by
the consumer (a ``break``, a dispose, a cancelled task): the span is ended with the
attribute ``rxllm.cancelled = true`` and no error status, since stopping early is not a
failure (as ``astream_events`` reports no error for it).

Metrics (histograms with the conventions' explicit bucket boundaries):
``gen_ai.client.operation.duration`` (s), ``gen_ai.client.token.usage`` ({token}, one
record per ``gen_ai.token.type``), ``gen_ai.client.operation.time_to_first_chunk`` (s)
and ``gen_ai.client.operation.time_per_output_chunk`` (s), all with the request's
attributes and ``gen_ai.response.model``, in the call's span context (an SDK exemplar
links to the call). A failed call's duration carries ``error.type`` and records nothing
else; a cancelled call records its duration and chunk timings as a completed one does
(the span, not the metric, says it was cancelled).

The conventions define time per output chunk as one value per chunk after the first
(the time from the end of the chunk before), so a call of n chunks makes n - 1 records.
The chunk path only appends the chunk's time to a list (and keeps the metadata the span
reports); the records are made when the call ends. With the OpenTelemetry SDK's meter
provider each record costs what the SDK's ``Histogram.record`` costs (about 10 µs on a
2-core machine, ``bench/bridges.py`` rows 9m and 9h): negligible beside a real stream's
chunk interval (milliseconds), and the floor for reporting the metric as defined.

Prompt and completion text are recorded only with ``capture_content=True``, as the
opt-in ``gen_ai.input.messages`` / ``gen_ai.output.messages`` attributes (JSON). Keys,
headers and ``base_url`` query values are never recorded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from . import _runs
from .errors import InvalidInputError
from .schema import AIMessageChunk, GenerationChunk, coerce_messages, coerce_prompt

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - the test environment has the extra
    raise ImportError(
        f"rxllm.tracing needs `pip install 'rxllm[otel]'` (opentelemetry-api): {exc}"
    ) from exc

if TYPE_CHECKING:
    from .config import RunConfig
    from .runnable import Runnable

_Operator = Callable[[Observable[Any]], Observable[Any]]

__all__ = ["instrument", "uninstrument"]

#: The conventions' boundaries for durations (seconds) and token counts.
DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24,
                    20.48, 40.96, 81.92]  # fmt: skip
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864]  # fmt: skip

_OPERATIONS = {"chat_model": "chat", "llm": "text_completion"}
_FINISH_KEYS = ("finish_reason", "stop_reason", "done_reason")
_lock = threading.Lock()


class _Instruments:
    """The tracer and the four histograms one ``instrument()`` call made."""

    def __init__(self, tracer_provider: Any, meter_provider: Any, capture_content: bool) -> None:
        self.tracer = otel_trace.get_tracer(__name__, tracer_provider=tracer_provider)
        meter = otel_metrics.get_meter(__name__, meter_provider=meter_provider)
        self.capture_content = capture_content
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of the response stream.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.per_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_per_output_chunk",
            unit="s",
            description="Time per output chunk after the first one.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )

    def run(
        self,
        runnable: Runnable[Any, Any, Any],
        input: Any,
        config: RunConfig,
        source: Observable[Any],
    ) -> Observable[Any]:
        """``source`` reporting a span per subscription (the core's ``RunHook.run``)."""

        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            return _SpanRun.of(self, runnable, input, config).subscribe(source, observer, scheduler)

        return Observable(subscribe)

    def step(self, operator: _Operator, name: str) -> _Operator:
        """``operator`` reporting an INTERNAL span per subscription (``RunHook.step``).

        The step's input comes from the steps before it, so it is subscribed in the
        pipeline's context; the operator handles each item in the step's context, so a
        model call the operator makes (``flat_map``) is a child of the step.
        """

        def apply(upstream: Observable[Any]) -> Observable[Any]:
            def subscribe(
                observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
            ) -> abc.DisposableBase:
                run = _SpanRun(self, name, SpanKind.INTERNAL, {}, "chain", None)
                return run.subscribe(operator(run.feeding(upstream)), observer, scheduler)

            return Observable(subscribe)

        return apply


def _request_attributes(runnable: Runnable[Any, Any, Any]) -> tuple[str, dict[str, Any]]:
    """A model run's span name and request attributes, from its ``ls_*`` settings."""
    params = runnable._ls_params()
    operation = _OPERATIONS[runnable._run_type]
    model = params.get("ls_model_name")
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": str(params.get("ls_provider", "")),
        "gen_ai.request.stream": True,
    }
    if model:
        attributes["gen_ai.request.model"] = str(model)
    for key, name in (
        ("ls_temperature", "gen_ai.request.temperature"),
        ("ls_max_tokens", "gen_ai.request.max_tokens"),
        ("ls_stop", "gen_ai.request.stop_sequences"),
    ):
        if params.get(key) is not None:
            attributes[name] = params[key]
    base_url = getattr(runnable, "base_url", None)
    if isinstance(base_url, str):
        parts = urlsplit(base_url)
        if parts.hostname:
            attributes["server.address"] = parts.hostname
            attributes["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
    return (f"{operation} {model}" if model else operation), attributes


class _SpanRun:
    """One run's span: started at subscription, ended once, however the run ends."""

    __slots__ = ("instruments", "span", "is_model", "attributes", "started", "times",
                 "metadata", "usage", "message_id", "texts", "input", "run_type",
                 "outer", "context")  # fmt: skip

    def __init__(
        self,
        instruments: _Instruments,
        name: str,
        kind: SpanKind,
        attributes: dict[str, Any],
        run_type: str,
        input: Any,
    ) -> None:
        self.instruments = instruments
        self.run_type = run_type
        self.is_model = run_type in _OPERATIONS
        self.input = input
        self.attributes = attributes
        if instruments.capture_content and self.is_model:
            attributes["gen_ai.input.messages"] = _input_messages(run_type, input)
        self.outer = otel_context.get_current()
        self.span: Any = instruments.tracer.start_span(
            name, context=self.outer, kind=kind, attributes=attributes
        )
        self.context = otel_trace.set_span_in_context(self.span, self.outer)
        self.started = perf_counter()
        #: When each chunk arrived (``perf_counter``).
        self.times: list[float] = []
        self.metadata: dict[str, Any] = {}
        self.usage: tuple[int, int] | None = None
        self.message_id: str | None = None
        self.texts: list[str] = []

    @classmethod
    def of(
        cls,
        instruments: _Instruments,
        runnable: Runnable[Any, Any, Any],
        input: Any,
        config: RunConfig,
    ) -> _SpanRun:
        """The span of a run of ``runnable``: CLIENT for a model call, else INTERNAL."""
        run_type = runnable._run_type
        if run_type in _OPERATIONS:
            name, attributes = _request_attributes(runnable)
            return cls(instruments, name, SpanKind.CLIENT, attributes, run_type, input)
        name = config.run_name or runnable.get_name()
        return cls(instruments, name, SpanKind.INTERNAL, {}, run_type, input)

    def subscribe(
        self,
        source: Observable[Any],
        observer: abc.ObserverBase[Any],
        scheduler: abc.SchedulerBase | None,
    ) -> abc.DisposableBase:
        outer = self.outer
        observer_on_next = observer.on_next

        # What follows this run (a pipeline's next step) belongs to the run's parent.
        def on_error(error: Exception) -> None:
            self.end(error)
            _call_in(outer, observer.on_error, error)

        def on_completed() -> None:
            self.end(None)
            _call_in(outer, observer.on_completed)

        times_append, note = self.times.append, self.note

        def on_model_next(item: Any) -> None:
            times_append(perf_counter())
            note(item)
            observer_on_next(item)

        token = otel_context.attach(self.context)
        try:
            subscription = source.subscribe(
                on_model_next if self.is_model else observer_on_next,
                on_error,
                on_completed,
                scheduler=scheduler,
            )
        except BaseException as error:
            self.end(error)
            raise
        finally:
            otel_context.detach(token)

        def dispose() -> None:
            subscription.dispose()
            self.end(None, cancelled=True)

        return Disposable(dispose)

    def feeding(self, upstream: Observable[Any]) -> Observable[Any]:
        """``upstream`` subscribed in the parent's context, its items, error and
        completion handed on in this span's."""
        outer, context = self.outer, self.context
        attach, detach = otel_context.attach, otel_context.detach

        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            observer_on_next = observer.on_next

            def on_next(item: Any) -> None:  # _call_in without its *args: once per item
                token = attach(context)
                try:
                    observer_on_next(item)
                finally:
                    detach(token)

            token = attach(outer)
            try:
                return upstream.subscribe(
                    on_next,
                    lambda error: _call_in(context, observer.on_error, error),
                    lambda: _call_in(context, observer.on_completed),
                    scheduler=scheduler,
                )
            finally:
                detach(token)

        return Observable(subscribe)

    def note(self, item: Any) -> None:
        """Keep what the span will report from a model chunk (its time is kept apart)."""
        if type(item) is AIMessageChunk:
            if item.response_metadata:
                self.metadata.update(item.response_metadata)
            if item.usage_metadata is not None:
                self.usage = (item.usage_metadata.input_tokens, item.usage_metadata.output_tokens)
            if item.id and self.message_id is None:
                self.message_id = item.id
            if self.instruments.capture_content:
                self.texts.append(str(item.content))
        elif type(item) is GenerationChunk:
            if item.generation_info:
                self.metadata.update(item.generation_info)
            if self.instruments.capture_content:
                self.texts.append(item.text)

    def end(self, error: BaseException | None, *, cancelled: bool = False) -> None:
        with _lock:
            span, self.span = self.span, None
        if span is None:
            return
        attributes: dict[str, Any] = {}
        if self.is_model:
            attributes = self._response_attributes()
        if cancelled:
            attributes["rxllm.cancelled"] = True
        if error is not None:
            error_type = type(error).__qualname__
            attributes["error.type"] = error_type
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, error_type))
        span.set_attributes(attributes)
        span.end()
        if self.is_model:
            self._record(error, attributes)

    def _response_attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        meta = self.metadata
        model = meta.get("model_name") or meta.get("model")
        if isinstance(model, str):
            attributes["gen_ai.response.model"] = model
        response_id = self.message_id or meta.get("id")
        if isinstance(response_id, str):
            attributes["gen_ai.response.id"] = response_id
        reasons = [str(meta[key]) for key in _FINISH_KEYS if meta.get(key)]
        if reasons:
            attributes["gen_ai.response.finish_reasons"] = reasons[:1]
        usage = self.usage or _usage_from_info(meta)
        if usage is not None:
            self.usage = usage
            attributes["gen_ai.usage.input_tokens"] = usage[0]
            attributes["gen_ai.usage.output_tokens"] = usage[1]
        if self.times:
            attributes["gen_ai.response.time_to_first_chunk"] = self.times[0] - self.started
        if self.instruments.capture_content:
            attributes["gen_ai.output.messages"] = json.dumps(
                [_message("assistant", "".join(self.texts))]
            )
        return attributes

    def _record(self, error: BaseException | None, response: dict[str, Any]) -> None:
        """Record the call's metrics, in the span's context (so an SDK exemplar links
        each to the call's trace, however the call ended)."""
        base: dict[str, Any] = {
            key: self.attributes[key]
            for key in (
                "gen_ai.operation.name",
                "gen_ai.provider.name",
                "gen_ai.request.model",
                "server.address",
                "server.port",
            )
            if key in self.attributes
        }
        if "gen_ai.response.model" in response:
            base["gen_ai.response.model"] = response["gen_ai.response.model"]
        instruments, context = self.instruments, self.context
        duration = perf_counter() - self.started
        if error is not None:
            error_base = {**base, "error.type": type(error).__qualname__}
            instruments.duration.record(duration, error_base, context)
            return
        instruments.duration.record(duration, base, context)
        if self.usage is not None:
            for token_type, count in zip(("input", "output"), self.usage, strict=True):
                instruments.tokens.record(count, {**base, "gen_ai.token.type": token_type}, context)
        times = self.times
        if times:
            instruments.first_chunk.record(times[0] - self.started, base, context)
        # The conventions define one value per chunk after the first ("from the end of
        # the previous chunk to the end of the current chunk"), so each is recorded; here,
        # at the end, so that the chunk path only appends a time.
        record = instruments.per_chunk.record
        for previous, current in zip(times, times[1:], strict=False):
            record(current - previous, base, context)


def _call_in(context: otel_context.Context, call: Callable[..., None], *args: Any) -> None:
    """``call(*args)`` with ``context`` as OpenTelemetry's current context."""
    token = otel_context.attach(context)
    try:
        call(*args)
    finally:
        otel_context.detach(token)


def _usage_from_info(info: dict[str, Any]) -> tuple[int, int] | None:
    """Token counts from a text completion's ``generation_info`` (OpenAI's
    ``token_usage``, Ollama's ``prompt_eval_count``/``eval_count``)."""
    usage = info.get("token_usage")
    if isinstance(usage, dict):
        return int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    if "eval_count" in info:
        return int(info.get("prompt_eval_count", 0)), int(info["eval_count"])
    return None


_ROLES = {"human": "user", "ai": "assistant"}


def _message(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def _input_messages(run_type: str, input: Any) -> str:
    """The prompt as the conventions' ``gen_ai.input.messages`` JSON."""
    try:
        if run_type == "chat_model":
            messages = [_message(_ROLES.get(m.type, m.type), str(m.content))
                        for m in coerce_messages(input)]  # fmt: skip
        else:
            messages = [_message("user", coerce_prompt(input))]
    except Exception:  # an input the model will refuse: its own error says why
        return "[]"
    return json.dumps(messages)


def instrument(
    tracer_provider: Any = None, meter_provider: Any = None, *, capture_content: bool = False
) -> None:
    """Report every run as an OpenTelemetry span and record the GenAI client metrics.

    Args:
        tracer_provider: where spans go (default: OpenTelemetry's global provider).
        meter_provider: where metrics go (default: the global one).
        capture_content: also record prompts and completions (``gen_ai.input.messages``,
            ``gen_ai.output.messages``); off by default, as they may hold personal data.

    Calling it again replaces the previous instrumentation.
    """
    if not isinstance(capture_content, bool):
        raise InvalidInputError(f"capture_content must be a bool, not {capture_content!r}")
    _runs.run_hook = _Instruments(tracer_provider, meter_provider, capture_content)


def uninstrument() -> None:
    """Stop reporting runs; runs already started still end their spans."""
    _runs.run_hook = None
