"""Commands: concentration (and, later, diagnose and outcomes): seeing the tail of the spend."""

from __future__ import annotations

import csv
import os
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer

from tailguard.cli.app import app
from tailguard.cli.options import FromOpt, LedgerOpt, PeriodOpt, ToOpt, read_ledger
from tailguard.cli.output import Output, Table, output_options, print_table
from tailguard.errors import InputError

__all__ = ["concentration_cmd", "read_values_csv"]


def read_values_csv(
    path: str, value_column: str, id_column: str | None = None
) -> tuple[list[str] | None, list[Decimal]]:
    """One value per entity from a CSV, as exact Decimals; rows with the same id are summed.

    Every bad row is reported (``file:line: column: reason``), not just the first, so a finance
    export can be fixed in one pass. Amounts must be plain numbers (``1234.50``): a currency sign
    or thousands separator is refused rather than guessed at.
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    problems: list[str] = []
    totals: dict[str, Decimal] = {}
    values: list[Decimal] = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        for col in (value_column, id_column):
            if col is not None and col not in cols:
                problems.append(
                    f"{path}:1: {col}: no such column (columns: {', '.join(cols) or 'none'})"
                )
        if problems:
            raise InputError(f"{path}: missing column", problems)
        for row in reader:
            line = reader.line_num
            raw = (row.get(value_column) or "").strip()
            try:
                v = Decimal(raw)
                if not v.is_finite():
                    raise InvalidOperation
            except InvalidOperation:
                reason = "empty" if not raw else f"not a number: {raw!r}"
                problems.append(f"{path}:{line}: {value_column}: {reason}")
                continue
            if id_column is None:
                values.append(v)
                continue
            key = (row.get(id_column) or "").strip()
            if not key:
                problems.append(f"{path}:{line}: {id_column}: empty id")
                continue
            totals[key] = totals.get(key, Decimal(0)) + v
    if problems:
        raise InputError(f"{len(problems)} bad row(s) in {path}", problems)
    if id_column is None:
        return None, values
    return list(totals), list(totals.values())


def _metric_rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The report flattened to (metric, value) rows, for --csv and the summary table."""
    rows: list[dict[str, Any]] = [
        {"metric": "n", "value": res["n"]},
        {"metric": "total", "value": res["total"]},
        {"metric": "mean", "value": res["mean"]},
        {"metric": "gini", "value": res["gini"]},
    ]
    for k, v in res["top_shares"].items():
        rows.append({"metric": f"top_share_{k}", "value": v})
    for k, q in res["quantiles"].items():
        if q is None:
            continue
        rows += [
            {"metric": f"{k}_value", "value": q["value"]},
            {"metric": f"{k}_total_above", "value": q["total_above"]},
            {"metric": f"{k}_share_above", "value": q["share_above"]},
        ]
    pl = res["powerlaw"]
    if pl:
        for k in ("alpha", "sigma", "xmin", "n_tail", "ks_distance", "p_value"):
            rows.append({"metric": f"powerlaw_{k}", "value": pl[k]})
        for alt in ("lognormal", "exponential"):
            rows.append({"metric": f"vs_{alt}_R", "value": pl[f"vs_{alt}"]["R"]})
            rows.append({"metric": f"vs_{alt}_p", "value": pl[f"vs_{alt}"]["p"]})
    rows.append({"metric": "excluded_negative_count", "value": res["excluded"]["negative_count"]})
    rows.append({"metric": "verdict", "value": res["verdict"]})
    return rows


