"""Usage conversion with every count different, so a swapped or dropped field shows.

The field names and their meaning are the providers' own documentation:
- OpenAI chat: ``prompt_tokens`` includes ``prompt_tokens_details.cached_tokens``,
  ``completion_tokens`` includes ``completion_tokens_details.reasoning_tokens``; Responses:
  ``input_tokens`` / ``input_tokens_details.cached_tokens``, ``output_tokens`` /
  ``output_tokens_details.reasoning_tokens``; OpenRouter adds ``cache_write_tokens``.
- Anthropic: ``input_tokens`` *excludes* ``cache_creation_input_tokens`` and
  ``cache_read_input_tokens``; a stream's ``message_delta`` usage is cumulative.
The ledger's convention (OpenTelemetry GenAI): input includes cache reads and writes, output
includes reasoning. Each expected value below is that rule applied by hand.
"""

from __future__ import annotations

import json

from tailguard.gateway.usage import (
    MAX_CALL_TOKENS,
    SseSplitter,
    StreamUsage,
    Usage,
    add_anthropic,
    from_body,
)


def _sse(obj: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(obj)}\n\n".encode()


def test_openai_chat_body() -> None:
    """prompt 1,000 (300 cached, 50 written by a router), completion 200 (120 reasoning):
    already the ledger's convention, taken as is."""
    body = {
        "usage": {
            "prompt_tokens": 1_000,
            "completion_tokens": 200,
            "prompt_tokens_details": {"cached_tokens": 300, "cache_write_tokens": 50},
            "completion_tokens_details": {"reasoning_tokens": 120},
        }
    }
    u = from_body("openai", json.dumps(body).encode())
    assert u.as_event() == {
        "input_tokens": 1_000,
        "output_tokens": 200,
        "cache_read_tokens": 300,
        "cache_write_tokens": 50,
        "reasoning_tokens": 120,
    }
    assert u.seen and u.unreadable is None


def test_openai_responses_body() -> None:
    """Responses API: input 900 (400 cached), output 70 (30 reasoning)."""
    body = {
        "usage": {
            "input_tokens": 900,
            "output_tokens": 70,
            "input_tokens_details": {"cached_tokens": 400},
            "output_tokens_details": {"reasoning_tokens": 30},
        }
    }
    u = from_body("openai", json.dumps(body).encode())
    assert (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.reasoning_tokens) == (
        900,
        70,
        400,
        30,
    )
    assert u.cache_write_tokens == 0 and u.seen


def test_anthropic_body_adds_cache_to_input() -> None:
    """input 100 + cache write 2,000 + cache read 30,000 = 32,100 in the ledger; output 500."""
    body = {
        "usage": {
            "input_tokens": 100,
            "cache_creation_input_tokens": 2_000,
            "cache_read_input_tokens": 30_000,
            "output_tokens": 500,
        }
    }
    u = from_body("anthropic", json.dumps(body).encode())
    assert u.as_event() == {
        "input_tokens": 32_100,
        "output_tokens": 500,
        "cache_read_tokens": 30_000,
        "cache_write_tokens": 2_000,
        "reasoning_tokens": 0,
    }


def test_anthropic_stream_deltas_replace_not_add() -> None:
    """message_start: input 100, cache write 2,000, read 30,000, output 1. A delta with output
    500 replaces the 1 (501 would double count); a later cumulative delta repeating the input
    fields gives input 32,100 again (not 64,200) and output 700. message_stop ends it."""
    s = StreamUsage("anthropic")
    start = {
        "type": "message_start",
        "message": {
            "usage": {
                "input_tokens": 100,
                "cache_creation_input_tokens": 2_000,
                "cache_read_input_tokens": 30_000,
                "output_tokens": 1,
            }
        },
    }
    assert s.feed(_sse(start, "message_start"))
    assert (s.usage.input_tokens, s.usage.output_tokens) == (32_100, 1)
    assert s.feed(_sse({"type": "message_delta", "usage": {"output_tokens": 500}}))
    assert (s.usage.input_tokens, s.usage.output_tokens) == (32_100, 500)
    again = {
        "type": "message_delta",
        "usage": {
            "input_tokens": 100,
            "cache_creation_input_tokens": 2_000,
            "cache_read_input_tokens": 30_000,
            "output_tokens": 700,
        },
    }
    s.feed(_sse(again, "message_delta"))
    assert (s.usage.input_tokens, s.usage.output_tokens) == (32_100, 700)
    assert not s.done
    s.feed(_sse({"type": "message_stop"}, "message_stop"))
    assert s.done


