"""The chat page (``rxllm/serve/page.html``) in a real browser.

Headless Chromium (Debian's ``chromium`` package, which ``.ci/run`` installs) is driven
by Playwright's Python package; Playwright's own browser downloads are never used. The
page streams from rxllm's server (the embedded model; a ``ChatOpenAI`` whose upstream is
a scripted server, to see Stop cancel the upstream call), and from a scripted server
alone, whose bytes test the page's SSE reading: CR, LF and CRLF line ends, multi-line
data, comments, UTF-8 split across reads, in-band errors, a stream cut short, an API key.
Without a Chromium every test here is skipped, saying so.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import pytest

from rxllm import ChatOpenAI
from rxllm.llms import ChatLlamaCpp, FakeListChatModel
from rxllm.runnable import Runnable
from rxllm.serve import create_app

from ..conftest import on_worker_thread, wait_until
from ..servers.asgi import Served
from ..servers.scripted import Pause, Recorded, Reply, ScriptedServer, Until
from ..servers.wire import DONE, openai_chat, sse

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "no Chromium found (install Debian's `chromium` package; .ci/run does): "
        "the chat page is not tested in a browser",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the chat page's tests need `pip install playwright`"
)
expect = sync_api.expect

#: Chromium as root in a container, offline: no sandbox, GPU, QUIC or background traffic.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE = resources.files("rxllm.serve").joinpath("page.html").read_bytes()
PROMPT = "Write me a 1 verse song about sparkling water."
SECONDS = 1000  # Playwright's timeouts are in milliseconds


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module, with a fresh profile of its own."""
    with tempfile.TemporaryDirectory() as profile, sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS
        )
        context.set_default_timeout(30 * SECONDS)
        yield context
        context.close()


@pytest.fixture
def tab(browser: Any) -> Iterator[Any]:
    """A new page; fails the test on any error the page's script throws."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert errors == []


# Serving.


@contextmanager
def serving(runnable: Runnable[Any, Any]) -> Iterator[str]:
    """``create_app(runnable)`` under uvicorn, as ``rxllm serve`` runs it; yields its URL."""
    with Served(create_app(runnable)) as served:
        yield served.url


def page_server(chat: Callable[[Recorded], Reply]) -> ScriptedServer:
    """A scripted server that serves the page, one model, and ``chat``'s replies to
    ``POST /v1/chat/completions``: the page against bytes a test writes."""
    server = ScriptedServer()

    def respond(request: Recorded) -> Reply:
        if request.path == "/":
            return Reply(body=[PAGE], content_type="text/html; charset=utf-8")
        if request.path == "/v1/models":
            models = {"object": "list", "data": [{"id": "scripted", "object": "model"}]}
            return Reply(body=[json.dumps(models).encode()], content_type="application/json")
        return chat(request)

    server.respond = respond
    return server


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "scripted",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


# Driving the page.


def send(page: Any, prompt: str) -> Any:
    """Type ``prompt``, press Send; the new turn's locator."""
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_role("button", name="Send").click()
    return page.locator("article.turn").last


def wait_idle(page: Any, timeout: float = 60) -> None:
    """Wait until no stream is under way: Send enabled, Stop disabled, the log not busy."""
    expect(page.get_by_role("button", name="Send")).to_be_enabled(timeout=timeout * SECONDS)
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    expect(page.get_by_role("log")).to_have_attribute("aria-busy", "false")


def watch_answer(page: Any) -> None:
    """Record, in the page, the answer's length each time it changes while streaming."""
    page.evaluate(
        """() => {
          window.seen = [];
          const log = document.getElementById("log");
          new MutationObserver(() => {
            const answers = log.querySelectorAll(".answer");
            if (log.getAttribute("aria-busy") === "true" && answers.length)
              window.seen.push(answers[answers.length - 1].textContent.length);
          }).observe(log, { childList: true, subtree: true, characterData: true });
        }"""
    )


# Through rxllm's server.


def test_the_page_streams_the_embedded_model(tab: Any) -> None:
    model = ChatLlamaCpp(temperature=0, seed=42, max_tokens=40)
    messages = [{"role": "user", "content": PROMPT}]
    expected = on_worker_thread(lambda: model.invoke(messages).content)
    with serving(model) as url:
        tab.goto(url)
        expect(tab).to_have_title("rxllm chat")
        watch_answer(tab)
        turn = send(tab, PROMPT)
        expect(tab.get_by_role("button", name="Stop")).to_be_enabled()
        wait_idle(tab)
    assert turn.locator(".answer").inner_text() == expected
    # The text came in pieces while the stream was open, not all at the end.
    assert len(set(tab.evaluate("window.seen"))) > 1
    assert re.fullmatch(r"first token \d+ ms", turn.locator(".ttft").inner_text())
    # llama.cpp reports no usage while streaming, so the rate is in chunks.
    rate = turn.locator(".rate").inner_text()
    assert re.fullmatch(r"\d+\.\d chunks/s", rate)
    assert float(rate.split()[0]) > 0
    expect(tab.get_by_role("status")).to_have_text(re.compile(r"Done \((stop|length)\)\."))
    expect(turn.locator(".error")).to_have_count(0)


