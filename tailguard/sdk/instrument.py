"""Instrumenting an OpenAI or Anthropic client: a tap on its HTTP transport.

``tg.instrument(client)`` replaces the transport of the client's HTTP pool (``httpx`` or the
``httpx2`` fork the current SDKs ship with) by a wrapper around it. Every ``POST`` to
``…/chat/completions``, ``…/responses``, ``…/embeddings`` or ``…/messages`` becomes one
``llm_call`` event; anything else passes untouched.

Why the transport and not the SDK's methods: one place sees every endpoint, streaming or not,
sync or async, ``with_raw_response`` and ``with_streaming_response`` included, and each HTTP
attempt of the SDK's own retry loop separately (``attempt`` = the SDK's
``x-stainless-retry-count`` + 1). Usage is read from the provider's own bytes with the gateway's
parser (``tailguard.gateway.usage``), so the SDK and the gateway count tokens the same way (the
OpenTelemetry convention: input includes cache reads and writes, output includes reasoning).

On the application's thread: a suffix test on the path, a substring test on the body, and a
list append per response chunk. The bytes are parsed on the flusher thread, except in two cases:

- an OpenAI chat stream whose caller did not ask for usage: the request is rewritten with
  ``stream_options.include_usage`` (and ``accept-encoding: identity``) and the usage-only chunk
  that this causes is cut out of the stream before the SDK sees it (as the gateway does), so the
  events are split as they pass;
- a non-streamed body over 64 KiB (large embeddings): its usage is read when it ends, so the
  queue never holds megabytes.

Marked, never dropped: an HTTP error (``status`` error, ``error`` ``http_429``...), a transport
failure (``error`` the exception's name), a stream closed before its end (``stream_cancelled``),
broken (``stream_broken``) or never closed (``stream_abandoned``, at garbage collection), and a
successful answer without usage, or with usage that breaks the ledger's rules (``status``
``usage_invalid``, as the gateway records it: left unpriced, never priced as zero).
"""

from __future__ import annotations

import functools
import gzip
import importlib
import logging
import time
import zlib
from typing import TYPE_CHECKING, Any

import msgspec

from tailguard.gateway.usage import (
    SseSplitter,
    StreamUsage,
    Usage,
    add_anthropic,
    from_openai,
    openai_tier,
)
from tailguard.sdk.scope import Task, current_task

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from tailguard.sdk.guard import CallGuard
    from tailguard.sdk.recorder import Recorder

log = logging.getLogger("tailguard.sdk")

_PATHS = (
    ("/chat/completions", "chat"),
    ("/responses", "responses"),
    ("/embeddings", "embeddings"),
    ("/messages", "messages"),
)
_BIG = 64 * 1024
_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()


class _ModelOnly(msgspec.Struct):
    model: Any = None


class _UsageOnly(msgspec.Struct):
    usage: Any = None
    service_tier: Any = None  # OpenAI's: the tier the call was served at


_model_dec = msgspec.json.Decoder(_ModelOnly)
_usage_dec = msgspec.json.Decoder(_UsageOnly)


def _decode_body(data: bytes, encoding: str | None) -> bytes:
    enc = (encoding or "identity").lower().strip()
    if enc in ("identity", ""):
        return data
    if enc == "gzip":
        return gzip.decompress(data)
    if enc == "deflate":
        try:
            return zlib.decompress(data)
        except zlib.error:
            return zlib.decompress(data, -zlib.MAX_WBITS)
    if enc == "br":
        import brotli  # type: ignore[import-not-found]  # present when the server chose br

        return bytes(brotli.decompress(data))
    if enc == "zstd":
        import zstandard  # type: ignore[import-not-found]

        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))
    raise ValueError(f"unknown content-encoding {encoding!r}")


def _usage_of_json(wire: str, body: bytes) -> Usage:
    """``tailguard.gateway.usage.from_body`` with a decoder that skips all but the usage and
    the tier (a large embeddings body is read on the caller's thread)."""
    obj = _usage_dec.decode(body)
    if wire == "anthropic":
        acc = Usage()
        add_anthropic(acc, obj.usage)
        return acc
    return from_openai(obj.usage, openai_tier({"service_tier": obj.service_tier}))


