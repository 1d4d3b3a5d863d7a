"""One customer's diagnosis (``diagnose(customer=...)``, the dashboard's customer page) equals its
row in the whole population's run, for every customer; and the per-customer metrics query
equals the plain ``count(DISTINCT ...)`` formulation it replaced (issue 12).

Why a second method is needed: the single-customer call and the full run share the population
pass, so "equal to the full run" alone cannot catch a bug in that pass. The reference here is
the previous query, kept verbatim below (``DISTINCT_SQL``): distinct tasks and successful tasks
as ``count(DISTINCT task_id)`` and ``count(DISTINCT CASE WHEN accepted THEN task_id END)``
inside the per-customer GROUP BY, which the new query computes from a per-(customer, task)
pre-aggregation instead (3.3x less CPU for that part at 10M events).

The full run lists only the tail; to compare the customers outside it too, a run with
``top_pct=100`` puts every customer with a cost in the tail (``top_cost``) while changing
nothing else: the medians, ranks, shares, evidence and levers do not depend on ``top_pct``.
So each customer's single result must equal that run's row with ``in_tail`` replaced by the
default run's reasons (``[]`` outside the tail).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.analytics.context import as_context
from tailguard.analytics.diagnose import (
    DiagnoseConfig,
    customer_metrics,
    derive_metrics,
    diagnose,
    population,
)
from tailguard.analytics.period import Window, window
from tailguard.errors import ArgumentError
from tests.analytics.helpers import connect, shape_events
from tests.fixtures_asymmetric import asymmetric_ledger

#: the query before issue 12: the reference for ``METRICS_SQL``
DISTINCT_SQL = """
WITH s AS (
  SELECT customer_id, session_id, min(user_id) AS user_id,
    floor(min({epoch}) / 86400) AS day,
    min(CASE WHEN kind = 'llm_call' THEN input_tokens END) AS opening_input
  FROM events
  WHERE session_id IS NOT NULL AND {where}
  GROUP BY customer_id, session_id
), u AS (
  SELECT customer_id, count(*) AS sessions, sum(opening_input) AS opening_input,
    count(opening_input) AS llm_sessions
  FROM s GROUP BY customer_id
), ud AS (
  SELECT customer_id, count(*) AS user_days
  FROM (SELECT DISTINCT customer_id, user_id, day FROM s WHERE user_id IS NOT NULL) p
  GROUP BY customer_id
), m AS (
  SELECT
    customer_id,
    sum(cost_usd) AS cost_usd,
    sum(CASE WHEN kind = 'llm_call' THEN coalesce(requests, 1) ELSE 0 END) AS llm_calls,
    count(DISTINCT task_id) AS tasks_seen,
    count(DISTINCT CASE WHEN kind = 'task_outcome' AND outcome = 'accepted' THEN task_id END)
      AS successful_tasks,
    sum(CASE WHEN kind = 'tool_call' THEN 1 ELSE 0 END) AS tool_calls,
    sum(CASE WHEN kind = 'llm_call' THEN input_tokens END) AS input_tokens,
    sum(CASE WHEN kind = 'llm_call' THEN cache_read_tokens END) AS cache_read_tokens,
    sum(CASE WHEN kind = 'llm_call' THEN output_tokens END) AS output_tokens,
    sum(CASE WHEN kind = 'llm_call' THEN reasoning_tokens END) AS reasoning_tokens,
    sum(CASE WHEN kind = 'llm_call' AND attempt > 1 THEN 1 ELSE 0 END) AS retries
  FROM events
  WHERE {where}
  GROUP BY customer_id
)
SELECT m.*, coalesce(u.sessions, 0) AS sessions, u.opening_input, u.llm_sessions,
  coalesce(ud.user_days, 0) AS user_days
