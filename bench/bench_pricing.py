"""Benchmark: ``price_table`` rows/s on a mixed event table, against per-row ``PriceBook.price``.

Usage::

    .venv/bin/python bench/bench_pricing.py [--rows 2000000] [--repeat 3]

The table mixes the event kinds (60% llm_call over eleven models, including a context-tiered
Anthropic model, DeepSeek's time-of-day prices, an override with a price change mid-period and an
unknown model; tool calls, retrievals, escalations, outcomes; 5% with a reported cost) over 30
days. The per-row baseline is timed on a 2,000-row sample and scaled.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from tailguard.errors import UnknownModelError
from tailguard.events.schema import INPUT_COLUMNS, INPUT_SCHEMA, MONEY
from tailguard.pricing import PriceBook, price_table

MODELS = [
    ("openai", "gpt-4o-2024-08-06"),
    ("openai", "gpt-4o-mini"),
    ("openai", "o3-mini"),
    ("anthropic", "claude-3-5-sonnet-latest"),
    ("anthropic", "claude-sonnet-4-5"),  # tiered above 200k input tokens
    (None, "claude-3-5-haiku-20241022"),
    ("google", "gemini-2.0-flash"),
    ("deepseek", "deepseek-chat"),  # off-peak hours
    ("mistral", "mistral-large-latest"),
    (None, "acme-llama-70b"),  # operator override, price change on day 15
    (None, "in-house-model-v0"),  # unknown: unpriced
]

OVERRIDES = """
[[model]]
model = "acme-llama-70b"
input_mtok = 0.6
output_mtok = 0.8
[[model]]
model = "acme-llama-70b"
input_mtok = 0.5
output_mtok = 0.7
effective_from = "2026-01-15"
[[discount]]
provider = "anthropic"
discount = 0.1
[units]
tool_call_usd = { default = 0.0, web_search = 0.01 }
retrieval_query_usd = 0.0004
rerank_usd = 0.001
escalation_minute_usd = 0.75
"""


def make_table(n: int, *, seed: int = 7) -> pa.Table:
    """A mixed table of ``n`` events with the columns of ``INPUT_COLUMNS``."""
    rng = np.random.default_rng(seed)
    kinds = np.array(["llm_call", "tool_call", "retrieval", "escalation", "task_outcome"])
    kind = kinds[rng.choice(5, size=n, p=[0.6, 0.2, 0.08, 0.02, 0.1])]
    start = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp() * 1e6)
    ts = start + rng.integers(0, 30 * 86_400_000_000, size=n)
    m = rng.integers(0, len(MODELS), size=n)
    is_llm = kind == "llm_call"
    provider = np.array([p or "" for p, _ in MODELS], dtype=object)[m]
    model = np.array([name for _, name in MODELS], dtype=object)[m]
    inp = rng.lognormal(8, 1.5, size=n).astype(np.int64).clip(1, 400_000)
    cr = (inp * rng.random(n) * 0.6).astype(np.int64)
    cw = ((inp - cr) * rng.random(n) * 0.2).astype(np.int64)
    out = rng.lognormal(5.5, 1.2, size=n).astype(np.int64).clip(1, 32_000)
    reported = rng.random(n) < 0.05
    cost = np.where(reported, rng.integers(1, 10**8, size=n), 0)
    cols: dict[str, pa.Array] = {
        "event_id": pa.array(np.arange(n).astype(str)),
        "kind": pa.array(kind),
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "customer_id": pa.array(np.char.add("c", (rng.zipf(1.5, n) % 2000).astype(str))),
        "provider": pa.array(np.where(is_llm & (provider != ""), provider, None)),
        "model": pa.array(np.where(is_llm, model, None)),
        "input_tokens": pa.array(np.where(is_llm, inp, 0)),
        "output_tokens": pa.array(np.where(is_llm, out, 0)),
        "cache_read_tokens": pa.array(np.where(is_llm, cr, 0)),
        "cache_write_tokens": pa.array(np.where(is_llm, cw, 0)),
        "tool": pa.array(
            np.where(kind == "tool_call", np.array(["web_search", "crm_lookup"])[m % 2], None)
        ),
        "queries": pa.array(np.where(kind == "retrieval", 1 + m % 3, 0)),
        "reranks": pa.array(np.where(kind == "retrieval", m % 2, 0)),
        "minutes": pa.array(np.where(kind == "escalation", rng.random(n) * 30, np.nan)),
        "cost_usd": pa.Array.from_buffers(
            MONEY,
            n,
            [
                pa.array(reported).buffers()[1],
                pa.py_buffer(np.stack([cost, np.zeros(n, np.int64)], axis=1).tobytes()),
            ],
        ),
    }
    arrays = []
    for name in INPUT_COLUMNS:
        typ = INPUT_SCHEMA.field(name).type
        arrays.append(cols[name].cast(typ) if name in cols else pa.nulls(n, typ))
    return pa.Table.from_arrays(arrays, names=list(INPUT_COLUMNS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as fh:
        fh.write(OVERRIDES)
    try:
        book = PriceBook.load(fh.name)
    finally:
        os.unlink(fh.name)
    table = make_table(args.rows)
    price_table(book, table.slice(0, 10_000))  # warm the lookup caches
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        out = price_table(book, table)
        times.append(time.perf_counter() - t0)
    best = min(times)

    sample = table.slice(0, 2000).to_pylist()
    t0 = time.perf_counter()
    priced = 0
    for r in sample:
        if r["kind"] != "llm_call":
            continue
        with contextlib.suppress(UnknownModelError):
            book.price(
                model=r["model"],
                provider=r["provider"],
                input_tokens=r["input_tokens"],
                output_tokens=r["output_tokens"],
                cache_read_tokens=r["cache_read_tokens"],
                cache_write_tokens=r["cache_write_tokens"],
                at=r["ts"],
            )
        priced += 1
    per_row = (time.perf_counter() - t0) / max(priced, 1)

    sources = out.group_by("cost_source").aggregate([("event_id", "count")]).to_pylist()
    t = Table(title=f"price_table, {args.rows:,} mixed events ({os.cpu_count()} CPUs)")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("best of runs (s)", f"{best:.3f}")
    t.add_row("median (s)", f"{statistics.median(times):.3f}")
    t.add_row("rows/s (best)", f"{args.rows / best:,.0f}")
    t.add_row("PriceBook.price per llm row (µs)", f"{per_row * 1e6:,.1f}")
    t.add_row("per-row rows/s (llm only)", f"{1 / per_row:,.0f}")
    for s in sorted(sources, key=lambda r: r["cost_source"]):
        t.add_row(f"rows {s['cost_source']}", f"{s['event_id_count']:,}")
    Console().print(t)


if __name__ == "__main__":
    main()
