"""Cost per resolved task: the unit the customer pays for, fully loaded (the cost-per-resolved-task
article).

The cost-per-resolved-task article's two mistakes, and how this report avoids them:

- *the wrong unit*: cost per API call can fall while cost per resolved task rises (a cheaper
  model that needs more turns). ``weekly`` puts the two side by side per ISO week.
- *the wrong numerator*: counting only the successful path. Here the numerator is **all spend**
  on the workflow in the window (LLM, tools, retrieval, escalation; failed attempts, retries,
  abandoned, timed-out and escalated runs included) and the denominator is **accepted outcomes**.

Definitions (docs/outcomes.md):

- ``cost_per_resolved_task`` = all spend in the window / distinct tasks with an ``accepted``
  ``task_outcome`` in the window (the same "successful task" as ``report customers``).
- ``cost_per_call`` = LLM spend / ``llm_call`` events (every attempt): the vendor's unit.
- ``by_outcome``: every event's cost is attributed to its *task's* outcome, looked up over the
  ledger up to the end of the window (so a past period's report does not change when later data
  arrives). A task with several outcome events counts as accepted if any is ``accepted``, else
  its alphabetically first outcome. Events whose task has no outcome (yet), and events with no
  ``task_id``, go to the ``open`` bucket.
- ``failure_cost_share`` = spend of tasks that ended in anything but ``accepted`` / all spend.
  ``open`` spend is in the denominator but not the numerator, so
  accepted share + failure_cost_share + open share = 1.
- ``unpriced_calls`` = every event without a price (its cost missing from every figure above):
  ``unpriced_llm_calls`` (LLM requests: a usage bucket of n requests is n) +
  ``unpriced_tool_calls`` (a web search the price book has no price for, a tool call of a call
  whose usage was invalid) + ``unpriced_other_events`` (retrievals, escalations, unknown kinds).
  It counted LLM calls only: an unpriced web search was a tool call whose cost was missing and
  nobody was told.

Money: sums are the engine's exact Decimals; ``cost_per_*`` are their quotients at Decimal's 28
significant digits (the default context, half-even), never rounded to micro-dollars; shares and
ratios are unrounded floats. JSON and CSV carry every digit; only the terminal table rounds.

One engine query per view (total, by outcome, per group, per week) would be simplest; instead
one statement aggregates by (group key, outcome, week) and Python folds that small result into
every view, so the ledger is read once (plus the outcome rows) whatever is asked.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from tailguard.analytics.context import QueryContext, as_context, using
from tailguard.analytics.period import Window, bounded
from tailguard.errors import ArgumentError
from tailguard.vocabulary import OUTCOMES

#: outcome buckets in report order; ``open`` = no outcome (yet) or no task
BUCKETS: tuple[str, ...] = (*OUTCOMES, "open")
GROUPS: dict[str, str] = {"feature": "feature", "customer": "customer_id", "workload": "workload"}

#: ``t``: events pre-aggregated per (group, task, week) — far fewer rows than events, so the join
#: to ``o`` (task -> its outcome, as known at the end of the window) is cheap; then summed by
#: (group, outcome, week). Weeks are ISO weeks (Monday, UTC) computed from the epoch: the week
#: index is floor((days since 1970-01-01 + 3) / 7) (``{dn}``: the dialect's day number), 1970-01-01
#: being a Thursday (date_trunc on a
#: TIMESTAMPTZ goes through time-zone arithmetic and was 7x slower at 13M events). Portable SQL:
#: CTEs, CASE inside aggregates, a LEFT JOIN.
OUTCOMES_SQL = """
WITH t AS (
  SELECT
    {group} AS grp,
    task_id,
    floor(({dn} + 3) / 7) AS week,
    sum(cost_usd) AS spend,
    sum(CASE WHEN kind = 'llm_call' THEN cost_usd END) AS llm_spend,
    sum(CASE WHEN kind = 'llm_call' THEN coalesce(requests, 1) ELSE 0 END) AS llm_calls,
    max(CASE WHEN kind = 'task_outcome' AND task_id IS NOT NULL AND outcome = 'accepted'
      THEN 1 ELSE 0 END) AS resolved,
    max(CASE WHEN kind = 'task_outcome' AND task_id IS NOT NULL THEN 1 ELSE 0 END) AS ended,
    sum(CASE WHEN kind = 'llm_call' AND unpriced THEN coalesce(requests, 1) ELSE 0 END)
      AS unpriced_llm_calls,
    sum(CASE WHEN kind = 'tool_call' AND unpriced THEN 1 ELSE 0 END) AS unpriced_tool_calls,
    sum(CASE WHEN kind NOT IN ('llm_call', 'tool_call') AND unpriced THEN 1 ELSE 0 END)
      AS unpriced_other
  FROM events
  WHERE {where}
  GROUP BY 1, 2, 3
), o AS (
  SELECT
    task_id,
    CASE WHEN max(CASE WHEN outcome = 'accepted' THEN 1 ELSE 0 END) = 1 THEN 'accepted'
         ELSE min(outcome) END AS outcome
  FROM events
  WHERE kind = 'task_outcome' AND task_id IS NOT NULL AND {outcome_where}
  GROUP BY task_id
)
SELECT
  t.grp,
  coalesce(o.outcome, 'open') AS outcome,
  t.week,
  sum(t.spend) AS spend,
  sum(t.llm_spend) AS llm_spend,
  sum(t.llm_calls) AS llm_calls,
  sum(t.resolved) AS resolved,
  sum(t.ended) AS ended,
  sum(t.unpriced_llm_calls) AS unpriced_llm_calls,
  sum(t.unpriced_tool_calls) AS unpriced_tool_calls,
  sum(t.unpriced_other) AS unpriced_other
