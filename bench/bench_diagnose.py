"""Benchmark: ``diagnose`` (and ``outcomes``, ``workload``) over a 10M-event ledger.

    .venv/bin/python bench/bench_diagnose.py --customers 32000 --days 30 --dir /tmp/tg-bench-10m

One customer (the dashboard's customer page, issue 12): ``--one --ledger DIR`` opens an existing
ledger read-only (no roll-up repaired, nothing written) and times ``diagnose(customer=...)`` for
the most expensive, the median and the cheapest customer against the full run, in CPU seconds
(user + system of the process, DuckDB's threads included) beside wall seconds:

    .venv/bin/python bench/bench_diagnose.py --one --ledger /tmp/h12/l10m/ledger --repeat 3

``--pages`` adds the dashboard's customer page for the same customers in turn (the first cold).

Otherwise it generates the events with the simulator (once; reused when the directory
already holds a ledger), ingests them, then times each report three times on a fresh connection
and prints the best and median wall times, against the practical floor: a raw DuckDB GROUP BY
customer over the ledger's Parquet segments computing the same sums. It also scores the
diagnosis against the simulator's ``truth.json`` (precision and recall over (customer, shape)
pairs, as in tests/analytics/test_diagnose.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path
from typing import Any

from _common import run_times, simulated_ledger


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=32000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dir", default="/tmp/tg-bench-diagnose")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--one", action="store_true", help="time diagnose(customer=...) (issue 12)")
    ap.add_argument("--ledger", default=None, help="with --one: an existing ledger, read-only")
    ap.add_argument(
        "--pages", action="store_true", help="with --one: the dashboard's customer page too"
    )
    args = ap.parse_args()
    if args.one:
        one_customer(args)
        return

    from tailguard.analytics.diagnose import diagnose
    from tailguard.analytics.outcomes import outcomes
    from tailguard.analytics.period import Window
    from tailguard.analytics.workload import workload

    root = Path(args.dir)
    led = simulated_ledger(root, customers=args.customers, days=args.days, seed=args.seed)
    truth = json.loads((root / "truth.json").read_text())
    n_events = led.count()
    cores = os.cpu_count()

    def run_diag() -> list[dict[str, Any]]:
        con = led.connect(threads=args.threads)
        try:
            return diagnose(con, Window())
        finally:
            con.close()

    def run_outcomes() -> dict[str, Any]:
        con = led.connect(threads=args.threads)
        try:
            return outcomes(con, Window(), by="customer")
        finally:
            con.close()

    def run_workload() -> dict[str, Any]:
        con = led.connect(threads=args.threads)
        try:
            return workload(con, Window())
        finally:
            con.close()

    def run_floor() -> int:
        # the same per-customer sums, straight over the Parquet files: the practical floor
        import duckdb

        files = ", ".join(f"'{p}'" for p in led.segment_files())
        con = duckdb.connect()
        if args.threads:
            con.execute(f"SET threads = {int(args.threads)}")
        try:
            return len(
                con.sql(
                    "SELECT customer_id, sum(cost_usd), count(DISTINCT session_id), "
                    "count(DISTINCT task_id), sum(input_tokens), sum(cache_read_tokens), "
                    "sum(output_tokens), sum(reasoning_tokens) "
                    f"FROM read_parquet([{files}]) GROUP BY customer_id"
                ).fetchall()
            )
        finally:
            con.close()

    # Rounds are interleaved (every report once per round) so that load from other work on the
    # machine falls on all of them alike; best and median over the rounds.
    reports = (
        ("raw GROUP BY (floor)", run_floor),
        ("diagnose", run_diag),
        ("outcomes --by customer", run_outcomes),
        ("workload", run_workload),
    )
    times: dict[str, list[float]] = {name: [] for name, _ in reports}
    load0 = os.getloadavg()[0]
    for _ in range(args.repeat):
        for name, fn in reports:
            t, res = run_times(fn, 1)
            times[name] += t
            if name == "diagnose":
                diag = res
    load1 = os.getloadavg()[0]
    rows = [(name, min(times[name]), statistics.median(times[name])) for name, _ in reports]

    judged = {r["customer_id"] for r in diag if r["judged"]}
    pred = {(r["customer_id"], s) for r in diag for s in r["shapes"]}
    planted = {(c, s) for c, ss in truth["shapes"].items() for s in ss}
    true_in_tail = {(c, s) for (c, s) in planted if c in judged}
    tp = len(pred & true_in_tail)
    precision = tp / len(pred) if pred else float("nan")
    recall = tp / len(true_in_tail) if true_in_tail else float("nan")

    print(
        f"\n{n_events:,} events, {truth['customers']:,} customers x {truth['days']} days "
        f"(seed {truth['seed']}), {cores} cores, threads={args.threads or 'default'}, "
        f"{args.repeat} interleaved rounds, load average {load0:.1f} -> {load1:.1f}\n"
    )
    floor = rows[0][1]
    print(f"| {'report':<24} | {'best s':>7} | {'median s':>8} | {'best / floor':>12} |")
    print(f"|{'-' * 26}|{'-' * 9}|{'-' * 10}|{'-' * 14}|")
    for name, best, med in rows:
        print(f"| {name:<24} | {best:7.2f} | {med:8.2f} | {best / floor:12.1f} |")
    print(
        f"\ndiagnosis: tail {len(diag)} customers ({len(judged)} judged), "
        f"{len(pred)} shapes named; planted pairs {len(planted)}, in the judged tail "
        f"{len(true_in_tail)}; precision {precision:.3f}, recall {recall:.3f}"
    )


def _cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one_customer(args: argparse.Namespace) -> None:
    """``diagnose(customer=...)`` against the full run, CPU and wall seconds (module docstring)."""
    import time

    from tailguard.analytics.diagnose import diagnose
    from tailguard.analytics.period import Window
    from tailguard.ledger import Ledger

    led = Ledger(args.ledger or Path(args.dir) / "ledger")
    con = led.connect(threads=args.threads, repair=False)
    try:
        n_events = con.execute("SELECT count(*) FROM events").fetchone()[0]
        by_cost = [
            r[0]
            for r in con.execute(
                "SELECT customer_id FROM events GROUP BY 1 "
                "ORDER BY sum(cost_usd) DESC NULLS LAST, 1"
            ).fetchall()
        ]
    finally:
        con.close()
    picks = {
        "one: most expensive": by_cost[0],
        "one: median cost": by_cost[len(by_cost) // 2],
        "one: cheapest": by_cost[-1],
    }

    def run(cid: str | None) -> Any:
        con = led.connect(threads=args.threads, repair=False)
        try:
            return diagnose(con, Window(), customer=cid)
        finally:
            con.close()

    cases = [*picks.items(), ("full run (the tail)", None)]
    cpu: dict[str, list[float]] = {name: [] for name, _ in cases}
    wall: dict[str, list[float]] = {name: [] for name, _ in cases}
    load0 = os.getloadavg()[0]
    for _ in range(args.repeat):  # interleaved rounds, as in main()
        for name, cid in cases:
            c, w = _cpu(), time.perf_counter()
            run(cid)
            cpu[name].append(_cpu() - c)
            wall[name].append(time.perf_counter() - w)
    load1 = os.getloadavg()[0]
    print(
        f"\n{n_events:,} events, {len(by_cost):,} customers, {os.cpu_count()} cores, "
        f"threads={args.threads or 'default'}, {args.repeat} interleaved rounds, "
        f"load average {load0:.1f} -> {load1:.1f}\n"
    )
    print(f"| {'call':<22} | {'CPU s median':>12} | {'CPU s best':>10} | {'wall s median':>13} |")
    print(f"|{'-' * 24}|{'-' * 14}|{'-' * 12}|{'-' * 15}|")
    for name, _ in cases:
        print(
            f"| {name:<22} | {statistics.median(cpu[name]):12.2f} | {min(cpu[name]):10.2f} "
            f"| {statistics.median(wall[name]):13.2f} |"
        )
    if args.pages:
        customer_pages(led, picks)


def customer_pages(led: Any, picks: dict[str, str]) -> None:
    """The dashboard's customer page (``ui.data.customer_page``, every day) for the picked
    customers in turn on one fresh ``Source``: the first is cold, the next ones find what the
    first left in the page cache (the customers table and, with issue 12, the diagnosis's
    population pass)."""
    import time

    from tailguard.ui import data

    src = data.Source(led)
    print(f"\n| {'customer page (in turn)':<26} | {'CPU s':>6} | {'wall s':>6} |")
    print(f"|{'-' * 28}|{'-' * 8}|{'-' * 8}|")
    for i, (name, cid) in enumerate(picks.items()):
        c, w = _cpu(), time.perf_counter()
        data.customer_page(src, cid, data.Query())
        label = f"{i + 1}. {name.removeprefix('one: ')}" + (" (cold)" if i == 0 else "")
        print(f"| {label:<26} | {_cpu() - c:6.2f} | {time.perf_counter() - w:6.2f} |")


if __name__ == "__main__":
    main()
