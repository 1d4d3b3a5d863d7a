"""Who a span is for: the span, then its ancestors in the trace, then the resource.

An application sets the customer once, on a parent span (or in baggage copied onto spans), not
on every LLM span. Children end, and are exported, before their parents, so the customer of a
call span is often unknown when it arrives::

    arrive:  chat span (no customer) ─┐ held
             tool span (no customer) ─┤ held
             request span (customer=acme, the root) ──> both released as acme

The ``Resolver`` keeps, per span seen, only its parent id and the attribution attributes it
carries (customer, user, feature, task, session, workload). A call span is settled as soon as
the walk up its ancestors meets a customer or the root; until then it is held, at most
``hold_s`` seconds (default 30) and ``max_held`` spans (default 100,000: past it the oldest is
settled early). Settled without a customer anywhere: the resource's, else the explicit
customer ``unattributed`` (counted). Every other field takes the nearest value on the same
walk, then the resource's.

Memory: the per-span index forgets spans older than ten times ``hold_s`` (at least five
minutes) and holds at most a million; a late child of a forgotten parent then falls back to the
resource (the same as a parent that never arrives).
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Iterable
from typing import Any

from tailguard.otel.config import OtelConfig
from tailguard.otel.mapping import kind_of
from tailguard.otel.otlp import Span
from tailguard.sdk.scope import UNATTRIBUTED

FIELDS = ("customer_id", "user_id", "feature", "task_id", "session_id", "workload")
MAX_NODES = 1_000_000

Who = dict[str, str | None]


class Resolver:
    """Attribution across batches; ``add`` returns the call spans it could settle."""

    def __init__(self, cfg: OtelConfig) -> None:
        self.cfg = cfg
        self._names: tuple[tuple[str, list[str]], ...] = (
            ("customer_id", cfg.customer_attributes),
            ("user_id", cfg.user_attributes),
            ("feature", cfg.feature_attributes),
            ("task_id", cfg.task_attributes),
            ("session_id", cfg.session_attributes),
            ("workload", cfg.workload_attributes),
        )
        self._any = frozenset(cfg.attribution_names())
        # (trace, span) -> (parent span id, attribution found on it, when it arrived)
        self._nodes: OrderedDict[tuple[str, str], tuple[str | None, Who | None, float]] = (
            OrderedDict()
        )
        self._held: OrderedDict[tuple[str, str], tuple[Span, str, float]] = OrderedDict()
        self._held_traces: Counter[str] = Counter()  # trace -> its spans held
        self.counts = {"unattributed": 0, "settled_early": 0, "expired": 0}

    @property
    def held(self) -> int:
        return len(self._held)

    def _who(self, attrs: dict[str, Any]) -> Who | None:
        if self._any.isdisjoint(attrs):  # most spans carry none: one set operation
            return None
        found: Who | None = None
        for field, names in self._names:
            for n in names:
                v = attrs.get(n)
                if v is not None and v != "":
                    if found is None:
                        found = {}
                    found[field] = str(v)
                    break
        return found

    def add(self, spans: Iterable[Span], now: float | None = None) -> list[tuple[Span, str, Who]]:
        """Index ``spans``; return the call spans now settled (with their attribution)."""
        now = time.monotonic() if now is None else now
        spans = list(spans)
        calls: list[tuple[Span, str]] = []
        traces: set[str] = set()
        for s in spans:
            self._nodes[(s.trace_id, s.span_id)] = (s.parent_id, self._who(s.attrs), now)
            traces.add(s.trace_id)
            k = kind_of(s)
            if k is not None:
                calls.append((s, k))
        out: list[tuple[Span, str, Who]] = []
        for s, k in calls:
            who = self._resolve(s, final=False)
            if who is None:
                key = (s.trace_id, s.span_id)
                if key not in self._held:
                    self._held_traces[s.trace_id] += 1
                self._held[key] = (s, k, now)
            else:
                out.append((s, k, who))
        if self._held:  # spans held earlier whose ancestors may have just arrived
            for key, (s, k, _t) in list(self._held.items()):
                if s.trace_id in traces:
                    who = self._resolve(s, final=False)
                    if who is not None:
                        self._unhold(key)
                        out.append((s, k, who))
        while len(self._held) > self.cfg.max_held:
            key, (s, k, _t) = next(iter(self._held.items()))
            self._unhold(key)
            self.counts["settled_early"] += 1
            out.append((s, k, self._resolve(s, final=True) or {}))
        self._forget(now)
        return out

    def expire(self, now: float | None = None) -> list[tuple[Span, str, Who]]:
        """Settle the spans held longer than ``hold_s`` with what is known."""
        now = time.monotonic() if now is None else now
        out: list[tuple[Span, str, Who]] = []
        limit = now - self.cfg.hold_s
        while self._held:
            key, (s, k, t) = next(iter(self._held.items()))
            if t > limit:
                break
            self._unhold(key)
            self.counts["expired"] += 1
            out.append((s, k, self._resolve(s, final=True) or {}))
        self._forget(now)
        return out

    def drain(self) -> list[tuple[Span, str, Who]]:
        """Settle everything held (the end of a file, a shutdown)."""
        out = [(s, k, self._resolve(s, final=True) or {}) for s, k, _t in self._held.values()]
        self._held.clear()
        self._held_traces.clear()
        return out

    def _unhold(self, key: tuple[str, str]) -> None:
        del self._held[key]
        n = self._held_traces[key[0]] - 1
        if n:
            self._held_traces[key[0]] = n
        else:
            del self._held_traces[key[0]]

    # --- state for the receiver's spool -------------------------------------------------------

    def held_spans(self) -> list[Span]:
        return [s for s, _k, _t in self._held.values()]

    def held_spans_of(self, spans: Iterable[Span]) -> list[Span]:
        """Those of ``spans`` that are held now."""
        held = self._held
        return [s for s in spans if (s.trace_id, s.span_id) in held]

    def node_records(self) -> list[list[Any]]:
        return [[t, s, p, w] for (t, s), (p, w, _a) in self._nodes.items()]

    def node_records_of(self, spans: Iterable[Span]) -> list[list[Any]]:
        """The index entries of ``spans`` that a held span may still need: those of traces
        with a span held (a trace settled whole needs nothing after a crash)."""
        out: list[list[Any]] = []
        nodes = self._nodes
        held = self._held_traces
        for sp in spans:
            if sp.trace_id not in held:
                continue
            n = nodes.get((sp.trace_id, sp.span_id))
            if n is not None and (n[0] is not None or n[1]):
                out.append([sp.trace_id, sp.span_id, n[0], n[1]])
        return out

    def restore_node(
        self, trace: str, span: str, parent: str | None, who: Who | None, now: float | None = None
    ) -> None:
        self._nodes[(trace, span)] = (parent, who, time.monotonic() if now is None else now)

    def _resolve(self, s: Span, *, final: bool) -> Who | None:
        """Nearest-first attribution; None while the customer may still come from an
        ancestor that has not arrived (unless ``final``)."""
        who: Who = {}
        node: tuple[str | None, Who | None, float] | None = self._nodes.get((s.trace_id, s.span_id))
        complete = False
        seen = 0
        while node is not None and seen < 1000:  # a cycle in bad data must not hang us
            seen += 1
            parent, found, _t = node
            if found:
                for f, v in found.items():
                    who.setdefault(f, v)
            if "customer_id" in who or parent is None:
                complete = True
                break
            node = self._nodes.get((s.trace_id, parent))
        if not complete and not final:
            return None
        res = self._who(s.resource)
        if res:
            for f, v in res.items():
                who.setdefault(f, v)
        if "customer_id" not in who:
            who["customer_id"] = UNATTRIBUTED
            self.counts["unattributed"] += 1
        return who

    def _forget(self, now: float) -> None:
        ttl = max(300.0, 10 * self.cfg.hold_s)
        nodes = self._nodes
        while nodes:
            key, (_p, _w, t) = next(iter(nodes.items()))
            if t > now - ttl and len(nodes) <= MAX_NODES:
                break
            del nodes[key]
