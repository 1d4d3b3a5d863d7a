"""``customer_report``: the per-customer table as a library call."""

from __future__ import annotations

from typing import Any

from tailguard.analytics.context import using
from tailguard.analytics.customers import CustomerRows, check_sort, customer_table
from tailguard.analytics.period import Window


def customer_report(
    ledger: Any,
    *,
    window: Window | None = None,
    sort: str = "cost_usd",
    limit: int | None = None,
) -> CustomerRows:
    """One dict per customer, sorted by ``sort`` descending (see docs/reports.md); each row
    states its window (``window_start``, ``window_end``). ``NoDataError`` when the window holds
    no events: a table of zeros would read as customers costing nothing. ``ledger``: a
    ``QueryContext``, a ``Ledger`` or its directory, or an open connection.

    The rows come as a ``CustomerRows``: a sequence (``len``, indexing, slices, iteration,
    equality with a list of the same dicts) whose dicts are built when asked, from the
    engine's columns; ``list(rows)`` for a plain list (e.g. for ``json.dumps``)."""
    check_sort(sort)  # before any work: a wrong field costs no table
    with using(ledger) as ctx:
        return customer_table(ctx, window or Window(), sort, limit)
