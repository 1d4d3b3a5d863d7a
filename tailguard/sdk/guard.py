"""Enforcement without a gateway: ``tg.instrument(client, policy="policy.toml")``.

The guard (``tailguard.guard``) runs in the instrumented client's transport before each call,
with the gateway's semantics:

- the request is reserved at its worst case: input = the body's size in bytes (a bound a
  byte-level BPE tokenizer cannot exceed: the gateway's ``input_bound``), output = the request's
  cap (``max_tokens`` ... ; ``default_max_output_tokens`` when absent) times ``n``, priced with
  the price book at the call's own time (the ``ts`` of its event), through the gateway's cache
  (``tailguard.pricing.cache``: a dated price applies from its first instant, however long the
  process runs), at the tier asked for, else the standard price;
- **allow**: the call goes out; **degrade**: the body's ``model`` is rewritten to the cheaper
  one before it leaves;
- **deny** / **kill**: nothing is sent. ``tailguard.BudgetExceeded`` is raised to the caller
  (carrying the ``Decision``), or, when the tier says ``graceful``, the client receives a
  well-formed completion that explains the cap (chat, responses, messages);
- after the call the reservation is settled with the cost of the usage the call reported (on the
  flusher thread, so the caller never waits for it), released when the call failed, kept at
  the worst case when the usage cannot be trusted (``usage_invalid``), and kept at the
  reservation when the call has no price (a contract tier: Anthropic's priority), never $0.

The guard's own events (degrade, deny, kill, overage) go to the same sink as the calls. Budgets
live in the guard's store: in-process memory by default (one process's view: pass
``guard=Guard(policy, RedisStore(url))`` to share them with gateways and other processes).
The decision costs the caller's thread the body's JSON decoding and the store's check (the
in-process store: about 20 µs; bench_guard).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from tailguard.errors import ArgumentError
from tailguard.sdk.client import BudgetExceeded
from tailguard.sdk.scope import UNATTRIBUTED

if TYPE_CHECKING:
    from tailguard.sdk.instrument import CallRecord
    from tailguard.sdk.recorder import Recorder

log = logging.getLogger("tailguard.sdk")
_dec = msgspec.json.Decoder()
_enc = msgspec.json.Encoder()
_UTC = dt.UTC
_GRACEFUL_KINDS = ("chat", "responses", "messages")


class CallGuard:
    """The guard as the transport uses it: ``plan`` / ``decide``, then ``settle``."""

    def __init__(
        self,
        recorder: Recorder,
        *,
        policy: str | os.PathLike[str] | None = None,
        guard: Any = None,
        prices: str | os.PathLike[str] | None = None,
        default_max_output_tokens: int = 4096,
    ) -> None:
        from tailguard.guard import Guard, load_policy
        from tailguard.pricing import PriceBook
        from tailguard.pricing.cache import PriceCache

        if guard is None:
            if policy is None:
                raise ArgumentError("policy", "instrument(policy=...) or guard=... is needed")
            guard = Guard(load_policy(policy), sink=self._sink)
        self.guard = guard
        self.recorder = recorder
        if prices is None:  # the handle's price file (``connect(prices=)``), as the ledger's
            prices = recorder.prices
        self.book = PriceBook.load(prices) if prices else PriceBook.load()
        self.default_max_output_tokens = default_max_output_tokens
        #: the gateway's cache: each price resolved at the call's own time, kept for its window
        self.prices = PriceCache(self.book)

    def _sink(self, events: list[dict[str, Any]]) -> None:
        self.recorder.put(("raw", events))

    def _price(
        self, provider: str, model: str, tier: str | None = None, at: dt.datetime | None = None
    ) -> Any:
        """The model's price at a service ``tier`` (None: standard) in force at ``at`` (default
        now); None when it has none (an unknown model, a tier billed by contract such as
        Anthropic's priority)."""
        return self.prices.price(provider, model, tier, at=at)

    # --- before the call (the caller's thread) -------------------------------------------------

    def request(self, rec: CallRecord, body: dict[str, Any]) -> Any:
        """The guard's ``Request`` for this call (its worst case)."""
        from tailguard.gateway.door import choices, output_cap
        from tailguard.gateway.usage import openai_request_tier
        from tailguard.guard import Request

        task = rec.task
        customer = (task.customer if task is not None else None) or (
            self.recorder.default_customer or UNATTRIBUTED
        )
        model = str(body.get("model") or "")
        est_in = len(rec.request)  # the gateway's input_bound: one token per byte at most
        cap = output_cap(body)
        max_out = (cap if cap is not None else self.default_max_output_tokens) * choices(body)
        if rec.kind == "embeddings":
            max_out = 0
        # reserve at the tier asked for (OpenAI's flex / priority: their own list price), as
        # the gateway does; a tier without a price reserves at the standard one, never $0;
        # priced at the call's own time (its event's ``ts``, which the ledger prices it at)
        tier = openai_request_tier(body) if rec.wire == "openai" else None
        est = self.prices.reservation_usd(
            rec.provider,
            model,
            tier,
            input_tokens=est_in,
            output_tokens=max_out,
            at=_call_time(rec),
        )
        return Request(
            customer,
            est,
            model=model,
            input_tokens=est_in,
            max_output_tokens=max_out,
            user_id=task.user if task is not None else None,
            task_id=task.task_id if task is not None else None,
            session_id=task.session if task is not None else None,
            feature=task.feature if task is not None else None,
        )

    def outcome(self, rec: CallRecord, body: dict[str, Any], d: Any) -> bytes | None:
        """Apply a decision: None to send ``rec.request`` (rewritten on degrade), the bytes of
        a graceful answer to return instead, or raise ``BudgetExceeded``."""
        if d.allowed:
            rec.reservation = d.reservation
            if d.model and d.model != body.get("model"):
                body["model"] = d.model
                rec.request = _enc.encode(body)
                rec.rewritten = True
            return None
        msg = d.message or "This request was refused by the usage policy."
        if d.graceful and rec.kind in _GRACEFUL_KINDS:
            from tailguard.gateway.replies import graceful

            so = body.get("stream_options")
            # the caller's own wish: not the usage chunk the tap asked for on its behalf
            inc = isinstance(so, dict) and bool(so.get("include_usage")) and not rec.drop
            return graceful(
                rec.kind,
                str(body.get("model") or ""),
                msg,
                stream=bool(body.get("stream")),
                include_usage=inc,
            )
        raise _exceeded_class()(msg, d)

    # --- after the call (the flusher thread) ---------------------------------------------------

    def settle(self, rec: CallRecord, ev: dict[str, Any], search_usd: Decimal | None) -> None:
        """Settle with the call's cost as the gateway prices it: the tokens at the tier the
        call was served at (1-hour cache writes at their rate) plus its web searches at
        ``search_usd`` each. A call that cannot be priced (an unknown model, a tier billed by
        contract) keeps what was reserved for it, never $0; one whose usage cannot be trusted
        keeps its worst case; a failed call without tokens is released."""
        from tailguard.gateway.usage import Usage, settled_usd

        r = rec.reservation
        if r is None:
            return
        try:
            if ev["status"] == "usage_invalid":  # the real cost is unknown: keep the worst case
                q = r.request
                self.guard.settle(
                    r,
                    q.estimated_cost_usd,
                    input_tokens=q.input_tokens,
                    output_tokens=q.max_output_tokens,
                )
            elif ev["status"] == "error" and not ev["input_tokens"] and not ev["output_tokens"]:
                self.guard.release(r)
            else:
                usage = rec.usage if rec.usage is not None else Usage()
                mp = self._price(rec.provider, ev["model"], usage.service_tier, _call_time(rec))
                cost = usage.token_cost(mp) if mp is not None else None
                spent = settled_usd(
                    cost, search_usd, usage.web_searches, r.request.estimated_cost_usd
                )
                self.guard.settle(
                    r, spent, input_tokens=ev["input_tokens"], output_tokens=ev["output_tokens"]
                )
        except Exception:
            log.exception("tailguard: settling a reservation failed")


def _call_time(rec: CallRecord) -> dt.datetime:
    """The time a call is priced at: its start, the ``ts`` of its event (the ledger prices the
    event at it), so its reservation and its settlement use the price the ledger charges."""
    return dt.datetime.fromtimestamp(rec.started, _UTC)


_EXCEEDED: dict[tuple[type, ...], type[BudgetExceeded]] = {}


def _exceeded_class() -> type[BudgetExceeded]:
    """``BudgetExceeded``, also an ``anthropic.AnthropicError`` / ``openai.OpenAIError`` when
    those SDKs are loaded: they wrap any other exception their transport raises in
    ``APIConnectionError`` (anthropic 2.x does), which would hide the denial from the caller
    and have the SDK retry the refused call ``max_retries`` times (each one refused again)."""
    import sys

    bases: list[type] = [BudgetExceeded]
    for mod, name in (("anthropic", "AnthropicError"), ("openai", "OpenAIError")):
        cls = getattr(sys.modules.get(mod), name, None)
        if isinstance(cls, type) and issubclass(cls, Exception):
            bases.append(cls)
    key = tuple(bases)
    if key not in _EXCEEDED:
        _EXCEEDED[key] = (
            BudgetExceeded
            if len(bases) == 1
            else type("BudgetExceeded", key, {"__module__": BudgetExceeded.__module__})
        )
    return _EXCEEDED[key]


def decode(body: bytes) -> dict[str, Any] | None:
    try:
        obj = _dec.decode(body)
    except msgspec.DecodeError:
        return None
    return obj if isinstance(obj, dict) else None
