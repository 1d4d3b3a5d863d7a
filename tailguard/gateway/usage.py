"""Token usage out of provider responses, converted to the ledger's convention.

The ledger follows OpenTelemetry GenAI: ``input_tokens`` includes cache reads and cache writes,
``output_tokens`` includes reasoning. OpenAI already counts that way (``prompt_tokens`` includes
``cached_tokens``, ``completion_tokens`` includes ``reasoning_tokens``); Anthropic does not: its
``input_tokens`` excludes ``cache_creation_input_tokens`` and ``cache_read_input_tokens``, which
are added here.

A provider's usage that breaks the ledger's rules (reasoning above completion, cache reads above
the prompt, a count of 2^64) is repaired here, never dropped: ``Usage.repair`` raises the total
to include its parts (the safe side: never fewer tokens than the provider named), sets a count
beyond ``MAX_CALL_TOKENS`` to 0 (it means nothing), and says what it found. The gateway records
such a call with ``status = "usage_invalid"``: the ledger keeps it unpriced (its cost is unknown,
never a made-up number) and the reports count it among the unpriced calls.

Two pricing inputs ride along (read when the call is priced, not stored by the ledger):
``cache_write_1h_tokens`` (Anthropic's ``usage.cache_creation.ephemeral_1h_input_tokens``, among
the cache writes, 2x the input rate instead of 1.25x) and ``service_tier`` (Anthropic's
``usage.service_tier``; OpenAI's top-level ``service_tier`` of the response unless it is
``default`` / ``auto``, the standard tier: ``flex``, ``priority``, and any other, such as
``scale``, which pricing leaves unpriced rather than price at the standard rates). Anthropic's
``usage.server_tool_use.web_search_requests`` is counted in ``web_searches`` (each one a
``tool_call`` event, priced as ``import anthropic-usage`` prices them).

Streams are read event by event (``SseSplitter``) and only events that can carry usage are
decoded, so the cost per chunk is a substring test.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

_dec = msgspec.json.Decoder()

#: a cost is rounded to the nano-dollar, as the ledger stores it (half-even: Decimal's default)
_NANO = Decimal("1e-9")
_ZERO = Decimal(0)

#: the most tokens one call can credibly report: ten times the largest context window offered
#: today (10M tokens); above it a count is noise (a 2^64 seen in the wild), not usage
MAX_CALL_TOKENS = 100_000_000
_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cache_write_1h_tokens",
)
#: the most web searches one call can credibly report (each becomes a ledger event): Anthropic
#: caps them per request with the tool's ``max_uses``; above it a count is noise
MAX_CALL_SEARCHES = 10_000
#: OpenAI's names of the standard tier (``default`` in a response, ``auto`` in a request)
_OPENAI_STANDARD = frozenset({"default", "auto"})
#: tiers a request may ask for that have a list price of their own (reserved at it)
_OPENAI_TIERS = frozenset({"flex", "priority"})


@dataclass(slots=True)
class Usage:
    """Tokens of one call in the ledger's convention; ``seen`` is False when none were reported."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    #: the 1-hour cache writes among ``cache_write_tokens`` (Anthropic)
    cache_write_1h_tokens: int = 0
    #: the tier the call was served at (``priority``, ``flex``, ``batch``...), None: standard
    service_tier: str | None = None
    #: server-side web searches the call made (Anthropic's ``server_tool_use``)
    web_searches: int = 0
    seen: bool = False
    #: why the usage could not be read at all (a 200 whose body is not JSON), else None
    unreadable: str | None = None

    def repair(self) -> list[str]:
        """Make the counts obey the ledger's rules; returns what was wrong (empty: nothing).

        - a count above ``MAX_CALL_TOKENS`` becomes 0, web searches above
          ``MAX_CALL_SEARCHES`` too;
        - ``cache_write_1h > cache_write``: cache_write becomes the 1-hour writes (they are a
          part of the writes);
        - ``cache_read + cache_write > input``: input becomes their sum (input includes cache);
        - ``reasoning > output``: output becomes reasoning (output includes reasoning).
        """
        problems: list[str] = []
        for f in _FIELDS:
            v = getattr(self, f)
            if v > MAX_CALL_TOKENS:
                problems.append(f"{f} {v} above {MAX_CALL_TOKENS}")
                setattr(self, f, 0)
        if self.web_searches > MAX_CALL_SEARCHES:
            problems.append(f"web_searches {self.web_searches} above {MAX_CALL_SEARCHES}")
            self.web_searches = 0
        if self.cache_write_1h_tokens > self.cache_write_tokens:
            problems.append(
                f"cache_write_1h_tokens {self.cache_write_1h_tokens} above cache_write_tokens "
                f"{self.cache_write_tokens}"
            )
            self.cache_write_tokens = self.cache_write_1h_tokens
        cache = self.cache_read_tokens + self.cache_write_tokens
        if cache > self.input_tokens:
            problems.append(f"cache tokens {cache} above input_tokens {self.input_tokens}")
            self.input_tokens = cache
        if self.reasoning_tokens > self.output_tokens:
            problems.append(
                f"reasoning_tokens {self.reasoning_tokens} above output_tokens {self.output_tokens}"
            )
            self.output_tokens = self.reasoning_tokens
        return problems

    def as_event(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }

    def token_cost(self, price: Any) -> Decimal:
        """These tokens at the model price ``price`` (``ModelPrice.cost``: 1-hour cache writes
        at their rate), rounded to the nano-dollar: what the gateway and the SDK settle."""
        return price.cost(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens,
        ).quantize(_NANO)

    def pricing_inputs(self) -> dict[str, Any]:
        """The event's pricing inputs (``PRICING_INPUTS``: read by pricing, not stored)."""
        return {
            "cache_write_1h_tokens": self.cache_write_1h_tokens,
            "service_tier": self.service_tier,
        }


