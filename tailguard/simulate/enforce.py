"""The tier budgets applied to a chunk of events, as the guard applies a policy.

``generate`` builds what the customers would do; ``enforce`` then keeps what the guard would
have let happen under the budgets of ``budgets.py`` and adds the decisions it would have logged
(degrade, deny, the soft-threshold alert, pay-as-you-go overage), with the engine's own rule
names. Kept apart from the generator: the policy can be read (and changed) without the traffic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tailguard.simulate import catalog as cat
from tailguard.simulate.budgets import HARD_CAP, PAYG, SOFT_CAP_DEGRADE, TIER_BUDGETS
from tailguard.simulate.columns import KIND_GUARD, KIND_LLM, US, excl_cumsum, llm_cost, to_us

if TYPE_CHECKING:
    from tailguard.simulate.model import Sessions
    from tailguard.simulate.population import Population


def enforce(
    pop: Population, cols: dict[str, np.ndarray], sess: Sessions
) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """The tier budgets of ``budgets.py`` applied to the chunk, as the guard applies a policy.

    Per customer and calendar month, in time order, with the guard's own usage (LLM dollars, or
    input + output tokens for a token budget) and its own rule names:

    1. soft_cap_degrade tiers: every call at or past the soft threshold goes to its model's
       budget sibling (``catalog.CHEAPER``) and logs ``degrade`` / ``soft_threshold`` (past the
       hard limit, when the tier degrades there instead of denying: ``degrade`` /
       ``hard_limit``);
    2. hard_cap tiers (and soft_cap_degrade tiers that deny at the hard limit): a session whose
       usage would take the month past the budget is denied, so it never happens; one
       ``deny`` / ``hard_limit`` per customer and day records the refusals, naming the user and
       feature that asked (no session or task: nothing ran);
    3. every tier: crossing the soft threshold logs one ``soft_threshold`` alert a month;
    4. payg tiers: every call past the budget logs ``overage`` / ``payg`` with the dollars past it.

    The guard reserves each call's cost and denies the call that would cross the limit; the
    simulator decides by whole session (a session runs entirely or not at all), so a capped
    customer ends the month at or under its budget.
    Returns the kept events and the guard events to add.
    """
    extra: list[dict[str, np.ndarray]] = []
    llm = np.flatnonzero(cols["kind"] == KIND_LLM)
    if len(llm) == 0:
        return cols, extra
    month_of_day = _month_of_day(pop)
    overage = _TIER_OVERAGE[pop.tier]
    soft_at = _TIER_SOFT[pop.tier] * pop.budget
    budgeted = pop.budget > 0

    def ordered(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = cols["cust"][rows]
        month = month_of_day[np.minimum(cols["ts"][rows] // (86400 * US), pop.days - 1)]
        group = c * 1000 + month
        o = np.lexsort((cols["ts"][rows], group))
        return rows[o], c[o], np.unique(group[o], return_counts=True)[1]

    def usage(rows: np.ndarray, c: np.ndarray) -> np.ndarray:
        tok = (cols["input_tokens"][rows] + cols["output_tokens"][rows]).astype(np.float64)
        return np.where(pop.budget_tokens[c], tok, llm_cost(cols, rows))

    # 1. degrade past the soft threshold
    llm, c, counts = ordered(llm)
    u = usage(llm, c)
    before = excl_cumsum(u, counts)
    cheaper = cat.CHEAPER[cols["model"][llm]]
    degraded = np.zeros(len(cols["kind"]), dtype=bool)
    deg = (
        (overage[c] == SOFT_CAP_DEGRADE)
        & budgeted[c]
        & (before + u >= soft_at[c])
        & (cheaper != cols["model"][llm])
    )
    cols["model"][llm[deg]] = cheaper[deg]
    degraded[llm[deg]] = True

    # 2. sessions denied at the hard limit
    u = usage(llm, c)
    s_use = np.bincount(cols["session"][llm], weights=u, minlength=sess.n)
    s_capped = budgeted[sess.g] & (_TIER_DENIES[pop.tier[sess.g]])
    if s_capped.any():
        day = np.minimum((sess.start // 86400).astype(np.int64), pop.days - 1)
        idx = np.flatnonzero(s_capped)
        group = sess.g[idx] * 1000 + month_of_day[day[idx]]
        o = np.lexsort((sess.start[idx], group))
        idx, group = idx[o], group[o]
        d = idx[_refused(s_use[idx], group, pop.budget[sess.g[idx]])]
        if len(d):
            denied = np.zeros(sess.n, dtype=bool)
            denied[d] = True
            keep = ~denied[np.maximum(cols["session"], 0)] | (cols["session"] < 0)
            cols = {k: v[keep] for k, v in cols.items()}
            degraded = degraded[keep]
            # one deny a customer and day, at its first refused session
            key = sess.g[d] * 100_000 + day[d]
            o = np.lexsort((sess.start[d], key))
            d, key = d[o], key[o]
            first = np.ones(len(d), dtype=bool)
            first[1:] = key[1:] != key[:-1]
            d = d[first]
            nd = len(d)
            extra.append(
                {
                    "kind": np.full(nd, KIND_GUARD),
                    "ts": to_us(sess.start[d]),
                    "cust": sess.g[d],
                    "user": sess.user[d],
                    "session": np.full(nd, -1),
                    "task": np.full(nd, -1),
                    "workload": sess.wl[d],
                    "feature": sess.feat[d],
                    "model": sess.model[d],
                    "action": np.full(nd, 1),  # deny
                    "rule": np.full(nd, 1),  # hard_limit
                    "amount_usd": np.where(
                        pop.budget_tokens[sess.g[d]], np.nan, np.round(pop.budget[sess.g[d]], 6)
                    ),
                }
            )

    # 3. and 4. the alerts and overage of what ran
    llm, c, counts = ordered(np.flatnonzero(cols["kind"] == KIND_LLM))
    u = usage(llm, c)
    before = excl_cumsum(u, counts)
    after = before + u
    b = pop.budget[c]
    soft = budgeted[c] & (before < soft_at[c]) & (after >= soft_at[c])
    over = budgeted[c] & (overage[c] == PAYG) & ~pop.budget_tokens[c] & (after > b)
    dg = degraded[llm]
    past = dg & (after > b)  # degraded past the hard limit (the end of the degrade chain)
    for rows, action, rule, amount in (
        (llm[soft], 0, 0, np.where(pop.budget_tokens[c[soft]], np.nan, soft_at[c[soft]])),
        (llm[dg & ~past], 2, 0, np.full(int((dg & ~past).sum()), np.nan)),
        (llm[past], 2, 1, np.full(int(past.sum()), np.nan)),
        (llm[over], 3, 2, after[over] - np.maximum(b[over], before[over])),
    ):
        n = len(rows)
        if n == 0:
            continue
        extra.append(
            {
                "kind": np.full(n, KIND_GUARD),
                "ts": cols["ts"][rows] - 1,  # decided just before the call
                **{k: cols[k][rows] for k in ("cust", "user", "session", "task")},
                **{k: cols[k][rows] for k in ("workload", "feature", "model")},
                "action": np.full(n, action),
                "rule": np.full(n, rule),
                "amount_usd": np.round(amount, 6),
            }
        )
    return cols, extra


#: per tier (population.TIERS order): overage pattern, soft threshold, whether the hard limit
#: denies (hard_cap, and pro's soft_cap_degrade with hard_limit_action = "deny")
_TIER_OVERAGE = np.array([b.overage for b in TIER_BUDGETS])
_TIER_SOFT = np.array([b.soft_threshold for b in TIER_BUDGETS])
_TIER_DENIES = np.array(
    [
        b.overage == HARD_CAP or (b.overage == SOFT_CAP_DEGRADE and b.deny_at_hard_limit)
        for b in TIER_BUDGETS
    ]
)


def _refused(use: np.ndarray, group: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """Which sessions (in time order within each customer-month ``group``) the hard limit
    refuses: a session whose usage would take the month past the budget, given the sessions
    kept before it. The guard reserves a call's cost before it runs and denies the call that
    would cross the limit, so a capped customer ends the month at or under its budget, never
    over it; a smaller session that still fits later in the month runs."""
    refused = np.zeros(len(use), dtype=bool)
    if len(use) == 0:
        return refused
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(use)]
    total = np.add.reduceat(use, starts)
    for a, b, t in zip(starts, ends, total, strict=True):
        if t <= budget[a]:
            continue  # the whole month fits: nothing refused (the common case, no loop)
        kept = 0.0
        for i in range(a, b):
            if kept + use[i] > budget[a]:
                refused[i] = True
            else:
                kept += use[i]
    return refused


def _month_of_day(pop: Population) -> np.ndarray:
    import datetime as dt

    months = []
    for d in range(pop.days):
        x = pop.start + dt.timedelta(days=d)
        months.append(x.year * 12 + x.month - 1)
    a = np.asarray(months)
    return a - a[0]
