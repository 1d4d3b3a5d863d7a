"""``tailguard collect``: an OTLP/HTTP trace receiver writing through the write-ahead log.

``POST /v1/traces`` with an ``ExportTraceServiceRequest`` in protobuf
(``application/x-protobuf``) or JSON (``application/json``), optionally gzip. The answer follows
the OTLP/HTTP spec: 200 with an ``ExportTraceServiceResponse`` in the request's encoding,
carrying ``partial_success`` (``rejected_spans`` and the reasons) when some call spans could not
become events; 400 with a ``google.rpc.Status`` naming the fault for a body that cannot be read;
413 past ``max_body_mb``; 415 for another content type.

Durability: 200 means every span of the request is durable, one of two ways::

    request -> decode -> resolver -+- settled call spans -> events -> write-ahead log --+
                                   +- held spans + the request's span tree -> spool ----+-> 200

The spool (``LEDGER/otel-spool/``) keeps what the resolver needs after a crash: the call spans
still waiting for an ancestor's customer, and the parent / attribution of every span of the
request (so an ancestor that arrived before a crash still attributes a child that comes after
it). At start the spool is read back into the resolver; a span settled twice (once before a
crash, once after) has the same event id, ``otel-<trace>-<span>``, and the ledger keeps one. The
spool is rewritten from the live state (held spans, spans in flight, the span index) when it
passes ``spool_rewrite_bytes``, and the old files deleted only after the new one is synced.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import time
import zlib
from pathlib import Path
from typing import Any

import msgspec

from tailguard.httpbody import BodyTooLarge, gunzip, read_body
from tailguard.otel.attribution import Resolver
from tailguard.otel.config import OtelConfig
from tailguard.otel.ingest import convert
from tailguard.otel.mapping import wanted_attributes
from tailguard.otel.otlp import OtlpError, Span, spans_from_json, spans_from_protobuf

log = logging.getLogger("tailguard.otel")
_enc = msgspec.json.Encoder(decimal_format="number")
_dec = msgspec.json.Decoder()


def _status_pb(code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` in protobuf (code = field 1 varint, message = field 2)."""
    msg = message.encode()[:4000]
    n = len(msg)
    length = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        length.append(b | (0x80 if n else 0))
        if not n:
            break
    return bytes([0x08, code]) + b"\x12" + bytes(length) + msg


def _span_record(s: Span) -> dict[str, Any]:
    return {
        "t": s.trace_id,
        "s": s.span_id,
        "p": s.parent_id,
        "n": s.name,
        "k": s.kind,
        "b": s.start_ns,
        "e": s.end_ns,
        "a": s.attrs,
        "c": s.status_code,
        "m": s.status_message,
        "r": s.resource,
    }


def _span_of(d: dict[str, Any]) -> Span:
    return Span(
        d["t"], d["s"], d["p"], d["n"], d["k"], d["b"], d["e"], d["a"], d["c"], d["m"], d["r"]
    )


