"""The ``rxllm`` command: stream a reply, print its events, or run a file of prompts.

::

    rxllm stream "Write me a 1 verse song about sparkling water." --sep "|"
    rxllm events "Tell me a joke" --version v1 --json
    OPENAI_API_KEY=... rxllm batch prompts.txt --model chat-openai:gpt-4o-mini --timeout 60
    rxllm serve --port 8000           # OpenAI/Anthropic/AI SDK endpoints and a chat page

``--model`` names the model: ``local`` (the default: the embedded SmolLM2-135M-Instruct,
run in-process by llama.cpp, offline), ``local:PATH`` (another GGUF file),
``openai:MODEL``, ``chat-openai:MODEL``, ``anthropic:MODEL``, ``ollama:MODEL``.

Exit status: 0 on success, 1 when the model failed (connection, API or generation
error, ``--timeout``), 2 for bad usage or input, 130 when interrupted (Ctrl-C), 141 when
the reader of the output went away (``rxllm stream ... | head``: 128 + SIGPIPE, the
status ``yes | head`` leaves, quietly). Errors are one line on stderr,
``rxllm: error: ...``, never a traceback (set ``RXLLM_DEBUG=1`` to see one for an
unexpected error).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO

from pydantic import ValidationError
from pydantic_core import to_json
from reactivex import Observable

from . import __version__, iterate
from .errors import InvalidInputError, RxLLMError
from .events import StreamEvent, observe_events
from .llms._http_model import HTTPLLM, HTTPChatModel
from .operators import total_timeout
from .runnable import Runnable
from .schema import text_of

__all__ = ["main"]

PROG = "rxllm"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: what coreutils writers end with (``yes | head``)

#: How long exiting waits for an abandoned local generation to stop (it takes one token).
SETTLE_TIMEOUT = 5.0

#: Prompts a ``batch`` runs at once unless ``--max-concurrency`` says otherwise.
DEFAULT_BATCH_CONCURRENCY = 4

#: The environment variable holding the API key ``rxllm serve`` requires (never an option:
#: a command line shows in ``ps`` and in the shell's history).
SERVE_KEY_ENV = "RXLLM_SERVE_API_KEY"

#: Seconds ``rxllm serve`` gives open streams to end when stopped.
SERVE_SHUTDOWN_GRACE = 5

#: How much of an event's data ``rxllm events`` shows on its line, in characters.
EVENT_PREVIEW = 60

_PROVIDERS = ("openai", "chat-openai", "anthropic", "ollama")
_MODEL_HELP = (
    "local (default: the embedded SmolLM2-135M-Instruct, offline), local:PATH (a GGUF "
    "file), openai:MODEL, chat-openai:MODEL, anthropic:MODEL or ollama:MODEL"
)


class UsageError(Exception):
    """Bad usage or input: reported on one line, exit status 2."""


@dataclass(frozen=True)
class ModelSpec:
    """What ``--model`` names: a provider and, after the colon, a model (or a GGUF path)."""

    provider: str
    name: str | None = None


def parse_model_spec(text: str) -> ModelSpec:
    """``local``, ``local:PATH`` or ``PROVIDER:MODEL``.

    Raises:
        argparse.ArgumentTypeError: for anything else.
    """
    provider, colon, name = text.partition(":")
    if provider == "local":
        if colon and not name:
            raise argparse.ArgumentTypeError("local: needs a GGUF file path after the colon")
        return ModelSpec("local", name or None)
    if provider in _PROVIDERS:
        if not name:
            raise argparse.ArgumentTypeError(
                f"{provider}: needs a model name, e.g. {provider}:NAME"
            )
        return ModelSpec(provider, name)
    raise argparse.ArgumentTypeError(f"unknown model {text!r}; expected {_MODEL_HELP}")


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected a number of at least {minimum}, got {value}"
            )
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text}")
    return value


def _temperature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a temperature of at least 0, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line: ``rxllm: error: ...``, exit status 2."""

    def error(self, message: str) -> NoReturn:
        hint = f" (see '{self.prog} --help')"
        self.exit(EXIT_USAGE, f"{PROG}: error: {message}{hint}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``rxllm`` argument parser."""
    model = _Parser(add_help=False)
    options = model.add_argument_group("model options")
    options.add_argument(
        "--model", "-m", type=parse_model_spec, default=ModelSpec("local"), help=_MODEL_HELP
    )
    options.add_argument("--base-url", help="the API root of an HTTP provider")
    options.add_argument("--temperature", "-t", type=_temperature, help="sampling temperature")
    options.add_argument(
        "--max-tokens", "-n", type=_whole_number(1), help="the most tokens to generate"
    )
    options.add_argument("--system", "-s", help="a system message (chat models)")
    options.add_argument("--seed", type=int, help="sampling seed (local, openai, ollama)")
    options.add_argument(
        "--max-retries",
        type=_whole_number(0),
        help="retries before the first token, for HTTP providers (default 2)",
    )
    options.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="give up on a call (each prompt's, in a batch) not finished in SECONDS",
    )
    options.add_argument(
        "--api-key",
        metavar="KEY",
        help=(
            "the HTTP provider's API key; safer in its environment variable "
            "(OPENAI_API_KEY, ANTHROPIC_API_KEY), as a command line shows in ps and in "
            "the shell's history"
        ),
    )
    options.add_argument(
        "--json", action="store_true", help="machine-readable output: one JSON object a line"
    )

    parser = _Parser(
        prog=PROG,
        description="LLM responses as reactive streams, from the command line.",
        epilog="With no --model, the embedded model runs offline (pip install 'rxllm[local]').",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    stream = commands.add_parser(
        "stream",
        parents=[model],
        help="print a reply token by token",
        description=("Print the reply to PROMPT as it is generated."),
    )
    stream.add_argument("prompt", metavar="PROMPT", help="the prompt ('-': read stdin)")
    stream.add_argument(
        "--sep", default="", help="printed after every token (--sep '|' shows the tokens)"
    )

    events = commands.add_parser(
        "events",
        parents=[model],
        help="print the events of one call, one a line",
        description=(
            "Print the astream_events-style events of one call, one a line: the event, "
            "the run's name and a preview of its data; --json prints each whole event."
        ),
    )
    events.add_argument("prompt", metavar="PROMPT", help="the prompt ('-': read stdin)")
    events.add_argument(
        "--version", choices=("v1", "v2"), default="v2", help="the event schema (default v2)"
    )

    batch = commands.add_parser(
        "batch",
        parents=[model],
        help="run many prompts, one a line of FILE",
        description=(
            "Run every non-blank line of FILE as a prompt and print the replies in order; "
            "progress goes to stderr."
        ),
    )
    batch.add_argument("file", metavar="FILE", help="prompts, one a line ('-': read stdin)")
    batch.add_argument(
        "--max-concurrency",
        "-c",
        type=_whole_number(1),
        default=DEFAULT_BATCH_CONCURRENCY,
        help=f"prompts run at once (default {DEFAULT_BATCH_CONCURRENCY})",
    )
    batch.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run on the Dask cluster whose scheduler is at ADDRESS, or on N local worker "
        "processes started for this batch with 'local:N' (needs rxllm[dask])",
    )
    serve = commands.add_parser(
        "serve",
        parents=[model],
        help="serve the model over HTTP: OpenAI, Anthropic and AI SDK endpoints, a chat page",
        description=(
            "Serve the model as OpenAI (/v1/chat/completions, /v1/completions, "
            "/v1/responses), Anthropic (/v1/messages) and AI SDK (/api/chat) endpoints, "
            f"with a chat page at /. Set {SERVE_KEY_ENV} to require that API key on every "
            "route but / and /health (Authorization: Bearer KEY or x-api-key: KEY); it is "
            "read from the environment only, never from the command line. Without it, "
            "only a loopback address is served."
        ),
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="the address to bind (default 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=_whole_number(0), default=8000, help="the port to bind (default 8000)"
    )
    serve.add_argument(
        "--resume-window",
        type=_seconds,
        metavar="SECONDS",
        help=(
            "keep a stream running SECONDS after its client leaves, to be resumed with "
            "Last-Event-ID (default: off, a client that leaves cancels the call)"
        ),
    )
    serve.add_argument(
        "--max-concurrency",
        type=_whole_number(1),
        default=None,
        help="calls running at once; past it, 429 with Retry-After (default 64)",
    )
    return parser


