"""A fake LLM provider speaking OpenAI's and Anthropic's wire formats, streaming included.

For the demo, the tests and the benchmark: it never calls anything, and its token counts are a
rule a test can work out by hand, so "the ledger equals what the client saw" is checked against
an independent calculation, not against the gateway's own arithmetic.

The rules (documented in ``docs/gateway.md``):

- **input tokens** = the number of whitespace-separated words in every text of the request
  (system prompt, every message's text content, the ``input`` of embeddings / responses), plus
  nothing else (no per-message overhead);
- **output**: the reply is ``"w1 w2 ... wN"`` where ``N = min(max_tokens, 16)`` (``max_tokens``,
  ``max_completion_tokens`` or ``max_output_tokens``; 16 when absent): one token per word. A
  stream sends one content chunk per word;
- **reasoning** (OpenAI models whose name starts with ``o`` or ``gpt-5``): ``2 × N`` reasoning
  tokens on top, counted in ``completion_tokens`` as OpenAI does;
- **OpenAI cache**: a prompt this mock has already seen reports ``cached_tokens = input // 2``;
- **Anthropic cache**: the words of content blocks carrying ``cache_control`` are reported as
  ``cache_creation_input_tokens`` the first time that text is seen and as
  ``cache_read_input_tokens`` afterwards; Anthropic's ``input_tokens`` excludes them (as the real
  API does);
- **errors**: a model whose name contains ``error-429`` / ``error-500`` / ``error-400`` answers
  with that status and the provider's error body; ``hang`` sleeps ``hang_s`` (30 s) before
  answering (timeouts); ``break`` streams three words then drops the connection; ``slow``
  streams one word every 0.1 s (for clients that hang up halfway).

Faults for the reliability tests (set ``MockUpstream.fault``; OpenAI chat, and ``"huge"`` in
Anthropic messages too): ``"reasoning_over"`` (reasoning tokens 5 above completion tokens),
``"cache_over"`` (cached tokens 5 above prompt tokens), ``"huge"`` (``prompt_tokens`` /
``input_tokens`` = 2^64), ``"not_json"`` (a 200 whose body is HTML). ``tokenizer = "bytes"``
counts input tokens as the UTF-8 bytes of the texts instead of words: the most tokens a
byte-level BPE tokenizer can make of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()
DEFAULT_OUTPUT = 16


def _texts(value: Any) -> list[str]:
    """Every text inside a message ``content`` / ``input`` / ``system`` value."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict):
                if isinstance(item.get("text"), str):
                    out.append(item["text"])
                elif "content" in item:
                    out.extend(_texts(item["content"]))
        return out
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return [value["text"]]
    return []


def words(texts: list[str]) -> int:
    """The mock's token count of some texts: whitespace-separated words."""
    return sum(len(t.split()) for t in texts)


def _n_out(body: dict[str, Any]) -> int:
    for k in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        v = body.get(k)
        if isinstance(v, int) and v > 0:
            return min(v, DEFAULT_OUTPUT)
    return DEFAULT_OUTPUT


def _reasoning(model: str) -> bool:
    return model.startswith(("o1", "o3", "o4", "gpt-5"))


def _openai_tier(body: dict[str, Any]) -> str:
    """The ``service_tier`` OpenAI answers with: the one asked for (``flex``, ``priority``),
    else ``default``."""
    t = body.get("service_tier")
    return t if t in ("flex", "priority") else "default"


def _web_searches(body: dict[str, Any]) -> int:
    """Searches an Anthropic call makes: ``max_uses`` (else 1) for each web search tool."""
    n = 0
    for t in body.get("tools") or ():
        if isinstance(t, dict) and str(t.get("type", "")).startswith("web_search"):
            n += int(t.get("max_uses") or 1)
    return n


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_enc.encode(obj), status, headers=headers, media_type="application/json")


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    payload = data if isinstance(data, bytes) else _enc.encode(data)
    return head + b"data: " + payload + b"\n\n"