def test_anthropic_cache_fields_without_input() -> None:
    """Only cache fields: input rises to cover them (500), then to 500 + 10 = 510; it never
    falls: a later 'cache read 20' leaves input at 510 (max, not the latest sum 30)."""
    acc = Usage()
    add_anthropic(acc, {"cache_read_input_tokens": 500})
    assert (acc.input_tokens, acc.cache_read_tokens) == (500, 500)
    add_anthropic(acc, {"cache_creation_input_tokens": 10})
    assert (acc.input_tokens, acc.cache_write_tokens) == (510, 10)
    add_anthropic(acc, {"cache_read_input_tokens": 20})
    assert acc.input_tokens == 510 and acc.seen


def test_openai_chat_stream_usage_chunk_withheld_when_the_gateway_asked() -> None:
    """The usage-only chunk (``choices: []``) is withheld when the gateway added include_usage;
    a chunk with choices and usage passes; ``usage: null`` chunks are ignored."""
    s = StreamUsage("openai", drop_usage_chunk=True)
    assert s.feed(_sse({"choices": [{"delta": {"content": "hi"}}], "usage": None}))
    assert not s.usage.seen
    usage = {"prompt_tokens": 40, "completion_tokens": 7}
    assert s.feed(_sse({"choices": [], "usage": usage})) is False
    assert (s.usage.input_tokens, s.usage.output_tokens) == (40, 7)
    assert not s.done
    assert s.feed(b"data: [DONE]\n\n") and s.done
    keep = StreamUsage("openai")
    assert keep.feed(_sse({"choices": [], "usage": usage})) is True


def test_responses_stream_completed_event() -> None:
    s = StreamUsage("openai")
    ev = {
        "type": "response.completed",
        "response": {"usage": {"input_tokens": 12, "output_tokens": 34}},
    }
    assert s.feed(_sse(ev, "response.completed"))
    assert (s.usage.input_tokens, s.usage.output_tokens, s.done) == (12, 34, True)


def test_repair_raises_totals_to_their_parts() -> None:
    """input 100 < cache read 80 + write 40 = 120 -> input 120; output 20 < reasoning 50 ->
    output 50; a count of exactly MAX_CALL_TOKENS is kept, one more is noise (0)."""
    u = Usage(input_tokens=100, cache_read_tokens=80, cache_write_tokens=40)
    u.output_tokens, u.reasoning_tokens = 20, 50
    problems = u.repair()
    assert (u.input_tokens, u.output_tokens) == (120, 50)
    assert len(problems) == 2
    ok = Usage(input_tokens=MAX_CALL_TOKENS, output_tokens=5)
    assert ok.repair() == [] and ok.input_tokens == MAX_CALL_TOKENS
    noisy = Usage(input_tokens=MAX_CALL_TOKENS + 1, output_tokens=5, reasoning_tokens=5)
    assert len(noisy.repair()) == 1 and noisy.input_tokens == 0 and noisy.output_tokens == 5
    exact = Usage(input_tokens=120, cache_read_tokens=80, cache_write_tokens=40)
    assert exact.repair() == [] and exact.input_tokens == 120


def test_bad_counts_and_bodies() -> None:
    """A negative or non-integer count reads as 0; a body that is not JSON, or not an object,
    is unreadable (never zero usage silently)."""
    u = from_body("openai", b'{"usage": {"prompt_tokens": -5, "completion_tokens": "12"}}')
    assert (u.input_tokens, u.output_tokens, u.seen) == (0, 0, True)
    assert from_body("openai", b"<html>").unreadable == "the response body is not JSON"
    assert from_body("openai", b"[1]").unreadable == "the response body is not a JSON object"
    none = from_body("openai", b'{"usage": null}')
    assert not none.seen
    assert set(none.as_event().values()) == {0}  # no usage reported: every count 0


def test_sse_splitter_cuts_whole_events() -> None:
    sp = SseSplitter()
    assert sp.feed(b"data: a") == []
    assert sp.feed(b"\r\n\r\ndata: b\n\nda") == [b"data: a\n\n", b"data: b\n\n"]
    assert sp.rest() == b"da" and sp.rest() == b""
    # either separator alone ends an event
    assert sp.feed(b"data: c\n\n") == [b"data: c\n\n"]
    assert sp.feed(b"data: d\r\n\r\n") == [b"data: d\n\n"]