def build_model(args: argparse.Namespace) -> Runnable[Any, Any, Any]:
    """The model ``--model`` and its options describe.

    The default, ``local``, is ``ChatLlamaCpp``: SmolLM2-135M-Instruct is tuned for chat,
    and through its chat template it follows an instruction ("Write me a song...") where
    plain completion would only continue the text; ``--system`` works with it too.

    Raises:
        UsageError: for an option the model can't take.
    """
    spec: ModelSpec = args.model
    common: dict[str, Any] = {}
    if args.temperature is not None:
        common["temperature"] = args.temperature
    if args.max_tokens is not None:
        common["max_tokens"] = args.max_tokens

    if spec.provider == "local":
        http_only = {
            "--base-url": args.base_url,
            "--api-key": args.api_key,
            "--max-retries": args.max_retries,
        }
        for option, value in http_only.items():
            if value is not None:
                raise UsageError(f"{option} is for HTTP providers, not the local model")
        from .llms import ChatLlamaCpp

        local = ChatLlamaCpp(model_path=spec.name, seed=args.seed, **common)
        # Loaded now, before anything else runs: llama.cpp keeps its loading logs quiet
        # by pointing the whole process's stdout and stderr at /dev/null while it loads,
        # so a load on a worker thread would swallow what is printed meanwhile (a
        # --timeout error that fired during it, serve's log lines). --timeout bounds the
        # call, not the load.
        local.load()
        return local

    if args.base_url is not None:
        common["base_url"] = args.base_url
    if args.max_retries is not None:
        common["max_retries"] = args.max_retries
    if args.api_key is not None:
        common["api_key"] = args.api_key
    model = _http_model(spec, args, common)
    try:
        model._check_ready()
    except InvalidInputError:
        raise UsageError(
            f"{spec.provider}:{spec.name} needs an API key: set {model._api_key_env} "
            "(or pass --api-key, which other users of this machine can see in ps)"
        ) from None
    return model