FROM m
LEFT JOIN u ON m.customer_id = u.customer_id
LEFT JOIN ud ON m.customer_id = ud.customer_id
"""


def distinct_metrics(con: Any, win: Window) -> list[dict[str, Any]]:
    """``customer_metrics`` by the reference query (same Python half)."""
    where, params = win.sql()
    epoch = as_context(con).epoch_seconds("ts")
    cur = con.execute(DISTINCT_SQL.format(where=where, epoch=epoch), params + params)
    cols = [d[0] for d in cur.description]
    out = []
    for r in cur.fetchall():
        agg = dict(zip(cols, r, strict=True))
        wins = agg["successful_tasks"] or 0
        agg["cost_per_successful_task"] = agg["cost_usd"] / wins if wins else None
        agg.update(derive_metrics(agg))
        out.append(agg)
    return sorted(out, key=lambda a: a["customer_id"])


def customers_of(con: Any, win: Window) -> list[str]:
    where, params = win.sql()
    q = f"SELECT DISTINCT customer_id FROM events WHERE {where} ORDER BY 1"
    return [r[0] for r in con.execute(q, params).fetchall()]


def check_every_customer(con: Any, win: Window, cfg: DiagnoseConfig) -> int:
    """Every customer's single result against the full runs (module docstring); returns how
    many customers were in the default tail (so a test can show both sides were exercised)."""
    full = {d["customer_id"]: d for d in diagnose(con, win, config=cfg)}
    everyone = {d["customer_id"]: d for d in diagnose(con, win, config=replace(cfg, top_pct=100.0))}
    for cid in customers_of(con, win):
        (one,) = diagnose(con, win, config=cfg, customer=cid)
        if cid in full:
            assert one == full[cid]
        else:
            assert one["in_tail"] == []
        if cid in everyone:  # every customer with a cost
            assert one == {**everyone[cid], "in_tail": full.get(cid, {}).get("in_tail", [])}
    return len(full)


def test_hand_fixture_every_customer() -> None:
    """The hand fixture of test_diagnose.py (11 customers, TINY unjudged), tail of 1 customer
    by cost plus the cost-per-success outliers."""
    con = connect(shape_events())
    assert distinct_metrics(con, Window()) == customer_metrics(con, Window())
    n = check_every_customer(con, Window(), DiagnoseConfig(top_pct=10, min_tasks=2))
    assert 0 < n < 11


@pytest.fixture(scope="module")
def asym(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return asymmetric_ledger(tmp_path_factory.mktemp("asym-diag"))


@pytest.mark.parametrize("args", [(), ("2025-06",)])
def test_asymmetric_every_customer(asym: Any, args: tuple[str, ...]) -> None:
    """The asymmetric ledger (no two figures coincide; a task outcome re-sent, an unpriced
    call, task-less events), whole and in June (the window's end exclusive)."""
    win = window(*args)
    con = asym.connect()
    try:
        assert distinct_metrics(con, win) == customer_metrics(con, win)
        check_every_customer(con, win, DiagnoseConfig(top_pct=30, min_tasks=1))
    finally:
        con.close()


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A small simulated product (120 customers x 10 days), and its full runs computed once."""
    from tailguard.ledger import Ledger
    from tailguard.simulate import simulate

    d: Path = tmp_path_factory.mktemp("sim-diag")
    res = simulate(customers=120, days=10, seed=5, out=d, fmt="parquet")
    led = Ledger(d / "ledger")
    res.load_into(led)
    con = led.connect()
    cfg = DiagnoseConfig(min_tasks=5)
    yield {
        "con": con,
        "cfg": cfg,
        "customers": customers_of(con, Window()),
        "full": {d["customer_id"]: d for d in diagnose(con, Window(), config=cfg)},
        "everyone": {
            d["customer_id"]: d for d in diagnose(con, Window(), config=replace(cfg, top_pct=100.0))
        },
    }


def test_simulated_metrics_equal_the_distinct_query(sim: dict[str, Any]) -> None:
    """The whole ledger and a window from 13:00 on day 3 to day 7 (sessions and tasks cut at
    both ends: the window's three parameter sets are bound in the right places)."""
    con = sim["con"]
    (first,) = con.execute("SELECT min(ts) FROM events").fetchone()
    day = first.replace(hour=0, minute=0, second=0, microsecond=0)
    cut = Window(day + dt.timedelta(days=2, hours=13), day + dt.timedelta(days=7))
    for win in (Window(), cut):
        want = distinct_metrics(con, win)
        assert want and want == customer_metrics(con, win)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_simulated_any_customer(sim: dict[str, Any], data: st.DataObject) -> None:
    cid = data.draw(st.sampled_from(sim["customers"]))
    (one,) = diagnose(sim["con"], Window(), config=sim["cfg"], customer=cid)
    full, everyone = sim["full"], sim["everyone"]
    if cid in full:
        assert one == full[cid]
    else:
        assert one["in_tail"] == []
    if cid in everyone:
        assert one == {**everyone[cid], "in_tail": full.get(cid, {}).get("in_tail", [])}


def test_a_kept_population_gives_the_same_answers(asym: Any) -> None:
    """``diagnose(population=...)`` (what the dashboard keeps per window) equals the call that
    computes it, for every customer and for the full run; a population made with another
    config is refused rather than silently mixing thresholds."""
    cfg = DiagnoseConfig(top_pct=30, min_tasks=1)
    win = window("2025-06")
    con = asym.connect()
    try:
        pop = population(con, win, config=cfg)
        assert diagnose(con, win, config=cfg, population=pop) == diagnose(con, win, config=cfg)
        for cid in customers_of(con, win):
            assert diagnose(con, win, config=cfg, customer=cid, population=pop) == diagnose(
                con, win, config=cfg, customer=cid
            )
        with pytest.raises(ArgumentError, match="another config"):
            diagnose(con, win, config=DiagnoseConfig(min_tasks=1), population=pop)
    finally:
        con.close()


def test_dashboard_customer_pages_share_one_population_pass(
    asym: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two customer pages of the same window run the population pass once (the second costs
    that customer's evidence only), and each page's diagnosis is ``diagnose --customer``'s."""
    import tailguard.analytics.diagnose as diag
    from tailguard.ui import data

    calls: list[Window] = []
    real = diag.population

    def counting(*a: Any, **kw: Any) -> Any:
        calls.append(a[1])
        return real(*a, **kw)

    monkeypatch.setattr(diag, "population", counting)
    src = data.Source(asym)
    q = data.Query(period="2025-06")
    con = asym.connect()
    try:
        cids = customers_of(con, q.window())
        assert len(cids) >= 2
        for cid in cids:
            page = data.customer_page(src, cid, q)
            (want,) = diagnose(con, q.window(), customer=cid)
            assert page["diagnosis"] == want
    finally:
        con.close()
    assert calls == [q.window()]
