"""Defaults shared across rxllm, in one place so they are easy to find and to tune."""

from __future__ import annotations

#: A bridge holds at most this many undelivered items for a slow consumer; past it the
#: source stops pulling from the provider until the consumer catches up.
BUFFER_HIGH_WATER = 1024
#: The source resumes once the consumer has drained the buffer down to this many items.
BUFFER_LOW_WATER = 256

#: Threads for blocking providers (llama.cpp, sync ``_call``/``_stream``) and sync lambdas.
MAX_WORKER_THREADS = 16

#: How long closing a stream waits for the provider call to finish its own cleanup.
CLOSE_TIMEOUT = 5.0

#: The most bytes of one server event rxllm holds (an SSE event's data, an NDJSON line,
#: or a line still arriving): past it the stream fails with ``EventTooLargeError`` rather
#: than buffer a hostile or broken server's output without bound. Generous: the largest
#: real events (a long tool call's arguments, a base64 image) are a few MiB.
MAX_EVENT_BYTES = 64 * 1024 * 1024

#: An error response's body is read up to this many bytes; the rest is dropped.
MAX_ERROR_BODY_BYTES = 1024 * 1024
