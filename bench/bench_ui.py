"""The dashboard's server time per page: p50 and p95 over repeated requests, on a real ledger.

Each page is requested in process (Starlette's TestClient: routing, the library calls, the
template, no socket), first cold (a fresh app: nothing cached) then ``--repeat`` times warm. The
app keeps the per-customer table of a window between requests (tailguard.ui.data: keyed by the
ledger's segments), so warm customers pages re-sort and re-page it instead of re-aggregating;
every other figure is recomputed on every request. Targets (issue 12): p95 <= 300 ms at 1M
events, <= 1 s at 10M.

    nice -n 10 python bench/bench_ui.py --ledger /tmp/l1m/ledger --repeat 10
    nice -n 10 python bench/bench_ui.py --ledger tailguard-demo/ledger \
        --policy tailguard-demo/sim/policy.toml
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ledger", required=True)
    ap.add_argument("--policy")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--period", help="also pass period=YYYY-MM to every page")
    args = ap.parse_args()

    from starlette.testclient import TestClient

    from tailguard.guard.policy import load_policy
    from tailguard.ledger import Ledger
    from tailguard.ui import create_app

    led = Ledger(args.ledger)
    pol = load_policy(args.policy) if args.policy else None
    con = led.connect()
    try:
        events = con.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
        customers = con.execute("SELECT count(DISTINCT customer_id) FROM events").fetchone()[0]  # type: ignore[index]
        top = con.execute(
            "SELECT customer_id FROM events GROUP BY 1 "
            "ORDER BY sum(cost_usd) DESC NULLS LAST LIMIT 1"
        ).fetchone()[0]  # type: ignore[index]
    finally:
        con.close()
    q = f"period={args.period}" if args.period else ""
    amp = "&" if q else ""
    pages = [
        ("overview", f"/?{q}"),
        ("tail", f"/tail?{q}"),
        ("customers", f"/customers?{q}"),
        (
            "customers, sorted, page 40",
            f"/customers?{q}{amp}sort=cost_pct_of_mrr&order=asc&page=40",
        ),
        ("customers, filtered (tier)", f"/customers?{q}{amp}tier=pro&sort=tasks"),
        ("customer (the top one)", f"/customers/{top}?{q}"),
        ("outcomes", f"/outcomes?{q}"),
        ("anomalies & guard", "/anomalies"),
        ("/api/customers (every row)", f"/api/customers?{q}"),
    ]
    print(f"ledger {args.ledger}: {events:,} events, {customers:,} customers; repeat {args.repeat}")
    print(f"{'page':32} {'status':>6} {'cold s':>8} {'p50 s':>8} {'p95 s':>8} {'max s':>8}")
    for name, url in pages:
        app: Any = create_app(led, policy=pol)
        with TestClient(app) as c:
            t = time.perf_counter()
            r = c.get(url)
            cold = time.perf_counter() - t
            warm = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                c.get(url)
                warm.append(time.perf_counter() - t)
        print(
            f"{name:32} {r.status_code:>6} {cold:8.3f} {statistics.median(warm):8.3f} "
            f"{_pct(warm, 0.95):8.3f} {max(warm):8.3f}"
        )


if __name__ == "__main__":
    main()
