"""The panel's month, its caps, and the shared tables every KPI reads: built once, passed on.

``PanelTables`` is the one value that holds them. Why a value: the KPIs used to read temp tables
another function had to have built first (``_tg_users``, ``_tg_cd``, ``_tg_caps``), an order no
signature showed, so ``digest`` had to call private helpers in the right sequence. Now a KPI takes
the ``PanelTables`` it reads, and ``build`` is the only way to make one; which tables it holds is
its fields (``require`` names a missing one).

The tables, each one GROUP BY over the month's roll-up rows (the events when the connection has
no roll-up; ``build(parts=...)`` makes only those asked for: ``digest`` and ``anomalies`` need
the customer × day table alone):

- ``users``: customer × user, non-guard spend and LLM tokens (per-user KPIs, concentration).
- ``days``: customer × UTC day (a day number since 1970-01-01: ``Dialect.day_number``), spend,
  LLM tokens and calls, the guard's routing counts (budget, routing, the anomaly scan) and the
  payg overage billed (``overage_usd``: the ``overage`` events' ``amount_usd``).
- ``caps``: the policy's per-customer caps, registered from Arrow (budget, per-user caps).
- ``customers``: per customer, its spend (summed from ``days``), tier, segment, MRR and margin
  figures: the fields of ``report customers`` the tenant and revenue KPIs read.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tailguard.analytics.period import Window
from tailguard.errors import ArgumentError, NoDataError

if TYPE_CHECKING:
    from tailguard.analytics.context import QueryContext
    from tailguard.guard.policy import Policy

#: the parts ``build`` makes by default: all of them
PARTS = ("caps", "users", "days", "customers")
EPOCH = dt.date(1970, 1, 1)


def day_number(d: dt.date) -> int:
    """``d`` as days since 1970-01-01: the ``dn`` key of the customer × day table."""
    return (d - EPOCH).days


@dataclass(frozen=True)
class Panel:
    """The month judged and how much of it has elapsed at ``as_of``."""

    start: dt.datetime
    end: dt.datetime  # exclusive: the day after as_of (or the month's end)
    as_of: dt.date
    month_days: int
    elapsed_days: int

    @property
    def window(self) -> Window:
        full = self.elapsed_days == self.month_days
        return Window(self.start, self.end, calendar_month=full)

    @property
    def fraction(self) -> Decimal:
        """Share of the month elapsed (pools and budgets are prorated by it)."""
        return Decimal(self.elapsed_days) / Decimal(self.month_days)


def panel_period(con: Any, period: str | None = None, as_of: dt.date | None = None) -> Panel:
    """The month (``period``, default: the month of the last event) up to ``as_of`` (default:
    the last event's day, or the month's last day when the month is over). ``con``: a
    ``QueryContext`` (its kept last-event day) or a connection."""
    from tailguard.analytics.period import event_span

    last = event_span(con)[1]
    last_day = last.astimezone(dt.UTC).date() if last is not None else None
    if period:
        try:
            y, m = (int(x) for x in period.split("-"))
            first = dt.date(y, m, 1)
        except ValueError:
            raise ArgumentError("period", f"{period!r} is not a month (YYYY-MM)") from None
    else:
        ref = as_of or last_day
        if ref is None:  # the wall clock never dates a report
            raise NoDataError("the ledger has no events")
        first = ref.replace(day=1)
    month_days = calendar.monthrange(first.year, first.month)[1]
    month_last = first.replace(day=month_days)
    if as_of is None:
        as_of = month_last if last_day is None or last_day > month_last else max(last_day, first)
    if not first <= as_of <= month_last:
        raise ArgumentError("as_of", f"{as_of} is outside {first:%Y-%m}")
    start = dt.datetime(first.year, first.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(as_of.year, as_of.month, as_of.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
    return Panel(start, end, as_of, month_days, as_of.day)


@dataclass(frozen=True)
class Cap:
    """A customer's monthly budget from the policy (tokens or dollars)."""

    tier: str
    unit: str  # "usd" | "tok"
    hard: Decimal
    soft: Decimal
    soft_threshold: Decimal
    overage: str
    seats: int