class MockUpstream:
    """State of one mock provider: the prompts it has seen (for its cache) and its latency."""

    def __init__(self, *, latency_ms: float = 0.0) -> None:
        self.latency_s = latency_ms / 1000.0
        self.hang_s = 30.0  # how long a ``hang`` model waits (tests shorten it)
        self.seen: set[str] = set()
        self.requests = 0
        self.fault: str | None = None
        self.last_headers: dict[str, str] = {}
        self.tokenizer = "words"
        #: the ``usage.service_tier`` Anthropic answers with (tests set ``priority``)
        self.anthropic_tier = "standard"
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
                Route("/v1/responses", self.responses, methods=["POST"]),
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/v1/messages", self.messages, methods=["POST"]),
                Route("/healthz", self.healthz, methods=["GET"]),
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":  # what the last caller sent (header names lower-cased)
            self.last_headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        await self.app(scope, receive, send)

    # --- helpers -----------------------------------------------------------------------------

    async def _wait(self) -> None:
        self.requests += 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)

    def _seen_before(self, text: str) -> bool:
        h = hashlib.sha256(text.encode()).hexdigest()
        if h in self.seen:
            return True
        self.seen.add(h)
        return False

    @staticmethod
    def _error(model: str, wire: str) -> Response | None:
        for status in (429, 500, 400):
            if f"error-{status}" in model:
                msg = f"mock upstream error {status} for model {model}"
                if wire == "anthropic":
                    kind = {429: "rate_limit_error", 500: "api_error", 400: "invalid_request_error"}
                    body: Any = {"type": "error", "error": {"type": kind[status], "message": msg}}
                else:
                    kind = {429: "requests", 500: "server_error", 400: "invalid_request_error"}
                    body = {
                        "error": {"message": msg, "type": kind[status], "param": None, "code": None}
                    }
                return _json(body, status, {"x-mock-error": str(status)})
        return None

    async def _admit(
        self, request: Request, wire: str, *, may_hang: bool
    ) -> tuple[dict[str, Any], str, Response | None]:
        """Read a request the way every endpoint of the mock must, in one place.

        Why one function: each endpoint counts the request, applies the configured latency,
        answers an ``error-NNN`` model with the provider's error body and (chat and messages
        only) sleeps for a ``hang`` model, in that order; four copies could drift apart and the
        gateway tests would then exercise different upstreams per endpoint.
        Returns the decoded body, its model and the error response to send instead, if any.
        """
        body = _dec.decode(await request.body())
        model = str(body.get("model", ""))
        await self._wait()
        err = self._error(model, wire)
        if err is None and may_hang and "hang" in model:
            await asyncio.sleep(self.hang_s)
        return body, model, err

    # --- OpenAI ------------------------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        await self._wait()
        names = ["gpt-4o", "gpt-4o-mini", "o4-mini", "text-embedding-3-small"]
        return _json(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 1700000000, "owned_by": "mock"}
                    for m in names
                ],
            }
        )

    def _openai_usage(self, body: dict[str, Any], texts: list[str], n: int) -> dict[str, Any]:
        model = str(body.get("model", ""))
        bytewise = self.tokenizer == "bytes"
        prompt = sum(len(t.encode()) for t in texts) if bytewise else words(texts)
        cached = prompt // 2 if self._seen_before(model + "\x00" + "\x00".join(texts)) else 0
        reasoning = 2 * n if _reasoning(model) else 0
        completion = n + reasoning
        if self.fault == "reasoning_over":
            reasoning = completion + 5
        elif self.fault == "cache_over":
            cached = prompt + 5
        elif self.fault == "huge":
            prompt = 2**64
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    async def chat(self, request: Request) -> Response:
        body, model, err = await self._admit(request, "openai", may_hang=True)
        if err is not None:
            return err
        texts: list[str] = []
        for m in body.get("messages", []):
            texts.extend(_texts(m.get("content")))
        n = _n_out(body)
        usage = self._openai_usage(body, texts, n)
        if self.fault == "not_json":
            return Response(b"<html>upstream hiccup</html>", 200, media_type="text/html")
        cid = "chatcmpl-mock" + hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:12]
        created = int(time.time())
        reply = [f"w{i + 1}" for i in range(n)]
        if not body.get("stream"):
            return _json(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": " ".join(reply)},
                            "logprobs": None,
                            "finish_reason": "length" if n < DEFAULT_OUTPUT else "stop",
                        }
                    ],
                    "usage": usage,
                    "service_tier": _openai_tier(body),
                    "system_fingerprint": "fp_mock",
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        breaks = "break" in model
        slow = "slow" in model

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            c: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": _openai_tier(body),
                "system_fingerprint": "fp_mock",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                c["usage"] = None
            return _sse(c)

        async def gen() -> AsyncIterator[bytes]:
            yield chunk({"role": "assistant", "content": ""}, None)
            for i, w in enumerate(reply):
                if breaks and i == 3:
                    raise ConnectionResetError("mock upstream: broken stream")
                if slow:
                    await asyncio.sleep(0.1)
                yield chunk({"content": w if i == 0 else " " + w}, None)
            yield chunk({}, "length" if n < DEFAULT_OUTPUT else "stop")
            if include_usage:
                yield _sse(
                    {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "service_tier": _openai_tier(body),
                        "system_fingerprint": "fp_mock",
                        "choices": [],
                        "usage": usage,
                    }
                )
            yield b"data: [DONE]\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream")

    async def embeddings(self, request: Request) -> Response:
        body, model, err = await self._admit(request, "openai", may_hang=False)
        if err is not None:
            return err
        inp = body.get("input")
        items = inp if isinstance(inp, list) else [inp]
        texts = [x for x in items if isinstance(x, str)]
        prompt = words(texts)
        return _json(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": [0.0, 0.5, 1.0]}
                    for i in range(len(items))
                ],
                "model": model,
                "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
            }
        )

    async def responses(self, request: Request) -> Response:
        body, model, err = await self._admit(request, "openai", may_hang=False)
        if err is not None:
            return err
        texts = _texts(body.get("instructions")) + _texts(body.get("input"))
        n = _n_out(body)
        u = self._openai_usage(body, texts, n)
        usage = {
            "input_tokens": u["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": u["prompt_tokens_details"]["cached_tokens"]},
            "output_tokens": u["completion_tokens"],
            "output_tokens_details": {
                "reasoning_tokens": u["completion_tokens_details"]["reasoning_tokens"]
            },
            "total_tokens": u["total_tokens"],
        }
        text = " ".join(f"w{i + 1}" for i in range(n))
        rid = "resp_mock" + hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:12]
        resp: dict[str, Any] = {
            "id": rid,
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": model,
            "output": [
                {
                    "type": "message",
                    "id": "msg_" + rid,
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "service_tier": _openai_tier(body),
            "usage": usage,
        }
        if not body.get("stream"):
            return _json(resp)

        async def gen() -> AsyncIterator[bytes]:
            # the Responses API's event sequence, as the SDK's stream accumulator expects it
            item_id = "msg_" + rid
            seq = iter(range(1_000_000))

            def ev(kind: str, **fields: Any) -> bytes:
                return _sse({"type": kind, **fields, "sequence_number": next(seq)}, kind)

            start = dict(resp, status="in_progress", output=[], usage=None)
            yield ev("response.created", response=start)
            yield ev("response.in_progress", response=start)
            item: dict[str, Any] = {
                "type": "message",
                "id": item_id,
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            yield ev("response.output_item.added", output_index=0, item=item)
            part = {"type": "output_text", "text": "", "annotations": []}
            yield ev(
                "response.content_part.added",
                item_id=item_id,
                output_index=0,
                content_index=0,
                part=part,
            )
            for i in range(n):
                yield ev(
                    "response.output_text.delta",
                    item_id=item_id,
                    output_index=0,
                    content_index=0,
                    delta=("" if i == 0 else " ") + f"w{i + 1}",
                    logprobs=[],
                )
            yield ev(
                "response.output_text.done",
                item_id=item_id,
                output_index=0,
                content_index=0,
                text=text,
                logprobs=[],
            )
            done_part = dict(part, text=text)
            yield ev(
                "response.content_part.done",
                item_id=item_id,
                output_index=0,
                content_index=0,
                part=done_part,
            )
            yield ev("response.output_item.done", output_index=0, item=resp["output"][0])
            yield ev("response.completed", response=resp)

        return StreamingResponse(gen(), media_type="text/event-stream")

    # --- Anthropic ---------------------------------------------------------------------------

    async def messages(self, request: Request) -> Response:
        body, model, err = await self._admit(request, "anthropic", may_hang=True)
        if err is not None:
            return err
        plain: list[str] = []
        cached: list[str] = []
        hour: list[bool] = []  # the cached block asked for the 1-hour cache (ttl "1h")
        blocks: list[Any] = []
        system = body.get("system")
        if isinstance(system, list):
            blocks.extend(system)
        else:
            plain.extend(_texts(system))
        for m in body.get("messages", []):
            c = m.get("content")
            if isinstance(c, list):
                blocks.extend(c)
            else:
                plain.extend(_texts(c))
        for b in blocks:
            if isinstance(b, dict) and b.get("cache_control") and isinstance(b.get("text"), str):
                cached.append(b["text"])
                hour.append(b["cache_control"].get("ttl") == "1h")
            else:
                plain.extend(_texts([b]))
        cache_read = cache_write = write_1h = 0
        for t, h in zip(cached, hour, strict=True):
            if self._seen_before("anthropic\x00" + t):
                cache_read += words([t])
            else:
                cache_write += words([t])
                write_1h += words([t]) if h else 0
        n = _n_out(body)
        start_usage = {
            "input_tokens": words(plain),
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": cache_write - write_1h,
                "ephemeral_1h_input_tokens": write_1h,
            },
            "output_tokens": 1,
            "service_tier": self.anthropic_tier,
        }
        searches = _web_searches(body)
        tools_used = {"server_tool_use": {"web_search_requests": searches}} if searches else {}
        if self.fault == "huge":
            start_usage["input_tokens"] = 2**64
        mid = "msg_mock" + hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:12]
        reply = [f"w{i + 1}" for i in range(n)]
        stop = "max_tokens" if n < DEFAULT_OUTPUT else "end_turn"
        if not body.get("stream"):
            return _json(
                {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": " ".join(reply)}],
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": dict(start_usage, output_tokens=n, **tools_used),
                }
            )
        breaks = "break" in model

        async def gen() -> AsyncIterator[bytes]:
            msg = {
                "id": mid,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            }
            yield _sse({"type": "message_start", "message": msg}, "message_start")
            yield _sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            )
            yield _sse({"type": "ping"}, "ping")
            for i, w in enumerate(reply):
                if breaks and i == 3:
                    raise ConnectionResetError("mock upstream: broken stream")
                yield _sse(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": w if i == 0 else " " + w},
                    },
                    "content_block_delta",
                )
            yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            yield _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": n, **tools_used},
                },
                "message_delta",
            )
            yield _sse({"type": "message_stop"}, "message_stop")

        return StreamingResponse(gen(), media_type="text/event-stream")

    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok"})


def create_mock(*, latency_ms: float = 0.0) -> MockUpstream:
    """A mock provider as an ASGI app (both wire formats under ``/v1``)."""
    return MockUpstream(latency_ms=latency_ms)
