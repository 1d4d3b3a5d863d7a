"""The demo: simulate a product, ingest it, and show what the aggregate hides.

Runs offline in under a minute on 2 cores: 240 customers over a year (December 2025 to
November 2026, at the simulator's calibrated activity: about 600,000 events) simulated to
Parquet, ingested into a fresh ledger, the customers imported,
then the headline printed and a report file (Markdown, plus the full per-customer table as CSV)
written beside the ledger. A year of history is what the renewal one-pager, cohort drift and
month-over-month trends need to show something real.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailguard.analytics.customers import CUSTOMER_FIELDS, customer_rows, sort_rows
from tailguard.analytics.headline import headline
from tailguard.analytics.margins import overage_billed
from tailguard.analytics.period import Window
from tailguard.ledger import Ledger

#: the demo's window: twelve calendar months ending before the session's present
DEMO_START = dt.date(2025, 12, 1)
DEMO_DAYS = 365
DEMO_CUSTOMERS = 240
#: share of the simulator's calibrated per-user activity: all of it. Thinning activity would
#: thin each customer's cost against an unchanged MRR (a cheaper product than the one
#: calibrated), so the demo keeps a year short by simulating fewer customers instead
DEMO_DENSITY = 1.0


@dataclass
class DemoResult:
    out: Path
    ledger: Path
    report: Path
    table_csv: Path
    policy: Path  # the guard policy the simulated customers ran under
    top_customer: str | None  # the most expensive customer (the renewal to look at first)
    events: int
    headline: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    def next_commands(self) -> list[str]:
        """The three commands a user would run next, on this demo's ledger."""
        led = self.ledger
        cmds = [
            f"tailguard diagnose --ledger {led}",
            f"tailguard kpis --ledger {led} --policy {self.policy}",
        ]
        if self.top_customer:
            cmds.append(f"tailguard renewal {self.top_customer} --ledger {led}")
        return cmds

    def dashboard_command(self) -> str:
        """The command that opens the dashboard on this demo's ledger (``tailguard ui``)."""
        return f"tailguard ui --ledger {self.ledger} --policy {self.policy}"


def run_demo(
    out: str | Path = "tailguard-demo",
    *,
    customers: int = DEMO_CUSTOMERS,
    days: int = DEMO_DAYS,
    seed: int = 7,
    density: float = DEMO_DENSITY,
    start: dt.date = DEMO_START,
    progress: Any = None,
) -> DemoResult:
    """Simulate → ingest → report. ``progress(step: str)`` is told what is happening."""
    from tailguard.simulate import simulate

    out = Path(out)
    sim_dir = out / "sim"
    led_dir = out / "ledger"
    timings: dict[str, float] = {}
    say = progress or (lambda _s: None)

    t = time.perf_counter()
    say(f"simulating {customers:,} customers × {days} days")
    sim = simulate(
        customers=customers,
        days=days,
        seed=seed,
        out=sim_dir,
        fmt="parquet",
        start=start,
        density=density,
    )
    timings["simulate_s"] = time.perf_counter() - t

    t = time.perf_counter()
    say("ingesting into a fresh ledger")
    if led_dir.exists():
        shutil.rmtree(led_dir)  # the demo owns this directory: start clean for a new seed
    led = Ledger(led_dir)
    res = sim.load_into(led)  # priced with the simulated operator's unit costs
    timings["ingest_s"] = time.perf_counter() - t

    t = time.perf_counter()
    say("building the per-customer table")
    con = led.connect()
    try:
        rows = sort_rows(customer_rows(con, Window()))
        overage = overage_billed(con, Window())  # payg overage is revenue (margins)
    finally:
        con.close()
    head = headline(rows, overage=overage)
    timings["report_s"] = time.perf_counter() - t

    t = time.perf_counter()
    say("diagnosing the tail")
    con = led.connect()
    try:
        head["tail"] = tail_summary(con, rows)
    finally:
        con.close()
    timings["tail_s"] = time.perf_counter() - t

    table_csv = out / "customers_report.csv"
    with table_csv.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(CUSTOMER_FIELDS), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CUSTOMER_FIELDS})
    report = out / "report.md"
    report.write_text(render_markdown(head, rows, events=res.accepted, days=days))
    return DemoResult(
        out,
        led_dir,
        report,
        table_csv,
        sim.policy_path,
        rows[0]["customer_id"] if rows else None,
        res.accepted,
        head,
        timings,
    )


