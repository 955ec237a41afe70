"""``rxllm.tracing``: GenAI spans and metrics, read back from the OpenTelemetry SDK's
in-memory exporter and metric reader."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from reactivex import operators as ops

from rxllm import (
    APIConnectionError,
    GenerationChunk,
    InvalidInputError,
    RunnableLambda,
    _runs,
    tracing,
)
from rxllm.llms import (
    BaseLLM,
    ChatAnthropic,
    ChatLlamaCpp,
    ChatOllama,
    ChatOpenAI,
    FakeListChatModel,
    FakeStreamingListLLM,
    OpenAI,
)
from rxllm.operators import text
from tests.servers.scripted import Reply, ScriptedServer
from tests.servers.wire import anthropic_text, ollama_chat, openai_chat, openai_completion


class Telemetry:
    """What one ``instrument()`` call exported."""

    def __init__(self, capture_content: bool = False) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        tracing.instrument(
            self.tracer_provider, self.meter_provider, capture_content=capture_content
        )

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        (found,) = self.span_list(name)
        return found

    def span_list(self, name: str) -> list[ReadableSpan]:
        """The spans named ``name``, in the order they ended."""
        return [s for s in self.spans() if s.name == name]

    def metrics(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = list(metric.data.data_points)
        return found

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    made = Telemetry()
    try:
        yield made
    finally:
        tracing.uninstrument()
        made.close()


@pytest.fixture(autouse=True)
def never_left_on() -> Iterator[None]:
    yield
    tracing.uninstrument()
    assert _runs.run_hook is None


# -- attributes per provider ------------------------------------------------------------


def test_chat_openai_span(telemetry: Telemetry, server: ScriptedServer) -> None:
    server.script(Reply(body=openai_chat(["Hi", " there"])))
    chat = ChatOpenAI(
        model="gpt-test", base_url=f"{server.url}/v1", temperature=0.5, max_tokens=7, stop=["\n"]
    )
    assert "".join(c.content for c in chat.stream("hello")) == "Hi there"
    span = telemetry.span("chat gpt-test")
    assert span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    port = int(server.url.rsplit(":", 1)[1])
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-test"
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.request.max_tokens"] == 7
    assert attributes["gen_ai.request.stop_sequences"] == ("\n",)
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == port
    assert attributes["gen_ai.response.model"] == "m"
    assert attributes["gen_ai.response.id"] == "chatcmpl-1"
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.input_tokens"] == 9
    assert attributes["gen_ai.usage.output_tokens"] == 12
    assert "gen_ai.input.messages" not in attributes
    assert "gen_ai.output.messages" not in attributes
    assert span.status.status_code is StatusCode.UNSET
    chat.close()


def test_openai_completion_span(telemetry: Telemetry, server: ScriptedServer) -> None:
    server.script(Reply(body=openai_completion(["Hello", " world"])))
    llm = OpenAI(model="instruct-test", base_url=f"{server.url}/v1")
    assert llm.invoke("x") == "Hello world"
    attributes = dict(telemetry.span("text_completion instruct-test").attributes or {})
    assert attributes["gen_ai.operation.name"] == "text_completion"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.input_tokens"] == 3
    assert attributes["gen_ai.usage.output_tokens"] == 2
    llm.close()


def test_anthropic_span(telemetry: Telemetry, server: ScriptedServer) -> None:
    server.script(Reply(body=anthropic_text(["Hello", "!"])))
    chat = ChatAnthropic(model="claude-test", base_url=server.url, api_key="sk-ant-test")
    assert chat.invoke("hi").content == "Hello!"
    attributes = dict(telemetry.span("chat claude-test").attributes or {})
    assert attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["gen_ai.response.model"] == "claude-test"
    assert attributes["gen_ai.response.id"] == "msg_01"
    assert attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert attributes["gen_ai.usage.input_tokens"] == 25
    assert attributes["gen_ai.usage.output_tokens"] == 15
    chat.close()


def test_ollama_span(telemetry: Telemetry, server: ScriptedServer) -> None:
    server.script(Reply(body=ollama_chat(["The", " sky"]), content_type="application/x-ndjson"))
    chat = ChatOllama(model="llama-test", base_url=server.url)
    assert chat.invoke("hi").content == "The sky"
    attributes = dict(telemetry.span("chat llama-test").attributes or {})
    assert attributes["gen_ai.provider.name"] == "ollama"
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.input_tokens"] == 11
    assert attributes["gen_ai.usage.output_tokens"] == 18
    chat.close()


def test_embedded_llamacpp_span(telemetry: Telemetry) -> None:
    chat = ChatLlamaCpp(temperature=0, seed=7, max_tokens=4)
    chat.invoke("Say hi")
    (span,) = telemetry.spans()
    attributes = dict(span.attributes or {})
    assert span.name == f"chat {attributes['gen_ai.request.model']}"
    assert attributes["gen_ai.provider.name"] == "llamacpp"
    assert attributes["gen_ai.request.max_tokens"] == 4
    assert attributes["gen_ai.response.finish_reasons"] in (("length",), ("stop",))
    assert "server.address" not in attributes


# -- nesting ----------------------------------------------------------------------------


def test_a_pipeline_nests_its_steps(telemetry: Telemetry) -> None:
    def ask(topic: str) -> str:
        # A model called inside a lambda is a child of the lambda's span.
        return str(FakeListChatModel(responses=["inner"]).invoke(topic).content)

    pipeline = RunnableLambda(ask, name="ask").pipe(
        FakeStreamingListLLM(responses=["a b"]), RunnableLambda(str.upper, name="shout")
    )
    assert pipeline.invoke("bees") == "A B"
    spans = {s.name: s for s in telemetry.spans()}
    root = spans["RunnableSequence"]
    assert root.parent is None
    assert root.context is not None
    for step in ("ask", "text_completion", "shout"):
        assert spans[step].parent is not None
        assert spans[step].parent.span_id == root.context.span_id, step
    inner = spans["chat"]
    assert inner.parent is not None
    assert inner.parent.span_id == spans["ask"].context.span_id  # type: ignore[union-attr]
    assert {s.context.trace_id for s in spans.values()} == {root.context.trace_id}  # type: ignore[union-attr]
    assert spans["ask"].kind is SpanKind.INTERNAL


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


@pytest.mark.parametrize("listened", [False, True], ids=["stream", "stream_events"])
def test_operator_steps_nest_under_the_pipeline_and_their_calls_under_them(
    telemetry: Telemetry, listened: bool
) -> None:
    inner = FakeListChatModel(responses=["1", "2"])
    pipeline = FakeStreamingListLLM(responses=["a b"]).pipe(
        text(), ops.map(str.upper), ops.flat_map(lambda word: inner.observe(word))
    )
    if listened:
        events = list(pipeline.stream_events("x"))
        assert {e["name"] for e in events} >= {"text", "map", "flat_map", "FakeListChatModel"}
    else:
        assert "".join(c.content for c in pipeline.stream("x")) == "12"
    spans = telemetry.spans()
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    ((root,), (model,), (text_step,), (map_step,), (flat_step,)) = (
        by_name[name] for name in ("RunnableSequence", "text_completion", "text", "map", "flat_map")
    )
    assert root.parent is None
    for step in (model, text_step, map_step, flat_step):
        assert parent_of(step) == span_id(root), step.name
    for step in (text_step, map_step, flat_step):
        assert step.kind is SpanKind.INTERNAL
        assert step.status.status_code is StatusCode.UNSET
        assert "rxllm.cancelled" not in (step.attributes or {})
    calls = by_name["chat"]
    assert len(calls) == 2  # one per word
    assert {parent_of(call) for call in calls} == {span_id(flat_step)}
    assert len(spans) == 7


def test_a_step_that_stops_early_cancels_the_call_before_it(telemetry: Telemetry) -> None:
    pipeline = FakeStreamingListLLM(responses=["a b c"]).pipe(ops.take(1))
    assert list(pipeline.stream("x")) == ["a"]
    model = telemetry.span("text_completion")
    assert (model.attributes or {})["rxllm.cancelled"] is True
    for name in ("take", "RunnableSequence"):
        assert "rxllm.cancelled" not in (telemetry.span(name).attributes or {}), name


def test_an_error_in_an_operator_step_marks_the_step_and_the_pipeline(
    telemetry: Telemetry,
) -> None:
    def fail(_: Any) -> str:
        raise ValueError("bad chunk")

    pipeline = FakeStreamingListLLM(responses=["a"]).pipe(ops.map(fail))
    with pytest.raises(ValueError, match="bad chunk"):
        pipeline.invoke("x")
    for name in ("map", "RunnableSequence"):
        span = telemetry.span(name)
        assert span.status.status_code is StatusCode.ERROR, name
        assert (span.attributes or {})["error.type"] == "ValueError"
    assert telemetry.span("text_completion").status.status_code is StatusCode.UNSET


# -- how a run ends ---------------------------------------------------------------------


def test_an_error_ends_the_span_with_status_error(telemetry: Telemetry) -> None:
    def boom(_: Any) -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        RunnableLambda(boom, name="boom").invoke("x")
    span = telemetry.span("boom")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "ValueError"
    assert [e.name for e in span.events] == ["exception"]


def test_a_model_error_ends_its_span_and_records_duration_with_error_type(
    telemetry: Telemetry, server: ScriptedServer
) -> None:
    server.script(Reply(body=openai_chat(["Hi"]), end="drop"))
    chat = ChatOpenAI(model="gpt-test", base_url=f"{server.url}/v1", max_retries=0)
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the type is the provider's
        chat.invoke("x")
    span = telemetry.span("chat gpt-test")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == type(raised.value).__qualname__
    (point,) = telemetry.metrics()["gen_ai.client.operation.duration"]
    assert point.attributes["error.type"] == type(raised.value).__qualname__
    chat.close()


async def first_then_wait(_: Any) -> Any:
    """A stream that sends one chunk and then nothing (a stalled provider)."""
    yield "first"
    await asyncio.sleep(3600)


class StallingLLM(BaseLLM):
    """A model that streams two chunks and then nothing."""

    async def _astream(
        self, prompt: str, stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[GenerationChunk]:
        yield GenerationChunk(text="a")
        yield GenerationChunk(text="b")
        await asyncio.sleep(3600)


def test_break_ends_the_span_marked_cancelled(telemetry: Telemetry) -> None:
    for _ in RunnableLambda(first_then_wait, name="stalled").stream("x"):
        break
    (span,) = telemetry.spans()
    assert (span.attributes or {})["rxllm.cancelled"] is True
    assert span.status.status_code is StatusCode.UNSET


async def test_a_cancelled_task_ends_the_span(telemetry: Telemetry) -> None:
    started = asyncio.Event()

    async def slow(_: Any) -> Any:
        started.set()
        await asyncio.sleep(3600)

    async def consume() -> None:
        async for _ in RunnableLambda(slow, name="slow").astream("x"):
            pass

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    span = telemetry.span("slow")
    assert (span.attributes or {})["rxllm.cancelled"] is True


def test_no_span_is_left_open_after_1000_cancelled_streams(telemetry: Telemetry) -> None:
    stalled = RunnableLambda(first_then_wait, name="stalled")
    for _ in range(1000):
        stream = stalled.stream("x")
        assert next(stream) == "first"
        stream.close()
    spans = telemetry.spans()
    assert len(spans) == 1000
    assert all((s.attributes or {}).get("rxllm.cancelled") is True for s in spans)
    assert all(s.end_time is not None for s in spans)


def test_no_span_is_left_open_after_1000_cancelled_pipelines(telemetry: Telemetry) -> None:
    pipeline = StallingLLM().pipe(text())
    for _ in range(1000):
        stream = pipeline.stream("x")
        assert next(stream) == "a"
        stream.close()
    spans = telemetry.spans()
    assert sorted({s.name for s in spans}) == ["RunnableSequence", "text", "text_completion"]
    assert len(spans) == 3000  # the pipeline, its model call and its operator step
    assert all((s.attributes or {}).get("rxllm.cancelled") is True for s in spans)
    (duration,) = telemetry.metrics()["gen_ai.client.operation.duration"]
    assert duration.count == 1000


# -- metrics ----------------------------------------------------------------------------


def test_metrics_with_the_conventions_buckets(telemetry: Telemetry, server: ScriptedServer) -> None:
    server.script(Reply(body=openai_chat(["a", "b", "c"])))
    chat = ChatOpenAI(model="gpt-test", base_url=f"{server.url}/v1")
    chat.invoke("x")
    metrics = telemetry.metrics()
    (duration,) = metrics["gen_ai.client.operation.duration"]
    assert duration.explicit_bounds == tuple(tracing.DURATION_BUCKETS)
    assert duration.attributes["gen_ai.operation.name"] == "chat"
    assert duration.attributes["gen_ai.request.model"] == "gpt-test"
    assert duration.attributes["gen_ai.response.model"] == "m"
    tokens = {p.attributes["gen_ai.token.type"]: p for p in metrics["gen_ai.client.token.usage"]}
    assert tokens["input"].sum == 9
    assert tokens["output"].sum == 12
    assert tokens["input"].explicit_bounds == tuple(float(b) for b in tracing.TOKEN_BUCKETS)
    (first,) = metrics["gen_ai.client.operation.time_to_first_chunk"]
    assert first.count == 1
    (per_chunk,) = metrics["gen_ai.client.operation.time_per_output_chunk"]
    assert per_chunk.count >= 2  # every chunk after the first
    chat.close()


def test_a_cancelled_calls_metrics_link_to_its_span(telemetry: Telemetry) -> None:
    stream = StallingLLM().stream("x")
    assert [next(stream), next(stream)] == ["a", "b"]
    stream.close()  # disposes the call: its metrics are recorded on the consumer's thread
    (span,) = telemetry.spans()
    assert (span.attributes or {})["rxllm.cancelled"] is True
    metrics = telemetry.metrics()
    for name in (
        "gen_ai.client.operation.duration",
        "gen_ai.client.operation.time_to_first_chunk",
        "gen_ai.client.operation.time_per_output_chunk",
    ):
        (point,) = metrics[name]
        assert [e.span_id for e in point.exemplars] == [span_id(span)], name
    (per_chunk,) = metrics["gen_ai.client.operation.time_per_output_chunk"]
    assert per_chunk.count == 1  # the chunk after the first


# -- content and secrets ----------------------------------------------------------------


def test_content_only_when_asked(server: ScriptedServer) -> None:
    made = Telemetry(capture_content=True)
    try:
        server.script(Reply(body=openai_chat(["Hi", " there"])))
        chat = ChatOpenAI(model="gpt-test", base_url=f"{server.url}/v1")
        chat.invoke("hello")
        attributes = dict(made.span("chat gpt-test").attributes or {})
        assert json.loads(str(attributes["gen_ai.input.messages"])) == [
            {"role": "user", "parts": [{"type": "text", "content": "hello"}]}
        ]
        assert json.loads(str(attributes["gen_ai.output.messages"])) == [
            {"role": "assistant", "parts": [{"type": "text", "content": "Hi there"}]}
        ]
        chat.close()
    finally:
        tracing.uninstrument()
        made.close()


def test_the_three_canary_secrets_are_never_recorded(server: ScriptedServer) -> None:
    made = Telemetry(capture_content=True)
    canaries = ("sk-canary-key-1", "canary-header-2", "canary-query-3")
    secrets: dict[str, Any] = {
        "api_key": canaries[0],
        "default_headers": {"x-team": canaries[1]},
        "max_retries": 0,
    }
    try:
        server.script(
            Reply(body=openai_chat(["Hi"])),
            Reply(status=500, body=[b"{}"]),
            Reply(body=openai_chat(["Hi"])),
        )
        chat = ChatOpenAI(
            model="gpt-test", base_url=f"{server.url}/v1?key={canaries[2]}", **secrets
        )
        chat.invoke("hello")
        with pytest.raises(Exception):  # noqa: B017, PT011 - any failure, its text checked
            chat.invoke("again")
        assert chat.pipe(text()).invoke("piped") == "Hi"
        # A connection error's exception (recorded on the span) names the URL it tried.
        nowhere = f"http://127.0.0.1:{closed_port()}/v1?key={canaries[2]}"
        unreachable = ChatOpenAI(model="gpt-test", base_url=nowhere, **secrets)
        with pytest.raises(APIConnectionError):
            unreachable.invoke("hello")
        spans = made.spans()
        assert len(spans) == 6
        assert [e.name for e in made.span_list("chat gpt-test")[-1].events] == ["exception"]
        sent = server.requests[0]  # each canary was sent
        assert sent.headers["authorization"] == f"Bearer {canaries[0]}"
        assert sent.headers["x-team"] == canaries[1]
        assert sent.path.endswith(f"?key={canaries[2]}")
        dumped = " ".join(span.to_json() for span in spans)
        dumped += repr(made.reader.get_metrics_data())
        for canary in canaries:
            assert canary not in dumped
        chat.close()
        unreachable.close()
    finally:
        tracing.uninstrument()
        made.close()


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- on and off -------------------------------------------------------------------------


def test_uninstrument_stops_everything(telemetry: Telemetry) -> None:
    llm = FakeStreamingListLLM(responses=["a"])
    llm.invoke("x")
    assert len(telemetry.spans()) == 1
    tracing.uninstrument()
    llm.invoke("x")
    RunnableLambda(str.upper).invoke("y")
    assert llm.pipe(text(), ops.map(str.upper)).invoke("x") == "A"
    assert len(telemetry.spans()) == 1
    assert _runs.run_hook is None


def test_capture_content_must_be_a_bool() -> None:
    with pytest.raises(InvalidInputError, match="capture_content"):
        tracing.instrument(capture_content="yes")  # type: ignore[arg-type]
    assert _runs.run_hook is None


def test_the_readme_example_runs() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Tracing\n", 1)[1].split("\n## ", 1)[0]
    (code,) = [block.removeprefix("python\n") for block in section.split("```")[1::2]]
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    try:
        assert _runs.run_hook is not None
        assert FakeStreamingListLLM(responses=["ok"]).invoke("x") == "ok"
    finally:
        tracing.uninstrument()
        namespace["provider"].shutdown()


def test_events_are_unchanged_by_tracing(telemetry: Telemetry) -> None:
    pipeline = RunnableLambda(str.strip, name="strip").pipe(
        FakeStreamingListLLM(responses=["a b"]), text()
    )
    traced = [(e["event"], e["name"], e["data"]) for e in pipeline.stream_events(" x ")]
    tracing.uninstrument()
    plain = [(e["event"], e["name"], e["data"]) for e in pipeline.stream_events(" x ")]
    assert traced == plain
    assert ("on_chain_stream", "text", {"chunk": " b"}) in traced
    spans = {s.name for s in telemetry.spans()}
    assert spans == {"RunnableSequence", "strip", "text_completion", "text"}


def test_without_opentelemetry_the_import_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "rxllm.tracing")
    with pytest.raises(ImportError, match=r"pip install 'rxllm\[otel\]'"):
        importlib.import_module("rxllm.tracing")
    monkeypatch.undo()
    assert sys.modules["rxllm.tracing"] is tracing
