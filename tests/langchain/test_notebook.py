"""``notebooks/langchain.ipynb`` runs top to bottom and is saved ready to read.

It is run as ``tests/test_notebooks.py`` runs the numbered tutorials (with
``notebooks/execute.py``), apart from them: that test's list of tutorials is theirs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import nbformat

from tests.test_notebooks import _draws_a_timeline, _has_png, _runner

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "langchain.ipynb"


def test_the_notebook_runs_without_errors() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    executed = asyncio.run(_runner().aexecute(notebook))
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    for cell in code:
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
        assert [o for o in cell.outputs if o.get("name") == "stderr"] == [], cell.source
    printed = "".join(o.get("text", "") for o in code[1].outputs)
    assert printed.count("|") > 5  # the chain streamed token by token
    assert _has_png(code[-1])


def test_the_saved_notebook_reads_well_without_running() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert NOTEBOOK.stat().st_size < 300_000
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    for cell in code:
        assert not cell.metadata
        assert "error" not in [o.output_type for o in cell.outputs]
    assert sum(_draws_a_timeline(cell) for cell in code) == 1
    assert all(_has_png(cell) for cell in code if _draws_a_timeline(cell))
