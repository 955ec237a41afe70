"""What each kind of run reports in its events: the payloads of LangChain's v1 and v2.

A chain (pipeline, lambda, operator step), a text-completion model and a chat model each
put different shapes in ``data`` of their start, stream and end events; ``payloads_for``
picks the shapes of a run's type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .schema import (
    AIMessageChunk,
    GenerationChunk,
    _Aggregate,
    _GenerationSum,
    _MessageSum,
    coerce_messages,
    coerce_prompt,
)

if TYPE_CHECKING:
    from ._runs import Run

__all__ = ["Payloads", "payloads_for"]


class Payloads:
    """Event payloads of a chain (pipeline, lambda, operator step).

    A formatter sums the run's chunks as they pass (``add``) for the end event's output,
    rather than keeping them all until the end.
    """

    __slots__ = ("run", "input", "total", "add")

    def __init__(self, run: Run, input: Any) -> None:
        self.run = run
        self.input = input
        self.total = self._new_total()
        #: Adds one chunk to the total: the total's own method, one call per chunk.
        self.add: Callable[[Any], None] = self.total.add

    def _new_total(self) -> Any:
        return _Aggregate()

    def start(self) -> dict[str, Any]:
        # A step's input streams in, so LangChain reports it at the end only.
        return {"input": self.input} if self.run.is_root else {}

    def chunk(self, item: Any) -> Any:
        return item.text if type(item) is GenerationChunk else item

    def end(self) -> dict[str, Any]:
        output = self.total.result()
        return {"output": output} if self.run.is_root else {"output": output, "input": self.input}


class _LLMPayloads(Payloads):
    """Payloads of a text-completion model: LangChain's ``{"prompts": ...}`` shapes."""

    __slots__ = ()

    def _new_total(self) -> Any:
        return _GenerationSum()

    def start(self) -> dict[str, Any]:
        if self.run.is_root:
            return {"input": self.input}
        return {"input": {"prompts": [coerce_prompt(self.input)]}}

    def chunk(self, item: Any) -> Any:
        if self.run.is_root or self.run.listener.version == "v1":
            return item.text
        return item

    def end(self) -> dict[str, Any]:
        total: GenerationChunk = self.total.total()
        if self.run.is_root and self.run.listener.version == "v1":
            return {"output": total.text}
        result: dict[str, Any] = {
            "generations": [
                [
                    {
                        "text": total.text,
                        "generation_info": total.generation_info,
                        "type": "Generation",
                    }
                ]  # fmt: skip
            ],
            "llm_output": None,
        }
        if self.run.listener.version == "v1":
            result["run"] = None
        if self.run.is_root:
            return {"output": result}
        return {"output": result, "input": {"prompts": [coerce_prompt(self.input)]}}


class _ChatPayloads(Payloads):
    """Payloads of a chat model: message chunks in, the merged chunk out."""

    __slots__ = ()

    def _new_total(self) -> Any:
        return _MessageSum()

    def start(self) -> dict[str, Any]:
        if self.run.is_root:
            return {"input": self.input}
        return {"input": {"messages": [coerce_messages(self.input)]}}

    def chunk(self, item: Any) -> Any:
        return item

    def end(self) -> dict[str, Any]:
        output: AIMessageChunk = self.total.total()
        if self.run.is_root:
            return {"output": output}
        return {"output": output, "input": {"messages": [coerce_messages(self.input)]}}


_KINDS: dict[str, type[Payloads]] = {
    "llm": _LLMPayloads,
    "chat_model": _ChatPayloads,
}


def payloads_for(run: Run, input: Any) -> Payloads:
    """The payloads of ``run`` (called with ``input``), by its type."""
    return _KINDS.get(run.run_type, Payloads)(run, input)