def _http_model(
    spec: ModelSpec, args: argparse.Namespace, common: dict[str, Any]
) -> HTTPLLM | HTTPChatModel:
    """The HTTP provider's model ``--model`` names."""
    if spec.provider == "openai":
        from .llms import OpenAI

        if args.system is not None:
            raise UsageError("--system needs a chat model: try chat-openai:MODEL")
        if args.seed is not None:
            common["model_kwargs"] = {"seed": args.seed}
        return OpenAI(model=spec.name, **common)
    if spec.provider == "chat-openai":
        from .llms import ChatOpenAI

        if args.seed is not None:
            common["model_kwargs"] = {"seed": args.seed}
        return ChatOpenAI(model=spec.name, **common)
    if spec.provider == "anthropic":
        from .llms import ChatAnthropic

        if args.seed is not None:
            raise UsageError("--seed is not supported by anthropic")
        return ChatAnthropic(model=spec.name, **common)
    from .llms import ChatOllama

    if args.seed is not None:
        common["model_kwargs"] = {"options": {"seed": args.seed}}
    return ChatOllama(model=spec.name, **common)


def model_input(model: Runnable[Any, Any, Any], prompt: str, system: str | None) -> Any:
    """What the model is called with: the prompt, after the system message if any."""
    if system is None:
        return prompt
    return [("system", system), ("human", prompt)]


def shown(item: Any) -> str:
    """The text of a chunk or a final output; anything else (a parsed object, an event's
    data) as ``str`` shows it."""
    try:
        return text_of(item)
    except InvalidInputError:
        return str(item)


def _dumps(value: Any) -> str:
    """One line of JSON: pydantic models as their fields, anything else unknown as text."""
    return to_json(value, fallback=str).decode()


def _close(iterator: Iterator[Any]) -> None:
    """Close a bridge's iterator: leaving early cancels the call."""
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def _read_prompt(prompt: str) -> str:
    if prompt == "-":
        return sys.stdin.read()
    return prompt


# -- the commands -----------------------------------------------------------------