FROM t
LEFT JOIN o ON t.task_id = o.task_id
GROUP BY 1, 2, 3
"""

#: ISO week index 0 starts on Monday 1969-12-29
_WEEK0 = dt.date(1969, 12, 29)


def _share(part: Decimal, whole: Decimal) -> float | None:
    return float(part / whole) if whole else None


def _fold(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's figures from the (outcome, week) parts of one group."""
    spend = sum((p["spend"] for p in parts), Decimal(0))
    llm_spend = sum((p["llm_spend"] for p in parts), Decimal(0))
    calls = sum(p["llm_calls"] for p in parts)
    resolved = sum(p["resolved"] for p in parts)
    ended = sum(p["ended"] for p in parts)
    by = {b: Decimal(0) for b in BUCKETS}
    for p in parts:
        by[p["outcome"]] += p["spend"]
    failed = sum((by[b] for b in OUTCOMES if b != "accepted"), Decimal(0))
    return {
        "spend_usd": spend,
        "llm_spend_usd": llm_spend,
        "llm_calls": calls,
        "tasks_ended": ended,
        "resolved_tasks": resolved,
        "cost_per_resolved_task": spend / resolved if resolved else None,
        "cost_per_call": llm_spend / calls if calls else None,
        "calls_per_resolved_task": calls / resolved if resolved else None,
        "failure_cost_share": _share(failed, spend),
        "by_outcome": {b: {"spend_usd": by[b], "share": _share(by[b], spend)} for b in BUCKETS},
        "unpriced_calls": sum(
            p["unpriced_llm_calls"] + p["unpriced_tool_calls"] + p["unpriced_other"] for p in parts
        ),
        "unpriced_llm_calls": sum(p["unpriced_llm_calls"] for p in parts),
        "unpriced_tool_calls": sum(p["unpriced_tool_calls"] for p in parts),
        "unpriced_other_events": sum(p["unpriced_other"] for p in parts),
    }


