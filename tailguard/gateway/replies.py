"""What the gateway itself answers, in each provider's own shapes.

Provider SDKs only understand their provider's error body (``openai.RateLimitError`` parses
``{"error": {...}}``, ``anthropic.RateLimitError`` parses ``{"type": "error", "error": {...}}``),
so every refusal is written in the shape of the endpoint that was called. A graceful refusal
(policy ``graceful = true``, the per-customer economics essay: "a partial answer with an
explanation, not a 500") is a well-formed completion, or a well-formed stream, whose text is the
guard's message.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec

_enc = msgspec.json.Encoder()

_OPENAI_TYPE = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("tokens", "rate_limit_exceeded"),
    502: ("server_error", "upstream_unreachable"),
    504: ("server_error", "upstream_timeout"),
}
_ANTHROPIC_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    502: "api_error",
    504: "timeout_error",
}


def error_body(wire: str, status: int, message: str, *, code: str | None = None) -> bytes:
    """The provider's error JSON for ``status``."""
    if wire == "anthropic":
        kind = _ANTHROPIC_TYPE.get(status, "api_error")
        return _enc.encode({"type": "error", "error": {"type": kind, "message": message}})
    kind, default_code = _OPENAI_TYPE.get(status, ("server_error", None))
    return _enc.encode(
        {"error": {"message": message, "type": kind, "param": None, "code": code or default_code}}
    )


def _sse(obj: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + _enc.encode(obj) + b"\n\n"


def graceful(kind: str, model: str, text: str, *, stream: bool, include_usage: bool) -> bytes:
    """A complete, well-formed answer (body or whole SSE stream) whose text is ``text``.

    ``kind`` is the endpoint: ``chat`` | ``responses`` | ``messages``. Usage is zero: nothing
    was spent.
    """
    now = int(time.time())
    rid = uuid.uuid4().hex[:24]
    if kind == "messages":
        usage = {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        msg: dict[str, Any] = {
            "id": "msg_tg" + rid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        if not stream:
            return _enc.encode(msg)
        return b"".join(
            [
                _sse({"type": "message_start", "message": dict(msg, content=[])}, "message_start"),
                _sse(
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                    "content_block_start",
                ),
                _sse(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": text},
                    },
                    "content_block_delta",
                ),
                _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
                _sse(
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": 0},
                    },
                    "message_delta",
                ),
                _sse({"type": "message_stop"}, "message_stop"),
            ]
        )
    if kind == "responses":
        resp = {
            "id": "resp_tg" + rid,
            "object": "response",
            "created_at": now,
            "status": "completed",
            "model": model,
            "output": [
                {
                    "type": "message",
                    "id": "msg_tg" + rid,
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": 0,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 0,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 0,
            },
        }
        if not stream:
            return _enc.encode(resp)
        return _sse(
            {"type": "response.completed", "response": resp, "sequence_number": 0},
            "response.completed",
        )
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    cid = "chatcmpl-tg" + rid
    if not stream:
        return _enc.encode(
            {
                "id": cid,
                "object": "chat.completion",
                "created": now,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
        )

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        c: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": now,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        return _sse(c)

    parts = [chunk({"role": "assistant", "content": text}, None), chunk({}, "stop")]
    if include_usage:
        parts.append(
            _sse(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": now,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
        )
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)
