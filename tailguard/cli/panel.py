"""Commands: kpis, anomalies, margins (the cost panel of the eight-KPI framework and the margins of
the cost-allocation guide).

Thin shells over ``tailguard.analytics.{kpis,anomalies,margins}``: parse flags, open the
ledger, hand the result to the shared output path. docs/panel.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from tailguard.cli.app import app
from tailguard.cli.options import (
    FromOpt,
    LedgerOpt,
    PeriodOpt,
    PolicyOpt,
    ToOpt,
    ledger_connection,
    load_policy_option,
    parse_date,
)
from tailguard.cli.output import (
    CsvOpt,
    JsonOpt,
    Output,
    Table,
    emit,
    fmt_cell,
    output_options,
    print_csv,
    print_json,
)
from tailguard.errors import NoDataError
from tailguard.money import format_usd

__all__ = [
    "anomalies_cmd",
    "decide_cmd",
    "digest_cmd",
    "kpis_cmd",
    "margins_cmd",
    "renewal_cmd",
]

# one helper each for dates and the policy flag, shared with every command (cli/options.py)
_policy = load_policy_option
_date = parse_date


@contextmanager
def no_data_hint(flag: Callable[[dt.datetime], str]) -> Iterator[None]:
    """Turn the library's ``NoDataError`` (window used, last event) into the CLI's one line,
    ending with the flag that picks a window holding the last event: ``flag(last_event)``."""
    try:
        yield
    except NoDataError as exc:
        if exc.last_event is None:
            raise
        raise NoDataError(
            f"{exc}; pass {flag(exc.last_event)}",  # type: ignore[arg-type]
            window=exc.window,
            customer=exc.customer,
            last_event=exc.last_event,
        ) from None


def as_of_flag(ts: dt.datetime) -> str:
    return f"--as-of {ts.astimezone(dt.UTC):%Y-%m-%d}"


def period_flag(ts: dt.datetime) -> str:
    return f"--period {ts.astimezone(dt.UTC):%Y-%m}"


def day_flag(ts: dt.datetime) -> str:
    return f"--day {ts.astimezone(dt.UTC):%Y-%m-%d}"


def _both(json_: bool, csv_: bool) -> None:
    if json_ and csv_:
        raise typer.BadParameter("choose one of --json and --csv")


@app.command("kpis")
@output_options
def kpis_cmd(
    ledger: LedgerOpt = None,
    period: PeriodOpt = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Judge the month up to this day, YYYY-MM-DD [last event]."),
    ] = None,
    policy: PolicyOpt = None,
) -> Output:
    """The eight-KPI cost panel: each KPI's value, healthy band and status.

    Per-task cost by workload class; per-user (median paid user vs seat price, p90 user vs
    soft cap, p99 user vs hard cap, cohort drift); per-tenant (spend, pool utilization,
    top-user concentration, cost-to-ARR); tier-budget utilization with the projected cap-hit
    date; overage routing and soft-cap degradation rates by tier (three days out of band:
    alert); top-feature concentration; cost-to-revenue. Status: ok | watch | act (unknown
    without a policy where caps are needed). The period defaults to the month of the last
    event, judged up to --as-of. docs/panel.md.

    Example: tailguard kpis --period 2026-02 --policy examples/policy.toml --json
    """
    from tailguard.analytics.kpis import NO_POLICY, kpis

    pol = _policy(policy)
    with ledger_connection(ledger) as con:
        rep = kpis(con, period=period, as_of=_date(as_of, "--as-of"), policy=pol)
    for k in rep["kpis"]:  # the library names the setting; the command names its flag
        for m in k["metrics"]:
            if m.get("note") == NO_POLICY:
                m["note"] = f"{NO_POLICY}: give --policy FILE"
    return kpis_output(rep)


#: units shown after a KPI value (the others, counts of customers, read without one)
_KPI_UNITS = {"%": " %", "tokens": " tok"}


def _kpi_number(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    return f"{v:,}" if isinstance(v, int) else f"{v:,g}"


def _kpi_band(band: Any) -> str:
    """A healthy band as ``low–high`` (a text band, e.g. ``< soft threshold``, as it is)."""
    if isinstance(band, list | tuple) and len(band) == 2:
        return f"{_kpi_number(band[0])}–{_kpi_number(band[1])}"
    return "—" if band is None else str(band)


def _csv_band(band: Any) -> dict[str, Any]:
    """A band for --csv: ``band_low``/``band_high`` as numbers, ``band`` only when in words."""
    if isinstance(band, list | tuple) and len(band) == 2:
        return {"band_low": band[0], "band_high": band[1], "band": None}
    return {"band_low": None, "band_high": None, "band": band}


def _kpi_value(v: Any, unit: str) -> str:
    if v is None:
        return "—"
    if isinstance(v, int | float) and not isinstance(v, bool):
        return fmt_cell(v) + _KPI_UNITS.get(unit, "")
    return str(v)


def kpis_output(rep: dict[str, Any]) -> Output:
    """The panel as a table that reads at 80 columns: one row per KPI (its status), its metrics
    under it, a metric measured per tier (or per kind) as one row per tier. --csv: one row per
    (kpi, metric, key) with the raw value; --json: the report as the library returns it."""
    shown: list[dict[str, Any]] = []
    flat: list[dict[str, Any]] = []
    for k in rep["kpis"]:
        # ids, not titles: the longest title alone is 45 columns wide
        shown.append(
            {"metric": k["id"].replace("_", " "), "value": "", "band": "", "status": k["status"]}
        )
        for m in k["metrics"]:
            label, value, band = "  " + m["id"].replace("_", " "), m["value"], m["band"]
            if not isinstance(value, dict):
                shown.append(
                    {
                        "metric": label,
                        "value": _kpi_value(value, m["unit"]),
                        "band": _kpi_band(band),
                        "status": m["status"],
                    }
                )
                flat.append(
                    {"kpi": k["id"], "metric": m["id"], "key": "", "value": value}
                    | {"unit": m["unit"]}
                    | _csv_band(band)
                    | {"status": m["status"]}
                )
                continue
            per_tier = {t.get("tier"): t.get("status") for t in m.get("tiers") or []}
            shown.append(
                {
                    "metric": label,
                    "value": "",
                    "band": "" if isinstance(band, dict) else _kpi_band(band),
                    "status": m["status"],
                }
            )
            for key, v in value.items():
                kb = band.get(key) if isinstance(band, dict) else band
                shown.append(
                    {
                        "metric": f"    {key}".replace("_", " "),
                        "value": _kpi_value(v, m["unit"]),
                        "band": _kpi_band(kb) if isinstance(band, dict) else "",
                        "status": per_tier.get(key) or "",
                    }
                )
                flat.append(
                    {"kpi": k["id"], "metric": m["id"], "key": key, "value": v, "unit": m["unit"]}
                    | _csv_band(kb)
                    | {"status": per_tier.get(key) or ""}
                )
    title = (
        f"Cost panel {rep['period']} as of {rep['as_of']} "
        f"({rep['days_elapsed']}/{rep['days_in_month']} days): {rep['status']}"
    )
    return Output(
        [Table(shown, ("metric", "value", "band", "status"), title=title)],
        payload=rep,
        csv=Table(flat, csv_columns=tuple(flat[0]) if flat else ()),
    )


@app.command("anomalies")
@output_options
def anomalies_cmd(
    ledger: LedgerOpt = None,
    day: Annotated[
        str | None, typer.Option("--day", help="UTC day to scan, YYYY-MM-DD [last event's day].")
    ] = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Flag 24h spend >= this × trailing median.")
    ] = 5.0,
    policy: PolicyOpt = None,
    json_: JsonOpt = False,
    csv_: CsvOpt = False,
) -> None:
    """The daily anomaly scan: users, features and customers spending >= 5x their usual.

    Usual = the median of the 7 daily totals before the day, days without spend counted as 0
    (entities with a median of 0 have no baseline and are listed apart). Also: the top 10
    users by 24-hour spend with the day-over-day delta, the top 5 features, and the tiers whose
    overage-routing rate is out of band. docs/panel.md.

    Example: tailguard anomalies --day 2026-02-20 --threshold 5 --json
    """
    from tailguard.analytics.anomalies import anomalies

    if threshold <= 0:
        raise typer.BadParameter("--threshold must be > 0")
    pol = _policy(policy)
    with ledger_connection(ledger) as con, no_data_hint(day_flag):
        rep = anomalies(con, day=_date(day, "--day"), threshold=threshold, policy=pol)
    if json_:
        print_json(rep)
        return
    cols = (
        "entity_type",
        "entity_id",
        "customer_id",
        "spend_24h_usd",
        "trailing_median_usd",
        "ratio",
    )
    emit(
        rep["anomalies"],
        json_=False,
        csv_=csv_,
        columns=cols,
        title=f"Anomalies on {rep['day']}: 24h spend >= {threshold:g}× trailing-7-day median",
    )
    if csv_:
        return
    emit(
        rep["top_users"],
        json_=False,
        csv_=False,
        columns=("entity_id", "customer_id", "spend_24h_usd", "prev_day_usd", "delta_usd"),
        title=f"Top users by 24h spend, {rep['day']}",
    )
    emit(
        rep["top_features"],
        json_=False,
        csv_=False,
        columns=("entity_id", "spend_24h_usd", "prev_day_usd", "delta_usd"),
        title=f"Top features by 24h spend, {rep['day']}",
    )
    if rep["tiers_out_of_band"]:
        emit(
            rep["tiers_out_of_band"],
            json_=False,
            csv_=False,
            title=f"Tiers with an overage-routing rate out of band, as of {rep['day']}",
        )


@app.command("margins")
@output_options
def margins_cmd(
    ledger: LedgerOpt = None,
    period: PeriodOpt = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    months: Annotated[
        int, typer.Option("--months", min=1, max=120, help="Months of band history.")
    ] = 12,
    json_: JsonOpt = False,
    csv_: CsvOpt = False,
) -> None:
    """Per-customer inference cost as % of MRR against the cost-allocation guide's thresholds.

    smb target < 20%, alert > 35%; mid_market < 18% / > 30%; enterprise < 15% / > 25%;
    usage_based < 30% / > 50% of consumed revenue. Status ok | watch | alert (no_revenue for
    free customers). Also the underwater list (cost above revenue) and how many customers sit
    in each band, month by month. docs/panel.md.

    Example: tailguard margins --period 2026-02 --json
    """
    from tailguard.analytics.margins import margins
    from tailguard.analytics.period import window

    _both(json_, csv_)
    win = window(period, date_from, date_to)
    with ledger_connection(ledger) as con, no_data_hint(period_flag):
        rep = margins(con, win, history_months=months)
    if json_:
        print_json(rep)
        return
    cols = (
        "customer_id",
        "tier",
        "segment",
        "cost_usd",
        "revenue_usd",
        "cost_pct_of_mrr",
        "target_pct",
        "alert_pct",
        "status",
    )
    if csv_:
        emit(
            rep["customers"],
            json_=False,
            csv_=True,
            columns=(*cols, "gross_margin_usd", "window_start", "window_end"),
        )
        return
    c = rep["counts"]
    span = f"{rep['window']['start']} .. {rep['window']['end']}"
    emit(
        [r for r in rep["customers"] if r["status"] in ("alert", "watch")],
        json_=False,
        csv_=False,
        columns=cols,
        title=f"Margins {span}: {c['ok']} ok, {c['watch']} watch, {c['alert']} alert, "
        f"{c['no_revenue']} no revenue",
    )
    emit(
        rep["underwater"],
        json_=False,
        csv_=False,
        columns=("customer_id", "tier", "segment", "cost_usd", "revenue_usd", "gross_margin_usd"),
        title=f"Underwater: {len(rep['underwater'])} paying customers cost more than they "
        f"pay, {span}",
    )
    emit(
        rep["bands_by_month"],
        json_=False,
        csv_=False,
        title=f"Customers per band, by month, the {len(rep['bands_by_month'])} months with data "
        f"up to {rep['window']['end']}",
    )


DECIDE_CSV = (
    "customer_id",
    "tier",
    "segment",
    "window_start",
    "window_end",
    "months",
    "cost_to_serve_usd",
    "revenue_usd",
    "cost_pct_of_mrr",
    "gross_margin_usd",
    "monthly_cost_usd",
    "monthly_price_usd",
    "monthly_margin_usd",
    "monthly_margin_after_fix_usd",
    "monthly_margin_after_cap_usd",
    "price_increase_needed_pct",
    "recommendation",
    "reason",
)


@app.command("decide")
@output_options
def decide_cmd(
    customer: Annotated[str, typer.Argument(help="The customer id.")],
    ledger: LedgerOpt = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Quarter = the 3 months ending this day's month [the customer's last event].",
        ),
    ] = None,
    period: PeriodOpt = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    config: Annotated[
        str | None,
        typer.Option("--config", help="Config TOML with [decide] [env TAILGUARD_CONFIG]."),
    ] = None,
    json_: JsonOpt = False,
    csv_: CsvOpt = False,
) -> None:
    """Keep, reprice, cap or offboard: the decision for one customer, arithmetic shown.

    When to give up on a customer, after the per-customer economics essay.

    The customer's last quarter (the 3 calendar months up to its own last event; --as-of moves
    it, --period or --from/--to replace it): cost to serve against price paid; the levers from
    the diagnosis with their expected saving (uplift × probability, assumptions in the config
    file's decide table) against their engineering hours; counterfactual lifetime value; one
    recommendation. A customer with no events in the window is refused, never judged at a cost
    of zero. docs/panel.md.

    Example: tailguard decide cus_0013 --json
    """
    from tailguard.analytics.decide import decide, load_config
    from tailguard.analytics.period import is_given, window

    _both(json_, csv_)
    win = window(period, date_from, date_to)
    if is_given(win) and as_of is not None:
        raise typer.BadParameter("give either --as-of or a window (--period, --from/--to)")
    if is_given(win) and (win.start is None or win.end is None):
        raise typer.BadParameter("decide needs both --from and --to (or --period)")
    cfg = load_config(config)
    with ledger_connection(ledger) as con, no_data_hint(as_of_flag):
        rep = decide(
            con,
            customer,
            as_of=_date(as_of, "--as-of"),
            window=win if is_given(win) else None,
            config=cfg,
        )
    if json_:
        print_json(rep)
        return
    if csv_:
        w = rep["window"]
        row = {**rep, "window_start": w["start"], "window_end": w["end"]}
        print_csv([row], DECIDE_CSV)
        return
    w = rep["window"]
    typer.echo(
        f"{rep['customer_id']} ({rep['tier']}, {rep['segment']}), {w['start']} .. {w['end']}: "
        f"{rep['recommendation'].upper()} — {rep['reason']}"
    )
    for line in rep["arithmetic"]:
        typer.echo(f"  {line}")
    ltv = rep["lifetime_value_usd"]
    typer.echo(
        f"  lifetime value over {rep['lifetime_months']} months: as is "
        f"{format_usd(ltv['as_is'])}, after fixes {format_usd(ltv['after_fix'])}, "
        f"after fixes and caps {format_usd(ltv['after_fix_and_cap'])}"
    )


@app.command("renewal")
@output_options
def renewal_cmd(
    customer: Annotated[str, typer.Argument(help="The customer id.")],
    ledger: LedgerOpt = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="The last of the 12 months is this day's [last event]."),
    ] = None,
    html_file: Annotated[
        str | None, typer.Option("--html", help="Also write a printable HTML page here.")
    ] = None,
    json_: JsonOpt = False,
    csv_: CsvOpt = False,
) -> None:
    """The renewal one-pager: 12 months of consumption, next year, the pool to sell.

    After the eight-KPI framework's renewal brief.

    The 12 months end with the month of the customer's own last event (--as-of moves them);
    a customer with no events in them is refused. Contracted pool; actual consumption month by
    month; a next-year projection from seat growth (active users) and adoption (cost per
    user), least squares over whole months; the recommended monthly pool = mean projected
    month × 1.2, rounded up. --csv: the twelve months then the projected twelve, one row each
    (kind actual | projected). docs/panel.md.

    Example: tailguard renewal cus_0013 --html renewal.html
    """
    from pathlib import Path

    from tailguard.analytics.renewal import html, renewal

    _both(json_, csv_)
    with ledger_connection(ledger) as con, no_data_hint(as_of_flag):
        rep = renewal(con, customer, as_of=_date(as_of, "--as-of"))
    if html_file:
        Path(html_file).write_text(html(rep), encoding="utf-8")
    if json_:
        print_json(rep)
        return
    w = rep["window"]
    if csv_:
        rows = [{"kind": "actual", **m} for m in rep["months"]] + [
            {"kind": "projected", **m} for m in rep["projection"]
        ]
        for r in rows:
            r.update(customer_id=rep["customer_id"], window_start=w["start"], window_end=w["end"])
        print_csv(
            rows,
            (
                "customer_id",
                "kind",
                "month",
                "cost_usd",
                "llm_calls",
                "active_users",
                "cost_per_user_usd",
                "partial",
                "window_start",
                "window_end",
            ),
        )
        return
    emit(
        rep["months"],
        json_=False,
        csv_=False,
        columns=("month", "cost_usd", "llm_calls", "active_users", "partial"),
        title=f"Renewal: {rep['customer_id']} ({rep['tier']}), {w['start']} .. {w['end']}, "
        f"contracted pool {format_usd(rep['contracted_pool_usd'])}",
    )
    typer.echo(
        f"actual 12 months {format_usd(rep['actual_12_months_usd'])}; projected next 12 months "
        f"{format_usd(rep['projected_next_12_months_usd'])}; recommended pool "
        f"{format_usd(rep['recommended_pool_usd'])} a month ({rep['recommended_pool_note']})"
        + (f"; wrote {html_file}" if html_file else "")
    )


@app.command("digest")
@output_options
def digest_cmd(
    rhythm: Annotated[str, typer.Argument(help="daily | weekly | quarterly")],
    ledger: LedgerOpt = None,
    day: Annotated[
        str | None, typer.Option("--day", help="Last day covered, YYYY-MM-DD [last event's day].")
    ] = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help='POST {"text": markdown} to this URL.')
    ] = None,
    policy: PolicyOpt = None,
    json_: JsonOpt = False,
    csv_: CsvOpt = False,
) -> None:
    """The review rhythms as markdown: daily scan, weekly review, quarterly tier review.

    The three rhythms of the eight-KPI framework.

    daily: anomalies, top users and features by 24h spend, tiers out of band. weekly: spend by
    tier, feature shifts, p90/p99 users, tenant cost-to-ARR, against the week before.
    quarterly: tiers, feature shifts and effective $/Mtok by model against the quarter before.
    --webhook posts it (Slack-style incoming webhook). A day, week or quarter with no events
    is refused, never reported as quiet. --csv: the digest's tables as rows (section, key,
    figures, window). docs/panel.md.

    Example: tailguard digest daily --webhook https://hooks.example.com/T000/B000/XXXX
    """
    from tailguard.analytics.digest import CSV_COLUMNS, RHYTHMS, csv_rows, digest, post

    if rhythm not in RHYTHMS:
        raise typer.BadParameter(f"RHYTHM must be one of {', '.join(RHYTHMS)}")
    _both(json_, csv_)
    pol = _policy(policy)
    with ledger_connection(ledger) as con, no_data_hint(day_flag):
        rep = digest(con, rhythm, day=_date(day, "--day"), policy=pol)
    if webhook:
        rep["webhook_status"] = post(webhook, rep)
    if json_:
        print_json(rep)
        return
    if csv_:
        print_csv(csv_rows(rep), CSV_COLUMNS)
        return
    typer.echo(rep["markdown"])
    if webhook:
        typer.echo(f"posted to the webhook: HTTP {rep['webhook_status']}", err=True)