def _weekly(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cost per call next to cost per resolved task, per ISO week (Monday, UTC), with the change
    of each against the first week (the cost-per-resolved-task article's divergence)."""
    weeks: dict[dt.date, list[dict[str, Any]]] = {}
    for p in parts:
        weeks.setdefault(p["week"], []).append(p)
    out: list[dict[str, Any]] = []
    first_call = first_task = None
    for wk in sorted(weeks):
        f = _fold(weeks[wk])
        cpc, cpt = f["cost_per_call"], f["cost_per_resolved_task"]
        if first_call is None and cpc:
            first_call = cpc
        if first_task is None and cpt:
            first_task = cpt
        out.append(
            {
                "week": wk,
                "spend_usd": f["spend_usd"],
                "llm_calls": f["llm_calls"],
                "resolved_tasks": f["resolved_tasks"],
                "cost_per_call": cpc,
                "cost_per_resolved_task": cpt,
                "calls_per_resolved_task": f["calls_per_resolved_task"],
                "cost_per_call_change": (
                    float(cpc / first_call - 1) if cpc and first_call else None
                ),
                "cost_per_resolved_task_change": (
                    float(cpt / first_task - 1) if cpt and first_task else None
                ),
            }
        )
    return out


def outcome_parts(con: Any, win: Window, *, by: str | None = None) -> list[dict[str, Any]]:
    """The engine half: spend and counts per (group, outcome, week)."""
    if by is not None and by not in GROUPS:
        raise ArgumentError("by", f"{by!r} is not one of {', '.join(GROUPS)}")
    where, params = win.sql()
    # outcomes known by the end of the window (an open end: everything in the ledger)
    outcome_where, oparams = ("ts < ?", [win.end]) if win.end is not None else ("TRUE", [])
    group = GROUPS[by] if by else "NULL"
    dn = as_context(con).day_number("ts")
    sql = OUTCOMES_SQL.format(group=group, where=where, outcome_where=outcome_where, dn=dn)
    cur = con.execute(sql, params + oparams)
    cols = [d[0] for d in cur.description]
    parts = []
    for r in cur.fetchall():
        p = dict(zip(cols, r, strict=True))
        p["week"] = _WEEK0 + dt.timedelta(days=7 * int(p["week"]))
        p["spend"] = p["spend"] if p["spend"] is not None else Decimal(0)
        p["llm_spend"] = p["llm_spend"] if p["llm_spend"] is not None else Decimal(0)
        p["llm_calls"] = int(p["llm_calls"] or 0)
        p["resolved"] = int(p["resolved"] or 0)
        p["ended"] = int(p["ended"] or 0)
        for k in ("unpriced_llm_calls", "unpriced_tool_calls", "unpriced_other"):
            p[k] = int(p[k] or 0)
        parts.append(p)
    return parts


def outcomes(
    ledger: Any,
    win: Window | None = None,
    *,
    window: Window | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """Cost per resolved task (``_outcomes`` has the fields).

    ``ledger``: a ``QueryContext``, a ``Ledger`` or its directory, or an open connection (the
    old form); the window is ``window=`` (or the second argument, the old form), default every
    day the ledger holds events.
    """
    with using(ledger) as ctx:
        return _outcomes(ctx, window or win or Window(), by=by)


def _outcomes(con: QueryContext, win: Window, *, by: str | None = None) -> dict[str, Any]:
    """The whole report: the overall figures, ``weekly``, and ``groups`` when ``by`` is given.

    ``groups`` is a list sorted by spend (descending), each with ``group`` (the key; ``null``
    for events without one) and the same keys as the overall figures. Note: the per-task
    distinct counts are exact per group; a task whose events carry two different group values
    (rare: a feature switch mid-task) has its spend split between the groups and its outcome
    counted in the group of its ``task_outcome`` event.

    ``window`` states the days covered (an open window: the days its events span);
    ``NoDataError`` when the window holds no events (no data is not a cost of zero).
    """
    stated = bounded(con, win)
    parts = outcome_parts(con, win, by=by)
    report = {"window": stated.stated(), "by": by, **_fold(parts), "weekly": _weekly(parts)}
    if by:
        groups: dict[Any, list[dict[str, Any]]] = {}
        for p in parts:
            groups.setdefault(p["grp"], []).append(p)
        rows = [{"group": g, **_fold(ps)} for g, ps in groups.items()]
        rows.sort(key=lambda r: (-r["spend_usd"], str(r["group"])))
        report["groups"] = rows
    return report
