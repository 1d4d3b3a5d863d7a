"""Per-entity spend totals from the ledger (input to the concentration analysis)."""

from __future__ import annotations

import os

import numpy as np

from tailguard.analytics.context import QueryContext, using
from tailguard.analytics.period import Window, bounded
from tailguard.errors import ArgumentError
from tailguard.ledger.store import Ledger

BY = {"customer": "customer_id", "user": "user_id", "feature": "feature"}


def entity_totals(
    ledger_dir: str | os.PathLike[str] | Ledger | QueryContext,
    *,
    by: str = "customer",
    start: object = None,
    end: object = None,
    window: Window | None = None,
) -> tuple[list[str], np.ndarray]:
    """(ids, cost totals in USD as float64) per entity, descending.

    Totals are exact DECIMAL sums in the engine, converted to float64 once at the end: fine for
    shares and fits, which are ratios. Entities with a null key (e.g. no user) are left out.
    """
    if by not in BY:
        raise ArgumentError("by", f"{by!r} is not one of {', '.join(BY)}")
    win = window or Window(start, end)  # type: ignore[arg-type]
    col = BY[by]
    with using(ledger_dir) as ctx:
        src = ctx.source(win)  # the roll-up when it can answer: the same exact sums
        rows = ctx.execute(
            f"SELECT {col} AS id, sum(cost_usd) AS cost FROM {src.table} "
            f"WHERE {src.where} AND {col} IS NOT NULL GROUP BY {col} "
            f"ORDER BY cost DESC NULLS LAST, id",
            src.params,
        ).fetchall()
    ids = [r[0] for r in rows]
    values = np.array([float(r[1] or 0) for r in rows], dtype=np.float64)
    return ids, values


def totals_window(
    ledger_dir: str | os.PathLike[str] | Ledger | QueryContext, window: Window | None = None
) -> Window:
    """The days ``entity_totals`` covers for ``window``: an open side closed at the first / last
    event's day, so the output can state it. ``NoDataError`` when the window holds no events
    (concentration over nothing is not a concentration of zeros)."""
    with using(ledger_dir) as ctx:
        return bounded(ctx, window or Window())