def _deadline(args: argparse.Namespace) -> Callable[[Observable[Any]], Observable[Any]]:
    """What ``--timeout`` does to a call's stream: fail it when time is up (or nothing).

    One operator for every model, local or HTTP, so the limit means the same for all:
    the whole call, retries included.
    """
    if args.timeout is None:
        return lambda stream: stream
    return total_timeout(args.timeout)


def run_stream(args: argparse.Namespace, model: Runnable[Any, Any, Any], out: TextIO) -> int:
    """``rxllm stream``: each token as it arrives, followed by ``--sep``."""
    call = model.observe(model_input(model, _read_prompt(args.prompt), args.system))
    chunks: Iterator[Any] = iterate(call.pipe(_deadline(args)))
    ended_line = True
    try:
        for chunk in chunks:
            text = shown(chunk)
            if args.json:
                out.write(_dumps({"text": text, "chunk": chunk}) + "\n")
            else:
                if not text:
                    continue  # a chunk with only metadata (finish reason, usage)
                out.write(text + args.sep)
                ended_line = (text + args.sep).endswith("\n")
            out.flush()
    finally:
        _close(chunks)
        if not ended_line:
            out.write("\n")
            out.flush()
    return EXIT_OK


def describe_event(event: StreamEvent) -> str:
    """One event on one line: what happened, to which run, and a preview of its data.

    Examples:
        >>> describe_event({"event": "on_llm_stream", "name": "OpenAI", "data": {"chunk": "Hi"}})
        "on_llm_stream         OpenAI  chunk='Hi'"
    """
    data = event.get("data") or {}
    previews = []
    for key, value in data.items():
        preview = repr(shown(value))
        if len(preview) > EVENT_PREVIEW:
            preview = preview[: EVENT_PREVIEW - 1] + "\u2026"
        previews.append(f"{key}={preview}")
    return "  ".join([f"{event['event']:<20}", event["name"], *previews]).rstrip()


def run_events(args: argparse.Namespace, model: Runnable[Any, Any, Any], out: TextIO) -> int:
    """``rxllm events``: one line an event (``describe_event``), or its JSON with ``--json``."""
    prompt = model_input(model, _read_prompt(args.prompt), args.system)
    call = model.observe(prompt).pipe(_deadline(args))
    events: Iterator[StreamEvent] = iterate(observe_events(call, args.version))
    try:
        for event in events:
            out.write((_dumps(event) if args.json else describe_event(event)) + "\n")
            out.flush()
    finally:
        _close(events)
    return EXIT_OK


