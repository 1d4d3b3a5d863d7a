"""The gateway: an OpenAI- and Anthropic-compatible reverse proxy that attributes, guards,
prices and records every call.

One request, in order:

1. **auth**, before a byte of the body is read: the virtual key (``Authorization: Bearer`` or
   ``x-api-key``) decides the customer; no or bad key is a 401 in the provider's error shape;
   then the body is read up to ``max_body_mb`` (a larger one is a 413, read no further);
2. **attribution**: ``X-Tailguard-User/-Feature/-Task/-Session/-Workload/-Attempt`` headers, else
   OpenAI ``user`` / Anthropic ``metadata.user_id`` for the user (a header never changes the
   customer);
3. **guard**: a reservation of the worst case — input bounded by the *request body's bytes*
   (``input_bound``: a bound that cannot under-count text) plus ``max_tokens`` /
   ``max_completion_tokens`` / ``max_output_tokens`` or ``default_max_output_tokens`` — priced
   at the model's list price; every number is bounded first (``door.py``);
   ``degrade`` rewrites the model, ``deny``/``kill`` answer 429 (or a graceful 200);
4. **forward** only the client headers of an allow-list (``config.FORWARD_HEADERS``: never
   ``OpenAI-Organization`` / ``OpenAI-Project``, which would bill the operator's key to another
   org or project), on one pooled client (aiohttp or httpx, ``upstream.py``); streams are passed
   on event by event as they arrive (never buffered whole); upstream errors pass through
   unchanged;
5. **record**: one ``llm_call`` event per upstream call (ok, upstream error, timeout, broken or
   abandoned stream — marked by ``status="error"`` and an ``error`` field; usage that breaks the
   ledger's rules, or none in an answer — repaired, ``status="usage_invalid"``), priced, settled
   against the reservation, written to the write-ahead log. The response is completed (last body
   message) only once the event is acknowledged by the log: a client that got a whole answer
   has its call in the ledger even if the gateway is SIGKILLed right after.

A raw ASGI app rather than a framework router: five routes, and the per-request budget is
tens of microseconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from tailguard.events.searches import web_search_events
from tailguard.gateway import door, replies
from tailguard.gateway.config import GatewayConfig, Upstream
from tailguard.gateway.keys import KeyRecord, KeyRing, hash_key
from tailguard.gateway.metrics import Metrics
from tailguard.gateway.upstream import (
    AiohttpClient,
    HttpxClient,
    Response,
    UpstreamError,
    UpstreamTimeout,
    make_client,
)
from tailguard.gateway.usage import (
    SseSplitter,
    StreamUsage,
    Usage,
    call_spend,
    from_body,
    openai_request_tier,
    settled_usd,
)
from tailguard.httpbody import read_body
from tailguard.vocabulary import WORKLOADS

if TYPE_CHECKING:
    from tailguard.pricing.cache import PriceCache

log = logging.getLogger("tailguard.gateway")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: how often the log's flusher merges the small segments it commits (``tailguard compact``)
COMPACT_EVERY_S = 600.0

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()
_UTC = dt.UTC

#: (method, path) -> (wire format, endpoint kind)
ROUTES: dict[tuple[str, str], tuple[str, str]] = {
    ("POST", "/v1/chat/completions"): ("openai", "chat"),
    ("POST", "/v1/responses"): ("openai", "responses"),
    ("POST", "/v1/embeddings"): ("openai", "embeddings"),
    ("GET", "/v1/models"): ("openai", "models"),
    ("POST", "/v1/messages"): ("anthropic", "messages"),
}
_WORKLOADS = frozenset(WORKLOADS)


class _Call:
    """Everything known about one proxied call, for its ledger event."""

    __slots__ = (
        "attempt",
        "customer",
        "degraded_from",
        "feature",
        "kind",
        "model",
        "reservation",
        "service_tier",
        "session",
        "t0",
        "task",
        "tier",
        "user",
        "wire",
        "workload",
    )

    def __init__(self, wire: str, kind: str, t0: float) -> None:
        self.wire = wire
        self.kind = kind
        self.t0 = t0
        self.customer = ""
        self.user: str | None = None
        self.feature: str | None = None
        self.task: str | None = None
        self.session: str | None = None
        self.workload: str | None = None
        self.attempt = 1
        self.model = ""
        self.reservation: Any = None
        #: the OpenAI service tier asked for when it changes the price (flex, priority)
        self.service_tier: str | None = None
        self.tier: str | None = None
        self.degraded_from: str | None = None

    def extra_headers(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """Tell the client when the guard changed its model (``x-tailguard-decision``)."""
        if self.degraded_from is None:
            return headers
        return [
            *headers,
            (b"x-tailguard-decision", b"degrade"),
            (b"x-tailguard-requested-model", self.degraded_from.encode()),
        ]


class Gateway:
    """The ASGI app. ``guard`` / ``book`` / ``wal`` are built by ``create_gateway``;
    ``transport`` replaces the network for in-process tests (``httpx.ASGITransport(mock)``)."""

    def __init__(
        self,
        cfg: GatewayConfig,
        *,
        guard: Any = None,
        book: Any = None,
        wal: Any = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.cfg = cfg
        self.guard = guard
        self.book = book
        self.wal = wal
        self.metrics = Metrics()
        self.keyring = KeyRing(cfg.keys)
        self._allowed_headers = frozenset(h.encode() for h in cfg.forward_headers)
        self._transport = transport
        self._client: HttpxClient | AiohttpClient | None = None
        self._ids = itertools.count()
        self._id_prefix = f"gw-{os.urandom(5).hex()}-"
        #: prices by (provider, model, tier), each kept for its window (shared with the SDK)
        self._prices = _price_cache(book)
        self._closers: list[Callable[[], Any]] = []

    @property
    def keys(self) -> dict[str, KeyRecord]:
        """The virtual keys in force (sha256 -> record)."""
        return self.keyring.keys

    @keys.setter
    def keys(self, value: dict[str, KeyRecord]) -> None:
        self.keyring.keys = value

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def client(self) -> HttpxClient | AiohttpClient:
        if self._client is None:
            self._client = make_client(
                self.cfg.http_client, timeout_s=self.cfg.timeout_s, transport=self._transport
            )
        return self._client

    async def aclose(self) -> None:
        """Close the upstream pool, then fold the write-ahead log into the ledger."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        for close in self._closers:
            await asyncio.to_thread(close)
        self._closers.clear()

    def on_close(self, fn: Callable[[], Any]) -> None:
        self._closers.append(fn)

    # --- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        t = scope["type"]
        if t == "http":
            path = scope["path"]
            route = ROUTES.get((scope["method"], path))
            if route is not None:
                await self._proxy(scope, receive, send, *route)
            elif path in ("/v1/events", "/v1/traces") and scope["method"] == "POST":
                from tailguard.gateway import events_route  # SDK events, OTLP traces

                route_fn = events_route.handle if path == "/v1/events" else events_route.traces
                await route_fn(self, scope, receive, send)
            elif path == "/healthz":
                await _respond(send, 200, b'{"status":"ok"}')
            elif path == "/metrics" and self.cfg.metrics:
                await self._metrics(scope, send)
            else:
                await _respond(send, 404, replies.error_body("openai", 404, f"no route {path}"))
        elif t == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await self.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _metrics(self, scope: Scope, send: Send) -> None:
        """Prometheus text; with ``metrics_token_env`` set, only for ``Bearer <token>``."""
        if self.cfg.metrics_token is not None:
            auth = dict(scope["headers"]).get(b"authorization", b"")
            want = b"Bearer " + self.cfg.metrics_token.encode()
            if not hmac.compare_digest(auth, want):
                await _respond(
                    send, 401, replies.error_body("openai", 401, "Metrics token needed.")
                )
                return
        wal = self.wal.stats if self.wal is not None else None
        await _respond(
            send,
            200,
            self.metrics.render(wal).encode(),
            content_type=b"text/plain; version=0.0.4; charset=utf-8",
        )

    # --- the proxy -----------------------------------------------------------------------------

    async def _proxy(
        self, scope: Scope, receive: Receive, send: Send, wire: str, kind: str
    ) -> None:
        call = _Call(wire, kind, time.perf_counter())
        hdrs: dict[bytes, bytes] = {}
        fwd: list[tuple[bytes, bytes]] = []
        allowed = self._allowed_headers
        for k, v in scope["headers"]:
            hdrs[k] = v
            if k in allowed:
                fwd.append((k, v))
        rec = self._auth(hdrs)  # before reading the body: an anonymous client costs nothing
        if rec is None:
            await self._fail(send, call, 401, "Invalid or missing tailguard virtual key.")
            return
        call.customer = rec.customer_id
        limit = self.cfg.max_body_bytes
        raw = await read_body(receive, limit, hdrs.get(b"content-length"))
        if raw is None:
            mb = limit / 1024 / 1024
            await self._fail(send, call, 413, f"The request body is larger than {mb:g} MB.")
            return

        body: dict[str, Any] = {}
        max_out: int | None = None
        n_choices = 1
        try:
            if kind != "models":
                try:
                    obj = _dec.decode(raw)
                except msgspec.DecodeError:
                    raise door.Refused(400, "The request body is not valid JSON.") from None
                if not isinstance(obj, dict):
                    raise door.Refused(400, "The request body must be a JSON object.")
                body = obj
                call.model = door.model(body)
                max_out = door.output_cap(body)
                if kind == "chat":
                    n_choices = door.choices(body)
            call.attempt = door.attempt(hdrs.get(b"x-tailguard-attempt"))
        except door.Refused as exc:
            await self._fail(send, call, exc.status, exc.message)
            return
        up = self.cfg.route(wire, call.model or "*") if kind != "models" else self._first(wire)
        if up is None:
            await self._fail(send, call, 404, f"No upstream serves model {call.model!r}.")
            return
        if kind == "models":
            await self._forward_plain(send, call, up, "GET", scope, b"", fwd)
            return

        self._attribute(call, hdrs, rec, body)
        stream = bool(body.get("stream"))
        changed = False
        if self.guard is not None:
            d = await self._check(call, max_out, n_choices, len(raw))
            self.metrics.decisions[d.action] += 1
            call.tier = d.tier
            if not d.allowed:
                await self._refuse(send, call, d, body, stream)
                return
            call.reservation = d.reservation
            if d.model and d.model != call.model:
                call.degraded_from = call.model
                body["model"] = call.model = d.model
                changed = True
                up = self.cfg.route(wire, call.model) or up  # the cheaper model may live elsewhere
        drop_usage = False
        if stream and kind == "chat":
            so = body.get("stream_options")
            if not (isinstance(so, dict) and so.get("include_usage")):
                body["stream_options"] = dict(so or {}, include_usage=True)
                drop_usage = changed = True
        if changed:
            raw = _enc.encode(body)
        self.metrics.overhead.observe(time.perf_counter() - call.t0)
        await self._forward(send, receive, call, up, scope, raw, fwd, drop_usage)

    def _first(self, wire: str) -> Upstream | None:
        return next((u for u in self.cfg.upstreams if u.provider == wire), None)

    def _auth(self, hdrs: dict[bytes, bytes]) -> KeyRecord | None:
        key = hdrs.get(b"x-api-key")
        if key is None:
            auth = hdrs.get(b"authorization", b"")
            if auth[:7].lower() == b"bearer ":
                key = auth[7:].strip()
        if not key:
            return None
        return self.keyring.get(hash_key(key.decode("latin-1")))

    def _attribute(
        self, call: _Call, hdrs: dict[bytes, bytes], rec: KeyRecord, body: dict[str, Any]
    ) -> None:
        def h(name: bytes) -> str | None:
            v = hdrs.get(name)
            return v.decode("utf-8", "replace") if v else None

        user = h(b"x-tailguard-user") or rec.user_id
        if user is None:
            if call.wire == "anthropic":
                md = body.get("metadata")
                u = md.get("user_id") if isinstance(md, dict) else None
            else:
                u = body.get("user")
            user = u if isinstance(u, str) and u else None
        if user is not None and self.cfg.user_hash_key:
            user = (
                "h:"
                + hmac.new(self.cfg.user_hash_key, user.encode(), hashlib.sha256).hexdigest()[:32]
            )
        call.user = user
        call.feature = h(b"x-tailguard-feature")
        call.task = h(b"x-tailguard-task")
        call.session = h(b"x-tailguard-session")
        if call.wire == "openai":  # reserve at the tier asked for: priority costs more
            call.service_tier = openai_request_tier(body)
        wl = h(b"x-tailguard-workload")
        call.workload = wl if wl in _WORKLOADS else None

    # --- guard ---------------------------------------------------------------------------------

    def _price_cache(self) -> PriceCache:
        """The prices in force at a time, each resolved once per model and window
        (``tailguard.pricing.cache``; the gateway multiplies itself, ``ModelPrice.cost``)."""
        prices = self._prices
        if prices.book is not self.book:  # the book was replaced: its prices with it
            prices = self._prices = _price_cache(self.book)
        return prices

    async def _check(self, call: _Call, cap: int | None, n_choices: int, nbytes: int) -> Any:
        """Reserve the worst case: the input bound plus the output cap for each of the ``n``
        completions asked for (OpenAI chat's ``n``)."""
        from tailguard.guard import Request

        est_in = input_bound(nbytes)
        max_out = (cap if cap is not None else self.cfg.default_max_output_tokens) * n_choices
        if call.kind == "embeddings":
            max_out = 0
        # at the tier asked for, else the standard price: a tier without one (an operator
        # price is the standard tier's) still reserves, never $0 (the call is recorded
        # unpriced and settled at what was reserved); the SDK reserves with the same function
        est = self._price_cache().reservation_usd(
            call.wire, call.model, call.service_tier, input_tokens=est_in, output_tokens=max_out
        )
        return await self.guard.acheck(
            Request(
                call.customer,
                est,
                model=call.model,
                input_tokens=est_in,
                max_output_tokens=max_out,
                user_id=call.user,
                task_id=call.task,
                session_id=call.session,
                feature=call.feature,
            )
        )

    async def _refuse(
        self, send: Send, call: _Call, d: Any, body: dict[str, Any], stream: bool
    ) -> None:
        msg = d.message or "This request was refused by the usage policy."
        if (
            d.graceful
            and d.rule != "invalid_request"
            and call.kind in ("chat", "responses", "messages")
        ):
            so = body.get("stream_options")
            inc = isinstance(so, dict) and bool(so.get("include_usage"))
            out = replies.graceful(call.kind, call.model, msg, stream=stream, include_usage=inc)
            ctype = b"text/event-stream" if stream else b"application/json"
            extra = [(b"x-tailguard-decision", d.action.encode())]
            await _respond(send, 200, out, content_type=ctype, headers=extra)
            self._count(call, 200)
            return
        extra = [(b"x-tailguard-decision", d.action.encode())]
        if d.retry_after is not None:
            extra.append((b"retry-after", str(int(d.retry_after)).encode()))
        else:
            # the SDKs retry a 429 on their own; "not by waiting" must not look retryable soon
            extra.append((b"x-should-retry", b"false"))
        code = "session_killed" if d.action == "kill" else "tailguard_" + (d.rule or "limit")
        # a request the guard cannot plan (numbers out of range) is the client's error, not a
        # limit: 400, never retried (the door refuses most of these before the guard is asked)
        status = 400 if d.rule == "invalid_request" else 429
        body_ = replies.error_body(call.wire, status, msg, code=code)
        await _respond(send, status, body_, headers=extra)
        self._count(call, status)

    # --- forwarding ----------------------------------------------------------------------------

    def _target(
        self, up: Upstream, scope: Scope, fwd: list[tuple[bytes, bytes]]
    ) -> tuple[str, list[tuple[bytes, bytes]]]:
        path = scope["path"]
        url = up.base_url + (path[3:] if up.base_url.endswith("/v1") else path)
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        headers = list(fwd)
        headers.append((b"accept-encoding", b"identity"))
        key = up.api_key()
        if key:
            if up.provider == "anthropic":
                headers.append((b"x-api-key", key.encode()))
            else:
                headers.append((b"authorization", b"Bearer " + key.encode()))
        return url, headers

    async def _forward_plain(
        self,
        send: Send,
        call: _Call,
        up: Upstream,
        method: str,
        scope: Scope,
        raw: bytes,
        fwd: list[tuple[bytes, bytes]],
    ) -> None:
        url, headers = self._target(up, scope, fwd)
        try:
            resp = await self.client.send(method, url, headers, raw)
            try:
                content = await resp.read()
            finally:
                await resp.close()
        except UpstreamError as exc:
            log.warning("upstream %s unreachable: %s", up.provider, exc)
            await self._fail(send, call, 502, "The upstream provider could not be reached.")
            return
        await _respond(send, resp.status, content, headers=resp.headers)
        self._count(call, resp.status)

    async def _forward(
        self,
        send: Send,
        receive: Receive,
        call: _Call,
        up: Upstream,
        scope: Scope,
        raw: bytes,
        fwd: list[tuple[bytes, bytes]],
        drop_usage: bool,
    ) -> None:
        url, headers = self._target(up, scope, fwd)
        try:
            resp = await self.client.send("POST", url, headers, raw)
        except UpstreamTimeout:
            await self._record(call, Usage(), 504, "timeout")
            await self._fail(send, call, 504, "The upstream provider timed out.")
            return
        except UpstreamError as exc:
            # the detail (host, port, errno) is for the operator's log, not the client
            log.warning("upstream %s unreachable: %s", up.provider, exc)
            await self._record(call, Usage(), 502, "upstream_unreachable")
            await self._fail(send, call, 502, "The upstream provider could not be reached.")
            return
        try:
            if resp.status >= 400 or not resp.content_type.startswith("text/event-stream"):
                try:
                    content = await resp.read()
                except UpstreamError:
                    await self._record(call, Usage(), 502, "upstream_broken")
                    await self._fail(send, call, 502, "The upstream response was cut short.")
                    return
                ok = resp.status < 400
                usage = from_body(call.wire, content) if ok else Usage()
                ack = await self._record(call, usage, resp.status, None if ok else "upstream_error")
                headers = call.extra_headers(
                    [*resp.headers, (b"content-length", str(len(content)).encode())]
                )
                await send(
                    {"type": "http.response.start", "status": resp.status, "headers": headers}
                )
                await ack
                await send({"type": "http.response.body", "body": content})
                self._count(call, resp.status)
                return
            await self._stream(send, receive, call, resp, drop_usage)
        finally:
            await resp.close()

    async def _stream(
        self, send: Send, receive: Receive, call: _Call, resp: Response, drop_usage: bool
    ) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    gone.set()
                    return

        watcher = asyncio.ensure_future(watch())
        tracker = StreamUsage(call.wire, drop_usage_chunk=drop_usage)
        split = SseSplitter()
        err: str | None = None
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": resp.status,
                    "headers": call.extra_headers(resp.headers),
                }
            )
            try:
                async for chunk in resp.chunks():
                    out = [ev for ev in split.feed(chunk) if tracker.feed(ev)]
                    if gone.is_set():
                        err = "client_disconnect"
                        break
                    if out:
                        await send(
                            {"type": "http.response.body", "body": b"".join(out), "more_body": True}
                        )
            except UpstreamError:
                err = "stream_broken"
            except OSError:
                err = "client_disconnect"
            if err is None and not tracker.done:
                err = "stream_broken"
            rest = split.rest()
            ack = await self._record(call, tracker.usage, resp.status, err)
            await ack
            if err is None:
                await send({"type": "http.response.body", "body": rest, "more_body": False})
            elif err == "stream_broken":
                # return without the last message: the server closes the connection without
                # the terminating chunk, so the client sees a broken stream too, never a short
                # answer that looks complete
                log.warning("upstream %s stream for %s broke off", call.wire, call.model)
            self._count(call, resp.status)
        finally:
            watcher.cancel()

    # --- recording -----------------------------------------------------------------------------

    async def _record(self, call: _Call, usage: Usage, http_status: int, error: str | None) -> Any:
        """Price, settle and log one upstream call; returns an awaitable acknowledgement."""
        now = time.perf_counter()
        # one instant for the price and the event's ts: the ledger prices the event at its ts,
        # so the guard settles what the ledger will charge, even across a price change
        prices = self._price_cache()
        when = prices.clock()
        cost: Decimal | None = None
        problem: str | None = None
        if usage.seen:  # reported usage must obey the ledger's rules (a cut stream's too)
            problem = "; ".join(usage.repair()) or None
        elif error is None:  # answered without usage: recorded flagged, never `ok` with 0
            problem = usage.unreadable or "no usage in the response"
        if problem is not None:
            log.warning("%s %s: usage_invalid: %s", call.wire, call.model, problem)
        if usage.seen and problem is None:
            mp = prices.price(call.wire, call.model, usage.service_tier, at=when)
            if mp is not None:  # else unknown model: recorded unpriced by the ledger
                cost = usage.token_cost(mp)
        search_usd: Decimal | None = None
        # the searches of a call whose usage is invalid are unpriced like the call
        if usage.web_searches and self.book is not None and problem is None:
            # what ``import anthropic-usage`` charges a search: genai-prices, else $10 per 1,000
            search_usd = self.book.web_search_usd(call.model, provider=call.wire)
        spent = call_spend(cost, search_usd, usage.web_searches)
        if self.guard is not None and call.reservation is not None:
            if problem is not None:
                # the real cost is unknown: keep the worst case that was reserved
                r = call.reservation.request
                await self.guard.asettle(
                    call.reservation,
                    r.estimated_cost_usd,
                    input_tokens=r.input_tokens,
                    output_tokens=r.max_output_tokens,
                )
            elif usage.seen:  # its cost, or without a price what was reserved (settled_usd)
                r = call.reservation.request
                await self.guard.asettle(
                    call.reservation,
                    settled_usd(cost, search_usd, usage.web_searches, r.estimated_cost_usd),
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                )
            else:
                await self.guard.arelease(call.reservation)
        m = self.metrics
        m.latency[call.kind].observe(now - call.t0)
        m.tokens[(call.wire, "input")] += usage.input_tokens
        m.tokens[(call.wire, "output")] += usage.output_tokens
        if cost is not None or search_usd is not None:
            m.spend[call.tier or "none"] += float(spent)
        if error is not None:
            m.upstream_errors[(call.wire, error)] += 1
        if problem is not None:
            m.upstream_errors[(call.wire, "usage_invalid")] += 1
        ev: dict[str, Any] = {
            "event_id": self._id_prefix + format(next(self._ids), "x"),
            "kind": "llm_call",
            "ts": when.isoformat(),
            "customer_id": call.customer,
            "user_id": call.user,
            "feature": call.feature,
            "task_id": call.task,
            "session_id": call.session,
            "workload": call.workload,
            "attempt": call.attempt,
            "provider": call.wire,
            "model": call.model,
            **usage.as_event(),
            **usage.pricing_inputs(),
            "latency_ms": round((now - call.t0) * 1000, 3),
            "status": "ok" if error is None else "error",
        }
        if problem is not None or error is not None:
            ev["status"] = "usage_invalid" if problem is not None else "error"
            ev["error"] = "; ".join(x for x in (error, problem) if x)
            ev["http_status"] = http_status
        events = [ev]
        # each server-side web search is a tool_call, as ``import anthropic-usage`` records them
        if usage.web_searches:
            envelope = {
                "ts": ev["ts"], "customer_id": call.customer, "user_id": call.user,
                "feature": call.feature, "task_id": call.task, "session_id": call.session,
            }  # fmt: skip
            price = None if search_usd is None else str(search_usd)
            events += web_search_events(
                ev["event_id"],
                envelope,
                usage.web_searches,
                price,
                usage_invalid=problem is not None,
            )
        if self.wal is None:
            return _done()
        return asyncio.wrap_future(self.wal.submit(events))

    async def _fail(self, send: Send, call: _Call, status: int, message: str) -> None:
        await _respond(send, status, replies.error_body(call.wire, status, message))
        self._count(call, status)

    def _count(self, call: _Call, status: int) -> None:
        self.metrics.requests[(call.kind, f"{status // 100}xx")] += 1