def _int(d: Any, *path: str) -> int:
    for p in path:
        if not isinstance(d, dict):
            return 0
        d = d.get(p)
    return d if isinstance(d, int) and d > 0 else 0


def call_spend(cost: Decimal | None, search_usd: Decimal | None, searches: int) -> Decimal:
    """What an answered call measurably cost: its tokens' ``cost`` (None: no price, nothing)
    plus its ``searches`` web searches at ``search_usd`` each (None: unpriced, nothing)."""
    return (cost or _ZERO) + (search_usd or _ZERO) * searches


def settled_usd(
    cost: Decimal | None, search_usd: Decimal | None, searches: int, reserved: Decimal
) -> Decimal:
    """What a guard settles for an answered call (the gateway's and the SDK's): its
    ``call_spend``; a call without a price (``cost`` None: a tier billed by contract such as
    Anthropic's priority, an unknown model) keeps what was ``reserved`` for it besides, never
    a silent $0 (an unknown model reserved nothing, so it settles its searches alone)."""
    spent = call_spend(cost, search_usd, searches)
    return spent if cost is not None else spent + reserved


def openai_tier(obj: Any) -> str | None:
    """The ``service_tier`` an OpenAI response object was served at: None for the standard
    tier (``default``, ``auto``, absent); any other as given (``flex``, ``priority``; and
    ``scale``, billed by contract units, or a tier OpenAI adds later: pricing leaves those
    unpriced, never at the standard rates, unless the operator's price file has an entry for
    that ``service_tier``)."""
    t = obj.get("service_tier") if isinstance(obj, dict) else None
    if not isinstance(t, str) or not t or t.lower() in _OPENAI_STANDARD:
        return None
    return t[:64]


def openai_request_tier(body: Any) -> str | None:
    """The tier a request asks for when it has a list price of its own (``flex``,
    ``priority``): the reservation is made at it; any other is reserved at the standard
    rates (a tier without a price would reserve nothing)."""
    t = openai_tier(body)
    return t if t in _OPENAI_TIERS else None


def from_openai(u: Any, tier: str | None = None) -> Usage:
    """Chat completions (``prompt_tokens``...), Responses (``input_tokens``...) or embeddings;
    ``tier``: the response's service tier (``openai_tier``)."""
    if not isinstance(u, dict):
        return Usage()
    if "prompt_tokens" in u:
        return Usage(
            input_tokens=_int(u, "prompt_tokens"),
            output_tokens=_int(u, "completion_tokens"),
            cache_read_tokens=_int(u, "prompt_tokens_details", "cached_tokens"),
            # OpenAI-compatible routers (OpenRouter) report cache writes here; OpenAI does not
            cache_write_tokens=_int(u, "prompt_tokens_details", "cache_write_tokens"),
            reasoning_tokens=_int(u, "completion_tokens_details", "reasoning_tokens"),
            service_tier=tier,
            seen=True,
        )
    return Usage(
        input_tokens=_int(u, "input_tokens"),
        output_tokens=_int(u, "output_tokens"),
        cache_read_tokens=_int(u, "input_tokens_details", "cached_tokens"),
        cache_write_tokens=_int(u, "input_tokens_details", "cache_write_tokens"),
        reasoning_tokens=_int(u, "output_tokens_details", "reasoning_tokens"),
        service_tier=tier,
        seen=True,
    )


