"""The layers of rxllm, written down once, and every import checked against them.

A module belongs to the layer of the longest name below that starts it. A layer may
import its own modules and those of the layers it lists; every other arrow is a
failure, reported with file and line. A new module fails until it is given a layer.

    types        errors, config, schema, the dependency internals: no machinery
    runtime      event loops, flow control, the pump and the bridges
    transport    HTTP: frames, error mapping, the stream policy (types only)
    core         Runnable, runs and their events, pipeline steps
    operators    rxllm.operators: no provider, no HTTP
    providers    rxllm.llms: the models, over the transport (their deadlines are operators)
    faces        the package itself, the CLI, notebooks, test helpers
    extensions   serve, langchain, distributed, tracing: on the public API only

Extensions import public modules only (no ``_`` in the name after ``rxllm``), save the
hook points named in ``HOOKS``; nothing below the faces imports an extension.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rxllm"

LAYERS = {
    "rxllm.errors": "types",
    "rxllm.config": "types",
    "rxllm.schema": "types",
    "rxllm._constants": "types",
    "rxllm._internals": "types",
    "rxllm._runtime": "runtime",
    "rxllm._http": "transport",
    "rxllm.runnable": "core",
    "rxllm._runs": "core",
    "rxllm._payloads": "core",
    "rxllm._steps": "core",
    "rxllm._race": "core",
    "rxllm.events": "core",
    "rxllm.operators": "operators",
    "rxllm.llms": "providers",
    "rxllm": "faces",
    "rxllm.__main__": "faces",
    "rxllm.cli": "faces",
    "rxllm.notebook": "faces",
    "rxllm.testing": "faces",
    "rxllm.serve": "extensions",
    "rxllm.langchain": "extensions",
    "rxllm.distributed": "extensions",
    "rxllm.tracing": "extensions",
}

MAY_IMPORT = {
    "types": set(),
    "runtime": {"types"},
    "transport": {"types"},
    "core": {"types", "runtime"},
    "operators": {"types", "runtime", "core"},
    "providers": {"types", "runtime", "transport", "core", "operators"},
    "faces": {"types", "runtime", "transport", "core", "operators", "providers", "extensions"},
    "extensions": {"types", "runtime", "transport", "core", "operators", "providers", "faces"},
}

#: The private modules an extension may import, and why.
HOOKS = {
    ("rxllm.tracing", "rxllm._runs"): "run_hook: how tracing sees every run",
    ("rxllm.distributed", "rxllm._steps"): "operator_name: the step that does not pickle",
    ("rxllm.distributed", "rxllm._constants"): "CLOSE_TIMEOUT: a worker closes as locally",
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        layer = LAYERS.get(".".join(parts[:end]))
        if layer is not None:
            return layer
    raise AssertionError(f"{module} has no layer: add it to LAYERS in {__file__}")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """Every rxllm module ``path`` imports, anywhere in it, with its line."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from . import x`` may name a module: count the module it names.
            found += [
                (node.lineno, f"{target}.{alias.name}" if _is_module(f"{target}.{alias.name}")
                 else target)
                for alias in node.names
            ]  # fmt: skip
    return [(line, target) for line, target in found if target.split(".")[0] == "rxllm"]


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative).is_dir()


def _is_private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split(".")[1:])


SOURCES = sorted(PACKAGE.rglob("*.py"))


def violations(importer: str, targets: list[tuple[int, str]]) -> list[str]:
    """The arrows from ``importer`` to ``targets`` (line, module) the layers forbid."""
    layer = layer_of(importer)
    top = ".".join(importer.split(".")[:2])
    wrong = []
    for line, target in targets:
        target_layer = layer_of(target)
        if target_layer != layer and target_layer not in MAY_IMPORT[layer]:
            wrong.append(f"{importer}:{line}: {layer} imports {target_layer} {target}")
        elif (
            layer == "extensions"
            and not target.startswith(top)
            and _is_private(target)
            and (top, target) not in HOOKS
        ):
            wrong.append(f"{importer}:{line}: an extension imports private {target}")
    return wrong


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_imports_follow_the_layers(path: Path) -> None:
    wrong = violations(module_name(path), imports(path))
    assert not wrong, "\n".join(wrong)


def test_every_layer_is_named_and_used() -> None:
    assert set(LAYERS.values()) == set(MAY_IMPORT)
    used = {layer_of(module_name(path)) for path in SOURCES}
    assert used == set(MAY_IMPORT)


def test_forbidden_arrows_are_caught() -> None:
    assert violations("rxllm._http._sse", [(3, "rxllm.runnable")]) == [
        "rxllm._http._sse:3: transport imports core rxllm.runnable"
    ]
    assert violations("rxllm.schema", [(1, "rxllm._runtime._bridge")]) != []
    assert violations("rxllm.operators._json", [(1, "rxllm.llms._openai")]) != []
    assert violations("rxllm.runnable", [(1, "rxllm.serve")]) != []
    assert violations("rxllm.serve._app", [(1, "rxllm._runs")]) == [
        "rxllm.serve._app:1: an extension imports private rxllm._runs"
    ]
    assert violations("rxllm.serve._app", [(1, "rxllm.serve._sse"), (2, "rxllm.runnable")]) == []
    assert violations("rxllm.tracing", [(1, "rxllm._runs")]) == []
    with pytest.raises(AssertionError, match="has no layer"):
        layer_of("elsewhere.module")
