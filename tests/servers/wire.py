"""The providers' documented wire formats, as the bytes a server sends.

OpenAI: ``data: {json}`` events ending with ``data: [DONE]`` (chat chunks carry
``choices[0].delta``; with ``stream_options.include_usage`` a last event has empty
``choices`` and the ``usage``). Anthropic: the Messages streaming sequence from its
docs (``message_start``, ``content_block_start``, ``ping``, ``content_block_delta``...,
``content_block_stop``, ``message_delta``, ``message_stop``). Ollama: NDJSON records
ending with a ``"done": true`` record carrying timings and counts.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "anthropic_error",
    "anthropic_text",
    "anthropic_thinking",
    "anthropic_tool_use",
    "ndjson",
    "ollama_chat",
    "ollama_generate",
    "openai_chat",
    "openai_completion",
    "sse",
]

DONE = b"data: [DONE]\n\n"


def sse(data: Any, event: str | None = None) -> bytes:
    """One event; ``data`` is JSON-encoded unless it is already a str."""
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


# OpenAI


def openai_completion(texts: list[str], *, finish: str = "stop", usage: bool = True) -> list[bytes]:
    base = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m"}
    events = [
        sse({**base, "choices": [{"text": t, "index": 0, "logprobs": None, "finish_reason": None}]})
        for t in texts
    ]
    events.append(
        sse(
            {
                **base,
                "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": finish}],
            }
        )
    )
    if usage:
        counts = {
            "prompt_tokens": 3,
            "completion_tokens": len(texts),
            "total_tokens": 3 + len(texts),
        }
        events.append(sse({**base, "choices": [], "usage": counts}))
    return [*events, DONE]


def _chat_event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return sse(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
    )


def openai_chat(
    texts: list[str],
    *,
    tool_calls: list[tuple[str, str, list[str]]] = (),  # type: ignore[assignment]
    usage: bool = True,
    done: bool = True,
) -> list[bytes]:
    """A chat stream: a role delta, content deltas, tool-call deltas, finish, usage."""
    events = [_chat_event({"role": "assistant", "content": ""})]
    events += [_chat_event({"content": t}) for t in texts]
    for index, (call_id, name, pieces) in enumerate(tool_calls):
        events.append(
            _chat_event(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        events += [
            _chat_event({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in pieces
        ]
    events.append(_chat_event({}, "tool_calls" if tool_calls else "stop"))
    if usage:
        events.append(
            sse(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "m",
                    "choices": [],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
                }
            )
        )
    return [*events, DONE] if done else events


# Anthropic (https://docs.anthropic.com/en/api/messages-streaming)


def _message_start(input_tokens: int = 25) -> bytes:
    return sse(
        {
            "type": "message_start",
            "message": {
                "id": "msg_01",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": "claude-test",
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "output_tokens": 1},
            },
        },
        "message_start",
    )


def _message_end(stop_reason: str = "end_turn", output_tokens: int = 15) -> list[bytes]:
    return [
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
            "message_delta",
        ),
        sse({"type": "message_stop"}, "message_stop"),
    ]


PING = sse({"type": "ping"}, "ping")


def anthropic_text(texts: list[str], *, stop: bool = True) -> list[bytes]:
    """A text reply: start, a text block with a ping after its start, the end."""
    events = [
        _message_start(),
        sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        PING,
    ]
    events += [
        sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}},
            "content_block_delta",
        )
        for t in texts
    ]
    events.append(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    if stop:
        events += _message_end()
    return events


def anthropic_tool_use() -> list[bytes]:
    """The docs' tool-use example: text, then a tool_use block with JSON in pieces."""
    delta = "content_block_delta"
    return [
        _message_start(472),
        sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        sse(
            {
                "type": delta,
                "index": 0,
                "delta": {"type": "text_delta", "text": "Okay, let me check"},
            },
            delta,
        ),
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse(
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                    "name": "get_weather",
                    "input": {},
                },
            },
            "content_block_start",
        ),
        sse(
            {"type": delta, "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
            delta,
        ),
        sse(
            {
                "type": delta,
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"location":'},
            },
            delta,
        ),
        PING,
        sse(
            {
                "type": delta,
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": ' "San Fra'},
            },
            delta,
        ),
        sse(
            {
                "type": delta,
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": 'ncisco, CA"}'},
            },
            delta,
        ),
        sse({"type": "content_block_stop", "index": 1}, "content_block_stop"),
        *_message_end("tool_use", 89),
    ]


def anthropic_thinking() -> list[bytes]:
    """Extended thinking: a thinking block with a signature, then a text block."""
    delta = "content_block_delta"
    return [
        _message_start(),
        sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": ""},
            },
            "content_block_start",
        ),
        sse(
            {"type": delta, "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me "}},
            delta,
        ),
        sse(
            {"type": delta, "index": 0, "delta": {"type": "thinking_delta", "thinking": "think."}},
            delta,
        ),
        sse(
            {"type": delta, "index": 0, "delta": {"type": "signature_delta", "signature": "EqQB"}},
            delta,
        ),
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse(
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        sse({"type": delta, "index": 1, "delta": {"type": "text_delta", "text": "42"}}, delta),
        sse({"type": "content_block_stop", "index": 1}, "content_block_stop"),
        *_message_end(),
    ]


def anthropic_error(kind: str = "overloaded_error", message: str = "Overloaded") -> bytes:
    return sse({"type": "error", "error": {"type": kind, "message": message}}, "error")


# Ollama (https://github.com/ollama/ollama/blob/main/docs/api.md)


def ndjson(*records: Any) -> list[bytes]:
    return [json.dumps(r).encode() + b"\n" for r in records]


FINAL = {
    "done_reason": "stop",
    "total_duration": 174560334,
    "load_duration": 101397084,
    "prompt_eval_count": 11,
    "prompt_eval_duration": 13074791,
    "eval_count": 18,
    "eval_duration": 52479709,
}


def ollama_generate(texts: list[str], *, done: bool = True) -> list[bytes]:
    at = "2023-08-04T19:22:45.499127Z"
    records: list[dict[str, Any]] = [
        {"model": "llama3.2", "created_at": at, "response": t, "done": False} for t in texts
    ]
    if done:
        records.append(
            {
                "model": "llama3.2",
                "created_at": at,
                "response": "",
                "done": True,
                "context": [1, 2, 3],
                **FINAL,
            }
        )
    return ndjson(*records)


def ollama_chat(
    texts: list[str],
    *,
    tool_calls: list[dict[str, Any]] = (),
    done: bool = True,  # type: ignore[assignment]
) -> list[bytes]:
    at = "2023-08-04T08:52:19.385406455-07:00"
    records: list[dict[str, Any]] = [
        {
            "model": "llama3.2",
            "created_at": at,
            "message": {"role": "assistant", "content": t},
            "done": False,
        }
        for t in texts
    ]
    if tool_calls:
        records.append(
            {
                "model": "llama3.2",
                "created_at": at,
                "message": {"role": "assistant", "content": "", "tool_calls": tool_calls},
                "done": False,
            }
        )
    if done:
        records.append(
            {
                "model": "llama3.2",
                "created_at": at,
                "message": {"role": "assistant", "content": ""},
                "done": True,
                **FINAL,
            }
        )
    return ndjson(*records)