class CallRecord:
    """One HTTP attempt to a provider, as the tap saw it; ``fields()`` runs on the flusher."""

    __slots__ = (
        "attempt",
        "broken",
        "chunks",
        "done",
        "drop",
        "encoding",
        "error",
        "guard",
        "kind",
        "latency_ms",
        "problem",
        "provider",
        "request",
        "reservation",
        "rewritten",
        "splitter",
        "sse",
        "started",
        "status_code",
        "stream_usage",
        "t0",
        "task",
        "usage",
        "wire",
    )

    def __init__(self, task: Task | None, provider: str, kind: str, request: bytes) -> None:
        self.task = task
        self.provider = provider
        self.kind = kind
        self.wire = "anthropic" if kind == "messages" else "openai"
        self.request = request
        self.started = time.time()
        self.t0 = time.perf_counter()
        self.attempt = 1
        self.drop = False
        self.sse = False
        self.status_code = 0
        self.encoding: str | None = None
        self.chunks: list[bytes] = []
        self.splitter: SseSplitter | None = None
        self.stream_usage: StreamUsage | None = None
        self.usage: Usage | None = None
        #: after ``fields()``: why the usage is invalid (None: it is not)
        self.problem: str | None = None
        self.done = False
        self.error: str | None = None
        self.broken: str | None = None
        self.latency_ms = 0.0
        self.guard: CallGuard | None = None
        self.reservation: Any = None
        self.rewritten = False

    # --- app thread ----------------------------------------------------------------------------

    def take(self, chunk: bytes) -> bytes:
        """A response chunk passing to the SDK; returns what the SDK should see."""
        if self.splitter is None:
            self.chunks.append(chunk)
            return chunk
        su = self.stream_usage
        assert su is not None
        return b"".join([e for e in self.splitter.feed(chunk) if su.feed(e)])

    def rest(self) -> bytes:
        """At the stream's proper end: what the splitter still holds (an unterminated event)."""
        if self.splitter is None:
            return b""
        rest = self.splitter.rest()
        su = self.stream_usage
        return rest if rest and su is not None and su.feed(rest) else b""

    def end(self) -> None:
        """The response was closed: fix the latency, settle big bodies now."""
        self.latency_ms = round((time.perf_counter() - self.t0) * 1000, 3)
        if self.stream_usage is not None:
            self.usage = self.stream_usage.usage
            self.done = self.stream_usage.done
            self.splitter = self.stream_usage = None
        elif not self.sse and self.status_code < 400 and sum(map(len, self.chunks)) > _BIG:
            try:
                body = _decode_body(b"".join(self.chunks), self.encoding)
                self.usage = _usage_of_json(self.wire, body)
                self.done = True
            except Exception:
                self.error = "undecodable_body"
            self.chunks = []

    # --- flusher thread ------------------------------------------------------------------------

    def fields(self) -> dict[str, Any]:
        """The ``llm_call`` fields (everything but the envelope)."""
        try:
            model = _model_dec.decode(self.request).model
        except msgspec.DecodeError:
            model = None
        usage, err = self._usage()
        # as the gateway records it: usage that breaks the ledger's rules, or none in an
        # answer, is repaired and flagged ``usage_invalid`` (left unpriced, never priced as 0)
        problem = "; ".join(usage.repair()) or None if usage.seen else None
        if err == "usage_missing":
            err, problem = None, "no usage in the response"
        # the recorder reads the web searches (``usage.web_searches``) and the problem from here
        self.usage, self.problem = usage, problem
        ev: dict[str, Any] = {
            "provider": self.provider,
            "model": model if isinstance(model, str) and model else "(unknown)",
            "attempt": self.attempt,
            **usage.as_event(),
            # the service tier and the 1-hour cache writes, as the gateway records them
            **usage.pricing_inputs(),
            "latency_ms": self.latency_ms,
            "status": "usage_invalid" if problem else "error" if err is not None else "ok",
        }
        if err is not None or problem is not None:
            ev["error"] = "; ".join(x for x in (err, problem) if x)
            if self.status_code:
                ev["http_status"] = self.status_code
        return ev

    def _usage(self) -> tuple[Usage, str | None]:
        if self.error is not None:
            return Usage(), self.error
        if self.status_code >= 400:
            return Usage(), f"http_{self.status_code}"
        usage, done = self.usage, self.done
        if usage is None:
            try:
                body = _decode_body(b"".join(self.chunks), self.encoding)
            except Exception:
                return Usage(), "undecodable_body"
            if self.sse:
                su = StreamUsage(self.wire)
                sp = SseSplitter()
                for e in [*sp.feed(body), sp.rest()]:
                    if e:
                        su.feed(e)
                usage, done = su.usage, su.done
            else:
                try:
                    usage, done = _usage_of_json(self.wire, body), True
                except msgspec.DecodeError:
                    return Usage(), "undecodable_body"
        if not done:
            return usage, self.broken or "stream_cancelled"
        if not usage.seen:
            return usage, "usage_missing"
        return usage, None


# --- the transport and stream wrappers, one pair per httpx flavour ----------------------------


