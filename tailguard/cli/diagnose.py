"""Commands: diagnose, outcomes, workload (why the tail costs what it costs, and per what)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tailguard.cli.app import app
from tailguard.cli.options import (
    ConfigOpt,
    FromOpt,
    LedgerOpt,
    PeriodOpt,
    ToOpt,
    ledger_connection,
)
from tailguard.cli.output import (
    CsvOpt,
    JsonOpt,
    emit,
    fmt_cell,
    output_options,
    print_json,
    print_table,
)
from tailguard.cli.panel import no_data_hint, period_flag

__all__ = ["diagnose_cmd", "outcomes_cmd", "workload_cmd"]


def _ratio(e: dict[str, Any]) -> str:
    if e["ratio"] is None:
        return "—"
    return f"{e['ratio']:.1f}×" if e["ratio"] >= 1 else f"{e['ratio']:.2f}×"


@app.command("diagnose")
@output_options
def diagnose_cmd(
    ledger: LedgerOpt = None,
    period: PeriodOpt = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    customer: Annotated[
        str | None, typer.Option("--customer", help="Diagnose this customer, tail or not.")
    ] = None,
    top: Annotated[
        float | None,
        typer.Option("--top", min=0.0, max=100.0, help="Tail = top PCT% by cost [default 5]."),
    ] = None,
    config: ConfigOpt = None,
    json_: JsonOpt = False,
    csv_: CsvOpt = False,
) -> None:
    """The customers in the cost tail, the shapes their usage matches, and the levers that fit.

    The tail is the top 5% of customers by cost plus those above the p95 of cost per
    successful task. A shape matches when its metric is at least 3x the median customer's
    (cache hit rate: at most 1/3), for customers with at least 20 tasks. Thresholds:
    the config file's diagnose table (docs/diagnosis.md). The window defaults to every day the
    ledger holds; each row states it (window_start, window_end). A customer with no events in
    the window is refused, never diagnosed at a cost of zero.

    Example: tailguard diagnose --period 2026-01 --top 2 --json
    """
    from dataclasses import replace

    from tailguard.analytics.diagnose import diagnose, load_config
    from tailguard.analytics.period import bounded, window

    cfg = load_config(config)
    if top is not None:
        if top <= 0:
            raise typer.BadParameter("--top must be > 0")
        cfg = replace(cfg, top_pct=top)
    if json_ and csv_:
        raise typer.BadParameter("choose one of --json and --csv")
    win = window(period, date_from, date_to)
    with ledger_connection(ledger) as con, no_data_hint(period_flag):
        res = diagnose(con, win, config=cfg, customer=customer)
        stated = bounded(con, win)
    rows = [
        {
            "rank": r["rank"],
            "customer_id": r["customer_id"],
            "tier": r["tier"],
            "cost_usd": r["cost_usd"],
            "cost_per_successful_task": r["cost_per_successful_task"],
            "tasks": r["tasks"],
            "shapes": ", ".join(f"{e['shape']} ({_ratio(e)})" for e in r["evidence"])
            or ("—" if r["judged"] else f"(< {cfg.min_tasks} tasks)"),
            "top_lever": r["levers"][0]["name"] if r["levers"] else "—",
            "window_start": r["window_start"],
            "window_end": r["window_end"],
        }
        for r in res
    ]
    if json_:
        print_json(res)
        return
    table = ("rank", "customer_id", "tier", "cost_usd", "cost_per_successful_task", "tasks")
    emit(
        rows,
        json_=False,
        csv_=csv_,
        # the table states the window in its title; the CSV in every row
        columns=None if csv_ else (*table, "shapes", "top_lever"),
        title=f"Cost tail {stated.label()}: {len(res)} customers",
    )


@app.command("outcomes")
@output_options
def outcomes_cmd(
    ledger: LedgerOpt = None,
    period: PeriodOpt = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Also per group: feature | customer | workload."),
    ] = None,
    json_: JsonOpt = False,
    csv_: CsvOpt = False,
) -> None:
    """Cost per resolved task: all spend (failed, retried, abandoned runs too) / accepted tasks.

    Also the failure cost share, spend by outcome, and a weekly series of cost per call next to
    cost per resolved task (the two can move in opposite directions). docs/outcomes.md.

    Example: tailguard outcomes --period 2026-01 --by feature
    """
    from tailguard.analytics.outcomes import BUCKETS, GROUPS, outcomes
    from tailguard.analytics.period import window

    if by is not None and by not in GROUPS:
        raise typer.BadParameter(f"--by must be one of {', '.join(GROUPS)}")
    win = window(period, date_from, date_to)
    with ledger_connection(ledger) as con, no_data_hint(period_flag):
        rep = outcomes(con, win, by=by)
    if json_:
        print_json(rep)
        return
    cols = (
        "spend_usd",
        "resolved_tasks",
        "cost_per_resolved_task",
        "llm_calls",
        "cost_per_call",
        "failure_cost_share",
    )
    if csv_:
        emit(
            [_flat(g) for g in (rep.get("groups") or [{"group": "all", **rep}])],
            json_=False,
            csv_=True,
            columns=("group", *cols, *(f"{b}_share" for b in BUCKETS)),
        )
        return
    span = f"{rep['window']['start']} .. {rep['window']['end']}"
    print_table(
        [{"metric": c, "value": rep[c]} for c in cols], title=f"Cost per resolved task, {span}"
    )
    print_table(
        [
            {"outcome": b, "spend_usd": v["spend_usd"], "share": v["share"]}
            for b, v in rep["by_outcome"].items()
        ],
        title=f"Spend by outcome (open = no outcome yet), {span}",
    )
    print_table(
        rep["weekly"],
        (
            "week",
            "cost_per_call",
            "cost_per_call_change",
            "cost_per_resolved_task",
            "cost_per_resolved_task_change",
            "calls_per_resolved_task",
        ),
        title=f"Weekly: cost per call vs cost per resolved task, {span}",
    )
    if by:
        print_table(rep["groups"], ("group", *cols), title=f"By {by}, {span}")


def _flat(g: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in g.items() if k not in ("by_outcome", "weekly", "groups")}
    for b, v in g["by_outcome"].items():
        out[f"{b}_share"] = v["share"]
    return out


@app.command("workload")
@output_options
def workload_cmd(
    ledger: LedgerOpt = None,
    period: PeriodOpt = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    config: ConfigOpt = None,
    json_: JsonOpt = False,
    csv_: CsvOpt = False,
) -> None:
    """Effective tokens and cost per task and per model invocation, per workload class.

    Against the eight-KPI framework's bands: chat 800-2,000 per turn (> 5,000 flagged), agent
    8,000-20,000 per task (> 40,000 looping), rag 4,000-12,000 per turn (> 25,000 over-fetching). A
    turn is one model invocation. Multipliers: the config file's workload table
    (docs/outcomes.md).

    Example: tailguard workload --period 2026-01 --json
    """
    from tailguard.analytics.period import window
    from tailguard.analytics.workload import load_config, workload

    kw = load_config(config)
    win = window(period, date_from, date_to)
    with ledger_connection(ledger) as con, no_data_hint(period_flag):
        rep = workload(con, win, **kw)
    if json_:
        print_json(rep)
        return
    if csv_:  # every field, full precision: the table's "band" and "over alarm" are display text
        emit(
            [
                {
                    **{k: v for k, v in c.items() if k != "band"},
                    "band_low": c["band"][0] if c["band"] else None,
                    "band_high": c["band"][1] if c["band"] else None,
                }
                for c in rep["classes"]
            ],
            json_=False,
            csv_=True,
        )
        return
    rows = [
        {
            **c,
            "band": "—"
            if c["band"] is None
            else f"{c['band'][0]:,}–{c['band'][1]:,}/{c['band_unit']}",
            "over_alarm": "—"
            if c["alarm"] is None
            else f"{fmt_cell(c['over_alarm_share'])} > {c['alarm']:,}",
        }
        for c in rep["classes"]
    ]
    emit(
        rows,
        json_=False,
        csv_=csv_,
        columns=(
            "workload",
            "tasks",
            "invocations_per_task",
            "effective_tokens_per_task",
            "effective_tokens_per_invocation",
            "cost_per_task",
            "band",
            "over_alarm",
            "status",
        ),
        title="Per-task cost by workload class (effective tokens), "
        f"{rep['window']['start']} .. {rep['window']['end']}",
    )
