"""``customer_report``: the per-customer table as a library call."""

from __future__ import annotations

import os
from typing import Any

from tailguard.analytics.customers import customer_rows, sort_rows
from tailguard.analytics.period import Window, require_events
from tailguard.ledger.store import Ledger


def customer_report(
    ledger: Ledger | str | os.PathLike[str],
    *,
    window: Window | None = None,
    sort: str = "cost_usd",
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """One dict per customer, sorted by ``sort`` descending (see docs/reports.md); each row
    states its window (``window_start``, ``window_end``). ``NoDataError`` when the window holds
    no events: a table of zeros would read as customers costing nothing."""
    led = ledger if isinstance(ledger, Ledger) else Ledger(ledger)
    con = led.connect()
    try:
        win = window or Window()
        require_events(con, win)
        rows = sort_rows(customer_rows(con, win), sort)
    finally:
        con.close()
    return rows[:limit] if limit else rows