class _TapBase:
    _inner: Any
    _rec: CallRecord
    _recorder: Recorder
    _fin: bool

    def _setup(self, inner: Any, rec: CallRecord, recorder: Recorder) -> None:
        self._inner = inner
        self._rec = rec
        self._recorder = recorder
        self._fin = False

    def _finish(self, why: str | None = None) -> None:
        if self._fin:
            return
        self._fin = True
        try:
            rec = self._rec
            if why is not None and rec.broken is None:
                rec.broken = why
            rec.end()
            self._recorder.put(("call", rec))
        except Exception:
            log.exception("tailguard: could not record a call")

    def __del__(self) -> None:
        if not getattr(self, "_fin", True):
            self._finish("stream_abandoned")


class _SyncTap(_TapBase):
    def __init__(self, inner: Any, rec: CallRecord, recorder: Recorder) -> None:
        self._setup(inner, rec, recorder)

    def __iter__(self) -> Iterator[bytes]:
        rec = self._rec
        try:
            for chunk in self._inner:
                out = rec.take(chunk)
                if out:
                    yield out
            rest = rec.rest()
            if rest:
                yield rest
        except GeneratorExit:
            raise
        except BaseException as exc:
            rec.broken = "stream_broken"
            if not rec.sse:
                rec.error = type(exc).__name__
            raise

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._finish()


class _AsyncTap(_TapBase):
    def __init__(self, inner: Any, rec: CallRecord, recorder: Recorder) -> None:
        self._setup(inner, rec, recorder)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        rec = self._rec
        try:
            async for chunk in self._inner:
                out = rec.take(chunk)
                if out:
                    yield out
            rest = rec.rest()
            if rest:
                yield rest
        except GeneratorExit:
            raise
        except BaseException as exc:
            rec.broken = "stream_cancelled" if _is_cancel(exc) else "stream_broken"
            if not rec.sse:
                rec.error = type(exc).__name__
            raise

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._finish()


def _is_cancel(exc: BaseException) -> bool:
    import asyncio

    return isinstance(exc, asyncio.CancelledError)


class _TransportBase:
    """Shared by the sync and async transports: decide, rewrite, start the record."""

    _inner: Any
    _recorder: Recorder
    _provider: str
    _mod: Any
    _tap: type

    _guard: CallGuard | None

    def __init__(
        self,
        inner: Any,
        recorder: Recorder,
        provider: str,
        mod: Any,
        tap: type,
        guard: CallGuard | None = None,
    ) -> None:
        self._inner = inner
        self._recorder = recorder
        self._provider = provider
        self._mod = mod
        self._tap = tap
        self._guard = guard

    def __getattr__(self, name: str) -> Any:
        if name in ("_inner", "_recorder", "_provider", "_mod", "_tap", "_guard"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    def _rebuild(self, request: Any, body: bytes, *, identity: bool = False) -> Any:
        """The same request with another body (and, for a stream we read, no compression)."""
        drop = (b"content-length", b"accept-encoding") if identity else (b"content-length",)
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in drop]
        if identity:
            headers.append((b"accept-encoding", b"identity"))
        return self._mod.Request(
            request.method,
            request.url,
            headers=headers,
            content=body,
            extensions=request.extensions,
        )

    def _guarded(self, rec: CallRecord, request: Any, decision: Any, body: Any) -> Any:
        """After the guard's decision: the request to send, or a graceful answer (a response)."""
        g = self._guard
        assert g is not None
        rec.guard = g
        out = g.outcome(rec, body, decision)  # raises BudgetExceeded on a plain deny / kill
        if out is not None:
            stream = bool(body.get("stream"))
            ctype = b"text/event-stream" if stream else b"application/json"
            return self._mod.Response(
                200,
                headers=[
                    (b"content-type", ctype),
                    (b"x-tailguard-decision", decision.action.encode()),
                ],
                content=out,
                request=request,
            )
        if rec.rewritten:
            return self._rebuild(request, rec.request, identity=rec.drop)
        return request

    def _begin(self, request: Any) -> tuple[Any, CallRecord | None]:
        if request.method != "POST":
            return request, None
        path = request.url.path
        kind = next((k for suffix, k in _PATHS if path.endswith(suffix)), None)
        if kind is None:
            return request, None
        try:
            body = request.content
            rec = CallRecord(current_task(), self._provider, kind, body)
            retry = request.headers.get("x-stainless-retry-count")
            if retry is not None and retry.isdigit():
                rec.attempt = int(retry) + 1
            if kind == "chat" and b'"stream"' in body:
                obj = _dec.decode(body)
                so = obj.get("stream_options")
                if obj.get("stream") is True and not (
                    isinstance(so, dict) and so.get("include_usage")
                ):
                    obj["stream_options"] = dict(so or {}, include_usage=True)
                    rec.drop = True
                    rec.request = body = _enc.encode(obj)
                    request = self._rebuild(request, body, identity=True)
            return request, rec
        except Exception:
            log.exception("tailguard: could not read a request; it passes unrecorded")
            return request, None

    def _wrap(self, rec: CallRecord, response: Any) -> None:
        rec.status_code = response.status_code
        ctype = response.headers.get("content-type", "")
        rec.sse = ctype.startswith("text/event-stream")
        rec.encoding = response.headers.get("content-encoding")
        content = getattr(response, "_content", None)
        if isinstance(content, bytes):
            # a response built from bytes (MockTransport, test doubles) was read, and decoded,
            # before the client saw it: its stream is never iterated nor closed again
            rec.chunks, rec.encoding = [content], None
            rec.end()
            self._recorder.put(("call", rec))
            return
        if rec.sse and rec.drop and rec.status_code < 400:
            rec.splitter = SseSplitter()
            rec.stream_usage = StreamUsage("openai", drop_usage_chunk=True)
        response.stream = self._tap(response.stream, rec, self._recorder)

    def _failed(self, rec: CallRecord, exc: BaseException) -> None:
        rec.error = "cancelled" if _is_cancel(exc) else type(exc).__name__
        rec.end()
        self._recorder.put(("call", rec))


