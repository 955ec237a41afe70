"""The longest text a regular expression can match, from ``re``'s private parser.

``stop_on`` holds back as much text as a match may span. The standard library says
that length only through ``re._parser`` (what ``re`` compiles with; its public alias
``sre_parse`` warns as deprecated since 3.11), so this is the one place that uses it,
and ``tests/operators/test_guards.py`` fails loudly if a Python release changes it.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

__all__ = ["longest_match"]


def longest_match(pattern: re.Pattern[str]) -> int | None:
    """The most characters one match of ``pattern`` can span; ``None`` if unbounded."""
    parser: Any = importlib.import_module("re._parser")
    width: int = parser.parse(pattern.pattern, pattern.flags).getwidth()[1]
    return None if width >= parser.MAXREPEAT else width