class Spool:
    """Append-only, fsynced JSON lines of span state; see the module docstring."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._fh: Any = None
        self.size = 0

    def read(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for p in sorted(self.dir.glob("spool-*.jsonl")):
            data = p.read_bytes()
            lines = data.split(b"\n")
            for line in lines[:-1]:  # a torn last line was never acknowledged
                if line:
                    try:
                        out.append(_dec.decode(line))
                    except msgspec.DecodeError:
                        log.warning("%s: skipping an unreadable spool line", p)
        return out

    def _open(self) -> None:
        p = self.dir / f"spool-{time.time_ns():020d}.jsonl"
        self._fh = p.open("ab", buffering=0)
        self.size = 0

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and fdatasync (blocking: run it in a thread)."""
        if self._fh is None:
            self._open()
        data = _enc.encode(record) + b"\n"
        os.write(self._fh.fileno(), data)
        os.fdatasync(self._fh.fileno())
        self.size += len(data)

    def rewrite(self, record: dict[str, Any]) -> None:
        """Replace every spool file by one holding ``record`` (synced before the deletes)."""
        old = sorted(self.dir.glob("spool-*.jsonl"))
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._open()
        self.write(record)
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        for p in old:
            if p != Path(self._fh.name):
                p.unlink(missing_ok=True)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class TraceReceiver:
    """The OTLP/HTTP trace route; ``submit(events) -> concurrent Future`` writes events
    durably (a ``WriteAheadLog.submit``)."""

    def __init__(
        self,
        submit: Any,
        spool_dir: Path,
        cfg: OtelConfig | None = None,
        *,
        max_body_bytes: int = 64 * 1024 * 1024,
        spool_rewrite_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.cfg = cfg or OtelConfig()
        self.submit = submit
        self.resolver = Resolver(self.cfg)
        self._keep = wanted_attributes(self.cfg)
        self.spool = Spool(spool_dir)
        self.max_body_bytes = max_body_bytes
        self.spool_rewrite_bytes = spool_rewrite_bytes
        self.stats = {"requests": 0, "spans": 0, "events": 0, "rejected": 0, "bad_requests": 0}
        self._inflight: dict[int, list[Span]] = {}
        self._ids = 0
        self._lock = asyncio.Lock()  # resolver + spool order within one event loop
        self._recover()

    def counters(self) -> dict[str, int]:
        """Requests, spans, events, rejected spans, bad requests; spans held now; spans settled
        under the unattributed customer, early (``max_held``) or at their time (``hold_s``)."""
        r = self.resolver
        return {**self.stats, "held": r.held, **r.counts}

    # --- recovery ------------------------------------------------------------------------------

    def _recover(self) -> None:
        records = self.spool.read()
        if not records:
            return
        spans: list[Span] = []
        for r in records:
            for n in r.get("nodes", []):
                self.resolver.restore_node(*n)
            spans.extend(_span_of(d) for d in r.get("held", []))
        settled = self.resolver.add(spans)
        events, bad = convert(settled, self.cfg)
        if events:
            self.submit(events).result()
        self.stats["rejected"] += len(bad)
        self.spool.rewrite(self._snapshot())
        log.info("otel spool: %d span(s) recovered, %d still held", len(spans), self.resolver.held)

    def _snapshot(self) -> dict[str, Any]:
        held = [_span_record(s) for s in self.resolver.held_spans()]
        held += [_span_record(s) for batch in self._inflight.values() for s in batch]
        return {"nodes": self.resolver.node_records(), "held": held}

    # --- the route -----------------------------------------------------------------------------

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        hdrs = dict(scope["headers"])
        ctype = hdrs.get(b"content-type", b"").split(b";")[0].strip().lower()
        proto = ctype == b"application/x-protobuf"
        if not proto and ctype != b"application/json":
            msg = "content-type must be application/x-protobuf or application/json"
            await self._fail(send, 415, msg, False)
            return
        body = await read_body(receive, self.max_body_bytes)
        if body is None:
            await self._fail(send, 413, f"body over {self.max_body_bytes} bytes", proto)
            return
        enc = hdrs.get(b"content-encoding", b"identity").lower()
        try:
            if enc == b"gzip":
                body = gunzip(body, self.max_body_bytes)
            elif enc not in (b"identity", b""):
                await self._fail(send, 415, f"unsupported content-encoding {enc!r}", proto)
                return
            keep = self._keep
            spans = spans_from_protobuf(body, keep) if proto else spans_from_json(body, keep)
        except (OtlpError, BodyTooLarge, OSError, EOFError, zlib.error) as exc:
            self.stats["bad_requests"] += 1
            await self._fail(send, 400, f"cannot read the export request: {exc}", proto)
            return
        rejected = await self.accept(spans)
        await self._ok(send, rejected, proto)

    async def accept(self, spans: list[Span]) -> list[str]:
        """Settle what can be, make everything durable; returns the reasons of rejected spans."""
        async with self._lock:
            settled = self.resolver.add(spans)
            events, bad = convert(settled, self.cfg)
            held = [s for s in self.resolver.held_spans_of(spans)]
            nodes = self.resolver.node_records_of(spans)
            self._ids += 1
            key = self._ids
            self._inflight[key] = [s for s, _k, _w in settled]
        try:
            waits = []
            if held or nodes:
                rec = {"nodes": nodes, "held": [_span_record(s) for s in held]}
                waits.append(asyncio.to_thread(self.spool.write, rec))
            if events:
                waits.append(asyncio.wrap_future(self.submit(events)))
            await asyncio.gather(*waits)
        finally:
            self._inflight.pop(key, None)
        self.stats["requests"] += 1
        self.stats["spans"] += len(spans)
        self.stats["events"] += len(events)
        self.stats["rejected"] += len(bad)
        await self._maybe_rewrite()
        return [why for _s, why in bad]

    async def tick(self) -> None:
        """Settle the spans held past ``hold_s`` (call every second or so)."""
        async with self._lock:
            settled = self.resolver.expire()
            events, bad = convert(settled, self.cfg)
            self._ids += 1
            key = self._ids
            self._inflight[key] = [s for s, _k, _w in settled]
        try:
            if events:
                await asyncio.wrap_future(self.submit(events))
        finally:
            self._inflight.pop(key, None)
        self.stats["events"] += len(events)
        self.stats["rejected"] += len(bad)
        await self._maybe_rewrite()

    async def _maybe_rewrite(self) -> None:
        if self.spool.size < self.spool_rewrite_bytes:
            return
        async with self._lock:
            snap = self._snapshot()
            await asyncio.to_thread(self.spool.rewrite, snap)

    def close(self) -> None:
        """At shutdown, without an event loop: the spool keeps what is held."""
        self.spool.rewrite(self._snapshot())
        self.spool.close()

    async def drain(self) -> None:
        """At shutdown: keep held spans in the spool (they wait on after a restart)."""
        async with self._lock:
            await asyncio.to_thread(self.spool.rewrite, self._snapshot())
            self.spool.close()

    # --- answers -------------------------------------------------------------------------------

    async def _ok(self, send: Any, rejected: list[str], proto: bool) -> None:
        if proto:
            body = b""
            if rejected:
                from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                    ExportTraceServiceResponse,
                )

                r = ExportTraceServiceResponse()
                r.partial_success.rejected_spans = len(rejected)
                r.partial_success.error_message = "; ".join(rejected[:20])
                body = r.SerializeToString()
            await _respond(send, 200, body, b"application/x-protobuf")
            return
        obj: dict[str, Any] = {}
        if rejected:
            obj["partialSuccess"] = {
                "rejectedSpans": len(rejected),
                "errorMessage": "; ".join(rejected[:20]),
            }
        await _respond(send, 200, _enc.encode(obj), b"application/json")

    async def _fail(self, send: Any, status: int, message: str, proto: bool) -> None:
        code = {400: 3, 413: 8, 415: 3}.get(status, 2)  # INVALID_ARGUMENT, RESOURCE_EXHAUSTED
        if proto:
            await _respond(send, status, _status_pb(code, message), b"application/x-protobuf")
        else:
            body = _enc.encode({"code": code, "message": message})
            await _respond(send, status, body, b"application/json")


