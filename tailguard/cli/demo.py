"""Commands: demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tailguard.cli.app import app
from tailguard.cli.output import JsonOpt, print_json


@app.command()
def demo(
    out: Annotated[str, typer.Option("--out", help="Directory for the demo's files.")] = (
        "tailguard-demo"
    ),
    # tailguard.demo.DEMO_CUSTOMERS (not imported here: the CLI starts without the analytics; a
    # test keeps the two equal)
    customers: Annotated[int, typer.Option("--customers", min=10)] = 240,
    days: Annotated[int, typer.Option("--days", min=1, help="Days of history (a year).")] = 365,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Drive simulated customers through a real gateway and mock provider over HTTP "
            "(caps, degradations and kills land in the ledger OUT/live/ledger).",
        ),
    ] = False,
    requests: Annotated[int, typer.Option("--requests", min=1, help="With --live.")] = 3000,
    json_: JsonOpt = False,
) -> None:
    """Simulate a product, ingest it, and print what the aggregate dashboard hides.

    Offline, under a minute.

    Example: tailguard demo   (or: tailguard demo --live)
    """
    from rich.console import Console

    from tailguard.demo import run_demo

    if live:
        # its own folder and ledger: the plain demo's ledger beside it stays untouched
        _live(
            str(Path(out) / "live"),
            customers=min(customers, 300),
            requests=requests,
            seed=seed,
            json_=json_,
        )
        return

    console = Console(stderr=True)
    if json_:
        res = run_demo(out, customers=customers, days=days, seed=seed)
        print_json(
            res.headline
            | {
                "events": res.events,
                "report": str(res.report),
                "ledger": str(res.ledger),
                "policy": str(res.policy),
                "timings": res.timings,
                "next": res.next_commands(),
                "dashboard": res.dashboard_command(),
            }
        )
        return
    with console.status("working") as status:
        res = run_demo(
            out,
            customers=customers,
            days=days,
            seed=seed,
            progress=lambda s: status.update(s),
        )
    _print_headline(res)


def _print_headline(res) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    h = res.headline
    d = h["per_customer_cost_per_successful_task"]
    c = Console()

    def usd(v: object) -> str:
        from tailguard.money import format_usd

        return format_usd(v)  # type: ignore[arg-type]

    c.print(
        f"[bold]{h['customers']:,} customers, {res.events:,} events[/], "
        f"total spend {usd(h['total_cost_usd'])}  "
        f"[dim](simulate {res.timings['simulate_s']:.1f}s, ingest {res.timings['ingest_s']:.1f}s, "
        f"report {res.timings['report_s']:.1f}s, tail {res.timings['tail_s']:.1f}s)[/]"
    )
    w = h.get("window") or {}
    span = f" ({w['start']} .. {w['end']})" if w.get("start") and w.get("end") else ""
    t = Table(title=f"What the average hides{span}", show_header=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_row("aggregate cost per successful task", usd(h["aggregate_cost_per_successful_task"]))
    t.add_row("  per-customer median", usd(d.get("median")))
    t.add_row("  per-customer p95", usd(d.get("p95")))
    t.add_row("  per-customer p99", usd(d.get("p99")))
    share = h["top_1pct_share"]
    t.add_row("share of spend, top 1% of customers", "—" if share is None else f"{share:.1%}")
    t.add_row(
        "paying customers costing more than they pay",
        f"{h['underwater_customers']:,} of {h['paying_customers']:,}",
    )
    t.add_row(
        f"cost of the {h['free_customers']:,} free customers", usd(h["free_customers_cost_usd"])
    )
    t.add_row("unpriced LLM calls", f"{h['unpriced_calls']:,}")
    c.print(t)
    if not h["most_underwater"]:
        c.print("No paying customer costs more than it pays over this period.", highlight=False)
    else:
        u = Table(title="Ten most underwater paying customers")
        # revenue: MRR x months plus the pay-as-you-go overage billed (margins' rule)
        for col in ("customer", "tier", "cost", "revenue", "overage", "margin", "cost %"):
            u.add_column(col, justify="left" if col in ("customer", "tier") else "right")
        for r in h["most_underwater"]:
            pct = "—" if r["cost_pct_of_mrr"] is None else f"{r['cost_pct_of_mrr']:,.0f}%"
            u.add_row(
                r["customer_id"],
                r["tier"] or "—",
                usd(r["cost_usd"]),
                usd(r["revenue_usd"]),
                usd(r["overage_usd"]),
                usd(r["gross_margin_usd"]),
                pct,
            )
        c.print(u)
    tail = h.get("tail")
    if tail:
        from tailguard.demo import _tail_lines

        for line in _tail_lines(tail)[2:]:
            if line:
                c.print(line, highlight=False)
    c.print(f"report: [bold]{res.report}[/]  (full table: {res.table_csv}; ledger: {res.ledger})")
    c.print("next:", highlight=False)
    for cmd in res.next_commands():
        c.print(f"  {cmd}", highlight=False, soft_wrap=True)
    c.print("open the dashboard:", highlight=False)
    c.print(f"  {res.dashboard_command()}", highlight=False, soft_wrap=True)


def _live(out: str, *, customers: int, requests: int, seed: int, json_: bool) -> None:
    """Mock provider + gateway + traffic, then the per-customer table and guard actions."""
    from rich.console import Console
    from rich.table import Table

    from tailguard.analytics.report import customer_report
    from tailguard.gateway.live import run_live
    from tailguard.ledger import Ledger

    console = Console(stderr=True)
    with console.status(f"driving {customers} customers through the gateway"):
        res = run_live(out, customers=customers, requests=requests, seed=seed)
    rows = customer_report(res.ledger, limit=10)
    con = Ledger(res.ledger).connect()
    try:
        actions = dict(
            con.execute(
                "SELECT action, count(*) FROM events WHERE kind = 'guard' GROUP BY action"
            ).fetchall()
        )
    finally:
        con.close()
    if json_:
        print_json(
            {
                "requests": res.requests,
                "seconds": res.seconds,
                "client_saw": dict(res.outcomes),
                "guard_events": actions,
                "ledger": str(res.ledger),
                "top_customers": rows,
            }
        )
        return
    c = Console()
    c.print(
        f"[bold]{res.requests:,} requests in {res.seconds:.1f}s through the gateway[/]: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(res.outcomes.items()))
    )
    c.print("guard events in the ledger: " + ", ".join(f"{k} {v:,}" for k, v in actions.items()))
    t = Table(title="Top customers by cost (from the gateway's ledger)")
    for col in ("customer", "cost", "llm calls", "unpriced"):
        t.add_column(col, justify="left" if col == "customer" else "right")
    for r in rows:
        t.add_row(
            r["customer_id"],
            f"${float(r['cost_usd']):,.4f}",
            f"{r['llm_calls']:,}",
            f"{r['unpriced_calls']:,}",
        )
    c.print(t)
    c.print(f"ledger: [bold]{res.ledger}[/]")