class Progress:
    """A plain-text progress bar on a stream: redrawn in place on a terminal, else one
    line per update."""

    WIDTH = 24

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.started = time.monotonic()
        self.done = 0
        self.failed = 0
        self.live = stream.isatty()

    def render(self) -> str:
        filled = self.WIDTH * self.done // self.total if self.total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        failed = f", {self.failed} failed" if self.failed else ""
        elapsed = time.monotonic() - self.started
        return f"{PROG}: [{bar}] {self.done}/{self.total} prompts{failed} {elapsed:.1f}s"

    def update(self, failed: bool = False) -> None:
        self.done += 1
        self.failed += failed
        if self.live:
            end = "\n" if self.done == self.total else ""
            self.stream.write(f"\r{self.render()}{end}")
        else:
            self.stream.write(self.render() + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End a half-drawn bar's line, so what follows starts on a fresh one."""
        if self.live and self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()


def _read_prompts(path: str) -> list[str]:
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as file:
                text = file.read()
    except OSError as exc:
        raise UsageError(f"can't read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text: {exc.reason}") from None
    prompts = [line.strip() for line in text.splitlines() if line.strip()]
    if not prompts:
        raise UsageError(f"no prompts in {path}: expected one a line")
    return prompts


def run_batch(
    args: argparse.Namespace, model: Runnable[Any, Any, Any], out: TextIO, err: TextIO
) -> int:
    """``rxllm batch``: every prompt of the file, replies printed in the file's order.

    Replies are printed as soon as every earlier one is, while the others still run;
    a failed prompt reports its error in its place and makes the exit status 1.
    """
    prompts = _read_prompts(args.file)
    progress = Progress(len(prompts), err)
    finished: dict[int, Any] = {}
    next_index = 0
    runnable = model if args.timeout is None else model.pipe(_deadline(args))
    inputs = [model_input(model, prompt, args.system) for prompt in prompts]
    config = {"max_concurrency": args.max_concurrency}
    cluster = contextlib.ExitStack()
    if args.dask is None:
        results = runnable.batch_as_completed(inputs, config, return_exceptions=True)
    else:
        results = _on_dask(args.dask, runnable, inputs, config, cluster)
    try:
        for index, result in results:
            finished[index] = result
            progress.update(failed=isinstance(result, Exception))
            while next_index in finished:
                _print_result(next_index, prompts, finished.pop(next_index), args.json, out)
                next_index += 1
    finally:
        _close(results)
        cluster.close()
        progress.close()
    return EXIT_FAILED if progress.failed else EXIT_OK


def _on_dask(
    address: str,
    runnable: Runnable[Any, Any, Any],
    inputs: list[Any],
    config: dict[str, Any],
    cluster: contextlib.ExitStack,
) -> Iterator[tuple[int, Any]]:
    """``batch_as_completed`` on a Dask cluster; a ``local:N`` one lives in ``cluster``."""
    try:
        from . import distributed as on_dask
    except ImportError as error:
        raise UsageError(str(error)) from None
    if address.startswith("local:"):
        workers = address.removeprefix("local:")
        if not workers.isdigit() or int(workers) < 1:
            raise UsageError(f"--dask local:N needs a whole number of workers, not {workers!r}")
        from distributed import LocalCluster

        local = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=int(workers), threads_per_worker=1, dashboard_address=None, host="127.0.0.1"
        )
        address = cluster.enter_context(local).scheduler_address
    return on_dask.batch_as_completed(
        runnable, inputs, config, client=address, return_exceptions=True
    )


def _print_result(
    index: int, prompts: Sequence[str], result: Any, as_json: bool, out: TextIO
) -> None:
    prompt = prompts[index]
    if as_json:
        record: dict[str, Any] = {"index": index, "prompt": prompt}
        if isinstance(result, Exception):
            record["error"] = _describe(result)
        else:
            record["output"] = shown(result)
        out.write(_dumps(record) + "\n")
    else:
        body = (
            f"{PROG}: error: {_describe(result)}"
            if isinstance(result, Exception)
            else shown(result)
        )
        out.write(f"[{index + 1}/{len(prompts)}] {prompt}\n{body.rstrip()}\n\n")
    out.flush()


# -- the entry point --------------------------------------------------------------


def _settle(model: Runnable[Any, Any, Any]) -> None:
    """Let a generation that was left early (Ctrl-C, a closed pipe) finish closing.

    The in-process model stops within one token, on rxllm's worker pool; exiting
    before that would shut the pool down under it.
    """
    wait_idle = getattr(model, "wait_idle", None)
    if wait_idle is not None:
        wait_idle(SETTLE_TIMEOUT)


def _describe(error: BaseException) -> str:
    """An error on one line: what it is and what it says."""
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'input'}: {problem['msg']}"
            for problem in error.errors()
        )
        return f"invalid model options: {problems}"
    message = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, RxLLMError | ImportError):
        return message
    return f"{type(error).__name__}: {message}"


def _fail(err: TextIO, error: BaseException | str, status: int) -> int:
    message = error if isinstance(error, str) else _describe(error)
    err.write(f"{PROG}: error: {message}\n")
    err.flush()
    return status


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any address
        return False