def tail_summary(con: Any, rows: list[dict[str, Any]], *, top: int = 3) -> dict[str, Any]:
    """Issue 3 in brief: concentration verdict, cost per resolved task, the diagnosed top."""
    from tailguard.analytics.concentration import concentration
    from tailguard.analytics.diagnose import diagnose
    from tailguard.analytics.outcomes import outcomes

    win = Window()
    conc = concentration([r["cost_usd"] for r in rows], [r["customer_id"] for r in rows])
    out = outcomes(con, win)
    # whole weeks only: a window that ends on a Monday has a one-day last week
    lo, hi = con.execute("SELECT min(ts)::DATE, max(ts)::DATE FROM events").fetchone() or (
        None,
        None,
    )
    weeks = [
        w
        for w in out.get("weekly") or []
        if lo is not None and w["week"] >= lo and w["week"] + dt.timedelta(days=6) <= hi
    ]
    drift = {}
    if len(weeks) >= 2 and weeks[0]["cost_per_call"] and weeks[-1]["cost_per_call"]:
        first, last = weeks[0], weeks[-1]
        drift = {
            "from_week": str(first["week"]),
            "to_week": str(last["week"]),
            "cost_per_call_change": float(last["cost_per_call"] / first["cost_per_call"] - 1),
            "cost_per_resolved_task_change": (
                float(last["cost_per_resolved_task"] / first["cost_per_resolved_task"] - 1)
                if first["cost_per_resolved_task"] and last["cost_per_resolved_task"]
                else None
            ),
        }
    diagnosed = [d for d in diagnose(con, win) if d["shapes"]][:top]
    return {
        "concentration_verdict": conc["verdict"],
        "gini": conc["gini"],
        "cost_per_resolved_task": out["cost_per_resolved_task"],
        "cost_per_call": out["cost_per_call"],
        "failure_cost_share": out["failure_cost_share"],
        "weekly_drift": drift,
        "diagnosed": [
            {
                "customer_id": d["customer_id"],
                "cost_usd": d["cost_usd"],
                "shapes": d["shapes"],
                "top_lever": d["levers"][0]["name"] if d["levers"] else None,
            }
            for d in diagnosed
        ],
    }


def _usd(v: Any) -> str:
    """Dollars by the one rule (tailguard.money): cents from $1 up, 4 places below."""
    from tailguard.money import format_usd

    return format_usd(v)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def render_markdown(
    head: dict[str, Any], rows: list[dict[str, Any]], *, events: int, days: int
) -> str:
    d = head["per_customer_cost_per_successful_task"]
    lines = [
        "# tailguard: per-customer unit economics",
        "",
        f"{head['customers']:,} customers, {events:,} events over {days} days; "
        f"total spend {_usd(head['total_cost_usd'])}.",
        "",
        "## What the average hides",
        "",
        "| measure | value |",
        "|---|---|",
        "| aggregate cost per successful task | "
        f"{_usd(head['aggregate_cost_per_successful_task'])} |",
        f"| per-customer median cost per successful task | {_usd(d.get('median'))} |",
        f"| per-customer p95 | {_usd(d.get('p95'))} |",
        f"| per-customer p99 | {_usd(d.get('p99'))} |",
        f"| share of spend, top 1% of customers | {_pct(head['top_1pct_share'])} |",
        f"| share of spend, top 0.1% of customers | {_pct(head['top_0_1pct_share'])} |",
        "| paying customers costing more than they pay | "
        f"{head['underwater_customers']:,} of {head['paying_customers']:,} |",
        f"| cost of the {head['free_customers']:,} free customers | "
        f"{_usd(head['free_customers_cost_usd'])} |",
        f"| unpriced LLM calls (cost unknown, not zero) | {head['unpriced_calls']:,} |",
        "",
        *_tail_lines(head.get("tail")),
        "## The ten most underwater paying customers",
        "",
    ]
    if not head["most_underwater"]:
        lines.append("No paying customer costs more than it pays over this period.")
    else:
        lines += [
            "| customer | tier | cost | revenue | of which overage | margin | cost % of revenue |",
            "|---|---|---|---|---|---|---|",
        ]
    for u in head["most_underwater"]:
        pct = "—" if u["cost_pct_of_mrr"] is None else f"{u['cost_pct_of_mrr']:,.0f}%"
        lines.append(
            f"| {u['customer_id']} | {u['tier']} | {_usd(u['cost_usd'])} | "
            f"{_usd(u['revenue_usd'])} | {_usd(u['overage_usd'])} | "
            f"{_usd(u['gross_margin_usd'])} | {pct} |"
        )
    lines += [
        "",
        "## The twenty most expensive customers",
        "",
        "| customer | tier | cost | tasks | cost / successful task | retries / win | "
        "escalation rate |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows[:20]:
        lines.append(
            f"| {r['customer_id']} | {r['tier']} | {_usd(r['cost_usd'])} | {r['tasks']:,} | "
            f"{_usd(r['cost_per_successful_task'])} | {r['retries_per_win'] or 0:.2f} | "
            f"{r['escalation_rate'] or 0:.2f} |"
        )
    lines.append("")
    return "\n".join(lines)


def _tail_lines(tail: dict[str, Any] | None) -> list[str]:
    if not tail:
        return []
    lines = [
        "## The tail, in brief",
        "",
        f"- Concentration: {tail['concentration_verdict']}",
        f"- Cost per resolved task {_usd(tail['cost_per_resolved_task'])} (all spend, failures "
        f"included, over accepted tasks) against {_usd(tail['cost_per_call'])} per LLM call; "
        f"{tail['failure_cost_share']:.0%} of spend went to tasks that did not end accepted.",
    ]
    d = tail.get("weekly_drift") or {}
    if d.get("cost_per_resolved_task_change") is not None:
        lines.append(
            f"- From the week of {d['from_week']} to that of {d['to_week']}: cost per call "
            f"{d['cost_per_call_change']:+.0%}, cost per resolved task "
            f"{d['cost_per_resolved_task_change']:+.0%}."
        )
    for x in tail["diagnosed"]:
        lines.append(
            f"- {x['customer_id']} ({_usd(x['cost_usd'])}): {', '.join(x['shapes'])}; "
            f"first lever: {x['top_lever']}."
        )
    lines.append("")
    return lines