def _price_cache(book: Any) -> PriceCache:
    # imported here: ``tailguard.pricing`` loads genai-prices, which importing the app does not
    from tailguard.pricing.cache import PriceCache

    return PriceCache(book)


def input_bound(body_bytes: int) -> int:
    """The input tokens a request is reserved for: the size of its body in bytes.

    A bound that cannot under-count text: OpenAI's and Anthropic's tokenizers are byte-level
    BPE, so every token covers at least one byte of UTF-8 text; the JSON body holds every byte of
    every text (escapes only lengthen it) plus keys and punctuation, about 30 bytes per message,
    which cover the few framing tokens a chat format adds per message. The former bytes / 4
    under-counted short words ("a a a": one token per two bytes, +30% over a hard cap).
    Price of the bound: English is over-reserved about 4x until the call settles, so a customer
    within that margin of a hard cap is refused a little early. Not covered: images, audio and
    files (their tokens are not bytes of the body); docs/guard.md states the overspend bound.
    """
    return body_bytes


async def _done() -> None:
    return None


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = b"application/json",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    h = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if headers:
        h.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": h})
    await send({"type": "http.response.body", "body": body})


def create_gateway(
    cfg: GatewayConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    replay: bool = True,
) -> Gateway:
    """Build the whole gateway from a config: price book, guard (with its events going to the
    write-ahead log), the log itself (replayed into the ledger first)."""
    from tailguard.events.batch import ts_window
    from tailguard.ledger.url import open_ledger
    from tailguard.ledger.wal import WriteAheadLog
    from tailguard.pricing import PriceBook

    # a bad TAILGUARD_TS_WINDOW fails here, at start, not on the first call it would refuse
    ts_window()
    book = PriceBook.load(cfg.prices) if cfg.prices else PriceBook.load()
    ledger = open_ledger(cfg.ledger_url or cfg.ledger)  # a directory or ClickHouse (issue 14)

    last_compact = [time.monotonic()]

    def append(events: list[dict[str, Any]]) -> None:
        ledger.append(events, prices=book)
        # The log commits a segment every few seconds: merge them now and then, so reports
        # do not open tens of thousands of tiny files (safe while everything else runs).
        if time.monotonic() - last_compact[0] >= COMPACT_EVERY_S:
            last_compact[0] = time.monotonic()
            ledger.compact()

    wal = WriteAheadLog(
        cfg.ledger / "wal",
        append,
        durability=cfg.durability,  # type: ignore[arg-type]
        flush_interval_s=cfg.flush_interval_s,
    )
    if replay:
        wal.replay()
    guard = None
    store: Any = None
    if cfg.policy is not None:
        from tailguard.customers import customers_from_ledger
        from tailguard.guard import Guard, load_policy

        policy = load_policy(cfg.policy)
        if cfg.redis_url:
            from tailguard.guard.stores.redis import RedisStore

            store = RedisStore(cfg.redis_url)
        else:
            from tailguard.guard.stores.memory import MemoryStore

            store = MemoryStore(cfg.ledger / "guard")
        guard = Guard(policy, store, sink=wal.sink, customers=customers_from_ledger(ledger))
    gw = Gateway(cfg, guard=guard, book=book, wal=wal, transport=transport)
    if guard is not None:
        gw.on_close(guard.close)
    gw.on_close(wal.close)
    return gw