def check_serve(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    """The API key ``rxllm serve`` requires, from the environment, after checking its
    options.

    Raises:
        UsageError: for an option that does not apply, or a non-loopback address
            without a key.
    """
    for option, given in (("--system", args.system is not None), ("--json", args.json)):
        if given:
            raise UsageError(f"{option} is not an option of serve: clients send their own")
    key = environ.get(SERVE_KEY_ENV) or None
    if key is None and not _is_loopback(args.host):
        raise UsageError(
            f"serving on {args.host}, beyond this machine, needs an API key: set "
            f"{SERVE_KEY_ENV} (clients send it as Authorization: Bearer KEY)"
        )
    return key


def run_serve(
    args: argparse.Namespace, model: Runnable[Any, Any, Any], key: str | None, err: TextIO
) -> int:
    """``rxllm serve``: the model under uvicorn until Ctrl-C (or SIGTERM)."""
    try:
        import uvicorn

        from .serve import create_app
    except ImportError as exc:
        raise ImportError(f"rxllm serve needs `pip install 'rxllm[serve]'` ({exc})") from exc

    served: Runnable[Any, Any, Any] = model
    if args.timeout is not None:
        served = model.pipe(_deadline(args))
    options: dict[str, Any] = {"api_key": key, "resume_window": args.resume_window}
    if args.max_concurrency is not None:
        options["max_concurrency"] = args.max_concurrency
    app = create_app(served, model_name=_served_name(args), **options)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    try:
        # Bound here, not by uvicorn, so that a taken port is one line and status 1.
        sock = listen(args.host, args.port, family)
    except OSError as exc:
        err.write(f"{PROG}: error: can't listen on {args.host}:{args.port}: "
                  f"{exc.strerror or exc}\n")  # fmt: skip
        return EXIT_FAILED
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    guard = "API key required" if key else f"no API key: set {SERVE_KEY_ENV} to require one"
    err.write(f"{PROG}: serving {model.get_name()} on http://{shown}:{port} ({guard})\n")
    err.flush()
    config = uvicorn.Config(
        app,
        log_level="warning",
        ws="none",
        lifespan="on",
        # Streams still open at Ctrl-C get this long to end, then are cancelled (and with
        # them their model calls), so a long generation does not hold the exit.
        timeout_graceful_shutdown=SERVE_SHUTDOWN_GRACE,
    )
    server = uvicorn.Server(config)
    with sock:
        server.run(sockets=[sock])
    return EXIT_OK if server.started else EXIT_FAILED


def listen(host: str, port: int, family: socket.AddressFamily) -> socket.socket:
    """A listening TCP socket for uvicorn.

    Made with ``IPPROTO_TCP`` as its protocol, not ``socket.create_server``'s 0: asyncio
    sets ``TCP_NODELAY`` only on connections whose socket says TCP, and without it a
    response's headers and body, two small writes, wait for the client's delayed ACK
    (measured: 44 ms for every ``/health``, under 1 ms with it).
    """
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as create_server does
        sock.bind((host, port))
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


def _served_name(args: argparse.Namespace) -> str:
    """The model name the server answers to: the one ``--model`` gives, else ``local``."""
    spec: ModelSpec = args.model
    return spec.name if spec.provider != "local" and spec.name else "local"


_COMMANDS: dict[str, Callable[..., int]] = {
    "stream": run_stream,
    "events": run_events,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rxllm`` command; returns the exit status.

    Args:
        argv: the arguments, without the program name; ``sys.argv[1:]`` when ``None``.
    """
    out, err = sys.stdout, sys.stderr
    args = build_parser().parse_args(argv)
    try:
        # Checked before the model is made: a refused address should not wait for it.
        key = check_serve(args, os.environ) if args.command == "serve" else None
        model = build_model(args)
        try:
            if args.command == "batch":
                return run_batch(args, model, out, err)
            if args.command == "serve":
                return run_serve(args, model, key, err)
            return _COMMANDS[args.command](args, model, out)
        finally:
            _settle(model)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``rxllm stream ... | head``): stop quietly, with the
        # status a writer killed by SIGPIPE has, and keep Python from complaining again
        # when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_CLOSED_PIPE
    except (UsageError, InvalidInputError, ValidationError) as exc:
        return _fail(err, exc if not isinstance(exc, UsageError) else str(exc), EXIT_USAGE)
    except (RxLLMError, ImportError, OSError) as exc:
        return _fail(err, exc, EXIT_FAILED)
    except Exception as exc:
        if os.environ.get("RXLLM_DEBUG"):
            raise
        return _fail(err, f"{_describe(exc)} (set RXLLM_DEBUG=1 for a traceback)", EXIT_FAILED)