class _SyncTransport(_TransportBase):
    def handle_request(self, request: Any) -> Any:
        request, rec = self._begin(request)
        if rec is None:
            return self._inner.handle_request(request)
        g = self._guard
        if g is not None:
            from tailguard.sdk.guard import decode

            body = decode(rec.request)
            if body is not None:
                d = g.guard.check(g.request(rec, body))
                request = self._guarded(rec, request, d, body)
                if not isinstance(request, self._mod.Request):
                    return request  # a graceful refusal: nothing was sent
        try:
            response = self._inner.handle_request(request)
        except BaseException as exc:
            self._failed(rec, exc)
            raise
        self._wrap(rec, response)
        return response

    def close(self) -> None:
        self._inner.close()


class _AsyncTransport(_TransportBase):
    async def handle_async_request(self, request: Any) -> Any:
        request, rec = self._begin(request)
        if rec is None:
            return await self._inner.handle_async_request(request)
        g = self._guard
        if g is not None:
            from tailguard.sdk.guard import decode

            body = decode(rec.request)
            if body is not None:
                d = await g.guard.acheck(g.request(rec, body))
                request = self._guarded(rec, request, d, body)
                if not isinstance(request, self._mod.Request):
                    return request  # a graceful refusal: nothing was sent
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException as exc:
            self._failed(rec, exc)
            raise
        self._wrap(rec, response)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@functools.cache
def _flavour(modname: str) -> tuple[Any, type, type]:
    """The module and the sync / async transport classes for ``httpx`` or ``httpx2``.

    The classes must derive from that module's own base classes: the client asserts that a
    response stream is its ``SyncByteStream`` / ``AsyncByteStream``.
    """
    mod = importlib.import_module(modname)
    stap = type("SyncTap", (_SyncTap, mod.SyncByteStream), {})
    atap = type("AsyncTap", (_AsyncTap, mod.AsyncByteStream), {})
    sync_t = type("TailguardTransport", (_SyncTransport, mod.BaseTransport), {"_tap_cls": stap})
    async_t = type(
        "AsyncTailguardTransport", (_AsyncTransport, mod.AsyncBaseTransport), {"_tap_cls": atap}
    )
    return mod, sync_t, async_t


def instrument(
    client: Any,
    recorder: Recorder,
    *,
    provider: str | None = None,
    guard: CallGuard | None = None,
) -> Any:
    """Tap ``client``'s transports in place and return the client (see the module docstring)."""
    http = getattr(client, "_client", None)
    if http is None or not hasattr(http, "_transport"):
        raise TypeError(
            f"cannot instrument {type(client).__name__}: expected openai.OpenAI, "
            "openai.AsyncOpenAI, anthropic.Anthropic or anthropic.AsyncAnthropic"
        )
    modname = next(
        (
            c.__module__.split(".")[0]
            for c in type(http).__mro__
            if c.__module__.split(".")[0] in ("httpx", "httpx2")
        ),
        None,
    )
    if modname is None:
        raise TypeError(f"{type(http).__name__} is not an httpx client")
    mod, sync_t, async_t = _flavour(modname)
    is_async = isinstance(http, mod.AsyncClient)
    cls = async_t if is_async else sync_t
    prov = provider or type(client).__module__.split(".")[0]

    def wrap(t: Any) -> Any:
        if isinstance(t, _TransportBase):  # instrumented twice: the newest recorder wins
            t = t._inner
        return cls(t, recorder, prov, mod, cls._tap_cls, guard)

    http._transport = wrap(http._transport)
    for pattern, t in list(http._mounts.items()):
        if t is not None:
            http._mounts[pattern] = wrap(t)
    return client
