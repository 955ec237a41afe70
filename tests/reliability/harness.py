"""One call, consumed every way a user can: the modes of the reliability matrix.

``run(model, input, mode)`` makes one call through ``observe`` (subscribe, then dispose
once it has ended), ``stream``, ``astream``, ``astream_events`` (v2), ``batch`` or
``abatch`` (one input, ``return_exceptions=True``), and reports what the consumer got:
the text of the chunks it saw (for the batch modes, the final output's text, or the
error's ``.partial``) and the error it ended with. Async modes run on a loop of their
own and close the model's client for that loop before it ends, as an application
using ``asyncio.run`` per job would (``async with model``).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

from rxllm.llms._http_model import HTTPModel

__all__ = ["ALL_MODES", "Result", "run", "text_of"]

ALL_MODES = ["observe", "stream", "astream", "astream_events", "batch", "abatch"]
STREAMING_MODES = ["observe", "stream", "astream", "astream_events"]


def text_of(item: Any) -> str:
    """The text of a chunk, a message or a str."""
    if isinstance(item, str):
        return item
    text = getattr(item, "text", None)
    if isinstance(text, str) and not hasattr(item, "content"):
        return text
    content = getattr(item, "content", "")
    return content if isinstance(content, str) else ""


@dataclass
class Result:
    """What the consumer of one call got."""

    pieces: list[str] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def run(model: HTTPModel, input: Any, mode: str, *, limit: int | None = None) -> Result:
    """Consume one call of ``model`` through ``mode``; stop after ``limit`` chunks."""
    if mode == "observe":
        return _observe(model, input, limit)
    if mode == "stream":
        return _stream(model, input, limit)
    if mode == "batch":
        return _batch(model.batch([input], return_exceptions=True)[0])  # type: ignore[attr-defined]
    result = Result()

    async def main() -> None:
        async with model:
            await _async(model, input, mode, limit, result)

    asyncio.run(main())
    return result


def _batch(output: Any) -> Result:
    if isinstance(output, BaseException):
        partial = getattr(output, "partial", None)
        return Result([partial] if partial else [], output)
    return Result([text_of(output)])


def _observe(model: HTTPModel, input: Any, limit: int | None) -> Result:
    result = Result()
    ended = threading.Event()

    def on_next(item: Any) -> None:
        if not ended.is_set():
            result.pieces.append(text_of(item))
            if limit is not None and len(result.pieces) >= limit:
                ended.set()

    def on_error(error: Exception) -> None:
        result.error = error
        ended.set()

    subscription = model.observe(input).subscribe(  # type: ignore[attr-defined]
        on_next, on_error, ended.set
    )
    try:
        if not ended.wait(30):
            raise AssertionError("observe: no terminal notification within 30 s")
    finally:
        subscription.dispose()
    return result


def _stream(model: HTTPModel, input: Any, limit: int | None) -> Result:
    result = Result()
    stream = model.stream(input)  # type: ignore[attr-defined]
    try:
        for item in stream:
            result.pieces.append(text_of(item))
            if limit is not None and len(result.pieces) >= limit:
                break
    except Exception as exc:
        result.error = exc
    finally:
        stream.close()
    return result


async def _async(
    model: HTTPModel, input: Any, mode: str, limit: int | None, result: Result
) -> None:
    if mode == "abatch":
        outputs = await model.abatch([input], return_exceptions=True)  # type: ignore[attr-defined]
        done = _batch(outputs[0])
        result.pieces, result.error = done.pieces, done.error
        return
    if mode == "astream":
        stream = model.astream(input)  # type: ignore[attr-defined]
    elif mode == "astream_events":
        stream = model.astream_events(input, version="v2")  # type: ignore[attr-defined]
    else:
        raise ValueError(f"unknown mode {mode!r}")
    try:
        async for item in stream:
            if mode == "astream_events":
                if not item["event"].endswith("_stream"):
                    continue
                item = item["data"]["chunk"]
            result.pieces.append(text_of(item))
            if limit is not None and len(result.pieces) >= limit:
                break
    except Exception as exc:
        result.error = exc
    finally:
        await stream.aclose()
