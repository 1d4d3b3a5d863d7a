"""Pricing drift: where tailguard's price and the source's own cost disagree.

An import keeps the source's figure (LiteLLM ``spend``, Langfuse ``costDetails``, Helicone
``cost``) as ``reported_cost_usd`` beside tailguard's ``cost_usd``. Per provider and model, over
the calls that carry both, this sums each and reports the models whose totals differ by more
than the threshold (1% by default) of the reported total: a stale price card on either side, a
negotiated discount, or a model the source prices under another name. Models whose calls carry
a reported cost but that tailguard cannot price are listed too (``unpriced_calls``), since
their difference is unknown, never zero.

Aggregated in DuckDB; money stays DECIMAL(38, 9) (exact sums); ``drift_pct`` is their
quotient at Decimal's 28 significant digits (half-even), unrounded: JSON and CSV carry every
digit, only a table rounds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tailguard.analytics.period import Window

DRIFT_FIELDS = (
    "provider",
    "model",
    "calls",
    "priced_calls",
    "unpriced_calls",
    "reported_usd",
    "priced_usd",
    "difference_usd",
    "drift_pct",
)

_SQL = """
SELECT
  coalesce(provider, '') AS provider,
  model,
  sum(coalesce(requests, 1)) AS calls,
  coalesce(sum(coalesce(requests, 1)) FILTER (WHERE NOT unpriced), 0) AS priced_calls,
  coalesce(sum(coalesce(requests, 1)) FILTER (WHERE unpriced), 0) AS unpriced_calls,
  sum(reported_cost_usd) FILTER (WHERE NOT unpriced) AS reported_priced,
  sum(reported_cost_usd) AS reported_usd,
  coalesce(sum(cost_usd) FILTER (WHERE NOT unpriced), 0) AS priced_usd
FROM events
WHERE kind = 'llm_call' AND reported_cost_usd IS NOT NULL AND cost_source <> 'reported'
  AND {where}
GROUP BY ALL
"""


def pricing_drift(
    con: Any, *, window: Window | None = None, threshold: Decimal = Decimal("0.01")
) -> list[dict[str, Any]]:
    """Rows of ``DRIFT_FIELDS`` for each (provider, model) beyond ``threshold``, largest
    absolute difference first."""
    where, params = (window or Window()).sql("ts")
    out = []
    for row in con.execute(_SQL.format(where=where), params).fetchall():
        provider, model, calls, priced, unpriced, rep_priced, reported, cost = row
        rep_priced = rep_priced or Decimal(0)
        diff = cost - rep_priced if priced else None  # nothing priced: unknown, not zero
        if unpriced == 0 and diff is not None and abs(diff) <= threshold * rep_priced:
            continue
        # every digit (Decimal's 28 significant digits, half-even): only a table rounds
        pct = diff / rep_priced * 100 if diff is not None and rep_priced else None
        out.append(
            {
                "provider": provider or None,
                "model": model,
                "calls": calls,
                "priced_calls": priced,
                "unpriced_calls": unpriced,
                "reported_usd": reported,
                "priced_usd": cost if priced else None,
                "difference_usd": diff,
                "drift_pct": pct,
            }
        )
    out.sort(key=lambda r: (-abs(r["difference_usd"] or 0), -r["unpriced_calls"], r["model"]))
    return out
