"""The dashboard's server time per page: p50 and p95 over repeated requests, on a real ledger.

Each page is requested in process (Starlette's TestClient: routing, the library calls, the
template, no socket) ``--repeat`` times on an app without its caches (every request computes the
page: "computed" p50/p95), then ``--repeat`` times on an app with them (tailguard.ui.data: the
page's payload and the per-customer table, keyed by the ledger's content: "cached" p50/p95 over
the requests after the first, which computes the page and is shown as "first"). The rows
"page k (new each)" ask a new page on every request, so on the cached app only the window's
customers table is cached (its filter, sort and page are one SQL query, tailguard.ui.table);
"htmx" rows send ``HX-Request`` (the partial swap's fragment).
"cpu": the process's CPU seconds (user+sys, every thread: the engine's too) of the computed
requests (median) and of the first one, beside the wall times, which the other work on a shared
machine inflates. Targets (issue 12): p95 <= 300 ms at 1M events, <= 1 s at 10M.

    nice -n 10 python bench/bench_ui.py --ledger /tmp/l1m/ledger --repeat 10
    nice -n 10 python bench/bench_ui.py --ledger tailguard-demo/ledger \
        --policy tailguard-demo/sim/policy.toml
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

#: the fields "sort on a new field" asks for, one a request
FIELDS = (
    "tasks",
    "llm_calls",
    "cost_pct_of_mrr",
    "gross_margin_usd",
    "cost_per_successful_task",
    "retries_per_win",
    "escalation_rate",
    "mrr_usd",
    "input_tokens",
    "output_tokens",
)


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
    ap.add_argument("--only", help="only the pages whose name contains this")
    ap.add_argument(
        "--computed",
        type=int,
        help="requests on the app without caches [--repeat]; 0 skips them (at 10M events the "
        "cached app's first request is then the one computed figure)",
    )
    args = ap.parse_args()

    from starlette.testclient import TestClient

    from tailguard.guard.policy import load_policy
    from tailguard.ledger import Ledger
    from tailguard.ui import create_app

    led = Ledger(args.ledger)
    pol = load_policy(args.policy) if args.policy else None
    con = led.connect(repair=False)  # read-only, as the dashboard: never writes a roll-up
    try:
        events = con.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
        customers = con.execute("SELECT count(DISTINCT customer_id) FROM rollup").fetchone()[0]  # type: ignore[index]
        known = con.execute("SELECT count(*) FROM customers").fetchone()[0]  # type: ignore[index]
        top = con.execute(
            "SELECT customer_id FROM rollup GROUP BY 1 "
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
            "customers, sorted asc, page 3",
            f"/customers?{q}{amp}sort=cost_pct_of_mrr&order=asc&page=3",
        ),
        ("customers, filtered (tier)", f"/customers?{q}{amp}tier=pro&sort=tasks"),
        # a new URL each request ({k}: the request's number): the page payload is not cached,
        # the window's table is (tailguard.ui.table): one SQL query per request
        ("customers, page k (new each)", f"/customers?{q}{amp}page={{k}}"),
        (
            "customers, filter+page k (new)",
            f"/customers?{q}{amp}status=alert&order=asc&sort=cost_usd&page={{k}}",
        ),
        ("customers, htmx page k (new)", f"/customers?{q}{amp}page={{k}}&per=100"),
        # a field not sorted on before each request: its rank is computed (once per field)
        ("customers, sort on a new field", f"/customers?{q}{amp}sort={{field}}"),
        ("customer (the top one)", f"/customers/{top}?{q}"),
        ("outcomes", f"/outcomes?{q}"),
        ("anomalies & guard", "/anomalies"),
        ("/api/customers (every row)", f"/api/customers?{q}"),
    ]
    print(
        f"ledger {args.ledger}: {events:,} events, {customers:,} customers with events, "
        f"{known:,} in the customers table; repeat {args.repeat}"
    )
    print(
        f"{'page':30} {'status':>6} {'computed p50':>12} {'p95':>7} {'cpu':>6} "
        f"{'cached p50':>10} {'p95':>7} {'first':>7} {'cpu':>6}"
    )
    for name, url in pages:
        if args.only and args.only not in name:
            continue
        row, cpu = [], []
        computed = args.repeat if args.computed is None else args.computed
        for cache, n in ((False, computed), (True, args.repeat)):
            app: Any = create_app(led, policy=pol, cache=cache)
            with TestClient(app) as c:
                times, cpus = [], []
                for k in range(n):
                    hx = {"HX-Request": "true"} if "htmx" in name else {}
                    t, p = time.perf_counter(), time.process_time()
                    u = url.replace("{k}", str(k + 1)).replace("{field}", FIELDS[k % len(FIELDS)])
                    r = c.get(u, headers=hx)
                    times.append(time.perf_counter() - t)
                    cpus.append(time.process_time() - p)
            row.append(times)
            cpu.append(cpus)
        comp, cached = row
        warm = cached[1:] or cached  # the first request of the cached app computes the page
        c50, c95, ccpu = (
            (
                f"{statistics.median(comp):12.3f}",
                f"{_pct(comp, 0.95):7.3f}",
                f"{statistics.median(cpu[0]):6.2f}",
            )
            if comp
            else (f"{'—':>12}", f"{'—':>7}", f"{'—':>6}")
        )
        print(
            f"{name:30} {r.status_code:>6} {c50} {c95} {ccpu} {statistics.median(warm):10.3f} "
            f"{_pct(warm, 0.95):7.3f} {cached[0]:7.3f} {cpu[1][0]:6.2f}"
        )


if __name__ == "__main__":
    main()
