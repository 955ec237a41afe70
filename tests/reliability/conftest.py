"""Fixtures for the reliability suite: the scripted server, fast retries, a leak check.

``server`` is every suite's (``tests/conftest.py``), ``fast_retries`` the provider
tests' own (``tests/llms/conftest.py``); ``leaks`` is ``rxllm.testing.LeakTracker``,
started before the test body runs.
"""

from __future__ import annotations

import pytest

from rxllm.testing import LeakTracker
from tests.llms.conftest import fast_retries

__all__ = ["fast_retries", "leaks"]


@pytest.fixture
def leaks() -> LeakTracker:
    """A started tracker: call ``leaks.check()`` (or ``await leaks.acheck()``) at the end."""
    return LeakTracker().start()