def resolve_caps(con: Any, policy: Policy | None, *, days: str | None = None) -> dict[str, Cap]:
    """Each customer's monthly budget under ``policy`` (empty without one). Tiers whose budget
    period is not a month, or which have no budget, are left out.

    ``days``: a customer × day table (``build``'s): its customers without a customers row get
    the budget the guard gives them (``Policy.limits_for`` without a row: a ``[customers.ID]``
    entry, else the policy's ``default_tier``), so the budget and per-user cap KPIs count them
    instead of dropping them. Without ``days`` only the customers table's rows are resolved."""
    if policy is None:
        return {}
    from tailguard.customers import CustomerInfo
    from tailguard.guard.units import from_micro

    def cap(cid: str, tier: Any, seats: Any, pool: Any) -> Cap | None:
        lim = policy.limits_for(cid, info=CustomerInfo(tier, seats, pool))
        if lim.period != "month" or lim.hard_limit is None or lim.hard_limit <= 0:
            return None
        conv = from_micro if lim.budget_unit == "usd" else Decimal
        hard = conv(lim.hard_limit)
        return Cap(
            lim.tier,
            lim.budget_unit,
            hard,
            hard * lim.soft_threshold,
            lim.soft_threshold,
            lim.overage,
            max(1, int(seats or 1)),
        )

    # a customer without a [customers.ID] entry has the limits of its (tier, seats, pool): the
    # policy is resolved once per distinct triple, not once per customer (32,000 at the bench)
    memo: dict[tuple[Any, Any, Any], Cap | None] = {}
    caps = {}
    for cid, tier, seats, pool in con.execute(
        "SELECT customer_id, tier, seats, contracted_pool_usd FROM customers"
    ).fetchall():
        if cid in policy.customers:
            c = cap(cid, tier, seats, pool)
        else:
            key = (tier, seats, pool)
            if key not in memo:
                memo[key] = cap(cid, tier, seats, pool)
            c = memo[key]
        if c is not None:
            caps[cid] = c
    if days is not None:
        rows = con.execute(
            f"SELECT DISTINCT d.customer_id FROM {days} d "
            "LEFT JOIN customers c ON d.customer_id = c.customer_id "
            "WHERE c.customer_id IS NULL AND d.customer_id IS NOT NULL"
        ).fetchall()
        for (cid,) in rows:
            c = cap(cid, None, None, None)
            if c is not None:
                caps[cid] = c
    return caps


def caps_table(caps: dict[str, Cap]) -> pa.Table:
    """The caps as an Arrow table (one row per budgeted customer)."""
    ids = list(caps)
    return pa.table(
        {
            "customer_id": pa.array(ids, pa.string()),
            "tier": pa.array([caps[c].tier for c in ids], pa.string()),
            "unit": pa.array([caps[c].unit for c in ids], pa.string()),
            # per-user shares as floats: they only feed quantiles of a ratio
            "user_soft": pa.array([float(caps[c].soft) / caps[c].seats for c in ids], pa.float64()),
            "user_hard": pa.array([float(caps[c].hard) / caps[c].seats for c in ids], pa.float64()),
            # the whole budget, exact: the cap-hit day compares running sums against it
            "hard": pa.array([caps[c].hard for c in ids], pa.decimal128(24, 6)),
        }
    )


#: customer × user for the month: non-guard spend and LLM tokens. ``{src}``: the roll-up or the
#: events (``QueryContext.source``), with ``{n}`` the events a row stands for, ``{requests}`` its
#: LLM requests, ``{dn}`` its UTC day number
USERS_SQL = """
SELECT customer_id, user_id,
  coalesce(sum(cost_usd), 0) AS cost,
  sum(CASE WHEN kind = 'llm_call' THEN input_tokens + output_tokens ELSE 0 END) AS tokens
FROM {src}
WHERE {where} AND user_id IS NOT NULL AND kind <> 'guard'
GROUP BY 1, 2
"""

