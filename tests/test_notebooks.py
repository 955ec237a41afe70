"""The tutorial notebooks run top to bottom without errors, and are saved ready to read.

Each notebook is executed headless in a fresh ipykernel (through nbclient), against the
embedded model, exactly as ``notebooks/execute.py`` runs them before saving (two kernels
at a time: one notebook often waits on a subprocess or a timer); the saved files are
checked for what a reader sees without running them.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED = [
    "01_streaming_basics.ipynb",
    "02_operators.ipynb",
    "03_events_and_tapping.ipynb",
    "04_providers.ipynb",
    "05_batch_and_concurrency.ipynb",
    "06_langchain.ipynb",
    "07_tracing.ipynb",
]


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notebooks_execute", NOTEBOOKS / "execute.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _draws_a_timeline(cell: Any) -> bool:
    """Whether the cell's value is a timeline figure (its last line calls ``timeline``)."""
    return cell.cell_type == "code" and cell.source.strip().splitlines()[-1].startswith("timeline(")


def _has_png(cell: Any) -> bool:
    return any("image/png" in output.get("data", {}) for output in cell.outputs)


def test_the_tutorials_are_all_there() -> None:
    assert sorted(path.name for path in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) == EXPECTED


@pytest.fixture(scope="module")
def executed() -> dict[str, Any]:
    """Every notebook run afresh, two at a time: each notebook, or the error it raised."""
    runner = _runner()

    async def run(name: str, slots: asyncio.Semaphore) -> Any:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        for cell in notebook.cells:  # what is checked is this run's output, not the saved
            if cell.cell_type == "code":
                cell.outputs = []
        async with slots:
            try:
                return await runner.aexecute(notebook)
            except Exception as error:  # CellExecutionError names the cell, its traceback
                return error

    async def run_all() -> list[Any]:
        slots = asyncio.Semaphore(2)
        return await asyncio.gather(*(run(name, slots) for name in EXPECTED))

    # Its own loop, closed at the end: nbclient's sync API leaves loops open in threads.
    return dict(zip(EXPECTED, asyncio.run(run_all()), strict=True))


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs_without_errors(executed: dict[str, Any], name: str) -> None:
    notebook = executed[name]
    if isinstance(notebook, Exception):
        raise notebook
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code)
    for cell in code:
        assert not [o for o in cell.outputs if o.output_type == "error"]
        if _draws_a_timeline(cell):
            assert _has_png(cell), cell.source
    if name == "06_langchain.ipynb":  # the LangChain chain streamed token by token
        assert "".join(o.get("text", "") for o in code[1].outputs).count("|") > 5


@pytest.mark.parametrize("name", EXPECTED)
def test_saved_notebook_reads_well_without_running(name: str) -> None:
    path = NOTEBOOKS / name
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert path.stat().st_size < 300_000  # small outputs: PNGs at a low resolution
    assert "widgets" not in notebook.metadata
    cells = notebook.cells
    assert cells[0].cell_type == "markdown"
    assert cells[0].source.startswith("# ")
    code = [cell for cell in cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    for cell in code:
        assert not cell.metadata  # no timing or collapsed-state noise
        kinds = [o.output_type for o in cell.outputs]
        assert "error" not in kinds
        assert [o for o in cell.outputs if o.get("name") == "stderr"] == []
        if _draws_a_timeline(cell):
            assert _has_png(cell), cell.source
    timelines = sum(_draws_a_timeline(cell) for cell in code)
    assert timelines >= (7 if name == "02_operators.ipynb" else 1)
