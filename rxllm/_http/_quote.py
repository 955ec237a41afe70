"""How much of a server's offending text an error quotes.

Enough to see what went wrong, without copying a multi-megabyte payload into a
traceback or a log.
"""

from __future__ import annotations

__all__ = ["MAX_QUOTE", "start_of"]

#: The most characters (or bytes) of an offending line or body an error message quotes.
MAX_QUOTE = 500


def start_of(pieces: list[bytes]) -> bytes:
    """The first bytes of a line held in pieces, enough to quote, without joining them."""
    start = b""
    for piece in pieces:
        start += piece[:MAX_QUOTE]
        if len(start) >= MAX_QUOTE:
            break
    return start
