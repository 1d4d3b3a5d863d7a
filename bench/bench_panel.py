"""Benchmark: ``kpis``, ``anomalies`` and ``margins`` over a ~10M-event ledger.

    .venv/bin/python bench/bench_panel.py --customers 32000 --days 30 --dir /tmp/tg-bench-panel

Generates the events with the simulator once (a directory that already holds a ledger is
reused as is, e.g. bench_diagnose's), then times each report ``--repeat`` times on a fresh
connection (best and median wall time, and CPU seconds of the process: user + system, the
engine's threads included), next to the practical floor: one raw DuckDB GROUP BY
customer over the same Parquet segments. The panel runs with examples/policy.toml so the
policy-dependent KPIs (caps, budgets) are computed, not skipped.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
from pathlib import Path
from typing import Any

from _common import run_times, simulated_ledger


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=32000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dir", default="/tmp/tg-bench-panel")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--policy", default=str(Path(__file__).parents[1] / "examples/policy.toml"))
    args = ap.parse_args()

    from tailguard.analytics.anomalies import anomalies
    from tailguard.analytics.kpis import kpis
    from tailguard.analytics.margins import margins
    from tailguard.analytics.period import window
    from tailguard.guard.policy import load_policy

    root = Path(args.dir)
    led = simulated_ledger(root, customers=args.customers, days=args.days, seed=args.seed)
    policy = load_policy(args.policy)
    con = led.connect()
    n, lo, hi = con.execute("SELECT count(*), min(ts), max(ts) FROM events").fetchall()[0]
    con.close()
    period = lo.strftime("%Y-%m")

    def run(fn: Any) -> Any:
        c = led.connect()
        try:
            return fn(c)
        finally:
            c.close()

    files = ", ".join(f"'{p}'" for p in led.segment_files())
    floor_sql = (
        f"SELECT customer_id, sum(cost_usd), count(*) FROM read_parquet([{files}]) "
        f"WHERE ts >= TIMESTAMPTZ '{period}-01 00:00:00+00' GROUP BY 1"
    )
    cases = {
        "floor: raw GROUP BY customer": lambda c: c.execute(floor_sql).fetchall(),
        "kpis (8 KPIs, policy)": lambda c: kpis(c, period=period, policy=policy),
        "anomalies (last day)": lambda c: anomalies(c, policy=policy),
        "margins (12-month bands)": lambda c: margins(c, window(period)),
    }
    out: dict[str, Any] = {"events": n, "first": str(lo), "last": str(hi), "period": period}
    for name, fn in cases.items():
        cpu: list[float] = []

        def one(fn: Any = fn, cpu: list[float] = cpu) -> Any:
            # CPU seconds of this process (the engine's threads included): on a shared machine
            # the wall time also counts the other processes' turns
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            res = run(fn)
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
            return res

        times, res = run_times(one, args.repeat)
        out[name] = {
            "best_s": round(min(times), 3),
            "median_s": round(statistics.median(times), 3),
            "best_cpu_s": round(min(cpu), 3),
            "median_cpu_s": round(statistics.median(cpu), 3),
        }
        if name.startswith("anomalies"):
            out[name]["anomalies"] = len(res["anomalies"])
        if name.startswith("kpis"):
            out[name]["status"] = {k["id"]: k["status"] for k in res["kpis"]}
        print(name, out[name], flush=True)
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