def test_stop_cancels_the_upstream_call(tab: Any) -> None:
    words = [f"word{i} " for i in range(400)]
    events = openai_chat(words)
    # The role event, three words at once, then one word every 50 ms: 20 s in all.
    body: list[bytes | Pause] = [b"".join(events[:4])]
    for event in events[4:]:
        body += [Pause(0.05), event]
    total = sum(len(piece) for piece in body if isinstance(piece, bytes))
    with ScriptedServer() as upstream:
        upstream.script(Reply(body=body))
        model = ChatOpenAI(base_url=f"{upstream.url}/v1", api_key="sk-test", model="m")
        with serving(model) as url:
            tab.goto(url)
            turn = send(tab, "Count")
            expect(turn.locator(".answer")).to_contain_text("word2 ")
            tab.get_by_role("button", name="Stop").click()
            wait_idle(tab, timeout=10)
            # Seen from the upstream's side: the response was walked away from, and the
            # connection closed, long before the stream's end.
            wait_until(lambda: upstream.aborted == 1 and upstream.open_connections == 0)
            assert upstream.body_bytes < total / 2
        assert len(upstream.requests) == 1
        assert upstream.requests[0].json()["stream"] is True
    expect(turn.locator(".note")).to_have_text("Stopped.")
    expect(tab.get_by_role("status")).to_have_text("Stopped.")
    expect(turn.locator(".error")).to_have_count(0)
    assert turn.locator(".answer").inner_text().startswith("word0 word1 word2 ")


# The page's reading of the stream, against bytes written by the test.


def test_the_page_reads_sse_as_the_spec_does(tab: Any) -> None:
    """Every line ending, multi-line data, comments and UTF-8 split across reads, written
    five bytes at a time; reasoning shown apart; usage turns chunks/s into tokens/s."""
    multiline = json.dumps(chunk({"content": " wörld 🌍\n"}), indent=1)
    pieces = [
        b": a comment, then an event ended by CRLF\r\n",
        b"data: " + json.dumps(chunk({"role": "assistant", "content": ""})).encode() + b"\r\n\r\n",
        b"data: " + json.dumps(chunk({"reasoning_content": "Let me think."})).encode() + b"\r\r",
        b"data:" + json.dumps(chunk({"content": "Héllo"})).encode() + b"\n\n",
        "".join(f"data: {line}\r\n" for line in multiline.splitlines()).encode() + b"\r\n",
        b"event: ignored\ndata: " + json.dumps(chunk({}, "stop")).encode() + b"\n\n",
        b"data: " + json.dumps(chunk({}, choices=[], usage={"completion_tokens": 7})).encode(),
        b"\r\n\r\n",
        DONE,
    ]
    body: list[bytes | Pause] = []
    for piece in pieces:
        body += [piece, Pause(0.02)]

    requests: list[Any] = []

    def chat(request: Recorded) -> Reply:
        requests.append(request.json())
        return Reply(body=body, write_size=5, drip=0.001)

    with page_server(chat) as server:
        tab.goto(server.url)
        turn = send(tab, "Hi")
        wait_idle(tab)
        assert turn.locator(".answer").inner_text() == "Héllo wörld 🌍\n"
        expect(turn.locator(".reasoning")).to_have_text(re.compile("Reasoning\\s*Let me think."))
        expect(turn.locator(".rate")).to_have_text(re.compile(r"^\d+\.\d tokens/s$"))
        expect(turn.locator(".count")).to_have_text("7 tokens")
        expect(tab.get_by_role("status")).to_have_text("Done (stop).")
        expect(tab.locator("#model")).to_have_text("scripted")

        # Enter sends too; the conversation so far goes with the next prompt.
        tab.get_by_label("Prompt", exact=True).fill("And again")
        tab.get_by_label("Prompt", exact=True).press("Enter")
        expect(tab.locator("article.turn")).to_have_count(2)
        wait_idle(tab)
    assert requests[0] == {
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "model": "scripted",
    }
    assert requests[1]["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Héllo wörld 🌍\n"},
        {"role": "user", "content": "And again"},
    ]


