"""How much of a server's offending text an error quotes.

Enough to see what went wrong, without copying a multi-megabyte payload into a
traceback or a log.
"""

from __future__ import annotations

from ..errors import ProtocolError

__all__ = ["MAX_QUOTE", "SHAPE_ERRORS", "decode_lines", "misshapen", "start_of"]

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


def decode_lines(block: bytes, stream: str) -> str:
    """Complete lines of a ``stream`` (``"event stream"``, ``"NDJSON stream"``) decoded
    as UTF-8; invalid UTF-8 is a ``ProtocolError`` quoting the line that holds it."""
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = block.rfind(b"\n", 0, exc.start) + 1
        stop = block.find(b"\n", exc.start)
        line = block[start : stop if stop >= 0 else len(block)]
        raise ProtocolError(
            f"invalid UTF-8 in {stream}", line=line.decode("utf-8", "replace")[:MAX_QUOTE]
        ) from None
