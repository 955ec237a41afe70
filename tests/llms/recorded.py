"""Provider streams as real servers sent them, for the conformance tests.

Each file under ``tests/llms/recorded/<provider>/`` is one response body, byte for
byte as it goes over the wire: server-sent events (``.sse``) for ``openai`` and
``anthropic``, newline-delimited JSON (``.ndjson``) for ``ollama``. They come from the
official SDKs' test suites, other public test suites and the providers' API references;
``recorded/SOURCES.md`` says where each one came from, how it was turned into wire bytes
and which are constructed from the docs rather than recorded. A conformance test serves
these bytes from a local server and compares what rxllm assembles with what the official
SDK assembles from the same bytes.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["RECORDED", "recorded", "recorded_names", "recorded_path"]

RECORDED = Path(__file__).resolve().with_name("recorded")
"""The directory holding one subdirectory of recorded streams per provider."""

_EXTENSIONS = (".sse", ".ndjson")


def _provider_dir(provider: str) -> Path:
    directory = RECORDED / provider
    if not provider or "/" in provider or not directory.is_dir():
        known = sorted(p.name for p in RECORDED.iterdir() if p.is_dir())
        raise LookupError(f"no recorded streams for provider {provider!r}; known: {known}")
    return directory


def recorded_names(provider: str) -> list[str]:
    """Names of a provider's recorded streams (file names without extension), sorted.

    Raises:
        LookupError: there is no directory of recordings for ``provider``.
    """
    directory = _provider_dir(provider)
    return sorted(p.stem for p in directory.iterdir() if p.suffix in _EXTENSIONS)


def recorded_path(provider: str, name: str) -> Path:
    """The file holding one recorded stream.

    Args:
        provider: ``"openai"``, ``"anthropic"`` or ``"ollama"``.
        name: one of ``recorded_names(provider)``, e.g. ``"chat_text_usage"``.

    Raises:
        LookupError: no such provider or no such recording.
    """
    directory = _provider_dir(provider)
    for extension in _EXTENSIONS:
        path = directory / f"{name}{extension}"
        if "/" not in name and path.is_file():
            return path
    raise LookupError(
        f"no recorded stream {name!r} for {provider}; known: {recorded_names(provider)}"
    )


def recorded(provider: str, name: str) -> bytes:
    """The exact bytes of one recorded response body.

    Example:
        >>> recorded("openai", "chat_text_usage").endswith(b"data: [DONE]\\n\\n")
        True

    Raises:
        LookupError: no such provider or no such recording.
    """
    return recorded_path(provider, name).read_bytes()