#: customer × UTC day for the month (a day number: time-zone free, and three times cheaper than
#: a TIMESTAMPTZ -> DATE cast); the budget and routing KPIs and the anomaly scan's tier check
#: all read it, so the month is read once for them. LLM calls count requests (an imported
#: usage bucket is many calls); guard decisions count events
CUSTOMER_DAYS_SQL = """
SELECT customer_id, {dn} AS dn,
  sum(cost_usd) AS spend,
  coalesce(sum(CASE WHEN kind <> 'guard' THEN cost_usd END), 0) AS cost,
  sum(CASE WHEN kind = 'llm_call' THEN input_tokens + output_tokens ELSE 0 END) AS tokens,
  sum(CASE WHEN kind = 'llm_call' THEN {requests} ELSE 0 END) AS calls,
  sum(CASE WHEN kind = 'guard' AND action = 'degrade'
    AND rule <> 'fail_open:store_unavailable' THEN {n} ELSE 0 END) AS degraded,
  sum(CASE WHEN kind = 'guard' AND action = 'deny'
    AND rule = 'hard_limit' THEN {n} ELSE 0 END) AS capped,
  sum(CASE WHEN kind = 'guard' AND action = 'overage' THEN {n} ELSE 0 END) AS overage,
  sum(CASE WHEN kind IN ('llm_call', 'guard') THEN {n} ELSE 0 END) AS routed,
  coalesce(sum(CASE WHEN kind = 'guard' AND action = 'overage' THEN amount_usd END), 0)
    AS overage_usd
FROM {src}
WHERE {where}
GROUP BY 1, 2
"""


#: the customer × day table from the daily roll-up (spend, tokens, requests, routed rows) and the
#: guard rows of the roll-up (the rule of a decision is not in the daily level). Only LLM calls
#: carry tokens and guard rows carry no cost (the event schema), so the daily sums are the
#: table's. ``{dd}`` / ``{dg}``: the day numbers of the two roll-ups' ``day``
DAILY_DAYS_SQL = """
WITH d AS (
  SELECT customer_id, {dn} AS dn, sum(cost_usd) AS spend, coalesce(sum(cost_usd), 0) AS cost,
    coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS tokens,
    sum(requests) AS calls, sum(llm_calls) + sum(guard_events) AS routed
  FROM rollup_daily
  WHERE {where}
  GROUP BY 1, 2
), g AS (
  SELECT customer_id, {dn} AS dn,
    sum(CASE WHEN action = 'degrade' AND rule <> 'fail_open:store_unavailable'
      THEN events ELSE 0 END) AS degraded,
    sum(CASE WHEN action = 'deny' AND rule = 'hard_limit' THEN events ELSE 0 END) AS capped,
    sum(CASE WHEN action = 'overage' THEN events ELSE 0 END) AS overage,
    sum(CASE WHEN action = 'overage' THEN amount_usd END) AS overage_usd
  FROM rollup
  WHERE kind = 'guard' AND {where}
  GROUP BY 1, 2
)
SELECT d.customer_id, d.dn, d.spend, d.cost, d.tokens, d.calls,
  coalesce(g.degraded, 0) AS degraded, coalesce(g.capped, 0) AS capped,
  coalesce(g.overage, 0) AS overage, d.routed, coalesce(g.overage_usd, 0) AS overage_usd
FROM d LEFT JOIN g ON d.customer_id = g.customer_id AND d.dn = g.dn
"""


def days_sql(ctx: QueryContext, win: Window) -> tuple[str, list[Any]]:
    """The customer × day table's query: from the daily roll-up when the context has both
    levels, else ``CUSTOMER_DAYS_SQL`` over the roll-up or the events."""
    from tailguard.analytics.context import DAILY

    daily = ctx.rollup_where(win, DAILY)
    if daily is not None and ctx.rollup_where(win) is not None:
        where, params = daily
        return DAILY_DAYS_SQL.format(dn=ctx.date_number("day"), where=where), [*params, *params]
    return source_sql(CUSTOMER_DAYS_SQL, ctx, win)


def source_sql(template: str, ctx: QueryContext, win: Window) -> tuple[str, list[Any]]:
    """``template`` over the roll-up when it can answer for ``win``, else over the events
    (``QueryContext.source``), and its parameters."""
    src = ctx.source(win)
    sql = template.format(
        src=src.table, where=src.where, n=src.n, requests=src.requests, dn=src.day_number
    )
    return sql, src.params


_serial = itertools.count(1)


