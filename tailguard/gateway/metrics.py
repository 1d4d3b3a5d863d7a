"""Prometheus metrics for the gateway, in the text exposition format, written by hand.

Hand-written because the set is small and the hot path must stay cheap: a counter is a dict
increment, an observation a ``bisect``. Labels are bounded on purpose (endpoint, status class,
action, tier, provider): never a customer or user id, whose cardinality would explode a
Prometheus server. Per process: with ``--workers N`` each worker reports its own series (scrape
them all, or sum).
"""

from __future__ import annotations

import bisect
from collections import defaultdict

#: seconds; gateway overhead is sub-millisecond, upstream calls are seconds
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, v: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, v)] += 1
        self.sum += v


class Metrics:
    """Counters and histograms of one gateway process."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = defaultdict(int)  # (endpoint, code class)
        self.upstream_errors: dict[tuple[str, str], int] = defaultdict(int)  # (provider, kind)
        self.decisions: dict[str, int] = defaultdict(int)  # action
        self.spend: dict[str, float] = defaultdict(float)  # tier -> USD (float is fine here)
        self.tokens: dict[tuple[str, str], int] = defaultdict(int)  # (provider, direction)
        self.latency: dict[str, Histogram] = defaultdict(Histogram)  # endpoint
        self.overhead = Histogram()

    def render(self, wal: dict[str, int] | None = None) -> str:
        """The exposition text; ``wal``: the write-ahead log's counters (group commit at work:
        events per batch = ``events / batches``)."""
        out: list[str] = []

        def counter(name: str, help_: str, rows: dict[tuple[str, ...] | str, float]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} counter")
            for labels, v in sorted(rows.items()):
                out.append(f"{name}{{{labels}}} {v}")

        counter(
            "tailguard_gateway_requests_total",
            "Requests by endpoint and status class.",
            {f'endpoint="{e}",code="{c}"': v for (e, c), v in self.requests.items()},
        )
        counter(
            "tailguard_gateway_upstream_errors_total",
            "Upstream failures (HTTP errors, timeouts, broken streams) by provider and kind.",
            {f'provider="{p}",kind="{k}"': v for (p, k), v in self.upstream_errors.items()},
        )
        counter(
            "tailguard_gateway_guard_decisions_total",
            "Guard decisions by action.",
            {f'action="{a}"': v for a, v in self.decisions.items()},
        )
        counter(
            "tailguard_gateway_spend_usd_total",
            "Priced spend through the gateway by tier (USD).",
            {f'tier="{t}"': v for t, v in self.spend.items()},
        )
        counter(
            "tailguard_gateway_tokens_total",
            "Tokens by provider and direction.",
            {f'provider="{p}",direction="{d}"': v for (p, d), v in self.tokens.items()},
        )
        if wal is not None:
            for k, help_ in (
                ("events", "Events written to the write-ahead log."),
                ("batches", "Group-commit batches written (one write, one sync each)."),
                ("flushed", "Events folded from the log into Parquet segments."),
                ("rejected", "Events the ledger refused (kept in wal/rejected.jsonl)."),
            ):
                name = f"tailguard_gateway_wal_{k}_total"
                out += [f"# HELP {name} {help_}", f"# TYPE {name} counter", f"{name} {wal[k]}"]
        name = "tailguard_gateway_request_duration_seconds"
        out.append(f"# HELP {name} Request latency, upstream included, by endpoint.")
        out.append(f"# TYPE {name} histogram")
        for ep, h in sorted(self.latency.items()):
            _hist(out, name, f'endpoint="{ep}",', h)
        name = "tailguard_gateway_overhead_seconds"
        out.append(f"# HELP {name} Time spent in the gateway before the upstream call.")
        out.append(f"# TYPE {name} histogram")
        _hist(out, name, "", self.overhead)
        return "\n".join(out) + "\n"


def _hist(out: list[str], name: str, labels: str, h: Histogram) -> None:
    acc = 0
    for b, c in zip(BUCKETS, h.counts, strict=False):
        acc += c
        out.append(f'{name}_bucket{{{labels}le="{b}"}} {acc}')
    acc += h.counts[-1]
    out.append(f'{name}_bucket{{{labels}le="+Inf"}} {acc}')
    lab = "{" + labels.rstrip(",") + "}" if labels else ""
    out.append(f"{name}_sum{lab} {h.sum}")
    out.append(f"{name}_count{lab} {acc}")
