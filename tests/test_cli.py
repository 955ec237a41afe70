"""The ``rxllm`` command, run as users run it: ``python -m rxllm ...`` in a subprocess.

The model is the embedded one (SmolLM2-135M-Instruct, in-process llama.cpp); greedy
decoding and few tokens keep the runs short and their output repeatable.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rxllm import cli
from tests.servers.scripted import Reply, ScriptedServer, free_port
from tests.servers.wire import openai_chat

ROOT = Path(__file__).resolve().parent.parent
SONG = "Write me a 1 verse song about sparkling water."
GREEDY = ["--temperature", "0", "--seed", "7"]
EVENT_KEYS = {"event", "name", "run_id", "tags", "metadata", "data", "parent_ids"}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("RXLLM_DEBUG", None)
    return env


def rxllm(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m rxllm ARGS`` to the end."""
    return subprocess.run(
        [sys.executable, "-m", "rxllm", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        timeout=timeout,
        check=False,
    )


def assert_clean_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    """The run failed with ``status`` and one ``rxllm: error:`` line; returns the line."""
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rxllm: error: ")
    return lines[0]


# -- stream -----------------------------------------------------------------------


def test_stream_separates_tokens() -> None:
    result = rxllm("stream", SONG, "--sep", "|", "--max-tokens", "12", *GREEDY)
    assert result.returncode == 0, result.stderr
    tokens = [token for token in result.stdout.rstrip("\n").split("|") if token]
    assert len(tokens) > 1
    assert result.stderr == ""


def test_stream_json_lines() -> None:
    result = rxllm("stream", SONG, "--json", "--max-tokens", "6", *GREEDY)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) > 1
    assert all(set(record) == {"text", "chunk"} for record in records)
    assert records[0]["chunk"]["type"] == "AIMessageChunk"
    assert records[-1]["chunk"]["response_metadata"]["finish_reason"] == "length"


# -- events -----------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_events_json_lines(version: str) -> None:
    result = rxllm("events", SONG, "--version", version, "--json", "--max-tokens", "5", *GREEDY)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(set(event) >= EVENT_KEYS for event in events)  # LangChain's keys, at least
    names = [event["event"] for event in events]
    assert names[0] == "on_chat_model_start"
    assert names[-1] == "on_chat_model_end"
    assert set(names[1:-1]) == {"on_chat_model_stream"}
    assert len(names) > 3
    assert events[0]["data"] == {"input": SONG}
    assert events[1]["data"]["chunk"]["type"] == "AIMessageChunk"  # a model, made a dict
    assert len({event["run_id"] for event in events}) == 1
    if version == "v2":
        assert events[0]["metadata"]["ls_provider"] == "llamacpp"
    else:
        assert events[0]["metadata"] == {}


def test_events_print_one_readable_line_each() -> None:
    result = rxllm("events", SONG, "--version", "v1", "--max-tokens", "3", *GREEDY)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"on_chat_model_start   ChatLlamaCpp  input={SONG!r}"
    assert all(
        line.startswith("on_chat_model_stream  ChatLlamaCpp  chunk=") for line in lines[1:-1]
    )
    assert lines[-1].startswith("on_chat_model_end     ChatLlamaCpp  output=")
    assert len(lines) > 3


def test_an_event_line_previews_long_data() -> None:
    event: Any = {"event": "on_llm_end", "name": "OpenAI", "data": {"output": "x" * 500}}
    line = cli.describe_event(event)
    assert line.startswith("on_llm_end            OpenAI  output='xxx")
    assert line.endswith("x\u2026")
    assert len(line) < 100
    assert cli.describe_event({"event": "on_chain_start", "name": "a"}) == (  # type: ignore[typeddict-item]
        "on_chain_start        a"
    )


# -- batch ------------------------------------------------------------------------


def test_batch_prints_results_in_order(tmp_path: Path) -> None:
    prompts = ["Name a color.", "Name a fruit.", "Name an animal."]
    file = tmp_path / "prompts.txt"
    file.write_text("\n".join([prompts[0], "", prompts[1], prompts[2]]) + "\n")
    result = rxllm("batch", str(file), "--json", "--max-tokens", "6", *GREEDY)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["index"], r["prompt"]) for r in records] == list(enumerate(prompts))
    assert all(r["output"] for r in records)
    # Progress on stderr, and nothing of it on stdout.
    assert "3/3 prompts" in result.stderr
    assert "1/3 prompts" in result.stderr
    assert "prompts" not in result.stdout.replace('"prompt"', "")