@dataclass(frozen=True)
class PanelTables:
    """The shared tables of one panel month (module docstring). Table fields hold the name to
    read in SQL (``FROM {t.users}``), None when ``build`` was not asked for that part."""

    ctx: QueryContext
    period: Panel
    caps: dict[str, Cap]
    caps_name: str | None = None
    users: str | None = None
    days: str | None = None
    customers: list[dict[str, Any]] | None = None

    def require(self, part: str) -> Any:
        """The part ``part`` (a table name, or the customer rows); ``ValueError`` naming it when
        ``build`` was not asked for it."""
        value = {
            "caps": self.caps_name,
            "users": self.users,
            "days": self.days,
            "customers": self.customers,
        }[part]
        if value is None:
            raise ArgumentError("part", f"built without {part!r}: build(..., parts=[{part!r}])")
        return value

    @property
    def months(self) -> Decimal:
        """The months of MRR the panel's window earns (``Window.months``)."""
        m = self.period.window.months()
        assert m is not None  # a panel window is bounded
        return m


def build(
    ctx: QueryContext,
    p: Panel,
    caps: dict[str, Cap] | None = None,
    *,
    parts: Iterable[str] = PARTS,
    policy: Policy | None = None,
) -> PanelTables:
    """The shared tables for the panel month ``p`` (each built once; names unique to this
    value, so two panels on one connection never read each other's tables).

    ``caps``: the budgets, or ``policy`` to resolve them here from the customers table and the
    month's customers without a row (``resolve_caps(days=...)``; ``caps`` wins when both)."""
    want = set(parts)
    unknown = want - set(PARTS)
    if unknown:
        raise ArgumentError("parts", f"unknown parts {sorted(unknown)}; one of {', '.join(PARTS)}")
    n = next(_serial)
    names: dict[str, Any] = {}
    if "users" in want:
        names["users"] = f"_tg_users_{n}"
        ctx.temp_table(names["users"], *source_sql(USERS_SQL, ctx, p.window))
    if "days" in want:
        names["days"] = f"_tg_cd_{n}"
        ctx.temp_table(names["days"], *days_sql(ctx, p.window))
    if caps is None and policy is not None:
        caps = resolve_caps(ctx, policy, days=names.get("days"))
    caps = caps or {}
    if "caps" in want:
        names["caps_name"] = f"_tg_caps_{n}"
        ctx.register(names["caps_name"], caps_table(caps))
    if "customers" in want:
        if "days" not in want:
            raise ArgumentError("parts", "the panel's customers are read from its days: build both")
        names["customers"] = panel_customers(ctx, p, names["days"])
    return PanelTables(ctx, p, caps, **names)


def panel_customers(ctx: QueryContext, p: Panel, days: str) -> list[dict[str, Any]]:
    """The per-customer rows the tenant and revenue KPIs read, from the customer × day table
    (no second pass over the month): ``customer_id``, ``name``, ``tier``, ``segment``,
    ``cost_usd`` (all spend, exact), ``mrr_usd`` and ``margins.billed_figures`` over the
    panel's months (revenue = MRR × months + the payg overage billed, ``overage_usd``); every
    customer of the customers table, with or without spend. The same values as
    ``customers.customer_rows`` for those fields when no overage was billed
    (tests/analytics/test_context.py)."""
    from tailguard.analytics.margins import billed_figures

    months = p.window.months()
    zero = Decimal(0)
    return [
        {
            "customer_id": cid,
            "name": name,
            "tier": tier,
            "segment": segment,
            "cost_usd": (cost := spend or zero),
            "mrr_usd": mrr,
            **billed_figures(cost, mrr, months, overage),
        }
        for cid, name, tier, segment, mrr, spend, overage in ctx.fetch(
            PANEL_CUSTOMERS_SQL.format(days=days)
        )
    ]


#: every customer of the customers table or with spend in the panel's days, by id: its
#: dimensions and its spend summed from the customer × day table (NULL: none). The customers
#: table holds one row per id (``customers.upsert``)
PANEL_CUSTOMERS_SQL = """
SELECT coalesce(c.customer_id, s.customer_id) AS customer_id, c.name, c.tier, c.segment,
  c.mrr_usd, s.spend, s.overage_usd
FROM customers c
FULL OUTER JOIN (
  SELECT customer_id, sum(spend) AS spend, sum(overage_usd) AS overage_usd FROM {days} GROUP BY 1
) s
  ON c.customer_id = s.customer_id
ORDER BY 1
"""
