"""Helpers the benchmarks in bench/ share: the watchdog, the markdown table, the
packages' versions and writing the report."""

from __future__ import annotations

import faulthandler
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


@contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Dump every thread's stack and exit if the block takes longer than ``seconds``.

    A stuck stream (a lost wake-up, a deadlock) then fails the run instead of hanging it.
    """
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def fmt(value: float) -> str:
    if abs(value) < 1:
        return f"{value:.3f}"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.1f}"


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(cells[i]) for cells in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), rule, *(line(cells) for cells in body)])


def versions(names: list[str]) -> str:
    """``"name 1.2.3, other (not installed)"`` for each package of ``names``."""
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def publish(text: str, output: Path) -> None:
    """Print the report and write it to ``output``."""
    print(text)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"written to {output}", file=sys.stderr)