def _show(res: dict[str, Any], source: str) -> None:
    """The Rich summary: shares, quantiles, the tail fit, the verdict."""
    from rich.console import Console

    pct = "{:.1%}".format
    shares = [
        {"top": k, "entities": res["top_counts"][k], "share of spend": pct(v)}
        for k, v in res["top_shares"].items()
        if v is not None
    ]
    quants = [
        {
            "quantile": k,
            "value": q["value"],
            "entities above": q["n_above"],
            "spend above": q["total_above"],
            "share above": pct(q["share_above"]),
        }
        for k, q in res["quantiles"].items()
        if q is not None
    ]
    head = f"{res['n']:,} entities, total {res['total']:,.2f}"
    if res["gini"] is not None:
        head += f", gini {res['gini']:.3f}"
    Console().print(f"[bold]Concentration of {source}[/bold]: {head}")
    print_table(shares, title="Top shares")
    print_table(quants, title="Quantiles and the spend above them")
    if res["top"]:
        top = [{"id": t["id"], "value": t["value"], "share": pct(t["share"])} for t in res["top"]]
        print_table(top, title=f"The {len(top)} largest")
    pl = res["powerlaw"]
    if pl:
        fmt_p = "—" if pl["p_value"] is None else f"{pl['p_value']:.2f}"
        rows = [
            {"": "alpha (± s.e.)", "value": f"{pl['alpha']:.3f} ± {pl['sigma']:.3f}"},
            {"": "xmin", "value": f"{pl['xmin']:.6g}"},
            {"": "entities in the tail", "value": f"{pl['n_tail']:,}"},
            {"": "KS distance", "value": f"{pl['ks_distance']:.4f}"},
            {"": f"goodness of fit p (bootstrap {pl['bootstrap'] or 0})", "value": fmt_p},
        ]
        for alt in ("lognormal", "exponential"):
            lr = pl[f"vs_{alt}"]
            rows.append({"": f"vs {alt}: R (p)", "value": f"{lr['R']:+.2f} ({lr['p']:.2f})"})
        print_table(rows, title="Power-law tail (Clauset-Shalizi-Newman)")
    if res["excluded"]["negative_count"]:
        Console().print(
            f"left out: {res['excluded']['negative_count']} negative value(s) "
            f"totalling {res['excluded']['negative_total']}"
        )
    Console().print(f"[bold]{res['verdict']}[/bold]")


@app.command("concentration")
@output_options
def concentration_cmd(
    input_: Annotated[
        str | None,
        typer.Option("--input", help="CSV with one row per entity (e.g. billing totals)."),
    ] = None,
    value_column: Annotated[
        str | None, typer.Option("--value-column", help="Column holding the amount (--input).")
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option("--id-column", help="Column naming the entity; repeated ids are summed."),
    ] = None,
    ledger: LedgerOpt = None,
    period: PeriodOpt = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    by: Annotated[
        str, typer.Option("--by", help="Ledger mode: customer, user or feature.")
    ] = "customer",
    discrete: Annotated[
        bool, typer.Option("--discrete", help="Integer values: fit the discrete power law.")
    ] = False,
    bootstrap: Annotated[
        int,
        typer.Option("--bootstrap", min=0, help="Goodness-of-fit p-value from N synthetic sets."),
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the bootstrap.")] = 0,
    plot: Annotated[
        str | None, typer.Option("--plot", help="Write the Lorenz + CCDF figure (.png or .svg).")
    ] = None,
) -> Output:
    """How concentrated spend is: top shares, quantile integrals, Gini, power-law tail.

    From the ledger (per customer, user or feature over a window) or from any CSV of totals.

    Examples:
      tailguard concentration --period 2025-06 --by customer --plot tail.png
      tailguard concentration --input billing.csv --value-column amount --id-column customer
    """
    from tailguard.analytics.concentration import concentration, plot_concentration

    ids: list[str] | None
    values: Any
    stated = None  # the ledger's window (a CSV of totals has none)
    if input_ is not None:
        if ledger or period or date_from or date_to:
            raise typer.BadParameter("--input reads a CSV: drop --ledger/--period/--from/--to")
        if not value_column:
            raise typer.BadParameter("--input needs --value-column")
        ids, values = read_values_csv(input_, value_column, id_column)
        source = os.path.basename(input_)
    else:
        if value_column or id_column:
            raise typer.BadParameter("--value-column/--id-column go with --input")
        from tailguard.analytics.period import window
        from tailguard.analytics.totals import entity_totals, totals_window
        from tailguard.cli.panel import no_data_hint, period_flag

        win = window(period, date_from, date_to)
        led = read_ledger(ledger)
        with no_data_hint(period_flag):
            stated = totals_window(led, win)  # the days covered, stated in the output
        ids, values = entity_totals(led, by=by, window=win)
        source = f"spend by {by}, {stated.label()}"
    try:
        res = concentration(values, ids, discrete=discrete, bootstrap=bootstrap, seed=seed)
    except ValueError as exc:
        raise InputError(f"{input_ or 'the ledger'}: {value_column or by}: {exc}") from exc
    if plot:
        try:
            written = plot_concentration(res, plot, title=f"Concentration of {source}")
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--plot") from exc
        typer.echo(f"wrote {written}", err=True)
    if stated is not None:
        res["window"] = stated.stated()
    return Output(
        payload=res,
        csv=Table(_metric_rows(res), csv_columns=("metric", "value")),
        show=lambda: _show(res, source),
    )
