"""The hard limit as the simulator applies it: a session that would cross the budget is refused.

The guard reserves a call's estimate and denies the call that would take spent + reserved past
the hard limit (docs/guard.md, rule 5), so a capped customer never ends a month over its budget.
The simulator decides by whole session (``enforce._refused``); these properties are checked on
arbitrary sessions against a plain sequential replay written here, and on a simulated month.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.simulate import simulate
from tailguard.simulate.enforce import _refused

#: sessions' usage in whole units (dollars or tokens): sums are exact, so the replay below and
#: the function agree to the last unit
_group = st.lists(st.integers(min_value=0, max_value=50), max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.lists(_group, min_size=1, max_size=5), st.integers(min_value=0, max_value=200))
def test_kept_sessions_never_cross_the_budget(groups: list[list[int]], budget: int) -> None:
    """Per group (a customer-month, sessions in time order): what is kept sums to at most the
    budget; a session is refused exactly when it would not fit on top of the kept ones before it
    (replayed here one session at a time); a group whose whole month fits loses nothing."""
    use = np.array([u for g in groups for u in g], dtype=float)
    group = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    refused = _refused(use, group, np.full(len(use), budget))
    i = 0
    for g in groups:
        kept = 0
        for u in g:
            fits = kept + u <= budget
            assert bool(refused[i]) == (not fits and sum(g) > budget), (g, budget, i)
            if not refused[i]:
                kept += u
            i += 1
        assert kept <= budget or sum(g) <= budget


def test_free_accounts_end_the_month_at_or_under_their_budget(tmp_path: Path) -> None:
    """On a simulated month (the demo's policy: free 4,000,000 input + output tokens), no free
    account's tokens pass the budget, and the accounts the cap refused are the ones with a
    ``deny`` / ``hard_limit`` guard event (no session: nothing ran)."""
    res = simulate(
        customers=300, days=30, seed=5, out=tmp_path, fmt="parquet", start=dt.date(2026, 3, 1)
    )
    rows = duckdb.sql(
        f"""
        WITH c AS (SELECT * FROM read_csv('{res.customers_path}'))
        SELECT e.customer_id,
          sum(CASE WHEN kind = 'llm_call' THEN input_tokens + output_tokens ELSE 0 END),
          count(*) FILTER (WHERE kind = 'guard' AND action = 'deny' AND rule = 'hard_limit'
                           AND session_id IS NULL)
        FROM read_parquet('{res.events_path}') e JOIN c USING (customer_id)
        WHERE c.tier = 'free' GROUP BY 1
        """
    ).fetchall()
    assert rows
    assert max(tokens for _, tokens, _ in rows) <= 4_000_000
    capped = [c for c, _, denied in rows if denied]
    assert capped, "no free account reached its cap: the property above was not exercised"
