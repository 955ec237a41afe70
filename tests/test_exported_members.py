"""``__all__`` is honest: every public module exports what it lists, and only that."""

from __future__ import annotations

import importlib
from typing import TypeVar

import pytest

PUBLIC = [
    "rxllm",
    "rxllm.schema",
    "rxllm.errors",
    "rxllm.config",
    "rxllm.runnable",
    "rxllm.llms",
    "rxllm.testing",
    "rxllm.events",
    "rxllm.operators",
    "rxllm.notebook",
    "rxllm.serve",
    "rxllm.langchain",
    "rxllm.tracing",
    "rxllm.distributed",
]


@pytest.mark.parametrize("name", PUBLIC)
def test_all_is_honest(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), "duplicates in __all__"
    for member in exported:
        assert hasattr(module, member), f"{name}.{member} is listed but missing"
    # Public names defined here, or re-exported from this package's private modules.
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and not isinstance(v, TypeVar)
        and (
            getattr(v, "__module__", None) == name
            or getattr(v, "__module__", "").startswith(f"{name}._")
        )
    }
    assert public <= exported, f"{name} exports undeclared {public - exported}"


def test_top_level_reexports_the_public_api() -> None:
    import rxllm

    for member in ("Runnable", "RunnableLambda", "Pipeline", "GenerationChunk", "RunConfig",
                   "RxLLMError", "InvalidInputError", "AIMessageChunk"):  # fmt: skip
        assert member in rxllm.__all__


def test_top_level_reexports_every_error() -> None:
    import rxllm
    import rxllm.errors

    errors = {n for n in rxllm.errors.__all__ if n.endswith("Error")}
    assert errors
    assert errors <= set(rxllm.__all__), errors - set(rxllm.__all__)