async def _respond(send: Any, status: int, body: bytes, ctype: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def gzip_body(data: bytes) -> bytes:  # for tests and benches
    return gzip.compress(data)


class CollectApp:
    """The ``tailguard collect`` ASGI app: ``/v1/traces``, ``/healthz``; owns its log."""

    def __init__(
        self, ledger: str | os.PathLike[str], cfg: OtelConfig | None = None, **kw: Any
    ) -> None:
        from tailguard.events.batch import ts_window
        from tailguard.ledger.url import open_ledger
        from tailguard.ledger.wal import WriteAheadLog

        # a bad TAILGUARD_TS_WINDOW fails here, at start, not on the first span it would judge
        ts_window()
        led = open_ledger(ledger)  # a directory, or ClickHouse (the log stays local)
        self.ledger_spec = str(ledger)
        self.path = led.path
        prices = kw.pop("prices", None)
        book: list[Any] = [prices]

        def append(events: list[dict[str, Any]]) -> None:
            if book[0] is None:
                from tailguard.pricing import PriceBook

                book[0] = PriceBook.load()
            led.append(events, prices=book[0])

        self.fold_interval_s = kw.pop("flush_interval_s", 2.0)
        # fold in another process (see tailguard.otel.folder): this one only writes and rotates
        self.fold_process = kw.pop("fold_process", False)
        prices_path = kw.pop("prices_path", None)
        self.wal = WriteAheadLog(
            self.path / "wal",
            append,
            durability=kw.pop("durability", "fsync"),
            flush_interval_s=10**9 if self.fold_process else self.fold_interval_s,
        )
        self.wal.replay()
        self.receiver = TraceReceiver(self.wal.submit, self.path / "otel-spool", cfg, **kw)
        self._ticker: asyncio.Task[None] | None = None
        self._folder: Any = None
        if self.fold_process:
            import subprocess
            import sys

            self._folder = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tailguard.otel.folder",
                    self.ledger_spec,
                    str(os.getpid()),
                    str(self.fold_interval_s / 2),
                ],
                env=dict(
                    os.environ, **({"TAILGUARD_PRICES": str(prices_path)} if prices_path else {})
                ),
            )

    async def _tick_loop(self) -> None:
        last_rotate = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.receiver.tick()
                if self._folder is not None and time.monotonic() - last_rotate >= (
                    self.fold_interval_s
                ):
                    last_rotate = time.monotonic()
                    # close the live log file so that the fold process may take it
                    await asyncio.to_thread(self.wal._rotate)
            except Exception:
                log.exception("otel: settling held spans failed; will retry")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    self._ticker = asyncio.create_task(self._tick_loop())
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await self.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/v1/traces" and method == "POST":
            await self.receiver.handle(scope, receive, send)
        elif path == "/healthz":
            await _respond(send, 200, b'{"status":"ok"}', b"application/json")
        elif path == "/stats":
            await _respond(send, 200, _enc.encode(self.receiver.counters()), b"application/json")
        else:
            await _respond(send, 404, b'{"code":5,"message":"not found"}', b"application/json")

    async def aclose(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        await self.receiver.drain()
        if self._folder is not None:
            self._folder.terminate()
            await asyncio.to_thread(self._folder.wait, 60)
        await asyncio.to_thread(self.wal.close)
