"""How much of a server's offending text an error quotes.

Enough to see what went wrong, without copying a multi-megabyte payload into a
traceback or a log.
"""

from __future__ import annotations

from ..errors import ProtocolError

__all__ = ["MAX_QUOTE", "SHAPE_ERRORS", "misshapen", "start_of"]

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


#: What a translator raises on JSON that parsed but is not shaped as its API documents
#: (a string where an object belongs): caught around it, rather than checked at every
#: field, so well-formed events cost nothing extra.
SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError)


def misshapen(data: str) -> ProtocolError:
    """The error for an event whose JSON is valid but not shaped as the API documents."""
    return ProtocolError(
        "an event's JSON is not shaped as the provider's API documents it",
        line=data[:MAX_QUOTE],
    )
