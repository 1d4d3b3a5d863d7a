"""``POST /v1/events``: events recorded elsewhere (the SDK's ``HttpSink``) into the gateway's
write-ahead log.

Body: JSON lines, one event per line in the ledger's event schema (``docs/events.md``),
optionally ``Content-Encoding: gzip``. Answer (200)::

    {"accepted": 998, "rejected": [{"line": 7, "error": "..."}, ...]}

Accepted means durable: the answer waits for the log's acknowledgement (as a proxied call
does), so a client that got 200 never needs to resend; a client that resends anyway is not
double counted (the ledger drops event ids it holds). A line that fails validation is rejected
with its line number and the reason, and the others are still accepted (partial success).
The refusals are the ingest's (one rule for every way in): the event schema, a timestamp
outside the accepted window (``ts_window`` / ``TAILGUARD_TS_WINDOW``), and an object that gives
an event field twice (which value is meant?). A line refused here is answered as refused, never
accepted and then dropped when the log is folded into the ledger.

Who may write:

- the **ingest key** (``TAILGUARD_INGEST_KEY`` in the gateway's environment): the operator's
  key, events for any customer;
- a **virtual key** of a customer: only that customer's events (a line naming another customer
  is rejected), so a key handed to one tenant cannot write into another's bill.

Limits: the body (compressed and decompressed) is bounded by the gateway's ``max_body_mb``.

``POST /v1/traces`` is ``tailguard collect``'s OTLP/HTTP route on the gateway (same answers,
same spool under ``LEDGER/otel-spool``, events through the gateway's own log), for the ingest
key only: spans name their customers themselves, so a tenant's key may not send them.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import weakref
import zlib
from typing import TYPE_CHECKING, Any

import msgspec

from tailguard.events.batch import ts_window
from tailguard.events.jsonl import _repeated_key as repeated_key  # the ingest's own rule
from tailguard.events.schema import Event
from tailguard.httpbody import BodyTooLarge, gunzip, read_body

if TYPE_CHECKING:
    from tailguard.gateway.app import Gateway

Scope = dict[str, Any]
_event_dec = msgspec.json.Decoder(Event)
_enc = msgspec.json.Encoder(decimal_format="number")
INGEST_KEY_ENV = "TAILGUARD_INGEST_KEY"


async def _answer(send: Any, status: int, obj: Any) -> None:
    body = _enc.encode(obj)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error"}}


def parse_lines(
    body: bytes, customer: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Valid events (as dicts, money as Decimal) and rejected lines (``line``, ``error``)."""
    ok: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    raw_dec = msgspec.json.Decoder(float_hook=_decimal)
    window = ts_window()
    for n, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            ev = _event_dec.decode(line)
            key = repeated_key(line)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            bad.append({"line": n, "error": str(exc)})
            continue
        except ValueError as exc:  # a rule of the event (token relations, money bounds)
            bad.append({"line": n, "error": str(exc)})
            continue
        except RecursionError:  # the parsers' depth guard: this line's fault, not the server's
            bad.append({"line": n, "error": "objects nested too deeply"})
            continue
        if key is not None:
            bad.append({"line": n, "error": f"{key}: key given twice in one object"})
            continue
        if not window.start <= ev.ts < window.end:
            bad.append({"line": n, "error": f"ts: {window.reason()}"})
            continue
        if customer is not None and ev.customer_id != customer:
            bad.append(
                {"line": n, "error": f"this key may only write events of customer {customer!r}"}
            )
            continue
        ok.append(raw_dec.decode(line))
    return ok, bad


def _decimal(s: str) -> Any:
    from decimal import Decimal

    return Decimal(s)


def _is_ingest(hdrs: dict[bytes, bytes]) -> bool:
    auth = hdrs.get(b"authorization", b"")
    token = auth[7:].strip() if auth[:7].lower() == b"bearer " else hdrs.get(b"x-api-key", b"")
    ingest = os.environ.get(INGEST_KEY_ENV, "").encode()
    return bool(ingest and token and hmac.compare_digest(token, ingest))


_receivers: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _receiver(gw: Gateway) -> Any:
    """The gateway's trace receiver, made at the first ``/v1/traces`` request (with the
    task that settles spans held past their time)."""
    rx = _receivers.get(gw)
    if rx is None:
        from tailguard.otel.receiver import TraceReceiver

        assert gw.wal is not None
        rx = TraceReceiver(gw.wal.submit, gw.cfg.ledger / "otel-spool")
        loop = asyncio.get_running_loop()

        async def ticker() -> None:
            while True:
                await asyncio.sleep(1.0)
                await rx.tick()

        task = loop.create_task(ticker())

        def close() -> None:  # a gateway closer runs in a thread
            loop.call_soon_threadsafe(task.cancel)
            rx.close()

        gw.on_close(close)
        _receivers[gw] = rx
    return rx


async def traces(gw: Gateway, scope: Scope, receive: Any, send: Any) -> None:
    """The ASGI handler of ``POST /v1/traces`` on the gateway (OTLP/HTTP)."""
    if not _is_ingest(dict(scope["headers"])):
        await _answer(send, 401, {"code": 16, "message": "the ingest key is required"})
        return
    if gw.wal is None:
        await _answer(send, 503, {"code": 14, "message": "this gateway has no ledger"})
        return
    await _receiver(gw).handle(scope, receive, send)


async def handle(gw: Gateway, scope: Scope, receive: Any, send: Any) -> None:
    """The ASGI handler of ``POST /v1/events`` (registered by ``Gateway.__call__``)."""
    hdrs: dict[bytes, bytes] = dict(scope["headers"])
    customer: str | None
    if _is_ingest(hdrs):
        customer = None
    else:
        rec = gw._auth(hdrs)
        if rec is None:
            await _answer(send, 401, _error("Invalid or missing ingest key or virtual key."))
            return
        customer = rec.customer_id
    limit = int(getattr(gw.cfg, "max_body_bytes", 64 * 1024 * 1024))
    body = await read_body(receive, limit)
    if body is None:
        await _answer(send, 413, _error(f"The body is larger than {limit} bytes."))
        return
    enc = hdrs.get(b"content-encoding", b"identity").lower()
    if enc == b"gzip":
        try:
            body = gunzip(body, limit)
        except (zlib.error, EOFError):
            await _answer(send, 400, _error("The body is not valid gzip."))
            return
        except BodyTooLarge:
            await _answer(send, 413, _error(f"The decompressed body is over {limit} bytes."))
            return
    elif enc not in (b"identity", b""):
        await _answer(send, 415, _error(f"Unsupported content-encoding {enc.decode()!r}."))
        return
    if gw.wal is None:
        await _answer(send, 503, _error("This gateway has no ledger to write to."))
        return
    ok, bad = parse_lines(body, customer)
    if ok:
        await asyncio.wrap_future(gw.wal.submit(ok))
    await _answer(send, 200, {"accepted": len(ok), "rejected": bad})
