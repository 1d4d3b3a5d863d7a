"""The SDK's hand-off: a bounded queue on the application's side, a flusher thread on the other.

::

    app thread(s)                         flusher thread (daemon)
    ─────────────                         ───────────────────────
    instrumented call ends ─┐             every flush_interval_s, or when batch_size are queued:
    task.tool(...) ─────────┼─> deque ──>   pop everything queued
    task.outcome(...) ──────┘  (bounded)    build event dicts (parse bodies, resolve customer)
                                            sink.send(events)  (write-ahead log / POST /v1/events)

Why this shape: the application's thread must neither block nor fail because of recording. Its
share is one ``deque.append`` of a tuple that holds references it already had (the request and
response bytes, the task, a timestamp); everything that costs (JSON decoding, ids, ISO
timestamps, the sink) happens on the flusher thread. ``deque.append`` and ``popleft`` are
atomic in CPython, so producers take no lock.

Bounded: past ``max_queue`` queued items a new one is dropped, counted in ``stats()["dropped"]``
and logged once (a warning): memory stays bounded when the sink is down or slower than the
application, and the loss is never silent. ``flush()`` drains on the caller's thread and waits
for the sink's acknowledgement (for the ledger sink: the write-ahead log's fsync, then the fold
into a segment).

Ids: ``<random prefix per Recorder>-<counter>``; the ledger drops ids it already holds, so an
event is counted once however often it is sent. (After ``os.fork`` call ``tailguard.connect``
again in the child: a thread does not survive a fork.)
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
import uuid
from collections import deque
from typing import Any, Protocol

from tailguard.errors import ArgumentError
from tailguard.sdk.scope import UNATTRIBUTED, Task

log = logging.getLogger("tailguard.sdk")
_UTC = dt.UTC


class Sink(Protocol):
    """Where built events go. ``send`` runs on the flusher thread and may block."""

    def send(self, events: list[dict[str, Any]]) -> None: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self) -> None: ...

    def stats(self) -> dict[str, int]: ...


class Recorder:
    """Queue + flusher thread in front of a sink; see the module docstring."""

    def __init__(
        self,
        sink: Sink,
        *,
        default_customer: str | None = None,
        max_queue: int = 10_000,
        flush_interval_s: float = 0.5,
        batch_size: int = 1_000,
        prices: Any = None,
    ) -> None:
        if max_queue < 1 or batch_size < 1 or flush_interval_s <= 0:
            raise ArgumentError(
                "max_queue", "max_queue and batch_size must be >= 1, flush_interval_s > 0"
            )
        self.sink = sink
        #: the operator price file (``connect(prices=)``) the web searches are priced with
        self.prices = prices
        self._book: Any = None
        self.default_customer = default_customer
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._q: deque[tuple[Any, ...]] = deque()
        self._prefix = "sdk-" + uuid.uuid4().hex[:16] + "-"
        self._ids = itertools.count(1)
        self._drain_lock = threading.Lock()
        self._drop_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self.counts = {
            "sent": 0,
            "dropped": 0,
            "unattributed": 0,
            "send_failed": 0,
            "build_failed": 0,
        }
        self._thread = threading.Thread(target=self._loop, name="tailguard-sdk", daemon=True)
        self._thread.start()

    # --- application side ----------------------------------------------------------------------

    def put(self, item: tuple[Any, ...]) -> None:
        """Queue one item; never blocks, never raises (past ``max_queue`` it is counted)."""
        q = self._q
        if len(q) >= self.max_queue or self._closed:
            with self._drop_lock:
                self.counts["dropped"] += 1
                first = self.counts["dropped"] == 1
            if first:
                log.warning(
                    "tailguard: event queue full (%d) or closed: dropping events; "
                    "see tg.stats()['dropped'] (logged once)",
                    self.max_queue,
                )
            return
        q.append(item)
        if len(q) >= self.batch_size:
            self._wake.set()

    def flush(self, timeout: float | None = 30.0) -> None:
        """Send everything queued now and wait for the sink's acknowledgement."""
        with self._drain_lock:  # the sink is touched by one thread at a time
            self._drain_locked()
            self.sink.flush(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush, stop the flusher thread, close the sink (idempotent)."""
        if self._closed:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._drain()
        self._closed = True
        self._drain()  # anything queued between the two drains
        self.sink.close()

    def stats(self) -> dict[str, int]:
        return {**self.counts, "queued": len(self._q), **self.sink.stats()}

    # --- flusher side --------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            try:
                self._drain()
            except Exception:  # the thread must outlive any one bad batch
                log.exception("tailguard: flushing events failed; will retry")

    def _drain(self) -> None:
        with self._drain_lock:
            self._drain_locked()

    def _drain_locked(self) -> None:
        n = len(self._q)
        if not n:
            return
        events: list[dict[str, Any]] = []
        for _ in range(n):
            item = self._q.popleft()
            if item[0] == "raw":  # ready-made events (the guard's own)
                events.extend(item[1])
                continue
            try:
                events.extend(self._build(item))
            except Exception:
                self.counts["build_failed"] += 1
                log.exception("tailguard: could not build an event from %r", item[:2])
        if not events:
            return
        try:
            self.sink.send(events)
            self.counts["sent"] += len(events)
        except Exception:
            self.counts["send_failed"] += len(events)
            log.exception("tailguard: the sink refused %d event(s)", len(events))

    def _build(self, item: tuple[Any, ...]) -> list[dict[str, Any]]:
        if item[0] == "event":
            _, task, ts, kind, fields = item
            ev = self._envelope(task, ts, kind)
            ev.update(fields)
            return [ev]
        call = item[1]  # ("call", CallRecord)
        ev = self._envelope(call.task, call.started, "llm_call")
        ev.update(call.fields())
        out = [ev]
        # each server-side web search is a tool_call, as the gateway records it (same function)
        n = call.usage.web_searches if call.usage is not None else 0
        search_usd = None
        if n:
            from tailguard.events.searches import web_search_events

            invalid = call.problem is not None
            if not invalid:  # the searches of a call whose usage is invalid are unpriced
                book = call.guard.book if call.guard is not None else self.book()
                search_usd = book.web_search_usd(ev["model"], provider=call.provider)
            envelope = {
                k: ev.get(k)
                for k in ("ts", "customer_id", "user_id", "feature", "task_id", "session_id")
            }
            price = None if search_usd is None else str(search_usd)
            out += web_search_events(ev["event_id"], envelope, n, price, usage_invalid=invalid)
        if call.guard is not None:  # settle the reservation with what the call cost
            call.guard.settle(call, ev, search_usd)
        return out

    def book(self) -> Any:
        """The price book (genai-prices and ``prices``), loaded on first use (flusher thread)."""
        if self._book is None:
            from tailguard.pricing import PriceBook

            self._book = PriceBook.load(self.prices) if self.prices else PriceBook.load()
        return self._book

    def _envelope(self, task: Task | None, ts: float, kind: str) -> dict[str, Any]:
        customer = task.customer if task is not None else None
        if customer is None:
            customer = self.default_customer
        if customer is None:
            customer = UNATTRIBUTED
            self.counts["unattributed"] += 1
        ev: dict[str, Any] = {
            "event_id": self._prefix + format(next(self._ids), "x"),
            "kind": kind,
            "ts": dt.datetime.fromtimestamp(ts, _UTC).isoformat(),
            "customer_id": customer,
        }
        if task is not None:
            ev["user_id"] = task.user
            ev["feature"] = task.feature
            ev["task_id"] = task.task_id
            ev["session_id"] = task.session
            ev["workload"] = task.workload
        return ev