def test_an_in_band_error_is_shown_with_the_text_so_far(tab: Any) -> None:
    error = {"error": {"message": "the upstream is overloaded", "type": "overloaded_error"}}
    body: list[bytes | Pause] = [*openai_chat(["partial"], usage=False, done=False)[:2]]
    body += [Pause(0.05), sse(error)]
    with page_server(lambda request: Reply(body=body)) as server:
        tab.goto(server.url)
        turn = send(tab, "Hi")
        wait_idle(tab)
    expect(turn.get_by_role("alert")).to_have_text("the upstream is overloaded")
    assert turn.locator(".answer").inner_text() == "partial"
    expect(tab.get_by_role("status")).to_have_text("Failed.")


@pytest.mark.parametrize("end", ["complete", "drop"])
def test_a_stream_cut_short_is_an_error_not_an_answer(tab: Any, end: Any) -> None:
    """A body that ends without ``[DONE]``, or a connection lost mid-stream."""
    shown = threading.Event()
    # The end comes once the page shows the text: a reset socket loses unread bytes.
    body: list[bytes | Pause | Until] = [*openai_chat(["cut"], done=False), Until(shown.is_set)]
    with page_server(lambda request: Reply(body=body, end=end)) as server:
        tab.goto(server.url)
        turn = send(tab, "Hi")
        expect(turn.locator(".answer")).to_have_text("cut")
        shown.set()
        wait_idle(tab)
    expect(turn.get_by_role("alert")).to_contain_text("before [DONE]")
    expect(turn.get_by_role("alert")).to_contain_text("the answer is cut short")
    assert turn.locator(".answer").inner_text() == "cut"


def test_new_chat_stops_the_reply_and_forgets_the_conversation(tab: Any) -> None:
    shown = threading.Event()
    requests: list[Any] = []

    def chat(request: Recorded) -> Reply:
        requests.append(request.json())
        if len(requests) == 1:  # held open until the test has seen its text
            return Reply(body=[*openai_chat(["first"], done=False)[:2], Until(shown.is_set)])
        return Reply(body=openai_chat(["second"]))

    with page_server(chat) as server:
        tab.goto(server.url)
        send(tab, "One")
        expect(tab.locator(".answer")).to_have_text("first")
        tab.get_by_role("button", name="New chat").click()
        shown.set()
        wait_idle(tab)
        expect(tab.locator("article.turn")).to_have_count(0)
        expect(tab.get_by_role("status")).to_have_text("New chat.")
        turn = send(tab, "Two")
        wait_idle(tab)
        expect(turn.locator(".answer")).to_have_text("second")
    assert requests[1]["messages"] == [{"role": "user", "content": "Two"}]


def test_an_api_key_is_sent_as_bearer_and_kept_in_memory_only(tab: Any) -> None:
    """A server started with a key serves the page but refuses the API without it."""
    model = FakeListChatModel(responses=["yes"])
    with Served(create_app(model, api_key="sk-secret")) as served:
        tab.goto(served.url)
        refused = send(tab, "Hi")
        wait_idle(tab)
        expect(refused.get_by_role("alert")).to_contain_text("HTTP 401: a valid API key")
        expect(tab.get_by_label("API key", exact=True)).to_be_visible()  # opened to ask for it

        tab.get_by_label("API key", exact=True).fill("sk-secret")
        answered = send(tab, "Hi")
        wait_idle(tab)
        expect(answered.locator(".answer")).to_have_text("yes")
        expect(answered.get_by_role("alert")).to_have_count(0)
        stored = tab.evaluate(
            "() => [localStorage.length, sessionStorage.length, document.cookie, location.href]"
        )
        assert stored == [0, 0, "", f"{served.url}/"]
        tab.reload()
        expect(tab.get_by_label("API key", exact=True)).to_have_value("")


def test_the_page_fits_a_phone_and_labels_its_controls(tab: Any) -> None:
    with page_server(lambda request: Reply(body=openai_chat(["x"]))) as server:
        tab.set_viewport_size({"width": 360, "height": 740})
        tab.goto(server.url)
        send(tab, "A long line " * 40)
        wait_idle(tab)
        assert tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        for name in ("Send", "Stop", "New chat"):
            box = tab.get_by_role("button", name=name).bounding_box()
            assert box is not None
            assert box["height"] >= 44  # a finger-sized target
        expect(tab.get_by_role("textbox", name="Prompt")).to_be_focused()
        assert tab.evaluate("document.documentElement.lang") == "en"
        # The page asked the server for nothing but itself and its API.
        assert {r.path for r in server.requests} == {"/", "/v1/models", "/v1/chat/completions"}
