"""Run the tutorial notebooks and save them with their outputs, minus the noise.

    python notebooks/execute.py [NOTEBOOK ...]

Each notebook runs top to bottom in a fresh kernel started at the repository's root (so
the checkout's ``rxllm`` is imported), then is saved with its outputs for readers who
don't run it, without timing metadata, widget state or the empty outputs the Stop
buttons of ``display_stream`` leave behind. ``tests/test_notebooks.py`` runs them the
same way, without saving.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TIMEOUT = 300  # seconds per cell


def client(notebook: Any) -> NotebookClient:
    """The client that runs ``notebook`` in a fresh kernel started at the repository root."""
    return NotebookClient(
        notebook,
        timeout=TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT)}},
        record_timing=False,
        store_widget_state=False,
    )


def execute(notebook: Any) -> Any:
    """Run ``notebook``; raises ``CellExecutionError`` (naming the cell) if a cell fails."""
    return client(notebook).execute()


async def aexecute(notebook: Any) -> Any:
    """Async twin of ``execute``, to run several notebooks at once on one event loop."""
    return await client(notebook).async_execute()


def clean(notebook: Any) -> Any:
    """Drop what changes on every run without telling a reader anything."""
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                       "name": "python3"},
        "language_info": {"name": "python"},
    }  # fmt: skip
    for cell in notebook.cells:
        cell.metadata = {}
        if cell.cell_type != "code":
            continue
        kept: list[Any] = []
        for output in cell.outputs:
            if output.get("data") == {"text/plain": ""}:  # a Stop button, once done
                continue
            if output.output_type == "stream" and output.name == "stderr":
                continue
            if (
                output.output_type == "stream"
                and kept
                and kept[-1].output_type == "stream"
                and kept[-1].name == output.name
            ):  # printed token by token: one output, as a reader sees it
                kept[-1].text += output.text
                continue
            kept.append(output)
        cell.outputs = kept
    return notebook


def main(paths: list[str]) -> None:
    targets = [Path(p) for p in paths] or sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    for path in targets:
        print(f"running {path.name}", flush=True)
        notebook = nbformat.read(path, as_version=4)
        execute(notebook)
        nbformat.write(clean(notebook), path)


if __name__ == "__main__":
    main(sys.argv[1:])