def test_batch_with_a_missing_file(tmp_path: Path) -> None:
    line = assert_clean_error(rxllm("batch", str(tmp_path / "nope.txt")), 2)
    assert "nope.txt" in line


def test_batch_with_no_prompts(tmp_path: Path) -> None:
    file = tmp_path / "empty.txt"
    file.write_text("\n  \n")
    assert "no prompts" in assert_clean_error(rxllm("batch", str(file)), 2)


# -- options ----------------------------------------------------------------------


def test_version() -> None:
    from rxllm import __version__

    result = rxllm("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"rxllm {__version__}\n", "")


def test_timeout_stops_a_stalled_call(server: ScriptedServer) -> None:
    server.script(Reply(body=openai_chat(["Hel", "lo"], done=False)[:2], end="hang"))
    args = ["stream", "hi", "-m", "chat-openai:m", "--base-url", f"{server.url}/v1"]
    result = rxllm(*args, "--timeout", "0.5")
    line = assert_clean_error(result, 1)
    assert "took longer than 0.5 s" in line
    assert result.stdout == "Hel\n"  # what came before, then the error
    assert "expected a number of seconds above 0" in assert_clean_error(
        rxllm(*args, "--timeout", "0"), 2
    )


def test_timeout_stops_the_local_model() -> None:
    prompt = "Count from 1 to 1000, one number a line."
    result = rxllm("events", prompt, "-n", "3000", "--timeout", "0.1", *GREEDY, timeout=60)
    assert "took longer than 0.1 s" in assert_clean_error(result, 1)


def test_api_key_is_sent(server: ScriptedServer) -> None:
    server.script(Reply(body=openai_chat(["ok"])))
    url = f"{server.url}/v1"
    result = rxllm("stream", "hi", "-m", "chat-openai:m", "--base-url", url, "--api-key", "sk-x1")
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")
    assert server.requests[0].headers["authorization"] == "Bearer sk-x1"


@pytest.mark.parametrize(
    ("spec", "variable"),
    [("chat-openai:gpt-4o-mini", "OPENAI_API_KEY"), ("anthropic:claude", "ANTHROPIC_API_KEY")],
)
def test_a_missing_key_names_its_variable(spec: str, variable: str) -> None:
    env = {k: v for k, v in _env().items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    result = subprocess.run(
        [sys.executable, "-m", "rxllm", "stream", "hi", "-m", spec],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    line = assert_clean_error(result, 2)
    assert f"needs an API key: set {variable}" in line
    assert "--api-key" in line


def test_help_says_where_a_key_is_safer() -> None:
    result = rxllm("stream", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "OPENAI_API_KEY" in text
    assert "ANTHROPIC_API_KEY" in text
    assert "shows in ps" in text


def test_http_options_are_refused_for_the_local_model() -> None:
    for option, value in (("--api-key", "sk-x"), ("--max-retries", "1")):
        line = assert_clean_error(rxllm("stream", "hi", option, value), 2)
        assert f"{option} is for HTTP providers" in line


def test_a_closed_pipe_ends_the_stream_quietly() -> None:
    # A real pipe into `head -c 5`, which exits after five bytes: rxllm ends as
    # coreutils writers do (`yes | head`: 128 + SIGPIPE), with nothing on stderr.
    writer = subprocess.Popen(
        [sys.executable, "-m", "rxllm", "stream", "Count from 1 to 1000, one number a line."]
        + ["--max-tokens", "3000", *GREEDY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=_env(),
    )
    assert writer.stdout is not None
    reader = subprocess.run(
        ["head", "-c", "5"], stdin=writer.stdout, capture_output=True, timeout=120, check=False
    )
    writer.stdout.close()  # only head holds the read end now
    try:
        _, err = writer.communicate(timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.communicate()
    assert len(reader.stdout) == 5
    assert err == b""
    assert writer.returncode == 141


def test_a_model_file_that_is_not_a_model_is_a_clean_usage_error() -> None:
    line = assert_clean_error(rxllm("stream", "hi", "--model", "local:/etc/passwd"), 2)
    assert line == "rxllm: error: model_path '/etc/passwd' is not a GGUF model file"


def test_a_blank_prompt_is_a_usage_error() -> None:
    line = assert_clean_error(rxllm("stream", " \n "), 2)
    assert line == "rxllm: error: the prompt is empty or blank"


# -- errors -----------------------------------------------------------------------


def test_bad_model_is_a_usage_error() -> None:
    line = assert_clean_error(rxllm("stream", "hi", "--model", "gpt5"), 2)
    assert "unknown model 'gpt5'" in line
    assert "openai:MODEL" in line
    assert "needs a model name" in assert_clean_error(rxllm("stream", "hi", "-m", "openai:"), 2)


def test_bad_options_are_usage_errors() -> None:
    line = assert_clean_error(rxllm("stream", "hi", "--max-tokens", "0"), 2)
    assert "--max-tokens" in line
    assert "at least 1, got 0" in line
    line = assert_clean_error(rxllm("stream", "hi", "--max-retries", "-1"), 2)
    assert "at least 0, got -1" in line
    assert "whole number, got 'x'" in assert_clean_error(rxllm("stream", "hi", "-n", "x"), 2)
    assert "--system needs a chat model" in assert_clean_error(
        rxllm("stream", "hi", "-m", "openai:x", "--system", "be brief"), 2
    )
    assert "--base-url" in assert_clean_error(
        rxllm("stream", "hi", "--base-url", "http://127.0.0.1:1"), 2
    )
    assert_clean_error(rxllm("stream"), 2)
    assert_clean_error(rxllm(), 2)
    assert_clean_error(rxllm("events", "hi", "--version", "v3"), 2)


@pytest.mark.parametrize("spec", ["openai:x", "chat-openai:x", "anthropic:x", "ollama:x"])
def test_unreachable_server_is_a_clean_failure(spec: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = rxllm("stream", "hi", "-m", spec, "--base-url", url, "-n", "3", "--max-retries", "0")
    line = assert_clean_error(result, 1)
    assert "127.0.0.1" in line
    assert result.stdout == ""


def test_ctrl_c_stops_generation_quietly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "rxllm", "stream", "Count from 1 to 1000, one number a line."]
        + ["--max-tokens", "3000", "--sep", "|", *GREEDY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=_env(),
    )
    assert process.stdout is not None
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=120), "no token within two minutes"
        first = os.read(process.stdout.fileno(), 1024)
        assert first  # generation is under way
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err.decode()[-3000:]
    assert b"Traceback" not in err
    assert err == b""
    assert (first + out).count(b"|") < 3000  # it stopped long before the limit


# -- in-process: parsing and model choice -------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(argv)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("local", cli.ModelSpec("local")),
        ("local:/m/x.gguf", cli.ModelSpec("local", "/m/x.gguf")),
        ("openai:gpt-3.5-turbo-instruct", cli.ModelSpec("openai", "gpt-3.5-turbo-instruct")),
        ("chat-openai:gpt-4o-mini", cli.ModelSpec("chat-openai", "gpt-4o-mini")),
        ("anthropic:claude-sonnet-4-5", cli.ModelSpec("anthropic", "claude-sonnet-4-5")),
        ("ollama:llama3:8b", cli.ModelSpec("ollama", "llama3:8b")),
    ],
)
def test_model_specs(text: str, expected: cli.ModelSpec) -> None:
    assert cli.parse_model_spec(text) == expected


@pytest.mark.parametrize("text", ["", "gpt", "openai", "local:", "ollama:", "OpenAI:x"])
def test_bad_model_specs(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_model_spec(text)


def test_models_built_from_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from rxllm.llms import ChatAnthropic, ChatLlamaCpp, ChatOllama, ChatOpenAI, OpenAI

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # api.openai.com needs one

    common = ["-n", "9", "-t", "0.5", "--max-retries", "0"]
    openai = cli.build_model(parse("stream", "p", "-m", "openai:m", *common, "--seed", "3"))
    assert isinstance(openai, OpenAI)
    assert (openai.model, openai.max_tokens, openai.temperature, openai.max_retries) == (
        "m",
        9,
        0.5,
        0,
    )
    assert openai.model_kwargs == {"seed": 3}
    url = "http://127.0.0.1:1/v1"
    chat = cli.build_model(parse("stream", "p", "-m", "chat-openai:m", "--base-url", url))
    assert isinstance(chat, ChatOpenAI)
    assert chat.base_url == url
    claude = cli.build_model(parse("stream", "p", "-m", "anthropic:c", "--base-url", url))
    assert isinstance(claude, ChatAnthropic)
    ollama = cli.build_model(parse("stream", "p", "-m", "ollama:l", "--seed", "1"))
    assert isinstance(ollama, ChatOllama)
    assert ollama.model_kwargs == {"options": {"seed": 1}}
    local = cli.build_model(parse("stream", "p", *common[:4]))  # --max-retries: HTTP only
    assert isinstance(local, ChatLlamaCpp)
    assert (local.max_tokens, local.temperature) == (9, 0.5)


def test_system_message_goes_first() -> None:
    assert cli.model_input(None, "p", None) == "p"  # type: ignore[arg-type]
    assert cli.model_input(None, "p", "s") == [("system", "s"), ("human", "p")]  # type: ignore[arg-type]


def test_json_lines_turn_models_into_dicts_and_the_unknown_into_text() -> None:
    from rxllm import AIMessageChunk

    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    line = cli._dumps({"chunk": AIMessageChunk(content="hé\n"), "other": Opaque()})
    assert "\n" not in line
    decoded = json.loads(line)
    assert decoded["chunk"]["content"] == "hé\n"
    assert decoded["other"] == "opaque"


def test_progress_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = cli.Progress(2, stream)
    progress.update()
    progress.update(failed=True)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert "[############------------] 1/2 prompts" in lines[0]
    assert "2/2 prompts, 1 failed" in lines[1]


def test_progress_redraws_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = cli.Progress(3, stream)
    progress.update()
    progress.close()  # interrupted: the bar's line is ended
    assert stream.getvalue().startswith("\rrxllm: [")
    assert stream.getvalue().endswith("\n")


def test_main_reports_provider_errors(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    status = cli.main(
        ["stream", "hi", "-m", "chat-openai:x", "--base-url", url, "--max-retries", "0"]
    )
    assert status == 1
    captured: Any = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("rxllm: error: ")


# -- in-process: the commands on fake models ----------------------------------------


def run(command: str, model: Any, *argv: str) -> tuple[int, str, str]:
    """Run one command's function on ``model``; returns (status, stdout, stderr)."""
    args = parse(command, *argv)
    out, err = io.StringIO(), io.StringIO()
    if command == "batch":
        status = cli.run_batch(args, model, out, err)
    else:
        status = {"stream": cli.run_stream, "events": cli.run_events}[command](args, model, out)
    return status, out.getvalue(), err.getvalue()


def test_stream_plain_and_json_agree() -> None:
    from rxllm.llms import FakeStreamingListLLM

    llm = FakeStreamingListLLM(responses=["Sparkling water, oh so clear"])
    status, plain, _ = run("stream", llm, "p", "--sep", "|")
    assert status == 0
    assert plain == "Sparkling| water|,| oh| so| clear|\n"
    status, lines, _ = run("stream", llm, "p", "--json")
    records = [json.loads(line) for line in lines.splitlines()]
    assert "".join(r["text"] for r in records) == "Sparkling water, oh so clear"
    assert records[0]["chunk"]["text"] == "Sparkling"


def test_batch_prints_failures_in_place(tmp_path: Path) -> None:
    from rxllm.llms import FakeListChatModel

    file = tmp_path / "prompts.txt"
    file.write_text("one\ntwo\nthree\n")
    chat = FakeListChatModel(responses=["first\nreply", "second"])
    status, out, err = run("batch", chat, str(file))
    assert status == 0
    assert out == "[1/3] one\nfirst\nreply\n\n[2/3] two\nsecond\n\n[3/3] three\nfirst\nreply\n\n"
    assert err.splitlines()[-1].startswith("rxllm: [########################] 3/3 prompts")

    failing = FakeListChatModel(responses=["x"], error_after=0, error=ValueError("boom"))
    status, out, err = run("batch", failing, str(file), "--json", "-c", "1")
    assert status == 1
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["error"] for r in records] == ["ValueError: boom"] * 3
    assert "3 failed" in err


def test_timeout_applies_to_each_prompt_of_a_batch(tmp_path: Path) -> None:
    from rxllm.llms import FakeStreamingListLLM

    file = tmp_path / "prompts.txt"
    file.write_text("one\ntwo\n")
    slow = FakeStreamingListLLM(responses=["word " * 100], delay=0.05)  # 5 s a reply
    status, out, err = run("batch", slow, str(file), "--json", "--timeout", "0.2")
    assert status == 1
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["error"] for r in records] == ["the stream took longer than 0.2 s"] * 2
    assert "2 failed" in err


def test_events_of_a_fake_llm() -> None:
    from rxllm.llms import FakeListLLM

    status, out, _ = run("events", FakeListLLM(responses=["hi"]), "p", "--json")
    assert status == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events] == ["on_llm_start", "on_llm_stream", "on_llm_end"]


def test_main_without_the_local_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rxllm.llms import _llamacpp

    monkeypatch.setattr(_llamacpp, "_has_module", lambda name: False)
    assert cli.main(["stream", "hi"]) == 1
    assert capsys.readouterr().err == "rxllm: error: LlamaCpp needs `pip install 'rxllm[local]'`\n"


def test_main_with_a_missing_gguf_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.gguf"
    assert cli.main(["stream", "hi", "--model", f"local:{missing}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rxllm: error: model_path ")
    assert "missing.gguf" in err


# -- serve ------------------------------------------------------------------------


def _serve_env(key: str | None) -> dict[str, str]:
    env = _env()
    env.pop(cli.SERVE_KEY_ENV, None)
    if key is not None:
        env[cli.SERVE_KEY_ENV] = key
    return env


def test_serve_answers_health_and_streams_from_the_embedded_model() -> None:
    import httpx
    import openai

    port = free_port()
    key = "sk-serve-test-9f3"
    process = subprocess.Popen(
        [sys.executable, "-m", "rxllm", "serve", "--port", str(port), "--max-tokens", "8",
         *GREEDY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=_serve_env(key),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        health = None
        for _ in range(600):  # up to a minute for the server to start
            try:
                health = httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    break
                time.sleep(0.1)
        assert health is not None, process.communicate(timeout=10)
        assert health.json() == {"status": "ok"}
        assert httpx.get(f"{url}/v1/models").status_code == 401  # the key is required
        with openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as client:
            stream = client.chat.completions.create(
                model="local", messages=[{"role": "user", "content": SONG}], stream=True
            )
            chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.strip()
        assert chunks[-1].choices[0].finish_reason == "length"  # --max-tokens 8
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode in (0, 130)
    assert key not in err.decode()
    assert "API key required" in err.decode()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "example.com"])
def test_serve_refuses_a_public_address_without_a_key(host: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rxllm", "serve", "--host", host, "--port", str(free_port())],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_serve_env(None),
        timeout=60,
        check=False,
    )
    line = assert_clean_error(result, 2)
    assert cli.SERVE_KEY_ENV in line
    assert host in line


def test_serve_reads_its_key_from_the_environment_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse("serve", "--help")
    help_text = " ".join(capsys.readouterr().out.split())
    assert cli.SERVE_KEY_ENV in help_text
    assert "never from the command line" in help_text
    for argv in (["--system", "x"], ["--json"]):
        args = parse("serve", *argv)
        with pytest.raises(cli.UsageError, match="not an option of serve"):
            cli.check_serve(args, {})
    args = parse("serve", "--host", "::1")
    assert cli.check_serve(args, {}) is None  # loopback: served without a key
    assert cli.check_serve(args, {cli.SERVE_KEY_ENV: "k"}) == "k"


def test_serve_on_a_taken_port_is_one_line_and_status_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["serve", "--port", str(port), "--model", "chat-openai:m", "--api-key", "k"]
        result = rxllm(*argv, "--base-url", "http://127.0.0.1:9/v1")
    line = assert_clean_error(result, 1)
    assert f"can't listen on 127.0.0.1:{port}" in line


def test_serve_options_reach_the_app(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    from rxllm.runnable import Pipeline

    apps: list[Any] = []

    def run(self: uvicorn.Server, sockets: Any = None) -> None:
        apps.append(self.config.app)
        self.started = True

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.setenv(cli.SERVE_KEY_ENV, "sk-env")
    status = cli.main(["serve", "--port", "0", "--resume-window", "7", "--max-concurrency", "3",
                       "--timeout", "2", "--model", "chat-openai:gpt-x", "--api-key", "up",
                       "--base-url", "http://127.0.0.1:9/v1"])  # fmt: skip
    assert status == 0
    server = apps[0].state.server
    assert server.model_name == "gpt-x"
    assert server.resume.window == 7
    assert server.slots.limit == 3
    assert isinstance(server.runnable, Pipeline)  # the model, then --timeout's deadline
    assert server.api_key.get_secret_value() == "sk-env"
    err = capsys.readouterr().err
    assert err.startswith("rxllm: serving ChatOpenAI on http://127.0.0.1:")
    assert "sk-env" not in err


async def test_serve_listens_so_that_asyncio_sets_tcp_nodelay() -> None:
    # Without TCP_NODELAY a response's headers and body wait for a delayed ACK (~40 ms).
    sock = cli.listen("127.0.0.1", 0, socket.AF_INET)
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("socket")
        accepted.set_result(peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(connected, sock=sock)
    async with server:
        _, writer = await asyncio.open_connection(*sock.getsockname())
        assert await asyncio.wait_for(accepted, 5) != 0
        writer.close()
        await writer.wait_closed()
