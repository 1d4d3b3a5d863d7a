"""``customer_report``: the per-customer table as a library call."""

from __future__ import annotations

from typing import Any

from tailguard.analytics.context import using
from tailguard.analytics.customers import (
    ENGINE_SORT,
    check_sort,
    customer_rows,
    sort_rows,
    top_customer_rows,
)
from tailguard.analytics.period import Window, require_events


def customer_report(
    ledger: Any,
    *,
    window: Window | None = None,
    sort: str = "cost_usd",
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """One dict per customer, sorted by ``sort`` descending (see docs/reports.md); each row
    states its window (``window_start``, ``window_end``). ``NoDataError`` when the window holds
    no events: a table of zeros would read as customers costing nothing. ``ledger``: a
    ``QueryContext``, a ``Ledger`` or its directory, or an open connection."""
    check_sort(sort)  # before any work: a wrong field costs no table
    with using(ledger) as ctx:
        win = window or Window()
        if limit and sort in ENGINE_SORT:  # sorted and cut in the engine: `limit` rows built
            return top_customer_rows(ctx, win, sort, limit)  # (it checks for events itself)
        require_events(ctx, win)
        rows = sort_rows(customer_rows(ctx, win), sort)
    return rows[:limit] if limit else rows