def add_anthropic(acc: Usage, u: Any) -> None:
    """Fold an Anthropic ``usage`` object into ``acc`` (a message_delta's counts are cumulative,
    so each present field replaces the one seen before)."""
    if not isinstance(u, dict):
        return
    acc.seen = True
    if "cache_creation_input_tokens" in u:
        acc.cache_write_tokens = _int(u, "cache_creation_input_tokens")
    if "cache_read_input_tokens" in u:
        acc.cache_read_tokens = _int(u, "cache_read_input_tokens")
    if "input_tokens" in u:
        acc.input_tokens = _int(u, "input_tokens") + acc.cache_write_tokens + acc.cache_read_tokens
    elif "cache_creation_input_tokens" in u or "cache_read_input_tokens" in u:
        acc.input_tokens = max(acc.input_tokens, acc.cache_write_tokens + acc.cache_read_tokens)
    if "output_tokens" in u:
        acc.output_tokens = _int(u, "output_tokens")
    if isinstance(u.get("cache_creation"), dict):
        acc.cache_write_1h_tokens = _int(u, "cache_creation", "ephemeral_1h_input_tokens")
    if isinstance(u.get("service_tier"), str):
        acc.service_tier = u["service_tier"][:64] or None
    if isinstance(u.get("server_tool_use"), dict):
        acc.web_searches = _int(u, "server_tool_use", "web_search_requests")


def from_body(wire: str, body: bytes) -> Usage:
    """Usage of a non-streamed JSON response body."""
    try:
        obj = _dec.decode(body)
    except msgspec.DecodeError:
        return Usage(unreadable="the response body is not JSON")
    if not isinstance(obj, dict):
        return Usage(unreadable="the response body is not a JSON object")
    if wire == "anthropic":
        acc = Usage()
        add_anthropic(acc, obj.get("usage"))
        return acc
    return from_openai(obj.get("usage"), openai_tier(obj))


class SseSplitter:
    """Cuts a byte stream into whole server-sent events (each ending with a blank line)."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self.buf += chunk
        if b"\n\n" not in self.buf and b"\r\n\r\n" not in self.buf:
            return []
        parts = self.buf.replace(b"\r\n", b"\n").split(b"\n\n")
        self.buf = parts.pop()
        return [p + b"\n\n" for p in parts if p]

    def rest(self) -> bytes:
        out, self.buf = self.buf, b""
        return out


def _data(event: bytes) -> Any:
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            payload = line[5:].strip()
            if payload == b"[DONE]":
                return None
            try:
                return _dec.decode(payload)
            except msgspec.DecodeError:
                return None
    return None


class StreamUsage:
    """Watches a stream's events for usage; ``feed`` says whether to pass the event on.

    ``drop_usage_chunk``: the gateway added ``stream_options.include_usage`` for an OpenAI chat
    stream, so the usage-only chunk it causes is withheld from the client that did not ask.
    """

    __slots__ = ("done", "drop_usage_chunk", "usage", "wire")

    def __init__(self, wire: str, *, drop_usage_chunk: bool = False) -> None:
        self.wire = wire
        self.usage = Usage()
        self.drop_usage_chunk = drop_usage_chunk
        self.done = False  # the stream reached its proper end (message_stop, [DONE], completed)

    def feed(self, event: bytes) -> bool:
        if self.wire == "anthropic":
            if b"message_stop" in event:
                self.done = True
            elif b"message_start" in event or b"message_delta" in event:
                obj = _data(event)
                if isinstance(obj, dict):
                    if obj.get("type") == "message_start":
                        add_anthropic(self.usage, (obj.get("message") or {}).get("usage"))
                    elif obj.get("type") == "message_delta":
                        add_anthropic(self.usage, obj.get("usage"))
            return True
        if b"[DONE]" in event:
            self.done = True
            return True
        if b"response.completed" in event or b"response.incomplete" in event:
            obj = _data(event)
            if isinstance(obj, dict) and isinstance(obj.get("response"), dict):
                r = obj["response"]
                self.usage = from_openai(r.get("usage"), openai_tier(r))
                self.done = True
            return True
        if b'"usage"' in event and b'"usage":null' not in event:
            obj = _data(event)
            if isinstance(obj, dict) and isinstance(obj.get("usage"), dict):
                self.usage = from_openai(obj["usage"], openai_tier(obj))
                if self.drop_usage_chunk and not obj.get("choices"):
                    return False
        return True
